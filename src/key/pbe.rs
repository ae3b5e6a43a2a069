//! Encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`): naming the scheme a file uses, decrypting
//! the ones certmesh supports, and writing PBES2.
//!
//! Supported for reading:
//! - PBES2 with PBKDF2 (HMAC-SHA1/224/256/384/512) or scrypt, and AES-128/192/256-CBC,
//!   DES-EDE3-CBC or DES-CBC (via the `pkcs5` crate). This covers OpenSSL 3 `genrsa -des3`,
//!   `genpkey -aes256`, `pkcs8 -topk8 -v2 ...` and OpenSSL 1.x `-v2prf hmacWithSHA1` output.
//! - PKCS#12 PBE `pbeWithSHAAnd3-KeyTripleDES-CBC` and `pbeWithSHAAnd2-KeyTripleDES-CBC`
//!   (`openssl pkcs8 -v1 PBE-SHA1-3DES` / `PBE-SHA1-2DES`), the PBES1 schemes OpenSSL 3
//!   still writes without its legacy provider, via the `pkcs12` crate's key derivation.
//!
//! - PBES2 with PBKDF2 and RC2-CBC (`openssl pkcs8 -v2 rc2-cbc`), read by hand since the
//!   `pkcs5` crate does not parse RC2 parameters.
//! - PKCS#12 PBE `pbeWithSHAAnd40BitRC2-CBC` / `pbeWithSHAAnd128BitRC2-CBC`, which
//!   `openssl pkcs12 -export -legacy` (and OpenSSL 1.x by default) uses for certificates.
//!
//! Named but not supported: PKCS#5 v1.5 PBES1 (`pbeWithMD5AndDES-CBC` and friends: no
//! maintained crate decrypts them, and their 56-bit keys protect nothing) and the PKCS#12
//! RC4 schemes. The file is never sent to the passphrase prompt in those cases.
//!
//! The same code decrypts PKCS#12 bags ([`EncryptedKey::from_parts`]): a shrouded key bag
//! is an `EncryptedPrivateKeyInfo`, and an encrypted SafeContents carries the same
//! AlgorithmIdentifier, so every scheme read in one is read in the other (PBES2 without a
//! PRF, which then defaults to HMAC-SHA1, included). [`reseal`] encrypts again with the
//! scheme a file already uses, for keystore edits that keep a file's algorithms.

use der::asn1::{ObjectIdentifier, OctetStringRef};
use der::{Decode, Encode, Reader, SliceReader, Tagged};
use pkcs5::pbes2::{self, Kdf, Pbkdf2Params, Pbkdf2Prf};
use pkcs8::spki::AlgorithmIdentifierRef;
use zeroize::Zeroizing;

use super::cbc_cipher::CbcCipher;
use super::Cipher;
use crate::pass::Secret;
use crate::{Error, Result};

/// An `EncryptedPrivateKeyInfo`, parsed but not decrypted.
pub(crate) struct EncryptedKey<'a> {
    scheme: Scheme<'a>,
    data: &'a [u8],
}

enum Scheme<'a> {
    Pbes2(pbes2::Parameters),
    Pkcs12 {
        name: &'static str,
        cipher: Pkcs12Cipher,
        salt: &'a [u8],
        iterations: u32,
    },
    /// PBES2 with PBKDF2 and RC2-CBC (`openssl pkcs8 -v2 rc2-cbc`), or with a CBC cipher
    /// and a salt longer than the `pkcs5` crate holds: read here, not by `pkcs5`.
    Pbes2Loose(Pbes2Loose<'a>),
    Unsupported {
        description: String,
        reason: String,
    },
}

/// The parameters of PBES2 with PBKDF2 read without the `pkcs5` crate.
struct Pbes2Loose<'a> {
    salt: &'a [u8],
    iterations: u32,
    prf: &'static str,
    key_len: usize,
    cipher: LooseCipher,
    iv: &'a [u8],
}

#[derive(Clone, Copy)]
enum LooseCipher {
    /// RC2-CBC with this many effective key bits.
    Rc2(usize),
    Cbc(CbcCipher),
}

impl Pbes2Loose<'_> {
    fn describe(&self) -> String {
        match self.cipher {
            LooseCipher::Rc2(bits) => format!(
                "PKCS#8 PBES2 PBKDF2-HMAC-{} RC2-CBC ({bits}-bit), {} iterations",
                self.prf, self.iterations
            ),
            LooseCipher::Cbc(c) => format!(
                "PKCS#8 PBES2 PBKDF2-HMAC-{} {}, {} iterations",
                self.prf,
                c.name(),
                self.iterations
            ),
        }
    }

    fn decrypt(&self, pass: &Secret, data: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        use aws_lc_rs::pbkdf2;
        let alg = match self.prf {
            "SHA1" => pbkdf2::PBKDF2_HMAC_SHA1,
            "SHA256" => pbkdf2::PBKDF2_HMAC_SHA256,
            "SHA384" => pbkdf2::PBKDF2_HMAC_SHA384,
            "SHA512" => pbkdf2::PBKDF2_HMAC_SHA512,
            _ => return None,
        };
        let rounds = std::num::NonZeroU32::new(self.iterations)?;
        let mut key = Zeroizing::new(vec![0u8; self.key_len]);
        pbkdf2::derive(alg, rounds, self.salt, pass.as_bytes(), &mut key);
        match self.cipher {
            LooseCipher::Rc2(bits) => super::cbc_cipher::rc2_decrypt(&key, bits, self.iv, data),
            LooseCipher::Cbc(c) => c.decrypt(&key, self.iv, data).ok(),
        }
    }
}

/// The key derivation and encryption AlgorithmIdentifiers of PBES2 parameters.
fn pbes2_parts(
    params: der::asn1::AnyRef<'_>,
) -> Option<(AlgorithmIdentifierRef<'_>, AlgorithmIdentifierRef<'_>)> {
    let mut r = SliceReader::new(params.value()).ok()?;
    let kdf = AlgorithmIdentifierRef::decode(&mut r).ok()?;
    let enc = AlgorithmIdentifierRef::decode(&mut r).ok()?;
    Some((kdf, enc))
}

