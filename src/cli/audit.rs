//! `certmesh audit PATH...`

use std::path::PathBuf;

use clap::Args;

use certmesh::inspect::audit::audit;
use certmesh::Result;

use super::{Context, FailOn};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  certmesh audit /etc/ssl/private /opt/wso2/repository/resources/security
  certmesh audit . --storepass env:P12_PASS --json --fail-on warning

Files are classified by content: certificates, private keys, CSRs, PKCS#12 and Java
keystores. Exit status: 1 when a finding is at or above --fail-on (default: error).")]
pub struct AuditArgs {
    /// Files and directories (walked recursively).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Passphrase to try on PKCS#12 files (env:VAR, file:PATH, fd:N, stdin, pass:TEXT);
    /// may be repeated.
    #[arg(long, value_name = "SPEC")]
    pub storepass: Vec<String>,
    /// Lowest severity that makes the exit status 1.
    #[arg(long, value_enum, default_value = "error")]
    pub fail_on: FailOn,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(_ctx: &Context, a: AuditArgs) -> Result<i32> {
    let mut passes = Vec::new();
    for spec in &a.storepass {
        passes.push(super::secret::obtain_store_password(
            Some(spec),
            "keystore password",
            "--storepass",
            false,
        )?);
    }
    let report = audit(&a.paths, &passes)?;
    if a.json {
        super::print_json(&report);
    } else {
        for f in &report.files {
            println!("{}: {}: {}", f.file, f.kind, f.summary);
            for x in &f.findings {
                println!("  {} {}: {}", x.severity.name(), x.code, x.message);
            }
        }
    }
    let threshold = a.fail_on.threshold();
    Ok(match report.worst() {
        Some(w) if w >= threshold => 1,
        _ => 0,
    })
}
