//! `certmesh truststore import | remove | list`: editing Java truststores in place.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use x509_parser::prelude::{FromDer, X509Certificate};

use certmesh::keystore::detect::{detect, StoreFormat};
use certmesh::keystore::jks::{
    normalize_alias, now_millis, Entry, EntryBody, Flavor, Integrity, KeyStore, StoredCert,
};
use certmesh::keystore::pkcs12;
use certmesh::keystore::storefile::StoreFile;
use certmesh::keystore::trust::{bundle_alias, import_certs, ImportOptions, Outcome};
use certmesh::pass::Secret;
use certmesh::x509::{colon_hex, read_certs, rfc3339, sha256};
use certmesh::{Error, Result};

use super::{print_json, secret, warn, Context};

#[derive(Debug, Subcommand)]
pub enum TruststoreCommand {
    /// Add a CA certificate (or each one of a PEM bundle) as a trusted entry.
    Import(ImportArgs),
    /// Remove an entry by alias.
    Remove(RemoveArgs),
    /// List the entries: alias, type, subject, expiry, SHA-256 fingerprint.
    List(ListArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  certmesh truststore import --store client-truststore.jks --alias cluster-ca \\
      --cert pki/issued/node1/ca.pem --storepass env:TRUST_PASS
  certmesh truststore import --store new.jks --create --alias ca --cert ca.pem --storepass file:pw

The file keeps its format (JKS, JCEKS or PKCS#12, recognised by content, not by name), its mode and
its owner; the previous file is kept beside it as FILE.bak-<UTC timestamp>. A bundle of
several certificates gets aliases ALIAS, ALIAS-2, ALIAS-3, ...")]
pub struct ImportArgs {
    /// The keystore file to change.
    #[arg(long, value_name = "FILE")]
    pub store: PathBuf,
    /// Alias for the (first) certificate.
    #[arg(long)]
    pub alias: String,
    /// Certificate file: PEM (one or more certificates) or DER.
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,
    /// Store password (env:VAR, file:PATH, fd:N, stdin, pass:TEXT); asked on a terminal.
    #[arg(long, value_name = "SPEC")]
    pub storepass: Option<String>,
    /// Store format: auto (by content), jks, jceks or pkcs12; for --create, default jks.
    #[arg(long = "type", default_value = "auto", value_name = "TYPE")]
    pub store_type: String,
    /// Create the store if it does not exist.
    #[arg(long)]
    pub create: bool,
    /// Replace a different certificate already under the alias.
    #[arg(long)]
    pub replace: bool,
    /// Add the certificate even when it is already trusted under another alias.
    #[arg(long = "force-duplicate")]
    pub force_duplicate: bool,
    /// For a new PKCS#12 store (--create --type pkcs12): modern (AES-256, Java 11.0.12+)
    /// or legacy (3DES, Java 8).
    #[arg(long, default_value = "modern", value_name = "MODE")]
    pub compat: String,
}

#[derive(Debug, Args)]
#[command(after_help = "Example:
  certmesh truststore remove --store client-truststore.jks --alias old-ca --storepass env:TRUST_PASS")]
pub struct RemoveArgs {
    /// The keystore file to change.
    #[arg(long, value_name = "FILE")]
    pub store: PathBuf,
    /// Alias of the entry to remove (case does not matter).
    #[arg(long)]
    pub alias: String,
    /// Store password (env:VAR, file:PATH, fd:N, stdin, pass:TEXT); asked on a terminal.
    #[arg(long, value_name = "SPEC")]
    pub storepass: Option<String>,
    /// Store format: auto (by content), jks, jceks or pkcs12.
    #[arg(long = "type", default_value = "auto", value_name = "TYPE")]
    pub store_type: String,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  certmesh truststore list --store /etc/ssl/certs/java/cacerts --storepass env:STOREPASS
  certmesh truststore list --store client-truststore.jks --json

Without --storepass the entries are listed but the file's integrity is not checked (as
keytool does), and a warning says so.")]
pub struct ListArgs {
    /// The keystore file to read.
    #[arg(long, value_name = "FILE")]
    pub store: PathBuf,
    /// Store password, to check the file's integrity (env:VAR, file:PATH, fd:N, stdin, pass:TEXT).
    #[arg(long, value_name = "SPEC")]
    pub storepass: Option<String>,
    /// Store format: auto (by content), jks, jceks or pkcs12.
    #[arg(long = "type", default_value = "auto", value_name = "TYPE")]
    pub store_type: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, c: TruststoreCommand) -> Result<i32> {
    match c {
        TruststoreCommand::Import(a) => import(ctx, a),
        TruststoreCommand::Remove(a) => remove(ctx, a),
        TruststoreCommand::List(a) => list(a.store, a.storepass, &a.store_type, a.json),
    }
}

/// The `--type` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeArg {
    Auto,
    Jks,
    Jceks,
    Pkcs12,
}

impl TypeArg {
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(TypeArg::Auto),
            "jks" => Ok(TypeArg::Jks),
            "jceks" => Ok(TypeArg::Jceks),
            "pkcs12" | "p12" => Ok(TypeArg::Pkcs12),
            _ => Err(Error::Usage(format!(
                "unknown keystore type '{s}': expected auto, jks, jceks or pkcs12"
            ))),
        }
    }
}

