//! Private keys: generation, and the encodings certmesh reads and writes.
//!
//! Inside certmesh a key is always held as PKCS#8 DER in zeroizing memory; every other
//! encoding is converted at the edge. That keeps one representation for signing,
//! matching and export, whatever tool made the file.

mod armor;
pub(crate) mod cbc_cipher;
mod describe;
mod detect;
#[doc(hidden)]
pub mod fuzzing;
mod legacy;
mod pair;
pub(crate) mod pbe;
mod read;
mod signer;
pub mod token;
mod traditional;
mod write;

pub use describe::{describe_key_file, KeyFileInfo};

/// Whether `data` is a private key file in a form certmesh recognises (PEM or DER;
/// PKCS#8, encrypted PKCS#8, PKCS#1, SEC1), whatever its state.
pub fn looks_like_key(data: &[u8]) -> bool {
    detect::detect(data).is_ok()
}
pub use pair::{match_certificate, CertMatch};
pub use read::{load_private_key, load_private_key_file, read_private_key, LoadedKey, PassPrompt};
pub use signer::KeySigner;
pub use write::{KeyOutput, Protection};

use rcgen::{PublicKeyData, SignatureAlgorithm};
use zeroize::Zeroizing;

use crate::pass::Secret;
use crate::x509::{self, Curve, KeyDesc, KeyType};
use crate::{Error, Result};

/// Key algorithms certmesh generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyAlg {
    P256,
    P384,
    Ed25519,
    Rsa2048,
    Rsa3072,
    Rsa4096,
}

impl KeyAlg {
    /// Every accepted name, for help texts and error messages.
    pub const NAMES: &'static str = "p256, p384, ed25519, rsa2048, rsa3072, rsa4096";

    /// Parses a key-type name. Known-weak choices (RSA below 2048 bits) are refused with
    /// a reason; unknown names are usage errors.
    pub fn parse(name: &str) -> Result<Self> {
        let n = name.to_ascii_lowercase().replace(['-', '_'], "");
        Ok(match n.as_str() {
            "p256" | "ecp256" | "ecdsap256" | "prime256v1" | "secp256r1" => KeyAlg::P256,
            "p384" | "ecp384" | "ecdsap384" | "secp384r1" => KeyAlg::P384,
            "ed25519" => KeyAlg::Ed25519,
            "rsa2048" | "rsa" => KeyAlg::Rsa2048,
            "rsa3072" => KeyAlg::Rsa3072,
            "rsa4096" => KeyAlg::Rsa4096,
            _ => {
                if let Some(bits) = n.strip_prefix("rsa").and_then(|b| b.parse::<u32>().ok()) {
                    if bits < x509::MIN_RSA_BITS {
                        return Err(Error::Refused(format!(
                            "refusing RSA-{bits}: RSA keys below 2048 bits can be factored; use rsa2048 or larger, or p256"
                        )));
                    }
                }
                return Err(Error::UnknownKeyType {
                    name: name.to_string(),
                    expected: Self::NAMES,
                });
            }
        })
    }

    /// The canonical name, as accepted by [`KeyAlg::parse`].
    pub fn name(self) -> &'static str {
        match self {
            KeyAlg::P256 => "p256",
            KeyAlg::P384 => "p384",
            KeyAlg::Ed25519 => "ed25519",
            KeyAlg::Rsa2048 => "rsa2048",
            KeyAlg::Rsa3072 => "rsa3072",
            KeyAlg::Rsa4096 => "rsa4096",
        }
    }
}

impl KeyAlg {
    /// The choice that generates keys of the shape `d` (an RSA key of another size: the
    /// next size up, at most 4096); `None` for shapes certmesh cannot generate.
    pub fn of_shape(d: &KeyDesc) -> Option<KeyAlg> {
        Some(match (&d.kind, &d.curve, d.bits) {
            (KeyType::Ec, Some(Curve::P256), _) => KeyAlg::P256,
            (KeyType::Ec, Some(Curve::P384), _) => KeyAlg::P384,
            (KeyType::Ed25519, _, _) => KeyAlg::Ed25519,
            (KeyType::Rsa, _, b) if b <= 2048 => KeyAlg::Rsa2048,
            (KeyType::Rsa, _, b) if b <= 3072 => KeyAlg::Rsa3072,
            (KeyType::Rsa, _, _) => KeyAlg::Rsa4096,
            _ => return None,
        })
    }