/// The `pkcs5` crate takes the first 8 bytes of a DES IV without checking that there are
/// 8, which panics on a damaged or hostile file; such parameters never reach it.
fn des_iv_too_short(params: der::asn1::AnyRef<'_>) -> bool {
    let Some((_, enc)) = pbes2_parts(params) else {
        return false;
    };
    (enc.oid == pbes2::DES_CBC_OID || enc.oid == pbes2::DES_EDE3_CBC_OID)
        && enc
            .parameters
            .and_then(|p| p.decode_as::<&OctetStringRef>().ok())
            .is_none_or(|iv| iv.as_bytes().len() < 8)
}

/// Reads PBES2 parameters naming PBKDF2 and either RC2-CBC (RFC 8018 B.2.3:
/// RC2-CBC-Parameter is `SEQUENCE { rc2ParameterVersion INTEGER OPTIONAL, iv OCTET STRING }`,
/// the version coding the effective key bits) or a CBC cipher the `pkcs5` crate refused
/// only for a salt longer than it holds (RFC 8018 sets no limit; `pkcs5` 0.8 keeps 32
/// bytes).
fn pbes2_loose(params: der::asn1::AnyRef<'_>) -> Option<Pbes2Loose<'_>> {
    const RC2_CBC: &str = "1.2.840.113549.3.2";
    let (kdf, enc) = pbes2_parts(params)?;
    if kdf.oid != pbes2::PBKDF2_OID {
        return None;
    }
    let kdf_params = kdf.parameters?;
    let (salt, iterations, key_len, prf) = kdf_params
        .decode_as::<Pbkdf2Loose<'_>>()
        .ok()
        .map(|k| (k.salt, k.iterations, k.key_len, k.prf))?;
    if !(1..=MAX_PBKDF2_ITERATIONS).contains(&iterations) {
        return None;
    }
    if enc.oid.to_string() != RC2_CBC {
        let cipher = match enc.oid {
            pbes2::AES_128_CBC_OID => CbcCipher::Aes128,
            pbes2::AES_192_CBC_OID => CbcCipher::Aes192,
            pbes2::AES_256_CBC_OID => CbcCipher::Aes256,
            pbes2::DES_EDE3_CBC_OID => CbcCipher::DesEde3,
            pbes2::DES_CBC_OID => CbcCipher::Des,
            _ => return None,
        };
        let iv = enc
            .parameters?
            .decode_as::<&OctetStringRef>()
            .ok()?
            .as_bytes();
        if salt.len() <= pbes2::Salt::MAX_LEN
            || iv.len() != cipher.block_len()
            || key_len.is_some_and(|k| k != cipher.key_len())
        {
            return None;
        }
        return Some(Pbes2Loose {
            salt,
            iterations,
            prf,
            key_len: cipher.key_len(),
            cipher: LooseCipher::Cbc(cipher),
            iv,
        });
    }
    let (version, iv) = enc
        .parameters?
        .decode_as::<Rc2Params<'_>>()
        .ok()
        .map(|p| (p.version, p.iv))?;
    let eff_bits = match version {
        None => 32,
        Some(160) => 40,
        Some(120) => 64,
        Some(58) => 128,
        Some(v) if v >= 256 => v as usize,
        Some(_) => return None,
    };
    if iv.len() != 8 {
        return None;
    }
    Some(Pbes2Loose {
        salt,
        iterations,
        prf,
        key_len: key_len.unwrap_or(16).clamp(1, 128),
        cipher: LooseCipher::Rc2(eff_bits),
        iv,
    })
}

/// PBKDF2-params read without the `pkcs5` crate's restrictions.
struct Pbkdf2Loose<'a> {
    salt: &'a [u8],
    iterations: u32,
    key_len: Option<usize>,
    prf: &'static str,
}

impl<'a> der::DecodeValue<'a> for Pbkdf2Loose<'a> {
    type Error = der::Error;

    fn decode_value<R: Reader<'a>>(reader: &mut R, header: der::Header) -> der::Result<Self> {
        reader.read_nested(header.length(), |r| {
            let salt = <&OctetStringRef>::decode(r)?.as_bytes();
            let iterations = u32::decode(r)?;
            let mut key_len = None;
            let mut prf = "SHA1";
            while !r.is_finished() {
                let any = der::asn1::AnyRef::decode(r)?;
                if any.tag() == der::Tag::Integer {
                    key_len = Some(any.decode_as::<u32>()? as usize);
                } else if any.tag() == der::Tag::Sequence {
                    let a = any.decode_as::<AlgorithmIdentifierRef<'_>>()?;
                    prf = match a.oid.to_string().as_str() {
                        "1.2.840.113549.2.7" => "SHA1",
                        "1.2.840.113549.2.9" => "SHA256",
                        "1.2.840.113549.2.10" => "SHA384",
                        "1.2.840.113549.2.11" => "SHA512",
                        _ => "unsupported",
                    };
                }
            }
            Ok(Pbkdf2Loose {
                salt,
                iterations,
                key_len,
                prf,
            })
        })
    }
}

impl der::FixedTag for Pbkdf2Loose<'_> {
    const TAG: der::Tag = der::Tag::Sequence;
}

/// `RC2-CBC-Parameter ::= SEQUENCE { rc2ParameterVersion INTEGER OPTIONAL, iv OCTET STRING }`.
struct Rc2Params<'a> {
    version: Option<u32>,
    iv: &'a [u8],
}

impl<'a> der::DecodeValue<'a> for Rc2Params<'a> {
    type Error = der::Error;

    fn decode_value<R: Reader<'a>>(reader: &mut R, header: der::Header) -> der::Result<Self> {
        reader.read_nested(header.length(), |r| {
            let first = der::asn1::AnyRef::decode(r)?;
            if first.tag() == der::Tag::Integer {
                let version = Some(first.decode_as::<u32>()?);
                let iv = <&OctetStringRef>::decode(r)?.as_bytes();
                Ok(Rc2Params { version, iv })
            } else {
                let iv = first.decode_as::<&OctetStringRef>()?.as_bytes();
                Ok(Rc2Params { version: None, iv })
            }
        })
    }
}

