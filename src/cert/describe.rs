//! Certificates and CSRs described as values: what `inspect` prints, and the facts the
//! CA store, renewal and cluster status read from an issued certificate (its names, its
//! dates, whether it is self-signed) without going through the report layer.

use std::net::IpAddr;
use std::path::Path;

use serde::Serialize;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::*;

use crate::cert::constraints::NameConstraintsSpec;
use crate::x509::{colon_hex, describe_spki, rfc3339, sha1, sha256, KeyDesc, SignatureAlgorithm};
use crate::{Error, Result};

/// subjectAltName entries by type.
#[derive(Debug, Default, Serialize)]
pub struct Sans {
    pub dns: Vec<String>,
    pub ip: Vec<String>,
    pub email: Vec<String>,
    pub uri: Vec<String>,
    pub other: Vec<String>,
}

/// A certificate, described.
#[derive(Debug, Serialize)]
pub struct CertReport {
    pub subject: String,
    pub issuer: String,
    /// Lower-case hex of the serial number's magnitude.
    pub serial: String,
    pub version: u32,
    pub not_before: String,
    pub not_after: String,
    /// Whole days until not-after (negative once expired).
    pub days_left: i64,
    pub expired: bool,
    pub not_yet_valid: bool,
    pub self_signed: bool,
    pub is_ca: bool,
    pub path_len: Option<u32>,
    pub key: KeyDesc,
    pub signature_algorithm: SignatureAlgorithm,
    pub san: Sans,
    pub key_usage: Vec<String>,
    pub extended_key_usage: Vec<String>,
    pub subject_key_id: Option<String>,
    pub authority_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_constraints: Option<NameConstraintsSpec>,
    pub fingerprints: Fingerprints,
}

/// Certificate fingerprints, colon-separated upper-case hex as openssl and keytool show.
#[derive(Debug, Serialize)]
pub struct Fingerprints {
    pub sha256: String,
    pub sha1: String,
}

/// A certificate signing request, described.
#[derive(Debug, Serialize)]
pub struct CsrReport {
    pub subject: String,
    pub key: KeyDesc,
    pub signature_algorithm: SignatureAlgorithm,
    pub signature_valid: bool,
    pub san: Sans,
    pub requests_ca: bool,
}

/// Describes one DER certificate.
pub fn describe_cert_der(path: &Path, der: &[u8]) -> Result<CertReport> {
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| {
        Error::bad_file(
            path,
            format!(
                "not a valid X.509 certificate ({})",
                crate::x509::short_err(&e)
            ),
        )
    })?;
    if !rest.is_empty() {
        return Err(Error::bad_file(
            path,
            "trailing bytes after the certificate",
        ));
    }
    Ok(describe_cert(&cert, der))
}

/// Describes a parsed certificate; `der` is its encoding, for fingerprints.
pub fn describe_cert(cert: &X509Certificate<'_>, der: &[u8]) -> CertReport {
    let now = ::time::OffsetDateTime::now_utc();
    let nb = cert.validity().not_before.to_datetime();
    let na = cert.validity().not_after.to_datetime();
    let days_left = (na - now).whole_days();
    // The facts a decision reads are read by the same code here, so a report and a
    // decision never disagree about a certificate.
    let facts = leaf_facts(cert);
    let mut r = CertReport {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: crate::x509::serial_hex(cert.raw_serial()),
        version: cert.version().0 + 1,
        not_before: rfc3339(&cert.validity().not_before),
        not_after: rfc3339(&cert.validity().not_after),
        days_left,
        expired: na < now,
        not_yet_valid: nb > now,
        self_signed: crate::x509::is_self_signed(cert),
        is_ca: false,
        path_len: None,
        key: facts.key,
        signature_algorithm: SignatureAlgorithm::from_oid(&cert.signature_algorithm.algorithm),
        san: facts.san,
        key_usage: facts.key_usage,
        extended_key_usage: facts.extended_key_usage,
        subject_key_id: subject_key_id(cert).map(|k| colon_hex(&k)),
        authority_key_id: facts.authority_key_id.map(|k| colon_hex(&k)),
        name_constraints: None,
        fingerprints: Fingerprints {
            sha256: colon_hex(&sha256(der)),
            sha1: colon_hex(&sha1(der)),
        },
    };
    for ext in cert.extensions() {
        if let ParsedExtension::BasicConstraints(bc) = ext.parsed_extension() {
            r.is_ca = bc.ca;
            r.path_len = bc.path_len_constraint;
        }
    }
    let nc = NameConstraintsSpec::from_cert(cert);
    if !nc.is_empty() {
        r.name_constraints = Some(nc);
    }
    r
}