/// A store's format as these commands handle it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JKS or JCEKS, through certmesh's own codec (entries kept byte for byte).
    Java(Flavor),
    /// PKCS#12, rewritten through the PKCS#12 codec in the mode it was found in.
    Pkcs12,
}

/// Checks the detected format against `--type`.
pub fn format_of(path: &Path, data: &[u8], want: TypeArg) -> Result<Format> {
    let found = detect(data);
    let flavor = match found {
        StoreFormat::Jks => Flavor::Jks,
        StoreFormat::Jceks => Flavor::Jceks,
        StoreFormat::Pkcs12 => {
            return match want {
                TypeArg::Auto | TypeArg::Pkcs12 => Ok(Format::Pkcs12),
                _ => Err(Error::bad_file(
                    path,
                    "is a PKCS#12 keystore, not the --type given",
                )),
            }
        }
        StoreFormat::Unknown => {
            return Err(Error::bad_file(
                path,
                if data.is_empty() {
                    "empty file, not a keystore".to_string()
                } else {
                    "not a keystore certmesh recognises (JKS, JCEKS or PKCS#12)".to_string()
                },
            ))
        }
    };
    let agrees = match want {
        TypeArg::Auto => true,
        TypeArg::Jks => flavor == Flavor::Jks,
        TypeArg::Jceks => flavor == Flavor::Jceks,
        TypeArg::Pkcs12 => false,
    };
    if !agrees {
        return Err(Error::bad_file(
            path,
            format!("is a {} keystore, not the --type given", found.name()),
        ));
    }
    Ok(Format::Java(flavor))
}

/// A store loaded for editing. Decisions (no-op, `--replace`, duplicates) are made on a
/// JKS-shaped view in both cases, so every format decides alike; a PKCS#12 file is then
/// changed bag by bag, so everything not asked for (keys, signers without Java's trusted
/// attribute, secret and unknown bags, the protection) stays as it was.
enum Loaded {
    Java(KeyStore),
    Pkcs12 {
        view: KeyStore,
        pfx: pkcs12::pfx::Pfx,
    },
}

impl Loaded {
    fn view(&mut self) -> &mut KeyStore {
        match self {
            Loaded::Java(ks) => ks,
            Loaded::Pkcs12 { view, .. } => view,
        }
    }

    fn format_name(&self) -> &'static str {
        match self {
            Loaded::Java(ks) => ks.flavor.name(),
            Loaded::Pkcs12 { .. } => "PKCS#12",
        }
    }
}

/// The password of an existing store: not asked for a PKCS#12 file that has none (JDK 18+
/// `cacerts`), which is then written back without one.
fn existing_storepass(
    path: &Path,
    data: &[u8],
    format: Format,
    spec: Option<&str>,
) -> Result<Secret> {
    if format == Format::Pkcs12 && !pkcs12::needs_password(data) {
        if spec.is_some() {
            warn(format!(
                "{}: the PKCS#12 file has no password (no MAC, nothing encrypted); --storepass is not used and the file stays without one",
                path.display()
            ));
        }
        return Ok(Secret::new(String::new()));
    }
    let what = format!("{}: keystore password", path.display());
    secret::obtain_store_password(spec, &what, "--storepass", false)
}