impl der::FixedTag for Rc2Params<'_> {
    const TAG: der::Tag = der::Tag::Sequence;
}

/// Why a decryption failed.
pub(crate) enum DecryptError {
    /// The padding check failed: the passphrase is wrong (or the ciphertext damaged).
    BadPadding,
    /// The scheme's parameters are invalid (damaged file).
    Damaged(String),
}

/// Upper bound on PKCS#12 PBE iterations, so that a hostile file cannot hang a run
/// (OpenSSL writes 2048; PBES2's bound comes from the `pkcs5` crate).
const MAX_PKCS12_ITERATIONS: u32 = 10_000_000;

/// The most PBKDF2 iterations certmesh runs for a key file: a few seconds of work.
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

const PBES2_OID: ObjectIdentifier = pbes2::PBES2_OID;

/// Fewest PBKDF2 iterations certmesh writes: below this a passphrase is guessed too
/// cheaply to call the key protected (OpenSSL's own default is 2048).
const MIN_PBKDF2_ITERATIONS: u32 = 1000;

/// The block cipher of a PKCS#12 PBE scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pkcs12Cipher {
    Cbc(CbcCipher),
    /// RC2-CBC with this many effective key bits (40 or 128); read, never written.
    Rc2(usize),
}

impl Pkcs12Cipher {
    fn key_len(self) -> usize {
        match self {
            Pkcs12Cipher::Cbc(c) => c.key_len(),
            Pkcs12Cipher::Rc2(bits) => bits / 8,
        }
    }

    fn block_len(self) -> usize {
        match self {
            Pkcs12Cipher::Cbc(c) => c.block_len(),
            Pkcs12Cipher::Rc2(_) => 8,
        }
    }

    fn decrypt(self, key: &[u8], iv: &[u8], ct: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        match self {
            Pkcs12Cipher::Cbc(c) => c.decrypt(key, iv, ct).ok(),
            Pkcs12Cipher::Rc2(bits) => super::cbc_cipher::rc2_decrypt(key, bits, iv, ct),
        }
    }
}

/// PKCS#12 PBE (RFC 7292 Appendix C) and PKCS#5 v1.5 PBES1 (RFC 8018 Appendix A.3).
const PBE_SCHEMES: &[(&str, &str, Option<Pkcs12Cipher>)] = &[
    ("1.2.840.113549.1.12.1.1", "pbeWithSHAAnd128BitRC4", None),
    ("1.2.840.113549.1.12.1.2", "pbeWithSHAAnd40BitRC4", None),
    (
        "1.2.840.113549.1.12.1.3",
        "pbeWithSHAAnd3-KeyTripleDES-CBC",
        Some(Pkcs12Cipher::Cbc(CbcCipher::DesEde3)),
    ),
    (
        "1.2.840.113549.1.12.1.4",
        "pbeWithSHAAnd2-KeyTripleDES-CBC",
        Some(Pkcs12Cipher::Cbc(CbcCipher::DesEde2)),
    ),
    (
        "1.2.840.113549.1.12.1.5",
        "pbeWithSHAAnd128BitRC2-CBC",
        Some(Pkcs12Cipher::Rc2(128)),
    ),
    (
        "1.2.840.113549.1.12.1.6",
        "pbeWithSHAAnd40BitRC2-CBC",
        Some(Pkcs12Cipher::Rc2(40)),
    ),
    ("1.2.840.113549.1.5.1", "pbeWithMD2AndDES-CBC", None),
    ("1.2.840.113549.1.5.3", "pbeWithMD5AndDES-CBC", None),
    ("1.2.840.113549.1.5.4", "pbeWithMD2AndRC2-CBC", None),
    ("1.2.840.113549.1.5.6", "pbeWithMD5AndRC2-CBC", None),
    ("1.2.840.113549.1.5.10", "pbeWithSHA1AndDES-CBC", None),
    ("1.2.840.113549.1.5.11", "pbeWithSHA1AndRC2-CBC", None),
];

/// Names for the parts of PBES2 parameters, for describing schemes `pkcs5` cannot parse.
const OID_NAMES: &[(&str, &str)] = &[
    ("1.2.840.113549.1.5.12", "PBKDF2"),
    ("1.3.6.1.4.1.11591.4.11", "scrypt"),
    ("1.2.840.113549.2.7", "HMAC-SHA1"),
    ("1.2.840.113549.2.8", "HMAC-SHA224"),
    ("1.2.840.113549.2.9", "HMAC-SHA256"),
    ("1.2.840.113549.2.10", "HMAC-SHA384"),
    ("1.2.840.113549.2.11", "HMAC-SHA512"),
    ("1.2.840.113549.2.12", "HMAC-SHA512/224"),
    ("1.2.840.113549.2.13", "HMAC-SHA512/256"),
    ("1.2.156.10197.1.401.2", "HMAC-SM3"),
    ("2.16.840.1.101.3.4.1.2", "AES-128-CBC"),
    ("2.16.840.1.101.3.4.1.22", "AES-192-CBC"),
    ("2.16.840.1.101.3.4.1.42", "AES-256-CBC"),
    ("2.16.840.1.101.3.4.1.6", "AES-128-GCM"),
    ("2.16.840.1.101.3.4.1.26", "AES-192-GCM"),
    ("2.16.840.1.101.3.4.1.46", "AES-256-GCM"),
    ("1.2.840.113549.3.7", "DES-EDE3-CBC"),
    ("1.3.14.3.2.7", "DES-CBC"),
    ("1.2.840.113549.3.2", "RC2-CBC"),
    ("1.2.392.200011.61.1.1.1.2", "CAMELLIA-128-CBC"),
    ("1.2.392.200011.61.1.1.1.3", "CAMELLIA-192-CBC"),
    ("1.2.392.200011.61.1.1.1.4", "CAMELLIA-256-CBC"),
    ("1.2.410.200046.1.1.2", "ARIA-128-CBC"),
    ("1.2.410.200046.1.1.12", "ARIA-256-CBC"),
    ("1.2.156.10197.1.104.2", "SM4-CBC"),
];

