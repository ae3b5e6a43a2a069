//! Converging a cluster on disk: the CA (or one signer per member), one certificate per
//! member, and each member's files in the form its product needs.
//!
//! `plan` and `apply` are one computation; `plan` stops before writing. A second `apply`
//! with nothing due writes nothing: a file is rewritten only when its bytes would differ.
//!
//! A run is a pipeline of phases, each a function below over the data the one before it
//! made:
//!
//! 1. resolve ([`super::resolve`]): the manifest against the profiles, every string
//!    parsed, every file it names read;
//! 2. decide ([`decide`], [`super::decide`]): per certificate keep, issue, renew or hold,
//!    and where its key comes from; per file, migrations that need a deliberate flag;
//! 3. issue, render and write ([`issue_and_write`]): missing CAs, keys, certificates, and
//!    each member's files, overlapped so that writing starts with the first key;
//! 4. record ([`record_identities`]): the identities with a rotation policy;
//! 5. deploy ([`deploy`]): push changed files and reload, in the order `roll` gives;
//! 6. advance rollover ([`advance_rollovers`]): move a CA rollover on once the cluster
//!    has caught up with it.

use std::collections::BTreeMap;
use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;

use super::decide::{
    current_state, read_issued_key, read_key, Chains, Current, IssuerView, Wanted,
};
use super::deploy::DeployReport;
use super::deployed::deploy_member;
use super::identity::{
    decide as policy, migration_blocks, write_records, IdentityRecord, KeySource,
};
use super::manifest::{Manifest, Member, TrustModel};
use super::profile::{Content, ProductProfile, Rotation, MEMBER};
use super::render::{FileState, Inputs, Material, Planned, State, STATE_FILE};
use super::resolve::{ca_passphrase, resolve, Resolved};
use super::secrets::member_password;
use super::stores::{store_dir, store_id, store_id_of, store_rel, Stores};
use super::trust::{member_trust, routed_signers};
use crate::ca::{
    Advance, CaInit, IntermediateInit, IssueBatch, IssueRequest, IssuedEntry, Signer, Store,
};
use crate::cert::constraints::NameConstraintsSpec;
use crate::fsio::{self, StoreLock, PRIVATE_DIR};
use crate::key::token::TokenRef;
use crate::key::PrivateKey;
use crate::pass::{PassSource, Secret};
use crate::{Error, Result};

pub use super::decide::LeafAction;
pub use super::options::{Options, Progress, Silent};
// Where other commands find a cluster's stores and profiles.
pub use super::resolve::resolve_profiles;
pub use super::stores::{cluster_stores, open_stores};

/// What happened (or would happen) to one file.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FileAction {
    pub path: String,
    pub action: FileChange,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The change a run makes to one file, serialized as its lowercase name.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FileChange {
    Create,
    Update,
    Unchanged,
    /// A migration that needs a deliberate flag (see [`FileAction::reason`]).
    Blocked,
}

impl FileChange {
    /// The name plans, reports and `--json` use.
    pub fn name(self) -> &'static str {
        match self {
            FileChange::Create => "create",
            FileChange::Update => "update",
            FileChange::Unchanged => "unchanged",
            FileChange::Blocked => "blocked",
        }
    }
}

impl std::fmt::Display for FileChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// What happened (or would happen) to a shared identity's certificate.
#[derive(Debug, Clone, Serialize)]
pub struct SharedReport {
    pub identity: String,
    /// Its entry in the CA store (`_shared.<identity>[.<group>]`).
    pub entry: String,
    pub members: Vec<String>,
    pub rotation: Rotation,
    pub certificate: LeafAction,
    /// `new`, `kept` or `adopted` when a certificate is issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// One member's part of a run.
#[derive(Debug, Clone, Serialize)]
pub struct MemberReport {
    pub name: String,
    pub profile: String,
    pub certificate: LeafAction,
    /// Subjects of the signers the member's truststores hold.
    pub trusts: Vec<String>,
    pub files: Vec<FileAction>,
    /// The push to the member's host, with `--deploy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy: Option<DeployReport>,
}

/// The result of `plan` or `apply`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub cluster: String,
    pub dry_run: bool,
    /// CA stores created in this run.
    pub created_cas: Vec<String>,
    pub members: Vec<MemberReport>,
    /// Identities shared by groups of members.
    pub shared: Vec<SharedReport>,
    /// True when anything was (or would be) written.
    pub changed: bool,
    /// True when a deploy failed.
    pub failed: bool,
    /// With `--deploy`: each member's deploy in the order it started, with the wait for
    /// its new certificate to be served.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roll: Vec<super::roll::RollStep>,
}

