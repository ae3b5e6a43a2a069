//! `certmesh check`: for Nagios/Icinga and Prometheus.

use std::path::PathBuf;

use clap::Args;

use certmesh::ca::Store;
use certmesh::check::{
    check_cluster, check_endpoints, check_file, check_store, EndpointItem, Report,
};
use certmesh::cluster::apply::cluster_stores;
use certmesh::cluster::manifest::Manifest;
use certmesh::duration::parse_seconds;
use certmesh::fsio::{self, Overwrite, PUBLIC};
use certmesh::probe::{probe_all, Endpoint, Options};
use certmesh::Result;

use super::print_json;
use super::Context;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  certmesh check                                    # the store at --home
  certmesh check --within 21d --file /etc/nginx/certs/fullchain.pem
  certmesh check --cluster cluster.toml --out /srv/certmesh --prometheus /var/lib/node_exporter/certmesh.prom
  certmesh check --store /srv/pki --tls web1.example.com:443 web2.example.com:443

Exit codes follow the Nagios plugin convention: 0 OK, 1 WARNING (a certificate expires
within --within), 2 CRITICAL (expired, not yet valid, or a broken chain), 3 UNKNOWN (a file
could not be read, or a --tls endpoint could not be reached). A --tls endpoint is CRITICAL when
its chain does not verify for its name, it is not TLS or refuses the handshake, or it serves
a certificate certmesh did not issue under a name it has one for; WARNING when it serves
a superseded certificate (renewed files, no reload). The first line of output is the
plugin summary.")]
pub struct CheckArgs {
    /// Warn about certificates that expire within this time.
    #[arg(long, default_value = "30d", value_name = "DURATION")]
    pub within: String,
    /// Check a cluster applied from this manifest.
    #[arg(long, value_name = "FILE")]
    pub cluster: Option<PathBuf>,
    /// The cluster's output directory.
    #[arg(long, default_value = "out", value_name = "DIR")]
    pub out: PathBuf,
    /// Check a CA store (repeatable); the default when nothing else is named is --home.
    #[arg(long, value_name = "DIR")]
    pub store: Vec<PathBuf>,
    /// Check a certificate or chain file (repeatable).
    #[arg(long, value_name = "FILE")]
    pub file: Vec<PathBuf>,
    /// Probe a TLS endpoint, HOST:PORT (repeatable, or several after one --tls): what it
    /// serves is checked like a file and compared with the stores' current certificates.
    #[arg(long, value_name = "HOST:PORT", num_args = 1..)]
    pub tls: Vec<String>,
    /// Trusted CA certificates for --tls (default: the roots of the stores checked, else
    /// the system's CA bundle).
    #[arg(long, value_name = "FILE")]
    pub ca: Vec<PathBuf>,
    /// Time allowed per endpoint to connect, and again for the handshake.
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub timeout: String,
    /// How many endpoints to probe at once.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub parallel: usize,
    /// Also write Prometheus textfile metrics here (atomically).
    #[arg(long, value_name = "FILE")]
    pub prometheus: Option<PathBuf>,
    /// Print the full report as JSON instead of the summary.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, a: CheckArgs) -> Result<i32> {
    let within = parse_seconds(&a.within)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut items = Vec::new();
    let mut stores = a.store.clone();
    if stores.is_empty() && a.file.is_empty() && a.cluster.is_none() && a.tls.is_empty() {
        stores.push(ctx.home.clone());
    }
    let mut opened = Vec::new();
    for dir in &stores {
        let store = Store::open(dir)?;
        items.extend(check_store(&store, within, now)?);
        opened.push(store);
    }
    for f in &a.file {
        items.extend(check_file(f, within, now));
    }
    if let Some(path) = &a.cluster {
        let manifest = Manifest::load(path)?;
        items.extend(check_cluster(&manifest, &a.out, within, now)?);
        if !a.tls.is_empty() {
            opened.extend(cluster_stores(&manifest, &a.out)?.into_iter().flatten());
        }
    }
    let mut endpoints = Vec::new();
    if !a.tls.is_empty() {
        if opened.is_empty() && ctx.home.join("store.toml").exists() {
            opened.push(Store::open(&ctx.home)?);
        }
        endpoints = check_tls(ctx, &a, &opened, within, now)?;
    }
    let report = Report::with_endpoints(items, endpoints);
    if let Some(p) = &a.prometheus {
        fsio::write_file(
            p,
            report.prometheus(now).as_bytes(),
            PUBLIC,
            Overwrite::Replace,
        )?;
    }
    if a.json {
        print_json(&report);
    } else {
        println!("{}", report.summary(&a.within));
        for i in report.items.iter().filter(|i| i.problem.is_some()) {
            println!(
                "{} {}: {}",
                i.level.name(),
                i.name,
                i.problem.as_deref().unwrap_or_default()
            );
        }
        for e in report.endpoints.iter().filter(|e| e.problem.is_some()) {
            println!(
                "{} {}: {}",
                e.level.name(),
                e.endpoint,
                e.problem.as_deref().unwrap_or_default()
            );
        }
    }
    Ok(report.level.code())
}

/// Probes the --tls endpoints and judges them against `stores`.
fn check_tls(
    ctx: &Context,
    a: &CheckArgs,
    stores: &[Store],
    within: i64,
    now: i64,
) -> Result<Vec<EndpointItem>> {
    let endpoints = a
        .tls
        .iter()
        .map(|e| Endpoint::parse(e))
        .collect::<Result<Vec<_>>>()?;
    let mut anchors = Vec::new();
    for f in &a.ca {
        anchors.extend(certmesh::x509::read_certs(f)?);
    }
    if anchors.is_empty() {
        for s in stores {
            for id in s.trust_anchors() {
                anchors.push(s.cert_der(&id)?);
            }
        }
    }
    if anchors.is_empty() {
        anchors = super::probe::trust_anchors(ctx, &[], None, None)?;
    }
    let opts = Options {
        sni: None,
        host: None,
        anchors: &anchors,
        identity: None,
        timeout: super::probe::parse_timeout(&a.timeout)?,
        within,
        now,
    };
    let probes = probe_all(&endpoints, &opts, a.parallel);
    let stores: Vec<&Store> = stores.iter().collect();
    check_endpoints(probes, &stores)
}
