//! `certmesh lint CERT|CRL...`

use std::path::PathBuf;

use clap::Args;
use x509_parser::prelude::*;
use x509_parser::revocation_list::CertificateRevocationList;

use certmesh::inspect::lint::{lint_cert, lint_crl, Finding};
use certmesh::x509::Document;
use certmesh::{Error, Result};

use super::{Context, FailOn};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  certmesh lint server.crt
  certmesh lint pki/issued/node1/cert.pem --json --fail-on warning
  certmesh lint pki/crl.pem

Exit status: 1 when a finding is at or above --fail-on (default: error), else 0.")]
pub struct LintArgs {
    /// Certificates and CRLs to lint (PEM or DER; every certificate and CRL of a PEM file
    /// is linted).
    #[arg(required = true, value_name = "FILE")]
    pub certs: Vec<PathBuf>,
    /// Lowest severity that makes the exit status 1.
    #[arg(long, value_enum, default_value = "error")]
    pub fail_on: FailOn,
    /// Print JSON (one object per file; one per line for several files).
    #[arg(long)]
    pub json: bool,
}

/// One linted certificate, as `lint --json` prints it.
#[derive(serde::Serialize)]
struct CertFindings {
    subject: String,
    findings: Vec<Finding>,
}

/// One linted CRL, as `lint --json` prints it.
#[derive(serde::Serialize)]
struct CrlFindings {
    issuer: String,
    findings: Vec<Finding>,
}

#[derive(serde::Serialize)]
struct FileFindings {
    file: String,
    certificates: Vec<CertFindings>,
    crls: Vec<CrlFindings>,
}

pub fn run(_ctx: &Context, a: LintArgs) -> Result<i32> {
    let threshold = a.fail_on.threshold();
    let now = ::time::OffsetDateTime::now_utc().unix_timestamp();
    let mut failed = false;
    for path in &a.certs {
        let mut report = FileFindings {
            file: path.display().to_string(),
            certificates: Vec::new(),
            crls: Vec::new(),
        };
        for doc in certmesh::x509::read_certs_and_crls(path)? {
            match doc {
                Document::Certificate(der) => {
                    let (_, cert) = X509Certificate::from_der(&der)
                        .map_err(|_| Error::bad_file(path, "not a valid X.509 certificate"))?;
                    let findings = lint_cert(&cert, &der);
                    failed |= findings.iter().any(|f| f.severity >= threshold);
                    report.certificates.push(CertFindings {
                        subject: cert.subject().to_string(),
                        findings,
                    });
                }
                Document::Crl(der) => {
                    let (_, crl) = CertificateRevocationList::from_der(&der)
                        .map_err(|_| Error::bad_file(path, "not a valid CRL"))?;
                    let findings = lint_crl(&crl, now);
                    failed |= findings.iter().any(|f| f.severity >= threshold);
                    report.crls.push(CrlFindings {
                        issuer: crl.issuer().to_string(),
                        findings,
                    });
                }
            }
        }
        if a.json {
            super::print_json_report(&report, a.certs.len() > 1);
            continue;
        }
        let items = report
            .certificates
            .iter()
            .map(|c| (c.subject.clone(), &c.findings))
            .chain(
                report
                    .crls
                    .iter()
                    .map(|c| (format!("CRL of {}", c.issuer), &c.findings)),
            );
        for (what, findings) in items {
            if findings.is_empty() {
                println!("{}: {what}: no findings", report.file);
            }
            for f in findings {
                println!(
                    "{}: {what}: {} {}: {}",
                    report.file,
                    f.severity.name(),
                    f.code,
                    f.message
                );
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}