/// Runs (or with `dry_run`, plans) the convergence of `manifest` into `out`.
pub fn apply(
    manifest: &Manifest,
    profiles: &super::profile::Profiles,
    out: &Path,
    opts: Options<'_>,
) -> Result<Report> {
    let dry_run = opts.dry_run;
    fsio::check_dir_chain(out)?;
    let resolved = resolve(manifest, profiles, &opts)?;
    let blocked = migrations(&resolved, out, &opts)?;
    let ca_pass = ca_passphrase(manifest)?;
    if !dry_run {
        fsio::create_dir(out, PRIVATE_DIR)?;
    }
    let _lock = if out.exists() {
        Some(StoreLock::acquire(&out.join(".lock"), opts.wait)?)
    } else {
        None
    };
    let mut stores = super::stores::open_stores(manifest, out)?;
    let created_cas: Vec<String> = stores
        .iter()
        .filter(|(_, s)| s.is_none())
        .map(|(id, _)| id.clone())
        .collect();
    let decisions = decide(&resolved, &stores, out, &opts)?;
    let run = Run {
        resolved: &resolved,
        out,
        opts: &opts,
        ca_pass: ca_pass.as_ref(),
        blocked: &blocked,
    };
    let (reports, shared) = issue_and_write(&run, &mut stores, &created_cas, decisions)?;
    let mut changed = !created_cas.is_empty() || shared.iter().any(|s| s.certificate.issues());
    if !dry_run {
        changed |= record_identities(&resolved, out)?;
    }
    let mut reports = reports;
    for report in &reports {
        changed |= report.certificate.issues()
            || report
                .files
                .iter()
                .any(|f| f.action != FileChange::Unchanged);
    }
    let mut failed = false;
    let mut roll = Vec::new();
    if opts.deploy && !dry_run {
        let (deploy_changed, deploy_failed, steps) = deploy(&run, &stores, &mut reports)?;
        changed |= deploy_changed;
        failed |= deploy_failed;
        roll = steps;
    }
    if !dry_run && !failed {
        changed |= advance_rollovers(&run, &mut stores)?;
    }
    Ok(Report {
        cluster: manifest.name.clone(),
        dry_run,
        created_cas,
        members: reports,
        shared,
        changed,
        failed,
        roll,
    })
}

/// What a run works from after it has resolved the manifest: shared by the phases that
/// follow.
struct Run<'r, 'a> {
    resolved: &'r Resolved<'a>,
    out: &'r Path,
    opts: &'r Options<'r>,
    ca_pass: Option<&'r Secret>,
    /// Per member, files a migration blocks, with the reason.
    blocked: &'r BTreeMap<String, BTreeMap<String, String>>,
}

impl Run<'_, '_> {
    /// The signer of CA `ca` in `store`, with the manifest's passphrase when its key is
    /// encrypted.
    fn signer(&self, store: &Store, ca: &str) -> Result<Signer> {
        store.signer(ca, &mut || {
            self.ca_pass.cloned().ok_or_else(|| {
                Error::Secret(format!(
                    "the CA key in {} is encrypted: set [ca] key_pass in the manifest",
                    store.home().display()
                ))
            })
        })
    }
}

/// Phase 2a: a member applied before whose files would change key against their policy is
/// a migration: planned and explained, and applied only with a deliberate flag (a real
/// run stops at the first).
fn migrations(
    resolved: &Resolved<'_>,
    out: &Path,
    opts: &Options<'_>,
) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
    let mut blocked = BTreeMap::new();
    for m in &resolved.manifest.members {
        let name = m.name.get_ref();
        let product = resolved.product(m);
        let b = migration_blocks(
            &out.join(name),
            product,
            &|id| resolved.rotation_of(m, id),
            opts,
        );
        let first = product.files.iter().find_map(|f| b.get_key_value(&f.path));
        if let Some((path, reason)) = first {
            if !opts.dry_run {
                return Err(Error::Refused(format!(
                    "{}: {reason} (`certmesh cluster plan` lists every such file)",
                    out.join(name).join(path).display()
                )));
            }
        }
        if !b.is_empty() {
            blocked.insert(name.clone(), b);
        }
    }
    Ok(blocked)
}

