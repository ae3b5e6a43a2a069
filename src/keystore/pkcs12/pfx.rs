//! Any tool's PKCS#12 file at the level of its bags: opened with the store password (or
//! none, for a file without MAC and encryption), edited, and written back with every bag
//! and every content certmesh was not asked to change kept byte for byte.
//!
//! A keystore made by keytool, Liberty or IBM HTTP Server holds private keys next to its
//! signers; one made by `openssl pkcs12 -export -nokeys` holds certificates without Java's
//! trusted attribute; JDK 18+ `cacerts` has neither MAC nor encryption. An edit must lose
//! none of it, so nothing is re-created from a decoded model: shrouded key bags stay
//! encrypted as they were (no key password is needed), secret, CRL and unknown bags and
//! attributes are carried as raw DER, a SafeContents whose bags did not change keeps its
//! bytes, and only the SafeContents that changed is encrypted again, with its own
//! algorithm and iterations (fresh salt and IV). The MAC, when the file has one, is
//! computed again with the store password, with its digest and iteration count.
//!
//! Decryption goes through [`EncryptedKey`], the code that reads encrypted PKCS#8 key
//! files, so every PBES1/PBES2 variant is read alike in both.

use zeroize::Zeroizing;

use super::encode;
use super::oids;
use super::outline::{
    integer, tlv, Reader, Tlv, TAG_EXPLICIT_0, TAG_IMPLICIT_0, TAG_OCTET_STRING, TAG_OID,
    TAG_SEQUENCE,
};
use crate::key::pbe::{pkcs12_passwords, reseal, DecryptError, EncryptedKey};
use crate::keystore::jks::normalize_alias;
use crate::pass::Secret;
use crate::{Error, Result};

const TAG_SET: u8 = 0x31;
const TAG_BMP_STRING: u8 = 0x1e;
const TAG_CONSTRUCTED_IMPLICIT_0: u8 = 0xa0;

/// The most MAC iterations certmesh runs: a hostile file must not hang a run.
const MAX_MAC_ITERATIONS: u64 = 10_000_000;

/// Why a PKCS#12 file or one of its bags could not be opened: the password (the MAC or
/// a decryption failed with it), or anything else. Both are short phrases for
/// "PATH: problem"; [`OpenError::naming`] makes them the library's error for a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    WrongPassword(String),
    Other(String),
}

impl OpenError {
    /// The error for the file at `path`: [`Error::WrongPassphrase`] for a wrong password,
    /// [`Error::BadFile`] otherwise.
    pub fn naming(self, path: &std::path::Path) -> Error {
        match self {
            OpenError::WrongPassword(problem) => Error::WrongPassphrase {
                path: path.to_path_buf(),
                problem,
            },
            OpenError::Other(problem) => Error::bad_file(path, problem),
        }
    }
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::WrongPassword(p) | OpenError::Other(p) => f.write_str(p),
        }
    }
}

impl From<String> for OpenError {
    fn from(problem: String) -> Self {
        OpenError::Other(problem)
    }
}

impl From<&str> for OpenError {
    fn from(problem: &str) -> Self {
        OpenError::Other(problem.to_string())
    }
}

/// A PKCS#12 file, opened.
pub struct Pfx {
    contents: Vec<Content>,
    mac: Option<Mac>,
    /// The file opened with an empty password given to the KDF as no bytes at all (Java's
    /// way) rather than as the empty BMPString (OpenSSL's); an edit keeps that form.
    raw_empty: bool,
}

/// One ContentInfo of the AuthenticatedSafe.
struct Content {
    /// The ContentInfo's DER as read, written back while its bags are unchanged.
    raw: Vec<u8>,
    /// The AlgorithmIdentifier DER of an encrypted content; `None` for plain data.
    encryption: Option<Vec<u8>>,
    bags: Vec<Bag>,
    changed: bool,
}

/// One SafeBag.
pub struct Bag {
    /// The SafeBag's DER, attributes included, as read or as certmesh made it.
    raw: Vec<u8>,
    pub kind: BagKind,
    /// The friendlyName attribute, which Java shows as the alias.
    pub friendly_name: Option<String>,
    /// The localKeyId attribute, which pairs a key with its certificate.
    pub local_key_id: Option<Vec<u8>>,
    /// Carries Oracle's trusted-certificate attribute: Java loads a certificate without
    /// a key as a trusted entry only then.
    pub trusted: bool,
}

