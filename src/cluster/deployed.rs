//! What was last pushed to each member (`.certmesh-deployed.json` in its directory), so
//! unchanged files are not pushed again, a failed push is retried by the next run, and
//! `cluster status` can tell a member whose files changed since.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::deploy::{push, DeployReport, PushFile};
use super::manifest::Deploy;
use super::profile::{Content, ProductProfile};
use crate::fsio::{self, Overwrite};
use crate::Result;

/// File name of the record, in the member's directory.
pub const DEPLOYED: &str = ".certmesh-deployed.json";

/// Record of what was last pushed to a member.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Deployed {
    pub host: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub dir: String,
    /// SHA-256 (hex) of each file as pushed.
    pub files: BTreeMap<String, String>,
}

impl Deployed {
    /// The record in member directory `dir`; `None` when there is none or it does not
    /// parse (everything is pushed again then).
    pub fn read(dir: &Path) -> Option<Deployed> {
        std::fs::read(dir.join(DEPLOYED))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    }

    /// An empty record of a push to `d`.
    fn to(d: &Deploy) -> Deployed {
        Deployed {
            host: d.host.clone(),
            port: d.port,
            user: d.user.clone(),
            dir: d.dir.clone(),
            files: BTreeMap::new(),
        }
    }

    /// True when this record is of a push to the same place as `d`.
    fn same_target(&self, d: &Deploy) -> bool {
        self.host == d.host && self.port == d.port && self.user == d.user && self.dir == d.dir
    }
}

/// The files of a member that are pushed: every file of its profile, except a CRL the
/// CA has not written yet.
pub fn pushed_files<'a>(
    dir: &'a Path,
    product: &'a ProductProfile,
) -> impl Iterator<Item = &'a super::profile::FileSpec> + 'a {
    product
        .files
        .iter()
        .filter(move |f| f.content != Content::Crl || dir.join(&f.path).exists())
}

/// Pushes a member's files that differ from what was last pushed, and reloads it.
pub fn deploy_member(dir: &Path, d: &Deploy, product: &ProductProfile) -> Result<DeployReport> {
    let before = Deployed::read(dir)
        .filter(|s| s.same_target(d))
        .unwrap_or_default();
    let mut now = Deployed::to(d);
    let mut contents = Vec::new();
    for f in pushed_files(dir, product) {
        let path = dir.join(&f.path);
        let bytes = zeroize::Zeroizing::new(fsio::read(&path)?);
        let digest = hex::encode(crate::x509::sha256(&bytes));
        now.files.insert(f.path.clone(), digest.clone());
        if before.files.get(&f.path) != Some(&digest) {
            contents.push((f.path.as_str(), bytes, f.mode()?));
        }
    }
    if contents.is_empty() {
        return Ok(DeployReport {
            host: d.host.clone(),
            files: Vec::new(),
            reloaded: false,
            error: None,
        });
    }
    let files: Vec<PushFile<'_>> = contents
        .iter()
        .map(|(p, b, m)| PushFile {
            path: p,
            bytes: b,
            mode: *m,
        })
        .collect();
    let reload = d.reload.as_deref().or(product.reload.as_deref());
    let report = push(d, &files, reload);
    if report.error.is_none() {
        let json = serde_json::to_vec_pretty(&now).expect("state serializes");
        fsio::write_file(
            &dir.join(DEPLOYED),
            &json,
            fsio::PRIVATE,
            Overwrite::Replace,
        )?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(host: &str, dir: &str) -> Deploy {
        Deploy {
            host: host.into(),
            user: None,
            port: None,
            dir: dir.into(),
            owner: None,
            reload: None,
            allow_shared_dir: false,
        }
    }

    #[test]
    fn a_record_counts_only_for_the_place_it_was_pushed_to() {
        let d = deploy("web1", "/etc/nginx/tls");
        let rec = Deployed::to(&d);
        assert!(rec.same_target(&d));
        assert!(!rec.same_target(&deploy("web2", "/etc/nginx/tls")));
        assert!(!rec.same_target(&deploy("web1", "/etc/nginx")));
        let mut other_port = d.clone();
        other_port.port = Some(2222);
        assert!(!rec.same_target(&other_port));
    }

    #[test]
    fn a_missing_or_unreadable_record_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Deployed::read(dir.path()), None);
        std::fs::write(dir.path().join(DEPLOYED), b"{not json").unwrap();
        assert_eq!(Deployed::read(dir.path()), None);
        let mut rec = Deployed::to(&deploy("web1", "/srv"));
        rec.files.insert("a.pem".into(), "00".into());
        std::fs::write(dir.path().join(DEPLOYED), serde_json::to_vec(&rec).unwrap()).unwrap();
        assert_eq!(Deployed::read(dir.path()), Some(rec));
    }
}
