//! PKCS#12 (`.p12`/`.pfx`) keystores and truststores: written by certmesh's own encoder,
//! read and edited bag by bag ([`pfx`]).
//!
//! What the consumers decide, and why the code looks the way it does:
//!
//! * Two protection modes. `modern` (PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC, MAC
//!   HMAC-SHA256) is what Java 11.0.12+ and OpenSSL 3 write themselves; `legacy`
//!   (PBEWithSHA1And3-KeyTripleDES-CBC for keys and certificates, MAC HMAC-SHA1) is the
//!   newest thing Java 8, OpenSSL 1.x, Windows, macOS and IBM GSKit all open. 40-bit RC2
//!   (what `openssl pkcs12 -export -legacy` still uses for certificates) is read but never
//!   written.
//! * The private key and the leaf certificate carry the same localKeyId (the SHA-1 of the
//!   certificate, as OpenSSL computes it), which is how Java, OpenSSL and Windows pair them.
//! * Certificate-only stores mark every certificate with Oracle's trusted-certificate
//!   attribute; without it Java's PKCS12 KeyStore silently skips them.
//! * Every file is decoded again before it is called good, so a file certmesh reports as
//!   written is one it can read back with the same key and chain. The check opens the
//!   bytes with the keys the encoder derived (`readback`), so each of the file's key
//!   derivations runs once, as the format needs, not once more to check it.

mod encode;
#[cfg(test)]
mod encode_tests;
mod kdf;
mod oids;
mod outline;
pub mod pfx;
mod readback;
pub mod stash;

use std::path::Path;

use serde::Serialize;
use x509_parser::prelude::*;

pub use outline::{looks_like_pkcs12, outline, Outline, Protection};

use crate::fsio::{self, Overwrite};
use crate::key::PrivateKey;
use crate::pass::Secret;
use crate::x509::KeyDesc;
use crate::{Error, Result};

/// Key-derivation and MAC iterations for files certmesh writes: the figure Java 17 and
/// p12-keystore use; every consumer in the target table opens it in well under a second.
pub const ITERATIONS: u32 = 10_000;

/// How a PKCS#12 file is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compat {
    /// PBES2/PBKDF2-HMAC-SHA256/AES-256-CBC, MAC HMAC-SHA256.
    Modern,
    /// PBEWithSHA1And3-KeyTripleDES-CBC, MAC HMAC-SHA1.
    Legacy,
}

impl Compat {
    /// Parses `modern` or `legacy`.
    pub fn parse(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "modern" => Ok(Compat::Modern),
            "legacy" => Ok(Compat::Legacy),
            _ => Err(Error::Usage(format!(
                "unknown PKCS#12 mode '{name}': expected modern or legacy"
            ))),
        }
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Compat::Modern => "modern",
            Compat::Legacy => "legacy",
        }
    }

    fn protection(self) -> encode::Protection {
        let (cipher, mac) = match self {
            Compat::Modern => (kdf::BagCipher::Pbes2Aes256, kdf::MacDigest::Sha256),
            Compat::Legacy => (kdf::BagCipher::PbeSha1Des3, kdf::MacDigest::Sha1),
        };
        encode::Protection {
            cipher,
            mac,
            iterations: ITERATIONS,
        }
    }

    /// The encryption as [`Outline`] names it.
    pub fn encryption_name(self) -> &'static str {
        match self {
            Compat::Modern => "PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC)",
            Compat::Legacy => "PBEWithSHA1And3-KeyTripleDES-CBC",
        }
    }

    /// The MAC as [`Outline`] names it.
    pub fn mac_name(self) -> &'static str {
        match self {
            Compat::Modern => "HMAC-SHA256",
            Compat::Legacy => "HMAC-SHA1",
        }
    }
}

/// Consumers, each mapped to the newest mode it opens. README.md carries the same table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Java8,
    Java11,
    Java17,
    Openssl1,
    Openssl3,
    Windows,
    Macos,
    IbmJdk,
    Ihs,
}

