use std::path::{Path, PathBuf};

use rcgen::Issuer;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::cert::constraints::NameConstraintsSpec;
use crate::cert::csr::CsrInfo;
use crate::cert::{leaf_params, CaTemplate, Profile, SubjectNames, Validity};
use crate::fsio::{self, Overwrite, StagedDir, StoreLock, PRIVATE, PRIVATE_DIR, PUBLIC};
use crate::inventory::{Inventory, Kind, Record, Status};
use crate::key::token::{TokenKey, TokenOutcome, TokenRef};
use crate::key::{
    read_private_key, CaKey, Digest, KeyAlg, PassPrompt, PrivateKey, PBKDF2_ITERATIONS,
};
use crate::pass::Secret;
use crate::x509::{colon_hex, sha256, to_pem, KeyType};
use crate::{Error, Result};

const CONFIG: &str = "store.toml";
const INVENTORY: &str = "inventory.sqlite";

/// `store.toml`: the authorities of a store and which one issues.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub version: u32,
    /// Id of the authority that signs leaves.
    pub issuing: String,
    #[serde(rename = "authority")]
    pub authorities: Vec<AuthorityEntry>,
    /// A CA rollover in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollover: Option<Rollover>,
}

/// The state of a CA rollover (see `ca rollover`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rollover {
    /// 1: both roots trusted, leaves from the old; 2: leaves from the new.
    pub phase: u8,
    /// Root being replaced.
    pub old_root: String,
    /// Its successor.
    pub new_root: String,
}

/// One CA of the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorityEntry {
    /// Directory name under `ca/`: `root`, `intermediate`.
    pub id: String,
    /// Id of the authority that signed this one (itself for a root).
    pub parent: String,
    /// The key is stored encrypted; signing needs the CA passphrase.
    pub encrypted: bool,
    /// Digest for signatures made with an RSA key.
    #[serde(default)]
    pub digest: Digest,
    /// No longer trusted or used (the old generation after a rollover).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retired: bool,
    /// The key lives in a PKCS#11 token, not in `key.pem`; signing needs the token PIN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkcs11: Option<TokenRef>,
}

/// Options for a new authority: `ca init` (a root) and `ca intermediate`.
#[derive(Debug, Clone)]
pub struct CaInit {
    pub name: String,
    pub key: KeyAlg,
    pub days: u32,
    pub digest: Digest,
    pub constraints: NameConstraintsSpec,
    /// Generate (or adopt) the key in this token instead of a key file; the key secret
    /// given with it is then the token PIN.
    pub token: Option<TokenRef>,
}

/// The options of `ca intermediate`: the same as a root's.
pub type IntermediateInit = CaInit;

/// A CA key just made (or adopted from a token) for a new authority.
pub(super) enum NewCaKey {
    File(PrivateKey),
    Token(TokenKey, TokenOutcome),
}

impl NewCaKey {
    /// Makes the key: in software, or inside `token` (generated, or adopted when the
    /// token already holds a pair under that name); `secret` is then the PIN.
    pub(super) fn make(
        alg: KeyAlg,
        digest: Digest,
        token: Option<&TokenRef>,
        secret: Option<&Secret>,
    ) -> Result<Self> {
        match token {
            None => Ok(NewCaKey::File(PrivateKey::generate(alg)?)),
            Some(t) => {
                let pin = secret.ok_or_else(|| {
                    Error::Secret(format!("{}: the token PIN is needed (--pin)", t.uri))
                })?;
                let (key, outcome) = TokenKey::generate_or_adopt(t, pin, alg, digest)?;
                Ok(NewCaKey::Token(key, outcome))
            }
        }
    }

    /// A signing key for it.
    pub(super) fn signing_key(&self, digest: Digest) -> Result<CaKey> {
        match self {
            NewCaKey::File(k) => Ok(CaKey::Memory(k.signing_key(digest)?)),
            NewCaKey::Token(k, _) => Ok(CaKey::Token(k.clone())),
        }
    }

    /// Where the key lives, for `store.toml`.
    pub(super) fn token(&self) -> Option<TokenRef> {
        match self {
            NewCaKey::File(_) => None,
            NewCaKey::Token(k, _) => Some(k.token_ref().clone()),
        }
    }

    /// A note for the operator when a token already held the key.
    pub(super) fn note(&self) -> Option<String> {
        match self {
            NewCaKey::Token(k, TokenOutcome::Adopted) => Some(format!(
                "adopted the {} key already in the token ({})",
                k.describe(),
                k.token_ref().uri
            )),
            _ => None,
        }
    }
}

/// Leaves being issued into one store by [`Store::batch`].
pub struct IssueBatch<'a> {
    store: &'a Store,
    records: std::sync::Mutex<Vec<Record>>,
    _lock: StoreLock,
}

impl IssueBatch<'_> {
    /// Signs and writes `issued/NAME/` for a key generated beforehand. The certificate is
    /// recorded in the inventory by [`IssueBatch::commit`], once its files are in place.
    pub fn issue(&self, signer: &Signer, req: &IssueRequest, key: PrivateKey) -> Result<Issued> {
        let (issued, rec) = self.store.issue_unrecorded(signer, req, key)?;
        // A panic in another issuing thread cannot leave the list half-pushed.
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(rec);
        Ok(issued)
    }

    /// Records every certificate this batch wrote, in one transaction. Called even when
    /// some issuances failed: what is on disk is what the inventory must list.
    pub fn commit(self) -> Result<()> {
        let records = self.records.into_inner().unwrap_or_else(|e| e.into_inner());
        if records.is_empty() {
            return Ok(());
        }
        self.store.inventory()?.record_all(&records)
    }
}

