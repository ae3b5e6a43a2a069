//! certmesh's RFC 5280 profile checks, run on top of the path validator: the rules a
//! certificate must meet in its role (leaf or issuer) whatever path it ends up in. They
//! refuse what webpki refuses too (so that the refusal names the rule instead of "the
//! signature does not verify" or "unknown issuer"), and what webpki lets through but a
//! strict client refuses: a root without basicConstraints, a CA whose basicConstraints is
//! not critical, critical key identifiers, name constraints in a leaf, weak keys.

use x509_parser::der_parser::oid::Oid;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

/// What a certificate is used as in a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The certificate being verified (a TLS server or client).
    Leaf,
    /// A CA that signs the certificate below it (an intermediate or a trust anchor).
    Issuer,
}

/// Extensions webpki processes; any other critical extension makes it refuse the
/// certificate, so certmesh names it first (RFC 5280 4.2: an unrecognised critical
/// extension must not be ignored).
const UNDERSTOOD: [&str; 8] = [
    "2.5.29.14", // subjectKeyIdentifier (must not be critical, checked separately)
    "2.5.29.15", // keyUsage
    "2.5.29.17", // subjectAltName
    "2.5.29.19", // basicConstraints
    "2.5.29.30", // nameConstraints
    "2.5.29.31", // cRLDistributionPoints
    "2.5.29.35", // authorityKeyIdentifier (must not be critical, checked separately)
    "2.5.29.37", // extendedKeyUsage
];

pub use crate::x509::MIN_RSA_BITS;

/// A rule of the profile a certificate breaks. Its `Display` is a phrase to follow the
/// certificate's subject ("is not a CA (basicConstraints cA is FALSE)"), as `verify`
/// prints it; `code` is the stable name `lint` reports it under, so that `verify`,
/// `check`, `lint` and `audit` refuse the same certificates for the same reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Breach {
    /// An extension appears twice (the name of the extension).
    DuplicateExtension(String),
    /// authorityKeyIdentifier or subjectKeyIdentifier marked critical.
    CriticalKeyIdentifier {
        extension: String,
        section: u8,
    },
    /// A critical extension no client processes.
    UnhandledCriticalExtension(String),
    /// An extension whose value does not parse.
    MalformedExtension(String),
    WeakKey(WeakKey),
    /// A signature with a broken digest.
    WeakSignature(crate::x509::SignatureAlgorithm),
    /// A subjectAltName with no entries.
    EmptySubjectAltName,
    /// A subjectAltName entry no client can match safely (what is wrong with it).
    MalformedSubjectAltName(String),
    /// A leaf with basicConstraints cA TRUE.
    LeafIsCa,
    /// A leaf whose keyUsage has keyCertSign.
    LeafKeyCertSign,
    /// A leaf with nameConstraints.
    LeafNameConstraints,
    /// An issuer with an empty subject.
    CaEmptySubject,
    /// An issuer without basicConstraints.
    IssuerWithoutBasicConstraints,
    /// An issuer whose basicConstraints says cA FALSE.
    IssuerNotCa,
    /// A CA whose basicConstraints is not critical.
    CaBasicConstraintsNotCritical,
    /// A CA whose keyUsage lacks keyCertSign.
    CaWithoutKeyCertSign,
    /// Name constraints a verifier cannot apply faithfully (what is wrong with them).
    MalformedNameConstraints(String),
}

/// A key no TLS client should accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeakKey {
    Dsa,
    EcWithoutCurve,
    EcExplicitCurve,
    EcP192,
    /// An EC key on another curve (its OID).
    EcCurve(String),
    /// An RSA key of this many bits.
    Rsa(usize),
}

