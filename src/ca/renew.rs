//! Renewing what a store issued, from cron.
//!
//! What is due comes from the inventory (one indexed query, not a walk over thousands of
//! files); only the due entries are read from disk, and each is checked before it is
//! replaced: the key on disk must be the certificate's, or nothing is written for it.

use serde::Serialize;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::store::{IssueRequest, Signer, Store};
use crate::cert::{Profile, SubjectNames};
use crate::fsio;
use crate::inventory::Kind;
use crate::key::{read_private_key, KeyAlg, PrivateKey};
use crate::x509::KeyType;
use crate::{Error, Result};

/// Entries of a cluster's store whose names start with this hold identities shared by
/// the cluster's members (`_shared.<identity>`); their rotation policy is the cluster's,
/// so renewing the store alone leaves them to `cluster apply`.
pub const SHARED_ENTRY_PREFIX: &str = "_shared.";

/// What `renew` did.
#[derive(Debug, Default, Serialize)]
pub struct RenewReport {
    /// Valid certificates in the inventory.
    pub checked: usize,
    pub renewed: Vec<Renewed>,
    /// Due, but certmesh cannot renew them itself (signed from a CSR).
    pub skipped: Vec<Problem>,
    pub failed: Vec<Problem>,
}

/// One renewed certificate.
#[derive(Debug, Serialize)]
pub struct Renewed {
    pub name: String,
    pub old_serial: String,
    pub serial: String,
    pub not_after: String,
    pub new_key: bool,
}

/// A certificate that was not renewed, and why.
#[derive(Debug, Serialize)]
pub struct Problem {
    pub name: String,
    pub reason: String,
}

impl Store {
    /// Renews every leaf whose not-after falls within `within` seconds from now, for `days`
    /// (a fixed validity rather than the old one's, so a certificate issued shorter than
    /// the window does not come due again at once). The
    /// signer is asked for only when something is due, so a cron run with nothing to do
    /// never needs the CA passphrase.
    pub fn renew_due(
        &self,
        within: i64,
        days: u32,
        reuse_key: bool,
        signer: &mut dyn FnMut() -> Result<Signer>,
    ) -> Result<RenewReport> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let inventory = self.inventory()?;
        let mut report = RenewReport {
            checked: inventory
                .list(None, false)?
                .iter()
                .filter(|r| r.kind == Kind::Leaf)
                .count(),
            ..Default::default()
        };
        let due: Vec<_> = inventory
            .list(Some(now + within), false)?
            .into_iter()
            .filter(|r| r.kind == Kind::Leaf)
            .collect();
        let mut loaded: Option<Signer> = None;
        for rec in due {
            if rec.name.starts_with(SHARED_ENTRY_PREFIX) {
                report.skipped.push(Problem {
                    name: rec.name.clone(),
                    reason: "an identity shared by a cluster's members: renew it with `certmesh renew --cluster` or `cluster apply`, which follow its rotation policy".into(),
                });
                continue;
            }
            let on_disk = self.issued(&rec.name).is_ok_and(|e| e.exists());
            if rec.paths.is_empty() || !on_disk {
                report.skipped.push(Problem {
                    name: rec.name.clone(),
                    reason: "signed from a CSR: sign a new request to renew it".into(),
                });
                continue;
            }
            let signer = match &loaded {
                Some(s) => s,
                None => loaded.insert(signer()?),
            };
            match self.renew_one(signer, &rec.name, &rec.profile, days, reuse_key) {
                Ok(r) => report.renewed.push(Renewed {
                    old_serial: rec.serial.clone(),
                    ..r
                }),
                Err(e) => report.failed.push(Problem {
                    name: rec.name.clone(),
                    reason: e.to_string(),
                }),
            }
        }
        Ok(report)
    }

    fn renew_one(
        &self,
        signer: &Signer,
        name: &str,
        profile: &str,
        days: u32,
        reuse_key: bool,
    ) -> Result<Renewed> {
        let entry = self.issued(name)?;
        let cert_path = entry.cert_path();
        let key_path = entry.key_path();
        let der = crate::x509::read_certs(&cert_path)?.remove(0);
        let (_, cert) = X509Certificate::from_der(&der)
            .map_err(|_| Error::bad_file(&cert_path, "not a valid certificate"))?;
        let data = zeroize::Zeroizing::new(fsio::read(&key_path)?);
        let key = read_private_key(&key_path, &data, &mut || {
            Err(Error::Secret("issued keys are not encrypted".into()))
        })?;
        if !key.matches(&cert) {
            return Err(Error::KeyMismatch {
                path: Some(key_path),
                problem: format!("does not match {}; not renewing", cert_path.display()),
            });
        }
        let report = crate::cert::describe::describe_cert(&cert, &der);
        let ips: Vec<std::net::IpAddr> = report
            .san
            .ip
            .iter()
            .filter_map(|i| i.parse().ok())
            .collect();
        let alg = alg_of(&key)?;
        let req = IssueRequest {
            name: name.to_string(),
            names: SubjectNames::new(&report.san.dns, &ips)?,
            profile: Profile::parse(if profile.is_empty() {
                "server"
            } else {
                profile
            })?,
            days,
            key: alg,
            replace: true,
            // Kept as the certificate had it (keyAgreement is how an EC key says so).
            data_encipherment: report.key_usage.iter().any(|u| {
                u == "dataEncipherment"
                    || (u == "keyAgreement" && alg.describe().kind == KeyType::Ec)
            }),
        };
        let new_key = if reuse_key {
            key
        } else {
            PrivateKey::generate(alg)?
        };
        let issued = self.issue_with_key(signer, &req, new_key)?;
        Ok(Renewed {
            name: name.to_string(),
            old_serial: String::new(),
            serial: issued.serial,
            not_after: issued.not_after,
            new_key: !reuse_key,
        })
    }
}

/// The generation choice that reproduces a key of this shape.
pub fn alg_of(key: &PrivateKey) -> Result<KeyAlg> {
    let d = key.describe();
    KeyAlg::of_shape(d).ok_or_else(|| Error::Refused(format!("cannot generate a new {d} key")))
}
