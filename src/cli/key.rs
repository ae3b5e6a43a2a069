//! `certmesh key gen | strip | encrypt | convert | match`
//!
//! Each subcommand does one thing to one key file, so that a protection is never added or
//! removed as a side effect: `strip` removes it, `encrypt` adds it, `convert` only
//! changes the encoding of an unencrypted key.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use certmesh::fsio::{self, Overwrite};
use certmesh::key::{
    self, Cipher, Encoding, KeyAlg, KeyFormat, KeyOutput, LoadedKey, PrivateKey, Protection,
};
use certmesh::pass::Secret;
use certmesh::{Error, Result};

use super::{print_json, secret, warn, Context};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate a private key.
    Gen(GenArgs),
    /// Write a key without its passphrase.
    Strip(StripArgs),
    /// Write a key encrypted with a passphrase.
    Encrypt(EncryptArgs),
    /// Change the encoding of an unencrypted key (PEM/DER, PKCS#8/traditional).
    Convert(ConvertArgs),
    /// Check that a key belongs to a certificate (exit 0 if so, 1 if not).
    Match(MatchArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  certmesh key gen --key p256 --out node1.key
  certmesh key gen --key rsa3072 --out ca.key --pass env:CA_PASS")]
pub struct GenArgs {
    /// Key type: p256, p384, ed25519, rsa2048, rsa3072, rsa4096.
    #[arg(long, default_value = "p256", value_name = "ALG")]
    pub key: String,
    /// Output file (created with mode 0600).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Encrypt the key (PKCS#8, PBES2 AES-256) with this passphrase source.
    #[arg(long, value_name = "SPEC")]
    pub pass: Option<String>,
    /// Encrypt, asking for the passphrase on the terminal when --pass is not given.
    #[arg(long)]
    pub encrypt: bool,
    /// pkcs8 or traditional (PKCS#1 for RSA, SEC1 for EC; unencrypted only).
    #[arg(long, default_value = "pkcs8", value_name = "FORMAT")]
    pub format: String,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  certmesh key strip server.key --out server-nopass.key --pass env:KEY_PASS
  certmesh key strip proxy.key --out proxy-plain.pem --format traditional
  certmesh key strip server.key --in-place --pass file:/root/keypass

Reads PKCS#8, PKCS#1 and SEC1 keys, PEM or DER, unencrypted, encrypted PKCS#8 or legacy
'Proc-Type: 4,ENCRYPTED' PEM. The output keeps the input's encoding unless --format or
--to say otherwise; traditional (BEGIN RSA/EC PRIVATE KEY) is what Apache's
SSLProxyMachineCertificateFile needs. --in-place keeps the original as FILE.bak
(or FILE.bak.N).")]
pub struct StripArgs {
    /// The key file.
    pub input: PathBuf,
    /// Output file (created with mode 0600).
    #[arg(long, value_name = "FILE", required_unless_present = "in_place")]
    pub out: Option<PathBuf>,
    /// Replace the input file, keeping the original as a backup next to it.
    #[arg(long, conflicts_with = "out")]
    pub in_place: bool,
    /// Passphrase source for the input key, if it is encrypted.
    #[arg(long, value_name = "SPEC")]
    pub pass: Option<String>,
    /// pkcs8 or traditional; default: as the input.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// pem or der; default: as the input.
    #[arg(long, value_name = "ENCODING")]
    pub to: Option<String>,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  certmesh key encrypt server.key --out server-enc.key --pass env:KEY_PASS
  certmesh key encrypt server.key --out legacy.key --pass env:KEY_PASS --legacy-pem --cipher des3

Writes encrypted PKCS#8 (PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC by default). --legacy-pem
writes OpenSSL 1.x 'Proc-Type: 4,ENCRYPTED' PEM around a PKCS#1/SEC1 key, for consumers
that read nothing else; its key derivation is a single MD5, so use it only for them.")]
pub struct EncryptArgs {
    /// The key file.
    pub input: PathBuf,
    /// Output file (created with mode 0600).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Passphrase source for the new encryption; asked on the terminal if not given.
    #[arg(long, value_name = "SPEC")]
    pub pass: Option<String>,
    /// Passphrase source for the input key, if it is already encrypted.
    #[arg(long = "in-pass", value_name = "SPEC")]
    pub in_pass: Option<String>,
    /// aes256, aes128 or des3.
    #[arg(long, default_value = "aes256", value_name = "CIPHER")]
    pub cipher: String,
    /// Write legacy OpenSSL PEM encryption instead of PKCS#8.
    #[arg(long)]
    pub legacy_pem: bool,
    /// PBKDF2 iterations for PKCS#8.
    #[arg(long, default_value_t = key::PBKDF2_ITERATIONS, value_name = "N")]
    pub iterations: u32,
    /// pem or der (DER only for PKCS#8).
    #[arg(long, default_value = "pem", value_name = "ENCODING")]
    pub to: String,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  certmesh key convert server.key --out server.der --to der
  certmesh key convert server.key --out server-rsa.pem --format traditional

Only unencrypted keys are converted; use `key strip` or `key encrypt` to change protection
(both also take --to and, for strip, --format).")]
pub struct ConvertArgs {
    /// The key file.
    pub input: PathBuf,
    /// Output file (created with mode 0600).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// pem or der.
    #[arg(long, default_value = "pem", value_name = "ENCODING")]
    pub to: String,
    /// pkcs8 or traditional (PKCS#1 for RSA, SEC1 for EC).
    #[arg(long, default_value = "pkcs8", value_name = "FORMAT")]
    pub format: String,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  certmesh key match server.key server.crt && systemctl reload nginx

Exit status: 0 when the key's public half is the certificate's (the first certificate in
the file), 1 when it is not or a file cannot be read.")]
pub struct MatchArgs {
    /// The key file.
    pub key: PathBuf,
    /// The certificate file (PEM or DER; the first certificate counts).
    pub cert: PathBuf,
    /// Passphrase source for the key, if it is encrypted.
    #[arg(long, value_name = "SPEC")]
    pub pass: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, c: KeyCommand) -> Result<i32> {
    match c {
        KeyCommand::Gen(a) => gen(ctx, a),
        KeyCommand::Strip(a) => strip(ctx, a),
        KeyCommand::Encrypt(a) => encrypt(ctx, a),
        KeyCommand::Convert(a) => convert(ctx, a),
        KeyCommand::Match(a) => match_cert(ctx, a),
    }
}

fn gen(ctx: &Context, a: GenArgs) -> Result<i32> {
    let alg = KeyAlg::parse(&a.key)?;
    let format = KeyFormat::parse(&a.format)?;
    let pass = if a.pass.is_some() || a.encrypt {
        Some(secret::obtain(
            a.pass.as_deref(),
            "new key passphrase",
            "--pass",
            true,
        )?)
    } else {
        None
    };
    super::refuse_existing(&[&a.out], a.force)?;
    let key = PrivateKey::generate(alg)?;
    let protection = match &pass {
        Some(pass) => Protection::Pkcs8 {
            pass,
            cipher: Cipher::Aes256,
            iterations: key::PBKDF2_ITERATIONS,
        },
        None => Protection::None,
    };
    let out = KeyOutput {
        encoding: Encoding::Pem,
        format,
        protection,
    };
    let bytes = key.encode(&out)?;
    write_key(&a.out, &bytes, a.force)?;
    ctx.say(format!(
        "wrote {} key to {} ({}; public key SHA-256 {})",
        key.describe(),
        a.out.display(),
        protection_summary(&out),
        key.public_key_sha256()
    ));
    Ok(0)
}

/// Encodes `key` as `out` says, writes it to `path` (a key file: 0600, atomic) and says
/// what was written.
fn write_key_as(
    ctx: &Context,
    key: &PrivateKey,
    out: &KeyOutput<'_>,
    path: &Path,
    force: bool,
) -> Result<()> {
    let bytes = key.encode(out)?;
    write_key(path, &bytes, force)?;
    ctx.say(format!(
        "wrote {} key to {} ({})",
        key.describe(),
        path.display(),
        protection_summary(out)
    ));
    Ok(())
}

fn strip(ctx: &Context, a: StripArgs) -> Result<i32> {
    let format = a.format.as_deref().map(KeyFormat::parse).transpose()?;
    let to = a.to.as_deref().map(Encoding::parse).transpose()?;
    let target = match (&a.out, a.in_place) {
        (Some(out), false) => out.clone(),
        (None, true) => a.input.clone(),
        _ => {
            return Err(Error::Usage(
                "give exactly one of --out FILE and --in-place".into(),
            ))
        }
    };
    if !a.in_place {
        super::refuse_existing(&[&target], a.force)?;
    }
    let loaded = read_key(&a.input, a.pass.as_deref())?;
    let out = KeyOutput {
        encoding: to.unwrap_or(loaded.encoding),
        format: format.unwrap_or(loaded.key_format()),
        protection: Protection::None,
    };
    if a.in_place {
        let bytes = loaded.key.encode(&out)?;
        let backup = backup_path(&a.input);
        let original = fsio::read(&a.input)?;
        fsio::write_file(&backup, &original, fsio::PRIVATE, Overwrite::Refuse)?;
        write_key(&target, &bytes, true)?;
        ctx.say(format!(
            "replaced {} with the unencrypted key; the original is kept in {}",
            target.display(),
            backup.display()
        ));
    } else {
        write_key_as(ctx, &loaded.key, &out, &target, a.force)?;
    }
    match &loaded.encryption {
        Some(e) => ctx.say(format!("  removed encryption: {e}")),
        None => warn(format!(
            "{} was not encrypted; the output has only been re-encoded",
            a.input.display()
        )),
    }
    Ok(0)
}

fn encrypt(ctx: &Context, a: EncryptArgs) -> Result<i32> {
    let cipher = Cipher::parse(&a.cipher)?;
    let encoding = Encoding::parse(&a.to)?;
    super::refuse_existing(&[&a.out], a.force)?;
    let loaded = read_key(&a.input, a.in_pass.as_deref())?;
    let pass = secret::obtain(a.pass.as_deref(), "new key passphrase", "--pass", true)?;
    if cipher == Cipher::Des3 {
        warn("DES-EDE3-CBC (3DES) is slow and has 64-bit blocks; use it only for consumers that need it");
    }
    let out = if a.legacy_pem {
        warn("legacy PEM encryption derives its key with a single MD5: a guessable passphrase falls quickly; use it only for consumers that need it");
        KeyOutput {
            encoding,
            format: KeyFormat::Traditional,
            protection: Protection::LegacyPem {
                pass: &pass,
                cipher,
            },
        }
    } else {
        KeyOutput {
            encoding,
            format: KeyFormat::Pkcs8,
            protection: Protection::Pkcs8 {
                pass: &pass,
                cipher,
                iterations: a.iterations,
            },
        }
    };
    write_key_as(ctx, &loaded.key, &out, &a.out, a.force)?;
    Ok(0)
}

fn convert(ctx: &Context, a: ConvertArgs) -> Result<i32> {
    let out = KeyOutput {
        encoding: Encoding::parse(&a.to)?,
        format: KeyFormat::parse(&a.format)?,
        protection: Protection::None,
    };
    super::refuse_existing(&[&a.out], a.force)?;
    let input = a.input.clone();
    let loaded = key::load_private_key_file(&a.input, &mut || {
        Err(Error::Refused(format!(
            "{} is encrypted: `key convert` does not change protection; use `certmesh key strip` (with --format/--to) to write it unencrypted, or `certmesh key encrypt` to re-encrypt it",
            input.display()
        )))
    })?;
    write_key_as(ctx, &loaded.key, &out, &a.out, a.force)?;
    Ok(0)
}

fn match_cert(ctx: &Context, a: MatchArgs) -> Result<i32> {
    let loaded = read_key(&a.key, a.pass.as_deref())?;
    let certs = certmesh::x509::read_certs(&a.cert)?;
    let result = key::match_certificate(&loaded.key, &certs[0])?;
    if a.json {
        print_json(&result);
    } else if result.matches {
        ctx.say(format!("match: {}", result.reason));
    } else {
        println!("no match: {}", result.reason);
    }
    Ok(if result.matches { 0 } else { 1 })
}

/// Reads a key, asking for its passphrase only if it turns out to be encrypted.
fn read_key(path: &Path, pass: Option<&str>) -> Result<LoadedKey> {
    let what = format!("passphrase for {}", path.display());
    key::load_private_key_file(path, &mut || -> Result<Secret> {
        secret::obtain(pass, &what, "--pass", false)
    })
}

fn write_key(path: &Path, bytes: &[u8], force: bool) -> Result<()> {
    let mode = if force {
        Overwrite::Replace
    } else {
        Overwrite::Refuse
    };
    fsio::write_file(path, bytes, fsio::PRIVATE, mode)
}

/// `FILE.bak`, or `FILE.bak.N` for the first N that does not exist yet.
fn backup_path(input: &Path) -> PathBuf {
    let with_suffix = |suffix: String| {
        let mut s = input.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    let mut candidate = with_suffix(".bak".into());
    let mut n = 2;
    while candidate.exists() {
        candidate = with_suffix(format!(".bak.{n}"));
        n += 1;
    }
    candidate
}

fn protection_summary(out: &KeyOutput<'_>) -> String {
    let format = match out.format {
        KeyFormat::Pkcs8 => "PKCS#8",
        KeyFormat::Traditional => "traditional",
    };
    match out.protection {
        Protection::None => format!("{format} {}, not encrypted", out.encoding),
        Protection::Pkcs8 {
            cipher, iterations, ..
        } => format!(
            "{format} {}, encrypted: PBES2 PBKDF2-HMAC-SHA256 {}, {iterations} iterations",
            out.encoding,
            cipher.name()
        ),
        Protection::LegacyPem { cipher, .. } => {
            format!(
                "{format} {}, encrypted: legacy PEM {}",
                out.encoding,
                cipher.name()
            )
        }
    }
}