impl Breach {
    /// The stable code `lint` and `audit` report the breach under.
    pub fn code(&self) -> &'static str {
        match self {
            Breach::DuplicateExtension(_) => "duplicate-extension",
            Breach::CriticalKeyIdentifier { .. } => "critical-key-identifier",
            Breach::UnhandledCriticalExtension(_) => "unhandled-critical-extension",
            Breach::MalformedExtension(_) => "malformed-extension",
            Breach::WeakKey(WeakKey::Rsa(_)) => "weak-rsa-key",
            Breach::WeakKey(_) => "weak-key",
            Breach::WeakSignature(_) => "weak-signature",
            Breach::EmptySubjectAltName | Breach::MalformedSubjectAltName(_) => {
                "malformed-subject-alt-name"
            }
            Breach::LeafIsCa => "ca-as-leaf",
            Breach::LeafKeyCertSign => "leaf-key-cert-sign",
            Breach::LeafNameConstraints => "leaf-name-constraints",
            Breach::CaEmptySubject => "ca-empty-subject",
            Breach::IssuerWithoutBasicConstraints | Breach::IssuerNotCa => "issuer-not-ca",
            Breach::CaBasicConstraintsNotCritical => "ca-basic-constraints-not-critical",
            Breach::CaWithoutKeyCertSign => "ca-without-key-cert-sign",
            Breach::MalformedNameConstraints(_) => "malformed-name-constraints",
        }
    }
}

impl std::fmt::Display for WeakKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WeakKey::Dsa => f.write_str("has a DSA key, which TLS clients refuse"),
            WeakKey::EcWithoutCurve => f.write_str("has an EC key without a named curve"),
            WeakKey::EcExplicitCurve => f.write_str(
                "has an EC key with explicit curve parameters (RFC 5480: only named curves)",
            ),
            WeakKey::EcP192 => f.write_str("has a weak key: EC P-192 (at least P-256 is required)"),
            WeakKey::EcCurve(oid) => {
                write!(f, "has an EC key on curve {oid}, which TLS clients refuse")
            }
            WeakKey::Rsa(bits) => write!(
                f,
                "has a weak key: RSA {bits} bits (at least {MIN_RSA_BITS} are required)"
            ),
        }
    }
}

impl std::fmt::Display for Breach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Breach::DuplicateExtension(ext) => write!(
                f,
                "has the {ext} extension twice (RFC 5280 4.2: at most one instance of an extension)"
            ),
            Breach::CriticalKeyIdentifier { extension, section } => write!(
                f,
                "marks {extension} critical (RFC 5280 4.2.1.{section}: it must not be critical)"
            ),
            Breach::UnhandledCriticalExtension(ext) => {
                write!(f, "has an unhandled critical extension {ext}")
            }
            Breach::MalformedExtension(ext) => write!(f, "has a malformed {ext} extension"),
            Breach::WeakKey(k) => k.fmt(f),
            Breach::WeakSignature(alg) => write!(f, "is signed with {alg}, a broken digest"),
            Breach::EmptySubjectAltName => f.write_str("has an empty subjectAltName"),
            Breach::MalformedSubjectAltName(what) => {
                write!(f, "has a malformed subjectAltName: {what}")
            }
            Breach::LeafIsCa => f.write_str(
                "is a CA certificate (basicConstraints cA TRUE), not a server or client certificate",
            ),
            Breach::LeafKeyCertSign => f.write_str(
                "is a CA certificate (keyUsage keyCertSign), not a server or client certificate",
            ),
            Breach::LeafNameConstraints => f.write_str(
                "carries name constraints, which only a CA certificate may (RFC 5280 4.2.1.10)",
            ),
            Breach::CaEmptySubject => f.write_str("is a CA with an empty subject (RFC 5280 4.1.2.6)"),
            Breach::IssuerWithoutBasicConstraints => f.write_str(
                "is not a CA (no basicConstraints; RFC 5280 4.2.1.9 requires cA TRUE)",
            ),
            Breach::IssuerNotCa => f.write_str("is not a CA (basicConstraints cA is FALSE)"),
            Breach::CaBasicConstraintsNotCritical => f.write_str(
                "marks basicConstraints non-critical (RFC 5280 4.2.1.9: critical in a CA)",
            ),
            Breach::CaWithoutKeyCertSign => {
                f.write_str("is not allowed to sign certificates (keyUsage lacks keyCertSign)")
            }
            Breach::MalformedNameConstraints(what) => {
                write!(f, "has malformed name constraints: {what}")
            }
        }
    }
}

