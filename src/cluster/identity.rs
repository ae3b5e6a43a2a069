//! Identities beyond a member's own certificate: keys shared by a group of members (WSO2's
//! primary and internal keystores, SecureTransport's cluster certificate), the rotation
//! policy of each identity, and the record `check` and `cluster status` read.
//!
//! A product that encrypts with a key (WSO2 encrypts secrets and tokens, SecureTransport
//! encrypts cluster traffic) needs the same key on every node, and loses its data when the
//! key changes. So such an identity is issued once per group, written into every member's
//! files, and renewed by the policy its profile states rather than "new key when due".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::decide::{LeafAction, Wanted};
use super::manifest::{Manifest, Member, Shared, TrustModel, SHARED_PREFIX};
use super::options::Options;
use super::profile::{ProductProfile, Rotation, MEMBER};
use super::render::{State, STATE_FILE};
use crate::cert::SubjectNames;
use crate::duration::RenewWindow;
use crate::fsio::{self, Overwrite};
use crate::key::KeyAlg;
use crate::Result;

/// One group of members sharing an identity.
pub(crate) struct SharedGroup {
    pub identity: String,
    /// Its entry in the CA store: `_shared.<identity>[.<group>]`.
    pub entry: String,
    pub members: Vec<String>,
    /// The store that signs it: the cluster CA, or with mesh trust the first member's.
    pub store_id: String,
    pub rotation: Rotation,
    pub want: Wanted,
    pub renew_before: String,
}

/// Resolves every shared identity the members' profiles declare into groups: the
/// manifest's `[[shared]]` entries that name members first, then those that do not, then
/// one implicit group per identity for the members left.
pub(crate) fn resolve_shared(
    manifest: &Manifest,
    products: &BTreeMap<&str, &ProductProfile>,
) -> Result<Vec<SharedGroup>> {
    let has = |m: &Member, id: &str| {
        products[m.name.get_ref().as_str()]
            .shared_identities()
            .any(|i| i == id)
    };
    let mut groups: Vec<SharedGroup> = Vec::new();
    let taken = |groups: &[SharedGroup], id: &str, m: &str| {
        groups
            .iter()
            .any(|g| g.identity == id && g.members.iter().any(|x| x == m))
    };
    let mut entries: Vec<&Shared> = manifest.shared.iter().collect();
    entries.sort_by_key(|sh| sh.members.is_empty());
    for sh in entries {
        let id = sh.identity.get_ref();
        let err = |p: String| manifest.shared_error(sh.identity.span(), p);
        for n in &sh.members {
            let m = manifest
                .members
                .iter()
                .find(|m| m.name.get_ref() == n)
                .expect("checked on load");
            if !has(m, id) {
                return Err(err(format!(
                    "member '{n}' (profile '{}') has no shared identity '{id}'",
                    manifest.profile_of(m)
                )));
            }
        }
        let members: Vec<&Member> = manifest
            .members
            .iter()
            .filter(|m| has(m, id))
            .filter(|m| sh.members.is_empty() || sh.members.contains(m.name.get_ref()))
            .filter(|m| !taken(&groups, id, m.name.get_ref()))
            .collect();
        if members.is_empty() {
            return Err(err(format!(
                "no member is left to share identity '{id}' (no member's profile declares it, or other [[shared]] entries took them all)"
            )));
        }
        let entry = match &sh.group {
            Some(g) => format!("{SHARED_PREFIX}{id}.{g}"),
            None => format!("{SHARED_PREFIX}{id}"),
        };
        if groups.iter().any(|g| g.entry == entry) {
            return Err(err(format!(
                "identity '{id}' has two groups without distinct 'group' names"
            )));
        }
        groups.push(group(manifest, products, id, entry, &members, Some(sh))?);
    }
    for m in &manifest.members {
        let product = products[m.name.get_ref().as_str()];
        for id in product.shared_identities() {
            if taken(&groups, id, m.name.get_ref()) {
                continue;
            }
            let entry = format!("{SHARED_PREFIX}{id}");
            if groups.iter().any(|g| g.entry == entry) {
                return Err(manifest.member_error(
                    m,
                    format!(
                        "member '{}' is in no [[shared]] group of identity '{id}'; name it in one",
                        m.name.get_ref()
                    ),
                ));
            }
            let members: Vec<&Member> = manifest
                .members
                .iter()
                .filter(|x| has(x, id) && !taken(&groups, id, x.name.get_ref()))
                .collect();
            groups.push(group(manifest, products, id, entry, &members, None)?);
        }
    }
    Ok(groups)
}

