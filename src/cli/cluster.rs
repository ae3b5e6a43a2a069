//! `certmesh cluster plan|apply`

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use certmesh::cluster::apply::{apply, FileChange, LeafAction, Options, Progress, Report};
use certmesh::cluster::manifest::Manifest;
use certmesh::cluster::roll::RollOptions;
use certmesh::cluster::served::ProbeSettings;
use certmesh::cluster::status::probe_members;
use certmesh::probe::Serves;
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

A second run with nothing due writes nothing. With --deploy, members whose profile reloads
gracefully are deployed --parallel at a time; members whose reload restarts the service
go --max-unavailable at a time, each waiting until it serves its new certificate
(--ready-timeout) before the next; a member that does not come back stops the roll.
After each reload the member's TLS endpoints are probed; one still serving an old
certificate makes the run fail (--no-probe turns the probes off). Each member's files go to OUT/<member>/;
the cluster CA (or, for trust = \\\"mesh\\\", each member's signer) lives in OUT/pki/.")]
    Apply(ClusterArgs),
    /// Per member: certificate expiry, truststore contents against what they should
    /// hold, and whether the deployed files are current.
    #[command(after_help = "Examples:
  certmesh cluster status cluster.toml --out out/
  certmesh cluster status cluster.toml --out out/ --remote --json
  certmesh cluster status cluster.toml --out out/ --probe")]
    Status(StatusArgs),
    /// Write the cluster out for another delivery tool (Ansible).
    #[command(subcommand)]
    Export(super::cluster_export::ExportCommand),
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
    /// Connect to each member's TLS endpoints and report whether they serve the
    /// certificate in its files, an older one (reload missing), or something else.
    #[arg(long)]
    pub probe: bool,
    /// With --probe: time allowed per endpoint to connect, and again for the handshake.
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub timeout: String,
    /// With --probe: endpoints probed at once.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub parallel: usize,
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
    /// How many members to deploy at once (members whose reload is graceful).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub parallel: usize,
    /// Renew this identity's certificate now, although its rotation policy would not
    /// (repeatable): how a `manual` identity is renewed. The key is kept unless the
    /// policy is `new-key`.
    #[arg(long = "renew-identity", value_name = "IDENTITY")]
    pub renew_identity: Vec<String>,
    /// Give this identity a new key now, whatever its policy (repeatable). What the
    /// product encrypted with the old key becomes unreadable.
    #[arg(long = "rekey-identity", value_name = "IDENTITY")]
    pub rekey_identity: Vec<String>,
    /// Make a shared identity take MEMBER's current key (repeatable), so what was
    /// encrypted with it stays readable: the migration of per-member keys to a shared one.
    #[arg(long = "adopt-key", value_name = "IDENTITY=MEMBER")]
    pub adopt_key: Vec<String>,
    /// Do not probe members after their reload (by default each must serve its new
    /// certificate, or the run fails).
    #[arg(long)]
    pub no_probe: bool,
    /// How many members whose reload restarts the service may be down at once.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub max_unavailable: usize,
    /// How long a restarted member may take to serve its new certificate before the roll
    /// stops.
    #[arg(long, default_value = "120s", value_name = "DURATION")]
    pub ready_timeout: String,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Parses `--adopt-key IDENTITY=MEMBER` values.
pub fn adopt_pairs(values: &[String]) -> Result<Vec<(String, String)>> {
    values
        .iter()
        .map(|v| match v.split_once('=') {
            Some((i, m)) if !i.is_empty() && !m.is_empty() => Ok((i.to_string(), m.to_string())),
            _ => Err(certmesh::Error::Usage(format!(
                "--adopt-key '{v}': expected IDENTITY=MEMBER, e.g. primary=node1"
            ))),
        })
        .collect()
}

pub fn run(ctx: &Context, cmd: ClusterCommand) -> Result<i32> {
    let (a, dry_run) = match cmd {
        ClusterCommand::Plan(a) => (a, true),
        ClusterCommand::Apply(a) => (a, false),
        ClusterCommand::Status(a) => return status(a),
        ClusterCommand::Export(c) => return super::cluster_export::run(ctx, c),
    };
    let manifest = Manifest::load(&a.manifest)?;
    let profiles = super::profiles::load_profiles(&a.profiles)?;
    let bar = Bar::new(ctx.quiet || a.json);
    let adopt = adopt_pairs(&a.adopt_key)?;
    let opts = Options {
        dry_run,
        deploy: a.deploy,
        parallel: a.parallel,
        wait: false,
        keep_certificates: false,
        renew_identities: &a.renew_identity,
        rekey_identities: &a.rekey_identity,
        adopt_keys: &adopt,
        progress: &bar,
        roll: RollOptions {
            probe: !a.no_probe,
            max_unavailable: a.max_unavailable.max(1),
            ready_timeout: Duration::from_secs(
                certmesh::duration::parse_seconds(&a.ready_timeout)?.max(1) as u64,
            ),
            ..RollOptions::default()
        },
    };
    let report = apply(&manifest, &profiles, &a.out, opts)?;
    if !dry_run {
        log_report(ctx, "cluster apply", &report);
    }
    if a.json {
        print_json(&report);
    } else {
        print_report(ctx, &report);
    }
    Ok(if report.failed { 1 } else { 0 })
}