/// The first rule `c` breaks in `role`, as a phrase to follow its subject; `None` when it
/// meets them all. `anchor` is true for a trusted certificate, whose own signature nobody
/// checks.
pub(super) fn problem(c: &X509Certificate<'_>, role: Role, anchor: bool) -> Option<String> {
    breaches(c, role, anchor).first().map(ToString::to_string)
}

/// Every rule `c` breaks in `role`, in the order `verify` reports them (the first is the
/// one it names).
pub fn breaches(c: &X509Certificate<'_>, role: Role, anchor: bool) -> Vec<Breach> {
    let mut out = Vec::new();
    common(c, anchor, &mut out);
    match role {
        Role::Leaf => leaf(c, &mut out),
        Role::Issuer => issuer(c, &mut out),
    }
    out
}

/// The role a certificate has on its own: an issuer when basicConstraints says cA TRUE,
/// else a leaf (as `check` and `lint` judge a certificate out of any path).
pub fn own_role(c: &X509Certificate<'_>) -> Role {
    match basic_constraints(c) {
        Some((true, _, _)) => Role::Issuer,
        _ => Role::Leaf,
    }
}

fn common(c: &X509Certificate<'_>, anchor: bool, out: &mut Vec<Breach>) {
    let exts = c.extensions();
    for (i, e) in exts.iter().enumerate() {
        if exts[..i].iter().any(|p| p.oid == e.oid) && !exts[i + 1..].iter().any(|p| p.oid == e.oid)
        {
            out.push(Breach::DuplicateExtension(ext_name(&e.oid)));
        }
    }
    for e in exts {
        let id = e.oid.to_id_string();
        if e.critical && (id == "2.5.29.35" || id == "2.5.29.14") {
            out.push(Breach::CriticalKeyIdentifier {
                extension: ext_name(&e.oid),
                section: if id == "2.5.29.35" { 1 } else { 2 },
            });
        } else if e.critical && !UNDERSTOOD.contains(&id.as_str()) {
            out.push(Breach::UnhandledCriticalExtension(ext_name(&e.oid)));
        } else if let ParsedExtension::ParseError { .. } = e.parsed_extension() {
            out.push(Breach::MalformedExtension(ext_name(&e.oid)));
        }
    }
    if let Some(k) = weak_key(c.public_key()) {
        out.push(Breach::WeakKey(k));
    }
    if !anchor {
        let alg = crate::x509::SignatureAlgorithm::from_oid(&c.signature_algorithm.algorithm);
        if alg.is_weak() {
            out.push(Breach::WeakSignature(alg));
        }
    }
    malformed_san(c, out);
}

/// A key no TLS client should accept: RSA below 2048 bits, DSA, EC on a curve other than
/// P-256/P-384/P-521 (P-192 among them), or EC with explicit curve parameters.
pub(super) fn weak_key(spki: &SubjectPublicKeyInfo<'_>) -> Option<WeakKey> {
    let alg = spki.algorithm.algorithm.to_id_string();
    match alg.as_str() {
        "1.2.840.10040.4.1" => return Some(WeakKey::Dsa),
        "1.2.840.10045.2.1" => {
            let Some(params) = spki.algorithm.parameters.as_ref() else {
                return Some(WeakKey::EcWithoutCurve);
            };
            let named = params.header.tag() == x509_parser::asn1_rs::Tag::Oid;
            let (true, Ok(curve)) = (named, params.as_oid()) else {
                return Some(WeakKey::EcExplicitCurve);
            };
            return match curve.to_id_string().as_str() {
                "1.2.840.10045.3.1.7" | "1.3.132.0.34" | "1.3.132.0.35" => None,
                "1.2.840.10045.3.1.1" => Some(WeakKey::EcP192),
                other => Some(WeakKey::EcCurve(other.to_string())),
            };
        }
        _ => {}
    }
    if let Ok(PublicKey::RSA(rsa)) = spki.parsed() {
        let bits = rsa.key_size();
        if bits < MIN_RSA_BITS as usize {
            return Some(WeakKey::Rsa(bits));
        }
    }
    None
}