fn group(
    manifest: &Manifest,
    products: &BTreeMap<&str, &ProductProfile>,
    id: &str,
    entry: String,
    members: &[&Member],
    sh: Option<&Shared>,
) -> Result<SharedGroup> {
    let first = members[0];
    let ident = products[first.name.get_ref().as_str()].identity(id)?;
    let key = match sh.and_then(|s| s.key.as_ref()) {
        Some(k) => {
            let at = |p: String| manifest.shared_error(k.span(), p);
            let alg = KeyAlg::parse(k.get_ref()).map_err(|e| at(e.to_string()))?;
            ident.accepts(alg).map_err(at)?;
            alg
        }
        // The manifest's default key type when the product can use it, else the
        // profile's first choice.
        None => {
            let default = KeyAlg::parse(&manifest.defaults.key)?;
            match ident.keys.first() {
                Some(k) if ident.accepts(default).is_err() => *k,
                _ => default,
            }
        }
    };
    let names = match sh {
        Some(s) if !s.dns.is_empty() || !s.ip.is_empty() => SubjectNames::new(&s.dns, &s.ip)?,
        _ => {
            let mut dns: Vec<String> = Vec::new();
            let mut ip = Vec::new();
            for m in members {
                dns.extend(m.dns.iter().cloned());
                ip.extend(m.ip.iter().copied());
            }
            ip.sort();
            ip.dedup();
            SubjectNames::new(&dns, &ip).map_err(|e| manifest.member_error(first, e.to_string()))?
        }
    };
    let renew_before = sh
        .and_then(|s| s.renew_before.clone())
        .unwrap_or_else(|| manifest.defaults.renew_before.clone());
    let window = RenewWindow::parse(&renew_before)?;
    let store_id = match manifest.trust {
        TrustModel::SharedCa => "cluster".to_string(),
        TrustModel::Mesh => first.name.get_ref().clone(),
    };
    Ok(SharedGroup {
        identity: id.to_string(),
        entry,
        members: members.iter().map(|m| m.name.get_ref().clone()).collect(),
        store_id,
        rotation: sh
            .and_then(|s| s.rotation.as_ref())
            .map(|r| *r.get_ref())
            .unwrap_or(ident.rotation),
        want: Wanted {
            data_encipherment: ident.data_encipherment,
            names,
            cert_profile: ident.cert_profile,
            key,
            days: sh.and_then(|s| s.days).unwrap_or(manifest.defaults.days),
            window,
        },
        renew_before,
    })
}

/// Where a certificate's key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeySource {
    New,
    /// The key already on disk (the identity's own, or an adopted member's).
    Existing(PathBuf),
}

/// Applies an identity's rotation policy and the run's deliberate flags to what the
/// certificate's state calls for. `reusable`: the current key matches its certificate and
/// the wanted key type, so it can be certified again.
pub(crate) fn decide(
    action: LeafAction,
    reusable: bool,
    rotation: Rotation,
    identity: &str,
    key_path: PathBuf,
    opts: &Options<'_>,
) -> (LeafAction, Option<KeySource>) {
    let keep_key = |reason: String| {
        if reusable {
            (
                LeafAction::Renew { reason },
                Some(KeySource::Existing(key_path.clone())),
            )
        } else {
            (
                LeafAction::Held {
                    reason: format!(
                        "{reason}; rotation {} keeps the key, and this one cannot be kept: give it a new key deliberately with --rekey-identity {identity}",
                        rotation.name()
                    ),
                },
                None,
            )
        }
    };
    match action {
        LeafAction::Issue => (LeafAction::Issue, Some(KeySource::New)),
        _ if opts.rekey(identity) => (
            LeafAction::Renew {
                reason: format!("new key requested (--rekey-identity {identity})"),
            },
            Some(KeySource::New),
        ),
        LeafAction::Keep if opts.renew(identity) => {
            let reason = format!("renewal requested (--renew-identity {identity})");
            if rotation == Rotation::NewKey {
                (LeafAction::Renew { reason }, Some(KeySource::New))
            } else {
                keep_key(reason)
            }
        }
        LeafAction::Keep => (LeafAction::Keep, None),
        LeafAction::Held { .. } => (action, None),
        LeafAction::Renew { reason } => match rotation {
            Rotation::NewKey => (LeafAction::Renew { reason }, Some(KeySource::New)),
            Rotation::ReuseKey => keep_key(reason),
            Rotation::Manual if opts.renew(identity) => keep_key(reason),
            Rotation::Manual => (
                LeafAction::Held {
                    reason: format!(
                        "{reason}; rotation is manual: renew it deliberately with --renew-identity {identity}"
                    ),
                },
                None,
            ),
        },
    }
}

/// The record of identities with a policy other than "new key when due", kept at
/// `OUT/pki/identities.json` for `check` and `cluster status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdentityRecord {
    pub identity: String,
    /// The store entry holding its key and certificate.
    pub entry: String,
    /// The CA store's directory, relative to the output directory.
    pub store: String,
    pub members: Vec<String>,
    pub shared: bool,
    pub rotation: Rotation,
    pub renew_before: String,
}

/// File name of the record, in `OUT/pki/`.
pub const IDENTITIES_FILE: &str = "identities.json";

