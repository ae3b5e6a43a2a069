//! Small shared helpers over x509-parser: loading certificates from PEM or DER,
//! describing public keys, fingerprints, and PEM output.

use std::path::Path;

use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

use crate::{Error, Result};

/// The algorithm of a public key, by the names operators and `openssl` use.
///
/// `Display` and the JSON form are the names certmesh has always printed (`RSA`, `EC`,
/// `Ed25519`, or the algorithm's dotted OID for anything else), so scripts reading
/// `inspect --json` see the same strings; code compares variants, not spellings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// rsaEncryption (1.2.840.113549.1.1.1).
    Rsa,
    /// id-ecPublicKey (1.2.840.10045.2.1), whatever the curve.
    Ec,
    /// Ed25519 (1.3.101.112).
    Ed25519,
    /// Any other algorithm (DSA, Ed448, RSASSA-PSS, ...), as its dotted OID: certmesh
    /// neither generates nor signs with these, it only reports them.
    Other(String),
}

impl KeyType {
    /// The printed name: `RSA`, `EC`, `Ed25519`, or the OID.
    pub fn name(&self) -> &str {
        match self {
            KeyType::Rsa => "RSA",
            KeyType::Ec => "EC",
            KeyType::Ed25519 => "Ed25519",
            KeyType::Other(oid) => oid,
        }
    }

    /// The type a printed name stands for (the inverse of [`KeyType::name`]).
    pub fn from_name(name: &str) -> Self {
        match name {
            "RSA" => KeyType::Rsa,
            "EC" => KeyType::Ec,
            "Ed25519" => KeyType::Ed25519,
            other => KeyType::Other(other.to_string()),
        }
    }
}

/// Display, Serialize and Deserialize by the printed name (`name` and `from_name`): the
/// typed value reads and writes exactly as the string it replaced did.
macro_rules! by_name {
    ($t:ident) => {
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Ok($t::from_name(&name))
            }
        }
    };
}

by_name!(KeyType);

/// The named curve of an EC key.
///
/// Printed as `openssl` and the NIST documents name the curves (`P-256`); any other
/// curve as its dotted OID, and a key whose parameters are not a named curve as the
/// empty string, as certmesh has always reported them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Curve {
    /// secp256r1 / prime256v1 (1.2.840.10045.3.1.7).
    P256,
    /// secp384r1 (1.3.132.0.34).
    P384,
    /// secp521r1 (1.3.132.0.35).
    P521,
    /// Any other curve's OID (P-192, brainpool, ...), or empty for explicit parameters.
    Other(String),
}

impl Curve {
    /// The printed name: `P-256`, `P-384`, `P-521`, or the OID.
    pub fn name(&self) -> &str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
            Curve::Other(oid) => oid,
        }
    }

    /// The curve a printed name stands for (the inverse of [`Curve::name`]).
    pub fn from_name(name: &str) -> Self {
        match name {
            "P-256" => Curve::P256,
            "P-384" => Curve::P384,
            "P-521" => Curve::P521,
            other => Curve::Other(other.to_string()),
        }
    }

    /// The curve named by `oid` (dotted), and its field size in bits (0 when unknown).
    fn from_oid(oid: &str) -> (Self, u32) {
        match oid {
            "1.2.840.10045.3.1.7" => (Curve::P256, 256),
            "1.3.132.0.34" => (Curve::P384, 384),
            "1.3.132.0.35" => (Curve::P521, 521),
            other => (Curve::Other(other.to_string()), 0),
        }
    }
}

by_name!(Curve);

/// The shape of a public key, as operators talk about it: "RSA 3072", "EC P-256".
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyDesc {
    /// The key's algorithm.
    #[serde(rename = "type")]
    pub kind: KeyType,
    /// Modulus size for RSA, field size for EC, 256 for Ed25519.
    pub bits: u32,
    /// Named curve for EC keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curve: Option<Curve>,
}

/// The smallest RSA modulus certmesh signs with, signs for, or accepts in a path: below
/// it a key can be factored.
pub const MIN_RSA_BITS: u32 = 2048;

impl KeyDesc {
    /// An RSA key below [`MIN_RSA_BITS`].
    pub fn is_weak_rsa(&self) -> bool {
        self.kind == KeyType::Rsa && self.bits < MIN_RSA_BITS
    }
}