/// A CA ready to sign: its key, certificate, and the name constraints of every CA from
/// it up to the root.
pub struct Signer {
    pub id: String,
    pub(super) issuer: Issuer<'static, CaKey>,
    pub(super) cert_der: Vec<u8>,
    pub(super) not_after: OffsetDateTime,
    constraints: Vec<NameConstraintsSpec>,
}

impl Signer {
    /// The rcgen issuer (CA name, key identifier, key usages, signing key).
    pub(crate) fn issuer(&self) -> &Issuer<'static, CaKey> {
        &self.issuer
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }
}

/// A leaf to issue into `issued/NAME/`.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    pub name: String,
    pub names: SubjectNames,
    pub profile: Profile,
    pub days: u32,
    pub key: KeyAlg,
    /// Replace an existing `issued/NAME`, moving it to the backup directory.
    pub replace: bool,
    /// The product encrypts with the key (WSO2 Carbon): dataEncipherment on an RSA key,
    /// keyAgreement on an EC key (see [`crate::cert::leaf_key_usages`]).
    pub data_encipherment: bool,
}

/// The result of issuing a leaf.
#[derive(Debug, Clone, Serialize)]
pub struct Issued {
    pub name: String,
    pub dir: PathBuf,
    pub serial: String,
    pub not_after: String,
    pub sha256: String,
    /// Where the replaced files went, when `replace` moved some aside.
    pub backup: Option<PathBuf>,
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// A CSR to sign.
#[derive(Debug, Clone)]
pub struct SignRequest {
    pub csr: CsrInfo,
    pub profile: Profile,
    pub days: u32,
    /// Names added on the command line to those the CSR asks for.
    pub extra_dns: Vec<String>,
    pub extra_ips: Vec<std::net::IpAddr>,
    /// Name recorded in the inventory (default: the CSR's CN).
    pub name: Option<String>,
    /// Accept RSA keys below 2048 bits and SHA-1 signed requests, with a warning.
    pub allow_weak: bool,
}

/// A signed CSR.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The inventory row, recorded by [`Store::record_signed`] once the certificate has
    /// been written where the caller wants it.
    pub record: Record,
    pub cert_pem: String,
    /// Intermediates above the leaf (no root), PEM.
    pub intermediates_pem: String,
    pub serial: String,
    pub not_after: String,
    pub names: Vec<String>,
    pub warnings: Vec<String>,
}

/// An opened CA store.
pub struct Store {
    home: PathBuf,
    config: StoreConfig,
    /// SHA-256 fingerprints the inventory recorded for each authority id, read once when
    /// an authority certificate is first read (and again after a CA is recorded).
    recorded: std::sync::Mutex<Option<std::collections::HashMap<String, Vec<String>>>>,
    /// The backup generation of this run, chosen at the first replacement so that a run
    /// that crosses a second boundary keeps one generation, and two runs in one second
    /// keep two.
    run_backup: std::sync::OnceLock<PathBuf>,
}

impl Store {
    /// The path of `store.toml` under `home`.
    pub fn config_path(home: &Path) -> PathBuf {
        home.join(CONFIG)
    }

