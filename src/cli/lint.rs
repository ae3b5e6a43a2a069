//! `certmesh lint CERT...`

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use x509_parser::prelude::*;

use certmesh::inspect::lint::{lint_cert, Finding, Severity};
use certmesh::{Error, Result};

use super::Context;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  certmesh lint server.crt
  certmesh lint pki/issued/node1/cert.pem --json --fail-on warning

Exit status: 1 when a finding is at or above --fail-on (default: error), else 0.")]
pub struct LintArgs {
    /// Certificates to lint (PEM or DER; every certificate of a PEM bundle is linted).
    #[arg(required = true)]
    pub certs: Vec<PathBuf>,
    /// Lowest severity that makes the exit status 1.
    #[arg(long, value_enum, default_value = "error")]
    pub fail_on: FailOn,
    /// Print JSON (one object per file; one per line for several files).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FailOn {
    Warning,
    Error,
}

/// One linted certificate, as `lint --json` prints it.
#[derive(serde::Serialize)]
struct CertFindings {
    subject: String,
    findings: Vec<Finding>,
}

#[derive(serde::Serialize)]
struct FileFindings {
    file: String,
    certificates: Vec<CertFindings>,
}

pub fn run(_ctx: &Context, a: LintArgs) -> Result<i32> {
    let threshold = match a.fail_on {
        FailOn::Warning => Severity::Warning,
        FailOn::Error => Severity::Error,
    };
    let mut failed = false;
    for path in &a.certs {
        let mut report = FileFindings {
            file: path.display().to_string(),
            certificates: Vec::new(),
        };
        for der in certmesh::x509::read_certs(path)? {
            let (_, cert) = X509Certificate::from_der(&der)
                .map_err(|_| Error::bad_file(path, "not a valid X.509 certificate"))?;
            let findings = lint_cert(&cert, &der);
            failed |= findings.iter().any(|f| f.severity >= threshold);
            report.certificates.push(CertFindings {
                subject: cert.subject().to_string(),
                findings,
            });
        }
        if a.json {
            if a.certs.len() > 1 {
                println!(
                    "{}",
                    serde_json::to_string(&report).expect("report serializes")
                );
            } else {
                super::print_json(&report);
            }
            continue;
        }
        for c in &report.certificates {
            if c.findings.is_empty() {
                println!("{}: {}: no findings", report.file, c.subject);
            }
            for f in &c.findings {
                println!(
                    "{}: {}: {} {}: {}",
                    report.file,
                    c.subject,
                    f.severity.name(),
                    f.code,
                    f.message
                );
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}
