//! `cluster status`: per member, when its certificate expires, whether its truststores
//! hold exactly the signers they should, and whether the files on its host are the ones
//! certmesh last wrote.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::deploy::{remote_output, shell_quote};
use super::deployed::{pushed_files, Deployed};
use super::identity::{renew_command, IdentityRecord};
use super::manifest::{Manifest, TrustModel};
use super::profile::{Content, Profiles, Rotation};
use super::resolve::resolve_profiles;
use super::stores::open_stores;
use super::trust::member_trust;
use crate::ca::IssuedEntry;
use crate::duration::RenewWindow;
use crate::verify::Host;
use crate::x509::{colon_hex, sha256};
use crate::Result;

/// A member's certificate.
#[derive(Debug, Serialize)]
pub struct CertStatus {
    pub subject: String,
    pub serial: String,
    pub not_after: String,
    pub days_left: i64,
    /// Whether `certmesh verify` accepts it: its chain up to its root, at this time, for
    /// the member's first name (as a server) when it is the member's own certificate.
    pub verified: bool,
    /// Why not, one line naming the certificate and the rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_error: Option<String>,
    #[serde(skip)]
    not_before: i64,
    #[serde(skip)]
    not_after_unix: i64,
}

/// A truststore file compared with what it should hold.
#[derive(Debug, Serialize)]
pub struct TrustStatus {
    pub file: String,
    /// Subjects of signers that should be there and are not.
    pub missing: Vec<String>,
    /// Subjects of certificates there that the cluster does not call for.
    pub unexpected: Vec<String>,
}

/// The files on a member's host.
#[derive(Debug, Serialize)]
pub struct DeployStatus {
    pub host: String,
    /// `current`, `stale` (local files changed since the last push), `never`, or with
    /// `--remote`, `mismatch` / `unreachable`.
    pub state: String,
    /// Files that differ.
    pub files: Vec<String>,
}

