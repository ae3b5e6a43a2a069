//! Java's JKS keystore format (and the JCEKS variant, which shares its layout), read and
//! written by our own codec.
//!
//! No maintained crate writes JKS, and the format is small. What matters most is that
//! certmesh changes only what it is asked to change: every entry it reads keeps its raw
//! bytes (protected key blob, certificate bytes, certificate type, timestamp, alias), so a
//! private-key entry whose key password certmesh was never given, or a JCEKS secret key it
//! cannot decrypt, is written back byte for byte.
//!
//! Layout (all integers big-endian):
//!
//! ```text
//! magic u32 (FEEDFEED = JKS, CECECECE = JCEKS), version u32 (1 or 2), count u32
//! entry*: tag u32
//!   1 private key:  alias UTF, timestamp i64 ms, u32 len + protected key,
//!                   u32 chain count, (type UTF [v2] + u32 len + DER)*
//!   2 trusted cert: alias UTF, timestamp i64 ms, type UTF [v2], u32 len + DER
//!   3 secret key:   alias UTF, timestamp i64 ms, serialized SealedObject (JCEKS only)
//! digest: SHA1(password as UTF-16BE || "Mighty Aphrodite" || everything above)
//! ```
//!
//! "UTF" is Java's `DataOutput.writeUTF`: a u16 byte length and modified UTF-8.

use std::path::Path;

use aws_lc_rs::digest::{Context, SHA1_FOR_LEGACY_USE_ONLY};
use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef};
use der::{Decode, Encode, Reader as _, SliceReader, Tag};
use pkcs8::spki::AlgorithmIdentifierRef;
use zeroize::Zeroizing;

use crate::pass::Secret;
use crate::{Error, Result};

/// First four bytes of a JKS file.
pub const JKS_MAGIC: u32 = 0xFEED_FEED;
/// First four bytes of a JCEKS file.
pub const JCEKS_MAGIC: u32 = 0xCECE_CECE;
/// Length of the SHA-1 integrity digest at the end of the file.
const DIGEST_LEN: usize = 20;
/// The string Sun mixes into the integrity digest.
const WHITENER: &[u8] = b"Mighty Aphrodite";
/// Sun's JKS key protector.
const KEY_PROTECTOR_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.42.2.17.1.1");
/// Certificate chains longer than this are refused rather than believed.
const MAX_CHAIN: u32 = 64;

/// Which of the two layouts a store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Sun's JKS: keys protected with the SHA-1 keystream protector.
    Jks,
    /// SunJCE's JCEKS: keys protected with PBEWithMD5AndTripleDES; can hold secret keys.
    Jceks,
}

impl Flavor {
    /// The name keytool uses for `-storetype`.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Jks => "JKS",
            Flavor::Jceks => "JCEKS",
        }
    }

    fn magic(self) -> u32 {
        match self {
            Flavor::Jks => JKS_MAGIC,
            Flavor::Jceks => JCEKS_MAGIC,
        }
    }
}

/// A certificate as stored: its type string (always "X.509" in practice) and encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCert {
    pub cert_type: String,
    pub der: Vec<u8>,
}

impl StoredCert {
    /// An X.509 certificate from its DER encoding.
    pub fn x509(der: Vec<u8>) -> Self {
        StoredCert {
            cert_type: "X.509".into(),
            der,
        }
    }
}

/// What an entry holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryBody {
    /// A protected private key (kept encrypted, as read) and its certificate chain.
    PrivateKey {
        protected_key: Vec<u8>,
        chain: Vec<StoredCert>,
    },
    /// A trusted certificate.
    TrustedCert(StoredCert),
    /// A JCEKS secret key: the serialized Java `SealedObject`, carried over untouched.
    SecretKey { sealed: Vec<u8> },
}

impl EntryBody {
    /// keytool's name for the entry type.
    pub fn type_name(&self) -> &'static str {
        match self {
            EntryBody::PrivateKey { .. } => "PrivateKeyEntry",
            EntryBody::TrustedCert(_) => "trustedCertEntry",
            EntryBody::SecretKey { .. } => "SecretKeyEntry",
        }
    }

    /// The certificate that identifies the entry: the trusted certificate, or the first
    /// of a private key's chain.
    pub fn first_cert(&self) -> Option<&StoredCert> {
        match self {
            EntryBody::PrivateKey { chain, .. } => chain.first(),
            EntryBody::TrustedCert(c) => Some(c),
            EntryBody::SecretKey { .. } => None,
        }
    }
}

