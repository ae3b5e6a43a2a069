//! Chain verification as the strictest TLS client does it. The decision is rustls-webpki's
//! (the validator rustls and most Rust TLS clients use): path building that tries every
//! candidate issuer and backtracks, within budgets for signature checks, path-building
//! calls and name-constraint comparisons; signatures, validity, basicConstraints, pathLen,
//! extended key usage, name constraints, host names and CRLs. On top of it certmesh adds
//! its RFC 5280 profile checks (`profile`): roles of every certificate (roots included),
//! extensions, weak keys; and it explains a refusal as one line naming the certificate and
//! the rule (`explain`), which webpki's bare error codes do not.
//!
//! Host names are matched against subjectAltName only (RFC 6125, as browsers do), never
//! the subject CN, and partial wildcards (`w*.example.com`) never match.

mod crl;
mod explain;
pub mod profile;
mod reason;

use std::cell::RefCell;
use std::net::IpAddr;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use serde::Serialize;
use webpki::{
    EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter, RevocationCheckDepth,
    RevocationOptionsBuilder, UnknownStatusPolicy,
};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::*;

use crate::cert::constraints::NameConstraintsSpec;

pub use crl::parse_crls;
use profile::Role;

/// What the peer certificate is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A TLS server certificate (extendedKeyUsage serverAuth, when present).
    Server,
    /// A TLS client certificate (extendedKeyUsage clientAuth, when present).
    Client,
    /// No extended key usage check.
    Any,
}

impl Purpose {
    /// The name `--purpose` takes and the JSON shows.
    pub fn name(self) -> &'static str {
        match self {
            Purpose::Server => "server",
            Purpose::Client => "client",
            Purpose::Any => "any",
        }
    }
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
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The time validity is judged at, Unix seconds.
    pub at: i64,
    pub host: Option<Host>,
    /// `None`: `server` when a host is given (as every TLS client checks), else `any`.
    pub purpose: Option<Purpose>,
    /// DER CRLs; each certificate of the path is checked against those from its issuer.
    pub crls: Vec<Vec<u8>>,
}

impl Options {
    /// The purpose actually checked.
    pub fn effective_purpose(&self) -> Purpose {
        match (self.purpose, &self.host) {
            (Some(p), _) => p,
            (None, Some(_)) => Purpose::Server,
            (None, None) => Purpose::Any,
        }
    }
}

/// The verdict, as `verify --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub ok: bool,
    /// The failure, one line naming the certificate and the rule, when there is one.
    pub error: Option<String>,
    /// Subjects from the leaf up to the trust anchor (as far as the path was built).
    pub path: Vec<String>,
    /// The purpose checked: `server`, `client` or `any`.
    pub purpose: &'static str,
    /// What RFC 5280 requires but clients accept without (missing key identifiers), one
    /// line each naming the certificate.
    pub warnings: Vec<String>,
    /// Subjects of the path's certificates whose revocation status a CRL from their
    /// issuer answered.
    pub revocation_checked: Vec<String>,
}

/// One certificate that may appear in a path above the leaf.
struct Cand<'a> {
    der: &'a [u8],
    cert: X509Certificate<'a>,
    anchor: bool,
    /// Why it cannot be an issuer, if it cannot.
    problem: Option<String>,
}

