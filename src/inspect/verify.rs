//! Chain verification as a TLS client does it: build a path from the leaf through the
//! untrusted certificates given to a trust anchor, then check signatures, validity,
//! basicConstraints, pathLen, keyUsage, extended key usage, name constraints and the host
//! name. The first failure is reported as one sentence an operator can act on.
//!
//! Where RFC 5280 leaves room, the checks follow `openssl verify` (OpenSSL 3.0, default
//! flags), because that is what the servers and clients certmesh feeds will do; the tests
//! compare the two verdict by verdict. The one deliberate difference: the host name is
//! matched against subjectAltName only (RFC 6125, as browsers do), never the subject CN,
//! and partial wildcards (`w*.example.com`) never match.

use std::net::IpAddr;

use serde::Serialize;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::*;

use crate::cert::constraints::NameConstraintsSpec;

/// Longest path tried, leaf and anchor included; real chains have three or four.
const MAX_DEPTH: usize = 10;

/// What the peer certificate is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A TLS server certificate (extendedKeyUsage serverAuth, when present).
    Server,
    /// A TLS client certificate (extendedKeyUsage clientAuth, when present).
    Client,
}

/// The name a client connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A DNS name, matched against DNS subjectAltNames.
    Dns(String),
    /// An IP address, matched against IP subjectAltNames.
    Ip(IpAddr),
}

/// What to check besides the path itself.
#[derive(Debug, Clone)]
pub struct Options {
    /// The time validity is judged at, Unix seconds.
    pub at: i64,
    pub host: Option<Host>,
    pub purpose: Option<Purpose>,
}

/// The verdict, as `verify --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub ok: bool,
    /// The first failure, when there is one.
    pub error: Option<String>,
    /// Subjects from the leaf up to the trust anchor (as far as the path was built).
    pub path: Vec<String>,
}

/// Verifies `leaf` against the trust `anchors`, using `untrusted` certificates (in any
/// order) as candidate intermediates. All inputs are DER.
pub fn verify(leaf: &[u8], untrusted: &[Vec<u8>], anchors: &[Vec<u8>], opts: &Options) -> Verdict {
    let untrusted = parse_all(untrusted);
    let anchors = parse_all(anchors);
    let leaf = match X509Certificate::from_der(leaf) {
        Ok((_, c)) => c,
        Err(e) => {
            return Verdict {
                ok: false,
                error: Some(format!(
                    "not a valid X.509 certificate ({})",
                    crate::x509::short_err(&e)
                )),
                path: Vec::new(),
            }
        }
    };
    let mut path: Vec<&X509Certificate<'_>> = vec![&leaf];
    let result = build(&leaf, &untrusted, &anchors, &mut path).and_then(|()| check(&path, opts));
    Verdict {
        ok: result.is_ok(),
        error: result.err(),
        path: path.iter().map(|c| c.subject().to_string()).collect(),
    }
}

fn parse_all(ders: &[Vec<u8>]) -> Vec<X509Certificate<'_>> {
    ders.iter()
        .filter_map(|d| X509Certificate::from_der(d).ok().map(|(_, c)| c))
        .collect()
}

/// Grows `path` (which holds the leaf) up to a trust anchor. A certificate that is itself
/// an anchor (same encoding) ends the path at once.
fn build<'a>(
    leaf: &'a X509Certificate<'a>,
    untrusted: &'a [X509Certificate<'a>],
    anchors: &'a [X509Certificate<'a>],
    path: &mut Vec<&'a X509Certificate<'a>>,
) -> Result<(), String> {
    let mut current = leaf;
    if is_anchor(current, anchors) && self_signed(current) {
        return Ok(());
    }
    loop {
        if path.len() >= MAX_DEPTH {
            return Err("certificate chain too long".into());
        }
        // Anchors first: a root also sent in the chain must still be trusted by the store.
        if let Some(a) = find_issuer(current, anchors.iter(), path)? {
            path.push(a);
            return Ok(());
        }
        match find_issuer(current, untrusted.iter(), path)? {
            Some(next) => {
                path.push(next);
                current = next;
            }
            None if self_signed(current) => {
                return Err(if path.len() == 1 {
                    format!(
                        "self-signed certificate {} is not a trusted CA",
                        current.subject()
                    )
                } else {
                    format!(
                        "self-signed certificate {} in the chain is not a trusted CA",
                        current.subject()
                    )
                })
            }
            None => {
                return Err(format!(
                    "unable to find the issuer of {} ({})",
                    current.subject(),
                    current.issuer()
                ))
            }
        }
    }
}