/// subjectAltName entries no client can match safely: an IP address that is not 4 or 16
/// bytes, a DNS name that is empty, starts with a dot or has an empty label.
fn malformed_san(c: &X509Certificate<'_>, out: &mut Vec<Breach>) {
    for e in c.extensions() {
        let ParsedExtension::SubjectAlternativeName(san) = e.parsed_extension() else {
            continue;
        };
        if san.general_names.is_empty() {
            out.push(Breach::EmptySubjectAltName);
        }
        for gn in &san.general_names {
            match gn {
                GeneralName::IPAddress(o) if o.len() != 4 && o.len() != 16 => out.push(
                    Breach::MalformedSubjectAltName(format!("an IP address of {} bytes", o.len())),
                ),
                GeneralName::DNSName(d) if !valid_dns_san(d) => out.push(
                    Breach::MalformedSubjectAltName(format!("DNS name '{}'", d.escape_default())),
                ),
                _ => {}
            }
        }
    }
}

fn valid_dns_san(d: &str) -> bool {
    let d = d.strip_suffix('.').unwrap_or(d);
    !d.is_empty()
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'*')
        })
}

fn leaf(c: &X509Certificate<'_>, out: &mut Vec<Breach>) {
    if basic_constraints(c).is_some_and(|(ca, _, _)| ca) {
        out.push(Breach::LeafIsCa);
    } else if key_usage(c).is_some_and(|ku| ku.key_cert_sign()) {
        out.push(Breach::LeafKeyCertSign);
    }
    if has_ext(c, "2.5.29.30") {
        out.push(Breach::LeafNameConstraints);
    }
}

fn issuer(c: &X509Certificate<'_>, out: &mut Vec<Breach>) {
    if c.subject().as_raw().len() <= 2 {
        out.push(Breach::CaEmptySubject);
    }
    match basic_constraints(c) {
        None => out.push(Breach::IssuerWithoutBasicConstraints),
        Some((false, _, _)) => out.push(Breach::IssuerNotCa),
        Some((true, _, false)) => out.push(Breach::CaBasicConstraintsNotCritical),
        Some((true, _, true)) => {}
    }
    if key_usage(c).is_some_and(|ku| !ku.key_cert_sign()) {
        out.push(Breach::CaWithoutKeyCertSign);
    }
    malformed_constraints(c, out);
}

/// Name constraints a verifier cannot apply faithfully: both subtrees absent or empty
/// (RFC 5280 4.2.1.10), an IP subtree that is not address + mask of 8 or 32 bytes, or a
/// mask that is not a prefix.
fn malformed_constraints(c: &X509Certificate<'_>, out: &mut Vec<Breach>) {
    for e in c.extensions() {
        let ParsedExtension::NameConstraints(nc) = e.parsed_extension() else {
            continue;
        };
        let empty = |s: &Option<Vec<_>>| s.as_ref().is_none_or(Vec::is_empty);
        if nc.permitted_subtrees.as_ref().is_some_and(Vec::is_empty)
            || nc.excluded_subtrees.as_ref().is_some_and(Vec::is_empty)
            || (empty(&nc.permitted_subtrees) && empty(&nc.excluded_subtrees))
        {
            out.push(Breach::MalformedNameConstraints(
                "an empty subtree list".into(),
            ));
            continue;
        }
        let all = nc
            .permitted_subtrees
            .iter()
            .chain(nc.excluded_subtrees.iter())
            .flatten();
        for st in all {
            if let GeneralName::IPAddress(o) = &st.base {
                let half = o.len() / 2;
                if (o.len() != 8 && o.len() != 32) || !is_prefix_mask(&o[half..]) {
                    out.push(Breach::MalformedNameConstraints(format!(
                        "an IP subtree of {} bytes that is not address and prefix mask",
                        o.len()
                    )));
                }
            }
            if let GeneralName::DNSName(d) = &st.base {
                if d.starts_with('*') || d.contains("..") {
                    out.push(Breach::MalformedNameConstraints(format!(
                        "DNS subtree '{}'",
                        d.escape_default()
                    )));
                }
            }
        }
    }
}

