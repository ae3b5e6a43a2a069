//! `certmesh cluster plan|apply`

use std::path::PathBuf;

use clap::{Args, Subcommand};

use certmesh::cluster::apply::{apply, LeafAction, Options, Progress, Report};
use certmesh::cluster::manifest::Manifest;
use certmesh::cluster::profile::Profiles;
use certmesh::Result;

use super::{print_json, Context};

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Show what apply would do, member by member; changes nothing.
    #[command(after_help = "Example:
  certmesh cluster plan examples/wso2-is-apache.toml --out out/")]
    Plan(ClusterArgs),
    /// Create or update every member's certificate and files.
    #[command(after_help = "Examples:
  certmesh cluster apply examples/wso2-is-apache.toml --out out/
  certmesh cluster apply cluster.toml --out /srv/certmesh --json

A second run with nothing due writes nothing. Each member's files go to OUT/<member>/;
the cluster CA (or, for trust = \\\"mesh\\\", each member's signer) lives in OUT/pki/.")]
    Apply(ClusterArgs),
    /// Per member: certificate expiry, truststore contents against what they should
    /// hold, and whether the deployed files are current.
    #[command(after_help = "Examples:
  certmesh cluster status cluster.toml --out out/
  certmesh cluster status cluster.toml --out out/ --remote --json")]
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The cluster manifest.
    pub manifest: PathBuf,
    /// Output directory the cluster was applied to.
    #[arg(long, default_value = "out", value_name = "DIR")]
    pub out: PathBuf,
    /// More product profiles (TOML files). Default: ./profiles when it exists, else
    /// /usr/share/certmesh/profiles.
    #[arg(long, value_name = "DIR")]
    pub profiles: Vec<PathBuf>,
    /// Compare deployed files with the hosts' copies over SSH, not the local record.
    #[arg(long)]
    pub remote: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// The cluster manifest.
    pub manifest: PathBuf,
    /// Output directory: one directory per member, and the CA stores under pki/.
    #[arg(long, default_value = "out", value_name = "DIR")]
    pub out: PathBuf,
    /// More product profiles (TOML files); they override shipped ones of the same name.
    /// Default: ./profiles when it exists, else /usr/share/certmesh/profiles.
    #[arg(long, value_name = "DIR")]
    pub profiles: Vec<PathBuf>,
    /// Push each member's changed files to its host over SSH and reload it (apply only).
    #[arg(long)]
    pub deploy: bool,
    /// How many members to deploy at once.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub parallel: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, cmd: ClusterCommand) -> Result<i32> {
    let (a, dry_run) = match cmd {
        ClusterCommand::Plan(a) => (a, true),
        ClusterCommand::Apply(a) => (a, false),
        ClusterCommand::Status(a) => return status(a),
    };
    let manifest = Manifest::load(&a.manifest)?;
    let profiles = load_profiles(&a.profiles)?;
    let bar = Bar::new(ctx.quiet || a.json);
    let opts = Options {
        dry_run,
        deploy: a.deploy,
        parallel: a.parallel,
        wait: false,
        keep_certificates: false,
        progress: &bar,
    };
    let report = apply(&manifest, &profiles, &a.out, opts)?;
    if a.json {
        print_json(&report);
    } else {
        print_report(ctx, &report);
    }
    Ok(if report.failed { 1 } else { 0 })
}

/// The shipped profiles plus those in the `--profiles` directories, or in the default
/// directory (`./profiles`, else the packaged one) when none is given.
pub(super) fn load_profiles(given: &[PathBuf]) -> Result<Profiles> {
    let dirs = if given.is_empty() {
        certmesh::cluster::profile::default_dirs()
    } else {
        given.to_vec()
    };
    let dirs: Vec<&std::path::Path> = dirs.iter().map(PathBuf::as_path).collect();
    Profiles::load(&dirs)
}