    /// Opens an existing store.
    pub fn open(home: &Path) -> Result<Self> {
        fsio::check_dir_chain(home)?;
        let path = Self::config_path(home);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::bad_file(
                    home,
                    "no CA store here (run `certmesh ca init` first, or point --home / CERTMESH_HOME at the store)",
                ))
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let config: StoreConfig =
            toml::from_str(&text).map_err(|e| Error::bad_file(&path, one_line(&e.to_string())))?;
        if config.version != 1 {
            return Err(Error::bad_file(
                &path,
                format!("unsupported store version {}", config.version),
            ));
        }
        if !config.authorities.iter().any(|a| a.id == config.issuing) {
            return Err(Error::bad_file(
                &path,
                format!("issuing authority '{}' is not listed", config.issuing),
            ));
        }
        validate_authorities(&config).map_err(|why| Error::bad_file(&path, why))?;
        Ok(Store {
            home: home.to_path_buf(),
            config,
            recorded: Default::default(),
            run_backup: Default::default(),
        })
    }

    /// Creates a store with a new self-signed root. Refuses to touch an existing store.
    pub fn init(home: &Path, opts: &CaInit, key_pass: Option<&Secret>) -> Result<Self> {
        Self::create(home, key_pass, || {
            let key = NewCaKey::make(opts.key, opts.digest, opts.token.as_ref(), key_pass)?;
            let signing = key.signing_key(opts.digest)?;
            let template = CaTemplate {
                common_name: opts.name.clone(),
                validity: Validity::new(opts.days, None)?,
                path_len: None,
                constraints: opts.constraints.clone(),
            };
            let cert = template.params()?.self_signed(&signing)?;
            Ok((key, cert.der().to_vec(), opts.digest))
        })
    }

    /// Adopts an existing self-signed CA (certificate and key made by other tools, such
    /// as the seeds' `openssl req -x509`) as the root of a new store. Returns the store
    /// and warnings about the CA that do not stop issuance (missing keyUsage, a weak
    /// digest).
    pub fn import(
        home: &Path,
        cert_path: &Path,
        cert_der: &[u8],
        key: PrivateKey,
        key_pass: Option<&Secret>,
    ) -> Result<(Self, Vec<String>)> {
        let (_, cert) = X509Certificate::from_der(cert_der)
            .map_err(|_| Error::bad_file(cert_path, "not a valid X.509 certificate"))?;
        if !key.matches(&cert) {
            return Err(Error::KeyMismatch {
                path: Some(cert_path.to_path_buf()),
                problem: "the key does not match this certificate".into(),
            });
        }
        let report = crate::cert::describe::describe_cert(&cert, cert_der);
        let mut warnings = Vec::new();
        if !report.self_signed {
            return Err(Error::bad_file(
                cert_path,
                format!(
                    "not a self-signed root (issued by {}); only root CAs can be imported",
                    report.issuer
                ),
            ));
        }
        match cert.basic_constraints() {
            Ok(Some(bc)) if !bc.value.ca => {
                return Err(Error::bad_file(cert_path, "not a CA certificate (basicConstraints CA:FALSE)"))
            }
            Ok(Some(_)) => {}
            _ => warnings.push(format!(
                "{}: no basicConstraints extension; clients treat it as a CA only because it is a self-signed trust anchor",
                cert_path.display()
            )),
        }
        if report.key_usage.is_empty() {
            warnings.push(format!(
                "{}: the CA certificate has no keyUsage extension (as `openssl req -x509` makes them); issuance works, but consider `certmesh ca init` for a new CA",
                cert_path.display()
            ));
        } else if !report.key_usage.iter().any(|u| u == "keyCertSign") {
            return Err(Error::bad_file(
                cert_path,
                "the CA certificate's keyUsage does not allow certificate signing",
            ));
        }
        if report.expired {
            return Err(Error::bad_file(
                cert_path,
                format!("the CA certificate expired on {}", report.not_after),
            ));
        }
        if report.key.is_weak_rsa() {
            return Err(Error::Refused(format!(
                "{}: refusing to adopt an RSA-{} CA: keys below 2048 bits are too weak to sign with; create a new CA with `certmesh ca init` (the old one can stay in truststores while members move over)",
                cert_path.display(),
                report.key.bits
            )));
        }
        if report.signature_algorithm.is_weak() {
            warnings.push(format!(
                "{}: the CA certificate is self-signed with {}; certificates it issues are signed with SHA-256",
                cert_path.display(),
                report.signature_algorithm
            ));
        }
        let der = cert_der.to_vec();
        let store = Self::create(home, key_pass, move || {
            Ok((NewCaKey::File(key), der, Digest::Sha256))
        })?;
        Ok((store, warnings))
    }

    /// Creates a store whose root is what `make_root` returns (key, certificate DER,
    /// digest), after making sure no store exists and while holding the lock.
    fn create(
        home: &Path,
        key_pass: Option<&Secret>,
        make_root: impl FnOnce() -> Result<(NewCaKey, Vec<u8>, Digest)>,
    ) -> Result<Self> {
        if let Some(p) = key_pass {
            crate::pass::check_key_passphrase(p)?;
        }
        fsio::check_dir_chain(home)?;
        fsio::create_dir(home, PRIVATE_DIR)?;
        let _lock = Self::lock_at(home)?;
        if Self::config_path(home).exists() {
            return Err(Error::Refused(format!(
                "{}: a CA store already exists here; not overwritten",
                home.display()
            )));
        }
        if home.join("ca").exists() {
            return Err(Error::Refused(format!(
                "{}: holds CA files but no store.toml (an interrupted init?); move it aside to start over",
                home.join("ca").display()
            )));
        }
        let (key, cert_der, digest) = make_root()?;
        let entry = AuthorityEntry {
            id: "root".into(),
            parent: "root".into(),
            encrypted: key_pass.is_some() && key.token().is_none(),
            digest,
            retired: false,
            pkcs11: key.token(),
        };
        let store = Store {
            home: home.to_path_buf(),
            config: StoreConfig {
                version: 1,
                issuing: entry.id.clone(),
                authorities: vec![entry.clone()],
                rollover: None,
            },
            recorded: Default::default(),
            run_backup: Default::default(),
        };
        store.write_authority(&entry, &key, &cert_der, key_pass)?;
        store.record_ca(&entry, &cert_der, &cert_der)?;
        store.save_config(Overwrite::Refuse)?;
        Ok(store)
    }

    /// Creates an intermediate (pathLen 0) signed by the current issuing CA and makes it
    /// the issuing CA. Its key is encrypted with `key_pass` when one is given.
    pub fn add_intermediate(
        &mut self,
        opts: &CaInit,
        parent: &Signer,
        key_pass: Option<&Secret>,
    ) -> Result<Vec<String>> {
        let id = if self.authority("intermediate").is_none() {
            "intermediate".to_string()
        } else {
            (2..)
                .map(|n| format!("intermediate-{n}"))
                .find(|id| self.authority(id).is_none())
                .expect("an unused id exists")
        };
        let validity = Validity::new(opts.days, Some(parent.not_after))?;
        let key = NewCaKey::make(opts.key, opts.digest, opts.token.as_ref(), key_pass)?;
        let template = CaTemplate {
            common_name: opts.name.clone(),
            validity,
            path_len: Some(0),
            constraints: opts.constraints.clone(),
        };
        let signing = key.signing_key(opts.digest)?;
        let cert = template.params()?.signed_by(&signing, &parent.issuer)?;
        let entry = AuthorityEntry {
            id: id.clone(),
            parent: parent.id.clone(),
            encrypted: key_pass.is_some() && key.token().is_none(),
            digest: opts.digest,
            retired: false,
            pkcs11: key.token(),
        };
        self.write_authority(&entry, &key, cert.der(), key_pass)?;
        self.record_ca(&entry, cert.der(), &parent.cert_der)?;
        self.config.authorities.push(entry);
        self.config.issuing = id;
        self.save_config(Overwrite::Replace)?;
        let mut notes: Vec<String> = key.note().into_iter().collect();
        if validity.clamped {
            notes.push(format!(
                "validity shortened to end with the parent CA's on {}",
                validity.not_after.date()
            ));
        }
        Ok(notes)
    }

    pub(super) fn write_authority(
        &self,
        entry: &AuthorityEntry,
        key: &NewCaKey,
        cert_der: &[u8],
        pass: Option<&Secret>,
    ) -> Result<()> {
        let dir = StagedDir::new(&self.authority_dir(&entry.id))?;
        // A token-held key has no file: the token is the only place it exists.
        if let NewCaKey::File(key) = key {
            let key_pem = match pass {
                Some(p) => key.to_encrypted_pkcs8_pem(p, PBKDF2_ITERATIONS)?,
                None => key.to_pkcs8_pem(),
            };
            dir.write("key.pem", key_pem.as_bytes(), PRIVATE)?;
        }
        dir.write(
            "cert.pem",
            to_pem("CERTIFICATE", cert_der).as_bytes(),
            PUBLIC,
        )?;
        dir.commit(None)?;
        Ok(())
    }

    pub(super) fn record_ca(
        &self,
        entry: &AuthorityEntry,
        der: &[u8],
        issuer_der: &[u8],
    ) -> Result<()> {
        let rec = record_for(
            der,
            issuer_der,
            &entry.id,
            if entry.id == entry.parent {
                Kind::Root
            } else {
                Kind::Intermediate
            },
            "",
            vec![self
                .authority_dir(&entry.id)
                .join("cert.pem")
                .display()
                .to_string()],
        )?;
        self.inventory()?.record(&rec)?;
        *self.recorded.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(())
    }

    pub(super) fn save_config(&self, overwrite: Overwrite) -> Result<()> {
        let text = toml::to_string_pretty(&self.config).expect("store config serializes");
        let text =
            format!("# certmesh CA store; edited by certmesh, keep by hand only with care\n{text}");
        fsio::write_file(
            &Self::config_path(&self.home),
            text.as_bytes(),
            PUBLIC,
            overwrite,
        )
    }

    /// Replaces the store's configuration and saves it.
    pub(super) fn set_config(&mut self, config: StoreConfig) -> Result<()> {
        self.config = config;
        *self.recorded.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.save_config(Overwrite::Replace)
    }

    /// Takes the store's lock; a second run fails at once with exit code 75.
    pub fn lock(&self) -> Result<StoreLock> {
        Self::lock_at(&self.home)
    }

    /// Takes the store's lock, waiting for another run to finish.
    pub fn lock_wait(&self) -> Result<StoreLock> {
        StoreLock::acquire(&self.home.join(".lock"), true)
    }

    fn lock_at(home: &Path) -> Result<StoreLock> {
        StoreLock::acquire(&home.join(".lock"), false)
    }

    /// The store's home directory.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The store's configuration.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The store's inventory.
    pub fn inventory(&self) -> Result<Inventory> {
        Inventory::open(&self.home.join(INVENTORY))
    }

    /// An authority by id.
    pub fn authority(&self, id: &str) -> Option<&AuthorityEntry> {
        self.config.authorities.iter().find(|a| a.id == id)
    }

    /// Ids of the roots clients must trust now: every root not retired (two during a
    /// rollover).
    pub fn trust_anchors(&self) -> Vec<String> {
        self.config
            .authorities
            .iter()
            .filter(|a| a.parent == a.id && !a.retired)
            .map(|a| a.id.clone())
            .collect()
    }

    /// The authority that signs leaves.
    pub fn issuing(&self) -> &AuthorityEntry {
        self.authority(&self.config.issuing)
            .expect("checked on open")
    }

    pub(super) fn authority_dir(&self, id: &str) -> PathBuf {
        self.home.join("ca").join(id)
    }

    /// Path of an authority's certificate.
    pub fn cert_path(&self, id: &str) -> PathBuf {
        self.authority_dir(id).join("cert.pem")
    }

    /// An authority's certificate, DER. It must be one the store recorded in its inventory
    /// when it made or adopted the CA: a certificate replaced on disk is never signed with,
    /// put into a chain or into a trust bundle.
    pub fn cert_der(&self, id: &str) -> Result<Vec<u8>> {
        let path = self.cert_path(id);
        let der = crate::x509::read_certs(&path)?.remove(0);
        let fp = colon_hex(&sha256(&der));
        let mut recorded = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
        if recorded.is_none() {
            let inv = self.inventory()?;
            let mut map = std::collections::HashMap::new();
            for a in &self.config.authorities {
                let fps: Vec<String> = inv
                    .by_name(&a.id)?
                    .into_iter()
                    .filter(|r| r.kind.is_ca())
                    .map(|r| r.sha256)
                    .collect();
                map.insert(a.id.clone(), fps);
            }
            *recorded = Some(map);
        }
        let known = recorded
            .as_ref()
            .and_then(|m| m.get(id))
            .is_some_and(|fps| fps.contains(&fp));
        if !known {
            return Err(Error::bad_file(
                &path,
                format!(
                    "this CA certificate (SHA-256 {fp}) is not one the store recorded; put the recorded one back (see `certmesh list --all`)"
                ),
            ));
        }
        Ok(der)
    }

    /// The CA certificates above a leaf, issuing CA first and root last.
    pub fn chain_ders(&self) -> Result<Vec<Vec<u8>>> {
        self.chain_ids()?
            .iter()
            .map(|id| self.cert_der(id))
            .collect()
    }

    /// Ids of the CAs above a leaf, issuing CA first and root last.
    pub fn chain_ids(&self) -> Result<Vec<String>> {
        Ok(self
            .lineage(&self.config.issuing)?
            .into_iter()
            .map(|a| a.id.clone())
            .collect())
    }

    /// The authority `id` and those above it, up to its root (its own parent). The
    /// parent links come from the hand-editable `store.toml`: a missing parent or a loop
    /// is an error naming the file, never an endless walk (opening the store checks this
    /// already; the walk does not depend on it).
    fn lineage(&self, id: &str) -> Result<Vec<&AuthorityEntry>> {
        let config_error = |why: String| Error::bad_file(Self::config_path(&self.home), why);
        let mut out: Vec<&AuthorityEntry> = Vec::new();
        let mut id = id;
        loop {
            let a = self
                .authority(id)
                .ok_or_else(|| config_error(format!("authority '{id}' is not listed")))?;
            if out.iter().any(|seen| seen.id == a.id) {
                return Err(config_error(format!(
                    "the parents of authority '{}' form a cycle instead of ending at a root",
                    out[0].id
                )));
            }
            out.push(a);
            if a.parent == a.id {
                return Ok(out);
            }
            id = &a.parent;
        }
    }

    /// Loads an authority's key (asking `pass` only when it is encrypted) and checks that
    /// it belongs to the certificate.
    pub fn signer(&self, id: &str, pass: PassPrompt<'_>) -> Result<Signer> {
        let entry = self
            .authority(id)
            .ok_or_else(|| Error::Usage(format!("no authority '{id}' in this store")))?
            .clone();
        let cert_der = self.cert_der(id)?;
        let (_, cert) = X509Certificate::from_der(&cert_der)
            .map_err(|_| Error::bad_file(self.cert_path(id), "not a valid certificate"))?;
        let signing = match &entry.pkcs11 {
            Some(token) => {
                let key = TokenKey::open(token, &pass()?, entry.digest)?;
                if cert.public_key().raw != key.spki() {
                    return Err(Error::KeyMismatch {
                        path: None,
                        problem: format!(
                            "{}: the token's key does not match {}",
                            token.uri,
                            self.cert_path(id).display()
                        ),
                    });
                }
                CaKey::Token(key)
            }
            None => {
                let key_path = self.authority_dir(id).join("key.pem");
                let data = zeroize::Zeroizing::new(fsio::read(&key_path)?);
                let key = read_private_key(&key_path, &data, pass)?;
                if !key.matches(&cert) {
                    return Err(Error::KeyMismatch {
                        problem: format!("key does not match {}", self.cert_path(id).display()),
                        path: Some(key_path),
                    });
                }
                CaKey::Memory(key.signing_key(entry.digest)?)
            }
        };
        let not_after = cert.validity().not_after.to_datetime();
        let mut constraints = Vec::new();
        for a in self.lineage(id)? {
            let der = self.cert_der(&a.id)?;
            let (_, c) = X509Certificate::from_der(&der)
                .map_err(|_| Error::bad_file(self.cert_path(&a.id), "not a valid certificate"))?;
            let nc = NameConstraintsSpec::from_cert(&c);
            if !nc.is_empty() {
                constraints.push(nc);
            }
        }
        let issuer = Issuer::from_ca_cert_der(&cert_der.clone().into(), signing)?;
        Ok(Signer {
            id: id.to_string(),
            issuer,
            cert_der,
            not_after,
            constraints,
        })
    }

    fn check_constraints(signer: &Signer, names: &SubjectNames) -> Result<()> {
        for nc in &signer.constraints {
            nc.check(&names.dns, &names.ips)
                .map_err(|why| Error::Refused(format!("refusing to issue: {why}")))?;
        }
        Ok(())
    }

    /// Issues a leaf with a new key into `issued/NAME/`.
    pub fn issue(&self, signer: &Signer, req: &IssueRequest) -> Result<Issued> {
        self.issue_with_key(signer, req, PrivateKey::generate(req.key)?)
    }

    /// Issues a leaf for a key generated beforehand, so that callers issuing many
    /// certificates can generate the keys in parallel.
    pub fn issue_with_key(
        &self,
        signer: &Signer,
        req: &IssueRequest,
        key: PrivateKey,
    ) -> Result<Issued> {
        let (issued, rec) = self.issue_unrecorded(signer, req, key)?;
        self.inventory()?.record(&rec)?;
        Ok(issued)
    }

    /// Starts issuing many leaves into this store, from any number of threads, with the
    /// inventory written once at the end ([`IssueBatch::commit`]): one SQLite transaction
    /// instead of one per certificate. Holds the store's lock until committed or dropped.
    pub fn batch(&self) -> Result<IssueBatch<'_>> {
        let lock = self.lock()?;
        // A run killed while several directories were being staged leaves their staging
        // directories behind (their members are still due, so this run issues them
        // again): remove them, under the store's lock so no other run's are touched.
        let issued = self.home.join("issued");
        if let Ok(entries) = std::fs::read_dir(&issued) {
            for e in entries.flatten() {
                if e.file_name()
                    .to_string_lossy()
                    .starts_with(".certmesh-stage-")
                {
                    std::fs::remove_dir_all(e.path()).map_err(|err| Error::io(e.path(), err))?;
                }
            }
        }
        Ok(IssueBatch {
            store: self,
            records: std::sync::Mutex::new(Vec::new()),
            _lock: lock,
        })
    }

    /// Signs and writes `issued/NAME/`; the caller records the returned inventory entry.
    fn issue_unrecorded(
        &self,
        signer: &Signer,
        req: &IssueRequest,
        key: PrivateKey,
    ) -> Result<(Issued, Record)> {
        check_entry_name(&req.name)?;
        Self::check_constraints(signer, &req.names)?;
        let validity = Validity::new(req.days, Some(signer.not_after))?;
        let target = self.issued(&req.name)?.dir;
        if target.exists() && !req.replace {
            return Err(Error::Refused(format!(
                "{}: already issued; use --force to replace it (the old files are kept under backup/)",
                target.display()
            )));
        }
        let cn = req
            .names
            .dns
            .first()
            .cloned()
            .unwrap_or_else(|| req.name.clone());
        let params = leaf_params(
            &req.names,
            &cn,
            req.profile,
            &validity,
            key.describe(),
            req.data_encipherment,
        )?;
        let public = key.signing_key(Digest::Sha256)?;
        let cert = params.signed_by(&public, &signer.issuer)?;
        let chain = self.chain_ders()?;
        let leaf_pem = to_pem("CERTIFICATE", cert.der());
        let chain_pem: String = chain.iter().map(|d| to_pem("CERTIFICATE", d)).collect();
        let intermediates: String = chain[..chain.len() - 1]
            .iter()
            .map(|d| to_pem("CERTIFICATE", d))
            .collect();
        let root_pem = to_pem("CERTIFICATE", chain.last().expect("chain has a root"));

        let staged = StagedDir::new(&target)?;
        staged.write("key.pem", key.to_pkcs8_pem().as_bytes(), PRIVATE)?;
        staged.write("cert.pem", leaf_pem.as_bytes(), PUBLIC)?;
        staged.write("chain.pem", chain_pem.as_bytes(), PUBLIC)?;
        staged.write(
            "fullchain.pem",
            format!("{leaf_pem}{intermediates}").as_bytes(),
            PUBLIC,
        )?;
        staged.write("ca.pem", root_pem.as_bytes(), PUBLIC)?;
        let backup = if target.exists() {
            // The same name replaced twice in one run keeps both: NAME, then NAME.2.
            let base = self.backup_dir().join("issued");
            let mut path = base.join(&req.name);
            let mut n = 2;
            while path.exists() {
                path = base.join(format!("{}.{n}", req.name));
                n += 1;
            }
            Some(path)
        } else {
            None
        };
        staged.commit(backup.as_deref())?;

        let paths = [
            "key.pem",
            "cert.pem",
            "chain.pem",
            "fullchain.pem",
            "ca.pem",
        ]
        .iter()
        .map(|f| target.join(f).display().to_string())
        .collect();
        let mut rec = record_for(
            cert.der(),
            &signer.cert_der,
            &req.name,
            Kind::Leaf,
            req.profile.name(),
            paths,
        )?;
        rec.sans = req.names.all();
        let mut warnings = Vec::new();
        if validity.clamped {
            warnings.push(format!(
                "validity shortened to end with the issuing CA's on {}",
                validity.not_after.date()
            ));
        }
        if req.data_encipherment && key.describe().kind == KeyType::Ed25519 {
            warnings.push(format!(
                "{}: an Ed25519 key can only sign; its certificate has no encipherment key usage (use an RSA or EC key for a product that encrypts with it)",
                req.name
            ));
        }
        let issued = Issued {
            name: req.name.clone(),
            dir: target,
            serial: rec.serial.clone(),
            not_after: crate::x509::rfc3339_time(validity.not_after),
            sha256: rec.sha256.clone(),
            backup,
            warnings,
        };
        Ok((issued, rec))
    }

    /// Signs a CSR made by another tool. Only the names (DNS and IP) are taken from the
    /// request; everything else comes from the profile.
    pub fn sign_csr(&self, signer: &Signer, req: &SignRequest) -> Result<Signed> {
        if let Some(name) = &req.name {
            check_entry_name(name)?;
        }
        let mut warnings = Vec::new();
        let csr = &req.csr;
        if csr.requests_ca {
            return Err(Error::Refused(
                "refusing to sign: the CSR asks for a CA certificate (basicConstraints CA:TRUE); certmesh signs only end-entity certificates from CSRs".into(),
            ));
        }
        if csr.key.is_weak_rsa() {
            if !req.allow_weak {
                return Err(Error::Refused(format!(
                    "refusing to sign: the CSR's key is RSA-{} (below 2048 bits); regenerate it, or pass --allow-weak",
                    csr.key.bits
                )));
            }
            warnings.push(format!(
                "signing a weak RSA-{} key because --allow-weak was given",
                csr.key.bits
            ));
        }
        if csr.signature_algorithm.is_weak() {
            if !req.allow_weak {
                return Err(Error::Refused(format!(
                    "refusing to sign: the CSR is signed with {} (SHA-1/MD5 are broken); regenerate it with SHA-256, or pass --allow-weak",
                    csr.signature_algorithm
                )));
            }
            warnings.push(format!(
                "accepting a {} signed request because --allow-weak was given",
                csr.signature_algorithm
            ));
        }
        for other in &csr.other_names {
            warnings.push(format!("not copying subjectAltName {other}: the {} profile takes DNS names and IP addresses only", req.profile.name()));
        }
        let mut dns: Vec<String> = csr.dns.clone();
        dns.extend(req.extra_dns.iter().cloned());
        let mut ips = csr.ips.clone();
        ips.extend(req.extra_ips.iter().cloned());
        if dns.is_empty() && ips.is_empty() {
            match &csr.common_name {
                Some(cn) if SubjectNames::new(std::slice::from_ref(cn), &[]).is_ok() => {
                    warnings.push(format!(
                        "the CSR has no subjectAltName; using its CN '{cn}' as the DNS name"
                    ));
                    dns.push(cn.clone());
                }
                Some(cn) => {
                    if let Ok(ip) = cn.parse() {
                        warnings.push(format!(
                            "the CSR has no subjectAltName; using its CN '{cn}' as the IP address"
                        ));
                        ips.push(ip);
                    }
                }
                None => {}
            }
        }
        if dns.is_empty() && ips.is_empty() {
            return Err(Error::Usage(
                "the CSR names no host (no subjectAltName, and no host name in its CN); give --dns or --ip".into(),
            ));
        }
        let names = SubjectNames::new(&dns, &ips)?;
        Self::check_constraints(signer, &names)?;
        let validity = Validity::new(req.days, Some(signer.not_after))?;
        if validity.clamped {
            warnings.push(format!(
                "validity shortened to end with the issuing CA's on {}",
                validity.not_after.date()
            ));
        }
        let cn = match &csr.common_name {
            Some(cn) if names.all().iter().any(|n| n.eq_ignore_ascii_case(cn)) => {
                cn.to_ascii_lowercase()
            }
            _ => names.all()[0].clone(),
        };
        let params = leaf_params(&names, &cn, req.profile, &validity, &csr.key, false)?;
        let spki = rcgen::SubjectPublicKeyInfo::from_der(&csr.spki).map_err(|_| {
            Error::Refused(format!("the CSR's {} key type is not supported", csr.key))
        })?;
        let cert = params.signed_by(&spki, &signer.issuer)?;
        let chain = self.chain_ders()?;
        let intermediates_pem: String = chain[..chain.len() - 1]
            .iter()
            .map(|d| to_pem("CERTIFICATE", d))
            .collect();
        let name = req.name.clone().unwrap_or_else(|| cn.clone());
        let rec = record_for(
            cert.der(),
            &signer.cert_der,
            &name,
            Kind::Leaf,
            req.profile.name(),
            Vec::new(),
        )?;
        Ok(Signed {
            record: Record {
                sans: names.all(),
                ..rec.clone()
            },
            cert_pem: to_pem("CERTIFICATE", cert.der()),
            intermediates_pem,
            serial: rec.serial,
            not_after: crate::x509::rfc3339_time(validity.not_after),
            names: names.all(),
            warnings,
        })
    }

    /// Records a signed CSR in the inventory (after its certificate was written out, so a
    /// failed write leaves the store unchanged).
    pub fn record_signed(&self, signed: &Signed) -> Result<()> {
        self.inventory()?.record(&signed.record)
    }

    /// The backup generation of this run: `backup/<UTC timestamp>`, with a `-N` suffix
    /// when an earlier run already used that second. Every replacement and rollback made
    /// through this `Store` lands in the same generation, so `rollback` undoes the run as
    /// a whole. Callers hold the store's lock, so no other run picks the same name.
    pub fn backup_dir(&self) -> PathBuf {
        self.run_backup
            .get_or_init(|| {
                let now = OffsetDateTime::now_utc();
                let stamp = format!(
                    "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
                    now.year(),
                    u8::from(now.month()),
                    now.day(),
                    now.hour(),
                    now.minute(),
                    now.second()
                );
                let root = self.home.join("backup");
                std::iter::once(root.join(&stamp))
                    .chain((2..).map(|n| root.join(format!("{stamp}-{n}"))))
                    .find(|p| !p.exists())
                    .expect("an unused name exists")
            })
            .clone()
    }
}

