//! `certmesh ca ...`

use std::path::PathBuf;

use clap::{Args, Subcommand};

use certmesh::ca::{Advance, CaInit, IntermediateInit, RolloverStep, Store};
use certmesh::cert::constraints::NameConstraintsSpec;
use certmesh::inspect::{describe_cert_der, CertReport};
use certmesh::key::token::TokenRef;
use certmesh::key::{Digest, KeyAlg};
use certmesh::pass::Secret;
use certmesh::x509::to_pem;
use certmesh::Result;

use super::{print_json, secret, warn, Context};

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create a CA store with a new self-signed root.
    #[command(after_help = "Examples:
  certmesh ca init --name \"Cluster CA\"
  certmesh ca init --name \"Cluster CA\" --key rsa3072 --days 3650 --permit-dns example.com --permit-ip 10.0.0.0/8
  CA_PASS=... certmesh ca init --name \"Cluster CA\" --key-pass env:CA_PASS")]
    Init(InitArgs),
    /// Create an intermediate CA under the root and make it the issuing CA.
    #[command(after_help = "Example:
  certmesh ca intermediate --name \"Cluster Issuing CA\"")]
    Intermediate(IntermediateArgs),
    /// Adopt an existing root CA (certificate and key made by other tools).
    #[command(after_help = "Examples:
  certmesh ca import --cert ca.crt --key ca.key --pass file:ca.pass
  certmesh ca import --cert ca.crt --key ca.key --key-pass env:CA_PASS

The key may be in any form openssl writes (PKCS#1, SEC1, PKCS#8; PEM or DER; encrypted
or not). It is stored unencrypted (0600) unless --key-pass asks for encryption at rest.")]
    Import(ImportArgs),
    /// Replace the root CA without an outage, one phase per run.
    #[command(after_help = "Examples:
  certmesh ca rollover --ca-pass env:CA_PASS
  certmesh ca rollover --complete
  certmesh --home out/pki/ca ca rollover       # a cluster's CA; cluster apply does the rest

Phases:
  1  certmesh ca rollover            new root (+ cross-certificate); both roots are trusted,
                                     the old generation still issues. Distribute the trust
                                     (cluster apply, or `ca show --pem` to every client).
  2  certmesh ca rollover --complete the new generation issues; renew every leaf
                                     (renew --within 100000d, or cluster apply).
  3  certmesh ca rollover --complete once no valid leaf chains to the old root, it is retired
                                     and leaves the truststores.
`cluster apply` moves a cluster's CA through phases 2 and 3 by itself.")]
    Rollover(RolloverArgs),
    /// Describe the CA, or print the root certificate as PEM.
    #[command(after_help = "Examples:
  certmesh ca show
  certmesh ca show --pem > cluster-ca.pem")]
    Show(ShowArgs),
}

/// Options shared by the commands that create a CA certificate.
#[derive(Debug, Args)]
pub struct CaCertArgs {
    /// Key type: p256, p384, ed25519, rsa2048, rsa3072, rsa4096.
    #[arg(long, default_value = "p256", value_name = "ALG")]
    pub key: String,
    /// Digest for RSA signatures: sha256, sha384, sha512.
    #[arg(long, default_value = "sha256", value_name = "DIGEST")]
    pub digest: String,
    /// Only DNS names in this domain (and below it) may be issued; repeatable.
    #[arg(long = "permit-dns", value_name = "DOMAIN")]
    pub permit_dns: Vec<String>,
    /// Only IP addresses in this network may be issued; repeatable.
    #[arg(long = "permit-ip", value_name = "CIDR")]
    pub permit_ip: Vec<String>,
    /// Encrypt the CA key at rest with this passphrase (PKCS#8, PBES2 AES-256); without
    /// a value, ask on the terminal.
    #[arg(long = "key-pass", value_name = "SPEC", num_args = 0..=1, default_missing_value = "")]
    pub key_pass: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub token: TokenArgs,
}