/// Loads a store for editing.
fn load(path: &Path, data: &[u8], format: Format, pass: &Secret) -> Result<Loaded> {
    match format {
        Format::Java(_) => {
            let ks = KeyStore::parse(path, data, Some(pass))?.0;
            warn_duplicate_aliases(path, &ks);
            Ok(Loaded::Java(ks))
        }
        Format::Pkcs12 => {
            let decoded = pkcs12::decode(path, data, pass)?;
            warn_untrusted(path, &decoded);
            let mut view = KeyStore::new(Flavor::Jks);
            for (alias, leaf) in decoded.key_entries() {
                view.entries.push(Entry {
                    alias,
                    timestamp: 0,
                    body: EntryBody::PrivateKey {
                        protected_key: Vec::new(),
                        chain: leaf.map(StoredCert::x509).into_iter().collect(),
                    },
                });
            }
            for (alias, der) in decoded.trusted_certs() {
                view.entries.push(Entry {
                    alias,
                    timestamp: 0,
                    body: EntryBody::TrustedCert(StoredCert::x509(der)),
                });
            }
            Ok(Loaded::Pkcs12 {
                view,
                pfx: decoded.into_pfx(),
            })
        }
    }
}

/// One line on stderr when a PKCS#12 file holds certificates Java will not load as
/// trusted entries (no trusted attribute, no key): they are kept, but Java ignores them.
pub(super) fn warn_untrusted(path: &Path, decoded: &pkcs12::Decoded) {
    let untrusted = decoded.untrusted_certs();
    if untrusted.is_empty() {
        return;
    }
    let subjects: Vec<String> = untrusted.iter().map(|d| cert_facts(d).subject).collect();
    warn(format!(
        "{}: {} certificate(s) without Java's trusted attribute, which Java does not load as trusted entries (kept as they are): {}",
        path.display(),
        untrusted.len(),
        subjects.join("; ")
    ));
}

/// One line on stderr when a JKS/JCEKS file has two entries under one alias (keytool
/// keeps the later one).
fn warn_duplicate_aliases(path: &Path, ks: &KeyStore) {
    let dups = ks.duplicate_aliases();
    if !dups.is_empty() {
        warn(format!(
            "{}: alias(es) '{}' appear more than once; keytool uses the later entry, certmesh keeps the file's entries as they are",
            path.display(),
            dups.join("', '")
        ));
    }
}

/// Applies the view's decisions to a PKCS#12 file: `outcomes` of an import, with the
/// certificates they were for.
fn apply_imports(
    pfx: &mut pkcs12::pfx::Pfx,
    outcomes: &[(String, Outcome)],
    certs: &[Vec<u8>],
) -> Result<()> {
    for ((alias, outcome), der) in outcomes.iter().zip(certs) {
        if matches!(outcome, Outcome::Replaced) {
            remove_trusted(pfx, alias);
        }
        if outcome.changed() {
            pfx.add_trusted(alias, der)?;
        }
    }
    Ok(())
}

/// Removes the trusted-certificate bags named `alias` (ignoring case, as Java does).
fn remove_trusted(pfx: &mut pkcs12::pfx::Pfx, alias: &str) -> usize {
    let want = normalize_alias(alias);
    pfx.remove_where(|b| {
        b.trusted
            && b.certificate()
                .is_some_and(|der| normalize_alias(&pkcs12::bag_alias(b, der)) == want)
    })
}

/// Encodes an edited store in the format and protection it came in.
fn encode(loaded: &Loaded, pass: &Secret) -> Result<Vec<u8>> {
    match loaded {
        Loaded::Java(ks) => ks.to_bytes(pass),
        Loaded::Pkcs12 { pfx, .. } => pfx.to_checked_bytes(pass),
    }
}