    /// The shape of keys of this type, to compare with an existing key.
    pub fn describe(self) -> KeyDesc {
        let (kind, bits, curve) = match self {
            KeyAlg::P256 => (KeyType::Ec, 256, Some(Curve::P256)),
            KeyAlg::P384 => (KeyType::Ec, 384, Some(Curve::P384)),
            KeyAlg::Ed25519 => (KeyType::Ed25519, 256, None),
            KeyAlg::Rsa2048 => (KeyType::Rsa, 2048, None),
            KeyAlg::Rsa3072 => (KeyType::Rsa, 3072, None),
            KeyAlg::Rsa4096 => (KeyType::Rsa, 4096, None),
        };
        KeyDesc { kind, bits, curve }
    }
}

impl std::fmt::Display for KeyAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Digest for signatures made with RSA keys. ECDSA keys use the digest that matches their
/// curve, and Ed25519 has its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Digest {
    #[default]
    Sha256,
    Sha384,
    Sha512,
}

impl Digest {
    /// Parses a digest name; SHA-1 and MD5 are refused because collisions against them
    /// are practical.
    pub fn parse(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().replace('-', "").as_str() {
            "sha256" => Ok(Digest::Sha256),
            "sha384" => Ok(Digest::Sha384),
            "sha512" => Ok(Digest::Sha512),
            "sha1" | "md5" | "md2" | "md4" => Err(Error::Refused(format!(
                "refusing {name} signatures: collisions are practical; use sha256, sha384 or sha512"
            ))),
            _ => Err(Error::Usage(format!(
                "unknown digest '{name}': expected sha256, sha384 or sha512"
            ))),
        }
    }
}

/// PEM text or binary DER.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Encoding {
    #[serde(rename = "PEM")]
    Pem,
    #[serde(rename = "DER")]
    Der,
}

impl Encoding {
    /// Parses `pem` or `der` (case-insensitive).
    pub fn parse(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "pem" => Ok(Encoding::Pem),
            "der" => Ok(Encoding::Der),
            _ => Err(Error::Usage(format!(
                "unknown encoding '{name}': expected pem or der"
            ))),
        }
    }
}

impl std::fmt::Display for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Encoding::Pem => "PEM",
            Encoding::Der => "DER",
        })
    }
}

/// How the key itself is encoded inside the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyFormat {
    /// PKCS#8 `PrivateKeyInfo` (`BEGIN PRIVATE KEY`): one format for every key type.
    #[default]
    Pkcs8,
    /// PKCS#1 (`BEGIN RSA PRIVATE KEY`) for RSA, SEC1 (`BEGIN EC PRIVATE KEY`) for EC:
    /// what OpenSSL 1.x wrote and some consumers still require.
    Traditional,
}

impl KeyFormat {
    /// Parses `pkcs8` or `traditional` (also `pkcs1`, `sec1`).
    pub fn parse(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().replace(['#', '-'], "").as_str() {
            "pkcs8" => Ok(KeyFormat::Pkcs8),
            "traditional" | "pkcs1" | "sec1" => Ok(KeyFormat::Traditional),
            _ => Err(Error::Usage(format!(
                "unknown key format '{name}': expected pkcs8 or traditional"
            ))),
        }
    }
}

/// Ciphers certmesh encrypts keys with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cipher {
    /// AES-256-CBC: the default.
    #[default]
    Aes256,
    /// AES-128-CBC.
    Aes128,
    /// DES-EDE3-CBC (3DES), for consumers that know nothing newer.
    Des3,
}

impl Cipher {
    /// Parses `aes256`, `aes128` or `des3`.
    pub fn parse(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "aes256" | "aes256cbc" => Ok(Cipher::Aes256),
            "aes128" | "aes128cbc" => Ok(Cipher::Aes128),
            "des3" | "3des" | "desede3" | "desede3cbc" => Ok(Cipher::Des3),
            "des" | "descbc" => Err(Error::Refused(
                "refusing single DES: its 56-bit key is brute-forced in hours; use aes256, aes128 or des3".into(),
            )),
            _ => Err(Error::Usage(format!(
                "unknown cipher '{name}': expected aes256, aes128 or des3"
            ))),
        }
    }

    /// The OpenSSL name, e.g. `AES-256-CBC`.
    pub fn name(self) -> &'static str {
        self.cbc().name()
    }

    fn cbc(self) -> cbc_cipher::CbcCipher {
        match self {
            Cipher::Aes256 => cbc_cipher::CbcCipher::Aes256,
            Cipher::Aes128 => cbc_cipher::CbcCipher::Aes128,
            Cipher::Des3 => cbc_cipher::CbcCipher::DesEde3,
        }
    }
}