/// What a bag holds.
pub enum BagKind {
    /// An X.509 certificate (DER).
    Certificate(Vec<u8>),
    /// A pkcs8ShroudedKeyBag: the encryption AlgorithmIdentifier DER and the ciphertext.
    ShroudedKey { alg: Vec<u8>, data: Vec<u8> },
    /// A keyBag: an unencrypted PKCS#8 `PrivateKeyInfo`.
    Key(Zeroizing<Vec<u8>>),
    /// Anything else (secret, CRL, nested SafeContents, non-X.509 certificate bags): the
    /// bag type's name or OID, carried untouched.
    Other(String),
}

impl Bag {
    /// Whether the bag holds a private key, encrypted or not.
    pub fn is_key(&self) -> bool {
        matches!(self.kind, BagKind::ShroudedKey { .. } | BagKind::Key(_))
    }

    /// The certificate's DER, for a certificate bag.
    pub fn certificate(&self) -> Option<&[u8]> {
        match &self.kind {
            BagKind::Certificate(der) => Some(der),
            _ => None,
        }
    }

    /// The private key's PKCS#8 `PrivateKeyInfo` DER, decrypted with `pass` for a
    /// shrouded key. Errors are short phrases.
    pub fn private_key(&self, pass: &Secret) -> std::result::Result<Zeroizing<Vec<u8>>, OpenError> {
        match &self.kind {
            BagKind::Key(k) => Ok(k.clone()),
            BagKind::ShroudedKey { alg, data } => decrypt(alg, data, pass, "private key"),
            _ => Err("not a key bag".into()),
        }
    }
}

/// The MAC's parameters, kept so that an edit computes it again the same way.
struct Mac {
    digest: MacDigest,
    salt_len: usize,
    iterations: u32,
}

#[derive(Clone, Copy)]
enum MacDigest {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl MacDigest {
    fn from_oid(body: &[u8]) -> Option<Self> {
        const TABLE: [(&[u8], MacDigest); 5] = [
            (&[0x2b, 0x0e, 0x03, 0x02, 0x1a], MacDigest::Sha1),
            (
                &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04],
                MacDigest::Sha224,
            ),
            (
                &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01],
                MacDigest::Sha256,
            ),
            (
                &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02],
                MacDigest::Sha384,
            ),
            (
                &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03],
                MacDigest::Sha512,
            ),
        ];
        TABLE.iter().find(|(o, _)| *o == body).map(|(_, d)| *d)
    }

    fn oid_body(self) -> &'static [u8] {
        match self {
            MacDigest::Sha1 => &[0x2b, 0x0e, 0x03, 0x02, 0x1a],
            MacDigest::Sha224 => &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04],
            MacDigest::Sha256 => &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01],
            MacDigest::Sha384 => &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02],
            MacDigest::Sha512 => &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03],
        }
    }

    /// The HMAC of `data` keyed with the PKCS#12 KDF (RFC 7292 Appendix B) over
    /// `password` (already in the KDF's byte form).
    fn mac(self, password: &[u8], salt: &[u8], iterations: u32, data: &[u8]) -> Vec<u8> {
        use aws_lc_rs::hmac;
        use pkcs12::kdf::{derive_key, Pkcs12KeyType::Mac as M};
        let rounds = iterations as i32;
        let (alg, key) = match self {
            MacDigest::Sha1 => (
                hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
                derive_key::<sha1::Sha1>(password, salt, M, rounds, 20),
            ),
            MacDigest::Sha224 => (
                hmac::HMAC_SHA224,
                derive_key::<sha2::Sha224>(password, salt, M, rounds, 28),
            ),
            MacDigest::Sha256 => (
                hmac::HMAC_SHA256,
                derive_key::<sha2::Sha256>(password, salt, M, rounds, 32),
            ),
            MacDigest::Sha384 => (
                hmac::HMAC_SHA384,
                derive_key::<sha2::Sha384>(password, salt, M, rounds, 48),
            ),
            MacDigest::Sha512 => (
                hmac::HMAC_SHA512,
                derive_key::<sha2::Sha512>(password, salt, M, rounds, 64),
            ),
        };
        let key = Zeroizing::new(key);
        hmac::sign(&hmac::Key::new(alg, &key), data)
            .as_ref()
            .to_vec()
    }
}

