//! OpenSSL's "traditional" key encodings, PKCS#1 `RSA PRIVATE KEY` and SEC1
//! `EC PRIVATE KEY`, converted to and from PKCS#8.
//!
//! Some consumers still read only these (Apache's `SSLProxyMachineCertificateFile`, old
//! Java and Ruby code), and OpenSSL 1.x wrote them by default, so both directions matter.
//! Ed25519 has no traditional encoding.

use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef};
use der::Encode;
use pkcs8::spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};
use zeroize::Zeroizing;

use super::detect::{der_problem, Plain};
use crate::{Error, Result};

pub(crate) const RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
pub(crate) const EC_PUBLIC_KEY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
pub(crate) const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
pub(crate) const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
pub(crate) const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
pub(crate) const P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

/// Converts an unencrypted key in any of the three encodings to PKCS#8 DER. Errors are
/// one-line problem descriptions.
pub(crate) fn to_pkcs8(
    plain: Plain,
    der: &[u8],
) -> std::result::Result<Zeroizing<Vec<u8>>, String> {
    match plain {
        Plain::Pkcs8 => Ok(Zeroizing::new(der.to_vec())),
        Plain::Pkcs1 => pkcs1_to_pkcs8(der),
        Plain::Sec1 => sec1_to_pkcs8(der),
    }
}

fn pkcs1_to_pkcs8(der: &[u8]) -> std::result::Result<Zeroizing<Vec<u8>>, String> {
    pkcs1::RsaPrivateKeyRef::try_from(der)
        .map_err(|e| format!("damaged PKCS#1 RSA key ({})", pkcs1_problem(&e)))?;
    let info = pkcs8::PrivateKeyInfoRef::new(
        AlgorithmIdentifierRef {
            oid: RSA_ENCRYPTION,
            parameters: Some(AnyRef::NULL),
        },
        OctetStringRef::new(der).map_err(|e| format!("damaged PKCS#1 RSA key ({e})"))?,
    );
    info.to_der()
        .map(Zeroizing::new)
        .map_err(|e| format!("cannot re-encode PKCS#1 key as PKCS#8 ({e})"))
}

fn pkcs1_problem(e: &pkcs1::Error) -> String {
    match e {
        pkcs1::Error::Asn1(d) => der_problem(d),
        other => crate::x509::short_err(other),
    }
}

fn sec1_to_pkcs8(der: &[u8]) -> std::result::Result<Zeroizing<Vec<u8>>, String> {
    use aws_lc_rs::signature::{
        EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING,
        ECDSA_P521_SHA512_ASN1_SIGNING,
    };
    if sec1_explicit_parameters(der) {
        return Err(EXPLICIT_PARAMETERS.into());
    }
    let ec = sec1::EcPrivateKey::try_from(der).map_err(|e| match e {
        sec1::Error::Asn1(d) => format!("damaged SEC1 EC key ({})", der_problem(&d)),
        other => format!("damaged SEC1 EC key ({})", crate::x509::short_err(&other)),
    })?;
    // Without parameters, the private scalar's length says which curve it is on.
    let curve = ec
        .parameters
        .and_then(|p| p.named_curve())
        .or(match ec.private_key.len() {
            32 => Some(P256),
            48 => Some(P384),
            66 => Some(P521),
            _ => None,
        })
        .ok_or("SEC1 EC key without a named curve")?;
    let alg = match curve {
        c if c == P256 => &ECDSA_P256_SHA256_ASN1_SIGNING,
        c if c == P384 => &ECDSA_P384_SHA384_ASN1_SIGNING,
        c if c == P521 => &ECDSA_P521_SHA512_ASN1_SIGNING,
        other => {
            return Err(format!(
                "EC curve {} is not supported (certmesh uses P-256, P-384 and P-521)",
                curve_name(&other)
            ))
        }
    };
    let kp = EcdsaKeyPair::from_private_key_der(alg, der).map_err(|_| {
        format!(
            "damaged SEC1 EC key: not a valid {} private key",
            curve_name(&curve)
        )
    })?;
    let doc = kp
        .to_pkcs8v1()
        .map_err(|_| "cannot re-encode SEC1 key as PKCS#8".to_string())?;
    Ok(Zeroizing::new(doc.as_ref().to_vec()))
}