impl Target {
    /// Every accepted name, for help texts and error messages.
    pub const NAMES: &'static str =
        "java8, java11, java17, openssl1, openssl3, windows, macos, ibm-jdk, ihs";

    /// Parses a target name.
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "java8" => Target::Java8,
            "java11" => Target::Java11,
            "java17" => Target::Java17,
            "openssl1" => Target::Openssl1,
            "openssl3" => Target::Openssl3,
            "windows" => Target::Windows,
            "macos" => Target::Macos,
            "ibm-jdk" | "ibmjdk" => Target::IbmJdk,
            "ihs" => Target::Ihs,
            _ => {
                return Err(Error::Usage(format!(
                    "unknown target '{name}': expected one of {}",
                    Self::NAMES
                )))
            }
        })
    }

    /// The mode this consumer needs. `modern` where the reader is known to take PBES2
    /// with AES and a SHA-256 MAC (Java 11.0.12+ and 17, OpenSSL 3); `legacy` everywhere
    /// else: Java 8 before 8u301, Windows before 10 1709 / Server 2019, the macOS
    /// Security framework, IBM's JDK and GSKit (IHS) only read the PKCS#12 PBE
    /// algorithms, and OpenSSL 1.x writes legacy itself, so every tool built on it is
    /// known to read that.
    pub fn compat(self) -> Compat {
        match self {
            Target::Java11 | Target::Java17 | Target::Openssl3 => Compat::Modern,
            Target::Java8
            | Target::Openssl1
            | Target::Windows
            | Target::Macos
            | Target::IbmJdk
            | Target::Ihs => Compat::Legacy,
        }
    }
}

/// A private key with its certificates, to be written as one keystore entry.
pub struct KeyEntry<'a> {
    /// The friendlyName Java shows as the alias.
    pub alias: &'a str,
    pub key: &'a PrivateKey,
    /// DER certificates, leaf first, then the issuing CA, up to the root.
    pub certs: &'a [Vec<u8>],
}

/// The localKeyId OpenSSL gives a key and its certificate: SHA-1 of the certificate.
fn local_key_id(cert_der: &[u8]) -> Vec<u8> {
    crate::x509::sha1(cert_der)
}

fn check_alias(alias: &str) -> Result<()> {
    if alias.is_empty() {
        return Err(Error::Usage("an alias cannot be empty".into()));
    }
    if alias
        .chars()
        .any(|c| u32::from(c) > 0xffff || c.is_control())
    {
        return Err(Error::Usage(format!(
            "alias '{}' has characters a PKCS#12 friendlyName (BMPString) cannot hold",
            alias.escape_default()
        )));
    }
    Ok(())
}

/// Parses a certificate the way the writer needs it, with a message that names the writer.
fn parse_cert(der: &[u8]) -> Result<X509Certificate<'_>> {
    X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .map_err(|e| Error::Crypto(format!("certificate rejected by the PKCS#12 writer: {e}")))
}

/// A PKCS#12 file encoded and checked by [`key_store`] or [`trust_store`], with the
/// password it was sealed with, so that [`save`] can hold the password it is given to
/// the one the file opens with.
pub struct Pkcs12File {
    bytes: Vec<u8>,
    pass: Secret,
}

impl Pkcs12File {
    /// The file's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The file's bytes, for writers other than [`save`].
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// True when `pass` is the password the file was sealed with.
    fn opens_with(&self, pass: &Secret) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(self.pass.as_bytes(), pass.as_bytes())
            .is_ok()
    }
}

