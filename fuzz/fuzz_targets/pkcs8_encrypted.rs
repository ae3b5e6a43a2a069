//! `EncryptedPrivateKeyInfo` DER: scheme parsing, key derivation with the parameters the
//! file gives, decryption with the passphrase of tests/data/keys.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    certmesh::key::fuzzing::pkcs8_encrypted(data, "certmesh-vector");
});
