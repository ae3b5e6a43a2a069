//! Entry points for the fuzz targets under `fuzz/`: the key parsers that are private to
//! this module, driven the way `read_private_key` drives them. Not a stable API.

use std::path::Path;

use super::detect::{self, Body};
use super::pbe::EncryptedKey;
use super::{armor, legacy::DekInfo, traditional};
use crate::pass::Secret;

/// PEM armour with RFC 1421 headers: parses every block, reads the legacy encryption
/// headers of each, and runs key-file recognition on the whole input.
pub fn pem_armor(data: &[u8]) {
    if let Ok(blocks) = armor::parse(data) {
        for b in &blocks {
            let _ = b.label.len() + b.der.len();
            let _ = DekInfo::from_headers(b.header("Proc-Type"), b.header("DEK-Info"));
        }
    }
    let _ = detect::detect(data);
}

/// Legacy-encrypted PEM (`Proc-Type: 4,ENCRYPTED`): recognises the file and, when it is
/// legacy-encrypted, decrypts it with `pass` and converts the result to PKCS#8.
pub fn legacy_pem(data: &[u8], pass: &str) {
    let Ok(file) = detect::detect(data) else {
        return;
    };
    if let Body::Legacy(plain, dek, body) = file.body {
        let _ = dek.unsupported_reason();
        if let Ok(der) = dek.decrypt(&Secret::new(pass.to_string()), &body) {
            let _ = traditional::to_pkcs8(plain, &der);
        }
    }
}

/// `EncryptedPrivateKeyInfo` DER: names the scheme and decrypts with `pass` when the
/// scheme is supported; a result that decrypts is then parsed as a key.
pub fn pkcs8_encrypted(data: &[u8], pass: &str) {
    let Ok(enc) = EncryptedKey::parse(data) else {
        return;
    };
    let _ = enc.describe();
    if enc.unsupported_reason().is_none() {
        if let Ok(der) = enc.decrypt(&Secret::new(pass.to_string())) {
            let _ = super::PrivateKey::from_pkcs8_der(&der);
        }
    }
}

/// The whole read path, as `certmesh key strip` takes it, with `pass` as the passphrase.
pub fn read_key(data: &[u8], pass: &str) {
    let _ = super::read_private_key(Path::new("fuzz.pem"), data, &mut || {
        Ok(Secret::new(pass.to_string()))
    });
}