/// Where a new CA key is made when it must stay in a PKCS#11 token.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Generate the CA key inside this PKCS#11 token (RFC 7512 URI, e.g.
    /// 'pkcs11:token=ca;object=root'), or adopt the key pair already there under that
    /// name; it never leaves the token. RSA 2048-4096 or ECDSA P-256/P-384.
    #[arg(long, value_name = "URI")]
    pub pkcs11: Option<String>,
    /// The PKCS#11 module (default: the URI's module-path).
    #[arg(long, value_name = "PATH", requires = "pkcs11")]
    pub module: Option<PathBuf>,
    /// The token's user PIN (env:VAR, file:PATH, fd:N, stdin; without it, ask).
    #[arg(long, value_name = "SPEC", requires = "pkcs11")]
    pub pin: Option<String>,
}

impl TokenArgs {
    /// The token and its PIN, when --pkcs11 was given. `known` is a PIN already at hand
    /// (the parent CA's, when it lives in a token too).
    fn resolve(&self, known: Option<Secret>) -> Result<Option<(TokenRef, Secret)>> {
        let Some(uri) = &self.pkcs11 else {
            return Ok(None);
        };
        let token = TokenRef::new(uri, self.module.as_deref())?;
        let pin = match (&self.pin, known) {
            (Some(spec), _) => secret::obtain(Some(spec), "token PIN", "--pin", false)?,
            (None, Some(pin)) => pin,
            (None, None) => secret::obtain(None, "token PIN", "--pin", false)?,
        };
        Ok(Some((token, pin)))
    }
}

impl CaCertArgs {
    fn parts(&self) -> Result<(KeyAlg, Digest, NameConstraintsSpec)> {
        Ok((
            KeyAlg::parse(&self.key)?,
            Digest::parse(&self.digest)?,
            NameConstraintsSpec::permit(&self.permit_dns, &self.permit_ip)?,
        ))
    }
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The CA's common name.
    #[arg(long)]
    pub name: String,
    /// Validity in days.
    #[arg(long, default_value_t = 3650)]
    pub days: u32,
    #[command(flatten)]
    pub common: CaCertArgs,
}

#[derive(Debug, Args)]
pub struct IntermediateArgs {
    /// The intermediate's common name (default: the root's name + " Intermediate").
    #[arg(long)]
    pub name: Option<String>,
    /// Validity in days (never beyond the root's).
    #[arg(long, default_value_t = 1825)]
    pub days: u32,
    /// Passphrase of the root CA key, when it is encrypted.
    #[arg(long = "ca-pass", value_name = "SPEC")]
    pub ca_pass: Option<String>,
    #[command(flatten)]
    pub common: CaCertArgs,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The CA certificate (PEM or DER).
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,
    /// The CA private key.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Passphrase of the key file, when it is encrypted.
    #[arg(long, value_name = "SPEC")]
    pub pass: Option<String>,
    /// Encrypt the key in the store with this passphrase; without a value, ask.
    #[arg(long = "key-pass", value_name = "SPEC", num_args = 0..=1, default_missing_value = "")]
    pub key_pass: Option<String>,
    /// Print the CA certificate description as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RolloverArgs {
    /// Move to the next phase (2, then 3) instead of starting a rollover.
    #[arg(long)]
    pub complete: bool,
    /// Retire the old root even though valid certificates still chain to it.
    #[arg(long)]
    pub force: bool,
    /// Common name of the new root (default: the old name with a generation suffix).
    #[arg(long)]
    pub name: Option<String>,
    /// Key type of the new root (default p256) or, with --complete, of the new
    /// intermediate (default: the new root's key type).
    #[arg(long, value_name = "ALG")]
    pub key: Option<String>,
    /// Validity of the new root in days.
    #[arg(long, default_value_t = 3650)]
    pub days: u32,
    /// Passphrase of the CA keys, when they are encrypted (the new ones get the same).
    #[arg(long = "ca-pass", value_name = "SPEC")]
    pub ca_pass: Option<String>,
    /// Print the rollover state as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Print the root certificate as PEM (for clients to trust).
    #[arg(long, conflicts_with = "json")]
    pub pem: bool,
    /// Print the description as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, cmd: CaCommand) -> Result<i32> {
    match cmd {
        CaCommand::Init(a) => init(ctx, a),
        CaCommand::Intermediate(a) => intermediate(ctx, a),
        CaCommand::Import(a) => import(ctx, a),
        CaCommand::Rollover(a) => rollover(ctx, a),
        CaCommand::Show(a) => show(ctx, a),
    }
}

