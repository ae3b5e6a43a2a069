//! Reading private keys from files made by certmesh or other tools.
//!
//! The passphrase is asked for through a callback, and only when the file turns out to be
//! encrypted, so an unencrypted key never triggers a prompt.

use std::path::Path;

use zeroize::Zeroizing;

use super::PrivateKey;
use crate::pass::Secret;
use crate::{Error, Result};

/// Supplies a passphrase when (and only when) a key turns out to be encrypted.
pub type PassPrompt<'a> = &'a mut dyn FnMut() -> Result<Secret>;

/// Reads a private key from `data` (the content of `path`, which is named in errors).
pub fn read_private_key(path: &Path, data: &[u8], pass: PassPrompt<'_>) -> Result<PrivateKey> {
    if crate::x509::looks_like_pem(data) {
        let blocks = pem::parse_many(data)
            .map_err(|e| Error::bad_file(path, format!("damaged PEM: {e}")))?;
        let Some(block) = blocks.iter().find(|b| b.tag().contains("PRIVATE KEY")) else {
            let tags: Vec<&str> = blocks.iter().map(|b| b.tag()).collect();
            return Err(Error::bad_file(
                path,
                format!("no private key here (found: {})", tags.join(", ")),
            ));
        };
        match block.tag() {
            "PRIVATE KEY" => from_pkcs8(path, block.contents()),
            "ENCRYPTED PRIVATE KEY" => decrypt_pkcs8(path, block.contents(), pass),
            other => Err(Error::bad_file(
                path,
                format!("unsupported key format '{other}'"),
            )),
        }
    } else {
        from_pkcs8(path, data)
    }
}

fn from_pkcs8(path: &Path, der: &[u8]) -> Result<PrivateKey> {
    PrivateKey::from_pkcs8_der(der).map_err(|e| Error::bad_file(path, e.to_string()))
}

fn decrypt_pkcs8(path: &Path, der: &[u8], pass: PassPrompt<'_>) -> Result<PrivateKey> {
    let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der)
        .map_err(|e| Error::bad_file(path, format!("damaged encrypted PKCS#8 key: {e}")))?;
    let secret = pass()?;
    let doc = info
        .decrypt(secret.as_bytes())
        .map_err(|_| Error::bad_file(path, "wrong passphrase (or damaged encrypted key)"))?;
    let der = Zeroizing::new(doc.as_bytes().to_vec());
    from_pkcs8(path, &der)
}
