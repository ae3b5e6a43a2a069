//! Describing a key file — encoding, key type and size, whether and how it is encrypted,
//! the public-key fingerprint — without asking for a passphrase it does not need.
//!
//! `certmesh inspect` shows this; it is also what an operator needs to know before
//! deciding how to convert a key for a consumer.

use std::path::Path;

use super::detect::{self, Body, Plain};
use super::pbe::EncryptedKey;
use super::read::{load_private_key, LoadedKey, PassPrompt};
use super::Encoding;
use crate::x509::{Curve, KeyType};
use crate::{Error, Result};

/// What a key file holds. Fields that need the decrypted key are `None` for an encrypted
/// file described without a passphrase.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyFileInfo {
    /// `PEM` or `DER`.
    pub encoding: Encoding,
    /// Encoding of the key itself: `PKCS#8`, `PKCS#1` or `SEC1`.
    pub format: String,
    /// Whether the file is encrypted.
    pub encrypted: bool,
    /// How, e.g. `legacy PEM DES-EDE3-CBC` or
    /// `PKCS#8 PBES2 PBKDF2-HMAC-SHA256 AES-256-CBC, 2048 iterations`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption: Option<String>,
    /// For an encrypted file: whether certmesh can decrypt it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_supported: Option<bool>,
    /// For an encrypted file certmesh cannot decrypt: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsupported_reason: Option<String>,
    /// `RSA`, `EC` or `Ed25519`; known without decryption for legacy PEM.
    #[serde(rename = "key_type", skip_serializing_if = "Option::is_none")]
    pub key_type: Option<KeyType>,
    /// Modulus size for RSA, field size for EC, 256 for Ed25519.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bits: Option<u32>,
    /// Named curve for EC keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curve: Option<Curve>,
    /// SHA-256 of the DER SubjectPublicKeyInfo, colon-separated hex; the same value the
    /// key's certificates and CSRs have.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key_sha256: Option<String>,
}

impl std::fmt::Display for KeyFileInfo {
    /// One line, e.g. "RSA 2048 private key, PKCS#1 PEM, encrypted (legacy PEM DES-EDE3-CBC)".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.key_type, self.bits, &self.curve) {
            (Some(t), _, Some(c)) => write!(f, "{t} {c} private key")?,
            (Some(t @ KeyType::Ed25519), _, None) => write!(f, "{t} private key")?,
            (Some(t), Some(b), None) => write!(f, "{t} {b} private key")?,
            (Some(t), None, None) => write!(f, "{t} private key")?,
            (None, _, _) => f.write_str("private key")?,
        }
        write!(f, ", {} {}", self.format, self.encoding)?;
        match &self.encryption {
            Some(e) if self.encryption_supported == Some(false) => {
                write!(f, ", encrypted ({e}; not supported)")
            }
            Some(e) => write!(f, ", encrypted ({e})"),
            None => f.write_str(", not encrypted"),
        }
    }
}

/// Describes the key file `path` whose content is `data`.
///
/// An unencrypted key is described in full. An encrypted one is described from its
/// headers unless `pass` is given, in which case it is decrypted for the key type, size
/// and fingerprint; a wrong passphrase is then an error. `pass` is never called for an
/// unencrypted file or an encryption certmesh cannot undo.
pub fn describe_key_file(
    path: &Path,
    data: &[u8],
    pass: Option<PassPrompt<'_>>,
) -> Result<KeyFileInfo> {
    let file = detect::detect(data).map_err(|p| Error::bad_file(path, p))?;
    let (format, encryption, reason, type_hint) = match &file.body {
        Body::Plain(plain, _) => (*plain, None, None, None),
        Body::EncryptedPkcs8(der) => {
            let enc = EncryptedKey::parse(der).map_err(|p| Error::bad_file(path, p))?;
            (
                Plain::Pkcs8,
                Some(enc.describe()),
                enc.unsupported_reason().map(str::to_string),
                None,
            )
        }
        Body::Legacy(plain, dek, _) => {
            let hint = match plain {
                Plain::Pkcs1 => Some(KeyType::Rsa),
                Plain::Sec1 => Some(KeyType::Ec),
                Plain::Pkcs8 => None,
            };
            (
                *plain,
                Some(format!("legacy PEM {}", dek.cipher_name)),
                dek.unsupported_reason(),
                hint,
            )
        }
    };
    let mut info = KeyFileInfo {
        encoding: file.encoding,
        format: format.name().to_string(),
        encrypted: encryption.is_some(),
        encryption_supported: encryption.as_ref().map(|_| reason.is_none()),
        encryption,
        unsupported_reason: reason,
        key_type: type_hint,
        bits: None,
        curve: None,
        public_key_sha256: None,
    };
    let loaded = match (&info.encryption, pass) {
        (None, _) => Some(load_private_key(path, data, &mut || {
            Err(Error::Secret("no passphrase needed".into()))
        })?),
        (Some(_), Some(pass)) if info.unsupported_reason.is_none() => {
            Some(load_private_key(path, data, pass)?)
        }
        _ => None,
    };
    if let Some(LoadedKey { key, .. }) = loaded {
        let desc = key.describe();
        info.key_type = Some(desc.kind.clone());
        info.bits = Some(desc.bits);
        info.curve = desc.curve.clone();
        info.public_key_sha256 = Some(key.public_key_sha256());
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{Cipher, KeyAlg, KeyFormat, KeyOutput, PrivateKey, Protection};
    use crate::pass::Secret;

    #[test]
    fn describes_without_asking_then_with_passphrase() {
        let key = PrivateKey::generate(KeyAlg::P256).unwrap();
        let pass = Secret::new("pw".into());
        let legacy = key
            .encode(&KeyOutput {
                encoding: Encoding::Pem,
                format: KeyFormat::Traditional,
                protection: Protection::LegacyPem {
                    pass: &pass,
                    cipher: Cipher::Aes128,
                },
            })
            .unwrap();
        let info = describe_key_file(Path::new("k.pem"), &legacy, None).unwrap();
        assert_eq!(
            info.to_string(),
            "EC private key, SEC1 PEM, encrypted (legacy PEM AES-128-CBC)"
        );
        assert_eq!(info.public_key_sha256, None);

        let mut asked = 0;
        let mut prompt = || {
            asked += 1;
            Ok(pass.clone())
        };
        let info = describe_key_file(Path::new("k.pem"), &legacy, Some(&mut prompt)).unwrap();
        assert_eq!(asked, 1);
        assert_eq!(info.curve, Some(Curve::P256));
        assert_eq!(info.public_key_sha256, Some(key.public_key_sha256()));

        let plain = key.to_pkcs8_pem();
        let mut never = || -> Result<Secret> { panic!("passphrase asked for an unencrypted key") };
        let info =
            describe_key_file(Path::new("k.pem"), plain.as_bytes(), Some(&mut never)).unwrap();
        assert_eq!(
            info.to_string(),
            "EC P-256 private key, PKCS#8 PEM, not encrypted"
        );
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(json["key_type"], "EC");
        assert_eq!(json["encoding"], "PEM");
    }
}
