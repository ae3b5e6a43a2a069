//! JKS and JCEKS keystores (certmesh's own codec), parsed without a password and with a
//! fixed one (which checks the integrity digest).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

use certmesh::keystore::jks::KeyStore;
use certmesh::pass::Secret;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.jks");
    let _ = KeyStore::parse(path, data, None);
    let pass = Secret::new("certmesh-fuzz".to_string());
    let _ = KeyStore::parse(path, data, Some(&pass));
});