/// keytool refuses to make stores with passwords under 6 characters (Java itself does
/// not mind), so a store made with one may surprise the operator later.
pub fn warn_short_storepass(pass: &Secret) {
    if pass.expose().chars().count() < 6 {
        warn("keytool refuses store passwords shorter than 6 characters; Java itself accepts them");
    }
}

fn storepass(spec: Option<&str>, confirm: bool) -> Result<Secret> {
    secret::obtain_store_password(spec, "keystore password", "--storepass", confirm)
}

/// Subject, expiry and SHA-256 fingerprint of a stored certificate.
pub struct CertFacts {
    pub subject: String,
    pub not_after: String,
    pub sha256: String,
}

pub fn cert_facts(der: &[u8]) -> CertFacts {
    let sha = colon_hex(&sha256(der));
    match X509Certificate::from_der(der) {
        Ok((_, c)) => CertFacts {
            subject: c.subject().to_string(),
            not_after: rfc3339(&c.validity().not_after),
            sha256: sha,
        },
        Err(_) => CertFacts {
            subject: "(unparseable certificate)".into(),
            not_after: String::new(),
            sha256: sha,
        },
    }
}

fn import(ctx: &Context, a: ImportArgs) -> Result<i32> {
    let want = TypeArg::parse(&a.store_type)?;
    let certs = read_certs(&a.cert)?;
    let existing = match StoreFile::open_for_update(&a.store) {
        Ok(f) => Some(f),
        Err(Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound && a.create =>
        {
            None
        }
        Err(Error::Io { path, source }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Refused(format!(
                "{}: no such keystore; add --create to make a new one",
                path.display()
            )))
        }
        Err(e) => return Err(e),
    };
    let (mut loaded, pass) = match &existing {
        Some(f) => {
            let format = format_of(&a.store, &f.data, want)?;
            let pass = existing_storepass(&a.store, &f.data, format, a.storepass.as_deref())?;
            (load(&a.store, &f.data, format, &pass)?, pass)
        }
        None => {
            let flavor = match want {
                TypeArg::Auto | TypeArg::Jks => Flavor::Jks,
                TypeArg::Jceks => Flavor::Jceks,
                TypeArg::Pkcs12 => return create_pkcs12(ctx, &a, &certs),
            };
            let pass = storepass(a.storepass.as_deref(), true)?;
            warn_short_storepass(&pass);
            (Loaded::Java(KeyStore::new(flavor)), pass)
        }
    };

    let opts = ImportOptions {
        replace: a.replace,
        force_duplicate: a.force_duplicate,
    };
    let outcomes = import_certs(
        loaded.view(),
        &a.store,
        &a.alias,
        &certs,
        opts,
        now_millis(),
    )?;
    if let Loaded::Pkcs12 { pfx, .. } = &mut loaded {
        apply_imports(pfx, &outcomes, &certs)?;
    }
    let mut added = Vec::new();
    for ((alias, outcome), der) in outcomes.iter().zip(&certs) {
        let facts = cert_facts(der);
        match outcome {
            Outcome::AlreadyPresent => ctx.say(format!(
                "'{alias}' already holds this certificate ({}); nothing to change for it",
                facts.subject
            )),
            Outcome::DuplicateSkipped { trusted_as } => warn(format!(
                "{}: {} is already trusted as '{}'; not added as '{alias}' (use --force-duplicate to add it anyway)",
                a.store.display(),
                facts.subject,
                trusted_as.join("', '"),
            )),
            Outcome::DuplicateAdded { trusted_as } => {
                warn(format!(
                    "{}: {} is also trusted as '{}'",
                    a.store.display(),
                    facts.subject,
                    trusted_as.join("', '")
                ));
                added.push((alias.clone(), facts));
            }
            Outcome::Added | Outcome::Replaced => added.push((alias.clone(), facts)),
        }
    }

    if added.is_empty() {
        ctx.say(format!(
            "{}: unchanged (nothing to import)",
            a.store.display()
        ));
        return Ok(0);
    }
    let bytes = encode(&loaded, &pass)?;
    match &existing {
        Some(f) => {
            let backup = f.replace_keeping_backup(&bytes)?;
            ctx.say(format!(
                "previous {} kept as {}",
                a.store.display(),
                backup.display()
            ));
        }
        None => certmesh::fsio::write_file(
            &a.store,
            &bytes,
            certmesh::fsio::PUBLIC,
            certmesh::fsio::Overwrite::Refuse,
        )?,
    }
    for (alias, f) in &added {
        ctx.say(format!(
            "imported '{alias}' into {} ({}): {}, expires {}, SHA-256 {}",
            a.store.display(),
            loaded.format_name(),
            f.subject,
            f.not_after.get(..10).unwrap_or(""),
            f.sha256
        ));
    }
    Ok(0)
}