impl std::fmt::Display for KeyDesc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.curve {
            Some(c) => write!(f, "{} {}", self.kind, c),
            None if self.kind == KeyType::Ed25519 => f.write_str("Ed25519"),
            None => write!(f, "{} {}", self.kind, self.bits),
        }
    }
}

/// The bit length of a big-endian unsigned integer: an RSA key's size is its modulus's,
/// so a 1025-bit modulus is a 1025-bit key (what openssl prints), not a rounded figure.
pub fn bit_length(be: &[u8]) -> u32 {
    let first = be.iter().position(|b| *b != 0);
    match first {
        Some(i) => ((be.len() - i) * 8) as u32 - be[i].leading_zeros(),
        None => 0,
    }
}

/// Describes a SubjectPublicKeyInfo.
pub fn describe_spki(spki: &SubjectPublicKeyInfo<'_>) -> KeyDesc {
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => KeyDesc {
            kind: KeyType::Rsa,
            bits: bit_length(rsa.modulus),
            curve: None,
        },
        Ok(PublicKey::EC(_)) => {
            let curve_oid = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            let (curve, bits) = Curve::from_oid(&curve_oid);
            KeyDesc {
                kind: KeyType::Ec,
                bits,
                curve: Some(curve),
            }
        }
        _ => match spki.algorithm.algorithm.to_id_string() {
            alg if alg == "1.3.101.112" => KeyDesc {
                kind: KeyType::Ed25519,
                bits: 256,
                curve: None,
            },
            alg => KeyDesc {
                kind: KeyType::Other(alg),
                bits: 0,
                curve: None,
            },
        },
    }
}

/// Describes a DER SubjectPublicKeyInfo.
pub fn describe_spki_der(der: &[u8]) -> Result<KeyDesc> {
    let (_, spki) = SubjectPublicKeyInfo::from_der(der)
        .map_err(|e| Error::Crypto(format!("cannot parse public key: {e}")))?;
    Ok(describe_spki(&spki))
}

/// Colon-separated upper-case hex, as `openssl x509 -fingerprint` and keytool print.
pub fn colon_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push_str(&format!("{b:02X}"));
    }
    s
}

/// SHA-256 digest.
pub fn sha256(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

/// SHA-1 digest, for fingerprints only (keytool and older tools still show them).
pub fn sha1(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, data)
        .as_ref()
        .to_vec()
}

/// PEM-encodes DER with LF line endings and 64-column lines.
pub fn to_pem(tag: &str, der: &[u8]) -> String {
    let p = ::pem::Pem::new(tag, der.to_vec());
    ::pem::encode_config(
        &p,
        ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF),
    )
}

/// True when the bytes look like PEM text rather than DER.
pub fn looks_like_pem(data: &[u8]) -> bool {
    let head = &data[..data.len().min(4096)];
    head.windows(11).any(|w| w == b"-----BEGIN ")
}

/// Reads every certificate in a PEM file (any number of blocks) or a single DER
/// certificate, returning their DER encodings in file order.
pub fn read_certs(path: &Path) -> Result<Vec<Vec<u8>>> {
    let data = crate::fsio::read(path)?;
    parse_certs(path, &data)
}

/// As [`read_certs`], from bytes already read.
pub fn parse_certs(path: &Path, data: &[u8]) -> Result<Vec<Vec<u8>>> {
    parse_certs_with(path, data, |_, _| ()).map(|(ders, ())| ders)
}

