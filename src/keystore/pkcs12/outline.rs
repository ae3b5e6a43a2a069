//! The outer structure of a PKCS#12 file, read without the password: which algorithms
//! protect it and with how many iterations.
//!
//! p12-keystore decodes the content but does not say how it was protected, and operators
//! need exactly that to know whether a consumer (Java 8, Windows, OpenSSL 1.x) can open a
//! file. The parts needed here (PFX, AuthenticatedSafe, MacData, the encryption
//! AlgorithmIdentifiers) are plain DER, so a small walker over the `der` crate's
//! tag-length-value reading is enough. It also tells a truncated or damaged file apart
//! from a wrong password.

use der::asn1::{AnyRef, ObjectIdentifier};
use der::{Decode, ErrorKind, Header, Reader as _, SliceReader, Tag};
use serde::Serialize;

/// What the PFX envelope says about its protection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outline {
    /// The integrity MAC, if the file has one.
    pub mac: Option<Protection>,
    /// Encryption of each encrypted content (usually the certificates).
    pub content_encryption: Vec<Protection>,
    /// Encryption of each shrouded private key found in unencrypted contents.
    pub key_encryption: Vec<Protection>,
}

/// An algorithm with its iteration count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Protection {
    /// A name in the form openssl and keytool print, e.g. `PBES2 (PBKDF2-HMAC-SHA256,
    /// AES-256-CBC)` or `HMAC-SHA1`.
    pub algorithm: String,
    pub iterations: u64,
}

impl std::fmt::Display for Protection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}, {} iterations", self.algorithm, self.iterations)
    }
}

impl Outline {
    /// True when any part is protected with 40-bit RC2 or RC4, which certmesh reads but
    /// never writes.
    pub fn uses_weak_cipher(&self) -> bool {
        self.content_encryption
            .iter()
            .chain(&self.key_encryption)
            .any(|p| p.algorithm.contains("RC2") || p.algorithm.contains("RC4"))
    }
}

const OID_DATA: &str = "1.2.840.113549.1.7.1";
const OID_ENCRYPTED_DATA: &str = "1.2.840.113549.1.7.6";
const OID_SHROUDED_KEY_BAG: &str = "1.2.840.113549.1.12.10.1.2";
const OID_PBES2: &str = "1.2.840.113549.1.5.13";
const OID_PBKDF2: &str = "1.2.840.113549.1.5.12";

pub(super) const TAG_INTEGER: u8 = 0x02;
pub(super) const TAG_OCTET_STRING: u8 = 0x04;
pub(super) const TAG_OID: u8 = 0x06;
pub(super) const TAG_SEQUENCE: u8 = 0x30;
pub(super) const TAG_EXPLICIT_0: u8 = 0xa0;
pub(super) const TAG_IMPLICIT_0: u8 = 0x80;
const TAG_CONSTRUCTED_IMPLICIT_0: u8 = 0xa0;

/// True when `data` starts like a PKCS#12 file: a DER SEQUENCE holding version 3 and a
/// pkcs7-data ContentInfo. Only the first few bytes are looked at, so a truncated file is
/// still recognised (and then reported as truncated rather than as "not a certificate").
pub fn looks_like_pkcs12(data: &[u8]) -> bool {
    let Some((TAG_SEQUENCE, inner)) = header(data) else {
        return false;
    };
    let Ok((version, rest)) = tlv(inner) else {
        return false;
    };
    if integer(&version).ok() != Some(3) {
        return false;
    }
    let Some((TAG_SEQUENCE, ci)) = header(rest) else {
        return false;
    };
    tlv(ci).ok().and_then(|(o, _)| oid(&o).ok()).as_deref() == Some(OID_DATA)
}

/// The tag of the element at the start of `data` and whatever of its content is present,
/// which may be cut short.
fn header(data: &[u8]) -> Option<(u8, &[u8])> {
    let mut r = SliceReader::new(data).ok()?;
    Header::decode(&mut r).ok()?;
    let at = usize::try_from(r.position()).ok()?;
    Some((*data.first()?, data.get(at..)?))
}