/// The facts of a certificate a renewal decision compares with what is wanted: its names,
/// key and usages, and the key identifier of its issuer. Read without what only a report
/// shows (fingerprints, names as text, dates as text), which on a large cluster costs more
/// than the decision itself; each fact is read as [`describe_cert`] reads it.
#[derive(Debug)]
pub struct LeafFacts {
    pub san: Sans,
    pub key: KeyDesc,
    pub key_usage: Vec<String>,
    pub extended_key_usage: Vec<String>,
    /// The authority key identifier's key id, raw.
    pub authority_key_id: Option<Vec<u8>>,
}

/// [`LeafFacts`] of a parsed certificate.
pub fn leaf_facts(cert: &X509Certificate<'_>) -> LeafFacts {
    let mut f = LeafFacts {
        san: Sans::default(),
        key: describe_spki(cert.public_key()),
        key_usage: Vec::new(),
        extended_key_usage: Vec::new(),
        authority_key_id: None,
    };
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::KeyUsage(ku) => f.key_usage = key_usage_names(ku),
            ParsedExtension::ExtendedKeyUsage(eku) => f.extended_key_usage = eku_names(eku),
            ParsedExtension::SubjectAlternativeName(san) => f.san = sans(&san.general_names),
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                f.authority_key_id = a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => {}
        }
    }
    f
}

/// The subject key identifier of a certificate, raw (the last one, as every fact here is
/// read, when a malformed certificate repeats it).
pub fn subject_key_id(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.extensions()
        .iter()
        .rev()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
}

/// Describes one DER CSR, checking its signature.
pub fn describe_csr_der(path: &Path, der: &[u8]) -> Result<CsrReport> {
    let csr = crate::cert::csr::decode(path, der)?;
    let info = &csr.certification_request_info;
    let mut r = CsrReport {
        subject: info.subject.to_string(),
        key: describe_spki(&info.subject_pki),
        signature_algorithm: SignatureAlgorithm::from_oid(&csr.signature_algorithm.algorithm),
        signature_valid: crate::x509::verify_signature(
            &info.subject_pki,
            &csr.signature_algorithm,
            &csr.signature_value.data,
            info.raw,
        )
        .is_ok(),
        san: Sans::default(),
        requests_ca: false,
    };
    for ext in csr.requested_extensions().into_iter().flatten() {
        match ext {
            ParsedExtension::SubjectAlternativeName(san) => r.san = sans(&san.general_names),
            ParsedExtension::BasicConstraints(bc) => r.requests_ca |= bc.ca,
            _ => {}
        }
    }
    Ok(r)
}

fn sans(names: &[GeneralName<'_>]) -> Sans {
    let mut s = Sans::default();
    for gn in names {
        match gn {
            GeneralName::DNSName(d) => s.dns.push(d.to_string()),
            GeneralName::IPAddress(o) => s.ip.push(match o.len() {
                4 => IpAddr::from(<[u8; 4]>::try_from(*o).expect("length checked")).to_string(),
                16 => IpAddr::from(<[u8; 16]>::try_from(*o).expect("length checked")).to_string(),
                _ => hex::encode(o),
            }),
            GeneralName::RFC822Name(e) => s.email.push(e.to_string()),
            GeneralName::URI(u) => s.uri.push(u.to_string()),
            other => s.other.push(other.to_string()),
        }
    }
    s
}

fn key_usage_names(ku: &x509_parser::extensions::KeyUsage) -> Vec<String> {
    let flags = [
        (ku.digital_signature(), "digitalSignature"),
        (ku.non_repudiation(), "nonRepudiation"),
        (ku.key_encipherment(), "keyEncipherment"),
        (ku.data_encipherment(), "dataEncipherment"),
        (ku.key_agreement(), "keyAgreement"),
        (ku.key_cert_sign(), "keyCertSign"),
        (ku.crl_sign(), "cRLSign"),
        (ku.encipher_only(), "encipherOnly"),
        (ku.decipher_only(), "decipherOnly"),
    ];
    flags
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, n)| n.to_string())
        .collect()
}

fn eku_names(eku: &x509_parser::extensions::ExtendedKeyUsage<'_>) -> Vec<String> {
    let mut v = Vec::new();
    let flags = [
        (eku.any, "anyExtendedKeyUsage"),
        (eku.server_auth, "serverAuth"),
        (eku.client_auth, "clientAuth"),
        (eku.code_signing, "codeSigning"),
        (eku.email_protection, "emailProtection"),
        (eku.time_stamping, "timeStamping"),
        (eku.ocsp_signing, "OCSPSigning"),
    ];
    for (set, name) in flags {
        if set {
            v.push(name.to_string());
        }
    }
    v.extend(eku.other.iter().map(|o| o.to_id_string()));
    v
}
