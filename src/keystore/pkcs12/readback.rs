//! Opens a PKCS#12 file certmesh has just encoded, with the keys the encoder derived for it.
//!
//! The read-back check must decode the bytes themselves, not trust the encoder's view of
//! them, yet deriving every key again from the password would double the cost of writing
//! a file. So this decoder parses the PFX from its DER, checks the MAC over the
//! AuthenticatedSafe with the retained MAC key, and decrypts each encrypted bag with the
//! retained key whose algorithm, salt and iteration count match the ones written in the
//! bag. Nothing here derives a key: a file whose parameters do not match a retained key
//! fails, as does a file with any byte of MAC or ciphertext changed.
//!
//! It reads only what certmesh writes (definite-length DER, the two protection modes);
//! files from other tools go through `pfx` in `decode`.

use zeroize::Zeroizing;

use super::kdf::{BagCipher, BagKey, MacKey, Secrets};
use super::oids;
use super::outline::{
    integer, tlv, Reader, Tlv, TAG_EXPLICIT_0, TAG_IMPLICIT_0, TAG_OCTET_STRING, TAG_OID,
    TAG_SEQUENCE,
};
use crate::key::cbc_cipher::CbcCipher;

const TAG_SET: u8 = 0x31;
const TAG_BMP_STRING: u8 = 0x1e;
const TAG_NULL: u8 = 0x05;

/// A file's bags, decoded and decrypted.
pub(crate) struct Opened {
    pub keys: Vec<OpenedKey>,
    pub certs: Vec<OpenedCert>,
}

pub(crate) struct OpenedKey {
    /// PKCS#8 `PrivateKeyInfo` DER.
    pub pkcs8: Zeroizing<Vec<u8>>,
    pub local_key_id: Option<Vec<u8>>,
}

pub(crate) struct OpenedCert {
    pub der: Vec<u8>,
    pub local_key_id: Option<Vec<u8>>,
    pub trusted: bool,
}

/// The bag attributes the read-back check compares. A friendlyName is checked to be a
/// well-formed BMPString but not kept: the check does not compare names.
#[derive(Default)]
struct Attributes {
    local_key_id: Option<Vec<u8>>,
    trusted: bool,
}

/// Decodes `bytes` with `secrets`. Errors are short phrases for the read-back message.
pub(crate) fn open(bytes: &[u8], secrets: &Secrets) -> Result<Opened, String> {
    let (pfx, rest) = tlv(bytes)?;
    if pfx.tag != TAG_SEQUENCE || !rest.is_empty() {
        return Err("not one DER SEQUENCE".into());
    }
    let mut r = Reader(pfx.body);
    if integer(&r.next()?)? != 3 {
        return Err("version is not 3".into());
    }
    let auth_safe = data_content(&r.expect(TAG_SEQUENCE)?)?;
    if r.is_empty() {
        return Err("the file has no MAC".into());
    }
    check_mac(&r.expect(TAG_SEQUENCE)?, auth_safe, &secrets.mac)?;
    if !r.is_empty() {
        return Err("data after the MAC".into());
    }

    let mut opened = Opened {
        keys: Vec::new(),
        certs: Vec::new(),
    };
    let mut used = vec![false; secrets.bags.len()];
    let mut safes = Reader(Reader(auth_safe).expect(TAG_SEQUENCE)?.body);
    while !safes.is_empty() {
        let ci = safes.expect(TAG_SEQUENCE)?;
        let mut c = Reader(ci.body);
        let kind = c.expect(TAG_OID)?;
        if kind.body == oids::DATA.as_bytes() {
            let content = data_content(&ci)?;
            read_bags(content, secrets, &mut used, &mut opened)?;
        } else if kind.body == oids::ENCRYPTED_DATA.as_bytes() {
            let plain = encrypted_content(&c.expect(TAG_EXPLICIT_0)?, secrets, &mut used)?;
            read_bags(&plain, secrets, &mut used, &mut opened)?;
        } else {
            return Err("a content is neither data nor encryptedData".into());
        }
    }
    if used.iter().any(|u| !u) {
        return Err("an encrypted bag the encoder sealed is missing".into());
    }
    Ok(opened)
}

/// The OCTET STRING inside a pkcs7-data `ContentInfo`.
fn data_content<'a>(ci: &Tlv<'a>) -> Result<&'a [u8], String> {
    let mut c = Reader(ci.body);
    if c.expect(TAG_OID)?.body != oids::DATA.as_bytes() {
        return Err("a content is not pkcs7-data".into());
    }
    let wrapped = Reader(c.expect(TAG_EXPLICIT_0)?.body).expect(TAG_OCTET_STRING)?;
    Ok(wrapped.body)
}

