//! Findings about one certificate or CRL: the problems that make TLS clients reject it,
//! that RFC 5280 (and RFC 8813 / RFC 8410 for the key usages of EC and Ed25519 keys)
//! forbids, or that weaken it, each with a stable code and a severity, so scripts can act
//! on them.

use serde::Serialize;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::*;
use x509_parser::revocation_list::CertificateRevocationList;

use super::describe_cert;
use crate::verify::profile::{breaches, own_role, Breach, WeakKey, MIN_RSA_BITS};
use crate::x509::{KeyType, SignatureAlgorithm};

/// Ed448's OID: like Ed25519 (RFC 8410), a key that only signs.
const ED448: &str = "1.3.101.113";

/// The key usages a key that only signs (Ed25519, Ed448) must not have.
const SIGN_ONLY: &[&str] = &[
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "encipherOnly",
    "decipherOnly",
];

/// Longest validity browsers accept for a TLS leaf (CA/Browser Forum, since 2020).
const MAX_TLS_LEAF_DAYS: i64 = 398;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable identifier, e.g. `no-subject-alt-name`.
    pub code: &'static str,
    pub message: String,
}

impl Finding {
    pub fn new(severity: Severity, code: &'static str, message: impl Into<String>) -> Self {
        Finding {
            severity,
            code,
            message: message.into(),
        }
    }
}

/// Lints one parsed certificate; `der` is its encoding.
pub fn lint_cert(cert: &X509Certificate<'_>, der: &[u8]) -> Vec<Finding> {
    let r = describe_cert(cert, der);
    let mut out = Vec::new();
    let mut add = |severity, code, message: String| out.push(Finding::new(severity, code, message));
    let leaf = !r.is_ca;

    if leaf && r.san.dns.is_empty() && r.san.ip.is_empty() && r.san.email.is_empty() {
        add(
            Severity::Error,
            "no-subject-alt-name",
            "no subjectAltName: TLS clients ignore the subject CN and will reject this certificate"
                .into(),
        );
    }
    // What TLS clients refuse, judged by the rules `verify` applies to a certificate in
    // its own role: one implementation for `verify`, `check`, `lint` and `audit`.
    for b in breaches(cert, own_role(cert), false) {
        add(Severity::Error, b.code(), breach_message(&b));
    }
    if leaf && r.self_signed {
        add(
            Severity::Warning,
            "self-signed-leaf",
            "self-signed end-entity certificate: every client must trust it individually".into(),
        );
    }
    if r.is_ca && r.key_usage.is_empty() {
        add(
            Severity::Error,
            "ca-without-key-usage",
            "CA certificate without keyUsage (RFC 5280 requires keyCertSign)".into(),
        );
    }
    let v = cert.validity();
    let days = (v.not_after.timestamp() - v.not_before.timestamp()) / 86400;
    if leaf && days > MAX_TLS_LEAF_DAYS {
        add(
            Severity::Warning,
            "validity-too-long",
            format!("valid for {days} days; browsers accept at most {MAX_TLS_LEAF_DAYS} for TLS"),
        );
    }
    if r.subject_key_id.is_none() {
        add(
            Severity::Warning,
            "missing-subject-key-id",
            "no subjectKeyIdentifier".into(),
        );
    }
    if r.authority_key_id.is_none() && !r.self_signed {
        add(
            Severity::Warning,
            "missing-authority-key-id",
            "no authorityKeyIdentifier".into(),
        );
    }
    let bits = serial_bits(cert.raw_serial());
    if bits < 64 {
        add(
            Severity::Warning,
            "short-serial",
            format!("serial number has {bits} bits; at least 64 random bits are expected"),
        );
    }
    if r.version < 3 {
        add(
            Severity::Warning,
            "x509-v1",
            "X.509 version 1 certificate: no extensions".into(),
        );
    }
    let unsuitable = unsuitable_key_usages(&r.key.kind, &r.key_usage);
    if !unsuitable.is_empty() {
        add(
            Severity::Error,
            "key-usage-not-for-key",
            format!(
                "keyUsage {} does not fit a {} key ({})",
                unsuitable.join(", "),
                r.key.kind,
                match r.key.kind {
                    KeyType::Ec => "RFC 8813: EC keys sign or agree keys, they do not encipher",
                    KeyType::Rsa => "RFC 3279: RSA keys sign or encipher, they do not agree keys",
                    _ => "RFC 8410: Ed25519 and Ed448 keys only sign",
                }
            ),
        );
    }
    if leaf && !r.key_usage.is_empty() {
        for eku in &r.extended_key_usage {
            let needs: &[&str] = match eku.as_str() {
                "serverAuth" => &["digitalSignature", "keyEncipherment", "keyAgreement"],
                "clientAuth" => &["digitalSignature", "keyAgreement"],
                _ => continue,
            };
            if !r.key_usage.iter().any(|k| needs.contains(&k.as_str())) {
                add(
                    Severity::Error,
                    "key-usage-eku-mismatch",
                    format!(
                        "extendedKeyUsage {eku} needs keyUsage {} (RFC 5280 4.2.1.12); it has {}",
                        needs.join(" or "),
                        r.key_usage.join(", ")
                    ),
                );
            }
        }
    }
    if cert
        .extensions()
        .iter()
        .any(|e| matches!(e.parsed_extension(), ParsedExtension::KeyUsage(_)) && !e.critical)
    {
        add(
            Severity::Warning,
            "key-usage-not-critical",
            "keyUsage is not marked critical (RFC 5280 4.2.1.3: CAs should)".into(),
        );
    }
    for cn in cert.subject().iter_common_name() {
        let len = cn
            .as_str()
            .map(|s| s.chars().count())
            .unwrap_or(cn.as_slice().len());
        if len > crate::cert::MAX_COMMON_NAME {
            add(
                Severity::Error,
                "common-name-too-long",
                format!(
                    "subject CN is {len} characters; X.509 allows at most {} (ub-common-name)",
                    crate::cert::MAX_COMMON_NAME
                ),
            );
        }
    }
    let cns = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_string));
    for name in r.san.dns.iter().cloned().chain(cns) {
        let name = name.trim_end_matches('.');
        let name = name.strip_prefix("*.").unwrap_or(name);
        for label in name.split('.') {
            if let Err(why) = crate::cert::idna::check_label(label) {
                add(
                    Severity::Error,
                    "invalid-a-label",
                    format!("in {name}: {why}"),
                );
            }
        }
    }
    out
}