/// Decrypts `data` with the scheme `alg` names; `what` names the part in errors.
fn decrypt(
    alg: &[u8],
    data: &[u8],
    pass: &Secret,
    what: &str,
) -> std::result::Result<Zeroizing<Vec<u8>>, OpenError> {
    let enc = EncryptedKey::from_parts(alg, data)
        .map_err(|p| format!("damaged PKCS#12 content: {what}: {p}"))?;
    if let Some(reason) = enc.unsupported_reason() {
        return Err(format!("the {what} cannot be read: {reason}").into());
    }
    enc.decrypt(pass).map_err(|e| match e {
        DecryptError::BadPadding => {
            OpenError::WrongPassword(format!("wrong password (the {what} does not decrypt)"))
        }
        DecryptError::Damaged(p) => format!("damaged PKCS#12 content: {what}: {p}").into(),
    })
}

/// The bytes from `before` up to what `after` still holds: the raw DER of what was read.
fn consumed<'a>(before: &'a [u8], after: &[u8]) -> &'a [u8] {
    &before[..before.len() - after.len()]
}

impl Pfx {
    /// Opens a PKCS#12 file. With a MAC, `pass` must be given and match; encrypted
    /// contents are decrypted with it. Shrouded keys stay encrypted. Errors are short
    /// phrases for "PATH: problem".
    pub fn open(data: &[u8], pass: Option<&Secret>) -> std::result::Result<Self, OpenError> {
        let (pfx, rest) = tlv(data)?;
        if pfx.tag != TAG_SEQUENCE || !rest.is_empty() {
            return Err("not a PKCS#12 file (not one DER SEQUENCE)".into());
        }
        let mut r = Reader(pfx.body);
        if integer(&r.next()?)? != 3 {
            return Err("unsupported PKCS#12 version (expected 3)".into());
        }
        let auth_safe = data_content(&r.expect(TAG_SEQUENCE)?)?;
        let mut out = Pfx {
            contents: Vec::new(),
            mac: None,
            raw_empty: false,
        };
        if !r.is_empty() {
            let pass = pass.ok_or("the file has a MAC: the store password is needed")?;
            let (mac, raw_empty) = check_mac(&r.expect(TAG_SEQUENCE)?, auth_safe, pass)?;
            out.mac = Some(mac);
            out.raw_empty = raw_empty;
        }
        if !r.is_empty() {
            return Err("damaged PKCS#12 structure (data after the MAC)".into());
        }
        let (all, rest) = tlv(auth_safe)?;
        if all.tag != TAG_SEQUENCE || !rest.is_empty() {
            return Err("damaged PKCS#12 structure (AuthenticatedSafe)".into());
        }
        let mut safes = Reader(all.body);
        while !safes.is_empty() {
            let before = safes.0;
            let ci = safes.expect(TAG_SEQUENCE)?;
            let raw = consumed(before, safes.0).to_vec();
            let mut c = Reader(ci.body);
            let kind = c.expect(TAG_OID)?;
            let content = if kind.body == oids::DATA.as_bytes() {
                Content {
                    bags: read_bags(data_content(&ci)?)?,
                    raw,
                    encryption: None,
                    changed: false,
                }
            } else if kind.body == oids::ENCRYPTED_DATA.as_bytes() {
                let (alg, sealed) = encrypted_data(&c.expect(TAG_EXPLICIT_0)?)?;
                let pass =
                    pass.ok_or("the certificates are encrypted: the store password is needed")?;
                let plain = decrypt(&alg, &sealed, pass, "certificate safe")?;
                Content {
                    bags: read_bags(&plain)?,
                    raw,
                    encryption: Some(alg),
                    changed: false,
                }
            } else {
                return Err(
                    "PKCS#12 content is neither data nor encryptedData (public-key privacy mode is not supported)"
                        .into(),
                );
            };
            out.contents.push(content);
        }
        Ok(out)
    }

    /// Every bag, in file order.
    pub fn bags(&self) -> impl Iterator<Item = &Bag> {
        self.contents.iter().flat_map(|c| c.bags.iter())
    }

    /// Whether the file has a MAC (and so a store password).
    pub fn has_mac(&self) -> bool {
        self.mac.is_some()
    }