/// `MacData`: the digest algorithm, salt and iterations must be those the retained key was
/// derived for, and the HMAC of the AuthenticatedSafe must match.
fn check_mac(mac_data: &Tlv<'_>, auth_safe: &[u8], key: &MacKey) -> Result<(), String> {
    let mut r = Reader(mac_data.body);
    let mut digest_info = Reader(r.expect(TAG_SEQUENCE)?.body);
    let mut alg = Reader(digest_info.expect(TAG_SEQUENCE)?.body);
    if alg.expect(TAG_OID)?.body != key.digest.oid().as_bytes() {
        return Err("the MAC's digest is not the one its key was derived for".into());
    }
    null_or_nothing(&mut alg)?;
    let mac = digest_info.expect(TAG_OCTET_STRING)?;
    let salt = r.expect(TAG_OCTET_STRING)?;
    let iterations = if r.is_empty() {
        1
    } else {
        integer(&r.next()?)?
    };
    if salt.body != key.salt.as_slice() || iterations != u64::from(key.iterations) {
        return Err(
            "the MAC's salt or iterations are not the ones its key was derived with".into(),
        );
    }
    let hkey = aws_lc_rs::hmac::Key::new(key.digest.hmac(), &key.key);
    aws_lc_rs::hmac::verify(&hkey, auth_safe, mac.body)
        .map_err(|_| "the MAC check failed".to_string())
}

/// Decrypts `EncryptedData { version 0, EncryptedContentInfo { data, alg, [0] IMPLICIT } }`.
fn encrypted_content(
    explicit: &Tlv<'_>,
    secrets: &Secrets,
    used: &mut [bool],
) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut ed = Reader(Reader(explicit.body).expect(TAG_SEQUENCE)?.body);
    if integer(&ed.next()?)? != 0 {
        return Err("EncryptedData version is not 0".into());
    }
    let mut eci = Reader(ed.expect(TAG_SEQUENCE)?.body);
    if eci.expect(TAG_OID)?.body != oids::DATA.as_bytes() {
        return Err("the encrypted content is not pkcs7-data".into());
    }
    let alg = eci.expect(TAG_SEQUENCE)?;
    let sealed = eci.expect(TAG_IMPLICIT_0)?;
    unseal(&alg, sealed.body, secrets, used)
}

/// Reads a SafeContents: shrouded key bags (decrypted) and certificate bags.
fn read_bags(
    safe_contents: &[u8],
    secrets: &Secrets,
    used: &mut [bool],
    out: &mut Opened,
) -> Result<(), String> {
    let (all, rest) = tlv(safe_contents)?;
    if all.tag != TAG_SEQUENCE || !rest.is_empty() {
        return Err("a SafeContents is not one SEQUENCE".into());
    }
    let mut bags = Reader(all.body);
    while !bags.is_empty() {
        let mut b = Reader(bags.expect(TAG_SEQUENCE)?.body);
        let id = b.expect(TAG_OID)?;
        let value = b.expect(TAG_EXPLICIT_0)?;
        let attrs = if b.is_empty() {
            Attributes::default()
        } else {
            attributes(&b.expect(TAG_SET)?)?
        };
        if id.body == oids::SHROUDED_KEY_BAG.as_bytes() {
            let mut epki = Reader(Reader(value.body).expect(TAG_SEQUENCE)?.body);
            let alg = epki.expect(TAG_SEQUENCE)?;
            let sealed = epki.expect(TAG_OCTET_STRING)?;
            out.keys.push(OpenedKey {
                pkcs8: unseal(&alg, sealed.body, secrets, used)?,
                local_key_id: attrs.local_key_id,
            });
        } else if id.body == oids::CERT_BAG.as_bytes() {
            let mut cb = Reader(Reader(value.body).expect(TAG_SEQUENCE)?.body);
            if cb.expect(TAG_OID)?.body != oids::X509_CERTIFICATE.as_bytes() {
                return Err("a certificate bag does not hold an X.509 certificate".into());
            }
            let der = Reader(cb.expect(TAG_EXPLICIT_0)?.body).expect(TAG_OCTET_STRING)?;
            out.certs.push(OpenedCert {
                der: der.body.to_vec(),
                local_key_id: attrs.local_key_id,
                trusted: attrs.trusted,
            });
        } else {
            return Err("a bag is neither a shrouded key nor a certificate".into());
        }
    }
    Ok(())
}

/// `SET OF Attribute { OID, SET OF value }`: friendlyName, localKeyId, Oracle's trusted
/// usage; anything else is not what certmesh writes.
fn attributes(set: &Tlv<'_>) -> Result<Attributes, String> {
    let mut out = Attributes::default();
    let mut r = Reader(set.body);
    while !r.is_empty() {
        let mut a = Reader(r.expect(TAG_SEQUENCE)?.body);
        let id = a.expect(TAG_OID)?;
        let mut values = Reader(a.expect(TAG_SET)?.body);
        let value = values.next()?;
        if !values.is_empty() {
            return Err("an attribute has more than one value".into());
        }
        if id.body == oids::FRIENDLY_NAME.as_bytes() && value.tag == TAG_BMP_STRING {
            bmp_string(value.body)?;
        } else if id.body == oids::LOCAL_KEY_ID.as_bytes() && value.tag == TAG_OCTET_STRING {
            out.local_key_id = Some(value.body.to_vec());
        } else if id.body == oids::ORACLE_TRUSTED_KEY_USAGE.as_bytes() && value.tag == TAG_OID {
            if value.body != oids::ANY_EXTENDED_KEY_USAGE.as_bytes() {
                return Err("the trusted-certificate attribute is not anyExtendedKeyUsage".into());
            }
            out.trusted = true;
        } else {
            return Err("a bag carries an attribute certmesh does not write".into());
        }
    }
    Ok(out)
}

