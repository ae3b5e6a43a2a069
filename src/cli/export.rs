//! `certmesh export p12 | pem`, and the PKCS#12 part of `certmesh inspect`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand};

use certmesh::ca::Store;
use certmesh::fsio::{self, Overwrite, PRIVATE, PRIVATE_DIR, PUBLIC};
use certmesh::key::read_private_key;
use certmesh::keystore::bundle::Contents;
use certmesh::keystore::pkcs12::{self, stash, Compat, Target};
use certmesh::x509::{read_certs, to_pem};
use certmesh::{Error, Result};

use super::{secret, Context};

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
    super::refuse_existing(&targets, a.force)?;

    // Everything is read and checked before the password is asked for.
    let contents = if !a.trust.is_empty() {
        Contents::trust(&a.trust, a.alias.as_deref())?
    } else {
        key_entry(ctx, &a)?
    };
    if a.ihs_stash {
        contents.check_stash_aliases()?;
    }

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

/// The key entry to export, from the store (NAME) or from files (--cert, --key, --chain).
fn key_entry(ctx: &Context, a: &P12Args) -> Result<Contents> {
    let ask = || secret::obtain(a.key_pass.as_deref(), "key passphrase", "--key-pass", false);
    let (key, certs, key_path, cert_path, default_alias) =
        match (&a.name, &a.cert, &a.key) {
            (Some(name), None, None) => {
                // A bad name is refused before the store is looked for.
                certmesh::ca::check_entry_name(name)?;
                let entry = Store::open(&ctx.home)?.issued(name)?;
                if !entry.exists() {
                    return Err(Error::Usage(format!(
                        "{}: no such issued entry (see `certmesh list`)",
                        entry.dir.display()
                    )));
                }
                let key = entry.read_key(&mut || ask())?;
                let certs = entry.read_chain()?;
                (
                    key,
                    certs,
                    entry.key_path(),
                    entry.cert_path(),
                    Some(name.clone()),
                )
            }
            (None, Some(cert), Some(key_path)) => {
                let data = fsio::read(key_path)?;
                let key = read_private_key(key_path, &data, &mut || ask())?;
                let mut certs = read_certs(cert)?;
                if let Some(chain) = &a.chain {
                    for c in read_certs(chain)? {
                        if !certs.contains(&c) {
                            certs.push(c);
                        }
                    }
                }
                (key, certs, key_path.clone(), cert.clone(), None)
            }
            _ => return Err(Error::Usage(
                "say what to export: NAME (from the store), --cert and --key, or --trust CERT..."
                    .into(),
            )),
        };
    Contents::key(
        key,
        certs,
        &key_path,
        &cert_path,
        a.alias.clone().or(default_alias),
        a.no_root,
    )
}

fn pem(ctx: &Context, a: PemArgs) -> Result<i32> {
    let data = fsio::read(&a.file)?;
    if !pkcs12::looks_like_pkcs12(&data) {
        return Err(Error::bad_file(&a.file, "not a PKCS#12 file"));
    }
    let pass = super::p12view::p12_password(&a.file, &data, a.pass.as_deref(), "--pass")?;
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
    super::refuse_existing(&targets, a.force)?;
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
