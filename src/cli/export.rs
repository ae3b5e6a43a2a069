//! `certmesh export p12 | pem`, and the PKCS#12 part of `certmesh inspect`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand};
use x509_parser::prelude::*;

use certmesh::ca::Store;
use certmesh::fsio::{self, Overwrite, PRIVATE, PRIVATE_DIR, PUBLIC};
use certmesh::key::{read_private_key, PrivateKey};
use certmesh::keystore::pkcs12::{self, stash, Compat, KeyEntry, Target};
use certmesh::pass::Secret;
use certmesh::x509::{read_certs, to_pem};
use certmesh::{Error, Result};

use super::{print_json, secret, Context};

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Write a PKCS#12 keystore (key + chain) or truststore (certificates only).
    #[command(after_help = "Examples:
  certmesh export p12 node1 --out node1.p12 --pass env:P12_PASS
  certmesh export p12 --cert server.crt --key server.key --chain ca.pem --out server.p12 --target java8
  certmesh export p12 --trust ca.pem peer-ca.pem --out trust.p12 --pass file:/etc/pki/pass
  certmesh export p12 ihs --out key.p12 --target ihs --ihs-stash --alias ihs

Modes: modern (default; PBES2 AES-256-CBC, PBKDF2-HMAC-SHA256, MAC HMAC-SHA256) or
legacy (PBEWithSHA1And3-KeyTripleDES-CBC, MAC HMAC-SHA1). --target picks the mode for a
consumer: legacy for java8, openssl1, windows, macos, ibm-jdk, ihs; modern for java11
(11.0.12+), java17, openssl3. The file is decoded again and checked (MAC, key, chain)
before it is written with mode 0600, and the bytes on disk are compared with the checked
ones before certmesh reports success.")]
    P12(P12Args),
    /// Split a PKCS#12 file into key.pem (0600), cert.pem, chain.pem and extra.pem.
    #[command(after_help = "Example:
  certmesh export pem server.p12 --pass env:P12_PASS --out server/

chain.pem holds the CA certificates above the key's certificate, issuing CA first;
every other certificate of the file (other CAs, signers) goes to extra.pem, written only
when there are any. Nothing in the file is left out. A PKCS#12 file without a password
(no MAC, nothing encrypted) is read without one; --pass empty gives an empty password.")]
    Pem(PemArgs),
    /// Write an issued key and its chain as a JKS keystore (one PrivateKeyEntry).
    Jks(super::keystore::ExportJksArgs),
}