fn oid_name(oid: &ObjectIdentifier) -> String {
    let s = oid.to_string();
    OID_NAMES
        .iter()
        .find(|(o, _)| *o == s)
        .map(|(_, n)| n.to_string())
        .unwrap_or(s)
}

impl<'a> EncryptedKey<'a> {
    /// Parses `EncryptedPrivateKeyInfo` DER. Errors are one-line problem descriptions.
    pub fn parse(der: &'a [u8]) -> std::result::Result<Self, String> {
        let (alg, data) = decode_outer(der).map_err(|e| {
            format!(
                "damaged encrypted PKCS#8 key ({})",
                super::detect::der_problem(&e)
            )
        })?;
        Self::from_alg(alg, data)
    }

    /// Data encrypted with the scheme the AlgorithmIdentifier `alg_der` names: a PKCS#12
    /// shrouded key bag or encrypted SafeContents.
    pub fn from_parts(alg_der: &'a [u8], data: &'a [u8]) -> std::result::Result<Self, String> {
        let alg = AlgorithmIdentifierRef::from_der(alg_der).map_err(|e| {
            format!(
                "damaged encryption parameters ({})",
                super::detect::der_problem(&e)
            )
        })?;
        Self::from_alg(alg, data)
    }

    fn from_alg(
        alg: AlgorithmIdentifierRef<'a>,
        data: &'a [u8],
    ) -> std::result::Result<Self, String> {
        let scheme = if alg.oid == PBES2_OID {
            pbes2_scheme(alg)
        } else if let Some((_, name, cipher)) = PBE_SCHEMES
            .iter()
            .find(|(o, _, _)| *o == alg.oid.to_string())
        {
            pbe_scheme(alg, name, *cipher)?
        } else {
            Scheme::Unsupported {
                description: format!("PKCS#8 with unknown encryption scheme {}", alg.oid),
                reason: format!("encryption scheme {} is not supported", alg.oid),
            }
        };
        Ok(EncryptedKey { scheme, data })
    }

    /// How the key is encrypted, e.g. "PKCS#8 PBES2 PBKDF2-HMAC-SHA256 AES-256-CBC, 2048
    /// iterations".
    pub fn describe(&self) -> String {
        match &self.scheme {
            Scheme::Pbes2(p) => describe_pbes2(p),
            Scheme::Pkcs12 {
                name, iterations, ..
            } => {
                format!("PKCS#8 PBES1 {name} (PKCS#12 PBE), {iterations} iterations")
            }
            Scheme::Pbes2Loose(p) => p.describe(),
            Scheme::Unsupported { description, .. } => description.clone(),
        }
    }