fn key_pass(spec: &Option<String>) -> Result<Option<Secret>> {
    spec.as_deref()
        .map(|s| secret::obtain(Some(s), "new CA key passphrase", "--key-pass", true))
        .transpose()
}

/// Refuses --key-pass with --pkcs11: a token-held key has no file to encrypt.
fn key_secret(
    common: &CaCertArgs,
    known_pin: Option<Secret>,
) -> Result<(Option<TokenRef>, Option<Secret>)> {
    if common.token.pkcs11.is_some() && common.key_pass.is_some() {
        return Err(certmesh::Error::Usage(
            "--key-pass encrypts a key file; a key in a PKCS#11 token has none (use --pin)".into(),
        ));
    }
    match common.token.resolve(known_pin)? {
        Some((token, pin)) => Ok((Some(token), Some(pin))),
        None => Ok((None, key_pass(&common.key_pass)?)),
    }
}

fn init(ctx: &Context, a: InitArgs) -> Result<i32> {
    let (key, digest, constraints) = a.common.parts()?;
    let (token, pass) = key_secret(&a.common, None)?;
    let in_token = token.is_some();
    let opts = CaInit {
        name: a.name,
        key,
        days: a.days,
        digest,
        constraints,
        token,
    };
    let store = Store::init(&ctx.home, &opts, pass.as_ref())?;
    let protection = if in_token {
        KeyPlace::Token
    } else if pass.is_some() {
        KeyPlace::Encrypted
    } else {
        KeyPlace::Plain
    };
    report_root(ctx, &store, "created", protection, a.common.json)?;
    Ok(0)
}

/// Where a new CA key was put, for the one-line report.
#[derive(Clone, Copy)]
enum KeyPlace {
    Plain,
    Encrypted,
    Token,
}

/// Reports a new root: its description as JSON, or one line and its fingerprint.
fn report_root(
    ctx: &Context,
    store: &Store,
    verb: &str,
    place: KeyPlace,
    json: bool,
) -> Result<()> {
    let root = describe_cert_der(&store.cert_path("root"), &store.cert_der("root")?)?;
    if json {
        print_json(&root);
        return Ok(());
    }
    ctx.say(format!(
        "{verb} CA '{}' in {} ({}, expires {}, key {})",
        root.subject.trim_start_matches("CN="),
        ctx.home.display(),
        root.key,
        &root.not_after[..10],
        match place {
            KeyPlace::Encrypted => "encrypted".to_string(),
            KeyPlace::Plain => "unencrypted, 0600".to_string(),
            KeyPlace::Token => format!(
                "in the PKCS#11 token {}",
                store
                    .authority("root")
                    .and_then(|a| a.pkcs11.as_ref())
                    .map_or("", |t| t.uri.as_str())
            ),
        }
    ));
    ctx.say(format!(
        "  SHA-256 fingerprint {}",
        root.fingerprints.sha256
    ));
    Ok(())
}

