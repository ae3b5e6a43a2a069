//! `certmesh truststore import | remove | list`: editing Java truststores in place.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use certmesh::keystore::edit::{
    cert_facts, format_of, list_java, short_storepass_warning, Editable, Format, StoreType,
};
use certmesh::keystore::jks::{now_millis, Flavor};
use certmesh::keystore::storefile::StoreFile;
use certmesh::keystore::trust::{bundle_alias, ImportOptions, Outcome};
use certmesh::pass::Secret;
use certmesh::x509::read_certs;
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

/// The password of an existing store: not asked for a PKCS#12 file that has none (JDK 18+
/// `cacerts`), which is then written back without one.
fn existing_storepass(
    path: &Path,
    data: &[u8],
    format: Format,
    spec: Option<&str>,
) -> Result<Secret> {
    if !format.needs_password(data) {
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

/// Loads a store for editing, printing its warnings.
fn load(path: &Path, data: &[u8], format: Format, pass: &Secret) -> Result<Editable> {
    let (loaded, warnings) = Editable::load(path, data, format, pass)?;
    warnings.into_iter().for_each(warn);
    Ok(loaded)
}

/// keytool refuses to make stores with passwords under 6 characters.
pub fn warn_short_storepass(pass: &Secret) {
    if let Some(w) = short_storepass_warning(pass) {
        warn(w);
    }
}

fn storepass(spec: Option<&str>, confirm: bool) -> Result<Secret> {
    secret::obtain_store_password(spec, "keystore password", "--storepass", confirm)
}

fn import(ctx: &Context, a: ImportArgs) -> Result<i32> {
    let want = StoreType::parse(&a.store_type)?;
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
                StoreType::Auto | StoreType::Jks => Flavor::Jks,
                StoreType::Jceks => Flavor::Jceks,
                StoreType::Pkcs12 => return create_pkcs12(ctx, &a, &certs),
            };
            let pass = storepass(a.storepass.as_deref(), true)?;
            warn_short_storepass(&pass);
            (Editable::new_java(flavor), pass)
        }
    };

    let opts = ImportOptions {
        replace: a.replace,
        force_duplicate: a.force_duplicate,
    };
    let outcomes = loaded.import(&a.store, &a.alias, &certs, opts, now_millis())?;
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
    let bytes = loaded.encode(&pass)?;
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
    let want = StoreType::parse(&a.store_type)?;
    let f = StoreFile::open_for_update(&a.store)?;
    let format = format_of(&a.store, &f.data, want)?;
    let pass = existing_storepass(&a.store, &f.data, format, a.storepass.as_deref())?;
    let mut loaded = load(&a.store, &f.data, format, &pass)?;
    let Some(gone) = loaded.remove(&a.alias) else {
        return Err(Error::Refused(format!(
            "{}: no entry with alias '{}'",
            a.store.display(),
            a.alias
        )));
    };
    let bytes = loaded.encode(&pass)?;
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

/// `truststore list` and `keystore list`.
pub fn list(store: PathBuf, spec: Option<String>, store_type: &str, json: bool) -> Result<i32> {
    let want = StoreType::parse(store_type)?;
    let f = StoreFile::open(&store)?;
    if format_of(&store, &f.data, want)? == Format::Pkcs12 {
        // PKCS#12 is encrypted as a whole: listing needs the password, and
        // `inspect` already describes every bag of such a file.
        return super::p12view::inspect_p12(
            &store,
            &f.data,
            spec.as_deref(),
            json,
            false,
            "--storepass",
        )
        .map(|_| 0);
    }
    let pass = match spec.as_deref() {
        Some(s) if !s.is_empty() => Some(storepass(Some(s), false)?),
        _ => None,
    };
    let listing = list_java(&store, &f.data, pass.as_ref())?;
    listing.warnings.iter().for_each(warn);
    let entries = &listing.entries;
    if json {
        print_json(&listing);
        return Ok(0);
    }
    println!(
        "{}: {} keystore, {} entr{}",
        store.display(),
        listing.flavor.name(),
        entries.len(),
        if entries.len() == 1 { "y" } else { "ies" }
    );
    for e in entries {
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