fn is_anchor(cert: &X509Certificate<'_>, anchors: &[X509Certificate<'_>]) -> bool {
    anchors.iter().any(|a| a.as_raw() == cert.as_raw())
}

/// The candidate whose subject is `cert`'s issuer and whose key verifies its signature;
/// an error when names match but no signature verifies.
fn find_issuer<'a, I>(
    cert: &X509Certificate<'_>,
    candidates: I,
    path: &[&X509Certificate<'_>],
) -> Result<Option<&'a X509Certificate<'a>>, String>
where
    I: Iterator<Item = &'a X509Certificate<'a>>,
{
    let mut named = None;
    for c in candidates {
        if c.subject().as_raw() != cert.issuer().as_raw()
            || path.iter().any(|p| p.as_raw() == c.as_raw())
        {
            continue;
        }
        if signed_by(cert, c) {
            return Ok(Some(c));
        }
        named = Some(c);
    }
    match named {
        Some(c) => Err(format!(
            "the signature of {} does not verify with the key of {}",
            cert.subject(),
            c.subject()
        )),
        None => Ok(None),
    }
}

fn signed_by(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    crate::x509::verify_signature(
        issuer.public_key(),
        &cert.signature_algorithm,
        &cert.signature_value.data,
        cert.tbs_certificate.as_ref(),
    )
    .is_ok()
}

fn self_signed(cert: &X509Certificate<'_>) -> bool {
    cert.subject().as_raw() == cert.issuer().as_raw() && signed_by(cert, cert)
}

/// Checks a built path (leaf first, anchor last).
fn check(path: &[&X509Certificate<'_>], opts: &Options) -> Result<(), String> {
    for (i, c) in path.iter().enumerate() {
        check_validity(c, i == 0, opts.at)?;
        check_critical(c, i == 0)?;
    }
    for (i, ca) in path.iter().enumerate().skip(1) {
        check_ca(ca)?;
        // Non-self-issued intermediates between this CA and the leaf.
        let below = path[1..i]
            .iter()
            .filter(|c| c.subject().as_raw() != c.issuer().as_raw())
            .count();
        if let Some(max) = basic_constraints(ca).and_then(|(_, p)| p) {
            if below as u64 > u64::from(max) {
                return Err(format!(
                    "path length constraint exceeded: {} allows {max} intermediate(s) below it, the chain has {below}",
                    ca.subject()
                ));
            }
        }
    }
    if let Some(p) = opts.purpose {
        for (i, c) in path.iter().enumerate() {
            check_purpose(c, i == 0, p)?;
        }
    }
    check_name_constraints(path)?;
    if let Some(h) = &opts.host {
        check_host(path[0], h)?;
    }
    Ok(())
}

fn check_validity(c: &X509Certificate<'_>, leaf: bool, at: i64) -> Result<(), String> {
    let what = if leaf {
        "certificate".to_string()
    } else {
        format!("CA certificate {}", c.subject())
    };
    let v = c.validity();
    if at > v.not_after.timestamp() {
        return Err(format!(
            "{what} has expired (not after {})",
            crate::x509::rfc3339(&v.not_after)
        ));
    }
    if at < v.not_before.timestamp() {
        return Err(format!(
            "{what} is not yet valid (not before {})",
            crate::x509::rfc3339(&v.not_before)
        ));
    }
    Ok(())
}

/// A critical extension the verifier does not understand makes the certificate
/// unusable (RFC 5280 4.2): ignoring it could ignore a restriction.
fn check_critical(c: &X509Certificate<'_>, leaf: bool) -> Result<(), String> {
    for e in c.extensions() {
        if e.critical
            && matches!(
                e.parsed_extension(),
                ParsedExtension::UnsupportedExtension { .. }
            )
        {
            let who = if leaf {
                "the certificate".to_string()
            } else {
                format!("CA {}", c.subject())
            };
            return Err(format!(
                "{who} has an unhandled critical extension {}",
                e.oid.to_id_string()
            ));
        }
    }
    Ok(())
}

/// basicConstraints as (cA, pathLenConstraint), when present.
fn basic_constraints(c: &X509Certificate<'_>) -> Option<(bool, Option<u32>)> {
    c.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::BasicConstraints(bc) => Some((bc.ca, bc.path_len_constraint)),
            _ => None,
        })
}

