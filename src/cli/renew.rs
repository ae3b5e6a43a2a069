//! `certmesh renew`: what cron runs every night.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use certmesh::ca::Store;
use certmesh::cluster::apply::{apply, LeafAction, Options, Silent};
use certmesh::cluster::manifest::Manifest;
use certmesh::duration::parse_seconds;
use certmesh::Result;

use super::{print_json, secret, warn, Context};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  certmesh renew --quiet                       # cron: silent when nothing is due
  certmesh renew --within 45d --changed-exit 3 --ca-pass file:/etc/certmesh/ca.pass
  certmesh renew --cluster /etc/certmesh/cluster.toml --out /srv/certmesh --jitter 30m
  certmesh renew --cluster cluster.toml --out /srv/certmesh --no-deploy   # then ansible-playbook

Exit codes: 0 nothing was due or everything due was renewed; 1 something failed; 75
another run holds the lock (use --wait to queue instead); --changed-exit N when something
was renewed.")]
pub struct RenewArgs {
    /// Renew certificates that expire within this time (store mode; in cluster mode it
    /// overrides every member's renew_before).
    #[arg(long, default_value = "30d", value_name = "DURATION")]
    pub within: String,
    /// Renew a cluster from its manifest instead of the store at --home.
    #[arg(long, value_name = "FILE")]
    pub cluster: Option<PathBuf>,
    /// The cluster's output directory.
    #[arg(long, default_value = "out", value_name = "DIR")]
    pub out: PathBuf,
    /// Validity of renewed certificates, in days (store mode; clusters use their manifest).
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// Keep each certificate's key instead of generating a new one.
    #[arg(long = "reuse-key")]
    pub reuse_key: bool,
    /// Exit with this code when something was renewed.
    #[arg(long = "changed-exit", value_name = "N")]
    pub changed_exit: Option<i32>,
    /// Sleep a random time up to DURATION first, to spread a fleet's cron runs.
    #[arg(long, value_name = "DURATION")]
    pub jitter: Option<String>,
    /// Wait for another run to finish instead of exiting 75.
    #[arg(long)]
    pub wait: bool,
    /// Passphrase of the issuing CA key, when it is encrypted.
    #[arg(long = "ca-pass", value_name = "SPEC")]
    pub ca_pass: Option<String>,
    /// With --cluster: renew this identity now, although its rotation policy would not
    /// (repeatable; how a `manual` identity is renewed deliberately).
    #[arg(long = "renew-identity", value_name = "IDENTITY", requires = "cluster")]
    pub renew_identity: Vec<String>,
    /// With --cluster: give this identity a new key now, whatever its policy.
    #[arg(long = "rekey-identity", value_name = "IDENTITY", requires = "cluster")]
    pub rekey_identity: Vec<String>,
    /// Print the run report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Cluster mode: renew and write the members' files, but leave delivery to another
    /// tool (`cluster export ansible`) instead of pushing to members with a deploy section.
    #[arg(long = "no-deploy")]
    pub no_deploy: bool,
}

pub fn run(ctx: &Context, a: RenewArgs) -> Result<i32> {
    let within = parse_seconds(&a.within)?;
    if let Some(j) = &a.jitter {
        let max = parse_seconds(j)?.max(0) as u64;
        if max > 0 {
            let mut b = [0u8; 8];
            aws_lc_rs::rand::fill(&mut b)
                .map_err(|_| certmesh::Error::Crypto("no randomness".into()))?;
            std::thread::sleep(Duration::from_secs(u64::from_le_bytes(b) % (max + 1)));
        }
    }
    let changed = match &a.cluster {
        Some(path) => renew_cluster(ctx, &a, path)?,
        None => renew_store(ctx, &a, within)?,
    };
    Ok(match changed {
        Outcome::Failed => 1,
        Outcome::Changed => a.changed_exit.unwrap_or(0),
        Outcome::Nothing => 0,
    })
}

enum Outcome {
    Nothing,
    Changed,
    Failed,
}