/// `issue NAME` becomes a directory name: keep it to one safe path component. Every
/// command and manifest entry that names an issued entry (or a cluster member, which
/// becomes one) is checked here, so `../ca/root` is refused the same way everywhere.
pub fn check_entry_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "invalid name '{}': use up to 128 letters, digits, '.', '-' and '_', not starting with '.' (it becomes a directory name)",
            crate::error::shorten(name)
        )))
    }
}

/// The authorities of `store.toml` must form chains inside the store: every id a plain
/// name (a directory under `ca/`), listed once, every parent listed, and every chain ending
/// at a root (its own parent) without a cycle, which would make issuing loop forever.
fn validate_authorities(config: &StoreConfig) -> std::result::Result<(), String> {
    let mut ids = std::collections::HashSet::new();
    for a in &config.authorities {
        if check_entry_name(&a.id).is_err() {
            return Err(format!(
                "authority id '{}' is not a plain name inside the store",
                crate::error::shorten(&a.id)
            ));
        }
        if !ids.insert(a.id.as_str()) {
            return Err(format!("authority '{}' is listed twice", a.id));
        }
    }
    let by_id: std::collections::HashMap<&str, &AuthorityEntry> = config
        .authorities
        .iter()
        .map(|a| (a.id.as_str(), a))
        .collect();
    for a in &config.authorities {
        let mut cur: &AuthorityEntry = a;
        let mut steps = 0;
        while cur.parent != cur.id {
            cur = *by_id.get(cur.parent.as_str()).ok_or_else(|| {
                format!(
                    "authority '{}' names parent '{}', which is not listed",
                    cur.id,
                    crate::error::shorten(&cur.parent)
                )
            })?;
            steps += 1;
            if steps > config.authorities.len() {
                return Err(format!(
                    "the parents of authority '{}' form a cycle instead of ending at a root",
                    a.id
                ));
            }
        }
    }
    if let Some(r) = &config.rollover {
        for id in [&r.old_root, &r.new_root] {
            if !ids.contains(id.as_str()) {
                return Err(format!(
                    "rollover names authority '{}', which is not listed",
                    crate::error::shorten(id)
                ));
            }
        }
    }
    Ok(())
}

