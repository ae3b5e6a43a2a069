//! `certmesh keystore create | list` and `certmesh export jks`: Java keystores holding a
//! private key and its chain, as Tomcat, WSO2 (`wso2carbon.jks`) and other Java servers
//! load them.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use x509_parser::prelude::{FromDer, X509Certificate};

use certmesh::ca::IssuedEntry;
use certmesh::key::{read_private_key, PrivateKey};
use certmesh::keystore::jks::{now_millis, Flavor, KeyStore};
use certmesh::keystore::pkcs12;
use certmesh::keystore::storefile::StoreFile;
use certmesh::pass::Secret;
use certmesh::x509::read_certs;
use certmesh::{Error, Result};

use super::{secret, Context};
use certmesh::keystore::edit::{cert_facts, StoreType};

#[derive(Debug, Subcommand)]
pub enum KeystoreCommand {
    /// Make a keystore holding one private key with its certificate chain.
    Create(CreateArgs),
    /// List the entries of a keystore (same as `truststore list`).
    List(super::truststore::ListArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "Example:
  certmesh keystore create --cert node1.crt --key node1.key --chain ca-chain.pem \\
      --out wso2carbon.jks --type jks --alias wso2carbon --storepass env:KS_PASS

The key password is the store password unless --keypass is given: Java servers that take
one password (Tomcat's keystorePass, WSO2's carbon.xml) need them equal. PKCS#12 files
take one password for both.")]
pub struct CreateArgs {
    /// Certificate (PEM or DER); further certificates in a PEM file extend the chain.
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,
    /// Private key (PEM or DER, PKCS#8; encrypted keys ask for --key-in-pass).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// CA certificates above the certificate, issuing CA first.
    #[arg(long, value_name = "FILE")]
    pub chain: Option<PathBuf>,
    /// The keystore to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Keystore format: jks or pkcs12.
    #[arg(long = "type", value_name = "TYPE")]
    pub store_type: String,
    /// PKCS#12 protection: modern (AES-256, Java 11.0.12+, OpenSSL 3) or legacy (3DES,
    /// Java 8, OpenSSL 1.x, Windows). Ignored for jks.
    #[arg(long, default_value = "modern", value_name = "MODE")]
    pub compat: String,
    /// Alias of the key entry.
    #[arg(long)]
    pub alias: String,
    /// Store password (env:VAR, file:PATH, fd:N, stdin, pass:TEXT); asked on a terminal.
    #[arg(long, value_name = "SPEC")]
    pub storepass: Option<String>,
    /// Key password, when it must differ from the store password.
    #[arg(long, value_name = "SPEC")]
    pub keypass: Option<String>,
    /// Passphrase of the --key file, when it is encrypted.
    #[arg(long = "key-in-pass", value_name = "SPEC")]
    pub key_in_pass: Option<String>,
    /// Replace an existing --out file (the old one is kept as FILE.bak-<timestamp>).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Example:
  certmesh export jks node1 --out wso2carbon.jks --alias wso2carbon --storepass env:KS_PASS

The entry holds issued/NAME/key.pem with the chain cert.pem + chain.pem (root last). The
key password is the store password unless --keypass is given.")]
pub struct ExportJksArgs {
    /// Name of the issued entry (a directory under <home>/issued/).
    pub name: String,
    /// The keystore to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Alias of the key entry (default: NAME).
    #[arg(long)]
    pub alias: Option<String>,
    /// Store password (env:VAR, file:PATH, fd:N, stdin, pass:TEXT); asked on a terminal.
    #[arg(long, value_name = "SPEC")]
    pub storepass: Option<String>,
    /// Key password, when it must differ from the store password.
    #[arg(long, value_name = "SPEC")]
    pub keypass: Option<String>,
    /// Replace an existing --out file (the old one is kept as FILE.bak-<timestamp>).
    #[arg(long)]
    pub force: bool,
}

pub fn run(ctx: &Context, c: KeystoreCommand) -> Result<i32> {
    match c {
        KeystoreCommand::Create(a) => create(ctx, a),
        KeystoreCommand::List(a) => {
            super::truststore::list(a.store, a.storepass, &a.store_type, a.json)
        }
    }
}

fn create(ctx: &Context, a: CreateArgs) -> Result<i32> {
    let format = match StoreType::parse(&a.store_type) {
        Ok(StoreType::Jks) => OutFormat::Jks,
        Ok(StoreType::Pkcs12) => OutFormat::Pkcs12(pkcs12::Compat::parse(&a.compat)?),
        _ => {
            return Err(Error::Usage(format!(
                "unknown keystore type '{}' for keystore create: expected jks or pkcs12",
                a.store_type.to_ascii_lowercase()
            )))
        }
    };
    let mut chain = read_certs(&a.cert)?;
    if let Some(c) = &a.chain {
        chain.extend(read_certs(c)?);
    }
    let data = certmesh::fsio::read(&a.key)?;
    let key = read_private_key(&a.key, &data, &mut || {
        secret::obtain(
            a.key_in_pass.as_deref(),
            "passphrase of the key file",
            "--key-in-pass",
            false,
        )
    })?;
    check_match(&a.key, &key, &chain[0])?;
    let spec = Options {
        storepass: a.storepass.as_deref(),
        keypass: a.keypass.as_deref(),
        force: a.force,
        format,
    };
    write_key_store(ctx, &a.out, &a.alias, &key, chain, spec)
}

pub fn export_jks(ctx: &Context, a: ExportJksArgs) -> Result<i32> {
    // The same check as `export p12 NAME`: NAME must stay a directory under issued/.
    let entry = IssuedEntry::at(&ctx.home, &a.name)?;
    if !entry.exists() {
        return Err(Error::Refused(format!(
            "{}: no issued entry '{}' (see certmesh list)",
            entry.dir.display(),
            a.name
        )));
    }
    let key_path = entry.key_path();
    let key = entry.read_key(&mut || {
        Err(Error::bad_file(
            &key_path,
            "issued keys are expected unencrypted",
        ))
    })?;
    let chain = entry.read_chain()?;
    check_match(&key_path, &key, &chain[0])?;
    let alias = a.alias.clone().unwrap_or_else(|| a.name.clone());
    let spec = Options {
        storepass: a.storepass.as_deref(),
        keypass: a.keypass.as_deref(),
        force: a.force,
        format: OutFormat::Jks,
    };
    write_key_store(ctx, &a.out, &alias, &key, chain, spec)
}

/// What `keystore create` writes.
#[derive(Clone, Copy)]
enum OutFormat {
    Jks,
    Pkcs12(pkcs12::Compat),
}

/// How the keystore is to be written.
struct Options<'a> {
    storepass: Option<&'a str>,
    keypass: Option<&'a str>,
    force: bool,
    format: OutFormat,
}

/// The certificate must carry the key's public half, or Java servers fail at start-up
/// with an obscure message.
fn check_match(key_path: &Path, key: &PrivateKey, cert: &[u8]) -> Result<()> {
    let (_, c) = X509Certificate::from_der(cert)
        .map_err(|_| Error::Refused("the certificate does not parse".into()))?;
    if !key.matches(&c) {
        return Err(Error::KeyMismatch {
            path: Some(key_path.to_path_buf()),
            problem: format!(
                "this key does not belong to the certificate {}",
                c.subject()
            ),
        });
    }
    Ok(())
}

fn write_key_store(
    ctx: &Context,
    out: &Path,
    alias: &str,
    key: &PrivateKey,
    chain: Vec<Vec<u8>>,
    pw: Options<'_>,
) -> Result<i32> {
    let (force, format) = (pw.force, pw.format);
    let existing = if out.exists() || out.is_symlink() {
        if out.is_symlink() {
            // A link could lead the new keystore (and its key) anywhere.
            return Err(Error::Refused(format!(
                "{}: is a symbolic link, not replaced; give the file it points to with --out",
                out.display()
            )));
        }
        if !force {
            return Err(Error::Refused(format!(
                "{}: already exists, not overwritten (use --force to replace it)",
                out.display()
            )));
        }
        Some(StoreFile::open_for_update(out)?)
    } else {
        None
    };
    let storepass =
        secret::obtain_store_password(pw.storepass, "keystore password", "--storepass", true)?;
    let keypass: Secret = match pw.keypass {
        Some(s) => secret::obtain(Some(s), "key password", "--keypass", true)?,
        None => storepass.clone(),
    };
    super::truststore::warn_short_storepass(&storepass);
    let facts = cert_facts(&chain[0]);
    let n = chain.len();
    let (bytes, stored_alias, kind) = match format {
        OutFormat::Jks => {
            let mut ks = KeyStore::new(Flavor::Jks);
            ks.set_private_key(alias, key.pkcs8_der(), chain, &keypass, now_millis())?;
            let alias = ks.entries[0].alias.clone();
            (ks.to_bytes(&storepass)?, alias, "JKS".to_string())
        }
        OutFormat::Pkcs12(compat) => {
            if keypass.expose() != storepass.expose() {
                return Err(Error::Refused(
                    "PKCS#12 keystores are written with one password: drop --keypass, or make it the store password".into(),
                ));
            }
            let entry = pkcs12::KeyEntry {
                alias,
                key,
                certs: &chain,
            };
            let bytes = pkcs12::key_store(&entry, compat, &storepass)?.into_bytes();
            (
                bytes,
                alias.to_string(),
                format!("PKCS#12 {}", compat.name()),
            )
        }
    };
    match existing {
        Some(f) => {
            // A new file of certmesh's own (owner, mode 0600), never the old one rewritten:
            // whoever owned or could read the old file gets no hold on the new key.
            let b = f.replace_with_new_file(&bytes, certmesh::fsio::PRIVATE)?;
            ctx.say(format!(
                "previous {} kept as {}",
                out.display(),
                b.display()
            ));
        }
        None => certmesh::fsio::write_file(
            out,
            &bytes,
            certmesh::fsio::PRIVATE,
            certmesh::fsio::Overwrite::Refuse,
        )?,
    }
    ctx.say(format!(
        "wrote {} ({kind}): PrivateKeyEntry '{stored_alias}' for {} with {} certificate(s), SHA-256 {}",
        out.display(),
        facts.subject,
        n,
        facts.sha256
    ));
    Ok(0)
}
