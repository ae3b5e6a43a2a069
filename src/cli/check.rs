//! `certmesh check`: for Nagios/Icinga and Prometheus.

use std::path::PathBuf;

use clap::Args;

use certmesh::ca::Store;
use certmesh::check::{check_cluster, check_file, check_store, Report};
use certmesh::cluster::manifest::Manifest;
use certmesh::duration::parse_seconds;
use certmesh::fsio::{self, Overwrite, PUBLIC};
use certmesh::Result;

use super::print_json;
use super::Context;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  certmesh check                                    # the store at --home
  certmesh check --within 21d --file /etc/nginx/certs/fullchain.pem
  certmesh check --cluster cluster.toml --out /srv/certmesh --prometheus /var/lib/node_exporter/certmesh.prom

Exit codes follow the Nagios plugin convention: 0 OK, 1 WARNING (a certificate expires
within --within), 2 CRITICAL (expired, not yet valid, or a broken chain), 3 UNKNOWN (a file
could not be read). The first line of output is the plugin summary.")]
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
    if stores.is_empty() && a.file.is_empty() && a.cluster.is_none() {
        stores.push(ctx.home.clone());
    }
    for dir in &stores {
        items.extend(check_store(&Store::open(dir)?, within, now)?);
    }
    for f in &a.file {
        items.extend(check_file(f, within, now));
    }
    if let Some(path) = &a.cluster {
        items.extend(check_cluster(&Manifest::load(path)?, &a.out, within, now)?);
    }
    let report = Report::new(items);
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
    }
    Ok(report.level.code())
}