/// Verifies `leaf` against the trust `anchors`, using `untrusted` certificates (in any
/// order) as candidate intermediates. All inputs are DER.
pub fn verify(leaf: &[u8], untrusted: &[Vec<u8>], anchors: &[Vec<u8>], opts: &Options) -> Verdict {
    let purpose = opts.effective_purpose();
    let mut v = Verdict {
        ok: false,
        error: None,
        path: Vec::new(),
        purpose: purpose.name(),
        warnings: Vec::new(),
        revocation_checked: Vec::new(),
    };
    let leaf_cert = match X509Certificate::from_der(leaf) {
        Ok((_, c)) => c,
        Err(e) => {
            v.error = Some(format!(
                "not a valid X.509 certificate ({})",
                crate::x509::short_err(&e)
            ));
            return v;
        }
    };
    v.path.push(who(&leaf_cert).to_string());
    let (cands, unreadable) = candidates(leaf, untrusted, anchors, opts.at);
    let pinned = anchors.iter().any(|a| a.as_slice() == leaf);
    if let Some(p) = profile::problem(&leaf_cert, Role::Leaf, pinned) {
        v.error = Some(format!("{}: {p}", who(&leaf_cert)));
        return v;
    }
    match decide(leaf, &leaf_cert, &cands, opts, purpose) {
        Ok(mut path) => {
            if path.len() == 1 && cands[path[0]].der == leaf {
                // The leaf itself is trusted (pinned): it is the whole path.
                path.clear();
            }
            let certs: Vec<&X509Certificate<'_>> = std::iter::once(&leaf_cert)
                .chain(path.iter().map(|&i| &cands[i].cert))
                .collect();
            v.path = certs.iter().map(|c| who(c).to_string()).collect();
            for (i, c) in certs.iter().enumerate() {
                v.warnings.extend(
                    profile::warnings(c, i > 0)
                        .into_iter()
                        .map(|w| format!("{}: {w}", who(c))),
                );
            }
            for (c, issuer) in certs.iter().zip(certs.iter().skip(1)) {
                if crl::has_crl_from(issuer, &opts.crls) && c.as_raw() != issuer.as_raw() {
                    v.revocation_checked.push(who(c).to_string());
                }
            }
            match check_host(&leaf_cert, leaf, opts.host.as_ref()) {
                Ok(()) => v.ok = true,
                Err(e) => v.error = Some(e),
            }
        }
        Err(failure) => {
            let diag = explain::best_path(&leaf_cert, &cands);
            v.path
                .extend(diag.iter().map(|&i| who(&cands[i].cert).to_string()));
            v.error = Some(explain::explain(
                failure, &leaf_cert, &cands, &diag, unreadable, opts, purpose,
            ));
        }
    }
    v
}

/// Whether `cert` (DER) is properly issued by `issuer` (DER) under the rules `verify`
/// applies to every link of a path, time aside: the issuer may issue (basicConstraints,
/// keyUsage, subject, name constraints well formed, no weak key), the certificate meets
/// its own role's rules (a CA's or a leaf's), and the signature verifies with the
/// issuer's key. `check` judges chains with it, so both say the same.
pub fn issued_by(cert: &[u8], issuer: &[u8]) -> Result<(), String> {
    let parse = |der| {
        X509Certificate::from_der(der).map(|(_, c)| c).map_err(|e| {
            format!(
                "not a valid X.509 certificate ({})",
                crate::x509::short_err(&e)
            )
        })
    };
    let (c, i) = (parse(cert)?, parse(issuer)?);
    if let Some(p) = profile::problem(&i, Role::Issuer, true) {
        return Err(format!("{}: {p}", who(&i)));
    }
    let role = profile::own_role(&c);
    let self_signed = cert == issuer;
    if let Some(p) = profile::problem(&c, role, self_signed) {
        return Err(format!("{}: {p}", who(&c)));
    }
    let signed = c.issuer().as_raw() == i.subject().as_raw()
        && crate::x509::verify_signature(
            i.public_key(),
            &c.signature_algorithm,
            &c.signature_value.data,
            c.tbs_certificate.as_ref(),
        )
        .is_ok();
    if signed {
        Ok(())
    } else {
        Err("not signed by its issuing CA".into())
    }
}

/// Why webpki refused: its error, and certmesh's own reason when the refusal came from
/// certmesh's path checks.
pub(crate) struct Failure {
    error: webpki::Error,
    own: Option<String>,
}

/// The error certmesh's path callback hands webpki; `explain` then uses certmesh's own
/// message. webpki raises it otherwise only for a handful of distrusted keys.
const OWN_CHECK: webpki::Error = webpki::Error::CertDistrusted;

/// Parses the candidate issuers: anchors first (a root also sent in the chain must still
/// be trusted by the store), then the untrusted certificates. Returns them with the count
/// of those that could not be read.
fn candidates<'a>(
    leaf: &[u8],
    untrusted: &'a [Vec<u8>],
    anchors: &'a [Vec<u8>],
    at: i64,
) -> (Vec<Cand<'a>>, usize) {
    let mut out = Vec::new();
    let mut unreadable = 0;
    let all = anchors
        .iter()
        .map(|d| (d, true))
        .chain(untrusted.iter().map(|d| (d, false)));
    for (der, anchor) in all {
        if !anchor && (der.as_slice() == leaf || anchors.contains(der)) {
            continue;
        }
        let Ok((_, cert)) = X509Certificate::from_der(der) else {
            unreadable += 1;
            continue;
        };
        let problem = if anchor && der.as_slice() == leaf {
            // The leaf itself is trusted: it issues nothing but itself.
            None
        } else {
            profile::problem(&cert, Role::Issuer, anchor).or_else(|| {
                // webpki does not judge a trust anchor's validity; OpenSSL and Java do.
                anchor
                    .then(|| explain::validity(&cert, at, false))
                    .flatten()
            })
        };
        out.push(Cand {
            der,
            cert,
            anchor,
            problem,
        });
    }
    (out, unreadable)
}