    /// Removes the bags for which `drop` is true; returns how many went.
    pub fn remove_where(&mut self, mut drop: impl FnMut(&Bag) -> bool) -> usize {
        let mut n = 0;
        for c in &mut self.contents {
            let before = c.bags.len();
            c.bags.retain(|b| !drop(b));
            if c.bags.len() != before {
                c.changed = true;
                n += before - c.bags.len();
            }
        }
        n
    }

    /// Removes the key entry named `alias` (ignoring case): its key bags and the
    /// certificate bags paired with them by localKeyId. Returns how many bags went.
    pub fn remove_key_entry(&mut self, alias: &str) -> usize {
        let want = normalize_alias(alias);
        let named = |b: &Bag| {
            b.is_key()
                && b.friendly_name
                    .as_deref()
                    .is_some_and(|n| normalize_alias(n) == want)
        };
        let ids: Vec<Vec<u8>> = self
            .bags()
            .filter(|b| named(b))
            .filter_map(|b| b.local_key_id.clone())
            .collect();
        self.remove_where(|b| {
            named(b)
                || (b.certificate().is_some()
                    && b.local_key_id.as_ref().is_some_and(|id| ids.contains(id)))
        })
    }

    /// [`to_bytes`](Self::to_bytes), then opens the result again with `pass` and checks
    /// it holds exactly the bags meant, byte for byte, before anything is written.
    pub fn to_checked_bytes(&self, pass: &Secret) -> Result<Vec<u8>> {
        let bytes = self.to_bytes(pass)?;
        let fail = |p: &dyn std::fmt::Display| {
            Error::Crypto(format!(
                "the edited PKCS#12 file failed its read-back check: {p}"
            ))
        };
        let back = Pfx::open(&bytes, Some(pass)).map_err(|e| fail(&e))?;
        let want: Vec<&[u8]> = self.bags().map(|b| b.raw.as_slice()).collect();
        let got: Vec<&[u8]> = back.bags().map(|b| b.raw.as_slice()).collect();
        if want != got || back.mac.is_some() != self.mac.is_some() {
            return Err(fail(&"the bags differ from the ones meant"));
        }
        Ok(bytes)
    }

    /// Adds `der` as a trusted-certificate entry named `alias`, as keytool writes one
    /// (friendlyName and Oracle's trusted attribute), into the SafeContents that already
    /// holds certificates, so it gets their protection.
    pub fn add_trusted(&mut self, alias: &str, der: &[u8]) -> Result<()> {
        let raw = encode::cert_bag(&encode::CertBag {
            der,
            friendly_name: Some(alias),
            local_key_id: None,
            trusted: true,
        })?;
        let bag = Bag {
            raw,
            kind: BagKind::Certificate(der.to_vec()),
            friendly_name: Some(alias.to_string()),
            local_key_id: None,
            trusted: true,
        };
        let target = self
            .contents
            .iter()
            .position(|c| c.bags.iter().any(|b| b.certificate().is_some()))
            .or_else(|| self.contents.iter().position(|c| c.encryption.is_some()));
        match target {
            Some(i) => {
                self.contents[i].bags.push(bag);
                self.contents[i].changed = true;
            }
            None if self.mac.is_none() => self.contents.push(Content {
                raw: Vec::new(),
                encryption: None,
                bags: vec![bag],
                changed: true,
            }),
            None => {
                // A protected file without an encrypted content: encrypt the new one like
                // the file's first shrouded key.
                let alg = self
                    .bags()
                    .find_map(|b| match &b.kind {
                        BagKind::ShroudedKey { alg, .. } => Some(alg.clone()),
                        _ => None,
                    })
                    .ok_or_else(|| {
                        Error::Refused(
                            "the file is protected but encrypts nothing certmesh could copy the protection from".into(),
                        )
                    })?;
                self.contents.push(Content {
                    raw: Vec::new(),
                    encryption: Some(alg),
                    bags: vec![bag],
                    changed: true,
                });
            }
        }
        Ok(())
    }