/// As [`read_certs`], handing the first certificate (DER and parsed) to `first`: a caller
/// that examines it does not parse it a second time.
pub fn read_certs_with<T>(
    path: &Path,
    first: impl FnOnce(&[u8], &X509Certificate<'_>) -> T,
) -> Result<(Vec<Vec<u8>>, T)> {
    let data = crate::fsio::read(path)?;
    parse_certs_with(path, &data, first)
}

fn parse_certs_with<T>(
    path: &Path,
    data: &[u8],
    first: impl FnOnce(&[u8], &X509Certificate<'_>) -> T,
) -> Result<(Vec<Vec<u8>>, T)> {
    let ders: Vec<Vec<u8>> = if looks_like_pem(data) {
        match plain_pem_certs(data) {
            Some(ders) => ders,
            None => pem_certs(data).map_err(|e| Error::bad_file(path, e))?,
        }
    } else {
        vec![data.to_vec()]
    };
    if ders.is_empty() {
        return Err(Error::bad_file(path, "contains no certificate"));
    }
    let mut first = Some(first);
    let mut examined = None;
    for der in &ders {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| {
            Error::bad_file(
                path,
                format!("not a valid X.509 certificate ({})", short_err(&e)),
            )
        })?;
        if let Some(f) = first.take() {
            examined = Some(f(der, &cert));
        }
    }
    let examined = examined.expect("at least one certificate was parsed");
    Ok((ders, examined))
}

/// The certificate blocks of PEM text, by the general PEM parser.
fn pem_certs(data: &[u8]) -> std::result::Result<Vec<Vec<u8>>, String> {
    let blocks = ::pem::parse_many(data).map_err(|e| format!("damaged PEM: {e}"))?;
    Ok(blocks
        .into_iter()
        .filter(|b| {
            matches!(
                b.tag(),
                "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE"
            )
        })
        .map(|b| b.into_contents())
        .collect())
}

/// The certificates of PEM text as certmesh and OpenSSL write it: nothing but
/// `CERTIFICATE` blocks of padded base64 lines, LF line ends, nothing between the blocks.
/// `None` for anything else, which [`pem_certs`] reads: for such text both give the same
/// certificates, and this one reads the certificate of every member of a large cluster
/// several times faster.
fn plain_pem_certs(data: &[u8]) -> Option<Vec<Vec<u8>>> {
    use base64ct::{Base64, Encoding};
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----\n";
    const END: &[u8] = b"-----END CERTIFICATE-----\n";
    let mut rest = data;
    let mut ders = Vec::new();
    let mut b64 = Vec::with_capacity(data.len());
    while !rest.is_empty() {
        rest = rest.strip_prefix(BEGIN)?;
        b64.clear();
        while !rest.starts_with(END) {
            let end = rest.iter().position(|&b| b == b'\n')?;
            let line = &rest[..end];
            let base64 = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=');
            if line.is_empty() || !line.iter().all(base64) {
                return None;
            }
            b64.extend_from_slice(line);
            rest = &rest[end + 1..];
        }
        rest = &rest[END.len()..];
        let mut der = vec![0u8; b64.len() / 4 * 3];
        let len = Base64::decode(&b64, &mut der).ok()?.len();
        der.truncate(len);
        ders.push(der);
    }
    (!ders.is_empty()).then_some(ders)
}

/// A certificate or a CRL, DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Document {
    Certificate(Vec<u8>),
    Crl(Vec<u8>),
}

/// Reads every certificate and CRL of a PEM file (any number of blocks, in file order)
/// or one DER certificate or CRL; other PEM blocks are skipped.
pub fn read_certs_and_crls(path: &Path) -> Result<Vec<Document>> {
    let data = crate::fsio::read(path)?;
    let docs: Vec<Document> = if looks_like_pem(&data) {
        ::pem::parse_many(&data)
            .map_err(|e| Error::bad_file(path, format!("damaged PEM: {e}")))?
            .into_iter()
            .filter_map(|b| match b.tag() {
                "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => {
                    Some(Document::Certificate(b.into_contents()))
                }
                "X509 CRL" => Some(Document::Crl(b.into_contents())),
                _ => None,
            })
            .collect()
    } else if X509Certificate::from_der(&data).is_ok() {
        vec![Document::Certificate(data)]
    } else if x509_parser::revocation_list::CertificateRevocationList::from_der(&data).is_ok() {
        vec![Document::Crl(data)]
    } else {
        return Err(Error::bad_file(
            path,
            "neither a PEM file nor a DER X.509 certificate or CRL",
        ));
    };
    if docs.is_empty() {
        return Err(Error::bad_file(path, "contains no certificate or CRL"));
    }
    Ok(docs)
}

/// Turns a nom/asn1 error into a short phrase, without Rust debug formatting.
pub fn short_err<E: std::fmt::Display>(e: &E) -> String {
    let s = e.to_string();
    let s = s.trim();
    if s.is_empty() {
        "unparseable DER".into()
    } else {
        s.chars().take(120).collect()
    }
}

/// The subject's first common name (CN), for naming a certificate (an alias, a report);
/// None when the subject has no CN or it is not a string.
pub fn common_name(cert: &X509Certificate<'_>) -> Option<String> {
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string)
}