/// Reads the outline of a PKCS#12 file. Errors are short phrases for "PATH: problem".
pub fn outline(data: &[u8]) -> Result<Outline, String> {
    let (pfx, rest) = tlv(data)?;
    if pfx.tag != TAG_SEQUENCE {
        return Err("not a PKCS#12 file (no DER SEQUENCE)".into());
    }
    if !rest.is_empty() {
        return Err(format!(
            "{} bytes of trailing data after the PKCS#12 structure",
            rest.len()
        ));
    }
    let mut r = Reader(pfx.body);
    let version = integer(&r.next()?)?;
    if version != 3 {
        return Err(format!(
            "unsupported PKCS#12 version {version} (expected 3)"
        ));
    }
    let auth_safe = r.expect(TAG_SEQUENCE)?;
    let mac = if r.is_empty() {
        None
    } else {
        Some(mac_data(&r.expect(TAG_SEQUENCE)?)?)
    };

    let mut ci = Reader(auth_safe.body);
    if oid(&ci.next()?)? != OID_DATA {
        return Err(
            "PKCS#12 content is not pkcs7-data (public-key integrity mode is not supported)".into(),
        );
    }
    let wrapped = Reader(ci.expect(TAG_EXPLICIT_0)?.body).expect(TAG_OCTET_STRING)?;
    let safes = Reader(wrapped.body).expect(TAG_SEQUENCE)?;

    let mut out = Outline {
        mac,
        content_encryption: Vec::new(),
        key_encryption: Vec::new(),
    };
    let mut safes = Reader(safes.body);
    while !safes.is_empty() {
        let safe = safes.expect(TAG_SEQUENCE)?;
        let mut s = Reader(safe.body);
        let kind = oid(&s.next()?)?;
        let content = Reader(s.expect(TAG_EXPLICIT_0)?.body).next()?;
        match kind.as_str() {
            OID_DATA => {
                if content.tag != TAG_OCTET_STRING {
                    return Err("damaged PKCS#12 content (data is not an OCTET STRING)".into());
                }
                shrouded_keys(content.body, &mut out.key_encryption)?;
            }
            OID_ENCRYPTED_DATA => {
                // EncryptedData ::= SEQUENCE { version, EncryptedContentInfo }
                let mut ed = Reader(content.body);
                integer(&ed.next()?)?;
                let mut eci = Reader(ed.expect(TAG_SEQUENCE)?.body);
                oid(&eci.next()?)?;
                let alg = eci.expect(TAG_SEQUENCE)?;
                out.content_encryption.push(encryption(&alg)?);
                // encryptedContent [0] IMPLICIT is optional; BER may make it constructed.
                if !eci.is_empty() {
                    let c = eci.next()?;
                    if c.tag != TAG_IMPLICIT_0 && c.tag != TAG_CONSTRUCTED_IMPLICIT_0 {
                        return Err("damaged PKCS#12 encrypted content".into());
                    }
                }
            }
            other => return Err(format!("unsupported PKCS#12 content type {other}")),
        }
    }
    Ok(out)
}

fn mac_data(t: &Tlv<'_>) -> Result<Protection, String> {
    // MacData ::= SEQUENCE { mac DigestInfo, macSalt OCTET STRING, iterations INTEGER DEFAULT 1 }
    let mut r = Reader(t.body);
    let digest_info = r.expect(TAG_SEQUENCE)?;
    let mut di = Reader(digest_info.body);
    let alg = di.expect(TAG_SEQUENCE)?;
    let alg_oid = oid(&Reader(alg.body).next()?)?;
    di.expect(TAG_OCTET_STRING)?;
    r.expect(TAG_OCTET_STRING)?;
    let iterations = if r.is_empty() {
        1
    } else {
        integer(&r.next()?)?
    };
    let algorithm = match alg_oid.as_str() {
        "1.3.14.3.2.26" => "HMAC-SHA1".to_string(),
        "2.16.840.1.101.3.4.2.4" => "HMAC-SHA224".into(),
        "2.16.840.1.101.3.4.2.1" => "HMAC-SHA256".into(),
        "2.16.840.1.101.3.4.2.2" => "HMAC-SHA384".into(),
        "2.16.840.1.101.3.4.2.3" => "HMAC-SHA512".into(),
        "1.2.840.113549.1.5.14" => "PBMAC1".into(),
        "1.2.840.113549.2.5" => "HMAC-MD5".into(),
        other => format!("MAC {other}"),
    };
    Ok(Protection {
        algorithm,
        iterations,
    })
}