fn bmp_string(body: &[u8]) -> Result<String, String> {
    if body.len() % 2 != 0 {
        return Err("a friendlyName has an odd length".into());
    }
    let units = body
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|_| "a friendlyName is not valid UCS-2".into())
}

/// Decrypts `sealed` with the unused retained key whose scheme, salt and iterations are
/// the ones `alg` names.
fn unseal(
    alg: &Tlv<'_>,
    sealed: &[u8],
    secrets: &Secrets,
    used: &mut [bool],
) -> Result<Zeroizing<Vec<u8>>, String> {
    let p = bag_params(alg)?;
    let index = secrets
        .bags
        .iter()
        .zip(used.iter())
        .position(|(k, u)| {
            !u && k.cipher == p.cipher
                && k.salt == p.salt
                && u64::from(k.iterations) == p.iterations
        })
        .ok_or("an encrypted bag's parameters match no key the encoder derived")?;
    used[index] = true;
    let key: &BagKey = &secrets.bags[index];
    let (cipher, iv) = match p.iv {
        Some(iv) => (CbcCipher::Aes256, iv),
        None => (
            CbcCipher::DesEde3,
            key.derived_iv
                .as_deref()
                .map(Vec::as_slice)
                .ok_or("a PBE key was retained without its IV")?,
        ),
    };
    cipher
        .decrypt(&key.key, iv, sealed)
        .map_err(|_| "an encrypted bag does not decrypt with the key derived for it".to_string())
}

/// A bag's encryption parameters as written.
struct BagParams<'a> {
    cipher: BagCipher,
    salt: &'a [u8],
    iterations: u64,
    /// The IV written in PBES2 parameters; PKCS#12 PBE derives its IV.
    iv: Option<&'a [u8]>,
}

/// Reads a PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) or pbeWithSHAAnd3-KeyTripleDES-CBC
/// AlgorithmIdentifier; anything else is not what certmesh writes.
fn bag_params<'a>(alg: &Tlv<'a>) -> Result<BagParams<'a>, String> {
    let mut r = Reader(alg.body);
    let id = r.expect(TAG_OID)?;
    let mut params = Reader(r.expect(TAG_SEQUENCE)?.body);
    if id.body == oids::PBE_SHA1_3DES.as_bytes() {
        let salt = params.expect(TAG_OCTET_STRING)?.body;
        let iterations = integer(&params.next()?)?;
        return Ok(BagParams {
            cipher: BagCipher::PbeSha1Des3,
            salt,
            iterations,
            iv: None,
        });
    }
    if id.body != oids::PBES2.as_bytes() {
        return Err("a bag is encrypted with a scheme certmesh does not write".into());
    }
    let mut kdf = Reader(params.expect(TAG_SEQUENCE)?.body);
    if kdf.expect(TAG_OID)?.body != oids::PBKDF2.as_bytes() {
        return Err("a PBES2 bag does not use PBKDF2".into());
    }
    let mut k = Reader(kdf.expect(TAG_SEQUENCE)?.body);
    let salt = k.expect(TAG_OCTET_STRING)?.body;
    let iterations = integer(&k.next()?)?;
    let mut prf_ok = false;
    while !k.is_empty() {
        let t = k.next()?;
        if t.tag == TAG_SEQUENCE {
            let mut prf = Reader(t.body);
            prf_ok = prf.expect(TAG_OID)?.body == oids::HMAC_WITH_SHA256.as_bytes();
            null_or_nothing(&mut prf)?;
        } else if integer(&t)? != 32 {
            return Err("a PBES2 bag names a key length other than 32".into());
        }
    }
    if !prf_ok {
        return Err("a PBES2 bag does not use HMAC-SHA256".into());
    }
    let mut scheme = Reader(params.expect(TAG_SEQUENCE)?.body);
    if scheme.expect(TAG_OID)?.body != oids::AES_256_CBC.as_bytes() {
        return Err("a PBES2 bag is not encrypted with AES-256-CBC".into());
    }
    let iv = scheme.expect(TAG_OCTET_STRING)?.body;
    if iv.len() != 16 {
        return Err("a PBES2 bag's IV is not 16 bytes".into());
    }
    Ok(BagParams {
        cipher: BagCipher::Pbes2Aes256,
        salt,
        iterations,
        iv: Some(iv),
    })
}

/// AlgorithmIdentifier parameters that must be absent or NULL.
fn null_or_nothing(r: &mut Reader<'_>) -> Result<(), String> {
    if r.is_empty() {
        return Ok(());
    }
    let t = r.next()?;
    if t.tag != TAG_NULL || !t.body.is_empty() || !r.is_empty() {
        return Err("unexpected algorithm parameters".into());
    }
    Ok(())
}