/// A new PKCS#12 truststore, through the PKCS#12 codec (which marks every certificate
/// with Java's trusted-certificate attribute). Editing existing PKCS#12 stores is not
/// wired yet.
fn create_pkcs12(ctx: &Context, a: &ImportArgs, certs: &[Vec<u8>]) -> Result<i32> {
    use certmesh::keystore::pkcs12;
    let compat = pkcs12::Compat::parse(&a.compat)?;
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, der) in certs.iter().enumerate() {
        if entries.iter().any(|(_, d)| d == der) {
            warn(format!(
                "{}: the same certificate appears twice in {}; added once",
                a.store.display(),
                a.cert.display()
            ));
            continue;
        }
        entries.push((bundle_alias(&a.alias, i), der.clone()));
    }
    let pass = storepass(a.storepass.as_deref(), true)?;
    warn_short_storepass(&pass);
    let bytes = pkcs12::trust_store(&entries, compat, &pass)?;
    pkcs12::save(&a.store, &bytes, &pass, certmesh::fsio::Overwrite::Refuse)?;
    for (alias, der) in &entries {
        let f = cert_facts(der);
        ctx.say(format!(
            "imported '{alias}' into new {} (PKCS#12 {}): {}, expires {}, SHA-256 {}",
            a.store.display(),
            compat.name(),
            f.subject,
            f.not_after.get(..10).unwrap_or(""),
            f.sha256
        ));
    }
    Ok(0)
}

fn remove(ctx: &Context, a: RemoveArgs) -> Result<i32> {
    let want = TypeArg::parse(&a.store_type)?;
    let f = StoreFile::open_for_update(&a.store)?;
    let format = format_of(&a.store, &f.data, want)?;
    let pass = existing_storepass(&a.store, &f.data, format, a.storepass.as_deref())?;
    let mut loaded = load(&a.store, &f.data, format, &pass)?;
    let Some(gone) = loaded.view().remove(&a.alias) else {
        return Err(Error::Refused(format!(
            "{}: no entry with alias '{}'",
            a.store.display(),
            a.alias
        )));
    };
    if let Loaded::Java(ks) = &mut loaded {
        // keytool keeps only the later of two entries under one alias, so after its
        // delete the alias is gone: the earlier copies go too.
        while ks.remove(&a.alias).is_some() {}
    }
    if let Loaded::Pkcs12 { pfx, .. } = &mut loaded {
        match &gone.body {
            EntryBody::PrivateKey { .. } => {
                pfx.remove_key_entry(&gone.alias);
            }
            _ => {
                remove_trusted(pfx, &gone.alias);
            }
        }
    }
    let bytes = encode(&loaded, &pass)?;
    let backup = f.replace_keeping_backup(&bytes)?;
    ctx.say(format!(
        "removed '{}' ({}) from {}; previous file kept as {}",
        gone.alias,
        gone.body.type_name(),
        a.store.display(),
        backup.display()
    ));
    Ok(0)
}

#[derive(serde::Serialize)]
struct ListReport {
    file: String,
    format: StoreFormat,
    integrity: &'static str,
    entries: Vec<ListEntry>,
}

#[derive(serde::Serialize)]
struct ListEntry {
    alias: String,
    #[serde(rename = "type")]
    kind: &'static str,
    created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chain_length: Option<usize>,
}

