//! `certmesh inspect` on any bytes, without a passphrase.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = certmesh::inspect::inspect_bytes(Path::new("fuzz.pem"), data, None);
});