/// What phase 2 decided for one member's certificate.
struct MemberDecision {
    action: LeafAction,
    /// Where the key of a certificate to issue comes from.
    source: Option<KeySource>,
    /// The key and certificates read while deciding, when they are kept: the files are
    /// rendered from them without reading them again.
    material: Option<Material>,
}

/// What phase 2 decided.
struct Decisions {
    members: Vec<MemberDecision>,
    shared: Vec<(SharedReport, Option<KeySource>)>,
}

/// Phase 2b: each certificate's action with its policy applied (every member of a store
/// that does not exist yet is issued). What every member of a store is compared with
/// (the issuing CA, the revoked serials) is read once per store; the members are judged
/// on every core.
fn decide(
    resolved: &Resolved<'_>,
    stores: &Stores,
    out: &Path,
    opts: &Options<'_>,
) -> Result<Decisions> {
    let manifest = resolved.manifest;
    let mut issuers: BTreeMap<&str, IssuerView> = BTreeMap::new();
    for (id, store) in stores {
        if let Some(store) = store {
            issuers.insert(id, IssuerView::load(store)?);
        }
    }
    let key_path = |id: &str, entry: &str| {
        IssuedEntry::at(&store_dir(manifest.trust, out, id), entry).map(|e| e.key_path())
    };
    let chains = Chains::default();
    let members: Vec<Result<MemberDecision>> = manifest
        .members
        .par_iter()
        .zip(&resolved.wants)
        .map(|(m, want)| {
            let id = store_id(manifest.trust, m);
            let name = m.name.get_ref();
            let Current {
                action,
                reusable,
                material,
            } = match &stores[id] {
                None => Current::issue(),
                Some(store) if opts.keep_certificates && store.issued(name)?.exists() => {
                    Current::keep()
                }
                Some(store) => current_state(store, &issuers[id], &chains, name, want)?,
            };
            if opts.keep_certificates {
                return Ok(MemberDecision {
                    action,
                    source: None,
                    material: None,
                });
            }
            let (action, source) = policy(
                action,
                reusable,
                resolved.rotation_of(m, MEMBER),
                MEMBER,
                key_path(id, name)?,
                opts,
            );
            let material = material.filter(|_| !action.issues());
            Ok(MemberDecision {
                action,
                source,
                material,
            })
        })
        .collect();
    let members = members.into_iter().collect::<Result<Vec<_>>>()?;
    let mut shared = Vec::new();
    for g in &resolved.groups {
        let Current {
            action, reusable, ..
        } = match &stores[&g.store_id] {
            None => Current::issue(),
            Some(store) if opts.keep_certificates && store.issued(&g.entry)?.exists() => {
                Current::keep()
            }
            Some(store) => current_state(
                store,
                &issuers[g.store_id.as_str()],
                &chains,
                &g.entry,
                &g.want,
            )?,
        };
        let (mut action, mut source) = if opts.keep_certificates {
            (action, None)
        } else {
            policy(
                action,
                reusable,
                g.rotation,
                &g.identity,
                key_path(&g.store_id, &g.entry)?,
                opts,
            )
        };
        let mut key = None;
        if let Some(member) = opts.adopt(&g.identity) {
            let path = key_path(store_id_of(manifest.trust, member), member)?;
            let adopted = read_key(&path)?;
            let alg = crate::ca::alg_of(&adopted)?;
            if alg != g.want.key {
                return Err(Error::Usage(format!(
                    "--adopt-key {}={member}: its key is {}, the identity's is {}: set key = \"{}\" in the identity's [[shared]] entry",
                    g.identity,
                    alg.name(),
                    g.want.key.name(),
                    alg.name()
                )));
            }
            let current = match &stores[&g.store_id] {
                Some(st) => read_issued_key(&st.issued(&g.entry)?).ok(),
                None => None,
            };
            if current.is_none_or(|k| k.public_key_der() != adopted.public_key_der()) {
                if action != LeafAction::Issue {
                    action = LeafAction::Renew {
                        reason: format!("key adopted from {member} (--adopt-key)"),
                    };
                }
                source = Some(KeySource::Existing(path));
                key = Some("adopted".to_string());
            }
        }
        if key.is_none() {
            key = match &source {
                Some(KeySource::New) => Some("new".into()),
                Some(KeySource::Existing(_)) => Some("kept".into()),
                None => None,
            };
        }
        shared.push((
            SharedReport {
                identity: g.identity.clone(),
                entry: g.entry.clone(),
                members: g.members.clone(),
                rotation: g.rotation,
                certificate: action,
                key,
            },
            source,
        ));
    }
    Ok(Decisions { members, shared })
}