fn record_for(
    der: &[u8],
    issuer_der: &[u8],
    name: &str,
    kind: Kind,
    profile: &str,
    paths: Vec<String>,
) -> Result<Record> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| Error::Crypto(format!("issued certificate does not parse: {e}")))?;
    let (_, issuer) = X509Certificate::from_der(issuer_der)
        .map_err(|e| Error::Crypto(format!("issuer certificate does not parse: {e}")))?;
    let report = crate::cert::describe::describe_cert(&cert, der);
    let mut sans = report.san.dns.clone();
    sans.extend(report.san.ip.iter().cloned());
    Ok(Record {
        serial: crate::x509::serial_hex(cert.raw_serial()),
        name: name.to_string(),
        kind,
        subject: report.subject,
        sans,
        profile: profile.to_string(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        sha256: colon_hex(&sha256(der)),
        issuer_serial: crate::x509::serial_hex(issuer.raw_serial()),
        paths,
        status: Status::Valid,
    })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store as `open` would give it, from `store.toml` text, without the checks `open`
    /// makes (as if the file were edited after the store was opened).
    fn store(toml_text: &str) -> Store {
        Store {
            home: PathBuf::from("/srv/pki"),
            config: toml::from_str(toml_text).unwrap(),
            recorded: Default::default(),
            run_backup: Default::default(),
        }
    }

    const CHAIN: &str = r#"
version = 1
issuing = "issuing"
[[authority]]
id = "root"
parent = "root"
encrypted = false
[[authority]]
id = "mid"
parent = "root"
encrypted = false
[[authority]]
id = "issuing"
parent = "mid"
encrypted = false
"#;

    #[test]
    fn chains_end_at_the_root() {
        let s = store(CHAIN);
        assert_eq!(s.chain_ids().unwrap(), ["issuing", "mid", "root"]);
        assert_eq!(validate_authorities(&s.config), Ok(()));
    }

    #[test]
    fn parent_loops_are_one_clear_error_not_an_endless_walk() {
        let looped = CHAIN.replacen(
            "id = \"root\"\nparent = \"root\"",
            "id = \"root\"\nparent = \"issuing\"",
            1,
        );
        assert_ne!(looped, CHAIN);
        let s = store(&looped);
        let e = s.chain_ids().unwrap_err().to_string();
        assert_eq!(
            e,
            "/srv/pki/store.toml: the parents of authority 'issuing' form a cycle instead of ending at a root"
        );
        // The signer gathers name constraints over the same lineage.
        let e = s.lineage("mid").unwrap_err().to_string();
        assert!(e.contains("authority 'mid' form a cycle"), "{e}");
        assert!(validate_authorities(&s.config).is_err());

        let missing = CHAIN.replacen("parent = \"mid\"", "parent = \"gone\"", 1);
        let e = store(&missing).chain_ids().unwrap_err().to_string();
        assert!(e.ends_with("authority 'gone' is not listed"), "{e}");
    }
}