/// A private key, held as PKCS#8 DER.
pub struct PrivateKey {
    pkcs8: Zeroizing<Vec<u8>>,
    desc: KeyDesc,
    spki: Vec<u8>,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({})", self.desc)
    }
}

/// PBKDF2-HMAC-SHA256 iterations for keys certmesh encrypts (OWASP's 2023 figure).
pub const PBKDF2_ITERATIONS: u32 = 600_000;

impl PrivateKey {
    /// Generates a new key with the operating system's randomness.
    pub fn generate(alg: KeyAlg) -> Result<Self> {
        // Made by aws-lc-rs directly: its PKCS#8 document is wiped when dropped, where
        // rcgen's generated key pair keeps a plain copy.
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::rsa::KeySize;
        use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair};
        let failed = |_| Error::Crypto(format!("{alg} key generation failed"));
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let rsa = |size| -> Result<Self> {
            let kp = aws_lc_rs::rsa::KeyPair::generate(size).map_err(failed)?;
            let der = kp.as_der().map_err(failed)?;
            Self::from_pkcs8_der(der.as_ref())
        };
        match alg {
            KeyAlg::P256 | KeyAlg::P384 => {
                let curve = if alg == KeyAlg::P256 {
                    &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING
                } else {
                    &aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1_SIGNING
                };
                let doc = EcdsaKeyPair::generate_pkcs8(curve, &rng).map_err(failed)?;
                Self::from_pkcs8_der(doc.as_ref())
            }
            KeyAlg::Ed25519 => {
                let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(failed)?;
                Self::from_pkcs8_der(doc.as_ref())
            }
            KeyAlg::Rsa2048 => rsa(KeySize::Rsa2048),
            KeyAlg::Rsa3072 => rsa(KeySize::Rsa3072),
            KeyAlg::Rsa4096 => rsa(KeySize::Rsa4096),
        }
    }

    /// Adopts an unencrypted PKCS#8 DER key, checking that the crypto provider can use it.
    /// When it cannot, the error says why: the key type or curve, the RSA size, or damage.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        let info = pkcs8::PrivateKeyInfoRef::try_from(der).map_err(|e| {
            let why = match e {
                pkcs8::Error::Asn1(d) => detect::der_problem(&d),
                other => x509::short_err(&other),
            };
            Error::Crypto(format!("damaged PKCS#8 private key ({why})"))
        })?;
        match KeySigner::detect(der) {
            Some(kp) => {
                use rcgen::PublicKeyData;
                let spki = kp.subject_public_key_info();
                let desc = crate::x509::describe_spki_der(&spki)?;
                Ok(PrivateKey {
                    pkcs8: pkcs8_v1(der)?,
                    desc,
                    spki,
                })
            }
            None => match Self::weak_rsa(der, &info) {
                Some(key) => Ok(key),
                None => Err(Error::Crypto(rejection_reason(&info))),
            },
        }
    }

    /// RSA keys below 2048 bits (the seeds' `genrsa -des3 ... 1024`) are outside what
    /// the crypto provider loads, yet operators must still be able to strip, convert,
    /// match and inspect them. Such a key is held for those uses only: its public half is
    /// derived from the PKCS#1 values here, and [`PrivateKey::signing_key`] refuses it.
    fn weak_rsa(der: &[u8], info: &pkcs8::PrivateKeyInfoRef<'_>) -> Option<Self> {
        use pkcs8::der::asn1::BitStringRef;
        use pkcs8::der::Encode;
        if info.algorithm.oid != traditional::RSA_ENCRYPTION {
            return None;
        }
        let rsa = pkcs1::RsaPrivateKeyRef::try_from(info.private_key).ok()?;
        let public = pkcs1::RsaPublicKeyRef {
            modulus: rsa.modulus,
            public_exponent: rsa.public_exponent,
        }
        .to_der()
        .ok()?;
        // The SubjectPublicKeyInfo as certificates carry it: rsaEncryption with NULL
        // parameters, whatever form the private key's AlgorithmIdentifier took.
        let spki = pkcs8::spki::SubjectPublicKeyInfoRef {
            algorithm: pkcs8::spki::AlgorithmIdentifierRef {
                oid: traditional::RSA_ENCRYPTION,
                parameters: Some(pkcs8::der::asn1::AnyRef::NULL),
            },
            subject_public_key: BitStringRef::from_bytes(&public).ok()?,
        }
        .to_der()
        .ok()?;
        let desc = x509::describe_spki_der(&spki).ok()?;
        if desc.kind != KeyType::Rsa || !(512..2048).contains(&desc.bits) {
            return None;
        }
        Some(PrivateKey {
            pkcs8: Zeroizing::new(der.to_vec()),
            desc,
            spki,
        })
    }

    /// The key as unencrypted PKCS#8 DER.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public half as DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> &[u8] {
        &self.spki
    }

    /// Type and size of the key.
    pub fn describe(&self) -> &KeyDesc {
        &self.desc
    }

    /// Unencrypted PKCS#8 PEM (`BEGIN PRIVATE KEY`).
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        armor::encode("PRIVATE KEY", &[], &self.pkcs8)
    }

    /// Encrypted PKCS#8 PEM (`BEGIN ENCRYPTED PRIVATE KEY`): PBES2 with
    /// PBKDF2-HMAC-SHA256 and AES-256-CBC, which OpenSSL 1.0.2+ and Java read.
    pub fn to_encrypted_pkcs8_pem(
        &self,
        pass: &Secret,
        iterations: u32,
    ) -> Result<Zeroizing<String>> {
        let der = pbe::encrypt(&self.pkcs8, pass, Cipher::Aes256, iterations)?;
        Ok(armor::encode("ENCRYPTED PRIVATE KEY", &[], &der))
    }

    /// SHA-256 of the public key (DER SubjectPublicKeyInfo), as colon-separated hex: the
    /// same value for the key, its CSR and its certificates.
    pub fn public_key_sha256(&self) -> String {
        x509::colon_hex(&x509::sha256(&self.spki))
    }

    /// A signing key pair for rcgen. RSA keys sign with `digest`; EC and Ed25519 keys use
    /// the digest their curve calls for.
    pub fn signing_key(&self, digest: Digest) -> Result<KeySigner> {
        if self.desc.is_weak_rsa() {
            return Err(Error::Refused(format!(
                "RSA-{} keys are too weak to sign with (at least 2048 bits are needed)",
                self.desc.bits
            )));
        }
        let alg: &'static SignatureAlgorithm = match (&self.desc.kind, &self.desc.curve) {
            (KeyType::Rsa, _) => match digest {
                Digest::Sha256 => &rcgen::PKCS_RSA_SHA256,
                Digest::Sha384 => &rcgen::PKCS_RSA_SHA384,
                Digest::Sha512 => &rcgen::PKCS_RSA_SHA512,
            },
            (KeyType::Ec, Some(Curve::P256)) => &rcgen::PKCS_ECDSA_P256_SHA256,
            (KeyType::Ec, Some(Curve::P384)) => &rcgen::PKCS_ECDSA_P384_SHA384,
            (KeyType::Ec, Some(Curve::P521)) => &rcgen::PKCS_ECDSA_P521_SHA512,
            (KeyType::Ed25519, _) => &rcgen::PKCS_ED25519,
            _ => {
                return Err(Error::Crypto(format!(
                    "{} keys cannot sign certificates here",
                    self.desc
                )))
            }
        };
        KeySigner::from_pkcs8(&self.pkcs8, alg)
            .ok_or_else(|| Error::Crypto(format!("cannot use {} key for signing", self.desc)))
    }
}