/// One keystore entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The alias exactly as stored (keytool writes JKS aliases lower-cased).
    pub alias: String,
    /// Creation time in milliseconds since the epoch, as Java's `Date.getTime()`.
    pub timestamp: i64,
    pub body: EntryBody,
}

/// A JKS or JCEKS keystore in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStore {
    pub flavor: Flavor,
    /// Format version: 2 as written since JDK 1.2; 1 (no certificate types) is read too.
    pub version: u32,
    /// Entries in file order; new ones are appended.
    pub entries: Vec<Entry>,
}

/// How a store's integrity digest was handled while reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integrity {
    /// The digest matched the password.
    Verified,
    /// No password was given, so the digest was not checked (as `keytool -list` does).
    NotChecked,
}

impl KeyStore {
    /// An empty store of the given flavor, version 2.
    pub fn new(flavor: Flavor) -> Self {
        KeyStore {
            flavor,
            version: 2,
            entries: Vec::new(),
        }
    }

    /// Parses a store. With a password the integrity digest must match (a wrong password
    /// and a damaged file look the same, as in keytool); without one it is not checked.
    /// `path` only names the file in errors.
    pub fn parse(path: &Path, data: &[u8], password: Option<&Secret>) -> Result<(Self, Integrity)> {
        let bad = |problem: String| Error::bad_file(path, problem);
        let mut r = Reader { data, pos: 0 };
        let magic = r
            .u32()
            .map_err(|_| bad("too short to be a keystore".into()))?;
        let flavor = match magic {
            JKS_MAGIC => Flavor::Jks,
            JCEKS_MAGIC => Flavor::Jceks,
            _ => {
                return Err(bad(
                    "not a JKS or JCEKS keystore (unknown magic number)".into()
                ))
            }
        };
        let what = flavor.name();
        let version = r.u32().map_err(|e| bad(format!("{what} keystore: {e}")))?;
        let supported = match flavor {
            Flavor::Jks => version == 1 || version == 2,
            Flavor::Jceks => version == 2,
        };
        if !supported {
            return Err(bad(format!(
                "{what} keystore version {version} is not supported"
            )));
        }
        let count = r.u32().map_err(|e| bad(format!("{what} keystore: {e}")))?;
        // No allocation from `count`: every entry is read from bytes that exist.
        let mut entries = Vec::new();
        for i in 0..count {
            let entry = read_entry(&mut r, flavor, version)
                .map_err(|e| bad(format!("{what} keystore, entry {}: {e}", i + 1)))?;
            entries.push(entry);
        }
        let body_len = r.pos;
        let rest = data.len() - body_len;
        if rest < DIGEST_LEN {
            return Err(bad(format!(
                "{what} keystore is truncated (the integrity digest is missing)"
            )));
        }
        if rest > DIGEST_LEN {
            return Err(bad(format!(
                "{what} keystore has {} unexpected bytes after its entries",
                rest - DIGEST_LEN
            )));
        }
        let integrity = match password {
            Some(pw) => {
                if store_digest(pw, &data[..body_len]) != data[body_len..] {
                    return Err(Error::WrongPassphrase {
                        path: path.to_path_buf(),
                        problem: format!(
                            "{what} keystore integrity check failed: wrong store password, or the file is damaged"
                        ),
                    });
                }
                Integrity::Verified
            }
            None => Integrity::NotChecked,
        };
        let store = KeyStore {
            flavor,
            version,
            entries,
        };
        Ok((store, integrity))
    }