    /// Why certmesh cannot decrypt this key, when it cannot.
    pub fn unsupported_reason(&self) -> Option<&str> {
        match &self.scheme {
            Scheme::Unsupported { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// Decrypts to `PrivateKeyInfo` DER.
    pub fn decrypt(&self, pass: &Secret) -> std::result::Result<Zeroizing<Vec<u8>>, DecryptError> {
        match &self.scheme {
            Scheme::Pbes2(params) => {
                let mut buf = Zeroizing::new(self.data.to_vec());
                let n = params
                    .decrypt_in_place(pass.as_bytes(), &mut buf)
                    .map_err(|e| match e {
                        // Bad padding is `DecryptFailed` (`EncryptFailed` in older pkcs5).
                        pkcs5::Error::DecryptFailed | pkcs5::Error::EncryptFailed => {
                            DecryptError::BadPadding
                        }
                        other => {
                            DecryptError::Damaged(format!("invalid PBES2 parameters ({other})"))
                        }
                    })?
                    .len();
                buf.truncate(n);
                Ok(buf)
            }
            Scheme::Pkcs12 {
                cipher,
                salt,
                iterations,
                ..
            } => {
                use pkcs12::kdf::Pkcs12KeyType;
                let rounds = *iterations as i32;
                let mut last = DecryptError::BadPadding;
                for variant in pkcs12_passwords(pass) {
                    let password = match variant {
                        Ok(p) => p,
                        Err(e) => {
                            last = e;
                            continue;
                        }
                    };
                    let derive = |kind, len| {
                        Zeroizing::new(pkcs12::kdf::derive_key::<sha1::Sha1>(
                            &password, salt, kind, rounds, len,
                        ))
                    };
                    let key = derive(Pkcs12KeyType::EncryptionKey, cipher.key_len());
                    let iv = derive(Pkcs12KeyType::Iv, cipher.block_len());
                    if let Some(plain) = cipher.decrypt(&key, &iv, self.data) {
                        return Ok(plain);
                    }
                }
                Err(last)
            }
            Scheme::Pbes2Loose(p) => p.decrypt(pass, self.data).ok_or(DecryptError::BadPadding),
            Scheme::Unsupported { reason, .. } => Err(DecryptError::Damaged(reason.clone())),
        }
    }
}

/// The byte strings the PKCS#12 KDF may have been given for `pass`: the BMPString with its
/// two-byte terminator (RFC 7292, OpenSSL), and for an empty password also no bytes at
/// all, which is what Java derives from an empty password and OpenSSL from none.
pub(crate) fn pkcs12_passwords(
    pass: &Secret,
) -> Vec<std::result::Result<Zeroizing<Vec<u8>>, DecryptError>> {
    let mut out = vec![der::asn1::BmpString::from_utf8(pass.expose())
        .map(|b| {
            let mut v = Zeroizing::new(b.into_bytes().to_vec());
            v.extend([0u8; 2]);
            v
        })
        .map_err(|_| DecryptError::Damaged("passphrase cannot be encoded for PKCS#12".into()))];
    if pass.expose().is_empty() {
        out.push(Ok(Zeroizing::new(Vec::new())));
    }
    out
}

fn decode_outer(der: &[u8]) -> der::Result<(AlgorithmIdentifierRef<'_>, &[u8])> {
    let mut r = SliceReader::new(der)?;
    let out = r.sequence(|r| {
        let alg = AlgorithmIdentifierRef::decode(r)?;
        let data = <&OctetStringRef>::decode(r)?;
        Ok::<_, der::Error>((alg, data.as_bytes()))
    })?;
    r.finish()?;
    Ok(out)
}

fn pbes2_scheme(alg: AlgorithmIdentifierRef<'_>) -> Scheme<'_> {
    // The CBC ciphers only: `pkcs5` also parses AES-GCM, which no PKCS#8 writer uses and
    // which certmesh names but does not read.
    let cbc = |p: &pbes2::Parameters| {
        !matches!(
            p.encryption,
            pbes2::EncryptionScheme::Aes128Gcm { .. } | pbes2::EncryptionScheme::Aes256Gcm { .. }
        )
    };
    if alg.parameters.is_some_and(des_iv_too_short) {
        return match pbes2_unsupported(alg) {
            Scheme::Unsupported { description, .. } => Scheme::Unsupported {
                description,
                reason: "damaged encrypted PKCS#8 key: its DES IV is shorter than 8 bytes".into(),
            },
            other => other,
        };
    }
    match alg
        .parameters
        .and_then(|any| pbes2::Parameters::try_from(any).ok())
        .filter(cbc)
    {
        Some(p) => match kdf_too_costly(&p) {
            Some(reason) => Scheme::Unsupported {
                description: describe_pbes2(&p),
                reason,
            },
            None => Scheme::Pbes2(p),
        },
        None => match alg.parameters.and_then(pbes2_loose) {
            Some(p) if p.prf != "unsupported" => Scheme::Pbes2Loose(p),
            _ => pbes2_unsupported(alg),
        },
    }
}

/// PBES2 parameters certmesh cannot use, named as far as they can be.
fn pbes2_unsupported(alg: AlgorithmIdentifierRef<'_>) -> Scheme<'_> {
    let parts = alg
        .parameters
        .and_then(|any| describe_pbes2_parts(&any.to_der().ok()?));
    let description = match &parts {
        Some((kdf, cipher)) => format!("PKCS#8 PBES2 {kdf} {cipher}"),
        None => "PKCS#8 PBES2 with damaged parameters".to_string(),
    };
    let reason = match parts {
                Some(_) => format!(
                    "encrypted with {description}, which certmesh does not support (it reads PBES2 with PBKDF2 or scrypt and AES-CBC, DES-EDE3-CBC or DES-CBC); re-encrypt it first: openssl pkcs8 -topk8 -v2 aes256 -in FILE -out NEW"
                ),
                None => "damaged encrypted PKCS#8 key: its PBES2 parameters cannot be parsed".to_string(),
            };
    Scheme::Unsupported {
        description,
        reason,
    }
}

/// The key derivation's cost comes from the file, so a hostile or damaged file must not
/// make certmesh compute for hours or allocate gigabytes. PBKDF2: at most
/// [`MAX_PBKDF2_ITERATIONS`] (certmesh writes 600,000; 4,294,967,295 would run for hours).
/// scrypt's memory use is 128·N·r bytes; OpenSSL's own default limit is 32 MiB; this
/// allows 1 GiB.
fn kdf_too_costly(p: &pbes2::Parameters) -> Option<String> {
    let s = match &p.kdf {
        Kdf::Pbkdf2(k) => {
            return (k.iteration_count > MAX_PBKDF2_ITERATIONS).then(|| {
                format!(
                    "damaged or hostile encrypted PKCS#8 key: {} PBKDF2 iterations is above certmesh's limit of {MAX_PBKDF2_ITERATIONS}",
                    k.iteration_count
                )
            })
        }
        Kdf::Scrypt(s) => s,
        _ => return None,
    };
    let memory = 128u128 * u128::from(s.cost_parameter) * u128::from(s.block_size);
    (memory > 1 << 30 || s.parallelization > 16).then(|| {
        format!(
            "damaged or hostile encrypted PKCS#8 key: scrypt parameters N={}, r={}, p={} would need {} MiB or more",
            s.cost_parameter,
            s.block_size,
            s.parallelization,
            memory >> 20
        )
    })
}

/// Names the KDF (with PRF) and cipher of PBES2 parameters that `pkcs5` rejected.
fn describe_pbes2_parts(der: &[u8]) -> Option<(String, String)> {
    let mut r = SliceReader::new(der).ok()?;
    let (kdf, cipher) = r
        .sequence(|r| {
            let kdf = AlgorithmIdentifierRef::decode(r)?;
            let enc = AlgorithmIdentifierRef::decode(r)?;
            let mut kdf_name = oid_name(&kdf.oid);
            if kdf.oid == pbes2::PBKDF2_OID {
                // PBKDF2-params: salt, iterationCount, keyLength OPTIONAL, prf DEFAULT SHA1.
                let prf = kdf
                    .parameters
                    .and_then(|p| p.to_der().ok())
                    .and_then(|d| pbkdf2_prf_oid(&d))
                    .map(|o| oid_name(&o))
                    .unwrap_or_else(|| "HMAC-SHA1".into());
                kdf_name = format!("PBKDF2-{prf}");
            }
            Ok::<_, der::Error>((kdf_name, oid_name(&enc.oid)))
        })
        .ok()?;
    Some((kdf, cipher))
}

fn pbkdf2_prf_oid(der: &[u8]) -> Option<ObjectIdentifier> {
    let mut r = SliceReader::new(der).ok()?;
    r.sequence(|r| {
        let _salt = der::asn1::AnyRef::decode(r)?;
        let _iterations = der::asn1::AnyRef::decode(r)?;
        let mut prf = None;
        while !r.is_finished() {
            let any = der::asn1::AnyRef::decode(r)?;
            if any.tag() == der::Tag::Sequence {
                prf = any
                    .decode_as::<AlgorithmIdentifierRef<'_>>()
                    .ok()
                    .map(|a| a.oid);
            }
        }
        Ok::<_, der::Error>(prf)
    })
    .ok()
    .flatten()
}

fn pbe_scheme<'a>(
    alg: AlgorithmIdentifierRef<'a>,
    name: &'static str,
    cipher: Option<Pkcs12Cipher>,
) -> std::result::Result<Scheme<'a>, String> {
    let damaged = || format!("damaged encrypted PKCS#8 key: invalid {name} parameters");
    let params = alg.parameters.ok_or_else(damaged)?;
    let (salt, iterations) = params
        .decode_as::<PbeParams<'_>>()
        .map(|p| (p.salt, p.iterations))
        .map_err(|_| damaged())?;
    let pkcs5_v15 = alg.oid.to_string().starts_with("1.2.840.113549.1.5.");
    Ok(match cipher {
        Some(cipher) if (1..=MAX_PKCS12_ITERATIONS).contains(&iterations) => Scheme::Pkcs12 {
            name,
            cipher,
            salt,
            iterations,
        },
        Some(_) => Scheme::Unsupported {
            description: format!("PKCS#8 PBES1 {name} (PKCS#12 PBE), {iterations} iterations"),
            reason: format!(
                "damaged encrypted PKCS#8 key: {iterations} iterations is out of range for {name}"
            ),
        },
        None => {
            let description = if pkcs5_v15 {
                format!("PKCS#8 PBES1 {name}, {iterations} iterations")
            } else {
                format!("PKCS#8 PBES1 {name} (PKCS#12 PBE), {iterations} iterations")
            };
            let why = if pkcs5_v15 {
                "PKCS#5 v1.5 schemes have no maintained Rust implementation and their 56/64-bit keys give no real protection"
            } else {
                "the RC4 PKCS#12 schemes are obsolete and have no maintained Rust implementation"
            };
            Scheme::Unsupported {
                reason: format!(
                    "encrypted with PKCS#8 PBES1 {name}, which certmesh does not support ({why}); \
                     re-encrypt it first: openssl pkcs8 -topk8 -v2 aes256 -provider legacy -provider default -in FILE -out NEW"
                ),
                description,
            }
        }
    })
}

/// `PBEParameter` / `pkcs-12PbeParams`: `SEQUENCE { salt OCTET STRING, iterations INTEGER }`.
struct PbeParams<'a> {
    salt: &'a [u8],
    iterations: u32,
}

impl<'a> der::DecodeValue<'a> for PbeParams<'a> {
    type Error = der::Error;

    fn decode_value<R: Reader<'a>>(reader: &mut R, header: der::Header) -> der::Result<Self> {
        reader.read_nested(header.length(), |r| {
            let salt = <&OctetStringRef>::decode(r)?.as_bytes();
            let iterations = u32::decode(r)?;
            Ok(PbeParams { salt, iterations })
        })
    }
}