/// Why the crypto provider refused a structurally valid PKCS#8 key.
fn rejection_reason(info: &pkcs8::PrivateKeyInfoRef<'_>) -> String {
    use traditional::{curve_name, EC_PUBLIC_KEY, ED25519, RSA_ENCRYPTION};
    let oid = info.algorithm.oid;
    if oid == RSA_ENCRYPTION {
        return match pkcs1::RsaPrivateKeyRef::try_from(info.private_key) {
            Ok(rsa) => {
                let bits = x509::bit_length(rsa.modulus.as_bytes());
                if !(2048..=8192).contains(&bits) {
                    format!("RSA {bits}-bit keys are not supported (RSA keys must have 2048 to 8192 bits)")
                } else {
                    format!("damaged RSA {bits} private key: its values are inconsistent")
                }
            }
            Err(_) => {
                "damaged RSA private key: the PKCS#1 structure inside the PKCS#8 is invalid".into()
            }
        };
    }
    if oid == EC_PUBLIC_KEY {
        return match info.algorithm.parameters_oid() {
            Ok(c) if [traditional::P256, traditional::P384, traditional::P521].contains(&c) => {
                format!(
                    "damaged EC {} private key: not a valid key on that curve",
                    curve_name(&c)
                )
            }
            Ok(c) => format!(
                "EC curve {} is not supported (certmesh uses P-256, P-384 and P-521)",
                curve_name(&c)
            ),
            Err(_) => traditional::EXPLICIT_PARAMETERS.into(),
        };
    }
    if oid == ED25519 {
        return "damaged Ed25519 private key".into();
    }
    let name = match oid.to_string().as_str() {
        "1.2.840.10040.4.1" => "DSA".to_string(),
        "1.3.101.110" => "X25519".to_string(),
        "1.3.101.111" => "X448".to_string(),
        "1.3.101.113" => "Ed448".to_string(),
        "1.2.840.113549.1.1.10" => "RSASSA-PSS".to_string(),
        "1.2.840.113549.1.3.1" | "1.2.840.10046.2.1" => "Diffie-Hellman".to_string(),
        "1.2.156.10197.1.301" => "SM2".to_string(),
        other => format!("algorithm {other}"),
    };
    format!("{name} keys are not supported (certmesh uses RSA, EC P-256/P-384/P-521 and Ed25519)")
}