#[derive(Debug, Args)]
pub struct P12Args {
    /// Entry under <home>/issued/ to export (its key.pem, cert.pem and chain.pem).
    #[arg(conflicts_with_all = ["cert", "key", "chain", "trust"])]
    pub name: Option<String>,
    /// Certificate file (PEM or DER); extra certificates in it join the chain.
    #[arg(long, value_name = "FILE", requires = "key", conflicts_with = "trust")]
    pub cert: Option<PathBuf>,
    /// Private key file for --cert (any key format certmesh reads; encrypted ones take
    /// --key-pass).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// CA certificates above --cert, issuing CA first (PEM bundle or DER).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub chain: Option<PathBuf>,
    /// Passphrase of an encrypted input key.
    #[arg(long = "key-pass", value_name = "SPEC")]
    pub key_pass: Option<String>,
    /// Write a truststore holding these certificates as trusted entries.
    #[arg(long, value_name = "CERT", num_args = 1.., conflicts_with_all = ["cert", "key", "chain", "no_root"])]
    pub trust: Vec<PathBuf>,
    /// The PKCS#12 file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Password for the new file (env:VAR, file:PATH, fd:N, stdin, pass:TEXT); asked on
    /// the terminal when absent.
    #[arg(long, value_name = "SPEC")]
    pub pass: Option<String>,
    /// Alias (friendlyName). Default: NAME, or the certificate's CN. For truststores:
    /// A, A-2, A-3, ... (default: each certificate's CN).
    #[arg(long)]
    pub alias: Option<String>,
    /// Leave the self-signed root out of the chain.
    #[arg(long = "no-root")]
    pub no_root: bool,
    /// Protection: modern or legacy.
    #[arg(long, value_name = "MODE", conflicts_with = "target")]
    pub compat: Option<String>,
    /// Pick the protection for a consumer: java8, java11, java17, openssl1, openssl3,
    /// windows, macos, ibm-jdk, ihs.
    #[arg(long, value_name = "CONSUMER")]
    pub target: Option<String>,
    /// Also write an IBM GSKit password stash (FILE with .sth), mode 0600.
    #[arg(long = "ihs-stash")]
    pub ihs_stash: bool,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct PemArgs {
    /// The PKCS#12 file.
    pub file: PathBuf,
    /// Its password.
    #[arg(long, value_name = "SPEC")]
    pub pass: Option<String>,
    /// Directory for key.pem, cert.pem and chain.pem (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace existing files.
    #[arg(long)]
    pub force: bool,
}

pub fn run(ctx: &Context, c: ExportCommand) -> Result<i32> {
    match c {
        ExportCommand::P12(a) => p12(ctx, a),
        ExportCommand::Pem(a) => pem(ctx, a),
        ExportCommand::Jks(a) => super::keystore::export_jks(ctx, a),
    }
}

fn overwrite(force: bool) -> Overwrite {
    if force {
        Overwrite::Replace
    } else {
        Overwrite::Refuse
    }
}

fn refuse_existing(paths: &[&Path], force: bool) -> Result<()> {
    if force {
        return Ok(());
    }
    match paths.iter().find(|p| p.exists()) {
        Some(p) => Err(Error::Refused(format!(
            "{}: already exists, not overwritten (use --force to replace it)",
            p.display()
        ))),
        None => Ok(()),
    }
}

fn p12(ctx: &Context, a: P12Args) -> Result<i32> {
    let compat = match (&a.target, &a.compat) {
        (Some(t), _) => Target::parse(t)?.compat(),
        (None, Some(c)) => Compat::parse(c)?,
        (None, None) => Compat::Modern,
    };
    let stash_path = a.out.with_extension("sth");
    let mut targets: Vec<&Path> = vec![&a.out];
    if a.ihs_stash {
        if stash_path == a.out {
            return Err(Error::Usage(format!(
                "{}: the keystore cannot end in .sth when --ihs-stash writes the stash there",
                a.out.display()
            )));
        }
        targets.push(&stash_path);
    }
    refuse_existing(&targets, a.force)?;

    // Everything is read and checked before the password is asked for.
    let contents = if !a.trust.is_empty() {
        let entries = trust_entries(&a.trust, a.alias.as_deref())?;
        check_stash_aliases(a.ihs_stash, entries.iter().map(|(al, _)| al.as_str()))?;
        Contents::Trust(entries)
    } else {
        let (alias, key, certs) = key_entry_inputs(ctx, &a)?;
        check_stash_aliases(a.ihs_stash, [alias.as_str()])?;
        Contents::Key { alias, key, certs }
    };

    let pass =
        secret::obtain_store_password(a.pass.as_deref(), "PKCS#12 password", "--pass", true)?;
    let stash_bytes = if a.ihs_stash {
        Some(stash::encode(&pass)?)
    } else {
        None
    };
    let started = Instant::now();
    let bytes = contents.encode(compat, &pass)?;
    pkcs12::save(&a.out, &bytes, &pass, overwrite(a.force))?;
    if let Some(s) = &stash_bytes {
        if let Err(e) = fsio::write_file(&stash_path, s, PRIVATE, overwrite(a.force)) {
            let _ = std::fs::remove_file(&a.out);
            return Err(e);
        }
    }
    ctx.say(format!(
        "wrote {} ({} mode: {}, MAC {}, {} iterations): {what} in {:.2} s",
        a.out.display(),
        compat.name(),
        compat.encryption_name(),
        compat.mac_name(),
        pkcs12::ITERATIONS,
        started.elapsed().as_secs_f64(),
        what = contents.describe(),
    ));
    if stash_bytes.is_some() {
        ctx.say(format!(
            "wrote {} (GSKit stash, mode 0600)",
            stash_path.display()
        ));
    }
    Ok(0)
}

/// What goes into the new file.
enum Contents {
    Trust(Vec<(String, Vec<u8>)>),
    Key {
        alias: String,
        key: PrivateKey,
        certs: Vec<Vec<u8>>,
    },
}

impl Contents {
    fn encode(&self, compat: Compat, pass: &Secret) -> Result<pkcs12::Pkcs12File> {
        match self {
            Contents::Trust(entries) => pkcs12::trust_store(entries, compat, pass),
            Contents::Key { alias, key, certs } => {
                let entry = KeyEntry { alias, key, certs };
                pkcs12::key_store(&entry, compat, pass)
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Contents::Trust(entries) => format!(
                "truststore with {} trusted certificate(s): {}",
                entries.len(),
                entries
                    .iter()
                    .map(|(al, _)| al.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Contents::Key { alias, key, certs } => format!(
                "key entry '{alias}' ({}) with {} certificate(s)",
                key.describe(),
                certs.len()
            ),
        }
    }
}

/// GSKit looks labels up in lower case, so a stash-using IBM product cannot find an entry
/// whose alias has capitals.
fn check_stash_aliases<'a>(stash: bool, aliases: impl IntoIterator<Item = &'a str>) -> Result<()> {
    if !stash {
        return Ok(());
    }
    for al in aliases {
        if al != al.to_lowercase() {
            return Err(Error::Refused(format!(
                "with --ihs-stash the alias must be lowercase ('{al}' is not); give --alias {}",
                al.to_lowercase()
            )));
        }
    }
    Ok(())
}

/// The alias, key and certificates (leaf first) for a key entry, from the store or from
/// files; refuses a key that does not belong to the certificate.
fn key_entry_inputs(ctx: &Context, a: &P12Args) -> Result<(String, PrivateKey, Vec<Vec<u8>>)> {
    let (key_path, cert_path, chain_path, default_alias) =
        match (&a.name, &a.cert, &a.key) {
            (Some(name), None, None) => {
                certmesh::ca::check_entry_name(name)?;
                let store = Store::open(&ctx.home)?;
                let dir = store.home().join("issued").join(name);
                if !dir.is_dir() {
                    return Err(Error::Usage(format!(
                        "{}: no such issued entry (see `certmesh list`)",
                        dir.display()
                    )));
                }
                (
                    dir.join("key.pem"),
                    dir.join("cert.pem"),
                    Some(dir.join("chain.pem")),
                    Some(name.clone()),
                )
            }
            (None, Some(cert), Some(key)) => (key.clone(), cert.clone(), a.chain.clone(), None),
            _ => return Err(Error::Usage(
                "say what to export: NAME (from the store), --cert and --key, or --trust CERT..."
                    .into(),
            )),
        };
    let key_data = fsio::read(&key_path)?;
    let key = read_private_key(&key_path, &key_data, &mut || {
        secret::obtain(a.key_pass.as_deref(), "key passphrase", "--key-pass", false)
    })?;
    let mut certs = read_certs(&cert_path)?;
    if let Some(chain) = &chain_path {
        for c in read_certs(chain)? {
            if !certs.contains(&c) {
                certs.push(c);
            }
        }
    }
    if !pkcs12::key_matches_cert(&key, &certs[0])? {
        return Err(Error::Refused(format!(
            "{}: the private key does not match the certificate {}",
            key_path.display(),
            cert_path.display()
        )));
    }
    if a.no_root {
        let leaf = certs.remove(0);
        certs.retain(|c| !self_signed(c));
        certs.insert(0, leaf);
    }
    let alias = match (&a.alias, default_alias) {
        (Some(al), _) => al.clone(),
        (None, Some(name)) => name,
        (None, None) => common_name(&certs[0]).unwrap_or_else(|| file_stem(&cert_path)),
    };
    Ok((alias, key, certs))
}

/// Each certificate of each file, with its alias: A, A-2, A-3... with `--alias A`,
/// otherwise its CN, made unique (ignoring case, as Java does) with -2, -3...
fn trust_entries(files: &[PathBuf], alias: Option<&str>) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for f in files {
        for der in read_certs(f)? {
            if out.iter().any(|(_, d)| *d == der) {
                continue;
            }
            let base = match alias {
                Some(a) => a.to_string(),
                None => common_name(&der).unwrap_or_else(|| file_stem(f)),
            };
            let mut candidate = base.clone();
            let mut n = 2;
            while out
                .iter()
                .any(|(a, _)| a.to_lowercase() == candidate.to_lowercase())
            {
                candidate = format!("{base}-{n}");
                n += 1;
            }
            out.push((candidate, der));
        }
    }
    Ok(out)
}

fn self_signed(der: &[u8]) -> bool {
    X509Certificate::from_der(der)
        .map(|(_, c)| c.subject().as_raw() == c.issuer().as_raw())
        .unwrap_or(false)
}

fn common_name(der: &[u8]) -> Option<String> {
    X509Certificate::from_der(der)
        .ok()
        .and_then(|(_, c)| certmesh::x509::common_name(&c))
}

fn file_stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "cert".into())
}

