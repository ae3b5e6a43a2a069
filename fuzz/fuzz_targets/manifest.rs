//! Cluster manifests (`cluster.toml`), parsed and checked.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = certmesh::cluster::manifest::Manifest::parse(Path::new("/fuzz/cluster.toml"), text);
    }
});