/// Reads the record of a cluster applied to `out` (empty when there is none).
pub fn read_records(out: &Path) -> Vec<IdentityRecord> {
    std::fs::read(out.join("pki").join(IDENTITIES_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Writes the record when it differs from what is on disk; true when it did.
pub(crate) fn write_records(out: &Path, records: &[IdentityRecord]) -> Result<bool> {
    if read_records(out) == records {
        return Ok(false);
    }
    let path = out.join("pki").join(IDENTITIES_FILE);
    if records.is_empty() && !path.exists() {
        return Ok(false);
    }
    let json = serde_json::to_vec_pretty(records).expect("records serialize");
    fsio::write_file(&path, &json, fsio::PUBLIC, Overwrite::Replace)?;
    Ok(true)
}

/// The deliberate command that renews a `manual` identity, for warnings.
pub fn renew_command(manifest: &Path, out: &Path, identity: &str) -> String {
    format!(
        "certmesh cluster apply {} --out {} --renew-identity {identity}",
        manifest.display(),
        out.display()
    )
}

/// Files of a member applied before whose key would change against their identity's
/// policy: a file now holding another identity than it did (a member's own key becoming
/// the shared one), or a new file for a key-keeping identity (the product would start
/// using a different key than before). Returns `(path, reason)` per file.
pub(crate) fn migration_blocks(
    dir: &Path,
    product: &ProductProfile,
    rotation_of: &dyn Fn(&str) -> Rotation,
    opts: &Options<'_>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    // Only files of identities that keep their key can be a migration: with none, the
    // member's state is not read at all (what keeps a no-op run of a large cluster cheap).
    let kept: Vec<(&super::profile::FileSpec, &str, Rotation)> = product
        .files
        .iter()
        .map(|f| (f, f.identity(), rotation_of(f.identity())))
        .filter(|(_, id, rotation)| {
            *rotation != Rotation::NewKey && !opts.rekey(id) && opts.adopt(id).is_none()
        })
        .collect();
    if kept.is_empty() {
        return out;
    }
    let Some(old): Option<State> = std::fs::read(dir.join(STATE_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
    else {
        return out;
    };
    for (f, id, rotation) in kept {
        let recorded = old.get(&f.path).and_then(|s| s.identity.clone());
        let exists = dir.join(&f.path).exists();
        if recorded.as_deref().unwrap_or(MEMBER) == id && (exists || recorded.is_some()) {
            continue;
        }
        let what = if exists {
            format!(
                "now holds identity '{id}' instead of {}",
                recorded.as_deref().unwrap_or("the member's own key")
            )
        } else {
            format!("is new and holds identity '{id}', so the product would use a new key")
        };
        out.insert(
            f.path.clone(),
            format!(
                "{what} (rotation {}): data encrypted with the key it used is lost; rerun with --adopt-key {id}=MEMBER (keep that member's key) or --rekey-identity {id} (a new key)",
                rotation.name()
            ),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::options::Silent;

    fn opts<'a>(renew: &'a [String], rekey: &'a [String]) -> Options<'a> {
        Options {
            dry_run: false,
            deploy: false,
            parallel: 1,
            wait: false,
            keep_certificates: false,
            renew_identities: renew,
            rekey_identities: rekey,
            adopt_keys: &[],
            progress: &Silent,
            roll: Default::default(),
        }
    }

    #[test]
    fn policies_decide_the_key() {
        let due = || LeafAction::Renew {
            reason: "expires in 3 days".into(),
        };
        let path = PathBuf::from("k.pem");
        let none: Vec<String> = Vec::new();
        let o = opts(&none, &none);
        let d = |rotation, reusable| decide(due(), reusable, rotation, "x", path.clone(), &o);
        assert_eq!(d(Rotation::NewKey, true).1, Some(KeySource::New));
        assert_eq!(
            d(Rotation::ReuseKey, true).1,
            Some(KeySource::Existing(path.clone()))
        );
        // A key that cannot be kept is held, not silently replaced.
        let (held, source) = d(Rotation::ReuseKey, false);
        assert!(matches!(held, LeafAction::Held { .. }) && source.is_none());
        let (held, source) = d(Rotation::Manual, true);
        match held {
            LeafAction::Held { reason } => assert!(reason.contains("--renew-identity x")),
            other => panic!("{other:?}"),
        }
        assert!(source.is_none());
        // Deliberately: renewed with the same key, or a new one.
        let named = vec!["x".to_string()];
        let o = opts(&named, &none);
        let (a, s) = decide(due(), true, Rotation::Manual, "x", path.clone(), &o);
        assert!(a.issues() && s == Some(KeySource::Existing(path.clone())));
        let (a, s) = decide(
            LeafAction::Keep,
            true,
            Rotation::Manual,
            "x",
            path.clone(),
            &o,
        );
        assert!(a.issues() && s == Some(KeySource::Existing(path.clone())));
        let (a, s) = decide(
            LeafAction::Keep,
            true,
            Rotation::Manual,
            "y",
            path.clone(),
            &o,
        );
        assert!(a == LeafAction::Keep && s.is_none());
        let o = opts(&none, &named);
        let (a, s) = decide(
            LeafAction::Keep,
            true,
            Rotation::Manual,
            "x",
            path.clone(),
            &o,
        );
        assert!(a.issues() && s == Some(KeySource::New));
    }
}