fn pem(ctx: &Context, a: PemArgs) -> Result<i32> {
    let data = fsio::read(&a.file)?;
    if !pkcs12::looks_like_pkcs12(&data) {
        return Err(Error::bad_file(&a.file, "not a PKCS#12 file"));
    }
    let pass = p12_password(&a.file, &data, a.pass.as_deref(), "--pass")?;
    let decoded = pkcs12::decode(&a.file, &data, &pass)?;
    let x = decoded.key_and_chain(&a.file)?;
    let key_path = a.out.join("key.pem");
    let cert_path = a.out.join("cert.pem");
    let chain_path = a.out.join("chain.pem");
    let extra_path = a.out.join("extra.pem");
    let mut targets: Vec<&Path> = vec![&key_path];
    if x.leaf.is_some() {
        targets.extend([cert_path.as_path(), chain_path.as_path()]);
    }
    if !x.extra.is_empty() {
        targets.push(&extra_path);
    }
    refuse_existing(&targets, a.force)?;
    fsio::create_dir(&a.out, PRIVATE_DIR)?;
    fsio::write_file(
        &key_path,
        x.key.to_pkcs8_pem().as_bytes(),
        PRIVATE,
        overwrite(a.force),
    )?;
    let Some(leaf) = &x.leaf else {
        ctx.say(format!(
            "wrote {} ({}) from {}, which holds no certificate",
            key_path.display(),
            x.key.describe(),
            a.file.display()
        ));
        return Ok(0);
    };
    fsio::write_file(
        &cert_path,
        to_pem("CERTIFICATE", leaf).as_bytes(),
        PUBLIC,
        overwrite(a.force),
    )?;
    let chain: String = x.chain.iter().map(|c| to_pem("CERTIFICATE", c)).collect();
    fsio::write_file(&chain_path, chain.as_bytes(), PUBLIC, overwrite(a.force))?;
    if !x.extra.is_empty() {
        let extra: String = x.extra.iter().map(|c| to_pem("CERTIFICATE", c)).collect();
        fsio::write_file(&extra_path, extra.as_bytes(), PUBLIC, overwrite(a.force))?;
    }
    ctx.say(format!(
        "wrote {} ({}), {} and {} ({} CA certificate(s)) from {}",
        key_path.display(),
        x.key.describe(),
        cert_path.display(),
        chain_path.display(),
        x.chain.len(),
        a.file.display()
    ));
    if !x.extra.is_empty() {
        ctx.say(format!(
            "wrote {} ({} other certificate(s) of {}, outside the key's chain)",
            extra_path.display(),
            x.extra.len(),
            a.file.display()
        ));
    }
    Ok(0)
}

