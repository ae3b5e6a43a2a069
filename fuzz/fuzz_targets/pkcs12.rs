//! PKCS#12: the outline (read without a password) and a full decode with a fixed password.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

use certmesh::keystore::pkcs12;
use certmesh::pass::Secret;

fuzz_target!(|data: &[u8]| {
    let _ = pkcs12::looks_like_pkcs12(data);
    if let Ok(o) = pkcs12::outline(data) {
        let _ = o.uses_weak_cipher();
    }
    let pass = Secret::new("certmesh-fuzz".to_string());
    if let Ok(d) = pkcs12::decode(Path::new("fuzz.p12"), data, &pass) {
        let _ = d.bags();
        let _ = d.key_and_chain(Path::new("fuzz.p12"));
    }
});