/// An identity of the member with a rotation policy (a shared one, or its own when not
/// `new-key`).
#[derive(Debug, Serialize)]
pub struct IdentityStatus {
    pub identity: String,
    pub shared: bool,
    pub rotation: Rotation,
    pub certificate: Option<CertStatus>,
    /// Set once it is inside its renew window: what happens next, and for `manual` the
    /// command that renews it deliberately.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// One member.
#[derive(Debug, Serialize)]
pub struct MemberStatus {
    pub name: String,
    pub profile: String,
    pub certificate: Option<CertStatus>,
    pub truststores: Vec<TrustStatus>,
    pub deploy: Option<DeployStatus>,
    /// Phase of a CA rollover of the member's CA (0 when none is in progress).
    pub ca_rollover_phase: u8,
    pub identities: Vec<IdentityStatus>,
    /// With `--probe`: what each of the member's TLS endpoints serves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub served: Option<Vec<super::served::Served>>,
}

/// Reports every member of `manifest` as written under `out`. With `remote`, deployed
/// files are compared with the host's copies over SSH instead of the local record.
pub fn status(
    manifest: &Manifest,
    profiles: &Profiles,
    out: &Path,
    remote: bool,
) -> Result<Vec<MemberStatus>> {
    let products = resolve_profiles(manifest, profiles)?;
    let stores = open_stores(manifest, out)?;
    let trust = member_trust(manifest, &stores)?;
    let records = super::identity::read_records(out);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut result = Vec::new();
    for m in &manifest.members {
        let name = m.name.get_ref();
        let product = products[name.as_str()];
        let store = match manifest.trust {
            TrustModel::SharedCa => stores["cluster"].as_ref(),
            TrustModel::Mesh => stores[name.as_str()].as_ref(),
        };
        let host = m
            .dns
            .first()
            .map(|d| Host::Dns(d.clone()))
            .or_else(|| m.ip.first().map(|ip| Host::Ip(*ip)));
        let certificate = store.and_then(|s| entry_status(&s.issued(name).ok()?, host, now));
        let expected: BTreeSet<(String, String)> = trust[name.as_str()]
            .iter()
            .map(|(s, d)| (colon_hex(&sha256(d)), s.clone()))
            .collect();
        let mut truststores = Vec::new();
        for f in product
            .files
            .iter()
            .filter(|f| f.content == Content::TrustBundle)
        {
            let path = out.join(name).join(&f.path);
            let have: BTreeSet<(String, String)> = crate::x509::read_certs(&path)
                .unwrap_or_default()
                .iter()
                .map(|d| (colon_hex(&sha256(d)), subject(d)))
                .collect();
            truststores.push(TrustStatus {
                file: f.path.clone(),
                missing: expected.difference(&have).map(|(_, s)| s.clone()).collect(),
                unexpected: have.difference(&expected).map(|(_, s)| s.clone()).collect(),
            });
        }
        let deploy = m.deploy.as_ref().map(|d| {
            let dir = out.join(name);
            let record = Deployed::read(&dir);
            let local: Vec<(String, String)> = pushed_files(&dir, product)
                .map(|f| {
                    (
                        f.path.clone(),
                        std::fs::read(dir.join(&f.path))
                            .map(|b| hex::encode(sha256(&b)))
                            .unwrap_or_default(),
                    )
                })
                .collect();
            if remote {
                let list: Vec<String> = local.iter().map(|(p, _)| shell_quote(p)).collect();
                let script = format!(
                    "cd -- {} && sha256sum -- {} 2>/dev/null; true",
                    shell_quote(&d.dir),
                    list.join(" ")
                );
                return match remote_output(d, &script, b"") {
                    Ok(out) => {
                        let text = String::from_utf8_lossy(&out);
                        let differing: Vec<String> = local
                            .iter()
                            .filter(|(p, h)| {
                                !text.lines().any(|l| {
                                    l.starts_with(h.as_str()) && l.trim_end().ends_with(p.as_str())
                                })
                            })
                            .map(|(p, _)| p.clone())
                            .collect();
                        DeployStatus {
                            host: d.host.clone(),
                            state: if differing.is_empty() {
                                "current"
                            } else {
                                "mismatch"
                            }
                            .into(),
                            files: differing,
                        }
                    }
                    Err(e) => DeployStatus {
                        host: d.host.clone(),
                        state: "unreachable".into(),
                        files: vec![e],
                    },
                };
            }
            match record {
                None => DeployStatus {
                    host: d.host.clone(),
                    state: "never".into(),
                    files: local.into_iter().map(|(p, _)| p).collect(),
                },
                Some(r) => {
                    let differing: Vec<String> = local
                        .into_iter()
                        .filter(|(p, h)| r.files.get(p) != Some(h))
                        .map(|(p, _)| p)
                        .collect();
                    DeployStatus {
                        host: d.host.clone(),
                        state: if differing.is_empty() {
                            "current"
                        } else {
                            "stale"
                        }
                        .into(),
                        files: differing,
                    }
                }
            }
        });
        let ca_rollover_phase = match store {
            Some(s) => s.rollover_status()?.phase,
            None => 0,
        };
        let identities = records
            .iter()
            .filter(|r| r.members.iter().any(|x| x == name))
            .map(|r| identity_status(manifest, out, r, now))
            .collect();
        result.push(MemberStatus {
            name: name.clone(),
            profile: product.name.clone(),
            certificate,
            truststores,
            deploy,
            ca_rollover_phase,
            identities,
            served: None,
        });
    }
    Ok(result)
}

fn identity_status(
    manifest: &Manifest,
    out: &Path,
    r: &IdentityRecord,
    now: i64,
) -> IdentityStatus {
    let cert = IssuedEntry::at(&out.join(&r.store), &r.entry)
        .ok()
        .and_then(|e| entry_status(&e, None, now));
    let warning = cert.as_ref().and_then(|rep| {
        let due = RenewWindow::parse(&r.renew_before)
            .map(|w| w.is_due(rep.not_before, rep.not_after_unix, now))
            .unwrap_or(false);
        due.then(|| match r.rotation {
            Rotation::Manual => format!(
                "expires in {} days and rotation is manual, so renew and apply leave it: renew it deliberately with `{}`",
                rep.days_left,
                renew_command(&manifest.path, out, &r.identity)
            ),
            Rotation::ReuseKey => format!(
                "expires in {} days: the next apply or renew certifies the same key again",
                rep.days_left
            ),
            Rotation::NewKey => format!(
                "expires in {} days: the next apply or renew replaces it",
                rep.days_left
            ),
        })
    });
    IdentityStatus {
        identity: r.identity.clone(),
        shared: r.shared,
        rotation: r.rotation,
        certificate: cert,
        warning,
    }
}

/// An `issued/NAME` entry as `certmesh verify` judges it: `cert.pem` with the
/// intermediates of `chain.pem`, anchored at the root in `ca.pem`, at `now`; `host`
/// (checked as a server name) when given. `None` when there is no readable certificate.
fn entry_status(entry: &IssuedEntry, host: Option<Host>, now: i64) -> Option<CertStatus> {
    let der = crate::x509::read_certs(&entry.cert_path())
        .ok()?
        .into_iter()
        .next()?;
    let (_, c) = X509Certificate::from_der(&der).ok()?;
    let r = crate::cert::describe::describe_cert(&c, &der);
    let chain = crate::x509::read_certs(&entry.chain_path()).unwrap_or_default();
    let anchors = crate::x509::read_certs(&entry.ca_path()).unwrap_or_default();
    let verdict = crate::verify::verify(
        &der,
        &chain,
        &anchors,
        &crate::verify::Options {
            at: now,
            host,
            ..Default::default()
        },
    );
    Some(CertStatus {
        subject: r.subject,
        serial: r.serial,
        not_after: r.not_after,
        days_left: r.days_left,
        verified: verdict.ok,
        verify_error: verdict.error,
        not_before: c.validity().not_before.timestamp(),
        not_after_unix: c.validity().not_after.timestamp(),
    })
}

fn subject(der: &[u8]) -> String {
    X509Certificate::from_der(der)
        .map(|(_, c)| c.subject().to_string())
        .unwrap_or_default()
}

/// Every member's endpoints probed once (`cluster status --probe`), by member name.
pub fn probe_members(
    manifest: &Manifest,
    profiles: &Profiles,
    out: &Path,
    settings: &super::served::ProbeSettings,
) -> Result<std::collections::BTreeMap<String, Vec<super::served::Served>>> {
    let products = super::resolve::resolve_profiles(manifest, profiles)?;
    let stores = super::stores::open_stores(manifest, out)?;
    let expected = super::served::Expected::new(manifest, &stores)?;
    let jobs: Vec<(&super::manifest::Member, crate::probe::Endpoint)> = manifest
        .members
        .iter()
        .flat_map(|m| {
            super::served::endpoints(m, products[m.name.get_ref().as_str()])
                .into_iter()
                .map(move |e| (m, e))
        })
        .collect();
    let results = crate::probe::bounded_map(&jobs, settings.parallel, |(m, e)| {
        expected.check(m, e, settings)
    });
    let mut by_member: std::collections::BTreeMap<String, Vec<super::served::Served>> =
        Default::default();
    for ((m, _), r) in jobs.iter().zip(results) {
        by_member
            .entry(m.name.get_ref().clone())
            .or_default()
            .push(r);
    }
    Ok(by_member)
}