    /// Encodes the file: unchanged contents as they were read, changed ones encrypted
    /// again with their own algorithm, and the MAC computed again with `pass` when the
    /// file has one.
    pub fn to_bytes(&self, pass: &Secret) -> Result<Vec<u8>> {
        let mut contents = Vec::new();
        for c in &self.contents {
            if !c.changed {
                contents.push(c.raw.clone());
                continue;
            }
            let bags: Vec<&[u8]> = c.bags.iter().map(|b| b.raw.as_slice()).collect();
            let plain = Zeroizing::new(encode::seq(&bags)?);
            let ci = match &c.encryption {
                None => encode::seq(&[
                    encode::oid(oids::DATA)?,
                    encode::explicit_0(&encode::octets(&plain)?)?,
                ])?,
                Some(alg) => {
                    let (alg, sealed) = reseal(alg, &plain, pass, self.raw_empty)?;
                    let eci = encode::seq(&[
                        encode::oid(oids::DATA)?,
                        alg,
                        encode::implicit_0(&sealed)?,
                    ])?;
                    let ed = encode::seq(&[encode::integer(0)?, eci])?;
                    encode::seq(&[encode::oid(oids::ENCRYPTED_DATA)?, encode::explicit_0(&ed)?])?
                }
            };
            contents.push(ci);
        }
        let auth_safe = encode::seq(&contents)?;
        let mut parts = vec![
            encode::integer(3)?,
            encode::seq(&[
                encode::oid(oids::DATA)?,
                encode::explicit_0(&encode::octets(&auth_safe)?)?,
            ])?,
        ];
        if let Some(m) = &self.mac {
            let salt = super::kdf::random(m.salt_len)?;
            let password = if self.raw_empty {
                Zeroizing::new(Vec::new())
            } else {
                match pkcs12_passwords(pass).into_iter().next() {
                    Some(Ok(p)) => p,
                    _ => {
                        return Err(Error::Crypto(
                            "the password cannot be encoded as a BMPString for PKCS#12".into(),
                        ))
                    }
                }
            };
            let tag = m.digest.mac(&password, &salt, m.iterations, &auth_safe);
            let alg = encode::seq(&[encode::raw_oid(m.digest.oid_body())?, NULL.to_vec()])?;
            parts.push(encode::seq(&[
                encode::seq(&[alg, encode::octets(&tag)?])?,
                encode::octets(&salt)?,
                encode::integer(m.iterations)?,
            ])?);
        }
        encode::seq(&parts)
    }
}

const NULL: [u8; 2] = [0x05, 0x00];

/// The OCTET STRING inside a pkcs7-data `ContentInfo`.
fn data_content<'a>(ci: &Tlv<'a>) -> std::result::Result<&'a [u8], String> {
    let mut c = Reader(ci.body);
    if c.expect(TAG_OID)?.body != oids::DATA.as_bytes() {
        return Err(
            "PKCS#12 content is not pkcs7-data (public-key integrity mode is not supported)".into(),
        );
    }
    let wrapped = Reader(c.expect(TAG_EXPLICIT_0)?.body).expect(TAG_OCTET_STRING)?;
    Ok(wrapped.body)
}

/// `EncryptedData { version, EncryptedContentInfo { data, alg, [0] IMPLICIT content } }`:
/// the AlgorithmIdentifier DER and the ciphertext (a constructed, BER-style content is
/// joined from its OCTET STRING pieces).
fn encrypted_data(explicit: &Tlv<'_>) -> std::result::Result<(Vec<u8>, Vec<u8>), String> {
    let mut ed = Reader(Reader(explicit.body).expect(TAG_SEQUENCE)?.body);
    integer(&ed.next()?)?;
    let mut eci = Reader(ed.expect(TAG_SEQUENCE)?.body);
    if eci.expect(TAG_OID)?.body != oids::DATA.as_bytes() {
        return Err("damaged PKCS#12 content (the encrypted content is not pkcs7-data)".into());
    }
    let before = eci.0;
    eci.expect(TAG_SEQUENCE)?;
    let alg = consumed(before, eci.0).to_vec();
    if eci.is_empty() {
        return Ok((alg, Vec::new()));
    }
    let c = eci.next()?;
    let sealed = match c.tag {
        TAG_IMPLICIT_0 => c.body.to_vec(),
        TAG_CONSTRUCTED_IMPLICIT_0 => {
            let mut parts = Reader(c.body);
            let mut v = Vec::new();
            while !parts.is_empty() {
                v.extend_from_slice(parts.expect(TAG_OCTET_STRING)?.body);
            }
            v
        }
        _ => return Err("damaged PKCS#12 encrypted content".into()),
    };
    Ok((alg, sealed))
}

