//! `describe_key_file` without a passphrase, as `certmesh inspect KEY` runs it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = certmesh::key::describe_key_file(Path::new("fuzz.key"), data, None);
});