impl std::ops::Deref for Pkcs12File {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// Encodes, then decodes the result again with the keys the encoder derived and compares
/// it with `expect`.
fn seal_and_check(
    key: Option<&encode::KeyBag<'_>>,
    certs: &[encode::CertBag<'_>],
    expect: &Expected<'_>,
    pass: &Secret,
) -> Result<Pkcs12File> {
    let encoded = encode::encode(key, certs, expect.compat.protection(), pass)?;
    verify(&encoded.bytes, &encoded.secrets, expect)
        .map_err(|p| Error::Crypto(format!("the PKCS#12 file failed its read-back check: {p}")))?;
    Ok(Pkcs12File {
        bytes: encoded.bytes,
        pass: pass.clone(),
    })
}

/// Encodes a keystore holding one private key entry with its chain, and checks that it
/// decodes back to the same key and certificates.
///
/// The key bag is named `alias`; every certificate bag is named with its subject DN (left
/// out when the DN has characters a BMPString cannot hold), and the leaf shares the key's
/// localKeyId.
pub fn key_store(entry: &KeyEntry<'_>, compat: Compat, pass: &Secret) -> Result<Pkcs12File> {
    check_alias(entry.alias)?;
    let leaf = entry
        .certs
        .first()
        .ok_or_else(|| Error::Usage("a key entry needs its certificate".into()))?;
    if !entry.key.matches_cert_der(leaf)? {
        return Err(Error::KeyMismatch {
            path: None,
            problem: "the private key does not match the certificate".into(),
        });
    }
    let id = local_key_id(leaf);
    let subjects = entry
        .certs
        .iter()
        .map(|c| parse_cert(c).map(|c| c.subject().to_string()))
        .collect::<Result<Vec<_>>>()?;
    let certs: Vec<encode::CertBag<'_>> = entry
        .certs
        .iter()
        .zip(&subjects)
        .enumerate()
        .map(|(i, (der, subject))| encode::CertBag {
            der,
            friendly_name: der::asn1::BmpString::from_utf8(subject)
                .is_ok()
                .then_some(subject.as_str()),
            local_key_id: (i == 0).then_some(id.as_slice()),
            trusted: false,
        })
        .collect();
    let key = encode::KeyBag {
        pkcs8: entry.key.pkcs8_der(),
        friendly_name: entry.alias,
        local_key_id: &id,
    };
    let expect = Expected {
        compat,
        key: Some(entry.key.pkcs8_der()),
        certs: entry.certs,
        trusted: 0,
    };
    seal_and_check(Some(&key), &certs, &expect, pass)
}

/// Encodes a truststore: every certificate as a trusted-certificate entry under its
/// alias, in alias order. Aliases must differ (ignoring case, as Java compares them).
pub fn trust_store(
    certs: &[(String, Vec<u8>)],
    compat: Compat,
    pass: &Secret,
) -> Result<Pkcs12File> {
    let mut seen = std::collections::BTreeSet::new();
    for (alias, der) in certs {
        check_alias(alias)?;
        if !seen.insert(alias.to_lowercase()) {
            return Err(Error::Usage(format!(
                "alias '{alias}' is used twice (Java compares aliases ignoring case)"
            )));
        }
        parse_cert(der)?;
    }
    let mut sorted: Vec<&(String, Vec<u8>)> = certs.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let bags: Vec<encode::CertBag<'_>> = sorted
        .iter()
        .map(|(alias, der)| encode::CertBag {
            der,
            friendly_name: Some(alias),
            local_key_id: None,
            trusted: true,
        })
        .collect();
    let ders: Vec<Vec<u8>> = certs.iter().map(|(_, d)| d.clone()).collect();
    let expect = Expected {
        compat,
        key: None,
        certs: &ders,
        trusted: ders.len(),
    };
    seal_and_check(None, &bags, &expect, pass)
}

/// What a freshly written file must decode to.
struct Expected<'a> {
    compat: Compat,
    key: Option<&'a [u8]>,
    certs: &'a [Vec<u8>],
    trusted: usize,
}

/// Decodes `bytes` with the keys the encoder derived (`secrets`; no key is derived here)
/// and compares with what was meant to be written: the MAC and encryption algorithms,
/// the key, its pairing with the leaf, the set of certificates and which are trusted.
fn verify(
    bytes: &[u8],
    secrets: &kdf::Secrets,
    expect: &Expected<'_>,
) -> std::result::Result<(), String> {
    let o = outline::outline(bytes)?;
    match &o.mac {
        Some(m) if m.algorithm == expect.compat.mac_name() => {}
        Some(m) => {
            return Err(format!(
                "MAC is {} instead of {}",
                m.algorithm,
                expect.compat.mac_name()
            ))
        }
        None => return Err("the file has no MAC".into()),
    }
    let enc = expect.compat.encryption_name();
    if let Some(p) = o
        .content_encryption
        .iter()
        .chain(&o.key_encryption)
        .find(|p| p.algorithm != enc)
    {
        return Err(format!("encrypted with {} instead of {enc}", p.algorithm));
    }
    if o.content_encryption.is_empty() {
        return Err("the certificates are not encrypted".into());
    }
    let opened = readback::open(bytes, secrets)?;
    match expect.key {
        Some(key) => {
            if o.key_encryption.len() != 1 || opened.keys.len() != 1 {
                return Err("expected exactly one encrypted private key".into());
            }
            let k = &opened.keys[0];
            if k.pkcs8.as_slice() != key {
                return Err("the private key differs from the one given".into());
            }
            let id = k.local_key_id.as_ref().ok_or("the key has no localKeyId")?;
            let paired = opened
                .certs
                .iter()
                .find(|c| c.local_key_id.as_ref() == Some(id))
                .ok_or("no certificate carries the key's localKeyId")?;
            if Some(paired.der.as_slice()) != expect.certs.first().map(Vec::as_slice) {
                return Err("the certificate paired with the key is not the leaf".into());
            }
        }
        None => {
            if !opened.keys.is_empty() {
                return Err("a private key found in a truststore".into());
            }
        }
    }
    let mut got: Vec<&[u8]> = opened.certs.iter().map(|c| c.der.as_slice()).collect();
    let mut want: Vec<&[u8]> = expect.certs.iter().map(Vec::as_slice).collect();
    got.sort();
    want.sort();
    if got != want {
        return Err("the certificates differ from the ones given".into());
    }
    let trusted = opened.certs.iter().filter(|c| c.trusted).count();
    if trusted != expect.trusted {
        return Err(format!(
            "{trusted} certificates are marked trusted instead of {}",
            expect.trusted
        ));
    }
    Ok(())
}

/// Writes a PKCS#12 file from [`key_store`] or [`trust_store`] (mode 0600, atomically),
/// then reads it back from disk and checks the bytes are the ones that passed the
/// read-back check. `pass` must be the password the file was sealed with (what a stash
/// file or the operator is given). On a failed check the new file is removed.
///
/// The file is not decoded again here: its bytes were decoded and checked when they were
/// encoded, and equal bytes on disk decode the same.
pub fn save(path: &Path, file: &Pkcs12File, pass: &Secret, overwrite: Overwrite) -> Result<()> {
    if !file.opens_with(pass) {
        return Err(Error::WrongPassphrase {
            path: path.to_path_buf(),
            problem: "wrong password: the file was sealed with a different one".into(),
        });
    }
    fsio::write_file(path, file.as_bytes(), fsio::PRIVATE, overwrite)?;
    let check = fsio::read(path).and_then(|back| {
        if back != file.as_bytes() {
            return Err(Error::bad_file(
                path,
                "content on disk differs from what was written",
            ));
        }
        Ok(())
    });
    if let Err(e) = check {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(())
}

/// Whether opening the file needs a password: it has a MAC or encrypts something. A
/// file with neither (JDK 18+ `cacerts`, `openssl pkcs12 -export -nomac -certpbe NONE`) is
/// read, and written back, without one.
pub fn needs_password(data: &[u8]) -> bool {
    outline::outline(data).map_or(true, |o| {
        o.mac.is_some() || !o.content_encryption.is_empty() || !o.key_encryption.is_empty()
    })
}

/// A PKCS#12 file opened with its password, bag by bag ([`pfx::Pfx`]).
pub struct Decoded {
    pub outline: Outline,
    pfx: pfx::Pfx,
    pass: Secret,
}

/// Decodes a PKCS#12 file; every error names `path` and says what is wrong in one line
/// (wrong password, altered file, truncated file, unsupported algorithm). The password is
/// not used for a file that needs none (see [`needs_password`]).
pub fn decode(path: &Path, data: &[u8], pass: &Secret) -> Result<Decoded> {
    let outline = outline::outline(data).map_err(|p| Error::bad_file(path, p))?;
    let pfx = pfx::Pfx::open(data, Some(pass)).map_err(|e| e.naming(path))?;
    Ok(Decoded {
        outline,
        pfx,
        pass: pass.clone(),
    })
}

/// One bag of a PKCS#12 file, described.
#[derive(Debug, Serialize)]
pub struct BagReport {
    /// `key`, `certificate`, or `other` (secret, CRL and unknown bags, carried untouched).
    pub kind: &'static str,
    /// The friendlyName, which Java shows as the alias.
    pub alias: Option<String>,
    /// Lower-case hex localKeyId, which pairs a key with its certificate.
    pub local_key_id: Option<String>,
    /// Carries Java's trusted-certificate attribute.
    pub trusted: bool,
    /// The certificate's subject (for a key: of its paired certificate).
    pub subject: Option<String>,
    /// The certificate's not-after (for a key: of its paired certificate), RFC 3339.
    pub not_after: Option<String>,
    pub days_left: Option<i64>,
    /// For a key, its type and size (None when certmesh cannot use the key type).
    pub key: Option<KeyDesc>,
    /// The certificate's SHA-256 fingerprint (for a key: of its paired certificate),
    /// colon-separated upper-case hex as keytool prints it.
    pub sha256: Option<String>,
    /// For an `other` bag, what it is (e.g. `secret bag`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

impl Decoded {
    /// The opened file, for edits.
    pub fn pfx(&self) -> &pfx::Pfx {
        &self.pfx
    }

    /// The opened file, for edits.
    pub fn into_pfx(self) -> pfx::Pfx {
        self.pfx
    }

    fn certs(&self) -> impl Iterator<Item = &pfx::Bag> {
        self.pfx.bags().filter(|b| b.certificate().is_some())
    }

    /// The certificate bag paired with a key bag by localKeyId.
    fn paired(&self, key: &pfx::Bag) -> Option<&[u8]> {
        let id = key.local_key_id.as_ref()?;
        self.certs()
            .find(|c| c.local_key_id.as_ref() == Some(id))
            .and_then(pfx::Bag::certificate)
    }

    /// Every key bag, then every certificate bag, then any other bag, in file order.
    pub fn bags(&self) -> Vec<BagReport> {
        let mut out = Vec::new();
        for k in self.pfx.bags().filter(|b| b.is_key()) {
            let paired = self.paired(k);
            let (subject, not_after, days_left) =
                paired.map(cert_summary).unwrap_or((None, None, None));
            out.push(BagReport {
                kind: "key",
                alias: k.friendly_name.clone(),
                local_key_id: k.local_key_id.as_ref().map(hex::encode),
                trusted: false,
                subject,
                not_after,
                days_left,
                key: k
                    .private_key(&self.pass)
                    .ok()
                    .and_then(|der| PrivateKey::from_pkcs8_der(&der).ok())
                    .map(|k| k.describe().clone()),
                sha256: paired.map(fingerprint),
                content: None,
            });
        }
        for c in self.certs() {
            let der = c.certificate().unwrap_or_default();
            let (subject, not_after, days_left) = cert_summary(der);
            out.push(BagReport {
                kind: "certificate",
                alias: c.friendly_name.clone(),
                local_key_id: c.local_key_id.as_ref().map(hex::encode),
                trusted: c.trusted,
                subject,
                not_after,
                days_left,
                key: None,
                sha256: Some(fingerprint(der)),
                content: None,
            });
        }
        for o in self.pfx.bags() {
            if let pfx::BagKind::Other(what) = &o.kind {
                out.push(BagReport {
                    kind: "other",
                    alias: o.friendly_name.clone(),
                    local_key_id: o.local_key_id.as_ref().map(hex::encode),
                    trusted: false,
                    subject: None,
                    not_after: None,
                    days_left: None,
                    key: None,
                    sha256: None,
                    content: Some(what.clone()),
                });
            }
        }
        out
    }

    /// The trusted-certificate entries (alias, DER), in file order. A certificate bag
    /// without Java's trusted attribute (one paired with a key) is not a trusted entry.
    pub fn trusted_certs(&self) -> Vec<(String, Vec<u8>)> {
        self.certs()
            .filter(|c| c.trusted)
            .map(|c| {
                let der = c.certificate().unwrap_or_default().to_vec();
                (bag_alias(c, &der), der)
            })
            .collect()
    }

    /// The key entries (alias, leaf certificate DER when paired), in file order.
    pub fn key_entries(&self) -> Vec<(String, Option<Vec<u8>>)> {
        self.pfx
            .bags()
            .filter(|b| b.is_key())
            .map(|k| {
                let leaf = self.paired(k).map(<[u8]>::to_vec);
                let alias = match (&k.friendly_name, &leaf) {
                    (Some(n), _) => n.clone(),
                    (None, Some(der)) => cert_summary(der).0.unwrap_or_default().to_lowercase(),
                    (None, None) => String::new(),
                };
                (alias, leaf)
            })
            .collect()
    }

    /// Certificates Java does not load: bags without the trusted attribute that belong
    /// to no key (neither paired with one nor in the issuer chain above its certificate).
    /// `openssl pkcs12 -export -nokeys` writes only such bags.
    pub fn untrusted_certs(&self) -> Vec<Vec<u8>> {
        let all: Vec<&[u8]> = self.certs().filter_map(pfx::Bag::certificate).collect();
        let mut used: Vec<Vec<u8>> = Vec::new();
        for k in self.pfx.bags().filter(|b| b.is_key()) {
            if let Some(leaf) = self.paired(k) {
                used.push(leaf.to_vec());
                used.extend(issuer_chain(leaf, &all));
            }
        }
        self.certs()
            .filter(|c| !c.trusted)
            .filter_map(pfx::Bag::certificate)
            .filter(|d| !used.iter().any(|u| u.as_slice() == *d))
            .map(<[u8]>::to_vec)
            .collect()
    }

    /// Whether the file holds private keys.
    pub fn has_keys(&self) -> bool {
        self.pfx.bags().any(pfx::Bag::is_key)
    }

    /// The protection mode the file was written with: legacy when any part uses
    /// 3DES/RC2 or a SHA-1 MAC, modern otherwise.
    pub fn compat(&self) -> Compat {
        let old = |p: &outline::Protection| !p.algorithm.contains("PBES2");
        let weak = self.outline.content_encryption.iter().any(old)
            || self.outline.key_encryption.iter().any(old)
            || self
                .outline
                .mac
                .as_ref()
                .is_some_and(|m| m.algorithm.contains("SHA1") || m.algorithm.contains("SHA-1"));
        if weak {
            Compat::Legacy
        } else {
            Compat::Modern
        }
    }

    /// The DER of every certificate bag, in file order: a truststore's anchors.
    pub fn certificates(&self) -> Vec<Vec<u8>> {
        self.certs()
            .filter_map(pfx::Bag::certificate)
            .map(<[u8]>::to_vec)
            .collect()
    }

    /// The single private key with its certificate, the CA chain above it, and every
    /// other certificate of the file.
    pub fn key_and_chain(&self, path: &Path) -> Result<Extracted> {
        let keys: Vec<&pfx::Bag> = self.pfx.bags().filter(|b| b.is_key()).collect();
        let k = match keys.as_slice() {
            [k] => *k,
            [] => {
                return Err(Error::bad_file(
                    path,
                    "holds no private key (a truststore?)",
                ))
            }
            many => {
                return Err(Error::bad_file(
                    path,
                    format!(
                        "holds {} private keys; only single-key files can be split into PEM",
                        many.len()
                    ),
                ))
            }
        };
        let pkcs8 = k.private_key(&self.pass).map_err(|e| e.naming(path))?;
        let key =
            PrivateKey::from_pkcs8_der(&pkcs8).map_err(|e| Error::bad_file(path, e.to_string()))?;
        let all: Vec<&[u8]> = self.certs().filter_map(pfx::Bag::certificate).collect();
        if all.is_empty() {
            // A key alone (`openssl pkcs12 -export -nocerts`): nothing else to split.
            return Ok(Extracted {
                alias: k.friendly_name.clone(),
                key,
                leaf: None,
                chain: Vec::new(),
                extra: Vec::new(),
            });
        }
        let leaf = match self.paired(k) {
            Some(c) => c.to_vec(),
            None => all
                .iter()
                .find(|d| key.matches_cert_der(d).unwrap_or(false))
                .ok_or_else(|| Error::bad_file(path, "no certificate matches the private key"))?
                .to_vec(),
        };
        if !key.matches_cert_der(&leaf)? {
            return Err(Error::KeyMismatch {
                path: Some(path.to_path_buf()),
                problem: "the certificate paired with the key holds a different public key".into(),
            });
        }
        let others: Vec<&[u8]> = all
            .iter()
            .copied()
            .filter(|d| *d != leaf.as_slice())
            .collect();
        let chain = issuer_chain(&leaf, &others);
        let mut extra: Vec<Vec<u8>> = Vec::new();
        for d in others {
            if !chain.iter().any(|c| c.as_slice() == d) && !extra.iter().any(|e| e.as_slice() == d)
            {
                extra.push(d.to_vec());
            }
        }
        Ok(Extracted {
            alias: k.friendly_name.clone(),
            key,
            leaf: Some(leaf),
            chain,
            extra,
        })
    }
}

/// The alias Java shows for a certificate bag: its friendlyName, or else the subject DN
/// in lower case.
pub fn bag_alias(bag: &pfx::Bag, der: &[u8]) -> String {
    bag.friendly_name
        .clone()
        .unwrap_or_else(|| cert_summary(der).0.unwrap_or_default().to_lowercase())
}

fn fingerprint(der: &[u8]) -> String {
    crate::x509::colon_hex(&crate::x509::sha256(der))
}

/// A key entry taken out of a PKCS#12 file.
pub struct Extracted {
    pub alias: Option<String>,
    pub key: PrivateKey,
    /// The key's certificate; `None` for a file that holds a key and no certificate.
    pub leaf: Option<Vec<u8>>,
    /// The CA certificates above the leaf, issuing CA first.
    pub chain: Vec<Vec<u8>>,
    /// Every other certificate of the file (other CAs, signers), in file order.
    pub extra: Vec<Vec<u8>>,
}

/// Orders the issuers of `leaf` found among `pool`, nearest first, by following
/// issuer-to-subject names (a cycle or a missing link ends the walk).
fn issuer_chain(leaf: &[u8], pool: &[&[u8]]) -> Vec<Vec<u8>> {
    let parsed: Vec<(&[u8], X509Certificate<'_>)> = pool
        .iter()
        .filter_map(|d| X509Certificate::from_der(d).ok().map(|(_, c)| (*d, c)))
        .collect();
    let Ok((_, leaf_cert)) = X509Certificate::from_der(leaf) else {
        return Vec::new();
    };
    let mut subject = leaf_cert.subject().as_raw();
    let mut issuer = leaf_cert.issuer().as_raw();
    let mut chain: Vec<Vec<u8>> = Vec::new();
    while subject != issuer {
        let Some((der, next)) = parsed.iter().find(|(d, c)| {
            c.subject().as_raw() == issuer && !chain.iter().any(|x| x.as_slice() == *d)
        }) else {
            break;
        };
        chain.push(der.to_vec());
        subject = next.subject().as_raw();
        issuer = next.issuer().as_raw();
    }
    chain
}

fn cert_summary(der: &[u8]) -> (Option<String>, Option<String>, Option<i64>) {
    match X509Certificate::from_der(der) {
        Ok((_, c)) => {
            let na = c.validity().not_after;
            let days = (na.to_datetime() - ::time::OffsetDateTime::now_utc()).whole_days();
            (
                Some(c.subject().to_string()),
                Some(crate::x509::rfc3339(&na)),
                Some(days),
            )
        }
        Err(_) => (None, None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyAlg;

    fn self_signed(key: &PrivateKey, cn: &str) -> Vec<u8> {
        crate::cert::testing::self_signed_by(key, cn).der().to_vec()
    }

    #[test]
    fn both_modes_round_trip_and_name_their_algorithms() {
        let key = PrivateKey::generate(KeyAlg::P256).unwrap();
        let cert = self_signed(&key, "a.example.com");
        let pass = Secret::new("pw".into());
        for compat in [Compat::Modern, Compat::Legacy] {
            let certs = vec![cert.clone()];
            let entry = KeyEntry {
                alias: "a",
                key: &key,
                certs: &certs,
            };
            let bytes = key_store(&entry, compat, &pass).unwrap();
            assert!(looks_like_pkcs12(&bytes));
            let d = decode(Path::new("a.p12"), &bytes, &pass).unwrap();
            assert_eq!(d.outline.mac.as_ref().unwrap().algorithm, compat.mac_name());
            assert_eq!(
                d.outline.key_encryption[0].algorithm,
                compat.encryption_name()
            );
            assert_eq!(
                d.outline.key_encryption[0].iterations,
                u64::from(ITERATIONS)
            );
            let x = d.key_and_chain(Path::new("a.p12")).unwrap();
            assert_eq!(x.key.pkcs8_der(), key.pkcs8_der());
            assert_eq!(x.alias.as_deref(), Some("a"));
            let wrong = decode(Path::new("a.p12"), &bytes, &Secret::new("no".into()));
            let wrong = wrong.err().unwrap();
            assert!(wrong.to_string().contains("wrong password"));
            assert!(
                matches!(&wrong, Error::WrongPassphrase { path, .. } if path.as_os_str() == "a.p12"),
                "{wrong:?}"
            );
        }
    }

    #[test]
    fn save_removes_a_file_that_fails_its_read_back_check() {
        let key = PrivateKey::generate(KeyAlg::P256).unwrap();
        let certs = vec![self_signed(&key, "c.example.com")];
        let entry = KeyEntry {
            alias: "c",
            key: &key,
            certs: &certs,
        };
        let pass = Secret::new("pw".into());
        let bytes = key_store(&entry, Compat::Legacy, &pass).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.p12");
        let err = save(
            &path,
            &bytes,
            &Secret::new("other".into()),
            Overwrite::Refuse,
        );
        let err = err.unwrap_err();
        assert!(err.to_string().contains("wrong password"));
        assert!(matches!(err, Error::WrongPassphrase { .. }), "{err:?}");
        assert!(!path.exists(), "the unreadable file was removed");
        save(&path, &bytes, &pass, Overwrite::Refuse).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn mismatched_key_is_refused() {
        let key = PrivateKey::generate(KeyAlg::P256).unwrap();
        let other = PrivateKey::generate(KeyAlg::P256).unwrap();
        let certs = vec![self_signed(&other, "b.example.com")];
        let entry = KeyEntry {
            alias: "b",
            key: &key,
            certs: &certs,
        };
        let err = key_store(&entry, Compat::Modern, &Secret::new("pw".into()));
        assert!(
            matches!(err, Err(Error::KeyMismatch { path: None, .. })),
            "{:?}",
            err.err()
        );
    }
}