/// `MacData`: checks the HMAC with `pass`. Returns the MAC's parameters and whether an
/// empty password matched as no bytes rather than the empty BMPString.
fn check_mac(
    mac_data: &Tlv<'_>,
    auth_safe: &[u8],
    pass: &Secret,
) -> std::result::Result<(Mac, bool), OpenError> {
    let mut r = Reader(mac_data.body);
    let mut digest_info = Reader(r.expect(TAG_SEQUENCE)?.body);
    let mut alg = Reader(digest_info.expect(TAG_SEQUENCE)?.body);
    let id = alg.expect(TAG_OID)?;
    let digest = MacDigest::from_oid(id.body)
        .ok_or("uses a MAC algorithm certmesh cannot read (PBMAC1 or an unknown digest)")?;
    let mac = digest_info.expect(TAG_OCTET_STRING)?;
    let salt = r.expect(TAG_OCTET_STRING)?.body;
    let iterations = if r.is_empty() {
        1
    } else {
        integer(&r.next()?)?
    };
    if iterations == 0 || iterations > MAX_MAC_ITERATIONS {
        return Err(format!(
            "{iterations} MAC iterations is outside certmesh's limit of 1 to {MAX_MAC_ITERATIONS} (damaged or hostile file)"
        )
        .into());
    }
    let iterations = iterations as u32;
    for (i, password) in pkcs12_passwords(pass).into_iter().enumerate() {
        let Ok(password) = password else {
            return Err("the password cannot be encoded as a BMPString for PKCS#12".into());
        };
        let tag = digest.mac(&password, salt, iterations, auth_safe);
        if aws_lc_rs::constant_time::verify_slices_are_equal(&tag, mac.body).is_ok() {
            let m = Mac {
                digest,
                salt_len: salt.len().max(8),
                iterations,
            };
            return Ok((m, i == 1));
        }
    }
    Err(OpenError::WrongPassword(
        "wrong password, or the file was altered (MAC check failed)".into(),
    ))
}

/// Reads a SafeContents: every SafeBag with its raw bytes.
fn read_bags(safe_contents: &[u8]) -> std::result::Result<Vec<Bag>, String> {
    let (all, rest) = tlv(safe_contents)?;
    if all.tag != TAG_SEQUENCE || !rest.is_empty() {
        return Err("damaged PKCS#12 content (a SafeContents is not one SEQUENCE)".into());
    }
    let mut out = Vec::new();
    let mut bags = Reader(all.body);
    while !bags.is_empty() {
        let before = bags.0;
        let bag = bags.expect(TAG_SEQUENCE)?;
        let raw = consumed(before, bags.0).to_vec();
        let mut b = Reader(bag.body);
        let id = b.expect(TAG_OID)?;
        let value = b.expect(TAG_EXPLICIT_0)?;
        let mut parsed = Bag {
            raw,
            kind: BagKind::Other(String::new()),
            friendly_name: None,
            local_key_id: None,
            trusted: false,
        };
        if !b.is_empty() {
            attributes(&b.expect(TAG_SET)?, &mut parsed)?;
        }
        parsed.kind = if id.body == oids::CERT_BAG.as_bytes() {
            let mut cb = Reader(Reader(value.body).expect(TAG_SEQUENCE)?.body);
            let cert_type = cb.expect(TAG_OID)?;
            if cert_type.body == oids::X509_CERTIFICATE.as_bytes() {
                let der = Reader(cb.expect(TAG_EXPLICIT_0)?.body).expect(TAG_OCTET_STRING)?;
                BagKind::Certificate(der.body.to_vec())
            } else {
                BagKind::Other("certificate bag of a type other than X.509".into())
            }
        } else if id.body == oids::SHROUDED_KEY_BAG.as_bytes() {
            let mut epki = Reader(Reader(value.body).expect(TAG_SEQUENCE)?.body);
            let before = epki.0;
            epki.expect(TAG_SEQUENCE)?;
            let alg = consumed(before, epki.0).to_vec();
            let data = epki.expect(TAG_OCTET_STRING)?.body.to_vec();
            BagKind::ShroudedKey { alg, data }
        } else if id.body == oids::KEY_BAG.as_bytes() {
            let before = value.body;
            let mut v = Reader(value.body);
            v.expect(TAG_SEQUENCE)?;
            BagKind::Key(Zeroizing::new(consumed(before, v.0).to_vec()))
        } else {
            BagKind::Other(bag_name(id.body))
        };
        out.push(parsed);
    }
    Ok(out)
}

