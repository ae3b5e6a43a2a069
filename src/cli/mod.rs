//! Command-line definitions and the glue from each command to the library. No
//! cryptography happens here.

mod audit;
mod ca;
mod check;
mod cluster;
mod cluster_export;
mod docs;
mod export;
mod inspect;
mod issue;
mod key;
mod keystore;
mod lint;
mod list;
mod p12view;
mod probe;
mod profiles;
mod renew;
mod revoke;
mod rollback;
mod secret;
mod sign;
mod truststore;
mod verify;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use certmesh::Result;

/// Private PKI and certificate lifecycle for server clusters.
#[derive(Debug, Parser)]
#[command(name = "certmesh", version = VERSION, about, after_help = EXAMPLES)]
pub struct Cli {
    /// CA store directory.
    #[arg(
        long,
        global = true,
        env = "CERTMESH_HOME",
        default_value = "pki",
        value_name = "DIR"
    )]
    pub home: PathBuf,

    /// Print only warnings and errors.
    #[arg(long, short, global = true)]
    pub quiet: bool,

    /// Append one line per change (time, command, what changed, serials) to FILE.
    #[arg(long, global = true, env = "CERTMESH_LOG", value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// Use a --home or --out directory (or one above it) that other users can write to
    /// or that another user owns; refused by default, since whoever can change it can
    /// plant keys, passwords or a CA there.
    #[arg(long, global = true)]
    pub allow_shared_dir: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// `certmesh --version`: the version, the commit it was built from (see build.rs), the
/// crypto library, and whether the C library is linked in (the static release binary)
/// or loaded at run time. Operators compare the commit with the release they meant to
/// install.
macro_rules! version {
    ($linkage:literal) => {
        concat!(
            env!("CARGO_PKG_VERSION"),
            " (commit ",
            env!("CERTMESH_COMMIT"),
            ", crypto provider ",
            env!("CERTMESH_CRYPTO"),
            ", ",
            $linkage,
            ")"
        )
    };
}
#[cfg(target_feature = "crt-static")]
const VERSION: &str = version!("statically linked");
#[cfg(not(target_feature = "crt-static"))]
const VERSION: &str = version!("dynamically linked");

const EXAMPLES: &str = "Examples:
  certmesh ca init --name \"Cluster CA\"
  certmesh issue node1 --dns node1.example.com --ip 10.0.0.11
  certmesh sign server.csr --out server.crt
  certmesh list --expiring-within 30d
  certmesh inspect pki/issued/node1/cert.pem

Passphrases (--ca-pass, --key-pass) take env:VAR, file:PATH, fd:N, stdin or pass:TEXT;
with none given on a terminal, certmesh asks without echo.";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, extend and show the certificate authority.
    #[command(subcommand)]
    Ca(ca::CaCommand),
    /// Check expiry and chains for monitoring (Nagios exit codes, Prometheus metrics).
    Check(check::CheckArgs),
    /// Converge a whole cluster from its manifest.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Issue a key and certificate signed by the issuing CA.
    Issue(issue::IssueArgs),
    /// Sign a certificate signing request made by another tool.
    Sign(sign::SignArgs),
    /// Renew what is due (run it from cron).
    Renew(renew::RenewArgs),
    /// Revoke an issued certificate and write a fresh CRL.
    Revoke(revoke::RevokeArgs),
    /// Write the issuing CA's certificate revocation list.
    Crl(revoke::CrlArgs),
    /// Put back what the last run (or a given one) replaced.
    Rollback(rollback::RollbackArgs),
    /// List issued certificates from the inventory.
    List(list::ListArgs),
    /// Describe certificates, chains and CSRs.
    Inspect(inspect::InspectArgs),
    /// Generate keys, remove or add passphrases, convert encodings, match to certificates.
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Import, remove and list trusted certificates in Java truststores (JKS, JCEKS).
    #[command(subcommand)]
    Truststore(truststore::TruststoreCommand),
    /// Create and list Java keystores holding a private key and its chain.
    #[command(subcommand)]
    Keystore(keystore::KeystoreCommand),
    /// Export keys and certificates as PKCS#12, or split PKCS#12 into PEM.
    #[command(subcommand)]
    Export(export::ExportCommand),
    /// Verify a certificate chain and host name as a TLS client does.
    Verify(verify::VerifyArgs),
    /// Connect to TLS servers and check the certificates they actually serve.
    Probe(probe::ProbeArgs),
    /// Report weaknesses of certificates (weak keys and digests, missing names, ...).
    Lint(lint::LintArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(docs::CompletionsArgs),
    /// Print the manual page, or write one page per command with --out.
    Man(docs::ManArgs),
    /// Find certificates, keys and keystores under directories and report their problems.
    Audit(audit::AuditArgs),
}