/// The EKU rule for a purpose: webpki's own for server and client (the purpose must be
/// listed when the extension is present, on every certificate below the anchor), none for
/// `any`.
struct Eku(Purpose);

impl ExtendedKeyUsageValidator for Eku {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        match self.0 {
            Purpose::Server => webpki::KeyUsage::server_auth().validate(iter),
            Purpose::Client => webpki::KeyUsage::client_auth().validate(iter),
            Purpose::Any => {
                for id in iter {
                    id?;
                }
                Ok(())
            }
        }
    }
}

/// Runs webpki over the eligible candidates, with certmesh's path checks as its path
/// callback (a path they refuse makes webpki backtrack and try the next). Returns the
/// path above the leaf as indices into `cands`, the anchor last.
fn decide(
    leaf: &[u8],
    leaf_cert: &X509Certificate<'_>,
    cands: &[Cand<'_>],
    opts: &Options,
    purpose: Purpose,
) -> Result<Vec<usize>, Failure> {
    let fail = |error| Failure { error, own: None };
    let leaf_der = CertificateDer::from(leaf);
    let ee = EndEntityCert::try_from(&leaf_der).map_err(fail)?;
    let mut anchor_idx = Vec::new();
    let mut tas: Vec<TrustAnchor<'_>> = Vec::new();
    let mut ints: Vec<CertificateDer<'_>> = Vec::new();
    for (i, c) in cands.iter().enumerate() {
        if c.problem.is_some() {
            continue;
        }
        if c.anchor {
            if let Ok(ta) = webpki::anchor_from_trusted_cert(&CertificateDer::from(c.der)) {
                tas.push(ta.to_owned());
                anchor_idx.push(i);
            }
        } else {
            ints.push(CertificateDer::from(c.der));
        }
    }
    let crls = crl::for_webpki(&opts.crls);
    let crl_refs: Vec<&webpki::CertRevocationList<'_>> = crls.iter().collect();
    let revocation = RevocationOptionsBuilder::new(&crl_refs).ok().map(|b| {
        b.with_depth(RevocationCheckDepth::Chain)
            .with_status_policy(UnknownStatusPolicy::Allow)
            .with_expiration_policy(webpki::ExpirationPolicy::Enforce)
            .build()
    });
    let own: RefCell<Option<String>> = RefCell::new(None);
    let chosen: RefCell<Vec<usize>> = RefCell::new(Vec::new());
    let callback = |p: &webpki::VerifiedPath<'_>| -> Result<(), webpki::Error> {
        let mut idx: Vec<usize> = p
            .intermediate_certificates()
            .filter_map(|c| {
                let der = c.der();
                cands
                    .iter()
                    .position(|k| !k.anchor && k.der == der.as_ref())
            })
            .collect();
        let Some(a) = tas.iter().position(|t| std::ptr::eq(t, p.anchor())) else {
            return Err(webpki::Error::UnknownIssuer);
        };
        idx.push(anchor_idx[a]);
        let path: Vec<&X509Certificate<'_>> = std::iter::once(leaf_cert)
            .chain(idx.iter().map(|&i| &cands[i].cert))
            .collect();
        match path_checks(&path, opts, purpose) {
            Ok(()) => {
                *chosen.borrow_mut() = idx;
                Ok(())
            }
            Err(m) => {
                *own.borrow_mut() = Some(m);
                Err(OWN_CHECK)
            }
        }
    };
    let callback: &dyn Fn(&webpki::VerifiedPath<'_>) -> Result<(), webpki::Error> = &callback;
    let at = UnixTime::since_unix_epoch(Duration::from_secs(opts.at.max(0) as u64));
    let result = ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &tas,
        &ints,
        at,
        Eku(purpose),
        revocation,
        Some(callback),
    );
    match result {
        Ok(_) => Ok(chosen.into_inner()),
        Err(error) => Err(Failure {
            own: (error == OWN_CHECK).then(|| own.into_inner()).flatten(),
            error,
        }),
    }
}