fn bag_name(oid: &[u8]) -> String {
    const PREFIX: [u8; 10] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01];
    match oid.strip_prefix(&PREFIX[..]) {
        Some([4]) => "CRL bag".into(),
        Some([5]) => "secret bag".into(),
        Some([6]) => "nested SafeContents bag".into(),
        _ => "bag of an unknown type".into(),
    }
}

/// `SET OF Attribute`: friendlyName, localKeyId and Oracle's trusted attribute are read;
/// others stay in the bag's raw bytes.
fn attributes(set: &Tlv<'_>, bag: &mut Bag) -> std::result::Result<(), String> {
    let mut r = Reader(set.body);
    while !r.is_empty() {
        let mut a = Reader(r.expect(TAG_SEQUENCE)?.body);
        let id = a.expect(TAG_OID)?;
        let values = a.expect(TAG_SET)?;
        let mut values = Reader(values.body);
        if values.is_empty() {
            continue;
        }
        let value = values.next()?;
        if id.body == oids::FRIENDLY_NAME.as_bytes() && value.tag == TAG_BMP_STRING {
            bag.friendly_name = Some(bmp_string(value.body)?);
        } else if id.body == oids::LOCAL_KEY_ID.as_bytes() && value.tag == TAG_OCTET_STRING {
            bag.local_key_id = Some(value.body.to_vec());
        } else if id.body == oids::ORACLE_TRUSTED_KEY_USAGE.as_bytes() {
            bag.trusted = true;
        }
    }
    Ok(())
}