fn key_usage(c: &X509Certificate<'_>) -> Option<x509_parser::extensions::KeyUsage> {
    c.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::KeyUsage(ku) => Some(*ku),
            _ => None,
        })
}

/// May this certificate sign others? keyUsage, when present, must include keyCertSign;
/// basicConstraints, when present, decides; without it, an X.509 v1 self-signed root or
/// a certificate whose keyUsage allows signing is accepted (as OpenSSL does).
fn check_ca(c: &X509Certificate<'_>) -> Result<(), String> {
    let ku = key_usage(c);
    if let Some(ku) = &ku {
        if !ku.key_cert_sign() {
            return Err(format!(
                "CA {} is not allowed to sign certificates (keyUsage lacks keyCertSign)",
                c.subject()
            ));
        }
    }
    let ok = match basic_constraints(c) {
        Some((ca, _)) => ca,
        None => (c.version().0 == 0 && self_signed(c)) || ku.is_some(),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "CA {} is not allowed to sign certificates (basicConstraints)",
            c.subject()
        ))
    }
}

/// extendedKeyUsage, when present, must name the purpose on every certificate of the
/// path; the leaf's keyUsage, when present, must allow a TLS handshake.
fn check_purpose(c: &X509Certificate<'_>, leaf: bool, p: Purpose) -> Result<(), String> {
    let (name, wanted) = match p {
        Purpose::Server => ("serverAuth", "server"),
        Purpose::Client => ("clientAuth", "client"),
    };
    let eku = c
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::ExtendedKeyUsage(x) => Some(match p {
                Purpose::Server => x.server_auth,
                Purpose::Client => x.client_auth,
            }),
            _ => None,
        });
    if eku == Some(false) {
        let who = if leaf {
            "the certificate".to_string()
        } else {
            format!("CA {}", c.subject())
        };
        return Err(format!(
            "{who} is not for TLS {wanted} use (extendedKeyUsage lacks {name})"
        ));
    }
    if leaf {
        if let Some(ku) = key_usage(c) {
            let usable = match p {
                Purpose::Server => {
                    ku.digital_signature() || ku.key_encipherment() || ku.key_agreement()
                }
                Purpose::Client => ku.digital_signature() || ku.key_agreement(),
            };
            if !usable {
                return Err(format!(
                    "the certificate is not for TLS {wanted} use (keyUsage allows no handshake)"
                ));
            }
        }
    }
    Ok(())
}

/// The DNS and IP subjectAltNames of a certificate.
fn san_names(c: &X509Certificate<'_>) -> (Vec<String>, Vec<IpAddr>, bool) {
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    let mut present = false;
    for e in c.extensions() {
        if let ParsedExtension::SubjectAlternativeName(san) = e.parsed_extension() {
            present = true;
            for gn in &san.general_names {
                match gn {
                    GeneralName::DNSName(d) => dns.push(d.to_string()),
                    GeneralName::IPAddress(o) => match o.len() {
                        4 => ips.extend(<[u8; 4]>::try_from(*o).ok().map(IpAddr::from)),
                        16 => ips.extend(<[u8; 16]>::try_from(*o).ok().map(IpAddr::from)),
                        _ => {}
                    },
                    _ => {}
                }
            }
        }
    }
    (dns, ips, present)
}

