//! Turning webpki's refusal into one line an operator can act on, naming the certificate
//! and the rule. webpki says *that* a chain fails ("unknown issuer", "signature does not
//! verify"); to say *which* certificate and *why*, this module rebuilds the most plausible
//! path itself (bounded, for explanation only: the decision stays webpki's) and looks
//! along it for the rule broken.

use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::*;

use super::reason::describe;
use super::{crl, Cand, Failure, Options, Purpose};
use super::{profile, who};
use crate::cert::constraints::NameConstraintsSpec;

/// Most signature checks the explanation's own path search makes.
const MAX_SIGNATURES: usize = 64;
/// Longest path it considers, leaf and anchor included.
const MAX_DEPTH: usize = 10;

/// The most plausible path above `leaf` (indices into `cands`, anchor last if reached):
/// depth first over candidates named as the issuer, those whose subjectKeyIdentifier
/// matches the authorityKeyIdentifier first, anchors before intermediates, following only
/// signatures that verify; the first path reaching an anchor, else the longest one.
pub(super) fn best_path(leaf: &X509Certificate<'_>, cands: &[Cand<'_>]) -> Vec<usize> {
    let mut best = Vec::new();
    let mut path = Vec::new();
    let mut budget = MAX_SIGNATURES;
    search(leaf, cands, &mut path, &mut best, &mut budget);
    best
}

/// Returns true once a path to an anchor is in `best`.
fn search(
    cert: &X509Certificate<'_>,
    cands: &[Cand<'_>],
    path: &mut Vec<usize>,
    best: &mut Vec<usize>,
    budget: &mut usize,
) -> bool {
    if path.len() > best.len() {
        *best = path.clone();
    }
    if path.len() + 1 >= MAX_DEPTH {
        return false;
    }
    for i in issuers_of(cert, cands) {
        if path.contains(&i) || *budget == 0 {
            continue;
        }
        *budget -= 1;
        if !signed_by(cert, &cands[i].cert) {
            continue;
        }
        path.push(i);
        if cands[i].anchor {
            *best = path.clone();
            return true;
        }
        if search(&cands[i].cert, cands, path, best, budget) {
            return true;
        }
        path.pop();
    }
    false
}

/// Candidates whose subject is `cert`'s issuer, best first: eligible before refused, key
/// identifier matches first, then anchors.
fn issuers_of(cert: &X509Certificate<'_>, cands: &[Cand<'_>]) -> Vec<usize> {
    let aki = key_id(cert, true);
    let mut v: Vec<usize> = (0..cands.len())
        .filter(|&i| cands[i].cert.subject().as_raw() == cert.issuer().as_raw())
        .filter(|&i| cands[i].cert.as_raw() != cert.as_raw() || cands[i].anchor)
        .collect();
    v.sort_by_key(|&i| {
        let c = &cands[i];
        let id_match = aki.is_some() && key_id(&c.cert, false) == aki;
        (c.problem.is_some(), !id_match, !c.anchor)
    });
    v
}

fn key_id<'a>(c: &'a X509Certificate<'_>, authority: bool) -> Option<&'a [u8]> {
    c.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) if authority => {
                a.key_identifier.as_ref().map(|k| k.0)
            }
            ParsedExtension::SubjectKeyIdentifier(k) if !authority => Some(k.0),
            _ => None,
        })
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

/// "has expired (not after ...)" or "is not yet valid (...)" at `at`, as a phrase after
/// the subject; `leaf` words it for the certificate verified, else for a CA.
pub(super) fn validity(c: &X509Certificate<'_>, at: i64, leaf: bool) -> Option<String> {
    let what = if leaf {
        "certificate"
    } else {
        "CA certificate"
    };
    let v = c.validity();
    if at > v.not_after.timestamp() {
        return Some(format!(
            "{what} has expired (not after {})",
            crate::x509::rfc3339(&v.not_after)
        ));
    }
    if at < v.not_before.timestamp() {
        return Some(format!(
            "{what} is not yet valid (not before {})",
            crate::x509::rfc3339(&v.not_before)
        ));
    }
    None
}

