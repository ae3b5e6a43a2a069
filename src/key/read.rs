//! Reading private keys from files made by certmesh or other tools: PEM or DER; PKCS#8,
//! PKCS#1 or SEC1; unencrypted, encrypted PKCS#8, or legacy-encrypted PEM.
//!
//! The passphrase is asked for through a callback, and only when the file turns out to be
//! encrypted with a scheme certmesh can decrypt, so an unencrypted key never triggers a
//! prompt and an unsupported one fails before the operator types anything.

use std::path::Path;

use zeroize::Zeroizing;

use super::detect::{self, Body, Plain};
use super::pbe::{DecryptError, EncryptedKey};
use super::{traditional, Encoding, KeyFormat, PrivateKey};
use crate::pass::Secret;
use crate::{Error, Result};

/// Supplies a passphrase when (and only when) a key turns out to be encrypted.
pub type PassPrompt<'a> = &'a mut dyn FnMut() -> Result<Secret>;

/// A key together with what the file it came from looked like.
#[derive(Debug)]
pub struct LoadedKey {
    /// The key.
    pub key: PrivateKey,
    /// PEM or DER.
    pub encoding: Encoding,
    /// `PKCS#8`, `PKCS#1` or `SEC1`: the encoding of the key itself.
    pub format: &'static str,
    /// How the file was encrypted, e.g. "legacy PEM DES-EDE3-CBC"; `None` when it was not.
    pub encryption: Option<String>,
}

/// Reads a private key from `data` (the content of `path`, which is named in errors).
pub fn read_private_key(path: &Path, data: &[u8], pass: PassPrompt<'_>) -> Result<PrivateKey> {
    load_private_key(path, data, pass).map(|k| k.key)
}

impl LoadedKey {
    /// The input's key format, for writing the key back out the way it came.
    pub fn key_format(&self) -> KeyFormat {
        if self.format == Plain::Pkcs8.name() {
            KeyFormat::Pkcs8
        } else {
            KeyFormat::Traditional
        }
    }
}

/// As [`read_private_key`], also reporting the file's encoding and encryption.
pub fn load_private_key(path: &Path, data: &[u8], pass: PassPrompt<'_>) -> Result<LoadedKey> {
    let file = detect::detect(data).map_err(|p| Error::bad_file(path, p))?;
    let (key, format, encryption) = match file.body {
        Body::Plain(plain, der) => (from_plain(path, plain, &der)?, plain.name(), None),
        Body::EncryptedPkcs8(der) => {
            let enc = EncryptedKey::parse(&der).map_err(|p| Error::bad_file(path, p))?;
            let scheme = enc.describe();
            if let Some(reason) = enc.unsupported_reason() {
                return Err(Error::bad_file(path, reason));
            }
            let secret = pass()?;
            let pkcs8 = enc.decrypt(&secret).map_err(|e| match e {
                DecryptError::BadPadding => wrong_passphrase(path, &scheme),
                DecryptError::Damaged(p) => Error::bad_file(path, format!("{scheme}: {p}")),
            })?;
            let key = decrypted(path, &scheme, Plain::Pkcs8, &pkcs8)?;
            (key, Plain::Pkcs8.name(), Some(scheme))
        }
        Body::Legacy(plain, dek, body) => {
            let scheme = format!("legacy PEM {}", dek.cipher_name);
            if let Some(reason) = dek.unsupported_reason() {
                return Err(Error::bad_file(path, reason));
            }
            let secret = pass()?;
            let der = dek
                .decrypt(&secret, &body)
                .map_err(|_| wrong_passphrase(path, &scheme))?;
            let key = decrypted(path, &scheme, plain, &der)?;
            (key, plain.name(), Some(scheme))
        }
    };
    Ok(LoadedKey {
        key,
        encoding: file.encoding,
        format,
        encryption,
    })
}

/// Reads and parses the file at `path`.
pub fn load_private_key_file(path: &Path, pass: PassPrompt<'_>) -> Result<LoadedKey> {
    let data = Zeroizing::new(crate::fsio::read(path)?);
    load_private_key(path, &data, pass)
}

fn from_plain(path: &Path, plain: Plain, der: &[u8]) -> Result<PrivateKey> {
    let pkcs8 = traditional::to_pkcs8(plain, der).map_err(|p| Error::bad_file(path, p))?;
    PrivateKey::from_pkcs8_der(&pkcs8).map_err(|e| Error::bad_file(path, e.to_string()))
}

/// Parses decrypted key bytes. A passphrase that happens to yield valid padding (about
/// one in 256 wrong ones) ends here with garbage, so failure is reported as a wrong
/// passphrase or damage rather than as an unsupported key.
fn decrypted(path: &Path, scheme: &str, plain: Plain, der: &[u8]) -> Result<PrivateKey> {
    let structurally_ok = detect::check_der_length(der).is_ok()
        && match plain {
            Plain::Pkcs8 => pkcs8::PrivateKeyInfoRef::try_from(der).is_ok(),
            Plain::Pkcs1 => pkcs1::RsaPrivateKeyRef::try_from(der).is_ok(),
            Plain::Sec1 => sec1::EcPrivateKey::try_from(der).is_ok(),
        };
    if !structurally_ok {
        return Err(Error::WrongPassphrase {
            path: path.to_path_buf(),
            problem: format!("wrong passphrase, or the encrypted data is damaged ({scheme}: the decrypted data is not a key)"),
        });
    }
    from_plain(path, plain, der)
}

fn wrong_passphrase(path: &Path, scheme: &str) -> Error {
    Error::WrongPassphrase {
        path: path.to_path_buf(),
        problem: format!("wrong passphrase ({scheme}: decryption failed its padding check; if the passphrase is right, the file is damaged)"),
    }
}
