//! Revocation: reading CRL files, handing them to webpki (which checks each certificate
//! of a path against the CRLs from its issuer: the CRL's signature with the issuer's key,
//! its nextUpdate, its critical extensions), and the parts webpki leaves to its caller:
//! a CRL not yet valid (thisUpdate in the future), and the revocation time and reason
//! for the message.

use std::path::Path;

use x509_parser::prelude::*;
use x509_parser::revocation_list::CertificateRevocationList;

use super::who;
use crate::{Error, Result};

/// Reads CRLs from a file: PEM with any number of `X509 CRL` blocks, or one DER CRL.
/// Each must be one the validator can use (RFC 5280 profile, no unknown critical
/// extension, no delta CRL), or the file is refused with the reason.
pub fn parse_crls(path: &Path, data: &[u8]) -> Result<Vec<Vec<u8>>> {
    let ders: Vec<Vec<u8>> = if crate::x509::looks_like_pem(data) {
        ::pem::parse_many(data)
            .map_err(|e| Error::bad_file(path, format!("damaged PEM: {e}")))?
            .into_iter()
            .filter(|b| b.tag() == "X509 CRL")
            .map(|b| b.into_contents())
            .collect()
    } else {
        vec![data.to_vec()]
    };
    if ders.is_empty() {
        return Err(Error::bad_file(path, "contains no CRL"));
    }
    for der in &ders {
        if let Err(e) = webpki::OwnedCertRevocationList::from_der(der) {
            return Err(Error::bad_file(
                path,
                format!("not a usable CRL ({})", super::reason::describe(&e)),
            ));
        }
    }
    Ok(ders)
}

/// The CRLs in webpki's form; those it cannot parse were refused by [`parse_crls`].
pub(super) fn for_webpki(crls: &[Vec<u8>]) -> Vec<webpki::CertRevocationList<'static>> {
    crls.iter()
        .filter_map(|d| webpki::OwnedCertRevocationList::from_der(d).ok())
        .map(webpki::CertRevocationList::from)
        .collect()
}

fn parsed(crls: &[Vec<u8>]) -> impl Iterator<Item = CertificateRevocationList<'_>> {
    crls.iter()
        .filter_map(|d| CertificateRevocationList::from_der(d).ok().map(|(_, c)| c))
}

/// The CRLs that name `issuer` as their issuer and verify with its key.
fn from_issuer<'a>(
    issuer: &'a X509Certificate<'_>,
    crls: &'a [Vec<u8>],
) -> impl Iterator<Item = CertificateRevocationList<'a>> + 'a {
    parsed(crls).filter(move |c| {
        c.issuer().as_raw() == issuer.subject().as_raw()
            && c.verify_signature(issuer.public_key()).is_ok()
    })
}

/// True when some CRL from `issuer` (signed with its key) is among `crls`.
pub(super) fn has_crl_from(issuer: &X509Certificate<'_>, crls: &[Vec<u8>]) -> bool {
    from_issuer(issuer, crls).next().is_some()
}

/// A CRL from an issuer in the path whose thisUpdate is after `at`: it cannot speak for
/// that time (RFC 5280 6.3.3).
pub(super) fn not_yet_valid(
    path: &[&X509Certificate<'_>],
    crls: &[Vec<u8>],
    at: i64,
) -> Option<String> {
    for issuer in path.iter().skip(1) {
        for c in from_issuer(issuer, crls) {
            if c.last_update().timestamp() > at {
                return Some(format!(
                    "the CRL from {} is not yet valid (this update {})",
                    who(issuer),
                    crate::x509::rfc3339(&c.last_update())
                ));
            }
        }
    }
    None
}

/// When `cert` is listed in a CRL from its issuer (by name; webpki has checked the
/// signature): "revoked at TIME (reason REASON)".
pub(super) fn revoked(cert: &X509Certificate<'_>, crls: &[Vec<u8>]) -> Option<String> {
    for crl in parsed(crls) {
        if crl.issuer().as_raw() != cert.issuer().as_raw() {
            continue;
        }
        for r in crl.iter_revoked_certificates() {
            if strip(r.raw_serial()) != strip(cert.raw_serial()) {
                continue;
            }
            let reason = r
                .reason_code()
                .map(|(_, code)| reason_name(code.0))
                .unwrap_or("unspecified");
            return Some(format!(
                "has been revoked (at {}, reason {reason}) by the CRL of {}",
                crate::x509::rfc3339(&r.revocation_date),
                crl.issuer()
            ));
        }
    }
    None
}

fn strip(serial: &[u8]) -> &[u8] {
    let start = serial.iter().position(|b| *b != 0).unwrap_or(serial.len());
    &serial[start..]
}

/// RFC 5280 5.3.1 CRLReason names.
fn reason_name(code: u8) -> &'static str {
    match code {
        0 => "unspecified",
        1 => "keyCompromise",
        2 => "cACompromise",
        3 => "affiliationChanged",
        4 => "superseded",
        5 => "cessationOfOperation",
        6 => "certificateHold",
        8 => "removeFromCRL",
        9 => "privilegeWithdrawn",
        10 => "aACompromise",
        _ => "unknown",
    }
}

/// The CRL from `issuer`'s name whose nextUpdate is `next_update` (Unix seconds), for
/// naming the issuer of an expired CRL.
pub(super) fn issuer_of_expired(crls: &[Vec<u8>], next_update: u64) -> Option<String> {
    parsed(crls)
        .find(|c| c.next_update().map(|t| t.timestamp()) == Some(next_update as i64))
        .map(|c| c.issuer().to_string())
}

/// Issuers of CRLs naming `issuer`'s subject but not verifying with its key.
pub(super) fn forged_from(issuer: &X509Certificate<'_>, crls: &[Vec<u8>]) -> bool {
    parsed(crls).any(|c| {
        c.issuer().as_raw() == issuer.subject().as_raw()
            && c.verify_signature(issuer.public_key()).is_err()
    })
}