/// Runs a parsed command line and returns the exit code.
pub fn run(cli: Cli) -> Result<i32> {
    certmesh::fsio::allow_shared_dirs(cli.allow_shared_dir);
    let ctx = Context {
        home: cli.home,
        quiet: cli.quiet,
        log: cli.log,
    };
    match cli.command {
        Command::Ca(c) => ca::run(&ctx, c),
        Command::Check(a) => check::run(&ctx, a),
        Command::Cluster(c) => cluster::run(&ctx, c),
        Command::Issue(a) => issue::run(&ctx, a),
        Command::Sign(a) => sign::run(&ctx, a),
        Command::List(a) => list::run(&ctx, a),
        Command::Renew(a) => renew::run(&ctx, a),
        Command::Revoke(a) => revoke::run(&ctx, a),
        Command::Crl(a) => revoke::run_crl(&ctx, a),
        Command::Rollback(a) => rollback::run(&ctx, a),
        Command::Inspect(a) => inspect::run(&ctx, a),
        Command::Key(c) => key::run(&ctx, c),
        Command::Truststore(c) => truststore::run(&ctx, c),
        Command::Keystore(c) => keystore::run(&ctx, c),
        Command::Export(c) => export::run(&ctx, c),
        Command::Verify(a) => verify::run(&ctx, a),
        Command::Probe(a) => probe::run(&ctx, a),
        Command::Lint(a) => lint::run(&ctx, a),
        Command::Completions(a) => docs::completions(&ctx, a),
        Command::Man(a) => docs::man(&ctx, a),
        Command::Audit(a) => audit::run(&ctx, a),
    }
}

/// Settings every command sees.
pub struct Context {
    pub home: PathBuf,
    pub quiet: bool,
    pub log: Option<PathBuf>,
}

impl Context {
    /// Prints a progress or result line unless `--quiet`.
    pub fn say(&self, line: impl AsRef<str>) {
        if !self.quiet {
            println!("{}", line.as_ref());
        }
    }

    /// Appends `time command: what` to the `--log` file, if one was given. The file is
    /// opened in append mode for every line, so logrotate can move it at any time. A
    /// failure to log is a warning: the change itself is done.
    pub fn log(&self, command: &str, what: impl AsRef<str>) {
        let Some(path) = &self.log else { return };
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let now = time::OffsetDateTime::now_utc();
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let line = format!(
            "{} {command}: {}\n",
            certmesh::x509::rfc3339_time(now),
            what.as_ref().replace('\n', " ")
        );
        // Never through a symbolic link: whoever planted one would choose what we append to.
        let res = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = res {
            warn(format!("{}: cannot write the log: {e}", path.display()));
        }
    }
}

/// Opens the store, takes its lock and loads the issuing CA, asking for its passphrase
/// (from `ca_pass`, or the terminal) only when its key is encrypted.
pub fn issuing_signer(
    ctx: &Context,
    ca_pass: Option<&str>,
) -> Result<(
    certmesh::ca::Store,
    certmesh::fsio::StoreLock,
    certmesh::ca::Signer,
)> {
    let store = certmesh::ca::Store::open(&ctx.home)?;
    let lock = store.lock()?;
    let issuing = store.issuing().id.clone();
    let signer = store.signer(&issuing, &mut || {
        secret::obtain(ca_pass, "CA key passphrase", "--ca-pass", false)
    })?;
    Ok((store, lock, signer))
}

/// Prints a warning on stderr; warnings are shown even with `--quiet`.
pub fn warn(line: impl AsRef<str>) {
    eprintln!("certmesh: {}: {}", paint("warning", "33"), line.as_ref());
}

/// The process exit code for a library error (README, "Exit codes"): 2 for usage errors
/// (an unknown key type among them), 75 (EX_TEMPFAIL) when the store or keystore is
/// locked by another run, so cron retries quietly, 1 otherwise (a wrong passphrase, a key
/// that does not match its certificate, a taken alias).
pub fn exit_code(e: &certmesh::Error) -> i32 {
    use certmesh::Error;
    match e {
        Error::Usage(_) | Error::UnknownKeyType { .. } => 2,
        Error::Locked { .. } => 75,
        _ => 1,
    }
}

/// `text` in an ANSI colour when stderr is a terminal and `NO_COLOR` is not set
/// (<https://no-color.org>); plain otherwise, so logs and pipes never get escape codes.
pub fn paint(text: &str, sgr: &str) -> String {
    use std::io::IsTerminal;
    let wanted = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    if wanted {
        format!("\x1b[{sgr}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(v: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("report serializes")
    );
}

/// Prints one file's JSON report: pretty for a single file, one object per line when the
/// command reads several, so the output stays one JSON document per line to split on.
pub fn print_json_report<T: serde::Serialize>(v: &T, several: bool) {
    if several {
        println!("{}", serde_json::to_string(v).expect("report serializes"));
    } else {
        print_json(v);
    }
}

/// Fails early, before any passphrase is asked for or anything is made, when one of the
/// outputs exists and `--force` was not given.
pub fn refuse_existing(paths: &[&std::path::Path], force: bool) -> certmesh::Result<()> {
    if force {
        return Ok(());
    }
    match paths.iter().find(|p| p.exists()) {
        Some(p) => Err(certmesh::Error::Refused(format!(
            "{}: already exists, not overwritten (use --force to replace it)",
            p.display()
        ))),
        None => Ok(()),
    }
}

/// `--fail-on` of `lint` and `audit`: the lowest severity that makes the exit status 1.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FailOn {
    Warning,
    Error,
}

impl FailOn {
    pub fn threshold(self) -> certmesh::inspect::lint::Severity {
        match self {
            FailOn::Warning => certmesh::inspect::lint::Severity::Warning,
            FailOn::Error => certmesh::inspect::lint::Severity::Error,
        }
    }
}