/// certmesh's checks of a whole path (leaf first, anchor last) that webpki leaves out:
/// the trust anchor's pathLenConstraint and extended key usage (webpki keeps only its
/// name, key and name constraints), the leaf's keyUsage for the purpose, and a subject CN
/// that looks like a host name in a leaf without DNS subjectAltNames, against DNS name
/// constraints (as OpenSSL does, so that a CN-only certificate cannot slip past a
/// constrained CA).
fn path_checks(
    path: &[&X509Certificate<'_>],
    opts: &Options,
    purpose: Purpose,
) -> Result<(), String> {
    let leaf = path[0];
    let pinned = path.len() == 2 && path[1].as_raw() == leaf.as_raw();
    if !pinned {
        if let Some(m) = explain::path_len(path) {
            return Err(m);
        }
    }
    if let Some(anchor) = path.last() {
        if let Some(m) = explain::eku(anchor, purpose) {
            return Err(format!("{}: {m}", who(anchor)));
        }
    }
    if let Some(m) = leaf_key_usage(leaf, purpose) {
        return Err(format!("{}: {m}", who(leaf)));
    }
    if let Some(m) = crl::not_yet_valid(path, &opts.crls, opts.at) {
        return Err(m);
    }
    let (dns, _) = san_names(leaf);
    if dns.is_empty() {
        if let Some(cn) = crate::x509::common_name(leaf) {
            if cn.contains('.') && looks_like_host(&cn) {
                for ca in &path[1..] {
                    let nc = NameConstraintsSpec::from_cert(ca);
                    if let Err(problem) = nc.check(std::slice::from_ref(&cn), &[]) {
                        return Err(format!("{}: subject CN {problem} ({})", who(leaf), who(ca)));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The leaf's keyUsage, when present, must allow a TLS handshake in its role.
fn leaf_key_usage(leaf: &X509Certificate<'_>, purpose: Purpose) -> Option<String> {
    let ku = profile::key_usage(leaf)?;
    let usable = match purpose {
        Purpose::Server => ku.digital_signature() || ku.key_encipherment() || ku.key_agreement(),
        Purpose::Client => ku.digital_signature() || ku.key_agreement(),
        Purpose::Any => true,
    };
    (!usable).then(|| {
        format!(
            "is not for TLS {} use (keyUsage allows no handshake)",
            purpose.name()
        )
    })
}

/// How messages name a certificate: its subject, or its serial when the subject is
/// empty.
fn who(c: &X509Certificate<'_>) -> String {
    let s = c.subject().to_string();
    if s.is_empty() {
        format!(
            "the certificate with serial {} (empty subject)",
            crate::x509::serial_hex(c.raw_serial())
        )
    } else {
        s
    }
}

/// The DNS and IP subjectAltNames of a certificate.
fn san_names(c: &X509Certificate<'_>) -> (Vec<String>, Vec<IpAddr>) {
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for e in c.extensions() {
        if let ParsedExtension::SubjectAlternativeName(san) = e.parsed_extension() {
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
    (dns, ips)
}

fn looks_like_host(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
        })
}

/// RFC 6125 host matching against subjectAltName only: webpki decides, and certmesh's
/// own stricter wildcard rule must agree.
fn check_host(leaf: &X509Certificate<'_>, der: &[u8], host: Option<&Host>) -> Result<(), String> {
    let Some(host) = host else { return Ok(()) };
    let (dns, ips) = san_names(leaf);
    let listed = || {
        let mut v: Vec<String> = dns.iter().map(|d| format!("DNS:{d}")).collect();
        v.extend(ips.iter().map(|i| format!("IP:{i}")));
        if v.is_empty() {
            "is not in the certificate, which has no DNS or IP subjectAltName".to_string()
        } else {
            format!("is not in {}", v.join(", "))
        }
    };
    let der = CertificateDer::from(der);
    let webpki_ok = |name: ServerName<'_>| {
        EndEntityCert::try_from(&der)
            .and_then(|ee| ee.verify_is_valid_for_subject_name(&name))
            .is_ok()
    };
    match host {
        Host::Dns(name) => {
            let ok = ServerName::try_from(name.as_str()).is_ok_and(|n| webpki_ok(n.to_owned()))
                && dns.iter().any(|p| dns_matches(p, name));
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "{}: hostname mismatch: {name} {}",
                    who(leaf),
                    listed()
                ))
            }
        }
        Host::Ip(ip) => {
            if webpki_ok(ServerName::IpAddress((*ip).into())) && ips.contains(ip) {
                Ok(())
            } else {
                Err(format!(
                    "{}: IP address mismatch: {ip} {}",
                    who(leaf),
                    listed()
                ))
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

    #[test]
    fn default_purpose_follows_the_host() {
        let mut o = Options::default();
        assert_eq!(o.effective_purpose(), Purpose::Any);
        o.host = Some(Host::Dns("a.example.com".into()));
        assert_eq!(o.effective_purpose(), Purpose::Server);
        o.purpose = Some(Purpose::Any);
        assert_eq!(o.effective_purpose(), Purpose::Any);
    }
}
