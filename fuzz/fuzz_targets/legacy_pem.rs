//! Legacy OpenSSL encrypted PEM, decrypted with the passphrase of tests/data/keys, so the
//! seeds get past the padding check and the decrypted bytes are parsed too; then the whole
//! read path with the same passphrase.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    certmesh::key::fuzzing::legacy_pem(data, "certmesh-vector");
    certmesh::key::fuzzing::read_key(data, "certmesh-vector");
});