    /// Encodes the store, ending with the integrity digest keyed by `password`.
    pub fn to_bytes(&self, password: &Secret) -> Result<Vec<u8>> {
        let mut w = Vec::new();
        w.extend_from_slice(&self.flavor.magic().to_be_bytes());
        w.extend_from_slice(&self.version.to_be_bytes());
        w.extend_from_slice(&len_u32(self.entries.len())?.to_be_bytes());
        for e in &self.entries {
            match &e.body {
                EntryBody::PrivateKey {
                    protected_key,
                    chain,
                } => {
                    w.extend_from_slice(&1u32.to_be_bytes());
                    put_utf(&mut w, &e.alias)?;
                    w.extend_from_slice(&e.timestamp.to_be_bytes());
                    put_bytes(&mut w, protected_key)?;
                    w.extend_from_slice(&len_u32(chain.len())?.to_be_bytes());
                    for c in chain {
                        self.put_cert(&mut w, c)?;
                    }
                }
                EntryBody::TrustedCert(c) => {
                    w.extend_from_slice(&2u32.to_be_bytes());
                    put_utf(&mut w, &e.alias)?;
                    w.extend_from_slice(&e.timestamp.to_be_bytes());
                    self.put_cert(&mut w, c)?;
                }
                EntryBody::SecretKey { sealed } => {
                    if self.flavor != Flavor::Jceks {
                        return Err(Error::Refused(
                            "JKS keystores cannot hold secret keys".into(),
                        ));
                    }
                    w.extend_from_slice(&3u32.to_be_bytes());
                    put_utf(&mut w, &e.alias)?;
                    w.extend_from_slice(&e.timestamp.to_be_bytes());
                    w.extend_from_slice(sealed);
                }
            }
        }
        let digest = store_digest(password, &w);
        w.extend_from_slice(&digest);
        Ok(w)
    }

    fn put_cert(&self, w: &mut Vec<u8>, c: &StoredCert) -> Result<()> {
        if self.version == 2 {
            put_utf(w, &c.cert_type)?;
        }
        put_bytes(w, &c.der)
    }

    /// Index of the entry whose alias matches, ignoring case as Java's JKS does. Of two
    /// entries under one alias (a damaged or hand-made file), the later one, which is
    /// the one keytool keeps.
    pub fn position(&self, alias: &str) -> Option<usize> {
        let want = normalize_alias(alias);
        self.entries
            .iter()
            .rposition(|e| normalize_alias(&e.alias) == want)
    }

    /// The entry under `alias`, ignoring case.
    pub fn get(&self, alias: &str) -> Option<&Entry> {
        self.position(alias).map(|i| &self.entries[i])
    }

    /// Aliases of entries whose identifying certificate has this DER encoding.
    pub fn aliases_with_cert(&self, der: &[u8]) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|e| e.body.first_cert().is_some_and(|c| c.der == der))
            .map(|e| e.alias.as_str())
            .collect()
    }

    /// Aliases held by more than one entry (ignoring case), each named once. keytool
    /// keeps the later entry of such a file; certmesh reports them and changes neither.
    pub fn duplicate_aliases(&self) -> Vec<String> {
        let mut seen = std::collections::BTreeSet::new();
        let mut out: Vec<String> = Vec::new();
        for e in &self.entries {
            let n = normalize_alias(&e.alias);
            if !seen.insert(n.clone()) && !out.iter().any(|o| normalize_alias(o) == n) {
                out.push(e.alias.clone());
            }
        }
        out
    }

    /// Adds or replaces a trusted-certificate entry. A new alias is stored lower-cased,
    /// as keytool does; a replaced entry keeps its place and its alias spelling.
    pub fn set_trusted(&mut self, alias: &str, der: Vec<u8>, timestamp: i64) {
        let body = EntryBody::TrustedCert(StoredCert::x509(der));
        self.set(alias, timestamp, body);
    }

    /// Adds or replaces a private-key entry, protecting the PKCS#8 key with `key_password`.
    /// Only JKS can protect keys here; JCEKS key entries are carried, not created.
    pub fn set_private_key(
        &mut self,
        alias: &str,
        pkcs8: &[u8],
        chain: Vec<Vec<u8>>,
        key_password: &Secret,
        timestamp: i64,
    ) -> Result<()> {
        if self.flavor != Flavor::Jks {
            return Err(Error::Refused(
                "certmesh writes private keys into JKS (or PKCS#12) keystores only, not JCEKS"
                    .into(),
            ));
        }
        if chain.is_empty() {
            return Err(Error::Refused(
                "a private-key entry needs its certificate".into(),
            ));
        }
        let body = EntryBody::PrivateKey {
            protected_key: protect_key(pkcs8, key_password)?,
            chain: chain.into_iter().map(StoredCert::x509).collect(),
        };
        self.set(alias, timestamp, body);
        Ok(())
    }

    fn set(&mut self, alias: &str, timestamp: i64, body: EntryBody) {
        match self.position(alias) {
            Some(i) => {
                let e = &mut self.entries[i];
                e.timestamp = timestamp;
                e.body = body;
            }
            None => self.entries.push(Entry {
                alias: normalize_alias(alias),
                timestamp,
                body,
            }),
        }
    }

    /// Removes the entry under `alias` (ignoring case), returning it.
    pub fn remove(&mut self, alias: &str) -> Option<Entry> {
        self.position(alias).map(|i| self.entries.remove(i))
    }
}