impl der::FixedTag for PbeParams<'_> {
    const TAG: der::Tag = der::Tag::Sequence;
}

fn describe_pbes2(p: &pbes2::Parameters) -> String {
    let cipher = match p.encryption {
        pbes2::EncryptionScheme::Aes128Cbc { .. } => "AES-128-CBC",
        pbes2::EncryptionScheme::Aes192Cbc { .. } => "AES-192-CBC",
        pbes2::EncryptionScheme::Aes256Cbc { .. } => "AES-256-CBC",
        pbes2::EncryptionScheme::DesEde3Cbc { .. } => "DES-EDE3-CBC",
        pbes2::EncryptionScheme::DesCbc { .. } => "DES-CBC",
        _ => "(unknown cipher)",
    };
    match &p.kdf {
        Kdf::Pbkdf2(k) => {
            let prf = match k.prf {
                Pbkdf2Prf::HmacWithSha1 => "SHA1",
                Pbkdf2Prf::HmacWithSha224 => "SHA224",
                Pbkdf2Prf::HmacWithSha256 => "SHA256",
                Pbkdf2Prf::HmacWithSha384 => "SHA384",
                Pbkdf2Prf::HmacWithSha512 => "SHA512",
                _ => "(unknown)",
            };
            format!(
                "PKCS#8 PBES2 PBKDF2-HMAC-{prf} {cipher}, {} iterations",
                k.iteration_count
            )
        }
        Kdf::Scrypt(s) => format!(
            "PKCS#8 PBES2 scrypt (N=2^{}, r={}, p={}) {cipher}",
            s.cost_parameter.trailing_zeros(),
            s.block_size,
            s.parallelization
        ),
        _ => format!("PKCS#8 PBES2 (unknown KDF) {cipher}"),
    }
}