/// The first CA in `path` (leaf first) whose pathLenConstraint is exceeded by the
/// non-self-issued intermediates below it.
pub(super) fn path_len(path: &[&X509Certificate<'_>]) -> Option<String> {
    for (i, ca) in path.iter().enumerate().skip(1) {
        let below = path[1..i]
            .iter()
            .filter(|c| c.subject().as_raw() != c.issuer().as_raw())
            .count();
        if let Some(max) = profile::basic_constraints(ca).and_then(|(_, p, _)| p) {
            if below as u64 > u64::from(max) {
                return Some(format!(
                    "{}: path length constraint exceeded: it allows {max} intermediate(s) below it, the chain has {below}",
                    who(ca)
                ));
            }
        }
    }
    None
}

/// extendedKeyUsage, when present, must list the purpose (anyExtendedKeyUsage does not
/// count, as in webpki).
pub(super) fn eku(c: &X509Certificate<'_>, purpose: Purpose) -> Option<String> {
    let (name, listed) = c
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::ExtendedKeyUsage(x) => Some(match purpose {
                Purpose::Server => ("serverAuth", x.server_auth),
                Purpose::Client => ("clientAuth", x.client_auth),
                Purpose::Any => ("", true),
            }),
            _ => None,
        })?;
    (!listed).then(|| {
        format!(
            "is not for TLS {} use (extendedKeyUsage lacks {name})",
            purpose.name()
        )
    })
}

/// One line for a refusal.
pub(super) fn explain(
    failure: Failure,
    leaf: &X509Certificate<'_>,
    cands: &[Cand<'_>],
    diag: &[usize],
    unreadable: usize,
    opts: &Options,
    purpose: Purpose,
) -> String {
    if let Some(own) = failure.own {
        return own;
    }
    let path: Vec<&X509Certificate<'_>> = std::iter::once(leaf)
        .chain(diag.iter().map(|&i| &cands[i].cert))
        .collect();
    use webpki::Error as E;
    #[allow(deprecated)]
    let specific = match &failure.error {
        E::CertExpired { .. } | E::CertNotValidYet { .. } => path.iter().enumerate().find_map(|(i, c)| {
            validity(c, opts.at, i == 0).map(|m| format!("{}: {m}", who(c)))
        }),
        E::CertRevoked => path
            .iter()
            .find_map(|c| crl::revoked(c, &opts.crls).map(|m| format!("{}: {m}", who(c)))),
        E::CrlExpired { next_update, .. } => Some(format!(
            "the CRL from {} has expired (next update {})",
            crl::issuer_of_expired(&opts.crls, next_update.as_secs())
                .unwrap_or_else(|| "an issuer in the path".into()),
            rfc3339_secs(next_update.as_secs())
        )),
        E::InvalidCrlSignatureForPublicKey => path.iter().skip(1).find(|ca| crl::forged_from(ca, &opts.crls)).map(|ca| {
            format!(
                "the CRL naming {} as its issuer does not verify with that CA's key",
                who(ca)
            )
        }),
        E::IssuerNotCrlSigner => Some(
            "a CRL's issuer may not sign CRLs (keyUsage lacks cRLSign)".to_string(),
        ),
        E::MaximumNameConstraintComparisonsExceeded => Some(format!(
            "{}: resource limit: checking name constraints needs more than 250000 comparisons; the chain is refused",
            constraining(&path).map_or_else(|| who(leaf).to_string(), |c| who(c).to_string())
        )),
        E::MaximumSignatureChecksExceeded => Some(format!(
            "{}: resource limit: building a path needs more than 100 signature checks; the chain is refused",
            who(leaf)
        )),
        E::MaximumPathBuildCallsExceeded => Some(format!(
            "{}: resource limit: building a path needs more than 200000 steps; the chain is refused",
            who(leaf)
        )),
        E::MaximumPathDepthExceeded => Some(format!(
            "{}: the chain has more than 6 intermediates, which TLS clients refuse",
            who(leaf)
        )),
        E::NameConstraintViolation
        | E::MalformedNameConstraint
        | E::InvalidNetworkMaskConstraint
        | E::UnsupportedNameType
        | E::MalformedDnsIdentifier => Some(name_constraints(&path, &failure.error)),
        E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) => path
            .iter()
            .find_map(|c| eku(c, purpose).map(|m| format!("{}: {m}", who(c)))),
        _ => None,
    };
    specific.unwrap_or_else(|| {
        along_path(
            &failure.error,
            leaf,
            cands,
            diag,
            &path,
            unreadable,
            opts,
            purpose,
        )
    })
}

