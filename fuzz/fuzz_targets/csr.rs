//! Certificate signing requests, PEM or DER, as `certmesh sign` reads them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = certmesh::cert::csr::parse(Path::new("fuzz.csr"), data);
});