fn renew_store(ctx: &Context, a: &RenewArgs, within: i64) -> Result<Outcome> {
    let store = Store::open(&ctx.home)?;
    let _lock = if a.wait {
        store.lock_wait()?
    } else {
        store.lock()?
    };
    let issuing = store.issuing().id.clone();
    // The passphrase is asked for once, even when both renewing and the CRL need the CA.
    let pass = secret::AskOnce::new(a.ca_pass.as_deref(), "CA key passphrase", "--ca-pass");
    let load = || store.signer(&issuing, &mut || pass.get());
    let report = store.renew_due(within, a.days, a.reuse_key, &mut || load())?;
    for r in &report.renewed {
        ctx.log(
            "renew",
            format!(
                "renewed {} serial {} -> {} expires {}",
                r.name, r.old_serial, r.serial, r.not_after
            ),
        );
    }
    for f in &report.failed {
        ctx.log("renew", format!("renewing {} failed: {}", f.name, f.reason));
    }
    // CRLs that exist are kept fresh: refreshed in the last third of their lifetime (and
    // the chain's completed). A failure here is reported like a failed renewal, after
    // what was renewed.
    let refreshed = store.refresh_crls(&mut |id| store.signer(id, &mut || pass.get()));
    let (crls, crl_error) = match refreshed {
        Ok(c) => (c, None),
        Err(e) => {
            ctx.log("renew", format!("refreshing the CRL failed: {e}"));
            (Vec::new(), Some(e))
        }
    };
    for c in &crls {
        super::revoke::log_crl(ctx, "renew", c);
    }
    let (crl, chain_crls): (Vec<_>, Vec<_>) = crls.iter().partition(|c| c.authority == issuing);
    let crl = crl.first().copied();
    if a.json {
        let mut v = serde_json::to_value(&report).expect("report serializes");
        if let Some(c) = crl {
            v["crl"] = serde_json::to_value(c).expect("report serializes");
        }
        if !chain_crls.is_empty() {
            v["chain_crls"] = serde_json::to_value(&chain_crls).expect("report serializes");
        }
        print_json(&v);
    } else {
        for r in &report.renewed {
            ctx.say(format!(
                "renewed {}: serial {} -> {}, expires {}{}",
                r.name,
                r.old_serial,
                r.serial,
                &r.not_after[..10],
                if r.new_key { ", new key" } else { ", same key" }
            ));
        }
        for s in &report.skipped {
            warn(format!("{} is due but not renewed: {}", s.name, s.reason));
        }
        for f in &report.failed {
            eprintln!("certmesh: renewing {} failed: {}", f.name, f.reason);
        }
        for c in &crls {
            super::revoke::say_crl(ctx, c);
        }
        if report.renewed.is_empty()
            && report.failed.is_empty()
            && crls.is_empty()
            && crl_error.is_none()
        {
            ctx.say(format!(
                "nothing due: {} certificate(s) checked, none expires within {}",
                report.checked, a.within
            ));
        }
    }
    if let Some(e) = &crl_error {
        eprintln!("certmesh: refreshing the CRL failed: {e}");
    }
    Ok(if !report.failed.is_empty() || crl_error.is_some() {
        Outcome::Failed
    } else if report.renewed.is_empty() && crls.is_empty() {
        Outcome::Nothing
    } else {
        Outcome::Changed
    })
}

fn renew_cluster(ctx: &Context, a: &RenewArgs, path: &std::path::Path) -> Result<Outcome> {
    let mut manifest = Manifest::load(path)?;
    // An explicit --within overrides the manifest's windows; the default leaves them be.
    if a.within != "30d" {
        manifest.defaults.renew_before = a.within.clone();
        for m in &mut manifest.members {
            m.renew_before = None;
        }
        for s in &mut manifest.shared {
            s.renew_before = None;
        }
    }
    let profiles = super::profiles::load_profiles(&[])?;
    let deploy = !a.no_deploy && manifest.members.iter().any(|m| m.deploy.is_some());
    let report = apply(
        &manifest,
        &profiles,
        &a.out,
        Options {
            dry_run: false,
            deploy,
            parallel: 4,
            wait: a.wait,
            keep_certificates: false,
            renew_identities: &a.renew_identity,
            rekey_identities: &a.rekey_identity,
            adopt_keys: &[],
            progress: &Silent,
            roll: Default::default(),
        },
    )?;
    super::cluster::log_report(ctx, "renew", &report);
    if a.json {
        print_json(&report);
    } else {
        for s in &report.shared {
            let name = format!("shared {}", s.identity);
            match &s.certificate {
                LeafAction::Keep => {}
                LeafAction::Issue => ctx.say(format!("issued {name}")),
                LeafAction::Renew { reason } => ctx.say(format!(
                    "renewed {name} ({reason}; {} key)",
                    s.key.as_deref().unwrap_or("new")
                )),
                LeafAction::Held { reason } => warn(format!("{name} is due but held: {reason}")),
            }
        }
        for m in &report.members {
            match &m.certificate {
                LeafAction::Keep => {}
                LeafAction::Issue => ctx.say(format!("issued {}", m.name)),
                LeafAction::Renew { reason } => ctx.say(format!("renewed {} ({reason})", m.name)),
                LeafAction::Held { reason } => {
                    warn(format!("{} is due but held: {reason}", m.name))
                }
            }
            if let Some(d) = &m.deploy {
                if let Some(e) = &d.error {
                    eprintln!("certmesh: deploying {} to {} failed: {e}", m.name, d.host);
                }
            }
        }
        if !report.changed {
            ctx.say(format!(
                "nothing due: {} member(s) checked",
                report.members.len()
            ));
        }
    }
    Ok(if report.failed {
        Outcome::Failed
    } else if report.changed {
        Outcome::Changed
    } else {
        Outcome::Nothing
    })
}