/// Java's JKS compares aliases after `toLowerCase(Locale.ENGLISH)`.
pub fn normalize_alias(alias: &str) -> String {
    alias.to_lowercase()
}

/// Current time in Java's milliseconds since the epoch.
pub fn now_millis() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The keyed integrity digest over a store's bytes.
fn store_digest(password: &Secret, body: &[u8]) -> Vec<u8> {
    let mut ctx = Context::new(&SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(&utf16be(password));
    ctx.update(WHITENER);
    ctx.update(body);
    ctx.finish().as_ref().to_vec()
}

/// Java turns a `char[]` password into bytes two per char, big-endian.
fn utf16be(password: &Secret) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(
        password
            .expose()
            .encode_utf16()
            .flat_map(|u| u.to_be_bytes())
            .collect(),
    )
}

/// Protects a PKCS#8 key the way `sun.security.provider.KeyProtector` does and wraps it
/// in an EncryptedPrivateKeyInfo carrying Sun's OID.
pub fn protect_key(pkcs8: &[u8], password: &Secret) -> Result<Vec<u8>> {
    let mut salt = [0u8; DIGEST_LEN];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| Error::Crypto("no randomness".into()))?;
    let pw = utf16be(password);
    let mut blob = Vec::with_capacity(pkcs8.len() + 2 * DIGEST_LEN);
    blob.extend_from_slice(&salt);
    let stream = keystream(&pw, &salt, pkcs8.len());
    blob.extend(pkcs8.iter().zip(stream.iter()).map(|(p, k)| p ^ k));
    blob.extend_from_slice(&check_digest(&pw, pkcs8));
    encode_epki(&blob).map_err(|e| Error::Crypto(format!("encoding the JKS key entry failed: {e}")))
}

/// Recovers the PKCS#8 key of a JKS private-key entry. Fails with a clear message when the
/// key password is wrong or the entry is protected by another scheme (JCEKS).
pub fn recover_key(
    protected_key: &[u8],
    password: &Secret,
) -> std::result::Result<Zeroizing<Vec<u8>>, String> {
    let (oid, blob) = decode_epki(protected_key)?;
    if oid != KEY_PROTECTOR_OID {
        return Err("the key is not protected with the JKS key protector".into());
    }
    if blob.len() < 2 * DIGEST_LEN {
        return Err("the protected key is too short".into());
    }
    let (salt, rest) = blob.split_at(DIGEST_LEN);
    let (enc, check) = rest.split_at(rest.len() - DIGEST_LEN);
    let pw = utf16be(password);
    let stream = keystream(&pw, salt, enc.len());
    let plain: Zeroizing<Vec<u8>> =
        Zeroizing::new(enc.iter().zip(stream.iter()).map(|(c, k)| c ^ k).collect());
    if check_digest(&pw, &plain) != check {
        return Err("wrong key password (or damaged key entry)".into());
    }
    Ok(plain)
}

fn keystream(pw: &[u8], salt: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(len + DIGEST_LEN));
    let mut prev = salt.to_vec();
    while out.len() < len {
        let mut ctx = Context::new(&SHA1_FOR_LEGACY_USE_ONLY);
        ctx.update(pw);
        ctx.update(&prev);
        prev = ctx.finish().as_ref().to_vec();
        out.extend_from_slice(&prev);
    }
    out.truncate(len);
    out
}