/// RFC 3339 rendering of an ASN.1 time.
pub fn rfc3339(t: &ASN1Time) -> String {
    t.to_datetime()
        .format(&::time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// RFC 3339 rendering of a time.
pub fn rfc3339_time(t: ::time::OffsetDateTime) -> String {
    t.format(&::time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// Verifies a signature made by the key in `spki` over `data`.
///
/// Unlike the certificate-path verifiers, this accepts RSA keys from 1024 bits and SHA-1
/// digests: it answers "was this signed by that key", and the caller decides separately
/// whether the key or digest is acceptable, so the refusal can name the real reason.
pub fn verify_signature(
    spki: &SubjectPublicKeyInfo<'_>,
    algorithm: &x509_parser::x509::AlgorithmIdentifier<'_>,
    signature: &[u8],
    data: &[u8],
) -> std::result::Result<(), String> {
    use aws_lc_rs::signature as sig;
    let oid = algorithm.algorithm.to_id_string();
    let curve = describe_spki(spki).curve;
    let alg: &'static dyn sig::VerificationAlgorithm = match (oid.as_str(), curve) {
        ("1.2.840.113549.1.1.5", _) => &sig::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
        ("1.2.840.113549.1.1.11", _) => &sig::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        ("1.2.840.113549.1.1.12", _) => &sig::RSA_PKCS1_2048_8192_SHA384,
        ("1.2.840.113549.1.1.13", _) => &sig::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
        ("1.2.840.10045.4.1", Some(Curve::P256)) => &sig::ECDSA_P256_SHA1_ASN1,
        ("1.2.840.10045.4.3.2", Some(Curve::P256)) => &sig::ECDSA_P256_SHA256_ASN1,
        ("1.2.840.10045.4.3.3", Some(Curve::P256)) => &sig::ECDSA_P256_SHA384_ASN1,
        ("1.2.840.10045.4.3.4", Some(Curve::P256)) => &sig::ECDSA_P256_SHA512_ASN1,
        ("1.2.840.10045.4.3.2", Some(Curve::P384)) => &sig::ECDSA_P384_SHA256_ASN1,
        ("1.2.840.10045.4.3.3", Some(Curve::P384)) => &sig::ECDSA_P384_SHA384_ASN1,
        ("1.2.840.10045.4.3.4", Some(Curve::P384)) => &sig::ECDSA_P384_SHA512_ASN1,
        ("1.2.840.10045.4.3.2", Some(Curve::P521)) => &sig::ECDSA_P521_SHA256_ASN1,
        ("1.2.840.10045.4.3.3", Some(Curve::P521)) => &sig::ECDSA_P521_SHA384_ASN1,
        ("1.2.840.10045.4.3.4", Some(Curve::P521)) => &sig::ECDSA_P521_SHA512_ASN1,
        ("1.3.101.112", _) => &sig::ED25519,
        _ => {
            return Err(format!(
                "signature algorithm {} with a {} key is not supported",
                SignatureAlgorithm::from_oid(&algorithm.algorithm),
                describe_spki(spki)
            ))
        }
    };
    sig::UnparsedPublicKey::new(alg, &spki.subject_public_key.data)
        .verify(data, signature)
        .map_err(|_| "the signature does not verify".to_string())
}

/// Whether `cert` is self-signed: its issuer is its subject and its own key verifies its
/// signature. Names alone are not enough: a CA can issue a certificate whose issuer and
/// subject names are equal (a re-keyed CA of the same name), which is not a root.
pub fn is_self_signed(cert: &X509Certificate<'_>) -> bool {
    cert.subject() == cert.issuer()
        && verify_signature(
            cert.public_key(),
            &cert.signature_algorithm,
            &cert.signature_value.data,
            cert.tbs_certificate.as_ref(),
        )
        .is_ok()
}

/// As [`is_self_signed`], for a DER certificate; false when it does not parse.
pub fn is_self_signed_der(der: &[u8]) -> bool {
    X509Certificate::from_der(der).is_ok_and(|(_, c)| is_self_signed(&c))
}

/// A serial number as lower-case hex of its magnitude (no sign octet, no leading zeros),
/// the form `inspect`, `list` and the inventory all use.
pub fn serial_hex(raw: &[u8]) -> String {
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    if start == raw.len() {
        return "0".into();
    }
    hex::encode(&raw[start..])
}

/// A signature algorithm, from its OID: what reports name and what the weak-digest rules
/// decide on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    Sha256WithRsa,
    Sha384WithRsa,
    Sha512WithRsa,
    Sha1WithRsa,
    Md5WithRsa,
    RsaPss,
    EcdsaWithSha256,
    EcdsaWithSha384,
    EcdsaWithSha512,
    EcdsaWithSha1,
    Ed25519,
    /// Any other algorithm, by its dotted OID.
    Other(String),
}

impl SignatureAlgorithm {
    /// The algorithm an OID names.
    pub fn from_oid(oid: &x509_parser::der_parser::oid::Oid<'_>) -> Self {
        use SignatureAlgorithm::*;
        match oid.to_id_string().as_str() {
            "1.2.840.113549.1.1.11" => Sha256WithRsa,
            "1.2.840.113549.1.1.12" => Sha384WithRsa,
            "1.2.840.113549.1.1.13" => Sha512WithRsa,
            "1.2.840.113549.1.1.5" => Sha1WithRsa,
            "1.2.840.113549.1.1.4" => Md5WithRsa,
            "1.2.840.113549.1.1.10" => RsaPss,
            "1.2.840.10045.4.3.2" => EcdsaWithSha256,
            "1.2.840.10045.4.3.3" => EcdsaWithSha384,
            "1.2.840.10045.4.3.4" => EcdsaWithSha512,
            "1.2.840.10045.4.1" => EcdsaWithSha1,
            "1.3.101.112" => Ed25519,
            other => Other(other.to_string()),
        }
    }

    /// The conventional name, as openssl prints it; the dotted OID for others.
    pub fn name(&self) -> &str {
        use SignatureAlgorithm::*;
        match self {
            Sha256WithRsa => "sha256WithRSAEncryption",
            Sha384WithRsa => "sha384WithRSAEncryption",
            Sha512WithRsa => "sha512WithRSAEncryption",
            Sha1WithRsa => "sha1WithRSAEncryption",
            Md5WithRsa => "md5WithRSAEncryption",
            RsaPss => "rsassaPss",
            EcdsaWithSha256 => "ecdsa-with-SHA256",
            EcdsaWithSha384 => "ecdsa-with-SHA384",
            EcdsaWithSha512 => "ecdsa-with-SHA512",
            EcdsaWithSha1 => "ecdsa-with-SHA1",
            Ed25519 => "ED25519",
            Other(oid) => oid,
        }
    }

    /// True when the digest is broken (SHA-1, MD5): refused for new signatures, flagged in
    /// what others made.
    pub fn is_weak(&self) -> bool {
        use SignatureAlgorithm::*;
        matches!(self, Sha1WithRsa | Md5WithRsa | EcdsaWithSha1)
    }
}

impl std::fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// Serialized as its name, the string `inspect --json` has always shown.
impl serde::Serialize for SignatureAlgorithm {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_types_and_curves_print_and_serialize_as_before() {
        let types = [
            (KeyType::Rsa, "RSA"),
            (KeyType::Ec, "EC"),
            (KeyType::Ed25519, "Ed25519"),
            (KeyType::Other("1.3.101.113".into()), "1.3.101.113"),
        ];
        for (t, name) in types {
            assert_eq!(t.to_string(), name);
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<KeyType>(&json).unwrap(), t);
        }
        let curves = [
            (Curve::P256, "P-256"),
            (Curve::P384, "P-384"),
            (Curve::P521, "P-521"),
            (
                Curve::Other("1.2.840.10045.3.1.1".into()),
                "1.2.840.10045.3.1.1",
            ),
            (Curve::Other(String::new()), ""),
        ];
        for (c, name) in curves {
            assert_eq!(c.to_string(), name);
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<Curve>(&json).unwrap(), c);
        }
        // The JSON object `inspect --json` prints for a key, field by field.
        let desc = KeyDesc {
            kind: KeyType::Ec,
            bits: 384,
            curve: Some(Curve::P384),
        };
        assert_eq!(
            serde_json::to_value(&desc).unwrap(),
            serde_json::json!({"type": "EC", "bits": 384, "curve": "P-384"})
        );
        let rsa = KeyDesc {
            kind: KeyType::Rsa,
            bits: 3072,
            curve: None,
        };
        assert_eq!(
            serde_json::to_value(&rsa).unwrap(),
            serde_json::json!({"type": "RSA", "bits": 3072})
        );
    }

    #[test]
    fn real_public_keys_are_described_by_type_and_curve() {
        use crate::key::{KeyAlg, PrivateKey};
        let spki_of = |alg| PrivateKey::generate(alg).unwrap().public_key_der().to_vec();
        // certmesh does not generate P-521 keys, but reads and signs with them.
        let p521 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
            &aws_lc_rs::signature::ECDSA_P521_SHA512_ASN1_SIGNING,
            &aws_lc_rs::rand::SystemRandom::new(),
        )
        .unwrap();
        let p521 = PrivateKey::from_pkcs8_der(p521.as_ref()).unwrap();
        let cases = [
            (
                spki_of(KeyAlg::Rsa2048),
                KeyType::Rsa,
                2048,
                None,
                "RSA 2048",
            ),
            (
                spki_of(KeyAlg::P256),
                KeyType::Ec,
                256,
                Some(Curve::P256),
                "EC P-256",
            ),
            (
                spki_of(KeyAlg::P384),
                KeyType::Ec,
                384,
                Some(Curve::P384),
                "EC P-384",
            ),
            (
                p521.public_key_der().to_vec(),
                KeyType::Ec,
                521,
                Some(Curve::P521),
                "EC P-521",
            ),
            (
                spki_of(KeyAlg::Ed25519),
                KeyType::Ed25519,
                256,
                None,
                "Ed25519",
            ),
        ];
        for (der, kind, bits, curve, shown) in cases {
            let d = describe_spki_der(&der).unwrap();
            assert_eq!(
                (&d.kind, d.bits, &d.curve),
                (&kind, bits, &curve),
                "{shown}"
            );
            assert_eq!(d.to_string(), shown);
        }

        // X25519 (1.3.101.110): an algorithm certmesh does not name is its OID.
        let mut x25519 = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0,
        ];
        x25519.extend([7u8; 32]);
        let d = describe_spki_der(&x25519).unwrap();
        assert_eq!(d.kind, KeyType::Other("1.3.101.110".into()));
        assert_eq!((d.bits, d.curve.as_ref()), (0, None));
        assert_eq!(d.to_string(), "1.3.101.110 0");

        // An EC key on a curve without a NIST name (secp256k1) keeps the curve's OID.
        let mut k1 = vec![
            0x30, 0x56, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a, 0x03, 0x42, 0x00, 0x04,
        ];
        k1.extend([1u8; 64]);
        let d = describe_spki_der(&k1).unwrap();
        assert_eq!(
            (d.kind.clone(), d.bits, d.curve.clone()),
            (KeyType::Ec, 0, Some(Curve::Other("1.3.132.0.10".into())))
        );
        assert_eq!(d.to_string(), "EC 1.3.132.0.10");
    }

    #[test]
    fn plain_pem_is_read_as_the_general_parser_reads_it_and_anything_else_is_left_to_it() {
        let a = crate::cert::testing::self_signed("a.example.com")
            .der()
            .to_vec();
        let b = crate::cert::testing::self_signed("b.example.com")
            .der()
            .to_vec();
        let (pa, pb) = (to_pem("CERTIFICATE", &a), to_pem("CERTIFICATE", &b));
        let one_line = |der: &[u8]| {
            use base64ct::{Base64, Encoding};
            format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                Base64::encode_string(der)
            )
        };
        // Read by the plain reader, exactly as the general parser reads them.
        for text in [
            pa.clone(),
            format!("{pa}{pb}"),
            one_line(&a),
            format!("{}{pb}", one_line(&a)),
        ] {
            let plain = plain_pem_certs(text.as_bytes()).expect(&text);
            assert_eq!(plain, pem_certs(text.as_bytes()).unwrap());
        }
        assert_eq!(
            plain_pem_certs(format!("{pa}{pb}").as_bytes()).unwrap(),
            [a.clone(), b.clone()]
        );
        // Left to the general parser: other line ends, labels, text, headers, a missing
        // last line end, an empty or foreign line, unpadded or damaged base64.
        let unpadded =
            "-----BEGIN CERTIFICATE-----\nAQIDBA\n-----END CERTIFICATE-----\n".to_string();
        assert!(pem_certs(unpadded.as_bytes()).is_err(), "and refused there");
        let damaged = pa.replacen("MI", "M*", 1);
        let blank = pa.replacen("\n", "\n\n", 2);
        let others = [
            pa.replace('\n', "\r\n"),
            pa.replace("CERTIFICATE", "TRUSTED CERTIFICATE"),
            format!("subject=CN = a.example.com\n{pa}"),
            format!("{pa}trailing text\n"),
            pa.replacen("-----\n", "-----\nProc-Type: 4,ENCRYPTED\n\n", 1),
            pa.trim_end().to_string(),
            blank,
            unpadded,
            damaged,
            String::new(),
        ];
        for text in others {
            assert_eq!(plain_pem_certs(text.as_bytes()), None, "{text}");
        }
        // Through parse_certs, what the general parser refuses is still refused.
        let path = Path::new("c.pem");
        let damaged = pa.replacen("MI", "M*", 1);
        assert!(parse_certs(path, damaged.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("damaged PEM"));
        assert_eq!(parse_certs(path, pa.as_bytes()).unwrap(), [a]);
    }

    #[test]
    fn read_certs_with_hands_over_the_first_certificate_of_a_valid_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let a = crate::cert::testing::self_signed("a.example.com")
            .der()
            .to_vec();
        let b = crate::cert::testing::self_signed("b.example.com")
            .der()
            .to_vec();
        let path = dir.path().join("two.pem");
        std::fs::write(
            &path,
            format!("{}{}", to_pem("CERTIFICATE", &a), to_pem("CERTIFICATE", &b)),
        )
        .unwrap();
        let (ders, (der, cn)) = read_certs_with(&path, |der, cert| {
            (der.to_vec(), common_name(cert).unwrap_or_default())
        })
        .unwrap();
        assert_eq!(ders, [a.clone(), b]);
        assert_eq!((der, cn.as_str()), (a.clone(), "a.example.com"));
        // A damaged certificate after the first fails the read, as read_certs does.
        let mut damaged = a.clone();
        damaged.truncate(a.len() / 2);
        std::fs::write(
            &path,
            format!(
                "{}{}",
                to_pem("CERTIFICATE", &a),
                to_pem("CERTIFICATE", &damaged)
            ),
        )
        .unwrap();
        let err = read_certs_with(&path, |_, _| ()).unwrap_err().to_string();
        assert_eq!(err, read_certs(&path).unwrap_err().to_string());
        assert!(err.contains("not a valid X.509 certificate"), "{err}");
    }

    #[test]
    fn self_signed_is_decided_by_the_signature_not_the_names() {
        use crate::key::{Digest, KeyAlg, PrivateKey};
        let signer = |k: &PrivateKey| k.signing_key(Digest::Sha256).unwrap();
        let root_key = signer(&PrivateKey::generate(KeyAlg::P256).unwrap());
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Same Name");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let root = params.self_signed(&root_key).unwrap();
        assert!(is_self_signed_der(root.der()));

        // Issued by the root to a subject of the same name, with another key.
        let issuer = rcgen::Issuer::new(params.clone(), &root_key);
        let other_key = signer(&PrivateKey::generate(KeyAlg::P256).unwrap());
        let same_name = params.signed_by(&other_key, &issuer).unwrap();
        let (_, c) = X509Certificate::from_der(same_name.der()).unwrap();
        assert_eq!(c.subject(), c.issuer());
        assert!(!is_self_signed(&c));
        assert!(!is_self_signed_der(b"not a certificate"));
    }

    #[test]
    fn signature_algorithms_by_oid() {
        use std::str::FromStr;
        use x509_parser::der_parser::oid::Oid;
        let alg = |s: &str| SignatureAlgorithm::from_oid(&Oid::from_str(s).unwrap());
        assert_eq!(
            alg("1.2.840.113549.1.1.11").name(),
            "sha256WithRSAEncryption"
        );
        assert!(!alg("1.2.840.113549.1.1.11").is_weak());
        for weak in [
            "1.2.840.113549.1.1.5",
            "1.2.840.113549.1.1.4",
            "1.2.840.10045.4.1",
        ] {
            assert!(alg(weak).is_weak(), "{weak}");
        }
        let other = alg("1.2.3.4");
        assert_eq!(other, SignatureAlgorithm::Other("1.2.3.4".into()));
        assert!(!other.is_weak());
        assert_eq!(
            serde_json::to_string(&alg("1.2.840.10045.4.3.3")).unwrap(),
            "\"ecdsa-with-SHA384\""
        );
    }
}