/// The first rule broken along the diagnostic path, else why the path ends where it does.
#[allow(clippy::too_many_arguments)]
fn along_path(
    error: &webpki::Error,
    leaf: &X509Certificate<'_>,
    cands: &[Cand<'_>],
    diag: &[usize],
    path: &[&X509Certificate<'_>],
    unreadable: usize,
    opts: &Options,
    purpose: Purpose,
) -> String {
    for (n, &i) in diag.iter().enumerate() {
        let c = &cands[i];
        if let Some(p) = &c.problem {
            return format!("{}: {p}", who(&c.cert));
        }
        if !c.anchor {
            if let Some(m) = validity(&c.cert, opts.at, false) {
                return format!("{}: {m}", who(&c.cert));
            }
            if let Some(m) = eku(&c.cert, purpose) {
                return format!("{}: {m}", who(&c.cert));
            }
        }
        if let Some(m) = path_len(&path[..n + 2]) {
            return m;
        }
    }
    if let Some(m) = validity(leaf, opts.at, true) {
        return format!("{}: {m}", who(leaf));
    }
    let reached = diag.last().is_some_and(|&i| cands[i].anchor);
    if !reached {
        let top = path[path.len() - 1];
        let named: Vec<usize> = issuers_of(top, cands)
            .into_iter()
            .filter(|i| !diag.contains(i))
            .collect();
        if let Some(&i) = named.iter().find(|&&i| cands[i].problem.is_some()) {
            let c = &cands[i];
            return format!(
                "{}: {}",
                who(&c.cert),
                c.problem.as_deref().unwrap_or_default()
            );
        }
        if let Some(&i) = named.iter().find(|&&i| !signed_by(top, &cands[i].cert)) {
            return format!(
                "the signature of {} does not verify with the key of {}",
                who(top),
                who(&cands[i].cert)
            );
        }
        if top.subject().as_raw() == top.issuer().as_raw() && signed_by(top, top) {
            return if path.len() == 1 {
                format!("self-signed certificate {} is not a trusted CA", who(top))
            } else {
                format!(
                    "self-signed certificate {} in the chain is not a trusted CA",
                    who(top)
                )
            };
        }
        let mut m = format!(
            "unable to find the issuer of {} ({})",
            who(top),
            top.issuer()
        );
        if issuers_of(top, cands).iter().any(|i| diag.contains(i)) {
            m.push_str(": the certificates given issue each other in a loop, without a trusted CA");
        }
        if unreadable > 0 {
            m.push_str(&format!(
                "; {unreadable} certificate(s) given could not be read"
            ));
        }
        return m;
    }
    format!("{}: refused: {}", who(leaf), describe(error))
}

/// The highest CA in the path with name constraints.
fn constraining<'a>(path: &[&'a X509Certificate<'a>]) -> Option<&'a X509Certificate<'a>> {
    path.iter()
        .skip(1)
        .rev()
        .find(|c| {
            c.extensions()
                .iter()
                .any(|e| e.oid.to_id_string() == "2.5.29.30")
        })
        .copied()
}

/// Which name broke which CA's constraints: certmesh's own reading of DNS and IP
/// subtrees names it; other name forms (email, directory names, URIs) are refused by
/// webpki whenever a constraint of that form applies, since it cannot judge them.
fn name_constraints(path: &[&X509Certificate<'_>], error: &webpki::Error) -> String {
    for (i, ca) in path.iter().enumerate().skip(1) {
        let nc = NameConstraintsSpec::from_cert(ca);
        if nc.is_empty() {
            continue;
        }
        for c in &path[..i] {
            let (dns, ips) = super::san_names(c);
            if let Err(problem) = nc.check(&dns, &ips) {
                let kind = if problem.contains("excluded") {
                    "excluded subtree violation"
                } else {
                    "permitted subtree violation"
                };
                return format!("{}: {kind}: {problem} ({})", who(c), who(ca));
            }
        }
    }
    let ca = constraining(path);
    let ca_name = ca.map_or_else(|| "a CA in the path".to_string(), |c| who(c));
    match error {
        webpki::Error::MalformedNameConstraint | webpki::Error::InvalidNetworkMaskConstraint => {
            format!("{ca_name}: has malformed name constraints")
        }
        webpki::Error::MalformedDnsIdentifier => format!(
            "{}: has a malformed DNS name where the constraints of {ca_name} apply",
            path[0].subject()
        ),
        _ => format!(
            "{}: a name in the chain is outside the name constraints of {ca_name} (or of a form they cannot judge: email, directory name, URI)",
            path[0].subject()
        ),
    }
}

fn rfc3339_secs(secs: u64) -> String {
    ::time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .map(crate::x509::rfc3339_time)
        .unwrap_or_else(|_| secs.to_string())
}