/// The password of a PKCS#12 file to read: `empty` allowed, and none asked for a file
/// that has none (no MAC, nothing encrypted).
pub fn p12_password(path: &Path, data: &[u8], spec: Option<&str>, flag: &str) -> Result<Secret> {
    if !pkcs12::needs_password(data) {
        if spec.is_some() {
            super::warn(format!(
                "{}: the PKCS#12 file has no password (no MAC, nothing encrypted); the one given is not used",
                path.display()
            ));
        }
        return Ok(Secret::new(String::new()));
    }
    let what = format!("{}: PKCS#12 password", path.display());
    secret::obtain_store_password(spec, &what, flag, false)
}

/// Prints a PKCS#12 file for `certmesh inspect`: its protection, then every bag. With
/// `json`, one pretty object, or one line per file when `many` files are inspected.
pub fn inspect_p12(
    path: &Path,
    data: &[u8],
    pass: Option<&str>,
    json: bool,
    many: bool,
    flag: &str,
) -> Result<()> {
    let pass = p12_password(path, data, pass, flag)?;
    let decoded = pkcs12::decode(path, data, &pass)?;
    super::truststore::warn_untrusted(path, &decoded);
    let bags = decoded.bags();
    if json {
        #[derive(serde::Serialize)]
        struct Report<'a> {
            file: String,
            encoding: &'static str,
            protection: &'a pkcs12::Outline,
            bags: &'a [pkcs12::BagReport],
        }
        let report = Report {
            file: path.display().to_string(),
            encoding: "PKCS#12",
            protection: &decoded.outline,
            bags: &bags,
        };
        if many {
            println!(
                "{}",
                serde_json::to_string(&report).expect("report serializes")
            );
        } else {
            print_json(&report);
        }
        return Ok(());
    }
    let keys = bags.iter().filter(|b| b.kind == "key").count();
    println!(
        "{}: PKCS#12, {keys} private key(s), {} certificate(s)",
        path.display(),
        bags.len() - keys
    );
    let o = &decoded.outline;
    match &o.mac {
        Some(m) => println!("  MAC:           {m}"),
        None => println!("  MAC:           none (integrity not protected)"),
    }
    for p in &o.content_encryption {
        println!("  certificates:  {p}");
    }
    for p in &o.key_encryption {
        println!("  keys:          {p}");
    }
    if o.uses_weak_cipher() {
        println!("  warning:       40/128-bit RC2 or RC4 protects part of this file; re-export it");
    }
    for (i, b) in bags.iter().enumerate() {
        println!();
        println!(
            "[{i}] {}",
            match b.kind {
                "key" => "private key",
                "certificate" => "certificate",
                _ => b.content.as_deref().unwrap_or("other bag"),
            }
        );
        println!(
            "  alias:         {}",
            b.alias.as_deref().unwrap_or("(none)")
        );
        if let Some(k) = &b.key {
            println!("  key:           {k}");
        }
        if b.kind == "certificate" {
            println!("  trusted:       {}", if b.trusted { "yes" } else { "no" });
        }
        if let Some(id) = &b.local_key_id {
            println!("  localKeyId:    {id}");
        }
        if let Some(s) = &b.subject {
            println!("  subject:       {s}");
        }
        if let (Some(na), Some(d)) = (&b.not_after, b.days_left) {
            let state = if d < 0 {
                format!("EXPIRED {} days ago", -d)
            } else {
                format!("{d} days left")
            };
            println!("  expires:       {na} ({state})");
        }
        if let Some(f) = &b.sha256 {
            println!("  SHA-256:       {f}");
        }
    }
    Ok(())
}
