//! `certmesh inspect FILE...`

use std::path::PathBuf;

use clap::Args;

use certmesh::inspect::{inspect_bytes, CertReport, CsrReport, Object, Sans};
use certmesh::Result;

use super::Context;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  certmesh inspect pki/issued/node1/cert.pem
  certmesh inspect server.csr --json

With --json, each file is printed as one JSON object (one object per line for several
files); the shape is documented in docs/json.md.")]
pub struct InspectArgs {
    /// Files to describe: certificates, chains and CSRs, PEM or DER.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Passphrase of encrypted keys and PKCS#12 files (env:VAR, file:PATH, fd:N, stdin,
    /// pass:TEXT). Keys are described from their headers without it.
    #[arg(long, value_name = "SPEC")]
    pub pass: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(_ctx: &Context, a: InspectArgs) -> Result<i32> {
    let many = a.files.len() > 1;
    for path in &a.files {
        let data = zeroize::Zeroizing::new(certmesh::fsio::read(path)?);
        if certmesh::keystore::pkcs12::looks_like_pkcs12(&data) {
            super::p12view::inspect_p12(path, &data, a.pass.as_deref(), a.json, many, "--pass")?;
            continue;
        }
        let mut prompt =
            || super::secret::obtain(a.pass.as_deref(), "key passphrase", "--pass", false);
        let pass: Option<certmesh::key::PassPrompt<'_>> = if a.pass.is_some() {
            Some(&mut prompt)
        } else {
            None
        };
        let report = inspect_bytes(path, &data, pass)?;
        if a.json {
            super::print_json_report(&report, many);
            continue;
        }
        println!(
            "{}: {} object(s), {}",
            report.file,
            report.objects.len(),
            report.encoding
        );
        for (i, obj) in report.objects.iter().enumerate() {
            println!();
            match obj {
                Object::Certificate(c) => print_cert(i, c),
                Object::Csr(c) => print_csr(c),
                Object::Key(k) => print_key(k),
                Object::PublicKey(k) => {
                    println!("{} public key, {}", k.key, k.format);
                    println!("  public key SHA-256: {}", k.public_key_sha256);
                }
            }
        }
    }
    Ok(0)
}

fn sans_line(s: &Sans) -> String {
    let mut v: Vec<String> = s.dns.iter().map(|d| format!("DNS:{d}")).collect();
    v.extend(s.ip.iter().map(|d| format!("IP:{d}")));
    v.extend(s.email.iter().map(|d| format!("email:{d}")));
    v.extend(s.uri.iter().map(|d| format!("URI:{d}")));
    v.extend(s.other.iter().cloned());
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(", ")
    }
}

fn print_cert(i: usize, c: &CertReport) {
    let what = if c.is_ca {
        "CA certificate"
    } else {
        "certificate"
    };
    println!("[{i}] {what}");
    println!("  subject:       {}", c.subject);
    println!(
        "  issuer:        {}{}",
        c.issuer,
        if c.self_signed { " (self-signed)" } else { "" }
    );
    println!("  serial:        {}", c.serial);
    let state = if c.expired {
        format!("EXPIRED {} days ago", -c.days_left)
    } else if c.not_yet_valid {
        "NOT YET VALID".to_string()
    } else {
        format!("{} days left", c.days_left)
    };
    println!(
        "  validity:      {} to {} ({state})",
        c.not_before, c.not_after
    );
    println!("  key:           {}", c.key);
    println!("  signature:     {}", c.signature_algorithm);
    println!("  SAN:           {}", sans_line(&c.san));
    if c.is_ca {
        println!(
            "  CA:            yes, path length {}",
            c.path_len
                .map(|n| n.to_string())
                .unwrap_or_else(|| "unlimited".into())
        );
    }
    if !c.key_usage.is_empty() {
        println!("  key usage:     {}", c.key_usage.join(", "));
    }
    if !c.extended_key_usage.is_empty() {
        println!("  ext key usage: {}", c.extended_key_usage.join(", "));
    }
    if let Some(nc) = &c.name_constraints {
        let mut names: Vec<String> = nc.permitted_dns.clone();
        names.extend(nc.permitted_ip.iter().map(|n| n.to_string()));
        println!("  permitted:     {}", names.join(", "));
        if !nc.excluded_dns.is_empty() || !nc.excluded_ip.is_empty() {
            let mut ex: Vec<String> = nc.excluded_dns.clone();
            ex.extend(nc.excluded_ip.iter().map(|n| n.to_string()));
            println!("  excluded:      {}", ex.join(", "));
        }
    }
    println!("  SHA-256:       {}", c.fingerprints.sha256);
    println!("  SHA-1:         {}", c.fingerprints.sha1);
}

fn print_csr(c: &CsrReport) {
    println!("certificate signing request");
    println!("  subject:       {}", c.subject);
    println!("  key:           {}", c.key);
    println!(
        "  signature:     {} ({})",
        c.signature_algorithm,
        if c.signature_valid {
            "valid"
        } else {
            "INVALID"
        }
    );
    println!("  SAN:           {}", sans_line(&c.san));
    if c.requests_ca {
        println!("  requests CA:   yes");
    }
}

fn print_key(k: &certmesh::key::KeyFileInfo) {
    println!("{k}");
    if let Some(why) = &k.unsupported_reason {
        println!("  not readable: {why}");
    }
    if let Some(fp) = &k.public_key_sha256 {
        println!("  public key SHA-256: {fp}");
    } else if k.encrypted {
        println!("  (give --pass to see the key type and public-key fingerprint)");
    }
}