/// A breach as a lint message: the phrasing `lint` has always used for the rules it
/// shared with `verify` before they were one, else `verify`'s phrase.
fn breach_message(b: &Breach) -> String {
    match b {
        Breach::WeakKey(WeakKey::Rsa(bits)) => {
            format!("RSA key of {bits} bits (at least {MIN_RSA_BITS} needed)")
        }
        Breach::WeakSignature(alg) => format!("signed with {alg}, a broken digest"),
        Breach::CaBasicConstraintsNotCritical => {
            "basicConstraints of a CA certificate is not marked critical".into()
        }
        Breach::CaWithoutKeyCertSign => {
            "CA certificate whose keyUsage lacks keyCertSign: clients refuse what it signs".into()
        }
        Breach::LeafKeyCertSign => {
            "end-entity certificate with keyCertSign in its keyUsage (RFC 5280 4.2.1.3)".into()
        }
        other => format!("the certificate {other}"),
    }
}

/// The key usages RFC 3279/4055 (RSA), RFC 8813 (EC) and RFC 8410 (Ed25519, Ed448) do not
/// allow for a key of this kind.
fn unsuitable_key_usages<'a>(kind: &KeyType, usages: &'a [String]) -> Vec<&'a str> {
    let forbidden: &[&str] = match kind {
        KeyType::Rsa => &["keyAgreement", "encipherOnly", "decipherOnly"],
        KeyType::Ec => &["keyEncipherment", "dataEncipherment"],
        KeyType::Ed25519 => SIGN_ONLY,
        KeyType::Other(oid) if oid == ED448 => SIGN_ONLY,
        KeyType::Other(_) => &[],
    };
    usages
        .iter()
        .map(String::as_str)
        .filter(|u| forbidden.contains(u))
        .collect()
}

/// Lints one parsed CRL at `now` (Unix seconds).
pub fn lint_crl(crl: &CertificateRevocationList<'_>, now: i64) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut add = |severity, code, message: String| out.push(Finding::new(severity, code, message));
    let this = crl.last_update().timestamp();
    match crl.next_update() {
        None => add(
            Severity::Error,
            "crl-missing-next-update",
            "no nextUpdate (RFC 5280 5.1.2.5 requires it)".into(),
        ),
        Some(next) if next.timestamp() < this => add(
            Severity::Error,
            "crl-next-update-before-this-update",
            format!(
                "nextUpdate {} is before thisUpdate {}",
                crate::x509::rfc3339(&next),
                crate::x509::rfc3339(&crl.last_update())
            ),
        ),
        Some(next) if next.timestamp() < now => add(
            Severity::Error,
            "crl-expired",
            format!(
                "nextUpdate {} has passed: servers checking revocation refuse every certificate of this CA",
                crate::x509::rfc3339(&next)
            ),
        ),
        Some(_) => {}
    }
    for r in crl.iter_revoked_certificates() {
        if r.revocation_date.timestamp() > this {
            add(
                Severity::Error,
                "crl-revoked-after-this-update",
                format!(
                    "serial {} is revoked at {}, after the CRL's thisUpdate {}",
                    crate::x509::serial_hex(r.raw_serial()),
                    crate::x509::rfc3339(&r.revocation_date),
                    crate::x509::rfc3339(&crl.last_update())
                ),
            );
        }
    }
    let exts = crl.extensions();
    if !exts.iter().any(|e| {
        matches!(
            e.parsed_extension(),
            ParsedExtension::AuthorityKeyIdentifier(_)
        )
    }) {
        add(
            Severity::Error,
            "crl-missing-authority-key-id",
            "no authorityKeyIdentifier (RFC 5280 5.2.1 requires it)".into(),
        );
    }
    if crl.crl_number().is_none() {
        add(
            Severity::Error,
            "crl-missing-number",
            "no cRLNumber (RFC 5280 5.2.3 requires it)".into(),
        );
    }
    let alg = SignatureAlgorithm::from_oid(&crl.signature_algorithm.algorithm);
    if alg.is_weak() {
        add(
            Severity::Error,
            "weak-signature",
            format!("signed with {alg}, a broken digest"),
        );
    }
    out
}

/// Bit length of a serial's magnitude.
fn serial_bits(raw: &[u8]) -> u32 {
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    match raw.get(start) {
        None => 0,
        Some(first) => (raw.len() - start - 1) as u32 * 8 + (8 - first.leading_zeros()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_lengths() {
        assert_eq!(serial_bits(&[0x01]), 1);
        assert_eq!(serial_bits(&[0x00, 0x80]), 8);
        assert_eq!(serial_bits(&[0x7f; 8]), 63);
        assert_eq!(serial_bits(&[]), 0);
    }
}
