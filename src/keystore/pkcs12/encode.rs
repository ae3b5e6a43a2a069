//! The PKCS#12 encoder (RFC 7292): a PFX with one encrypted SafeContents for the
//! certificates and one plain SafeContents for the shrouded private key, sealed by a MAC.
//!
//! certmesh writes its own instead of going through p12-keystore so that it keeps the key
//! of every bag and of the MAC (see [`super::kdf`]): the read-back check then opens the
//! bytes with those keys rather than deriving each one a second time from the password.
//! The layout is the one p12-keystore 0.4 wrote for certmesh before, which Java, OpenSSL,
//! Windows, macOS and Python were tested against: certificates first (encrypted), then the
//! key bag, MAC without AlgorithmIdentifier parameters, attributes in DER SET order.

use der::asn1::{AnyRef, BmpString, ObjectIdentifier};
use der::{Encode, Tag, TagNumber};

use super::kdf::{self, BagCipher, BagKey, MacDigest, MacKey, Secrets};
use super::oids;
use crate::key::cbc_cipher::CbcCipher;
use crate::pass::Secret;
use crate::{Error, Result};

/// The private key's bag.
pub(crate) struct KeyBag<'a> {
    /// PKCS#8 `PrivateKeyInfo` DER.
    pub pkcs8: &'a [u8],
    pub friendly_name: &'a str,
    pub local_key_id: &'a [u8],
}

/// One certificate's bag.
pub(crate) struct CertBag<'a> {
    pub der: &'a [u8],
    pub friendly_name: Option<&'a str>,
    pub local_key_id: Option<&'a [u8]>,
    /// Carries Oracle's trusted-certificate attribute.
    pub trusted: bool,
}

/// How a file is protected.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Protection {
    pub cipher: BagCipher,
    pub mac: MacDigest,
    /// For every key derivation, the bags' and the MAC's.
    pub iterations: u32,
}

/// An encoded file, with every key that was derived to seal it.
pub(crate) struct Encoded {
    pub bytes: Vec<u8>,
    pub secrets: Secrets,
}