/// Encrypts `plain` again with the scheme the AlgorithmIdentifier `alg_der` names: the same
/// KDF, PRF, iteration count, key length and cipher, with a fresh salt of the same length
/// and a fresh IV, so a keystore edit keeps the file's algorithms. RC2 (read, never
/// written) becomes pbeWithSHAAnd3-KeyTripleDES-CBC, which every reader of such a file also
/// reads. `raw_empty` derives PKCS#12 PBE keys from no password bytes at all (an empty
/// password as Java writes it) instead of the empty BMPString. Returns the new
/// AlgorithmIdentifier DER and the ciphertext.
pub(crate) fn reseal(
    alg_der: &[u8],
    plain: &[u8],
    pass: &Secret,
    raw_empty: bool,
) -> Result<(Vec<u8>, Vec<u8>)> {
    let enc_err = |e: String| Error::Crypto(format!("cannot encrypt again: {e}"));
    let alg = AlgorithmIdentifierRef::from_der(alg_der).map_err(|e| enc_err(e.to_string()))?;
    let random = |len: usize| -> Result<Vec<u8>> {
        let mut v = vec![0u8; len];
        aws_lc_rs::rand::fill(&mut v).map_err(|_| Error::Crypto("no randomness".into()))?;
        Ok(v)
    };
    if alg.oid == PBES2_OID {
        let old = alg
            .parameters
            .filter(|any| !des_iv_too_short(*any))
            .and_then(|any| pbes2::Parameters::try_from(any).ok())
            .ok_or_else(|| enc_err("unreadable PBES2 parameters".into()))?;
        let salt = random(match &old.kdf {
            Kdf::Pbkdf2(k) => k.salt.as_bytes().len(),
            Kdf::Scrypt(s) => s.salt.as_bytes().len(),
            _ => 16,
        })?;
        let salt = pbes2::Salt::new(&salt).map_err(|e| enc_err(e.to_string()))?;
        let kdf = match &old.kdf {
            Kdf::Pbkdf2(k) => Kdf::Pbkdf2(Pbkdf2Params {
                salt,
                iteration_count: k.iteration_count,
                key_length: k.key_length,
                prf: k.prf,
            }),
            Kdf::Scrypt(s) => Kdf::Scrypt(pbes2::ScryptParams {
                salt,
                cost_parameter: s.cost_parameter,
                block_size: s.block_size,
                parallelization: s.parallelization,
                key_length: s.key_length,
            }),
            _ => return Err(enc_err("unknown PBES2 key derivation".into())),
        };
        let iv16: [u8; 16] = random(16)?.try_into().map_err(|_| enc_err("IV".into()))?;
        let iv8: [u8; 8] = iv16[..8].try_into().map_err(|_| enc_err("IV".into()))?;
        let encryption = match old.encryption {
            pbes2::EncryptionScheme::Aes128Cbc { .. } => {
                pbes2::EncryptionScheme::Aes128Cbc { iv: iv16 }
            }
            pbes2::EncryptionScheme::Aes192Cbc { .. } => {
                pbes2::EncryptionScheme::Aes192Cbc { iv: iv16 }
            }
            pbes2::EncryptionScheme::Aes256Cbc { .. } => {
                pbes2::EncryptionScheme::Aes256Cbc { iv: iv16 }
            }
            pbes2::EncryptionScheme::DesEde3Cbc { .. } => {
                pbes2::EncryptionScheme::DesEde3Cbc { iv: iv8 }
            }
            pbes2::EncryptionScheme::DesCbc { .. } => pbes2::EncryptionScheme::DesCbc { iv: iv8 },
            #[allow(unreachable_patterns)]
            _ => return Err(enc_err("unknown PBES2 cipher".into())),
        };
        let params = pbes2::Parameters { kdf, encryption };
        let ct = params
            .encrypt(pass.as_bytes(), plain)
            .map_err(|e| enc_err(e.to_string()))?;
        let alg = pkcs5::EncryptionScheme::from(params)
            .to_der()
            .map_err(|e| enc_err(e.to_string()))?;
        return Ok((alg, ct));
    }
    let oid = alg.oid.to_string();
    let (params, cipher) = PBE_SCHEMES
        .iter()
        .find(|(o, _, _)| *o == oid)
        .and_then(|(_, _, c)| {
            let p = alg.parameters?.decode_as::<PbeParams<'_>>().ok()?;
            Some((p, (*c)?))
        })
        .ok_or_else(|| {
            enc_err(format!(
                "encryption scheme {oid} is not one certmesh writes"
            ))
        })?;
    let (oid, cipher) = match cipher {
        Pkcs12Cipher::Cbc(c) => (alg.oid, c),
        Pkcs12Cipher::Rc2(_) => (
            ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.3"),
            CbcCipher::DesEde3,
        ),
    };
    let salt = random(params.salt.len().max(8))?;
    let password = if raw_empty && pass.expose().is_empty() {
        Zeroizing::new(Vec::new())
    } else {
        match pkcs12_passwords(pass).into_iter().next() {
            Some(Ok(p)) => p,
            _ => {
                return Err(enc_err(
                    "the password cannot be encoded as a BMPString".into(),
                ))
            }
        }
    };
    use pkcs12::kdf::Pkcs12KeyType;
    let rounds = i32::try_from(params.iterations).map_err(|_| enc_err("iterations".into()))?;
    let derive = |kind, len| {
        Zeroizing::new(pkcs12::kdf::derive_key::<sha1::Sha1>(
            &password, &salt, kind, rounds, len,
        ))
    };
    let key = derive(Pkcs12KeyType::EncryptionKey, cipher.key_len());
    let iv = derive(Pkcs12KeyType::Iv, cipher.block_len());
    let ct = cipher
        .encrypt(&key, &iv, plain)
        .ok_or_else(|| enc_err("cipher setup".into()))?;
    let der_err = |e: der::Error| enc_err(e.to_string());
    let mut body = OctetStringRef::new(&salt)
        .and_then(|o| o.to_der())
        .map_err(der_err)?;
    body.extend(params.iterations.to_der().map_err(der_err)?);
    let params = der::asn1::AnyRef::new(der::Tag::Sequence, &body).map_err(der_err)?;
    let alg = AlgorithmIdentifierRef {
        oid,
        parameters: Some(params),
    }
    .to_der()
    .map_err(der_err)?;
    Ok((alg, ct))
}