/// Re-encodes PKCS#8 v2 (RFC 5958, with the public key attached, as aws-lc writes
/// Ed25519 keys) as v1, because OpenSSL 3.0 and Java refuse v2 files.
fn pkcs8_v1(der: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    use pkcs8::der::Encode;
    let info = pkcs8::PrivateKeyInfoRef::try_from(der)
        .map_err(|e| Error::Crypto(format!("PKCS#8 encoding: {e}")))?;
    if info.public_key.is_none() {
        return Ok(Zeroizing::new(der.to_vec()));
    }
    let v1 = pkcs8::PrivateKeyInfoRef::new(info.algorithm, info.private_key);
    v1.to_der()
        .map(Zeroizing::new)
        .map_err(|e| Error::Crypto(format!("PKCS#8 encoding: {e}")))
}

/// A CA's signing key: read from its key file into memory, or held in a PKCS#11 token.
/// Every signing path (issue, sign, CRLs, intermediates, rollover) takes this one type,
/// so where the key lives is decided once, when the signer is loaded.
pub enum CaKey {
    Memory(KeySigner),
    Token(token::TokenKey),
}

impl std::fmt::Debug for CaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaKey::Memory(_) => f.write_str("CaKey::Memory"),
            CaKey::Token(k) => write!(f, "CaKey::{k:?}"),
        }
    }
}

impl CaKey {
    /// The SubjectPublicKeyInfo, DER: what the CA certificate must carry.
    pub fn spki(&self) -> Vec<u8> {
        self.subject_public_key_info()
    }
}

impl PublicKeyData for CaKey {
    fn der_bytes(&self) -> &[u8] {
        match self {
            CaKey::Memory(k) => k.der_bytes(),
            CaKey::Token(k) => k.der_bytes(),
        }
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        match self {
            CaKey::Memory(k) => PublicKeyData::algorithm(k),
            CaKey::Token(k) => k.algorithm(),
        }
    }
}

impl rcgen::SigningKey for CaKey {
    fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
        match self {
            CaKey::Memory(k) => k.sign(msg),
            CaKey::Token(k) => k.sign(msg),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names() {
        assert_eq!(KeyAlg::parse("P-256").unwrap(), KeyAlg::P256);
        assert_eq!(KeyAlg::parse("rsa3072").unwrap(), KeyAlg::Rsa3072);
        assert!(matches!(KeyAlg::parse("rsa1024"), Err(Error::Refused(_))));
        assert!(matches!(
            KeyAlg::parse("dsa"),
            Err(Error::UnknownKeyType { name, .. }) if name == "dsa"
        ));
        assert!(matches!(Digest::parse("sha1"), Err(Error::Refused(_))));
    }

    #[test]
    fn generate_and_encrypt_round_trip() {
        let k = PrivateKey::generate(KeyAlg::P256).unwrap();
        assert_eq!(k.describe().to_string(), "EC P-256");
        let pass = Secret::new("pw".into());
        let pem = k.to_encrypted_pkcs8_pem(&pass, 1000).unwrap();
        let back = read_private_key(std::path::Path::new("k.pem"), pem.as_bytes(), &mut || {
            Ok(pass.clone())
        })
        .unwrap();
        assert_eq!(back.pkcs8_der(), k.pkcs8_der());
        let wrong = read_private_key(std::path::Path::new("k.pem"), pem.as_bytes(), &mut || {
            Ok(Secret::new("bad".into()))
        });
        let wrong = wrong.err().unwrap();
        assert!(wrong.to_string().contains("wrong passphrase"));
        assert!(
            matches!(&wrong, Error::WrongPassphrase { path, .. } if path.as_os_str() == "k.pem"),
            "{wrong:?}"
        );
    }
}
