//! `certmesh probe HOST:PORT...`

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use certmesh::duration::parse_seconds;
use certmesh::probe::{probe_all, Endpoint, Identity, Options, Probe, Status};
use certmesh::{Error, Result};

use super::Context;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  certmesh probe web1.example.com:443
  certmesh probe 10.0.0.11:9443 --host wso2-1.example.com --ca out/pki/ca/ca/root/cert.pem
  certmesh --home out/pki/ca probe 10.0.0.21:443 --client-cert app1 --json

Without --ca or --truststore the chain is judged against the CA store at --home when there
is one, else the system's CA bundle. --client-cert takes a directory holding cert.pem and
key.pem (chain.pem too, when present), or the name of a certificate issued into the store
at --home (its issued/NAME/ directory; for a cluster: --home OUT/pki/ca).

Exit codes as `check`: 0 OK, 1 WARNING (the served chain expires within --within),
2 CRITICAL (untrusted, wrong name, expired, not TLS, refused), 3 UNKNOWN (no connection).")]
pub struct ProbeArgs {
    /// Endpoints, HOST:PORT ([ADDR]:PORT for IPv6).
    #[arg(required = true, value_name = "HOST:PORT")]
    pub endpoints: Vec<String>,
    /// Server name to send in SNI (default: --host, else the endpoint's host name).
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,
    /// Name the certificate must be valid for (default: the SNI name, else the host).
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    /// Trusted CA certificates (PEM bundle or DER; repeatable).
    #[arg(long, value_name = "FILE")]
    pub ca: Vec<PathBuf>,
    /// Trust store to use instead of --ca: PEM bundle, DER, or PKCS#12.
    #[arg(long, value_name = "FILE", conflicts_with = "ca")]
    pub truststore: Option<PathBuf>,
    /// Password of a PKCS#12 --truststore (env:VAR, file:PATH, fd:N, stdin, pass:TEXT).
    #[arg(long, value_name = "SPEC", requires = "truststore")]
    pub storepass: Option<String>,
    /// Present this client certificate: a directory with cert.pem and key.pem, or the
    /// name of a certificate issued into the store at --home.
    #[arg(long, value_name = "DIR|NAME")]
    pub client_cert: Option<String>,
    /// Passphrase of an encrypted client key (env:VAR, file:PATH, fd:N, stdin, pass:TEXT).
    #[arg(long, value_name = "SPEC", requires = "client_cert")]
    pub client_key_pass: Option<String>,
    /// Time allowed to connect, and again for the handshake.
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub timeout: String,
    /// WARNING when the served chain expires within this time.
    #[arg(long, default_value = "30d", value_name = "DURATION")]
    pub within: String,
    /// How many endpoints to probe at once.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub parallel: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `probe --json`.
#[derive(Serialize)]
struct Output<'a> {
    status: Status,
    probes: &'a [Probe],
}

pub fn run(ctx: &Context, a: ProbeArgs) -> Result<i32> {
    let endpoints = a
        .endpoints
        .iter()
        .map(|e| Endpoint::parse(e))
        .collect::<Result<Vec<_>>>()?;
    let timeout = parse_timeout(&a.timeout)?;
    let within = parse_seconds(&a.within)?;
    let anchors = trust_anchors(ctx, &a.ca, a.truststore.as_deref(), a.storepass.as_deref())?;
    let identity = match &a.client_cert {
        Some(c) => Some(client_identity(ctx, c, a.client_key_pass.as_deref())?),
        None => None,
    };
    let opts = Options {
        sni: a.sni.clone(),
        host: a.host.clone(),
        anchors: &anchors,
        identity: identity.as_ref(),
        timeout,
        within,
        now: time::OffsetDateTime::now_utc().unix_timestamp(),
    };
    let probes = probe_all(&endpoints, &opts, a.parallel);
    let status = worst(probes.iter().map(|p| p.status));
    if a.json {
        super::print_json(&Output {
            status,
            probes: &probes,
        });
    } else {
        for p in &probes {
            print_probe(ctx, p);
        }
    }
    Ok(status.code())
}