/// Encrypts `PrivateKeyInfo` DER as PBES2 with PBKDF2-HMAC-SHA256 and `cipher`, returning
/// `EncryptedPrivateKeyInfo` DER.
pub(crate) fn encrypt(
    pkcs8_der: &[u8],
    pass: &Secret,
    cipher: Cipher,
    iterations: u32,
) -> Result<Vec<u8>> {
    crate::pass::check_key_passphrase(pass)?;
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| Error::Crypto("no randomness".into()))?;
    aws_lc_rs::rand::fill(&mut iv).map_err(|_| Error::Crypto("no randomness".into()))?;
    if !(MIN_PBKDF2_ITERATIONS..=Pbkdf2Params::MAX_ITERATION_COUNT).contains(&iterations) {
        return Err(Error::Usage(format!(
            "PBKDF2 iteration count {iterations} is out of range ({MIN_PBKDF2_ITERATIONS} to {})",
            Pbkdf2Params::MAX_ITERATION_COUNT
        )));
    }
    let kdf: Kdf = Pbkdf2Params::hmac_sha256(iterations, &salt)
        .map_err(|_| {
            Error::Usage(format!(
                "PBKDF2 iteration count {iterations} is out of range"
            ))
        })?
        .into();
    let iv8: [u8; 8] = [iv[0], iv[1], iv[2], iv[3], iv[4], iv[5], iv[6], iv[7]];
    let encryption = match cipher {
        Cipher::Aes256 => pbes2::EncryptionScheme::Aes256Cbc { iv },
        Cipher::Aes128 => pbes2::EncryptionScheme::Aes128Cbc { iv },
        Cipher::Des3 => pbes2::EncryptionScheme::DesEde3Cbc { iv: iv8 },
    };
    let params = pbes2::Parameters { kdf, encryption };
    let ct = params
        .encrypt(pass.as_bytes(), pkcs8_der)
        .map_err(|e| Error::Crypto(format!("key encryption failed: {e}")))?;
    let encrypted_data = OctetStringRef::new(&ct)
        .map_err(|e| Error::Crypto(format!("encoding encrypted PKCS#8 failed: {e}")))?;
    let info = pkcs8::EncryptedPrivateKeyInfo {
        encryption_algorithm: params.into(),
        encrypted_data,
    };
    info.to_der()
        .map_err(|e| Error::Crypto(format!("encoding encrypted PKCS#8 failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbes2_round_trip_and_description() {
        let pass = Secret::new("pw".into());
        let der = encrypt(b"0123456789abcdef-plaintext", &pass, Cipher::Des3, 1000).unwrap();
        let k = EncryptedKey::parse(&der).unwrap();
        assert_eq!(
            k.describe(),
            "PKCS#8 PBES2 PBKDF2-HMAC-SHA256 DES-EDE3-CBC, 1000 iterations"
        );
        assert!(k.unsupported_reason().is_none());
        assert_eq!(
            k.decrypt(&pass).ok().unwrap().as_slice(),
            b"0123456789abcdef-plaintext"
        );
        let wrong = Secret::new("nope".into());
        let failures = (0..5)
            .filter(|_| matches!(k.decrypt(&wrong), Err(DecryptError::BadPadding)))
            .count();
        assert_eq!(failures, 5);
    }

    #[test]
    fn damaged_input_is_reported() {
        let pass = Secret::new("pw".into());
        let der = encrypt(b"plaintext", &pass, Cipher::Aes256, 1000).unwrap();
        let err = EncryptedKey::parse(&der[..der.len() - 5]).err().unwrap();
        assert!(err.starts_with("damaged encrypted PKCS#8 key"), "{err}");
    }

    /// `EncryptedPrivateKeyInfo` with PBES2, PBKDF2-HMAC-SHA256 and a CBC cipher, built
    /// from its parts so that parameters no writer at hand produces can be tried.
    fn pbes2_epki(salt: &[u8], cipher_oid: &str, iv: &[u8], data: &[u8]) -> Vec<u8> {
        use der::asn1::AnyRef;
        let seq = |parts: &[Vec<u8>]| {
            AnyRef::new(der::Tag::Sequence, &parts.concat())
                .unwrap()
                .to_der()
                .unwrap()
        };
        let octets = |b: &[u8]| OctetStringRef::new(b).unwrap().to_der().unwrap();
        let oid = |s: &str| ObjectIdentifier::new_unwrap(s).to_der().unwrap();
        let sha256 = seq(&[oid("1.2.840.113549.2.9"), vec![0x05, 0x00]]);
        let pbkdf2 = seq(&[octets(salt), 1000u32.to_der().unwrap(), sha256]);
        let kdf = seq(&[oid("1.2.840.113549.1.5.12"), pbkdf2]);
        let enc = seq(&[oid(cipher_oid), octets(iv)]);
        let alg = seq(&[oid("1.2.840.113549.1.5.13"), seq(&[kdf, enc])]);
        seq(&[alg, octets(data)])
    }

    #[test]
    fn pbes2_salts_longer_than_pkcs5_holds_are_still_read() {
        use aws_lc_rs::pbkdf2;
        let pass = Secret::new("pw".into());
        let salt = [5u8; 40];
        let iv = [6u8; 16];
        let mut key = [0u8; 32];
        let rounds = std::num::NonZeroU32::new(1000).unwrap();
        pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, rounds, &salt, b"pw", &mut key);
        let ct = CbcCipher::Aes256.encrypt(&key, &iv, b"the key").unwrap();
        let der = pbes2_epki(&salt, "2.16.840.1.101.3.4.1.42", &iv, &ct);
        let k = EncryptedKey::parse(&der).unwrap();
        assert_eq!(
            k.describe(),
            "PKCS#8 PBES2 PBKDF2-HMAC-SHA256 AES-256-CBC, 1000 iterations"
        );
        assert_eq!(k.decrypt(&pass).ok().unwrap().as_slice(), b"the key");
        assert!(matches!(
            k.decrypt(&Secret::new("wrong".into())),
            Err(DecryptError::BadPadding)
        ));
    }

    #[test]
    fn short_des_iv_is_refused_without_a_panic() {
        for (cipher, iv_len) in [("1.2.840.113549.3.7", 4), ("1.3.14.3.2.7", 0)] {
            let der = pbes2_epki(&[1; 16], cipher, &vec![0; iv_len], &[0; 16]);
            let k = EncryptedKey::parse(&der).unwrap();
            assert_eq!(
                k.unsupported_reason(),
                Some("damaged encrypted PKCS#8 key: its DES IV is shorter than 8 bytes"),
                "{cipher}"
            );
            assert!(k.decrypt(&Secret::new("pw".into())).is_err());
        }
    }
}