/// Collects the encryption of every shrouded key bag in an unencrypted SafeContents.
fn shrouded_keys(safe_contents: &[u8], out: &mut Vec<Protection>) -> Result<(), String> {
    let bags = Reader(safe_contents).expect(TAG_SEQUENCE)?;
    let mut bags = Reader(bags.body);
    while !bags.is_empty() {
        let bag = bags.expect(TAG_SEQUENCE)?;
        let mut b = Reader(bag.body);
        let id = oid(&b.next()?)?;
        let value = b.expect(TAG_EXPLICIT_0)?;
        if id == OID_SHROUDED_KEY_BAG {
            // EncryptedPrivateKeyInfo ::= SEQUENCE { AlgorithmIdentifier, OCTET STRING }
            let epki = Reader(value.body).expect(TAG_SEQUENCE)?;
            let alg = Reader(epki.body).expect(TAG_SEQUENCE)?;
            out.push(encryption(&alg)?);
        }
    }
    Ok(())
}

/// Names a password-based encryption AlgorithmIdentifier.
fn encryption(alg: &Tlv<'_>) -> Result<Protection, String> {
    let mut r = Reader(alg.body);
    let alg_oid = oid(&r.next()?)?;
    let params = r.expect(TAG_SEQUENCE)?;
    let mut p = Reader(params.body);
    let pbes1 = |name: &str, p: &mut Reader<'_>| -> Result<Protection, String> {
        // pkcs-12PbeParams ::= SEQUENCE { salt OCTET STRING, iterations INTEGER }
        p.expect(TAG_OCTET_STRING)?;
        Ok(Protection {
            algorithm: name.to_string(),
            iterations: integer(&p.next()?)?,
        })
    };
    match alg_oid.as_str() {
        "1.2.840.113549.1.12.1.1" => pbes1("PBEWithSHA1And128BitRC4", &mut p),
        "1.2.840.113549.1.12.1.2" => pbes1("PBEWithSHA1And40BitRC4", &mut p),
        "1.2.840.113549.1.12.1.3" => pbes1("PBEWithSHA1And3-KeyTripleDES-CBC", &mut p),
        "1.2.840.113549.1.12.1.4" => pbes1("PBEWithSHA1And2-KeyTripleDES-CBC", &mut p),
        "1.2.840.113549.1.12.1.5" => pbes1("PBEWithSHA1And128BitRC2-CBC", &mut p),
        "1.2.840.113549.1.12.1.6" => pbes1("PBEWithSHA1And40BitRC2-CBC", &mut p),
        OID_PBES2 => pbes2(&mut p),
        other => Err(format!("unknown PKCS#12 encryption algorithm {other}")),
    }
}