/// The worst status in Nagios order: CRITICAL, UNKNOWN, WARNING, OK.
pub(super) fn worst(s: impl Iterator<Item = Status>) -> Status {
    let rank = |s: &Status| match s {
        Status::Ok => 0,
        Status::Warning => 1,
        Status::Unknown => 2,
        Status::Critical => 3,
    };
    s.max_by_key(rank).unwrap_or(Status::Ok)
}

fn print_probe(ctx: &Context, p: &Probe) {
    let line = match &p.problem {
        Some(why) => format!("{} {}: {why}", status_name(p.status), p.endpoint),
        None => format!("OK {}", p.endpoint),
    };
    println!("{line}");
    if let (Some(proto), Some(suite)) = (&p.protocol, &p.cipher_suite) {
        ctx.say(format!(
            "  {} {proto} {suite}{}",
            p.address.as_deref().unwrap_or_default(),
            match (p.client_certificate.requested, p.client_certificate.sent) {
                (true, true) => ", client certificate sent",
                (true, false) => ", client certificate requested, none sent",
                _ => "",
            }
        ));
    }
    for (i, c) in p.chain.iter().enumerate() {
        ctx.say(format!("  {i} s: {}", c.subject));
        ctx.say(format!("    i: {}", c.issuer));
        ctx.say(format!(
            "    serial {}, {}, expires {} ({} days)",
            c.serial,
            c.key,
            c.not_after.get(..10).unwrap_or(&c.not_after),
            c.days_left
        ));
    }
    if let Some(v) = &p.verdict {
        match &v.error {
            None => ctx.say(format!(
                "  verify: OK for {} ({})",
                p.host,
                v.path.join(" <- ")
            )),
            Some(e) => ctx.say(format!("  verify: {e}")),
        }
    }
}

pub(super) fn status_name(s: Status) -> &'static str {
    match s {
        Status::Ok => "OK",
        Status::Warning => "WARNING",
        Status::Critical => "CRITICAL",
        Status::Unknown => "UNKNOWN",
    }
}

/// `5s`, `1m`; a bare number means seconds here.
pub(super) fn parse_timeout(text: &str) -> Result<Duration> {
    let t = text.trim();
    let secs = if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
        parse_seconds(&format!("{t}s"))?
    } else {
        parse_seconds(t)?
    };
    if !(1..=3600).contains(&secs) {
        return Err(Error::Usage(format!(
            "invalid timeout '{text}': from 1s to 1h"
        )));
    }
    Ok(Duration::from_secs(secs as u64))
}

/// --ca files, or --truststore, or the store at --home, or the system's bundle.
pub(super) fn trust_anchors(
    ctx: &Context,
    ca: &[PathBuf],
    truststore: Option<&Path>,
    storepass: Option<&str>,
) -> Result<Vec<Vec<u8>>> {
    let mut anchors = Vec::new();
    for f in ca {
        anchors.extend(certmesh::x509::read_certs(f)?);
    }
    if let Some(ts) = truststore {
        anchors.extend(super::verify::truststore(ts, storepass)?);
    }
    if !anchors.is_empty() {
        return Ok(anchors);
    }
    if ctx.home.join("store.toml").exists() {
        let store = certmesh::ca::Store::open(&ctx.home)?;
        for id in store.trust_anchors() {
            anchors.push(store.cert_der(&id)?);
        }
        return Ok(anchors);
    }
    let system = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt"));
    if system.exists() {
        return certmesh::x509::read_certs(&system);
    }
    Err(Error::Usage(
        "no trust anchors: give --ca or --truststore (no CA store at --home, no system CA bundle)"
            .into(),
    ))
}

/// A directory with cert.pem/key.pem, else a name issued into the store at --home.
pub(super) fn client_identity(ctx: &Context, spec: &str, pass: Option<&str>) -> Result<Identity> {
    let dir = Path::new(spec);
    let dir = if dir.is_dir() {
        dir.to_path_buf()
    } else if let Some(entry) = certmesh::ca::IssuedEntry::at(&ctx.home, spec)
        .ok()
        .filter(|e| e.exists())
    {
        entry.dir
    } else {
        return Err(Error::Usage(format!(
            "--client-cert {spec}: neither a directory nor a certificate issued into {}",
            ctx.home.display()
        )));
    };
    Identity::from_dir(&dir, &mut || {
        super::secret::obtain(pass, "client key passphrase", "--client-key-pass", false)
    })
}
