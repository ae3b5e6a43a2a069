//! `certmesh rollback`

use clap::Args;

use certmesh::ca::Store;
use certmesh::Result;

use super::{print_json, warn, Context};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  certmesh rollback --list
  certmesh rollback                         # undo the last run that replaced certificates
  certmesh rollback --to 20261123T020000Z

Every backup/<TIMESTAMP>/issued/NAME goes back to issued/NAME; what is there now moves to a
fresh backup generation (so `certmesh rollback` again undoes the rollback) and the
inventory marks the restored certificate valid and the replaced one superseded.
A revoked certificate is never put back.")]
pub struct RollbackArgs {
    /// The backup generation to put back (a directory name under <home>/backup).
    #[arg(long, value_name = "TIMESTAMP")]
    pub to: Option<String>,
    /// Show the backup generations and what each holds; change nothing.
    #[arg(long, conflicts_with = "to")]
    pub list: bool,
    /// Roll back a cluster's CA store(s) instead of the store at --home, then rewrite
    /// every member's files from the restored certificates.
    #[arg(long, value_name = "FILE")]
    pub cluster: Option<std::path::PathBuf>,
    /// The cluster's output directory.
    #[arg(long, default_value = "out", value_name = "DIR")]
    pub out: std::path::PathBuf,
    /// With --cluster: push the restored files to the members and reload them.
    #[arg(long, requires = "cluster")]
    pub deploy: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, a: RollbackArgs) -> Result<i32> {
    if let Some(manifest) = &a.cluster {
        return rollback_cluster(ctx, &a, manifest);
    }
    let store = Store::open(&ctx.home)?;
    if a.list {
        let gens = store.backup_generations()?;
        if a.json {
            print_json(&gens);
            return Ok(0);
        }
        if gens.is_empty() {
            println!(
                "no backup generations in {}",
                store.home().join("backup").display()
            );
        }
        for g in gens.iter().rev() {
            println!("{}", g.stamp);
            for e in &g.entries {
                println!(
                    "  {:<20} serial {}  expires {}",
                    e.name,
                    e.serial.as_deref().unwrap_or("?"),
                    e.not_after
                        .as_deref()
                        .map(|t| &t[..10.min(t.len())])
                        .unwrap_or("?")
                );
            }
        }
        return Ok(0);
    }
    let _lock = store.lock()?;
    let done = store.rollback(a.to.as_deref())?;
    for w in &done.warnings {
        warn(w);
    }
    for r in &done.restored {
        ctx.log(
            "rollback",
            format!(
                "restored {} serial {} from backup {}, replacing serial {}",
                r.name,
                r.serial.as_deref().unwrap_or("?"),
                done.stamp,
                r.replaced_serial.as_deref().unwrap_or("-")
            ),
        );
    }
    if a.json {
        print_json(&done);
    } else {
        for r in &done.restored {
            ctx.say(format!(
                "restored {}: serial {} -> {}",
                r.name,
                r.replaced_serial.as_deref().unwrap_or("(none)"),
                r.serial.as_deref().unwrap_or("?")
            ));
        }
        ctx.say(format!(
            "rolled back generation {}; the replaced files are in {} (run `certmesh rollback` again to undo)",
            done.stamp,
            done.backup.display()
        ));
    }
    Ok(0)
}

/// Rolls back every CA store of a cluster, then rewrites (and with --deploy pushes) the
/// members' files from the restored certificates without renewing any of them.
fn rollback_cluster(ctx: &Context, a: &RollbackArgs, path: &std::path::Path) -> Result<i32> {
    use certmesh::cluster::apply::{apply, Options, Silent};
    use certmesh::cluster::manifest::Manifest;
    let manifest = Manifest::load(path)?;
    let stores = certmesh::cluster::apply::cluster_stores(&manifest, &a.out)?;
    let mut restored = 0;
    for store in stores.iter().flatten() {
        if store.backup_generations()?.is_empty() {
            continue;
        }
        let _lock = store.lock()?;
        let done = store.rollback(a.to.as_deref())?;
        for r in &done.restored {
            restored += 1;
            ctx.say(format!(
                "restored {}: serial {} -> {}",
                r.name,
                r.replaced_serial.as_deref().unwrap_or("(none)"),
                r.serial.as_deref().unwrap_or("?")
            ));
        }
    }
    if restored == 0 {
        return Err(certmesh::Error::Refused(format!(
            "{}: no backup generation to roll back to",
            a.out.display()
        )));
    }
    let report = apply(
        &manifest,
        &super::profiles::load_profiles(&[])?,
        &a.out,
        Options {
            dry_run: false,
            deploy: a.deploy,
            parallel: 4,
            wait: false,
            keep_certificates: true,
            renew_identities: &[],
            rekey_identities: &[],
            adopt_keys: &[],
            progress: &Silent,
            roll: Default::default(),
        },
    )?;
    for m in &report.members {
        if let Some(d) = &m.deploy {
            match &d.error {
                Some(e) => warn(format!("{}: deploy to {} failed: {e}", m.name, d.host)),
                None if !d.files.is_empty() => {
                    ctx.say(format!("  {}: pushed {}", d.host, d.files.join(", ")))
                }
                None => {}
            }
        }
    }
    Ok(if report.failed { 1 } else { 0 })
}