/// Phase 3: creates the missing CAs, refreshes due CRLs, issues what phase 2 decided,
/// and renders and writes every member's files (or with `dry_run`, judges them).
///
/// Key generation is most of a bootstrap's CPU and writing is mostly waiting for fsync,
/// so they overlap: the keys are made on every core (the CPU pool) while this thread
/// creates the missing CAs; each member is then signed and written on the I/O threads as
/// soon as its key is ready, not after the last key.
fn issue_and_write(
    run: &Run<'_, '_>,
    stores: &mut Stores,
    created_cas: &[String],
    decisions: Decisions,
) -> Result<(Vec<MemberReport>, Vec<SharedReport>)> {
    let resolved = run.resolved;
    let manifest = resolved.manifest;
    let (out, opts, dry_run) = (run.out, run.opts, run.opts.dry_run);
    let trust_model = manifest.trust;
    let Decisions { members, shared } = decisions;
    let mut wanted: Vec<(&Member, &Wanted, LeafAction)> = Vec::with_capacity(members.len());
    let mut key_sources = Vec::with_capacity(members.len());
    let mut materials: Vec<std::sync::Mutex<Option<Material>>> = Vec::with_capacity(members.len());
    for ((m, want), d) in manifest.members.iter().zip(&resolved.wants).zip(members) {
        wanted.push((m, want, d.action));
        key_sources.push(d.source);
        materials.push(std::sync::Mutex::new(d.material));
    }
    let due: Vec<(usize, KeySource)> = if dry_run {
        Vec::new()
    } else {
        (0..wanted.len())
            .filter_map(|i| key_sources[i].clone().map(|s| (i, s)))
            .filter(|(i, _)| wanted[*i].2.issues())
            .collect()
    };
    let ca_key = |store: &Store| run.signer(store, &store.issuing().id);
    let cancelled = std::sync::atomic::AtomicBool::new(false);
    let written: Vec<MemberReport> = std::thread::scope(|scope| {
        let (tx, keys) = std::sync::mpsc::channel::<(usize, Result<PrivateKey>)>();
        let (wanted, due, cancelled) = (&wanted, &due, &cancelled);
        scope.spawn(move || {
            due.par_iter().for_each_with(tx, |tx, (i, source)| {
                if cancelled.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                let key = match source {
                    KeySource::New => PrivateKey::generate(wanted[*i].1.key),
                    KeySource::Existing(path) => read_key(path),
                };
                // The receiver is gone only when the run has already failed.
                let _ = tx.send((*i, key));
            })
        });
        let stop = |e: Error| {
            cancelled.store(true, std::sync::atomic::Ordering::Relaxed);
            Err(e)
        };
        if !dry_run {
            // One per member with mesh trust: made on every core too.
            let created: Vec<Result<Store>> = created_cas
                .par_iter()
                .map(|id| create_ca(run, id))
                .collect();
            for (id, store) in created_cas.iter().zip(created) {
                match store {
                    Ok(store) => *stores.get_mut(id).expect("listed above") = Some(store),
                    Err(e) => return stop(e),
                }
            }
        }
        let stores = &*stores;
        let prepared = (|| -> Result<_> {
            // The CRLs of a CA's chain are refreshed before members get their copies, once
            // they near their nextUpdate (stores without a CRL have nothing to refresh).
            if !dry_run {
                for store in stores.values().flatten() {
                    store.refresh_crls(&mut |id| run.signer(store, id))?;
                }
            }
            // Shared identities first: every member of their groups writes them.
            if !dry_run {
                for (g, (report, source)) in resolved.groups.iter().zip(&shared) {
                    let Some(source) = source.as_ref().filter(|_| report.certificate.issues())
                    else {
                        continue;
                    };
                    let store = stores[&g.store_id].as_ref().expect("created above");
                    let key = match source {
                        KeySource::New => PrivateKey::generate(g.want.key)?,
                        KeySource::Existing(path) => read_key(path)?,
                    };
                    let req = issue_request(&g.entry, &g.want);
                    store.issue_with_key(&ca_key(store)?, &req, key)?;
                }
            }
            let mut shared_material: BTreeMap<&str, Material> = BTreeMap::new();
            for g in &resolved.groups {
                if let Some(st) = stores[&g.store_id].as_ref() {
                    if let Some(m) = load_material(st, &g.entry)? {
                        shared_material.insert(&g.entry, m);
                    }
                }
            }
            // Signers and batches: once per store that issues anything.
            let mut signers: BTreeMap<&str, (Signer, IssueBatch<'_>)> = BTreeMap::new();
            for &(i, _) in due {
                let id = store_id(trust_model, wanted[i].0);
                if !signers.contains_key(id) {
                    let store = stores[id].as_ref().expect("created above");
                    signers.insert(id, (ca_key(store)?, store.batch()?));
                }
            }
            // Every member of a store gets the same CRLs, one from each CA of the chain
            // (full-chain checking refuses a chain with a CRL missing): read once.
            let mut crls: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
            for (id, st) in stores {
                if let Some(bundle) = st.as_ref().map(Store::crl_bundle).transpose()?.flatten() {
                    crls.insert(id.as_str(), bundle);
                }
            }
            Ok((
                signers,
                member_trust(manifest, stores)?,
                crls,
                shared_material,
                routed_signers(manifest, stores)?,
            ))
        })();
        let (signers, trust_of, crls, shared_material, routed) = match prepared {
            Ok(p) => p,
            Err(e) => return stop(e),
        };
        opts.progress.start(due.len() as u64);
        // What interrupted runs left beside the members' directories, found with one
        // listing (or, when it cannot be listed, asked member by member).
        let leftovers = (!dry_run).then(|| fsio::DirSwap::leftovers(out)).flatten();
        let member_files = |i: usize| -> Result<MemberReport> {
            let (m, _, action) = &wanted[i];
            let name = m.name.get_ref();
            let product = resolved.product(m);
            let trust = &trust_of[name.as_str()];
            let dir = out.join(name);
            if !dry_run && leftovers.as_ref().is_none_or(|l| l.contains(name)) {
                fsio::DirSwap::clean(&dir)?;
            }
            let id = store_id(trust_model, m);
            let store = stores[id].as_ref();
            let kept = materials[i]
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            let material = match (store, kept) {
                (Some(_), Some(mat)) => Some(mat),
                (Some(st), None) => load_material(st, name)?,
                (None, _) => None,
            };
            let needs_password = product.files.iter().any(|f| {
                f.content.is_secret()
                    && !matches!(
                        f.content,
                        Content::Key | Content::FullchainKey | Content::CertKey
                    )
            });
            let password = if needs_password {
                member_password(m.password.as_deref(), &dir, dry_run)?
            } else {
                Secret::new(String::new())
            };
            let own_root = match (store, &material) {
                (Some(_), Some(mat)) => mat.chain.last().cloned().unwrap_or_default(),
                _ => Vec::new(),
            };
            let base_truststore = match &resolved.base_truststores[i] {
                Some((path, bytes)) => {
                    let pass = match &m.base_truststore_pass {
                        Some(spec) => spec.parse::<PassSource>()?.read()?,
                        None => password.clone(),
                    };
                    Some((path.display().to_string(), bytes.clone(), pass))
                }
                None => None,
            };
            let identities: BTreeMap<String, &Material> = resolved
                .groups
                .iter()
                .filter(|g| g.members.contains(name))
                .filter_map(|g| Some((g.identity.clone(), shared_material.get(g.entry.as_str())?)))
                .collect();
            let inputs = material.as_ref().map(|material| Inputs {
                base_truststore,
                crl: crls.get(id).cloned(),
                member: name,
                product,
                material,
                identities,
                trust,
                routed: &routed[name.as_str()],
                own_root: &own_root,
                password: &password,
                remote_dir: m.deploy.as_ref().map(|d| d.dir.as_str()),
            });
            let none = BTreeMap::new();
            let file_actions = write_member_files(
                &dir,
                inputs.as_ref(),
                product,
                run.blocked.get(name).unwrap_or(&none),
                dry_run,
            )?;
            Ok(MemberReport {
                name: name.clone(),
                profile: product.name.clone(),
                certificate: action.clone(),
                trusts: trust.iter().map(|(s, _)| s.clone()).collect(),
                files: file_actions,
                deploy: None,
            })
        };
        let issue_and_write = |i: usize, key: Result<PrivateKey>| -> Result<MemberReport> {
            let (m, w, _) = &wanted[i];
            let (signer, batch) = &signers[store_id(trust_model, m)];
            batch.issue(signer, &issue_request(m.name.get_ref(), w), key?)?;
            opts.progress.step();
            member_files(i)
        };
        let pool = match fsio::io_pool() {
            Ok(p) => p,
            Err(e) => return stop(e),
        };
        let slots: Vec<std::sync::Mutex<Option<Result<MemberReport>>>> =
            wanted.iter().map(|_| std::sync::Mutex::new(None)).collect();
        let put = |i: usize, r: Result<MemberReport>| {
            if r.is_err() {
                cancelled.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
        };
        let is_due: Vec<bool> = {
            let mut v = vec![false; wanted.len()];
            for (d, _) in due {
                v[*d] = true;
            }
            v
        };
        pool.in_place_scope(|s| {
            for (i, &is_due) in is_due.iter().enumerate() {
                // Members with a key coming are written when it arrives, below.
                if dry_run || !is_due {
                    s.spawn(move |_| put(i, member_files(i)));
                }
            }
            for (i, key) in keys {
                s.spawn(move |_| put(i, issue_and_write(i, key)));
            }
        });
        opts.progress.finish();
        // Whatever was written is recorded, even when another member failed.
        let mut committed = Ok(());
        for (_, (_, batch)) in signers {
            if let Err(e) = batch.commit() {
                committed = committed.and(Err(e));
            }
        }
        committed?;
        // The first failure in member order is the run's error; members left undone
        // after a failure were stopped on its account.
        let mut reports = Vec::with_capacity(slots.len());
        let mut failure = None;
        for slot in slots {
            match slot.into_inner().unwrap_or_else(|e| e.into_inner()) {
                Some(Ok(report)) => reports.push(report),
                Some(Err(e)) => {
                    failure.get_or_insert(e);
                }
                None => {}
            }
        }
        match failure {
            Some(e) => Err(e),
            None if reports.len() != wanted.len() => {
                Err(Error::Crypto("a member's key was not generated".into()))
            }
            None => Ok(reports),
        }
    })?;
    Ok((written, shared.into_iter().map(|(r, _)| r).collect()))
}

/// The request that issues entry `name` as `want` says.
fn issue_request(name: &str, want: &Wanted) -> IssueRequest {
    IssueRequest {
        name: name.to_string(),
        names: want.names.clone(),
        profile: want.cert_profile,
        days: want.days,
        key: want.key,
        replace: true,
        data_encipherment: want.data_encipherment,
    }
}

/// Phase 4: records the identities with a rotation policy (`check` and `cluster status`
/// read it); true when the record changed.
fn record_identities(resolved: &Resolved<'_>, out: &Path) -> Result<bool> {
    let manifest = resolved.manifest;
    let trust_model = manifest.trust;
    let mut records: Vec<IdentityRecord> = resolved
        .groups
        .iter()
        .map(|g| IdentityRecord {
            identity: g.identity.clone(),
            entry: g.entry.clone(),
            store: store_rel(trust_model, &g.store_id),
            members: g.members.clone(),
            shared: true,
            rotation: g.rotation,
            renew_before: g.renew_before.clone(),
        })
        .collect();
    for m in &manifest.members {
        let rotation = resolved.rotation_of(m, MEMBER);
        if rotation != Rotation::NewKey {
            let name = m.name.get_ref();
            records.push(IdentityRecord {
                identity: MEMBER.into(),
                entry: name.clone(),
                store: store_rel(trust_model, store_id(trust_model, m)),
                members: vec![name.clone()],
                shared: false,
                rotation,
                renew_before: m
                    .renew_before
                    .clone()
                    .unwrap_or_else(|| manifest.defaults.renew_before.clone()),
            });
        }
    }
    write_records(out, &records)
}

/// Phase 5: pushes each member's changed files and reloads it, in the order and with the
/// probes `roll` gives. Returns whether anything was pushed, whether a deploy failed,
/// and the roll's steps.
fn deploy(
    run: &Run<'_, '_>,
    stores: &Stores,
    reports: &mut [MemberReport],
) -> Result<(bool, bool, Vec<super::roll::RollStep>)> {
    let (mut changed, mut failed) = (false, false);
    let outcome = super::roll::deploy_all(
        run.resolved.manifest,
        &run.resolved.products,
        stores,
        run.opts.parallel,
        run.opts.roll,
        |m, d, product| deploy_member(&run.out.join(m.name.get_ref()), d, product),
    )?;
    for (report, result) in reports.iter_mut().zip(outcome.deploys) {
        if let Some(r) = result {
            let r = r?;
            failed |= r.error.is_some();
            changed |= !r.files.is_empty();
            report.deploy = Some(r);
        }
    }
    failed |= outcome.steps.iter().any(|s| s.failed());
    Ok((changed, failed, outcome.steps))
}

/// Phase 6: a CA rollover moves on once this run has put the new root in every
/// truststore (phase 1 to 2), and once no leaf chains to the old root any more (2 to 3).
/// True when one moved.
fn advance_rollovers(run: &Run<'_, '_>, stores: &mut Stores) -> Result<bool> {
    let mut changed = false;
    for store in stores.values_mut().flatten() {
        if store.config().rollover.is_none() {
            continue;
        }
        let step = store.advance_rollover(
            Advance::Converged,
            &mut |store, id| run.signer(store, id),
            Some(run.resolved.ca.key),
            &mut || Ok(run.ca_pass.cloned()),
        )?;
        changed |= step.is_some();
    }
    Ok(changed)
}

/// Creates the CA store of signer `id` as `[ca]` says (with an intermediate when asked).
fn create_ca(run: &Run<'_, '_>, id: &str) -> Result<Store> {
    let manifest = run.resolved.manifest;
    let plan = &run.resolved.ca;
    let pass = run.ca_pass;
    let dir = store_dir(manifest.trust, run.out, id);
    let ca = &manifest.ca;
    let base = ca
        .name
        .clone()
        .unwrap_or_else(|| format!("{} CA", manifest.name));
    let name = match manifest.trust {
        TrustModel::SharedCa => base,
        TrustModel::Mesh => format!("{base} {id}"),
    };
    let token = match &ca.pkcs11 {
        Some(uri) => {
            let t = TokenRef::new(uri, ca.pkcs11_module.as_deref().map(Path::new))?;
            match manifest.trust {
                TrustModel::SharedCa => Some(t),
                TrustModel::Mesh => Some(t.sibling(id)?),
            }
        }
        None => None,
    };
    let mut store = Store::init(
        &dir,
        &CaInit {
            name: name.clone(),
            key: plan.key,
            days: ca.days,
            digest: plan.digest,
            constraints: plan.constraints.clone(),
            token: token.clone(),
        },
        pass,
    )?;
    if ca.intermediate {
        let root = store.signer("root", &mut || {
            pass.cloned()
                .ok_or_else(|| Error::Secret("CA passphrase missing".into()))
        })?;
        store.add_intermediate(
            &IntermediateInit {
                name: crate::cert::derived_ca_name(&name, " Intermediate"),
                key: plan.key,
                days: ca.days / 2,
                digest: plan.digest,
                constraints: NameConstraintsSpec::default(),
                token: match &token {
                    Some(t) => Some(t.sibling("intermediate")?),
                    None => None,
                },
            },
            &root,
            pass,
        )?;
    }
    Ok(store)
}

/// Reads an issued entry's key and certificates from its store; `None` when the store
/// has no such entry.
fn load_material(store: &Store, name: &str) -> Result<Option<Material>> {
    let entry = store.issued(name)?;
    if !entry.exists() {
        return Ok(None);
    }
    let key = read_issued_key(&entry)?;
    let leaf = crate::x509::read_certs(&entry.cert_path())?.remove(0);
    let chain = crate::x509::read_certs(&entry.chain_path())?;
    Ok(Some(Material { key, leaf, chain }))
}

/// Writes (or with `dry_run`, judges) one member's files; returns what happened to each.
fn write_member_files(
    dir: &Path,
    inputs: Option<&Inputs<'_>>,
    product: &ProductProfile,
    blocked: &BTreeMap<String, String>,
    dry_run: bool,
) -> Result<Vec<FileAction>> {
    let planned_only = |f: &super::profile::FileSpec| match blocked.get(&f.path) {
        Some(reason) => FileAction {
            path: f.path.clone(),
            action: FileChange::Blocked,
            reason: Some(reason.clone()),
        },
        None => FileAction {
            path: f.path.clone(),
            action: if dir.join(&f.path).exists() {
                FileChange::Update
            } else {
                FileChange::Create
            },
            reason: None,
        },
    };
    let Some(inputs) = inputs else {
        return Ok(product.files.iter().map(planned_only).collect());
    };
    // The state as read and as it becomes; read when a file first needs it (a keystore's
    // fingerprint, another identity's key): a member of PEM files only has none to compare.
    let mut recorded: Option<(State, State)> = None;
    let state_path = dir.join(STATE_FILE);
    let read_state = || {
        let old: State = std::fs::read(&state_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        (old.clone(), old)
    };
    let mut actions = Vec::new();
    let mut writes: Vec<(String, zeroize::Zeroizing<Vec<u8>>, u32)> = Vec::new();
    for f in &product.files {
        // A file of an identity not issued yet (only in a plan), or one a migration
        // blocks: reported, not judged.
        if blocked.contains_key(&f.path) || !inputs.has_material(f) {
            actions.push(planned_only(f));
            continue;
        }
        if f.identity() != MEMBER {
            let (_, state) = recorded.get_or_insert_with(read_state);
            let e = state.entry(f.path.clone()).or_default();
            e.identity = Some(f.identity().to_string());
        }
        let path = dir.join(&f.path);
        let mode = f.mode()?;
        let planned = inputs.plan(f)?;
        if matches!(planned, Planned::Absent) {
            continue;
        }
        let (disk, disk_mode) = match fsio::read_with_mode(&path) {
            Some((bytes, m)) => (Some(bytes), Some(m)),
            None => (None, None),
        };
        let mode_ok = disk_mode == Some(mode);
        let unchanged = match (&planned, &disk) {
            (Planned::Absent, _) => true,
            (_, None) => false,
            (Planned::Exact(bytes), Some(d)) => **d == **bytes && mode_ok,
            (Planned::Randomized { inputs: fp }, Some(d)) => {
                let (old_state, _) = recorded.get_or_insert_with(read_state);
                mode_ok
                    && old_state.get(&f.path).is_some_and(|s| {
                        s.inputs == *fp && s.sha256 == hex::encode(crate::x509::sha256(d))
                    })
            }
        };
        let action = match (unchanged, &disk) {
            (true, _) => FileChange::Unchanged,
            (false, Some(_)) => FileChange::Update,
            (false, None) => FileChange::Create,
        };
        if !unchanged && !dry_run {
            let bytes = match planned {
                Planned::Exact(b) => b,
                Planned::Absent => continue,
                Planned::Randomized { inputs: fp } => {
                    let b = inputs.render(f)?;
                    let (_, state) = recorded.get_or_insert_with(read_state);
                    state.insert(
                        f.path.clone(),
                        FileState {
                            inputs: fp,
                            sha256: hex::encode(crate::x509::sha256(&b)),
                            identity: (f.identity() != MEMBER).then(|| f.identity().to_string()),
                        },
                    );
                    b
                }
            };
            writes.push((f.path.clone(), bytes, mode));
        }
        actions.push(FileAction {
            path: f.path.clone(),
            action,
            reason: None,
        });
    }
    let changed_state = recorded
        .as_ref()
        .filter(|(old, new)| old != new)
        .map(|(_, new)| new);
    if !writes.is_empty() || (changed_state.is_some() && !dry_run) {
        // All of a member's changes appear at once: a crash leaves the old set or the new.
        let swap = fsio::DirSwap::begin(dir)?;
        for (rel, bytes, mode) in &writes {
            swap.write(rel, bytes, *mode)?;
        }
        if let Some(state) = changed_state {
            let json = serde_json::to_vec_pretty(&state).expect("state serializes");
            swap.write(STATE_FILE, &json, fsio::PRIVATE)?;
        }
        swap.commit()?;
    }
    Ok(actions)
}