fn check_digest(pw: &[u8], plain: &[u8]) -> Vec<u8> {
    let mut ctx = Context::new(&SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(pw);
    ctx.update(plain);
    ctx.finish().as_ref().to_vec()
}

/// `SEQUENCE { SEQUENCE { OID, NULL }, OCTET STRING blob }`, as Java's
/// `EncryptedPrivateKeyInfo.getEncoded()` writes it.
fn encode_epki(blob: &[u8]) -> der::Result<Vec<u8>> {
    let alg = AlgorithmIdentifierRef {
        oid: KEY_PROTECTOR_OID,
        parameters: Some(AnyRef::NULL),
    };
    let mut body = alg.to_der()?;
    body.extend(OctetStringRef::new(blob)?.to_der()?);
    AnyRef::new(Tag::Sequence, &body)?.to_der()
}

/// Splits an EncryptedPrivateKeyInfo into its algorithm OID and encrypted octets.
fn decode_epki(der: &[u8]) -> std::result::Result<(ObjectIdentifier, &[u8]), String> {
    let mut r = SliceReader::new(der).map_err(|_| "damaged EncryptedPrivateKeyInfo")?;
    r.sequence(|r| {
        let alg = AlgorithmIdentifierRef::decode(r)?;
        let blob = <&OctetStringRef>::decode(r)?;
        Ok::<_, der::Error>((alg.oid, blob.as_bytes()))
    })
    .map_err(|_| "damaged EncryptedPrivateKeyInfo".to_string())
}

fn len_u32(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::Refused("keystore element too large".into()))
}

fn put_bytes(w: &mut Vec<u8>, b: &[u8]) -> Result<()> {
    w.extend_from_slice(&len_u32(b.len())?.to_be_bytes());
    w.extend_from_slice(b);
    Ok(())
}

/// Java's `writeUTF`: modified UTF-8 (NUL as C0 80, supplementary characters as two
/// three-byte surrogates) after a u16 byte count.
fn put_utf(w: &mut Vec<u8>, s: &str) -> Result<()> {
    let mut enc = Vec::with_capacity(s.len());
    for u in s.encode_utf16() {
        match u {
            0x0001..=0x007f => enc.push(u as u8),
            0x0000 | 0x0080..=0x07ff => {
                enc.push(0xc0 | (u >> 6) as u8);
                enc.push(0x80 | (u & 0x3f) as u8);
            }
            _ => {
                enc.push(0xe0 | (u >> 12) as u8);
                enc.push(0x80 | ((u >> 6) & 0x3f) as u8);
                enc.push(0x80 | (u & 0x3f) as u8);
            }
        }
    }
    let n = u16::try_from(enc.len())
        .map_err(|_| Error::Refused("alias or type name longer than 65535 bytes".into()))?;
    w.extend_from_slice(&n.to_be_bytes());
    w.extend_from_slice(&enc);
    Ok(())
}

/// A bounds-checked cursor; every error says what was cut short.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        if self.data.len() - self.pos < n {
            return Err("truncated".into());
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u32(&mut self) -> std::result::Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self) -> std::result::Result<i64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    /// A u32-length-prefixed byte string; the length is checked against what remains
    /// before anything is copied.
    fn bytes(&mut self) -> std::result::Result<Vec<u8>, String> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }

    fn utf(&mut self) -> std::result::Result<String, String> {
        let b = self.take(2)?;
        let n = u16::from_be_bytes([b[0], b[1]]) as usize;
        decode_modified_utf8(self.take(n)?)
    }

    fn rest(&self) -> &'a [u8] {
        &self.data[self.pos..]
    }
}

fn decode_modified_utf8(b: &[u8]) -> std::result::Result<String, String> {
    let bad = || "malformed alias or type name".to_string();
    let mut units = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let cont = |k: usize| -> std::result::Result<u16, String> {
            match b.get(i + k) {
                Some(x) if x & 0xc0 == 0x80 => Ok((x & 0x3f) as u16),
                _ => Err(bad()),
            }
        };
        if c & 0x80 == 0 && c != 0 {
            units.push(c as u16);
            i += 1;
        } else if c & 0xe0 == 0xc0 {
            units.push(((c & 0x1f) as u16) << 6 | cont(1)?);
            i += 2;
        } else if c & 0xf0 == 0xe0 {
            units.push(((c & 0x0f) as u16) << 12 | cont(1)? << 6 | cont(2)?);
            i += 3;
        } else {
            return Err(bad());
        }
    }
    String::from_utf16(&units).map_err(|_| bad())
}