fn is_prefix_mask(mask: &[u8]) -> bool {
    let bits: Vec<bool> = mask
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1 == 1))
        .collect();
    bits.windows(2).all(|w| w[0] || !w[1])
}

/// Warnings for what RFC 5280 requires but clients do not enforce: an
/// authorityKeyIdentifier in every certificate not self-signed (4.2.1.1), a
/// subjectKeyIdentifier and keyUsage in every CA certificate (4.2.1.2, 4.2.1.3).
pub(super) fn warnings(c: &X509Certificate<'_>, is_ca: bool) -> Vec<String> {
    let mut w = Vec::new();
    let self_issued = c.subject().as_raw() == c.issuer().as_raw();
    if !self_issued && !has_ext(c, "2.5.29.35") {
        w.push("has no authorityKeyIdentifier (RFC 5280 4.2.1.1)".to_string());
    }
    if is_ca && !has_ext(c, "2.5.29.14") {
        w.push("is a CA without subjectKeyIdentifier (RFC 5280 4.2.1.2)".to_string());
    }
    if is_ca && key_usage(c).is_none() {
        w.push("is a CA without keyUsage (RFC 5280 4.2.1.3)".to_string());
    }
    w
}

fn has_ext(c: &X509Certificate<'_>, oid: &str) -> bool {
    c.extensions().iter().any(|e| e.oid.to_id_string() == oid)
}

/// basicConstraints as (cA, pathLenConstraint, critical), when present.
pub(super) fn basic_constraints(c: &X509Certificate<'_>) -> Option<(bool, Option<u32>, bool)> {
    c.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::BasicConstraints(bc) => {
                Some((bc.ca, bc.path_len_constraint, e.critical))
            }
            _ => None,
        })
}

pub(super) fn key_usage(c: &X509Certificate<'_>) -> Option<x509_parser::extensions::KeyUsage> {
    c.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::KeyUsage(ku) => Some(*ku),
            _ => None,
        })
}

/// The name of an extension as RFC 5280 spells it, with its OID when unknown.
pub(super) fn ext_name(oid: &Oid<'_>) -> String {
    let id = oid.to_id_string();
    let name = match id.as_str() {
        "2.5.29.14" => "subjectKeyIdentifier",
        "2.5.29.15" => "keyUsage",
        "2.5.29.17" => "subjectAltName",
        "2.5.29.18" => "issuerAltName",
        "2.5.29.19" => "basicConstraints",
        "2.5.29.30" => "nameConstraints",
        "2.5.29.31" => "cRLDistributionPoints",
        "2.5.29.32" => "certificatePolicies",
        "2.5.29.33" => "policyMappings",
        "2.5.29.35" => "authorityKeyIdentifier",
        "2.5.29.36" => "policyConstraints",
        "2.5.29.37" => "extendedKeyUsage",
        "2.5.29.54" => "inhibitAnyPolicy",
        "1.3.6.1.5.5.7.1.1" => "authorityInfoAccess",
        _ => return id,
    };
    format!("{name} ({id})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert!(is_prefix_mask(&[255, 255, 0, 0]));
        assert!(is_prefix_mask(&[0, 0, 0, 0]));
        assert!(is_prefix_mask(&[255, 255, 255, 255]));
        assert!(!is_prefix_mask(&[255, 0, 255, 0]));
        assert!(!is_prefix_mask(&[0, 255, 0, 0]));
    }

    #[test]
    fn dns_sans() {
        assert!(valid_dns_san("a.example.com"));
        assert!(valid_dns_san("*.example.com"));
        assert!(valid_dns_san("localhost"));
        assert!(!valid_dns_san(".example.com"));
        assert!(!valid_dns_san("a..example.com"));
        assert!(!valid_dns_san(""));
        assert!(!valid_dns_san("a b.example.com"));
    }
}