fn bmp_string(body: &[u8]) -> std::result::Result<String, String> {
    if body.len() % 2 != 0 {
        return Err("damaged PKCS#12 content (a friendlyName has an odd length)".into());
    }
    let units = body
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]));
    Ok(char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{KeyAlg, PrivateKey};
    use crate::keystore::pkcs12::{key_store, trust_store, Compat, KeyEntry};

    fn self_signed(key: &PrivateKey, cn: &str) -> Vec<u8> {
        crate::cert::testing::self_signed_by(key, cn).der().to_vec()
    }

    #[test]
    fn edits_keep_the_key_bag_and_every_other_bag_byte_for_byte() {
        let key = PrivateKey::generate(KeyAlg::P256).unwrap();
        let leaf = self_signed(&key, "k.example.com");
        let ca = self_signed(&PrivateKey::generate(KeyAlg::P256).unwrap(), "ca");
        let pass = Secret::new("pw".into());
        for compat in [Compat::Modern, Compat::Legacy] {
            let certs = vec![leaf.clone()];
            let entry = KeyEntry {
                alias: "k",
                key: &key,
                certs: &certs,
            };
            let file = key_store(&entry, compat, &pass).unwrap();
            let before = Pfx::open(&file, Some(&pass)).unwrap();
            let key_raw: Vec<Vec<u8>> = before
                .bags()
                .filter(|b| b.is_key())
                .map(|b| b.raw.clone())
                .collect();
            assert_eq!(key_raw.len(), 1);

            let mut pfx = Pfx::open(&file, Some(&pass)).unwrap();
            pfx.add_trusted("ca", &ca).unwrap();
            let bytes = pfx.to_checked_bytes(&pass).unwrap();
            assert!(
                bytes
                    .windows(key_raw[0].len())
                    .any(|w| w == key_raw[0].as_slice()),
                "{compat:?}: the key bag is carried as it was"
            );
            let after = Pfx::open(&bytes, Some(&pass)).unwrap();
            let trusted: Vec<_> = after.bags().filter(|b| b.trusted).collect();
            assert_eq!(trusted.len(), 1);
            assert_eq!(trusted[0].friendly_name.as_deref(), Some("ca"));
            assert_eq!(trusted[0].certificate(), Some(ca.as_slice()));
            let k = after.bags().find(|b| b.is_key()).unwrap();
            assert_eq!(k.private_key(&pass).unwrap().as_slice(), key.pkcs8_der());
            // The outline (algorithms, iterations) is the one the file had.
            assert_eq!(
                super::super::outline(&bytes).unwrap(),
                super::super::outline(&file).unwrap()
            );
            // A wrong password is refused before anything is decrypted.
            let wrong = Pfx::open(&bytes, Some(&Secret::new("no".into())));
            assert!(
                matches!(&wrong, Err(OpenError::WrongPassword(p)) if p.contains("MAC check failed")),
                "{:?}",
                wrong.err()
            );
            // Removing the CA gives back the same bags as before.
            let mut pfx = after;
            assert_eq!(pfx.remove_where(|b| b.trusted), 1);
            let again = Pfx::open(&pfx.to_checked_bytes(&pass).unwrap(), Some(&pass)).unwrap();
            let raw = |p: &Pfx| p.bags().map(|b| b.raw.clone()).collect::<Vec<_>>();
            assert_eq!(raw(&again), raw(&before));
            // And removing the key entry takes its certificate with it.
            let mut pfx = again;
            assert_eq!(pfx.remove_key_entry("K"), 2);
            assert_eq!(pfx.bags().count(), 0);
        }
    }

    #[test]
    fn a_file_without_mac_or_encryption_needs_no_password_and_keeps_its_form() {
        let ca = self_signed(&PrivateKey::generate(KeyAlg::P256).unwrap(), "a");
        let bag = encode::cert_bag(&encode::CertBag {
            der: &ca,
            friendly_name: Some("a"),
            local_key_id: None,
            trusted: true,
        })
        .unwrap();
        let safe = encode::seq(&[
            encode::oid(oids::DATA).unwrap(),
            encode::explicit_0(&encode::octets(&encode::seq(&[bag]).unwrap()).unwrap()).unwrap(),
        ])
        .unwrap();
        let auth = encode::seq(&[safe]).unwrap();
        let file = encode::seq(&[
            encode::integer(3).unwrap(),
            encode::seq(&[
                encode::oid(oids::DATA).unwrap(),
                encode::explicit_0(&encode::octets(&auth).unwrap()).unwrap(),
            ])
            .unwrap(),
        ])
        .unwrap();
        assert!(!super::super::needs_password(&file));
        let mut pfx = Pfx::open(&file, None).unwrap();
        assert!(!pfx.has_mac());
        let b = self_signed(&PrivateKey::generate(KeyAlg::P256).unwrap(), "b");
        pfx.add_trusted("b", &b).unwrap();
        let none = Secret::new(String::new());
        let bytes = pfx.to_checked_bytes(&none).unwrap();
        assert!(!super::super::needs_password(&bytes));
        let o = super::super::outline(&bytes).unwrap();
        assert!(o.mac.is_none() && o.content_encryption.is_empty());
        assert_eq!(Pfx::open(&bytes, None).unwrap().bags().count(), 2);
        // No cut-short or damaged copy makes the parser panic (no key derivation runs for
        // a file without MAC, so every byte can be tried).
        for i in 0..bytes.len() {
            let _ = Pfx::open(&bytes[..i], None);
            let mut m = bytes.clone();
            m[i] ^= 0x5a;
            if let Ok(p) = Pfx::open(&m, None) {
                let _ = p.to_bytes(&none);
            }
        }
    }

    #[test]
    fn empty_passwords_in_both_kdf_forms_are_read_and_kept() {
        let ca = self_signed(&PrivateKey::generate(KeyAlg::P256).unwrap(), "a");
        let empty = Secret::new(String::new());
        let file = trust_store(&[("a".into(), ca.clone())], Compat::Legacy, &empty).unwrap();
        let pfx = Pfx::open(&file, Some(&empty)).unwrap();
        assert!(
            !pfx.raw_empty,
            "certmesh writes the empty BMPString, as OpenSSL"
        );
        // Java derives from no bytes at all: a file sealed that way opens too, and an edit
        // keeps that form.
        let mut java = Pfx::open(&file, Some(&empty)).unwrap();
        java.raw_empty = true;
        for c in &mut java.contents {
            c.changed = true;
        }
        let bytes = java.to_bytes(&empty).unwrap();
        let back = Pfx::open(&bytes, Some(&empty)).unwrap();
        assert!(back.raw_empty);
        assert_eq!(back.bags().count(), 1);
    }
}