/// Every CA's name constraints on the leaf's names. Without DNS subjectAltNames, a
/// subject CN that looks like a host name is checked too, as OpenSSL does, so that a
/// CN-only certificate cannot slip past a constrained CA.
fn check_name_constraints(path: &[&X509Certificate<'_>]) -> Result<(), String> {
    let leaf = path[0];
    let (mut dns, ips, _) = san_names(leaf);
    if dns.is_empty() {
        if let Some(cn) = crate::x509::common_name(leaf) {
            if cn.contains('.') && looks_like_host(&cn) {
                dns.push(cn);
            }
        }
    }
    for ca in &path[1..] {
        let nc = NameConstraintsSpec::from_cert(ca);
        if nc.is_empty() {
            continue;
        }
        if let Err(problem) = nc.check(&dns, &ips) {
            let kind = if problem.contains("excluded") {
                "excluded subtree violation"
            } else {
                "permitted subtree violation"
            };
            return Err(format!("{kind}: {problem} ({})", ca.subject()));
        }
    }
    Ok(())
}

fn looks_like_host(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
        })
}

/// RFC 6125 host matching against subjectAltName only.
fn check_host(leaf: &X509Certificate<'_>, host: &Host) -> Result<(), String> {
    let (dns, ips, _) = san_names(leaf);
    let listed = || {
        let mut v: Vec<String> = dns.iter().map(|d| format!("DNS:{d}")).collect();
        v.extend(ips.iter().map(|i| format!("IP:{i}")));
        if v.is_empty() {
            "no subjectAltName".to_string()
        } else {
            v.join(", ")
        }
    };
    match host {
        Host::Dns(name) => {
            if dns.iter().any(|p| dns_matches(p, name)) {
                Ok(())
            } else {
                Err(format!("hostname mismatch: {name} is not in {}", listed()))
            }
        }
        Host::Ip(ip) => {
            if ips.contains(ip) {
                Ok(())
            } else {
                Err(format!("IP address mismatch: {ip} is not in {}", listed()))
            }
        }
    }
}

/// Matches a presented DNS name (perhaps `*.example.com`) against the reference name:
/// case-insensitive, a trailing dot ignored, the wildcard only as the whole leftmost
/// label, standing for exactly one label, and only with at least two labels after it.
pub fn dns_matches(pattern: &str, name: &str) -> bool {
    let p = pattern.trim_end_matches('.').to_ascii_lowercase();
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    if p.is_empty() || n.is_empty() {
        return false;
    }
    match p.strip_prefix("*.") {
        Some(base) => {
            if base.contains('*') || base.split('.').count() < 2 {
                return false;
            }
            match n.split_once('.') {
                Some((first, rest)) => !first.is_empty() && rest == base,
                None => false,
            }
        }
        None => !p.contains('*') && p == n,
    }
}

/// Parses `--at`: RFC 3339 (`2030-01-01T00:00:00Z`) or Unix seconds.
pub fn parse_time(text: &str) -> Option<i64> {
    if let Ok(n) = text.trim().parse::<i64>() {
        return Some(n);
    }
    ::time::OffsetDateTime::parse(
        text.trim(),
        &::time::format_description::well_known::Rfc3339,
    )
    .ok()
    .map(|t| t.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(dns_matches("*.example.com", "www.example.com"));
        assert!(dns_matches("*.Example.com.", "WWW.example.com"));
        assert!(!dns_matches("*.example.com", "example.com"));
        assert!(!dns_matches("*.example.com", "a.b.example.com"));
        assert!(!dns_matches("w*.example.com", "www.example.com"));
        assert!(!dns_matches("www.*.com", "www.example.com"));
        assert!(!dns_matches("*.com", "example.com"));
        assert!(dns_matches("a.example.com", "a.example.com"));
        assert!(!dns_matches("a.example.com", "b.example.com"));
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1700000000"), Some(1_700_000_000));
        assert_eq!(parse_time("1970-01-01T00:01:00Z"), Some(60));
        assert_eq!(parse_time("yesterday"), None);
    }
}