fn pbes2(p: &mut Reader<'_>) -> Result<Protection, String> {
    // PBES2-params ::= SEQUENCE { keyDerivationFunc AlgorithmIdentifier,
    //                             encryptionScheme AlgorithmIdentifier }
    let kdf = p.expect(TAG_SEQUENCE)?;
    let scheme = p.expect(TAG_SEQUENCE)?;
    let mut k = Reader(kdf.body);
    let kdf_oid = oid(&k.next()?)?;
    let (kdf_name, iterations) = if kdf_oid == OID_PBKDF2 {
        // PBKDF2-params ::= SEQUENCE { salt, iterationCount, keyLength OPTIONAL,
        //                              prf AlgorithmIdentifier DEFAULT hmacWithSHA1 }
        let mut kp = Reader(k.expect(TAG_SEQUENCE)?.body);
        kp.expect(TAG_OCTET_STRING)?;
        let iterations = integer(&kp.next()?)?;
        let mut prf = "1.2.840.113549.2.7".to_string();
        while !kp.is_empty() {
            let t = kp.next()?;
            if t.tag == TAG_SEQUENCE {
                prf = oid(&Reader(t.body).next()?)?;
            }
        }
        let prf = match prf.as_str() {
            "1.2.840.113549.2.7" => "PBKDF2-HMAC-SHA1".to_string(),
            "1.2.840.113549.2.8" => "PBKDF2-HMAC-SHA224".into(),
            "1.2.840.113549.2.9" => "PBKDF2-HMAC-SHA256".into(),
            "1.2.840.113549.2.10" => "PBKDF2-HMAC-SHA384".into(),
            "1.2.840.113549.2.11" => "PBKDF2-HMAC-SHA512".into(),
            other => format!("PBKDF2 with PRF {other}"),
        };
        (prf, iterations)
    } else if kdf_oid == "1.3.6.1.4.1.11591.4.11" {
        ("scrypt".to_string(), 0)
    } else {
        (format!("KDF {kdf_oid}"), 0)
    };
    let cipher = match oid(&Reader(scheme.body).next()?)?.as_str() {
        "2.16.840.1.101.3.4.1.2" => "AES-128-CBC".to_string(),
        "2.16.840.1.101.3.4.1.22" => "AES-192-CBC".into(),
        "2.16.840.1.101.3.4.1.42" => "AES-256-CBC".into(),
        "1.2.840.113549.3.7" => "DES-EDE3-CBC".into(),
        "1.3.14.3.2.7" => "DES-CBC".into(),
        "1.2.840.113549.3.2" => "RC2-CBC".into(),
        other => other.to_string(),
    };
    Ok(Protection {
        algorithm: format!("PBES2 ({kdf_name}, {cipher})"),
        iterations,
    })
}

/// One DER element: its tag and content octets.
pub(super) struct Tlv<'a> {
    pub tag: u8,
    pub body: &'a [u8],
}

/// Reads consecutive elements from a content.
pub(super) struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn next(&mut self) -> Result<Tlv<'a>, String> {
        if self.0.is_empty() {
            return Err("damaged PKCS#12 structure (an element is missing)".into());
        }
        let (t, rest) = tlv(self.0)?;
        self.0 = rest;
        Ok(t)
    }

    pub fn expect(&mut self, tag: u8) -> Result<Tlv<'a>, String> {
        let t = self.next()?;
        if t.tag != tag {
            return Err(format!(
                "damaged PKCS#12 structure (found tag 0x{:02x} where 0x{tag:02x} belongs)",
                t.tag
            ));
        }
        Ok(t)
    }
}

/// Splits the DER element at the start of `data` from what follows it.
pub(super) fn tlv(data: &[u8]) -> Result<(Tlv<'_>, &[u8]), String> {
    let damaged = |e: der::Error| match e.kind() {
        ErrorKind::Incomplete { .. } => {
            "truncated: the file ends inside the PKCS#12 structure".to_string()
        }
        ErrorKind::IndefiniteLength => {
            "indefinite-length BER encoding is not supported; re-export the file as DER".into()
        }
        ErrorKind::Overlength | ErrorKind::Overflow | ErrorKind::Length { .. } => {
            "damaged PKCS#12 structure (length too large or not in DER form)".into()
        }
        _ => format!("damaged PKCS#12 structure ({})", crate::x509::short_err(&e)),
    };
    // Tags of more than one byte are valid DER but appear nowhere in PKCS#12; `Tlv`
    // carries the one tag byte.
    if data.first().is_some_and(|t| t & 0x1f == 0x1f) {
        return Err("damaged PKCS#12 structure (multi-byte tag)".into());
    }
    let mut r = SliceReader::new(data).map_err(damaged)?;
    let header = Header::decode(&mut r).map_err(damaged)?;
    let body = r.read_slice(header.length()).map_err(damaged)?;
    let used = usize::try_from(r.position()).map_err(damaged)?;
    Ok((Tlv { tag: data[0], body }, &data[used..]))
}