fn read_cert(r: &mut Reader<'_>, version: u32) -> std::result::Result<StoredCert, String> {
    let cert_type = if version == 2 {
        r.utf()?
    } else {
        "X.509".to_string()
    };
    let der = r.bytes()?;
    Ok(StoredCert { cert_type, der })
}

fn read_entry(
    r: &mut Reader<'_>,
    flavor: Flavor,
    version: u32,
) -> std::result::Result<Entry, String> {
    let tag = r.u32()?;
    let alias = r.utf()?;
    let timestamp = r.i64()?;
    let body = match tag {
        1 => {
            let protected_key = r.bytes()?;
            let n = r.u32()?;
            if n > MAX_CHAIN {
                return Err(format!(
                    "alias '{alias}' claims a chain of {n} certificates; refusing more than {MAX_CHAIN}"
                ));
            }
            let mut chain = Vec::new();
            for _ in 0..n {
                chain.push(read_cert(r, version)?);
            }
            EntryBody::PrivateKey {
                protected_key,
                chain,
            }
        }
        2 => EntryBody::TrustedCert(read_cert(r, version)?),
        3 if flavor == Flavor::Jceks => {
            let n = super::jceks::sealed_object_len(r.rest()).map_err(|why| {
                format!(
                    "alias '{alias}' is a secret key whose serialized form certmesh cannot parse safely ({why}); refusing to read or rewrite this file"
                )
            })?;
            EntryBody::SecretKey {
                sealed: r.take(n)?.to_vec(),
            }
        }
        t => return Err(format!("alias '{alias}' has unknown entry type {t}")),
    };
    Ok(Entry {
        alias,
        timestamp,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Secret {
        Secret::new(s.into())
    }

    #[test]
    fn round_trip_and_integrity() {
        let mut ks = KeyStore::new(Flavor::Jks);
        ks.set_trusted("My CA", vec![0x30, 0x03, 0x02, 0x01, 0x01], 1234);
        let bytes = ks.to_bytes(&pw("changeit")).unwrap();
        let (back, integ) =
            KeyStore::parse(Path::new("t.jks"), &bytes, Some(&pw("changeit"))).unwrap();
        assert_eq!(integ, Integrity::Verified);
        assert_eq!(back, ks);
        assert_eq!(back.entries[0].alias, "my ca");
        assert_eq!(back.to_bytes(&pw("changeit")).unwrap(), bytes);
        let e = KeyStore::parse(Path::new("t.jks"), &bytes, Some(&pw("wrong"))).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("t.jks: JKS keystore integrity check failed"),
            "{e}"
        );
        assert!(
            matches!(&e, Error::WrongPassphrase { path, .. } if path.as_os_str() == "t.jks"),
            "{e:?}"
        );
        let (_, integ) = KeyStore::parse(Path::new("t.jks"), &bytes, None).unwrap();
        assert_eq!(integ, Integrity::NotChecked);
        for cut in 0..bytes.len() {
            assert!(KeyStore::parse(Path::new("t.jks"), &bytes[..cut], None).is_err());
        }
    }

    #[test]
    fn version_1_has_no_certificate_types() {
        let mut ks = KeyStore::new(Flavor::Jks);
        ks.version = 1;
        ks.set_trusted("a", vec![1, 2, 3], 5);
        let bytes = ks.to_bytes(&pw("pw")).unwrap();
        // magic, version, count, tag, alias "a", timestamp, then the length directly
        assert_eq!(&bytes[4..8], &1u32.to_be_bytes());
        assert_eq!(&bytes[27..31], &3u32.to_be_bytes());
        let (back, _) = KeyStore::parse(Path::new("v1.jks"), &bytes, Some(&pw("pw"))).unwrap();
        assert_eq!(back, ks);
        assert_eq!(
            back.entries[0].body.first_cert().unwrap().cert_type,
            "X.509"
        );
    }

    #[test]
    fn jceks_secret_key_that_cannot_be_walked_is_refused() {
        let mut d = Vec::new();
        d.extend_from_slice(&JCEKS_MAGIC.to_be_bytes());
        d.extend_from_slice(&2u32.to_be_bytes());
        d.extend_from_slice(&1u32.to_be_bytes());
        d.extend_from_slice(&3u32.to_be_bytes());
        d.extend_from_slice(&[0, 1, b's']);
        d.extend_from_slice(&0i64.to_be_bytes());
        // A serialization stream holding an exception object: not something to guess at.
        d.extend_from_slice(&[0xac, 0xed, 0x00, 0x05, 0x7b]);
        d.extend_from_slice(&[0u8; DIGEST_LEN]);
        let e = KeyStore::parse(Path::new("s.jceks"), &d, None).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("s.jceks: JCEKS keystore, entry 1: alias 's' is a secret key"),
            "{msg}"
        );
        assert!(msg.contains("refusing to read or rewrite"), "{msg}");
        // A JKS file cannot hold one at all.
        d[..4].copy_from_slice(&JKS_MAGIC.to_be_bytes());
        let e = KeyStore::parse(Path::new("s.jks"), &d, None).unwrap_err();
        assert!(e.to_string().contains("unknown entry type 3"), "{e}");
    }

    #[test]
    fn huge_counts_do_not_allocate() {
        let mut d = Vec::new();
        d.extend_from_slice(&JKS_MAGIC.to_be_bytes());
        d.extend_from_slice(&2u32.to_be_bytes());
        d.extend_from_slice(&u32::MAX.to_be_bytes());
        d.extend_from_slice(&2u32.to_be_bytes());
        d.extend_from_slice(&[0, 1, b'a']);
        d.extend_from_slice(&0i64.to_be_bytes());
        d.extend_from_slice(&[0, 5, b'X', b'.', b'5', b'0', b'9']);
        d.extend_from_slice(&u32::MAX.to_be_bytes());
        let e = KeyStore::parse(Path::new("h.jks"), &d, None).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
    }

    #[test]
    fn key_protector_round_trip() {
        let key: Vec<u8> = (0..=200u8).collect();
        let blob = protect_key(&key, &pw("keypass")).unwrap();
        assert_eq!(
            recover_key(&blob, &pw("keypass")).unwrap().as_slice(),
            &key[..]
        );
        assert!(recover_key(&blob, &pw("other")).is_err());
        assert!(recover_key(&blob[..10], &pw("keypass")).is_err());
    }

    #[test]
    fn modified_utf8() {
        let mut w = Vec::new();
        put_utf(&mut w, "a\u{0}é€😀").unwrap();
        let mut r = Reader { data: &w, pos: 0 };
        assert_eq!(r.utf().unwrap(), "a\u{0}é€😀");
        assert_eq!(&w[2..5], &[b'a', 0xc0, 0x80]);
    }

    #[test]
    fn key_protector_wrapping_is_the_der_java_writes_and_reads_back() {
        let oid_and_null = [
            0x30, 0x0e, 0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x2a, 0x02, 0x11, 0x01, 0x01,
            0x05, 0x00,
        ];
        let short = encode_epki(&[7; 3]).unwrap();
        let mut want = vec![0x30, 0x15];
        want.extend_from_slice(&oid_and_null);
        want.extend_from_slice(&[0x04, 0x03, 7, 7, 7]);
        assert_eq!(short, want);
        // A real key's blob needs the long length form on both levels.
        let blob = vec![9u8; 1300];
        let long = encode_epki(&blob).unwrap();
        assert_eq!(&long[..4], [0x30, 0x82, 0x05, 0x28]);
        assert_eq!(&long[4..20], oid_and_null);
        assert_eq!(&long[20..24], [0x04, 0x82, 0x05, 0x14]);
        let (oid, back) = decode_epki(&long).unwrap();
        assert_eq!((oid, back), (KEY_PROTECTOR_OID, blob.as_slice()));
        for bad in [
            &long[..long.len() - 1],
            &long[1..],
            &[0x31, 0x00][..],
            &[][..],
        ] {
            assert_eq!(
                decode_epki(bad).unwrap_err(),
                "damaged EncryptedPrivateKeyInfo"
            );
        }
        let sealed = protect_key(b"key bytes", &pw("pw")).unwrap();
        assert_eq!(
            recover_key(&sealed, &pw("pw")).unwrap().as_slice(),
            b"key bytes"
        );
    }
}