fn intermediate(ctx: &Context, a: IntermediateArgs) -> Result<i32> {
    let (key, digest, constraints) = a.common.parts()?;
    let mut store = Store::open(&ctx.home)?;
    let _lock = store.lock()?;
    let parent_id = store.issuing().id.clone();
    let parent_encrypted = store.issuing().encrypted;
    let asked = secret::AskOnce::new(a.ca_pass.as_deref(), "CA key passphrase", "--ca-pass");
    let parent = store.signer(&parent_id, &mut || asked.get())?;
    let ca_pass = asked.taken();
    let parent_in_token = store.issuing().pkcs11.is_some();
    // One passphrase for the whole store unless told otherwise: an encrypted root gets an
    // intermediate encrypted with the same passphrase, and a root in a token lends its
    // PIN to an intermediate made in a token.
    let (token, pass) = key_secret(
        &a.common,
        if parent_in_token {
            ca_pass.clone()
        } else {
            None
        },
    )?;
    let pass = match pass {
        Some(p) => Some(p),
        None if parent_encrypted => ca_pass,
        None => None,
    };
    let root_cn = describe_cert_der(&store.cert_path(&parent_id), &store.cert_der(&parent_id)?)?
        .subject
        .trim_start_matches("CN=")
        .to_string();
    let name = a
        .name
        .unwrap_or_else(|| certmesh::cert::derived_ca_name(&root_cn, " Intermediate"));
    let opts = IntermediateInit {
        name: name.clone(),
        key,
        days: a.days,
        digest,
        constraints,
        token,
    };
    for w in store.add_intermediate(&opts, &parent, pass.as_ref())? {
        warn(w);
    }
    let id = store.issuing().id.clone();
    let report = describe_cert_der(&store.cert_path(&id), &store.cert_der(&id)?)?;
    if a.common.json {
        print_json(&report);
    } else {
        ctx.say(format!(
            "created intermediate CA '{name}' ({}, expires {}); it now issues certificates",
            report.key,
            &report.not_after[..10]
        ));
    }
    Ok(0)
}

fn import(ctx: &Context, a: ImportArgs) -> Result<i32> {
    let certs = certmesh::x509::read_certs(&a.cert)?;
    let key_data = zeroize::Zeroizing::new(certmesh::fsio::read(&a.key)?);
    let key = certmesh::key::read_private_key(&a.key, &key_data, &mut || {
        secret::obtain(
            a.pass.as_deref(),
            "passphrase of the key file",
            "--pass",
            false,
        )
    })?;
    let pass = key_pass(&a.key_pass)?;
    let (store, warnings) = Store::import(&ctx.home, &a.cert, &certs[0], key, pass.as_ref())?;
    for w in warnings {
        warn(w);
    }
    let place = if pass.is_some() {
        KeyPlace::Encrypted
    } else {
        KeyPlace::Plain
    };
    report_root(ctx, &store, "imported", place, a.json)?;
    Ok(0)
}

fn rollover(ctx: &Context, a: RolloverArgs) -> Result<i32> {
    // With --json, the JSON is the whole output.
    let quiet = Context {
        home: ctx.home.clone(),
        quiet: ctx.quiet || a.json,
        log: ctx.log.clone(),
    };
    let ctx = &quiet;
    let key = a.key.as_deref().map(KeyAlg::parse).transpose()?;
    let mut store = Store::open(&ctx.home)?;
    let _lock = store.lock()?;
    // The new CA keys are encrypted like the old ones, or made in the same token with
    // the same PIN: either way they need the secret given with --ca-pass.
    let encrypted = store
        .config()
        .authorities
        .iter()
        .any(|x| x.encrypted || x.pkcs11.is_some());
    let asked = secret::AskOnce::new(a.ca_pass.as_deref(), "CA key passphrase", "--ca-pass");
    let mut pass = || asked.get();
    let status = store.rollover_status()?;
    match (status.phase, a.complete) {
        (0, false) => {
            let old = store.current_root();
            let signer = store.signer(&old, &mut pass)?;
            let key_pass = if encrypted { Some(pass()?) } else { None };
            let old_cn = certmesh::x509::common_name(
                &x509_parser::prelude::FromDer::from_der(&store.cert_der(&old)?)
                    .map(|(_, c)| c)
                    .map_err(|_| {
                        certmesh::Error::bad_file(store.cert_path(&old), "not a valid certificate")
                    })?,
            )
            .unwrap_or_else(|| "Cluster CA".into());
            let generation = store
                .config()
                .authorities
                .iter()
                .filter(|x| x.parent == x.id)
                .count()
                + 1;
            let name = a.name.clone().unwrap_or_else(|| {
                certmesh::cert::derived_ca_name(
                    old_cn
                        .trim_end_matches(|c: char| c.is_ascii_digit())
                        .trim_end_matches(" G"),
                    &format!(" G{generation}"),
                )
            });
            let key = key.unwrap_or(KeyAlg::P256);
            let new = store.rollover_begin(&name, key, a.days, &signer, key_pass.as_ref())?;
            ctx.say(format!(
                "phase 1: new root '{name}' ({new}) created; both roots are trusted now"
            ));
            ctx.say("  next: put the new root in every truststore (cluster apply, or `certmesh ca show --pem`), then `certmesh ca rollover --complete`");
        }
        (_, false) => {
            ctx.say(format!(
                "a rollover is in phase {}; `certmesh ca rollover --complete` moves it on",
                status.phase
            ));
        }
        (_, true) => {
            let step = store.advance_rollover(
                Advance::Complete { force: a.force },
                &mut |store, id| store.signer(id, &mut || asked.get()),
                key,
                &mut || Ok(if encrypted { Some(asked.get()?) } else { None }),
            )?;
            match step {
                Some(RolloverStep::Switch) => ctx.say(format!(
                    "phase 2: the new generation issues ({}); renew every certificate next",
                    store.issuing().id
                )),
                Some(RolloverStep::Finish { .. }) => ctx
                    .say("phase 3: the old root is retired; truststores drop it on the next apply"),
                None => {}
            }
        }
    }
    if a.json {
        print_json(&store.rollover_status()?);
    }
    Ok(0)
}

