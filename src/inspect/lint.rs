//! Findings about one certificate: the problems that make TLS clients reject it or that
//! weaken it, each with a stable code and a severity, so scripts can act on them.

use serde::Serialize;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::*;

use super::{describe_cert, is_weak_signature};

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

/// Lints one parsed certificate; `der` is its encoding.
pub fn lint_cert(cert: &X509Certificate<'_>, der: &[u8]) -> Vec<Finding> {
    let r = describe_cert(cert, der);
    let mut out = Vec::new();
    let mut add = |severity, code, message: String| {
        out.push(Finding {
            severity,
            code,
            message,
        })
    };
    let leaf = !r.is_ca;

    if leaf && r.san.dns.is_empty() && r.san.ip.is_empty() && r.san.email.is_empty() {
        add(
            Severity::Error,
            "no-subject-alt-name",
            "no subjectAltName: TLS clients ignore the subject CN and will reject this certificate"
                .into(),
        );
    }
    if r.key.kind == "RSA" && r.key.bits < 2048 {
        add(
            Severity::Error,
            "weak-rsa-key",
            format!("RSA key of {} bits (at least 2048 needed)", r.key.bits),
        );
    }
    if is_weak_signature(&r.signature_algorithm) {
        add(
            Severity::Error,
            "weak-signature",
            format!("signed with {}, a broken digest", r.signature_algorithm),
        );
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
    if r.is_ca && !r.key_usage.is_empty() && !r.key_usage.iter().any(|k| k == "keyCertSign") {
        add(
            Severity::Error,
            "ca-without-key-cert-sign",
            "CA certificate whose keyUsage lacks keyCertSign: clients refuse what it signs".into(),
        );
    }
    if r.is_ca && !basic_constraints_critical(cert) {
        add(
            Severity::Error,
            "ca-basic-constraints-not-critical",
            "basicConstraints of a CA certificate is not marked critical".into(),
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
    out
}

fn basic_constraints_critical(cert: &X509Certificate<'_>) -> bool {
    cert.extensions()
        .iter()
        .any(|e| matches!(e.parsed_extension(), ParsedExtension::BasicConstraints(_)) && e.critical)
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
