//! Writing keys in the form a consumer asks for: PKCS#8 or traditional, PEM or DER,
//! unencrypted, encrypted PKCS#8 (PBES2), or legacy-encrypted PEM.
//!
//! Only combinations that exist in the wild are accepted; asking for another (an
//! encrypted PKCS#1 DER file, say) is a usage error rather than a file nobody can read.

use zeroize::Zeroizing;

use super::detect::Plain;
use super::{armor, legacy, pbe, traditional, Cipher, Encoding, KeyFormat, PrivateKey};
use crate::pass::Secret;
use crate::{Error, Result};

/// How a written key is protected.
#[derive(Debug, Clone, Copy)]
pub enum Protection<'a> {
    /// Not encrypted.
    None,
    /// Encrypted PKCS#8: PBES2 with PBKDF2-HMAC-SHA256 and `cipher`.
    Pkcs8 {
        pass: &'a Secret,
        cipher: Cipher,
        iterations: u32,
    },
    /// OpenSSL 1.x legacy PEM (`Proc-Type: 4,ENCRYPTED`) around a PKCS#1/SEC1 key. Its
    /// key derivation is a single MD5, so this is for consumers that read nothing else.
    LegacyPem { pass: &'a Secret, cipher: Cipher },
}

/// What to write.
#[derive(Debug, Clone, Copy)]
pub struct KeyOutput<'a> {
    pub encoding: Encoding,
    pub format: KeyFormat,
    pub protection: Protection<'a>,
}

impl PrivateKey {
    /// Encodes the key as `out` describes. Fails with a usage error for combinations
    /// that no tool reads, and for traditional output of key types that have none.
    pub fn encode(&self, out: &KeyOutput<'_>) -> Result<Zeroizing<Vec<u8>>> {
        let pem = out.encoding == Encoding::Pem;
        match (out.protection, out.format) {
            (Protection::None, KeyFormat::Pkcs8) => Ok(if pem {
                text(armor::encode("PRIVATE KEY", &[], &self.pkcs8))
            } else {
                self.pkcs8.clone()
            }),
            (Protection::None, KeyFormat::Traditional) => {
                let (plain, der) = traditional::from_pkcs8(&self.pkcs8, &self.spki)?;
                Ok(if pem { text(armor::encode(label(plain), &[], &der)) } else { der })
            }
            (
                Protection::Pkcs8 {
                    pass,
                    cipher,
                    iterations,
                },
                KeyFormat::Pkcs8,
            ) => {
                let der = pbe::encrypt(&self.pkcs8, pass, cipher, iterations)?;
                Ok(if pem {
                    text(armor::encode("ENCRYPTED PRIVATE KEY", &[], &der))
                } else {
                    Zeroizing::new(der)
                })
            }
            (Protection::Pkcs8 { .. }, KeyFormat::Traditional) => Err(Error::Usage(
                "an encrypted traditional (PKCS#1/SEC1) key exists only as legacy PEM; ask for legacy PEM encryption or PKCS#8".into(),
            )),
            (Protection::LegacyPem { .. }, _) if !pem => Err(Error::Usage(
                "legacy PEM encryption exists only in PEM; for DER use encrypted PKCS#8".into(),
            )),
            (Protection::LegacyPem { .. }, KeyFormat::Pkcs8) => Err(Error::Usage(
                "legacy PEM encryption applies to traditional (PKCS#1/SEC1) keys; use encrypted PKCS#8 instead".into(),
            )),
            (Protection::LegacyPem { pass, cipher }, KeyFormat::Traditional) => {
                let (plain, der) = traditional::from_pkcs8(&self.pkcs8, &self.spki)?;
                let (dek_info, body) = legacy::encrypt(cipher.cbc(), pass, &der)?;
                let headers = [("Proc-Type", "4,ENCRYPTED".to_string()), ("DEK-Info", dek_info)];
                Ok(text(armor::encode(label(plain), &headers, &body)))
            }
        }
    }
}

fn label(plain: Plain) -> &'static str {
    match plain {
        Plain::Pkcs8 => "PRIVATE KEY",
        Plain::Pkcs1 => "RSA PRIVATE KEY",
        Plain::Sec1 => "EC PRIVATE KEY",
    }
}

fn text(s: Zeroizing<String>) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(s.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{read_private_key, KeyAlg};
    use std::path::Path;

    fn read_back(bytes: &[u8], pass: &str) -> PrivateKey {
        let pass = Secret::new(pass.into());
        read_private_key(Path::new("k"), bytes, &mut || Ok(pass.clone())).unwrap()
    }

    #[test]
    fn every_supported_combination_reads_back() {
        let pass = Secret::new("pw".into());
        for alg in [KeyAlg::P256, KeyAlg::P384, KeyAlg::Rsa2048] {
            let key = PrivateKey::generate(alg).unwrap();
            let protections = [
                Protection::None,
                Protection::Pkcs8 {
                    pass: &pass,
                    cipher: Cipher::Aes128,
                    iterations: 1000,
                },
                Protection::LegacyPem {
                    pass: &pass,
                    cipher: Cipher::Des3,
                },
            ];
            for protection in protections {
                for format in [KeyFormat::Pkcs8, KeyFormat::Traditional] {
                    for encoding in [Encoding::Pem, Encoding::Der] {
                        let out = KeyOutput {
                            encoding,
                            format,
                            protection,
                        };
                        match key.encode(&out) {
                            Ok(bytes) => {
                                let back = read_back(&bytes, "pw");
                                assert_eq!(
                                    back.public_key_der(),
                                    key.public_key_der(),
                                    "{alg} {out:?}"
                                );
                            }
                            Err(e) => assert!(matches!(e, Error::Usage(_)), "{alg} {out:?}: {e}"),
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn traditional_labels_and_ed25519_refusal() {
        let out = KeyOutput {
            encoding: Encoding::Pem,
            format: KeyFormat::Traditional,
            protection: Protection::None,
        };
        let ec = PrivateKey::generate(KeyAlg::P256)
            .unwrap()
            .encode(&out)
            .unwrap();
        assert!(ec.starts_with(b"-----BEGIN EC PRIVATE KEY-----\n"));
        let err = PrivateKey::generate(KeyAlg::Ed25519)
            .unwrap()
            .encode(&out)
            .unwrap_err();
        assert!(
            err.to_string().contains("Ed25519 keys have no traditional"),
            "{err}"
        );
    }
}
