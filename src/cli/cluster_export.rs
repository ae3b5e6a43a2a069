//! `certmesh cluster export ansible`

use std::path::PathBuf;

use clap::{Args, Subcommand};

use certmesh::cluster::ansible::{export, ExportOptions};
use certmesh::cluster::manifest::Manifest;
use certmesh::Result;

use super::{print_json, warn, Context};

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Write an Ansible project (inventory, playbook, the certmesh role) that delivers
    /// every member's files to its host, reloads and probes it.
    #[command(after_help = "Examples:
  certmesh cluster export ansible cluster.toml --out /srv/certmesh --to ansible/
  ansible-playbook -i ansible/inventory.yml ansible/site.yml --check --diff
  ansible-playbook -i /etc/ansible/hosts -i ansible/inventory.yml ansible/site.yml -f 20

Members with a [member.deploy] section become hosts of the inventory (host, port, user);
members with inventory_host (and those taken from [ansible] groups) are delivered to that
host of the inventory the playbook is run with. Files are read from --out when the
playbook runs, so after `certmesh renew --cluster` it delivers the renewed ones.")]
    Ansible(AnsibleArgs),
}

#[derive(Debug, Args)]
pub struct AnsibleArgs {
    /// The cluster manifest.
    pub manifest: PathBuf,
    /// Output directory the cluster was applied to.
    #[arg(long, default_value = "out", value_name = "DIR")]
    pub out: PathBuf,
    /// Directory the Ansible project is written into.
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// More product profiles (TOML files).
    #[arg(long, value_name = "DIR")]
    pub profiles: Vec<PathBuf>,
    /// Print what was written as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, cmd: ExportCommand) -> Result<i32> {
    let ExportCommand::Ansible(a) = cmd;
    let manifest = Manifest::load(&a.manifest)?;
    let profiles = super::profiles::load_profiles(&a.profiles)?;
    let bin = std::env::current_exe().ok();
    let report = export(
        &manifest,
        &profiles,
        &a.out,
        &ExportOptions {
            to: &a.to,
            certmesh_bin: bin.as_deref(),
        },
    )?;
    if a.json {
        print_json(&report);
        return Ok(0);
    }
    for h in &report.hosts {
        ctx.say(format!(
            "{} ({}): {}",
            h.host,
            if h.defined {
                "defined here"
            } else {
                "from your inventory"
            },
            h.members.join(", ")
        ));
    }
    for m in &report.not_delivered {
        warn(format!(
            "{m}: not delivered (no [member.deploy], inventory_host or [ansible] dir)"
        ));
    }
    ctx.say(format!(
        "wrote {}: ansible-playbook -i {}/inventory.yml {}/site.yml",
        report.dir, report.dir, report.dir
    ));
    Ok(0)
}