/// Writes one `--log` line per change a run made: CAs created, certificates issued or
/// renewed, files rewritten, pushes and their failures.
pub fn log_report(ctx: &Context, command: &str, r: &Report) {
    for ca in &r.created_cas {
        ctx.log(command, format!("{}: created CA for {ca}", r.cluster));
    }
    for m in &r.members {
        match &m.certificate {
            LeafAction::Keep => {}
            LeafAction::Issue => ctx.log(command, format!("{}: certificate issued", m.name)),
            LeafAction::Renew { reason } => ctx.log(
                command,
                format!("{}: certificate renewed ({reason})", m.name),
            ),
            LeafAction::Held { reason } => ctx.log(
                command,
                format!("{}: certificate due but held ({reason})", m.name),
            ),
        }
        let changed: Vec<String> = m
            .files
            .iter()
            .filter(|f| f.action != FileChange::Unchanged)
            .map(|f| format!("{} {}", f.action, f.path))
            .collect();
        if !changed.is_empty() {
            ctx.log(command, format!("{}: {}", m.name, changed.join(", ")));
        }
        if let Some(d) = &m.deploy {
            match &d.error {
                Some(e) => ctx.log(
                    command,
                    format!("{}: deploy to {} failed: {e}", m.name, d.host),
                ),
                None if d.files.is_empty() => {}
                None => ctx.log(
                    command,
                    format!(
                        "{}: pushed {} to {}{}",
                        m.name,
                        d.files.join(", "),
                        d.host,
                        if d.reloaded { "; reloaded" } else { "" }
                    ),
                ),
            }
        }
    }
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
    let cert_text = |c: &LeafAction| match c {
        LeafAction::Keep => "certificate kept".to_string(),
        LeafAction::Issue => format!("certificate {}", verb("issued", "to issue")),
        LeafAction::Renew { reason } => {
            format!("certificate {} ({reason})", verb("renewed", "to renew"))
        }
        LeafAction::Held { reason } => format!("certificate held ({reason})"),
    };
    for s in &r.shared {
        let key = match s.key.as_deref() {
            Some(k) if s.certificate.issues() => format!(", {k} key"),
            _ => String::new(),
        };
        ctx.say(format!(
            "shared {} ({}; rotation {}): {}{key}",
            s.identity,
            s.members.join(", "),
            s.rotation.name(),
            cert_text(&s.certificate)
        ));
    }
    for m in &r.members {
        let cert = cert_text(&m.certificate);
        let changed: Vec<String> = m
            .files
            .iter()
            .filter(|f| f.action != FileChange::Unchanged)
            .map(|f| format!("{} {}", f.action, f.path))
            .collect();
        let files = if changed.is_empty() {
            "files unchanged".to_string()
        } else {
            changed.join(", ")
        };
        ctx.say(format!("{} ({}): {cert}; {files}", m.name, m.profile));
        for f in m.files.iter().filter(|f| f.action == FileChange::Blocked) {
            ctx.say(format!(
                "  {}: {}",
                f.path,
                f.reason.as_deref().unwrap_or_default()
            ));
        }
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
    for step in &r.roll {
        for s in step.served.iter().filter(|s| s.serves != Serves::Current) {
            let line = format!("{}: {}: {}", step.member, s.endpoint, s.describe());
            if step.failed() {
                super::warn(line);
            } else {
                ctx.say(format!("  {line}"));
            }
        }
        if step.outcome == "ready" && step.reload == "restart" {
            ctx.say(format!(
                "  {}: restarted; serves its new certificate after {:.1}s",
                step.member,
                step.waited_ms.unwrap_or(0) as f64 / 1000.0
            ));
        }
    }
    if !r.changed {
        ctx.say(format!("cluster {}: nothing to do", r.cluster));
    }
}

/// What `verify` says of a certificate it refuses, for a status line.
fn refused(c: &certmesh::cluster::status::CertStatus) -> String {
    match (&c.verified, &c.verify_error) {
        (false, Some(e)) => format!(", REFUSED: {e}"),
        (false, None) => ", REFUSED".into(),
        (true, _) => String::new(),
    }
}

fn status(a: StatusArgs) -> Result<i32> {
    let manifest = Manifest::load(&a.manifest)?;
    let profiles = super::profiles::load_profiles(&a.profiles)?;
    let mut members = certmesh::cluster::status::status(&manifest, &profiles, &a.out, a.remote)?;
    if a.probe {
        let settings = ProbeSettings {
            timeout: super::probe::parse_timeout(&a.timeout)?,
            parallel: a.parallel,
        };
        let mut served = probe_members(&manifest, &profiles, &a.out, &settings)?;
        for m in &mut members {
            m.served = Some(served.remove(&m.name).unwrap_or_default());
        }
    }
    if a.json {
        print_json(&members);
        return Ok(0);
    }
    for m in &members {
        let cert = match &m.certificate {
            Some(c) => format!(
                "{} expires {} ({} days){}",
                c.subject,
                &c.not_after[..10],
                c.days_left,
                refused(c)
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
        for i in &m.identities {
            let what = if i.shared { "shared " } else { "" };
            match (&i.certificate, &i.warning) {
                (_, Some(w)) => {
                    parts.push(format!("{what}{} ({}): {w}", i.identity, i.rotation.name()))
                }
                (Some(c), None) => parts.push(format!(
                    "{what}{} ({}) expires {}{}",
                    i.identity,
                    i.rotation.name(),
                    &c.not_after[..10],
                    refused(c)
                )),
                (None, None) => parts.push(format!("{what}{}: not issued yet", i.identity)),
            }
        }
        for s in m.served.iter().flatten() {
            parts.push(format!("{}: {}", s.endpoint, s.describe()));
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
