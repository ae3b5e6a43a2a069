//! PEM armour with RFC 1421 headers (`Proc-Type`, `DEK-Info`) and key-file recognition.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    certmesh::key::fuzzing::pem_armor(data);
});
