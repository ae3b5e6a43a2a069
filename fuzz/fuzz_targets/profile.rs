//! Product profiles (`profiles/*.toml` and users' own), parsed and checked.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = certmesh::cluster::profile::ProductProfile::parse(Path::new("fuzz.toml"), text);
    }
});