/// Encodes a PFX holding `certs` (encrypted) and `key` (shrouded, in a plain
/// SafeContents, which is empty when there is no key).
pub(crate) fn encode(
    key: Option<&KeyBag<'_>>,
    certs: &[CertBag<'_>],
    protection: Protection,
    pass: &Secret,
) -> Result<Encoded> {
    let mut bag_keys = Vec::new();

    let cert_bags = certs.iter().map(cert_bag).collect::<Result<Vec<_>>>()?;
    let cert_key = BagKey::derive(protection.cipher, pass, protection.iterations)?;
    let (alg, sealed) = seal(&cert_key, &seq(&cert_bags)?)?;
    bag_keys.push(cert_key);
    let encrypted_content = tlv(CONTEXT_0_PRIMITIVE, &sealed)?;
    let encrypted_data = seq(&[
        0u32.to_der().map_err(der_failed)?,
        seq(&[oid(oids::DATA)?, alg, encrypted_content])?,
    ])?;
    let certs_safe = seq(&[oid(oids::ENCRYPTED_DATA)?, explicit_0(&encrypted_data)?])?;

    let mut key_bags = Vec::new();
    if let Some(k) = key {
        let bag_key = match protection.cipher {
            // PBES2 draws a fresh random IV for every encryption, so the key bag uses the
            // certificates' salt and derived key: one PBKDF2 for the whole file. It costs
            // a password guess no less (an attacker already needs only one bag, or the
            // MAC), and Java and OpenSSL derive each bag's key on their own from the
            // parameters written beside it.
            BagCipher::Pbes2Aes256 => bag_keys[0].clone(),
            // PKCS#12 PBE derives the IV from the salt too: a shared salt would encrypt
            // both bags under the same key and IV. Each gets its own.
            BagCipher::PbeSha1Des3 => {
                BagKey::derive(protection.cipher, pass, protection.iterations)?
            }
        };
        key_bags.push(key_bag(k, &bag_key)?);
        bag_keys.push(bag_key);
    }
    let keys_safe = seq(&[oid(oids::DATA)?, explicit_0(&octets(&seq(&key_bags)?)?)?])?;

    let auth_safe = seq(&[certs_safe, keys_safe])?;
    let mac_key = MacKey::derive(protection.mac, pass, protection.iterations)?;
    let mac_data = mac_data(&mac_key, &auth_safe)?;
    let bytes = seq(&[
        3u32.to_der().map_err(der_failed)?,
        seq(&[oid(oids::DATA)?, explicit_0(&octets(&auth_safe)?)?])?,
        mac_data,
    ])?;
    Ok(Encoded {
        bytes,
        secrets: Secrets {
            mac: mac_key,
            bags: bag_keys,
        },
    })
}

/// `SafeBag { certBag, [0] CertBag { x509Certificate, [0] OCTET STRING }, attributes }`.
pub(super) fn cert_bag(c: &CertBag<'_>) -> Result<Vec<u8>> {
    let value = seq(&[oid(oids::X509_CERTIFICATE)?, explicit_0(&octets(c.der)?)?])?;
    let mut attrs = Vec::new();
    if let Some(name) = c.friendly_name {
        attrs.push(friendly_name(name)?);
    }
    if let Some(id) = c.local_key_id {
        attrs.push(attribute(oids::LOCAL_KEY_ID, &octets(id)?)?);
    }
    if c.trusted {
        attrs.push(attribute(
            oids::ORACLE_TRUSTED_KEY_USAGE,
            &oid(oids::ANY_EXTENDED_KEY_USAGE)?,
        )?);
    }
    seq(&[oid(oids::CERT_BAG)?, explicit_0(&value)?, set_of(attrs)?])
}

/// `SafeBag { pkcs8ShroudedKeyBag, [0] EncryptedPrivateKeyInfo, attributes }`.
fn key_bag(k: &KeyBag<'_>, bag_key: &BagKey) -> Result<Vec<u8>> {
    let (alg, sealed) = seal(bag_key, k.pkcs8)?;
    let epki = seq(&[alg, octets(&sealed)?])?;
    let attrs = vec![
        friendly_name(k.friendly_name)?,
        attribute(oids::LOCAL_KEY_ID, &octets(k.local_key_id)?)?,
    ];
    seq(&[
        oid(oids::SHROUDED_KEY_BAG)?,
        explicit_0(&epki)?,
        set_of(attrs)?,
    ])
}

/// Encrypts `plain` with a bag's key: returns the AlgorithmIdentifier that names the
/// scheme and its parameters, and the ciphertext.
fn seal(bag_key: &BagKey, plain: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let iterations = bag_key.iterations.to_der().map_err(der_failed)?;
    match bag_key.cipher {
        BagCipher::Pbes2Aes256 => {
            let iv = kdf::random(16)?;
            let sealed = encrypt(CbcCipher::Aes256, &bag_key.key, &iv, plain)?;
            let prf = seq(&[oid(oids::HMAC_WITH_SHA256)?, NULL.to_vec()])?;
            let pbkdf2 = seq(&[
                oid(oids::PBKDF2)?,
                seq(&[octets(&bag_key.salt)?, iterations, prf])?,
            ])?;
            let aes = seq(&[oid(oids::AES_256_CBC)?, octets(&iv)?])?;
            let alg = seq(&[oid(oids::PBES2)?, seq(&[pbkdf2, aes])?])?;
            Ok((alg, sealed))
        }
        BagCipher::PbeSha1Des3 => {
            let iv = bag_key
                .derived_iv
                .as_ref()
                .ok_or_else(|| Error::Crypto("PKCS#12 PBE key derived without its IV".into()))?;
            let sealed = encrypt(CbcCipher::DesEde3, &bag_key.key, iv, plain)?;
            let params = seq(&[octets(&bag_key.salt)?, iterations])?;
            Ok((seq(&[oid(oids::PBE_SHA1_3DES)?, params])?, sealed))
        }
    }
}

fn encrypt(cipher: CbcCipher, key: &[u8], iv: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
    cipher.encrypt(key, iv, plain).ok_or_else(|| {
        Error::Crypto(format!(
            "{} rejected a key of {} bytes or an IV of {}",
            cipher.name(),
            key.len(),
            iv.len()
        ))
    })
}

/// `MacData { DigestInfo { AlgorithmIdentifier, digest }, macSalt, iterations }`: the
/// HMAC of the AuthenticatedSafe's DER. The digest's AlgorithmIdentifier has no
/// parameters, as p12-keystore wrote it.
fn mac_data(mac_key: &MacKey, auth_safe: &[u8]) -> Result<Vec<u8>> {
    let hkey = aws_lc_rs::hmac::Key::new(mac_key.digest.hmac(), &mac_key.key);
    let tag = aws_lc_rs::hmac::sign(&hkey, auth_safe);
    let digest_info = seq(&[seq(&[oid(mac_key.digest.oid())?])?, octets(tag.as_ref())?])?;
    seq(&[
        digest_info,
        octets(&mac_key.salt)?,
        mac_key.iterations.to_der().map_err(der_failed)?,
    ])
}

/// The friendlyName attribute: a BMPString, which is what Java shows as the alias.
fn friendly_name(name: &str) -> Result<Vec<u8>> {
    let bmp = BmpString::from_utf8(name)
        .and_then(|b| b.to_der())
        .map_err(|_| {
            Error::Usage(format!(
                "'{}' cannot be written as a PKCS#12 friendlyName (BMPString)",
                name.escape_default()
            ))
        })?;
    attribute(oids::FRIENDLY_NAME, &bmp)
}

/// `Attribute { OID, SET { value } }`.
fn attribute(id: ObjectIdentifier, value: &[u8]) -> Result<Vec<u8>> {
    seq(&[oid(id)?, set_of(vec![value.to_vec()])?])
}

const NULL: [u8; 2] = [0x05, 0x00];

const CONTEXT_0_CONSTRUCTED: Tag = Tag::ContextSpecific {
    constructed: true,
    number: TagNumber(0),
};

const CONTEXT_0_PRIMITIVE: Tag = Tag::ContextSpecific {
    constructed: false,
    number: TagNumber(0),
};

fn der_failed(e: der::Error) -> Error {
    Error::Crypto(format!("PKCS#12 encoding failed: {e}"))
}

/// One element: `tag`, the length, and `content`.
fn tlv(tag: Tag, content: &[u8]) -> Result<Vec<u8>> {
    AnyRef::new(tag, content)
        .and_then(|any| any.to_der())
        .map_err(der_failed)
}

/// A SEQUENCE of already encoded elements.
pub(super) fn seq<T: AsRef<[u8]>>(parts: &[T]) -> Result<Vec<u8>> {
    let content: Vec<u8> = parts.iter().flat_map(|p| p.as_ref().to_vec()).collect();
    tlv(Tag::Sequence, &content)
}

/// A SET OF, its elements in the ascending order of their encodings that DER requires.
fn set_of(mut items: Vec<Vec<u8>>) -> Result<Vec<u8>> {
    items.sort();
    tlv(Tag::Set, &items.concat())
}

/// `[0] EXPLICIT`.
pub(super) fn explicit_0(inner: &[u8]) -> Result<Vec<u8>> {
    tlv(CONTEXT_0_CONSTRUCTED, inner)
}

pub(super) fn octets(bytes: &[u8]) -> Result<Vec<u8>> {
    tlv(Tag::OctetString, bytes)
}

pub(super) fn oid(id: ObjectIdentifier) -> Result<Vec<u8>> {
    id.to_der().map_err(der_failed)
}

/// An OBJECT IDENTIFIER from its content octets.
pub(super) fn raw_oid(body: &[u8]) -> Result<Vec<u8>> {
    tlv(Tag::ObjectIdentifier, body)
}

/// `[0] IMPLICIT OCTET STRING`: an EncryptedContentInfo's content.
pub(super) fn implicit_0(content: &[u8]) -> Result<Vec<u8>> {
    tlv(CONTEXT_0_PRIMITIVE, content)
}

/// A non-negative INTEGER.
pub(super) fn integer(n: u32) -> Result<Vec<u8>> {
    n.to_der().map_err(der_failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_helpers_write_what_openssl_expects() {
        assert_eq!(seq::<Vec<u8>>(&[]).unwrap(), [0x30, 0x00]);
        assert_eq!(10_000u32.to_der().unwrap(), [0x02, 0x02, 0x27, 0x10]);
        let long = octets(&[7u8; 200]).unwrap();
        assert_eq!(&long[..3], [0x04, 0x81, 200]);
        assert_eq!(explicit_0(&[0x05, 0x00]).unwrap(), [0xa0, 0x02, 0x05, 0x00]);
        assert_eq!(tlv(CONTEXT_0_PRIMITIVE, &[1]).unwrap(), [0x80, 0x01, 0x01]);
        // SET OF sorts by encoding: the shorter attribute first when the tags agree.
        let set = set_of(vec![vec![0x30, 0x03, 1, 2, 3], vec![0x30, 0x01, 9]]).unwrap();
        assert_eq!(set, [0x31, 0x08, 0x30, 0x01, 9, 0x30, 0x03, 1, 2, 3]);
        let fname = friendly_name("ab").unwrap();
        assert!(fname.ends_with(&[0x31, 0x06, 0x1e, 0x04, 0, b'a', 0, b'b']));
        assert!(friendly_name("\u{1F600}").is_err());
    }
}