fn print_report(ctx: &Context, r: &Report) {
    let verb = |now: &str, planned: &str| {
        if r.dry_run {
            planned.to_string()
        } else {
            now.to_string()
        }
    };
    for ca in &r.created_cas {
        ctx.say(format!("{} CA for {ca}", verb("created", "would create")));
    }
    for m in &r.members {
        let cert = match &m.certificate {
            LeafAction::Keep => "certificate kept".to_string(),
            LeafAction::Issue => format!("certificate {}", verb("issued", "to issue")),
            LeafAction::Renew { reason } => {
                format!("certificate {} ({reason})", verb("renewed", "to renew"))
            }
        };
        let changed: Vec<String> = m
            .files
            .iter()
            .filter(|f| f.action != "unchanged")
            .map(|f| format!("{} {}", f.action, f.path))
            .collect();
        let files = if changed.is_empty() {
            "files unchanged".to_string()
        } else {
            changed.join(", ")
        };
        ctx.say(format!("{} ({}): {cert}; {files}", m.name, m.profile));
        if let Some(d) = &m.deploy {
            match &d.error {
                Some(e) => super::warn(format!("{}: deploy to {} failed: {e}", m.name, d.host)),
                None if d.files.is_empty() => {
                    ctx.say(format!("  {}: deployed files are current", d.host))
                }
                None => ctx.say(format!(
                    "  {}: pushed {}{}",
                    d.host,
                    d.files.join(", "),
                    if d.reloaded { "; reloaded" } else { "" }
                )),
            }
        }
    }
    if !r.changed {
        ctx.say(format!("cluster {}: nothing to do", r.cluster));
    }
}

fn status(a: StatusArgs) -> Result<i32> {
    let manifest = Manifest::load(&a.manifest)?;
    let profiles = load_profiles(&a.profiles)?;
    let members = certmesh::cluster::status::status(&manifest, &profiles, &a.out, a.remote)?;
    if a.json {
        print_json(&members);
        return Ok(0);
    }
    for m in &members {
        let cert = match &m.certificate {
            Some(c) => format!(
                "{} expires {} ({} days)",
                c.subject,
                &c.not_after[..10],
                c.days_left
            ),
            None => "no certificate yet".into(),
        };
        let mut parts = vec![cert];
        for t in &m.truststores {
            if t.missing.is_empty() && t.unexpected.is_empty() {
                parts.push(format!("{}: holds every signer", t.file));
            } else {
                let mut what = Vec::new();
                if !t.missing.is_empty() {
                    what.push(format!("missing {}", t.missing.join(" + ")));
                }
                if !t.unexpected.is_empty() {
                    what.push(format!("unexpected {}", t.unexpected.join(" + ")));
                }
                parts.push(format!("{}: {}", t.file, what.join(", ")));
            }
        }
        if let Some(d) = &m.deploy {
            if d.files.is_empty() {
                parts.push(format!("{}: {}", d.host, d.state));
            } else {
                parts.push(format!("{}: {} ({})", d.host, d.state, d.files.join(", ")));
            }
        }
        if m.ca_rollover_phase > 0 {
            parts.push(format!("CA rollover phase {}", m.ca_rollover_phase));
        }
        println!("{} ({}): {}", m.name, m.profile, parts.join("; "));
    }
    Ok(0)
}

/// A progress bar on stderr, shown only on a terminal and only for runs long enough to
/// need one.
struct Bar {
    bar: indicatif::ProgressBar,
    quiet: bool,
}

impl Bar {
    fn new(quiet: bool) -> Self {
        Bar {
            bar: indicatif::ProgressBar::hidden(),
            quiet,
        }
    }
}

impl Progress for Bar {
    fn start(&self, total: u64) {
        use std::io::IsTerminal;
        if self.quiet || total < 8 || !std::io::stderr().is_terminal() {
            return;
        }
        self.bar
            .set_draw_target(indicatif::ProgressDrawTarget::stderr());
        self.bar.set_length(total);
        self.bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        self.bar.set_message("generating keys");
    }

    fn step(&self) {
        self.bar.inc(1);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
