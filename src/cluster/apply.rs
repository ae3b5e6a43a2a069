//! Converging a cluster on disk: the CA (or one signer per member), one certificate per
//! member, and each member's files in the form its product needs.
//!
//! `plan` and `apply` are one computation; `plan` stops before writing. A second `apply`
//! with nothing due writes nothing: a file is rewritten only when its bytes would differ.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::deploy::{push, DeployReport, PushFile};
use super::identity::{
    decide, migration_blocks, resolve_shared, write_records, IdentityRecord, KeySource,
};
use super::manifest::{Manifest, Member, TrustModel};
use super::profile::{Content, ProductProfile, Profiles, Rotation, MEMBER};
use super::render::{FileState, Inputs, Material, Planned, State, STATE_FILE};
use super::secrets::member_password;
use crate::ca::{CaInit, IntermediateInit, IssueBatch, IssueRequest, Signer, Store};
use crate::cert::constraints::NameConstraintsSpec;
use crate::cert::{Profile as CertProfile, SubjectNames};
use crate::duration::RenewWindow;
use crate::fsio::{self, Overwrite, StoreLock, PRIVATE_DIR};
use crate::key::token::TokenRef;
use crate::key::{read_private_key, Digest, KeyAlg, PrivateKey};
use crate::pass::{PassSource, Secret};
use crate::{Error, Result};

/// Where the cluster's CA stores live inside the output directory.
const PKI_DIR: &str = "pki";

/// What happened (or would happen) to a member's certificate.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum LeafAction {
    Keep,
    Issue,
    Renew {
        reason: String,
    },
    /// Due, but its rotation policy keeps it as it is until a deliberate command.
    Held {
        reason: String,
    },
}

impl LeafAction {
    /// True when the run issues a certificate for it.
    pub fn issues(&self) -> bool {
        matches!(self, LeafAction::Issue | LeafAction::Renew { .. })
    }
}

/// What happened (or would happen) to one file.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FileAction {
    pub path: String,
    /// `create`, `update`, `unchanged`, or `blocked` (a migration that needs a deliberate
    /// flag; see `reason`).
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
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

/// Told about progress through the slow part of a run (key generation and signing), so a
/// front end can show it; the library itself never prints.
pub trait Progress: Sync {
    /// `total` certificates are about to be issued.
    fn start(&self, total: u64);
    /// One more is done.
    fn step(&self);
    /// All are done.
    fn finish(&self);
}

/// A [`Progress`] that shows nothing.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: u64) {}
    fn step(&self) {}
    fn finish(&self) {}
}

/// How to run.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    /// Compute and report only (`cluster plan`).
    pub dry_run: bool,
    /// Push changed files to members that have a `deploy` section, and reload them.
    pub deploy: bool,
    /// Members deployed at once.
    pub parallel: usize,
    /// Wait for another run's lock instead of failing with exit code 75.
    pub wait: bool,
    /// Keep every existing certificate as it is (after a rollback): only write and
    /// deploy the members' files.
    pub keep_certificates: bool,
    /// Identities to renew now although their policy would not (keeping the key unless
    /// the policy is `new-key`): how a `manual` identity is renewed deliberately.
    pub renew_identities: &'a [String],
    /// Identities to give a new key now, whatever their policy (data encrypted with the
    /// old key becomes unreadable: a deliberate step).
    pub rekey_identities: &'a [String],
    /// `(identity, member)`: the shared identity takes that member's current key, so what
    /// was encrypted with it stays readable (migrating per-member keys to a shared one).
    pub adopt_keys: &'a [(String, String)],
    pub progress: &'a dyn Progress,
    /// Order of deploys and the probe after each reload.
    pub roll: super::roll::RollOptions,
}

impl Options<'_> {
    pub(crate) fn rekey(&self, identity: &str) -> bool {
        self.rekey_identities.iter().any(|i| i == identity)
    }

    pub(crate) fn renew(&self, identity: &str) -> bool {
        self.renew_identities.iter().any(|i| i == identity)
    }

    pub(crate) fn adopt(&self, identity: &str) -> Option<&str> {
        self.adopt_keys
            .iter()
            .find(|(i, _)| i == identity)
            .map(|(_, m)| m.as_str())
    }
}

