//! Certificate signing requests made by other tools (`openssl req`, `keytool -certreq`,
//! IBM's gskcapicmd): parsed with x509-parser rather than rcgen, because rcgen refuses
//! CSRs that carry extensions it does not know and keytool always adds one.

use std::net::IpAddr;
use std::path::Path;

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use crate::x509::{describe_spki, KeyDesc};
use crate::{Error, Result};

/// What a CSR asks for, after its signature has been checked.
#[derive(Debug, Clone)]
pub struct CsrInfo {
    pub subject: String,
    pub common_name: Option<String>,
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
    /// Other subjectAltName forms (email, URI, ...) that certmesh does not copy.
    pub other_names: Vec<String>,
    /// The requester asked for basicConstraints CA:TRUE.
    pub requests_ca: bool,
    pub key: KeyDesc,
    /// DER SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
    pub signature_algorithm: crate::x509::SignatureAlgorithm,
}

/// Decodes PEM (`CERTIFICATE REQUEST` or keytool's `NEW CERTIFICATE REQUEST`) or DER.
pub fn csr_der(path: &Path, data: &[u8]) -> Result<Vec<u8>> {
    if crate::x509::looks_like_pem(data) {
        let blocks = ::pem::parse_many(data)
            .map_err(|e| Error::bad_file(path, format!("damaged PEM: {e}")))?;
        blocks
            .into_iter()
            .find(|b| b.tag().ends_with("CERTIFICATE REQUEST"))
            .map(|b| b.into_contents())
            .ok_or_else(|| {
                Error::bad_file(
                    path,
                    "not a certificate signing request (no CERTIFICATE REQUEST block)",
                )
            })
    } else {
        Ok(data.to_vec())
    }
}

/// Decodes a DER CSR, naming the file in the error.
pub fn decode<'a>(path: &Path, der: &'a [u8]) -> Result<X509CertificationRequest<'a>> {
    X509CertificationRequest::from_der(der)
        .map(|(_, csr)| csr)
        .map_err(|e| {
            Error::bad_file(
                path,
                format!(
                    "not a valid certificate signing request ({})",
                    crate::x509::short_err(&e)
                ),
            )
        })
}

/// Parses a CSR and verifies its self-signature, which proves the requester holds the key.
pub fn parse(path: &Path, data: &[u8]) -> Result<CsrInfo> {
    let der = csr_der(path, data)?;
    let csr = decode(path, &der)?;
    let info = &csr.certification_request_info;
    crate::x509::verify_signature(
        &info.subject_pki,
        &csr.signature_algorithm,
        &csr.signature_value.data,
        info.raw,
    )
    .map_err(|why| {
        if why.contains("not supported") {
            Error::bad_file(path, format!("cannot check the CSR's signature: {why}"))
        } else {
            Error::bad_file(
                path,
                "the CSR's signature does not verify (damaged or forged request)",
            )
        }
    })?;
    let mut out = CsrInfo {
        subject: info.subject.to_string(),
        common_name: info
            .subject
            .iter_common_name()
            .next()
            .and_then(|c| c.as_str().ok())
            .map(str::to_string),
        dns: Vec::new(),
        ips: Vec::new(),
        other_names: Vec::new(),
        requests_ca: false,
        key: describe_spki(&info.subject_pki),
        spki: info.subject_pki.raw.to_vec(),
        signature_algorithm: crate::x509::SignatureAlgorithm::from_oid(
            &csr.signature_algorithm.algorithm,
        ),
    };
    if let Some(exts) = csr.requested_extensions() {
        for ext in exts {
            match ext {
                ParsedExtension::SubjectAlternativeName(san) => {
                    for gn in &san.general_names {
                        match gn {
                            GeneralName::DNSName(d) => out.dns.push(d.to_string()),
                            GeneralName::IPAddress(o) => match o.len() {
                                4 => out.ips.push(IpAddr::from(
                                    <[u8; 4]>::try_from(*o).expect("length checked"),
                                )),
                                16 => out.ips.push(IpAddr::from(
                                    <[u8; 16]>::try_from(*o).expect("length checked"),
                                )),
                                _ => out.other_names.push("malformed IP address".into()),
                            },
                            GeneralName::RFC822Name(e) => {
                                out.other_names.push(format!("email:{e}"))
                            }
                            GeneralName::URI(u) => out.other_names.push(format!("URI:{u}")),
                            _ => out.other_names.push("(a non-DNS, non-IP name)".into()),
                        }
                    }
                }
                ParsedExtension::BasicConstraints(bc) => out.requests_ca |= bc.ca,
                _ => {}
            }
        }
    }
    Ok(out)
}
