//! Describing files: certificates, chains and CSRs, as structured values that the CLI
//! prints as text or as stable JSON (documented in docs/json.md).

pub mod audit;
pub mod lint;

use std::path::Path;

use serde::Serialize;
use x509_parser::prelude::*;

pub use crate::cert::describe::{
    describe_cert, describe_cert_der, describe_csr_der, CertReport, CsrReport, Fingerprints, Sans,
};
use crate::x509::{colon_hex, describe_spki, sha256, KeyDesc};
use crate::{Error, Result};

/// Everything found in one file.
#[derive(Debug, Serialize)]
pub struct FileReport {
    pub file: String,
    /// `PEM` or `DER`.
    pub encoding: String,
    pub objects: Vec<Object>,
}

/// One object found in a file.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Object {
    Certificate(Box<CertReport>),
    Csr(Box<CsrReport>),
    /// A private key, described without its passphrase unless one is given.
    Key(Box<crate::key::KeyFileInfo>),
    /// A public key (`PUBLIC KEY`, `RSA PUBLIC KEY`, or a DER SubjectPublicKeyInfo).
    #[serde(rename = "public_key")]
    PublicKey(Box<PublicKeyReport>),
}

/// A public key, described.
#[derive(Debug, Serialize)]
pub struct PublicKeyReport {
    /// `SubjectPublicKeyInfo` (PEM `PUBLIC KEY`) or `PKCS#1` (PEM `RSA PUBLIC KEY`).
    pub format: String,
    pub key: KeyDesc,
    /// SHA-256 of the DER SubjectPublicKeyInfo, colon-separated hex: the same value
    /// `inspect` shows for the private key, its certificates and CSRs.
    pub public_key_sha256: String,
}

/// Describes a DER SubjectPublicKeyInfo (`pkcs1` false) or PKCS#1 RSAPublicKey.
pub fn describe_public_key(path: &Path, der: &[u8], pkcs1: bool) -> Result<PublicKeyReport> {
    use pkcs8::der::{asn1::BitStringRef, Encode};
    let spki = if pkcs1 {
        pkcs1::RsaPublicKeyRef::try_from(der).map_err(|_| {
            Error::bad_file(path, "damaged RSA public key (not a PKCS#1 RSAPublicKey)")
        })?;
        let null = pkcs8::der::asn1::AnyRef::NULL;
        pkcs8::spki::SubjectPublicKeyInfoRef {
            algorithm: pkcs8::spki::AlgorithmIdentifierRef {
                oid: pkcs8::der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1"),
                parameters: Some(null),
            },
            subject_public_key: BitStringRef::from_bytes(der)
                .map_err(|_| Error::bad_file(path, "damaged RSA public key"))?,
        }
        .to_der()
        .map_err(|_| Error::bad_file(path, "damaged RSA public key"))?
    } else {
        der.to_vec()
    };
    let (rest, parsed) = SubjectPublicKeyInfo::from_der(&spki).map_err(|e| {
        Error::bad_file(
            path,
            format!("damaged public key ({})", crate::x509::short_err(&e)),
        )
    })?;
    if !rest.is_empty() {
        return Err(Error::bad_file(path, "trailing bytes after the public key"));
    }
    Ok(PublicKeyReport {
        format: if pkcs1 {
            "PKCS#1"
        } else {
            "SubjectPublicKeyInfo"
        }
        .into(),
        key: describe_spki(&parsed),
        public_key_sha256: colon_hex(&sha256(&spki)),
    })
}

/// Describes every certificate and CSR in a file (PEM with any number of blocks, or one
/// DER object).
pub fn inspect_file(path: &Path, pass: Option<crate::key::PassPrompt<'_>>) -> Result<FileReport> {
    let data = zeroize::Zeroizing::new(crate::fsio::read(path)?);
    inspect_bytes(path, &data, pass)
}

/// As [`inspect_file`], from bytes already read.
pub fn inspect_bytes(
    path: &Path,
    data: &[u8],
    pass: Option<crate::key::PassPrompt<'_>>,
) -> Result<FileReport> {
    let mut objects = Vec::new();
    let pem = crate::x509::looks_like_pem(data);
    if pem {
        let blocks = ::pem::parse_many(data)
            .map_err(|e| Error::bad_file(path, format!("damaged PEM: {e}")))?;
        if blocks.is_empty() {
            return Err(Error::bad_file(path, "no PEM blocks found"));
        }
        for b in &blocks {
            match b.tag() {
                "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => objects.push(
                    Object::Certificate(Box::new(describe_cert_der(path, b.contents())?)),
                ),
                t if t.ends_with("CERTIFICATE REQUEST") => {
                    objects.push(Object::Csr(Box::new(describe_csr_der(path, b.contents())?)))
                }
                "PUBLIC KEY" => objects.push(Object::PublicKey(Box::new(describe_public_key(
                    path,
                    b.contents(),
                    false,
                )?))),
                "RSA PUBLIC KEY" => objects.push(Object::PublicKey(Box::new(describe_public_key(
                    path,
                    b.contents(),
                    true,
                )?))),
                t if t.contains("PRIVATE KEY") => {
                    // A key file is described as a whole (its headers carry the encryption).
                    let info = crate::key::describe_key_file(path, data, pass)?;
                    return Ok(FileReport {
                        file: path.display().to_string(),
                        encoding: "PEM".into(),
                        objects: vec![Object::Key(Box::new(info))],
                    });
                }
                other => {
                    return Err(Error::bad_file(
                        path,
                        format!("unsupported PEM block '{other}'"),
                    ))
                }
            }
        }
    } else if let Ok(c) = describe_cert_der(path, data) {
        objects.push(Object::Certificate(Box::new(c)));
    } else if let Ok(c) = describe_csr_der(path, data) {
        objects.push(Object::Csr(Box::new(c)));
    } else if let Ok(k) = describe_public_key(path, data, false) {
        objects.push(Object::PublicKey(Box::new(k)));
    } else if crate::key::looks_like_key(data) {
        // A key: its own problem (a wrong passphrase, an unsupported scheme) is the
        // error, not "not a certificate".
        let k = crate::key::describe_key_file(path, data, pass)?;
        objects.push(Object::Key(Box::new(k)));
    } else {
        return Err(Error::bad_file(
            path,
            "not a certificate, CSR or private key in PEM or DER form",
        ));
    }
    Ok(FileReport {
        file: path.display().to_string(),
        encoding: if pem { "PEM" } else { "DER" }.into(),
        objects,
    })
}