#[derive(serde::Serialize)]
struct AuthorityView {
    id: String,
    issuing: bool,
    key_encrypted: bool,
    /// The PKCS#11 URI of a token-held key.
    #[serde(skip_serializing_if = "Option::is_none")]
    key_pkcs11: Option<String>,
    path: String,
    certificate: CertReport,
}

#[derive(serde::Serialize)]
struct StoreView {
    home: String,
    issuing: String,
    authorities: Vec<AuthorityView>,
}

fn show(ctx: &Context, a: ShowArgs) -> Result<i32> {
    let store = Store::open(&ctx.home)?;
    if a.pem {
        // During a rollover both roots are trust anchors; clients need both.
        for id in store.trust_anchors() {
            print!("{}", to_pem("CERTIFICATE", &store.cert_der(&id)?));
        }
        return Ok(0);
    }
    let mut view = StoreView {
        home: ctx.home.display().to_string(),
        issuing: store.issuing().id.clone(),
        authorities: Vec::new(),
    };
    for auth in &store.config().authorities {
        let path = store.cert_path(&auth.id);
        view.authorities.push(AuthorityView {
            id: auth.id.clone(),
            issuing: auth.id == store.issuing().id,
            key_encrypted: auth.encrypted,
            key_pkcs11: auth.pkcs11.as_ref().map(|t| t.uri.clone()),
            path: path.display().to_string(),
            certificate: describe_cert_der(&path, &store.cert_der(&auth.id)?)?,
        });
    }
    if a.json {
        print_json(&view);
        return Ok(0);
    }
    println!("CA store {}", view.home);
    for auth in &view.authorities {
        let c = &auth.certificate;
        println!();
        println!(
            "{}{}: {}",
            auth.id,
            if auth.issuing { " (issuing)" } else { "" },
            c.subject
        );
        println!(
            "  key:         {} ({})",
            c.key,
            match &auth.key_pkcs11 {
                Some(uri) => format!("in PKCS#11 token, {uri}"),
                None if auth.key_encrypted => "encrypted".into(),
                None => "unencrypted".into(),
            }
        );
        println!(
            "  valid:       {} to {} ({} days left)",
            c.not_before, c.not_after, c.days_left
        );
        println!(
            "  path length: {}",
            c.path_len
                .map(|n| n.to_string())
                .unwrap_or_else(|| "unlimited".into())
        );
        if let Some(nc) = &c.name_constraints {
            let mut names: Vec<String> = nc.permitted_dns.clone();
            names.extend(nc.permitted_ip.iter().map(|n| n.to_string()));
            println!("  permitted:   {}", names.join(", "));
        }
        println!("  SHA-256:     {}", c.fingerprints.sha256);
        println!("  certificate: {}", auth.path);
    }
    Ok(0)
}