/// Why an EC key with explicit curve parameters (rather than a named curve) is refused.
pub(crate) const EXPLICIT_PARAMETERS: &str = "EC keys with explicit curve parameters are not supported (certmesh reads named curves: P-256, P-384, P-521); convert it with: openssl ec -in FILE -param_enc named_curve -out NEW";

/// Whether a SEC1 `ECPrivateKey` carries explicit curve parameters: its `[0]` field holds
/// a SEQUENCE (ECParameters) instead of an OID.
fn sec1_explicit_parameters(der: &[u8]) -> bool {
    use der::{Decode, Reader, SliceReader, Tagged};
    let Ok(mut r) = SliceReader::new(der) else {
        return false;
    };
    r.sequence(|r| {
        let _version = AnyRef::decode(r)?;
        let _key = AnyRef::decode(r)?;
        if r.is_finished() {
            return Ok::<_, der::Error>(false);
        }
        let params = AnyRef::decode(r)?;
        while !r.is_finished() {
            AnyRef::decode(r)?;
        }
        Ok(params.tag().is_context_specific() && params.value().first() == Some(&0x30))
    })
    .unwrap_or(false)
}

/// Names a curve OID the way operators know it.
pub(crate) fn curve_name(oid: &ObjectIdentifier) -> String {
    match oid.to_string().as_str() {
        "1.2.840.10045.3.1.7" => "P-256".into(),
        "1.3.132.0.34" => "P-384".into(),
        "1.3.132.0.35" => "P-521".into(),
        "1.3.132.0.10" => "secp256k1".into(),
        "1.3.36.3.3.2.8.1.1.7" => "brainpoolP256r1".into(),
        "1.3.36.3.3.2.8.1.1.11" => "brainpoolP384r1".into(),
        "1.3.36.3.3.2.8.1.1.13" => "brainpoolP512r1".into(),
        other => other.into(),
    }
}

/// Converts PKCS#8 DER to the traditional encoding: PKCS#1 for RSA, SEC1 (with the named
/// curve and the public key, as OpenSSL writes it) for EC. `spki` supplies the public key
/// when the PKCS#8 structure omits it.
pub(crate) fn from_pkcs8(pkcs8_der: &[u8], spki: &[u8]) -> Result<(Plain, Zeroizing<Vec<u8>>)> {
    let bad = |e: &dyn std::fmt::Display| {
        Error::Crypto(format!("cannot convert key to traditional form: {e}"))
    };
    let info = pkcs8::PrivateKeyInfoRef::try_from(pkcs8_der).map_err(|e| bad(&e))?;
    match info.algorithm.oid {
        oid if oid == RSA_ENCRYPTION => {
            Ok((Plain::Pkcs1, Zeroizing::new(info.private_key.as_bytes().to_vec())))
        }
        oid if oid == EC_PUBLIC_KEY => {
            let curve = info.algorithm.parameters_oid().map_err(|e| bad(&e))?;
            let ec = sec1::EcPrivateKey::try_from(info.private_key.as_bytes()).map_err(|e| bad(&e))?;
            let spki = SubjectPublicKeyInfoRef::try_from(spki).map_err(|e| bad(&e))?;
            let public_key = match ec.public_key {
                Some(pk) => pk,
                None => spki
                    .subject_public_key
                    .as_bytes()
                    .ok_or_else(|| bad(&"public key"))?,
            };
            let out = sec1::EcPrivateKey {
                private_key: ec.private_key,
                parameters: Some(sec1::EcParameters::NamedCurve(curve)),
                public_key: Some(public_key),
            };
            let der = out.to_der().map_err(|e| bad(&e))?;
            Ok((Plain::Sec1, Zeroizing::new(der)))
        }
        oid if oid == ED25519 => Err(Error::Usage(
            "Ed25519 keys have no traditional (PKCS#1/SEC1) form, so neither that nor legacy PEM can hold them; write PKCS#8 instead".into(),
        )),
        other => Err(Error::Usage(format!(
            "keys of type {other} have no traditional encoding"
        ))),
    }
}