/// Runs (or with `dry_run`, plans) the convergence of `manifest` into `out`.
pub fn apply(
    manifest: &Manifest,
    profiles: &Profiles,
    out: &Path,
    opts: Options<'_>,
) -> Result<Report> {
    let dry_run = opts.dry_run;
    fsio::check_dir_chain(out)?;
    let products = resolve_profiles(manifest, profiles)?;
    for m in &manifest.members {
        if m.name.get_ref() == PKI_DIR {
            return Err(manifest.member_error(
                m,
                format!("the member name '{PKI_DIR}' is reserved for the CA store"),
            ));
        }
    }
    // Everything the manifest asks for is checked before anything is created.
    let mut wants = Vec::new();
    for m in &manifest.members {
        wants.push(Wanted::of(
            manifest,
            m,
            products[m.name.get_ref().as_str()],
        )?);
    }
    for x in &manifest.extra_trust {
        crate::x509::read_certs(&manifest.resolve(&x.cert))?;
    }
    for m in &manifest.members {
        if let Some(p) = &m.base_truststore {
            fsio::read(&manifest.resolve(p))?;
        }
    }
    KeyAlg::parse(&manifest.ca.key)?;
    Digest::parse(&manifest.ca.digest)?;
    NameConstraintsSpec::permit(&manifest.ca.permit_dns, &manifest.ca.permit_ip)?;
    let groups = resolve_shared(manifest, &products)?;
    for id in opts.renew_identities.iter().chain(opts.rekey_identities) {
        if id != MEMBER && !groups.iter().any(|g| &g.identity == id) {
            let mut known: Vec<&str> = groups.iter().map(|g| g.identity.as_str()).collect();
            known.dedup();
            known.push(MEMBER);
            return Err(Error::Usage(format!(
                "no identity '{id}' in this cluster (its identities: {})",
                known.join(", ")
            )));
        }
    }
    for (id, member) in opts.adopt_keys {
        let g = groups.iter().find(|g| &g.identity == id).ok_or_else(|| {
            Error::Usage(format!(
                "--adopt-key {id}={member}: no shared identity '{id}' in this cluster"
            ))
        })?;
        if !g.members.contains(member) {
            return Err(Error::Usage(format!(
                "--adopt-key {id}={member}: '{member}' does not share identity '{id}' ({})",
                g.members.join(", ")
            )));
        }
    }
    // The rotation policy of identity `id` for member `m`.
    let rotation_of = |m: &Member, id: &str| -> Rotation {
        let name = m.name.get_ref();
        if id == MEMBER {
            return products[name.as_str()]
                .identity(MEMBER)
                .map(|i| i.rotation)
                .unwrap_or(Rotation::NewKey);
        }
        groups
            .iter()
            .find(|g| g.identity == id && g.members.contains(name))
            .map_or(Rotation::NewKey, |g| g.rotation)
    };
    // A member applied before whose files would change key against their policy is a
    // migration: planned and explained, and applied only with a deliberate flag.
    let mut blocked: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for m in &manifest.members {
        let name = m.name.get_ref();
        let b = migration_blocks(
            &out.join(name),
            products[name.as_str()],
            &|id| rotation_of(m, id),
            &opts,
        );
        let first = products[name.as_str()]
            .files
            .iter()
            .find_map(|f| b.get_key_value(&f.path));
        if let Some((path, reason)) = first {
            if !dry_run {
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
    let ca_pass = match &manifest.ca.key_pass {
        Some(spec) => {
            let pass = spec.parse::<PassSource>()?.read()?;
            crate::pass::check_key_passphrase(&pass).map_err(|_| {
                Error::bad_file(
                    &manifest.path,
                    "[ca] key_pass: the passphrase is empty; a CA key needs a real one",
                )
            })?;
            Some(pass)
        }
        None => None,
    };
    if !dry_run {
        fsio::create_dir(out, PRIVATE_DIR)?;
    }
    let _lock = if out.exists() {
        Some(StoreLock::acquire(&out.join(".lock"), opts.wait)?)
    } else {
        None
    };

    let mut stores = open_stores(manifest, out)?;
    let created_cas: Vec<String> = stores
        .iter()
        .filter(|(_, s)| s.is_none())
        .map(|(id, _)| id.clone())
        .collect();
    let trust_model = manifest.trust;

    // Decide each member's certificate (every member of a store that does not exist yet
    // is issued). What every member of a store is compared with (the issuing CA, the
    // revoked serials) is read once per store, not per member.
    let mut issuers: BTreeMap<String, IssuerView> = BTreeMap::new();
    for (id, store) in &stores {
        if let Some(store) = store {
            issuers.insert(id.clone(), IssuerView::load(store)?);
        }
    }
    // The state of one certificate (a member's or a shared one), with the policy applied.
    let state_of = |id: &str,
                    entry: &str,
                    want: &Wanted,
                    identity: &str,
                    rotation: Rotation|
     -> Result<(LeafAction, Option<KeySource>)> {
        let (action, reusable) = match &stores[id] {
            None => (LeafAction::Issue, false),
            Some(store)
                if opts.keep_certificates && store.home().join("issued").join(entry).exists() =>
            {
                (LeafAction::Keep, false)
            }
            Some(store) => current_state(store, &issuers[id], entry, want)?,
        };
        let key_path = store_dir(manifest, out, id)
            .join("issued")
            .join(entry)
            .join("key.pem");
        if opts.keep_certificates {
            return Ok((action, None));
        }
        Ok(decide(
            action, reusable, rotation, identity, key_path, &opts,
        ))
    };
    let mut wanted = Vec::new();
    let mut key_sources = Vec::new();
    for (m, want) in manifest.members.iter().zip(wants) {
        let (action, source) = state_of(
            store_id(trust_model, m),
            m.name.get_ref(),
            &want,
            MEMBER,
            rotation_of(m, MEMBER),
        )?;
        wanted.push((m, want, action));
        key_sources.push(source);
    }
    let mut shared: Vec<(SharedReport, Option<KeySource>)> = Vec::new();
    for g in &groups {
        let (mut action, mut source) =
            state_of(&g.store_id, &g.entry, &g.want, &g.identity, g.rotation)?;
        let mut key = None;
        if let Some(member) = opts.adopt(&g.identity) {
            let path = store_dir(manifest, out, store_id_of(manifest, member))
                .join("issued")
                .join(member)
                .join("key.pem");
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
            let current = stores[&g.store_id].as_ref().and_then(|st| {
                read_key(&st.home().join("issued").join(&g.entry).join("key.pem")).ok()
            });
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
    let due: Vec<(usize, KeySource)> = if dry_run {
        Vec::new()
    } else {
        (0..wanted.len())
            .filter_map(|i| key_sources[i].clone().map(|s| (i, s)))
            .filter(|(i, _)| wanted[*i].2.issues())
            .collect()
    };

    // Key generation is most of a bootstrap's CPU and writing is mostly waiting for
    // fsync, so they overlap: the keys are made on every core (the CPU pool) while this
    // thread creates the missing CAs; each member is then signed and written on the I/O
    // threads as soon as its key is ready, not after the last key.
    let signer_of = |store: &Store, ca: &str| -> Result<Signer> {
        store.signer(ca, &mut || {
            ca_pass.clone().ok_or_else(|| {
                Error::Secret(format!(
                    "the CA key in {} is encrypted: set [ca] key_pass in the manifest",
                    store.home().display()
                ))
            })
        })
    };
    let ca_key = |store: &Store| signer_of(store, &store.issuing().id);
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
                .map(|id| {
                    create_ca(
                        manifest,
                        id,
                        &store_dir(manifest, out, id),
                        ca_pass.as_ref(),
                    )
                })
                .collect();
            for (id, store) in created_cas.iter().zip(created) {
                match store {
                    Ok(store) => *stores.get_mut(id).expect("listed above") = Some(store),
                    Err(e) => return stop(e),
                }
            }
        }
        let stores = &stores;
        let prepared = (|| -> Result<_> {
            // The CRLs of a CA's chain are refreshed before members get their copies, once
            // they near their nextUpdate (stores without a CRL have nothing to refresh).
            if !dry_run {
                for store in stores.values().flatten() {
                    store.refresh_crls(&mut |id| signer_of(store, id))?;
                }
            }
            // Shared identities first: every member of their groups writes them.
            if !dry_run {
                for (g, (report, source)) in groups.iter().zip(&shared) {
                    let Some(source) = source.as_ref().filter(|_| report.certificate.issues())
                    else {
                        continue;
                    };
                    let store = stores[&g.store_id].as_ref().expect("created above");
                    let key = match source {
                        KeySource::New => PrivateKey::generate(g.want.key)?,
                        KeySource::Existing(path) => read_key(path)?,
                    };
                    let req = IssueRequest {
                        name: g.entry.clone(),
                        names: g.want.names.clone(),
                        profile: g.want.cert_profile,
                        days: g.want.days,
                        key: g.want.key,
                        replace: true,
                        data_encipherment: g.want.data_encipherment,
                    };
                    store.issue_with_key(&ca_key(store)?, &req, key)?;
                }
            }
            let mut shared_material: BTreeMap<&str, Material> = BTreeMap::new();
            for g in &groups {
                if let Some(st) = stores[&g.store_id].as_ref() {
                    if st.home().join("issued").join(&g.entry).exists() {
                        shared_material.insert(&g.entry, load_material(st, &g.entry)?);
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
        let member_files =
            |(m, _, action): &(&Member, Wanted, LeafAction)| -> Result<MemberReport> {
                let name = m.name.get_ref();
                let product = products[name.as_str()];
                let trust = &trust_of[name.as_str()];
                let dir = out.join(name);
                if !dry_run {
                    fsio::DirSwap::clean(&dir)?;
                }
                let id = store_id(trust_model, m);
                let store = stores[id].as_ref();
                let material = match store {
                    Some(st) if st.home().join("issued").join(name).exists() => {
                        Some(load_material(st, name)?)
                    }
                    _ => None,
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
                let base_truststore = match &m.base_truststore {
                    Some(p) => {
                        let path = manifest.resolve(p);
                        let bytes = fsio::read(&path)?;
                        let pass = match &m.base_truststore_pass {
                            Some(spec) => spec.parse::<PassSource>()?.read()?,
                            None => password.clone(),
                        };
                        Some((path.display().to_string(), bytes, pass))
                    }
                    None => None,
                };
                let identities: BTreeMap<String, &Material> = groups
                    .iter()
                    .filter(|g| g.members.contains(name))
                    .filter_map(|g| {
                        Some((g.identity.clone(), shared_material.get(g.entry.as_str())?))
                    })
                    .collect();
                let inputs = material.as_ref().map(|material| Inputs {
                    base_truststore: base_truststore.clone(),
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
                    blocked.get(name).unwrap_or(&none),
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
            let req = IssueRequest {
                name: m.name.get_ref().clone(),
                names: w.names.clone(),
                profile: w.cert_profile,
                days: w.days,
                key: w.key,
                replace: true,
                data_encipherment: w.data_encipherment,
            };
            batch.issue(signer, &req, key?)?;
            opts.progress.step();
            member_files(&wanted[i])
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
        pool.in_place_scope(|s| {
            for (i, w) in wanted.iter().enumerate() {
                // Members with a key coming are written when it arrives, below.
                if dry_run || !due.iter().any(|(d, _)| *d == i) {
                    s.spawn(move |_| put(i, member_files(w)));
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
    let mut reports = Vec::new();
    let shared: Vec<SharedReport> = shared.into_iter().map(|(r, _)| r).collect();
    let mut changed = !created_cas.is_empty() || shared.iter().any(|s| s.certificate.issues());
    if !dry_run {
        let mut records: Vec<IdentityRecord> = groups
            .iter()
            .map(|g| IdentityRecord {
                identity: g.identity.clone(),
                entry: g.entry.clone(),
                store: store_rel(manifest, &g.store_id),
                members: g.members.clone(),
                shared: true,
                rotation: g.rotation,
                renew_before: g.renew_before.clone(),
            })
            .collect();
        for m in &manifest.members {
            let rotation = rotation_of(m, MEMBER);
            if rotation != Rotation::NewKey {
                let name = m.name.get_ref();
                records.push(IdentityRecord {
                    identity: MEMBER.into(),
                    entry: name.clone(),
                    store: store_rel(manifest, store_id(trust_model, m)),
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
        changed |= write_records(out, &records)?;
    }
    for report in written {
        changed |=
            report.certificate.issues() || report.files.iter().any(|f| f.action != "unchanged");
        reports.push(report);
    }
    let mut failed = false;
    let mut roll = Vec::new();
    if opts.deploy && !dry_run {
        let outcome = super::roll::deploy_all(
            manifest,
            &products,
            &stores,
            opts.parallel,
            opts.roll,
            |m, d, product| deploy_member(&out.join(m.name.get_ref()), d, product),
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
        roll = outcome.steps;
    }
    // A CA rollover moves on once this run has put the new root in every truststore
    // (phase 1 -> 2), and once no leaf chains to the old root any more (2 -> 3).
    if !dry_run && !failed {
        for store in stores.values_mut().flatten() {
            let Some(r) = store.config().rollover.clone() else {
                continue;
            };
            if r.phase == 1 {
                let signer = signer_of(store, &r.new_root)?;
                let key = KeyAlg::parse(&manifest.ca.key)?;
                store.rollover_switch(&signer, Some(key), ca_pass.as_ref())?;
                changed = true;
            } else if r.phase == 2 && store.rollover_status()?.old_leaves == 0 {
                store.rollover_finish(false)?;
                changed = true;
            }
        }
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

/// A trusted signer: its subject (for reports) and DER certificate.
pub type TrustedSigner = (String, Vec<u8>);

/// Every signer each member must trust, in a stable order: the cluster CA (or every
/// member's signer, for mesh), then the extra signers that apply to it.
pub(crate) fn member_trust(
    manifest: &Manifest,
    stores: &BTreeMap<String, Option<Store>>,
) -> Result<BTreeMap<String, Vec<TrustedSigner>>> {
    let mut all: Vec<TrustedSigner> = Vec::new();
    for store in stores.values().flatten() {
        for root_id in store.trust_anchors() {
            let der = store.cert_der(&root_id)?;
            all.push((subject_of(&der), der));
        }
    }
    let mut extras: Vec<(Vec<String>, TrustedSigner)> = Vec::new();
    for x in &manifest.extra_trust {
        let path = manifest.resolve(&x.cert);
        for der in crate::x509::read_certs(&path)? {
            extras.push((x.members.clone(), (subject_of(&der), der)));
        }
    }
    let mut out = BTreeMap::new();
    for m in &manifest.members {
        let name = m.name.get_ref();
        let mut trust = all.clone();
        for (members, signer) in &extras {
            if members.is_empty() || members.iter().any(|x| x == name) {
                trust.push(signer.clone());
            }
        }
        out.insert(name.clone(), trust);
    }
    Ok(out)
}

/// Record of what was last pushed to a member, so unchanged files are not pushed again
/// and a failed push is retried by the next run.
#[derive(Debug, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub(crate) struct Deployed {
    pub host: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub dir: String,
    /// SHA-256 (hex) of each file as pushed.
    pub files: BTreeMap<String, String>,
}

pub(crate) const DEPLOYED: &str = ".certmesh-deployed.json";

/// Pushes a member's files that differ from what was last pushed, and reloads it.
fn deploy_member(
    dir: &Path,
    d: &super::manifest::Deploy,
    product: &ProductProfile,
) -> Result<DeployReport> {
    let state_path = dir.join(DEPLOYED);
    let before: Deployed = std::fs::read(&state_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|s: &Deployed| {
            s.host == d.host && s.port == d.port && s.user == d.user && s.dir == d.dir
        })
        .unwrap_or_default();
    let mut now = Deployed {
        host: d.host.clone(),
        port: d.port,
        user: d.user.clone(),
        dir: d.dir.clone(),
        files: BTreeMap::new(),
    };
    let mut contents = Vec::new();
    for f in &product.files {
        if f.content == Content::Crl && !dir.join(&f.path).exists() {
            continue;
        }
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
        fsio::write_file(&state_path, &json, fsio::PRIVATE, Overwrite::Replace)?;
    }
    Ok(report)
}

/// The cluster's existing CA stores (for commands that work on them, like rollback).
pub fn cluster_stores(manifest: &Manifest, out: &Path) -> Result<Vec<Option<Store>>> {
    Ok(open_stores(manifest, out)?.into_values().collect())
}

/// Where the CA store of signer `id` lives.
fn store_dir(manifest: &Manifest, out: &Path, id: &str) -> PathBuf {
    match manifest.trust {
        TrustModel::SharedCa => out.join(PKI_DIR).join("ca"),
        TrustModel::Mesh => out.join(PKI_DIR).join("signers").join(id),
    }
}

/// The cluster's CA stores by signer id (`cluster`, or each member's name for mesh);
/// `None` where a store does not exist yet.
pub(crate) fn open_stores(
    manifest: &Manifest,
    out: &Path,
) -> Result<BTreeMap<String, Option<Store>>> {
    // Whatever reads a cluster's stores (apply, status, rollback, check) reads the member
    // directories too: the output directory must be one no one else can change.
    fsio::check_dir_chain(out)?;
    let ids: Vec<String> = match manifest.trust {
        TrustModel::SharedCa => vec!["cluster".into()],
        TrustModel::Mesh => manifest
            .members
            .iter()
            .map(|m| m.name.get_ref().clone())
            .collect(),
    };
    let mut stores = BTreeMap::new();
    for id in ids {
        let dir = store_dir(manifest, out, &id);
        let store = if Store::config_path(&dir).exists() {
            Some(Store::open(&dir)?)
        } else {
            None
        };
        stores.insert(id, store);
    }
    Ok(stores)
}

pub(crate) fn resolve_profiles<'a>(
    manifest: &'a Manifest,
    profiles: &'a Profiles,
) -> Result<BTreeMap<&'a str, &'a ProductProfile>> {
    let mut out = BTreeMap::new();
    for m in &manifest.members {
        let name = manifest.profile_of(m);
        let p = profiles.get(name).ok_or_else(|| {
            manifest.member_error(
                m,
                format!(
                    "unknown profile '{name}' (available: {})",
                    profiles.names().join(", ")
                ),
            )
        })?;
        out.insert(m.name.get_ref().as_str(), p);
    }
    Ok(out)
}

/// The signer a member's certificate comes from: `cluster`, or with mesh trust its own.
fn store_id(trust: TrustModel, m: &Member) -> &str {
    match trust {
        TrustModel::SharedCa => "cluster",
        TrustModel::Mesh => m.name.get_ref(),
    }
}

fn create_ca(manifest: &Manifest, id: &str, dir: &Path, pass: Option<&Secret>) -> Result<Store> {
    let ca = &manifest.ca;
    let base = ca
        .name
        .clone()
        .unwrap_or_else(|| format!("{} CA", manifest.name));
    let name = match manifest.trust {
        TrustModel::SharedCa => base,
        TrustModel::Mesh => format!("{base} {id}"),
    };
    let constraints = NameConstraintsSpec::permit(&ca.permit_dns, &ca.permit_ip)?;
    let digest = Digest::parse(&ca.digest)?;
    let key = KeyAlg::parse(&ca.key)?;
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
        dir,
        &CaInit {
            name: name.clone(),
            key,
            days: ca.days,
            digest,
            constraints: constraints.clone(),
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
                key,
                days: ca.days / 2,
                digest,
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

/// What a certificate (a member's or a shared identity's) should be.
pub(crate) struct Wanted {
    pub data_encipherment: bool,
    pub names: SubjectNames,
    pub cert_profile: CertProfile,
    pub key: KeyAlg,
    pub days: u32,
    pub window: RenewWindow,
}

impl Wanted {
    fn of(manifest: &Manifest, m: &Member, product: &ProductProfile) -> Result<Self> {
        let err = |e: Error| manifest.member_error(m, e.to_string());
        let cert_profile = match m
            .cert_profile
            .as_deref()
            .or(manifest.defaults.cert_profile.as_deref())
        {
            Some(p) => CertProfile::parse(p).map_err(err)?,
            None => product.cert_profile()?,
        };
        let own = product.identity(MEMBER)?;
        let key = KeyAlg::parse(m.key.as_deref().unwrap_or(&manifest.defaults.key)).map_err(err)?;
        own.accepts(key)
            .map_err(|p| manifest.member_error(m, format!("profile '{}': {p}", product.name)))?;
        Ok(Wanted {
            data_encipherment: own.data_encipherment,
            names: SubjectNames::new(&m.dns, &m.ip).map_err(err)?,
            cert_profile,
            key,
            days: m.days.unwrap_or(manifest.defaults.days),
            window: RenewWindow::parse(
                m.renew_before
                    .as_deref()
                    .unwrap_or(&manifest.defaults.renew_before),
            )
            .map_err(err)?,
        })
    }
}

/// Compares what is issued with what is wanted, and says why a certificate must be
/// replaced.
/// What a store's members are checked against, read once per run.
struct IssuerView {
    /// The issuing CA's certificate, DER.
    issuing: Vec<u8>,
    /// Serials the inventory marks revoked.
    revoked: std::collections::BTreeSet<String>,
}

impl IssuerView {
    fn load(store: &Store) -> Result<Self> {
        Ok(IssuerView {
            issuing: store.cert_der(&store.issuing().id)?,
            revoked: store
                .inventory()?
                .revocations()?
                .into_iter()
                .map(|r| r.serial)
                .collect(),
        })
    }
}

/// What a certificate needs, and whether its key can be certified again (it matches the
/// certificate and is of the wanted type).
fn current_state(
    store: &Store,
    issuer: &IssuerView,
    name: &str,
    want: &Wanted,
) -> Result<(LeafAction, bool)> {
    let dir = store.home().join("issued").join(name);
    if !dir.exists() {
        return Ok((LeafAction::Issue, false));
    }
    let der = match crate::x509::read_certs(&dir.join("cert.pem")) {
        Ok(mut v) => v.remove(0),
        Err(e) => {
            return Ok((
                LeafAction::Renew {
                    reason: format!("current certificate unreadable ({e})"),
                },
                false,
            ))
        }
    };
    let (_, cert) = X509Certificate::from_der(&der)
        .map_err(|_| Error::bad_file(dir.join("cert.pem"), "not a valid certificate"))?;
    let report = crate::cert::describe::describe_cert(&cert, &der);
    let key_path = dir.join("key.pem");
    let key_ok = read_key(&key_path).is_ok_and(|k| k.public_key_der() == cert.public_key().raw);
    let reusable = key_ok && report.key == want.key.describe();
    let renew = |reason: String| Ok((LeafAction::Renew { reason }, reusable));
    let mut have: Vec<String> = report
        .san
        .dns
        .iter()
        .chain(report.san.ip.iter())
        .cloned()
        .collect();
    let mut wanted = want.names.all();
    have.sort();
    wanted.sort();
    if have != wanted {
        return renew(format!(
            "names changed ({} -> {})",
            have.join(","),
            wanted.join(",")
        ));
    }
    let want_key = want.key.describe();
    if report.key != want_key {
        return renew(format!("key type changed ({} -> {want_key})", report.key));
    }
    let mut want_ku: Vec<&str> =
        crate::cert::leaf_key_usages(&want_key, want.cert_profile, want.data_encipherment)
            .iter()
            .map(crate::cert::key_usage_name)
            .collect();
    let mut have_ku: Vec<&str> = report.key_usage.iter().map(String::as_str).collect();
    want_ku.sort_unstable();
    have_ku.sort_unstable();
    if have_ku != want_ku {
        return renew(format!(
            "key usage changed ({} -> {})",
            have_ku.join(","),
            want_ku.join(",")
        ));
    }
    if report.extended_key_usage != want.cert_profile.eku_names() {
        return renew(format!(
            "certificate profile changed to {}",
            want.cert_profile.name()
        ));
    }
    if issuer
        .revoked
        .contains(&crate::x509::serial_hex(cert.raw_serial()))
    {
        return renew("revoked".into());
    }
    let (_, ca) = X509Certificate::from_der(&issuer.issuing).map_err(|_| {
        Error::bad_file(
            store.cert_path(&store.issuing().id),
            "not a valid certificate",
        )
    })?;
    // The project's own verifier: the same answer `check` and `verify` give.
    let signed = crate::x509::verify_signature(
        ca.public_key(),
        &cert.signature_algorithm,
        &cert.signature_value.data,
        cert.tbs_certificate.as_ref(),
    );
    if signed.is_err() {
        return renew("not signed by the current issuing CA".into());
    }
    if !key_ok {
        return renew("key.pem is missing or does not match the certificate".into());
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (nb, na) = (
        cert.validity().not_before.timestamp(),
        cert.validity().not_after.timestamp(),
    );
    if want.window.is_due(nb, na, now) {
        return renew(format!("expires in {} days", (na - now).div_euclid(86_400)));
    }
    Ok((LeafAction::Keep, reusable))
}

/// Reads an issued (unencrypted) key.
fn read_key(path: &Path) -> Result<PrivateKey> {
    let data = zeroize::Zeroizing::new(fsio::read(path)?);
    read_private_key(path, &data, &mut || {
        Err(Error::Secret("issued keys are not encrypted".into()))
    })
}

/// The signer id of the member named `member`.
fn store_id_of<'a>(manifest: &Manifest, member: &'a str) -> &'a str {
    match manifest.trust {
        TrustModel::SharedCa => "cluster",
        TrustModel::Mesh => member,
    }
}

/// A store's directory relative to the output directory, for the identities record.
fn store_rel(manifest: &Manifest, id: &str) -> String {
    store_dir(manifest, Path::new(""), id).display().to_string()
}

/// Per member, the signers of the other members (what a proxy in front of them needs to
/// trust the servers it routes to): the cluster CA, or with mesh trust the other
/// members' signers.
fn routed_signers(
    manifest: &Manifest,
    stores: &BTreeMap<String, Option<Store>>,
) -> Result<BTreeMap<String, Vec<TrustedSigner>>> {
    let mut anchors: BTreeMap<&str, Vec<TrustedSigner>> = BTreeMap::new();
    for (id, store) in stores {
        if let Some(store) = store {
            let mut v = Vec::new();
            for root_id in store.trust_anchors() {
                let der = store.cert_der(&root_id)?;
                v.push((subject_of(&der), der));
            }
            anchors.insert(id.as_str(), v);
        }
    }
    let mut out = BTreeMap::new();
    for m in &manifest.members {
        let name = m.name.get_ref();
        let mut v: Vec<TrustedSigner> = Vec::new();
        for other in manifest.members.iter().filter(|o| o.name.get_ref() != name) {
            let id = store_id(manifest.trust, other);
            for s in anchors.get(id).into_iter().flatten() {
                if !v.contains(s) {
                    v.push(s.clone());
                }
            }
        }
        out.insert(name.clone(), v);
    }
    Ok(out)
}

/// Reads a member's issued key and certificates from its store.
fn load_material(store: &Store, name: &str) -> Result<Material> {
    let dir = store.home().join("issued").join(name);
    let key = read_key(&dir.join("key.pem"))?;
    let leaf = crate::x509::read_certs(&dir.join("cert.pem"))?.remove(0);
    let chain = crate::x509::read_certs(&dir.join("chain.pem"))?;
    Ok(Material { key, leaf, chain })
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
            action: "blocked".into(),
            reason: Some(reason.clone()),
        },
        None => FileAction {
            path: f.path.clone(),
            action: if dir.join(&f.path).exists() {
                "update"
            } else {
                "create"
            }
            .into(),
            reason: None,
        },
    };
    let Some(inputs) = inputs else {
        return Ok(product.files.iter().map(planned_only).collect());
    };
    let state_path = dir.join(STATE_FILE);
    let old_state: State = std::fs::read(&state_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut state = old_state.clone();
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
            let e = state.entry(f.path.clone()).or_default();
            e.identity = Some(f.identity().to_string());
        }
        let path = dir.join(&f.path);
        let mode = f.mode()?;
        let disk = std::fs::read(&path).ok().map(zeroize::Zeroizing::new);
        let mode_ok = file_mode(&path) == Some(mode);
        let planned = inputs.plan(f)?;
        if matches!(planned, Planned::Absent) {
            continue;
        }
        let unchanged = match (&planned, &disk) {
            (Planned::Absent, _) => true,
            (_, None) => false,
            (Planned::Exact(bytes), Some(d)) => **d == **bytes && mode_ok,
            (Planned::Randomized { inputs: fp }, Some(d)) => {
                mode_ok
                    && old_state.get(&f.path).is_some_and(|s| {
                        s.inputs == *fp && s.sha256 == hex::encode(crate::x509::sha256(d))
                    })
            }
        };
        let action = match (unchanged, &disk) {
            (true, _) => "unchanged",
            (false, Some(_)) => "update",
            (false, None) => "create",
        };
        if !unchanged && !dry_run {
            let bytes = match planned {
                Planned::Exact(b) => b,
                Planned::Absent => continue,
                Planned::Randomized { inputs: fp } => {
                    let b = inputs.render(f)?;
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
            action: action.into(),
            reason: None,
        });
    }
    if !writes.is_empty() || (state != old_state && !dry_run) {
        // All of a member's changes appear at once: a crash leaves the old set or the new.
        let swap = fsio::DirSwap::begin(dir)?;
        for (rel, bytes, mode) in &writes {
            swap.write(rel, bytes, *mode)?;
        }
        if state != old_state {
            let json = serde_json::to_vec_pretty(&state).expect("state serializes");
            swap.write(STATE_FILE, &json, fsio::PRIVATE)?;
        }
        swap.commit()?;
    }
    Ok(actions)
}

fn subject_of(der: &[u8]) -> String {
    X509Certificate::from_der(der)
        .map(|(_, c)| c.subject().to_string())
        .unwrap_or_default()
}

fn file_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}