/// `truststore list` and `keystore list`.
pub fn list(store: PathBuf, spec: Option<String>, store_type: &str, json: bool) -> Result<i32> {
    let want = TypeArg::parse(store_type)?;
    let f = StoreFile::open(&store)?;
    let flavor = match format_of(&store, &f.data, want)? {
        Format::Java(flavor) => flavor,
        Format::Pkcs12 => {
            // PKCS#12 is encrypted as a whole: listing needs the password, and
            // `inspect` already describes every bag of such a file.
            return super::export::inspect_p12(
                &store,
                &f.data,
                spec.as_deref(),
                json,
                false,
                "--storepass",
            )
            .map(|_| 0);
        }
    };
    let pass = match spec.as_deref() {
        Some(s) if !s.is_empty() => Some(storepass(Some(s), false)?),
        _ => None,
    };
    let (ks, integrity) = KeyStore::parse(&store, &f.data, pass.as_ref())?;
    if integrity == Integrity::NotChecked {
        warn(format!(
            "{}: integrity not checked (no --storepass given); the entries below may have been altered",
            store.display()
        ));
    }
    warn_duplicate_aliases(&store, &ks);
    // keytool loads entries into a map, so of two entries under one alias the later
    // one is what Java sees; list that one.
    let visible = |i: usize, e: &Entry| {
        ks.entries[i + 1..]
            .iter()
            .all(|later| normalize_alias(&later.alias) != normalize_alias(&e.alias))
    };
    for e in &ks.entries {
        if let EntryBody::SecretKey { sealed } = &e.body {
            if let Some(class) = certmesh::keystore::jceks::unreadable_sealed_class(sealed) {
                warn(format!(
                    "{}: entry '{}' is a sealed object of class {class}, not a secret key Java can read (keytool cannot load it either); kept as it is",
                    store.display(),
                    e.alias
                ));
            }
        }
    }
    let entries: Vec<ListEntry> = ks
        .entries
        .iter()
        .enumerate()
        .filter(|(i, e)| visible(*i, e))
        .map(|(_, e)| {
            let facts = e.body.first_cert().map(|c| cert_facts(&c.der));
            let created = time::OffsetDateTime::from_unix_timestamp(e.timestamp.div_euclid(1000))
                .map(certmesh::x509::rfc3339_time)
                .unwrap_or_default();
            let unreadable = matches!(&e.body, EntryBody::SecretKey { sealed }
                if certmesh::keystore::jceks::unreadable_sealed_class(sealed).is_some());
            ListEntry {
                alias: e.alias.clone(),
                kind: if unreadable {
                    "unreadable"
                } else {
                    e.body.type_name()
                },
                created,
                subject: facts.as_ref().map(|f| f.subject.clone()),
                not_after: facts.as_ref().map(|f| f.not_after.clone()),
                sha256: facts.as_ref().map(|f| f.sha256.clone()),
                chain_length: match &e.body {
                    EntryBody::PrivateKey { chain, .. } => Some(chain.len()),
                    _ => None,
                },
            }
        })
        .collect();
    if json {
        print_json(&ListReport {
            file: store.display().to_string(),
            format: match flavor {
                Flavor::Jks => StoreFormat::Jks,
                Flavor::Jceks => StoreFormat::Jceks,
            },
            integrity: match integrity {
                Integrity::Verified => "verified",
                Integrity::NotChecked => "not-checked",
            },
            entries,
        });
        return Ok(0);
    }
    println!(
        "{}: {} keystore, {} entr{}",
        store.display(),
        flavor.name(),
        entries.len(),
        if entries.len() == 1 { "y" } else { "ies" }
    );
    for e in &entries {
        println!();
        println!("{}  {}", e.alias, e.kind);
        if let Some(s) = &e.subject {
            println!("  subject  {s}");
        }
        if let Some(n) = &e.not_after {
            println!("  expires  {n}");
        }
        if let Some(n) = e.chain_length {
            println!("  chain    {n} certificate(s)");
        }
        if let Some(s) = &e.sha256 {
            println!("  SHA-256  {s}");
        }
    }
    Ok(0)
}