fn oid(t: &Tlv<'_>) -> Result<String, String> {
    if t.tag != TAG_OID || t.body.is_empty() {
        return Err("damaged PKCS#12 structure (object identifier expected)".into());
    }
    ObjectIdentifier::from_bytes(t.body)
        .map(|o| o.to_string())
        .map_err(|_| "damaged PKCS#12 structure (invalid object identifier)".into())
}

pub(super) fn integer(t: &Tlv<'_>) -> Result<u64, String> {
    let bad = || "damaged PKCS#12 structure (small non-negative integer expected)".to_string();
    if t.tag != TAG_INTEGER {
        return Err(bad());
    }
    AnyRef::new(Tag::Integer, t.body)
        .and_then(|a| a.decode_as::<u64>())
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_oids_and_integers() {
        let t = Tlv {
            tag: TAG_OID,
            body: &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01],
        };
        assert_eq!(oid(&t).unwrap(), OID_DATA);
        let i = Tlv {
            tag: TAG_INTEGER,
            body: &[0x27, 0x10],
        };
        assert_eq!(integer(&i).unwrap(), 10000);
        let big = Tlv {
            tag: TAG_INTEGER,
            body: &[0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        };
        assert_eq!(integer(&big).unwrap(), u64::MAX);
        for body in [
            &[][..],
            &[0x80],
            &[0x00, 0x05],
            &[1, 0, 0, 0, 0, 0, 0, 0, 0],
        ] {
            let t = Tlv {
                tag: TAG_INTEGER,
                body,
            };
            assert!(integer(&t).is_err(), "{body:?}");
        }
        let cut = Tlv {
            tag: TAG_OID,
            body: &[0x2a, 0x86, 0x48, 0x86],
        };
        assert!(oid(&cut).unwrap_err().contains("invalid object identifier"));
    }

    #[test]
    fn tlv_splits_elements_and_names_the_problem() {
        let (t, rest) = tlv(&[0x04, 0x02, 7, 8, 0x05, 0x00]).unwrap();
        assert_eq!(
            (t.tag, t.body, rest),
            (TAG_OCTET_STRING, &[7u8, 8][..], &[5u8, 0][..])
        );
        let mut long = vec![0x04, 0x81, 200];
        long.extend([1; 200]);
        let (t, rest) = tlv(&long).unwrap();
        assert_eq!((t.body.len(), rest.len()), (200, 0));
        let cases: [(&[u8], &str); 6] = [
            (&[0x30, 0x05, 0x02], "truncated"),
            (&[0x30], "truncated"),
            (
                &[0x30, 0x80, 0x02, 0x01, 0x03, 0x00, 0x00],
                "indefinite-length",
            ),
            (&[0x30, 0x85, 1, 0, 0, 0, 0], "length too large"),
            (&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5], "not in DER form"),
            (&[0x1f, 0x81, 0x00, 0x00], "multi-byte tag"),
        ];
        for (data, want) in cases {
            let err = tlv(data).err().unwrap();
            assert!(err.contains(want), "{data:02x?}: {err}");
        }
        assert_eq!(
            header(&[0x30, 0x82, 0x08, 0x00, 0x02]),
            Some((0x30, &[2u8][..]))
        );
        assert_eq!(header(&[0x30, 0x82, 0x08]), None);
    }

    #[test]
    fn truncation_and_garbage_are_errors_not_panics() {
        assert!(!looks_like_pkcs12(b""));
        assert!(!looks_like_pkcs12(b"\x30\x82\x10"));
        let head = b"\x30\x82\x08\x00\x02\x01\x03\x30\x82\x07\x00\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x01";
        assert!(
            looks_like_pkcs12(head),
            "a truncated file is still recognised"
        );
        assert!(outline(b"\x30\x05\x02\x01\x03")
            .unwrap_err()
            .contains("truncated"));
        assert!(outline(b"hello").is_err());
        for n in 0..40 {
            let v: Vec<u8> = (0..n).map(|i| (i * 37 % 256) as u8).collect();
            let _ = outline(&v);
        }
    }
}
