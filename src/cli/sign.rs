//! `certmesh sign REQ.csr`

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args;

use certmesh::ca::SignRequest;
use certmesh::cert::{csr, Profile};
use certmesh::fsio::{self, Overwrite, PUBLIC};
use certmesh::Result;

use super::{print_json, warn, Context};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  certmesh sign server.csr --out server.crt
  keytool -certreq -alias wso2carbon -keystore wso2carbon.jks -file node1.csr
  certmesh sign node1.csr --profile peer --days 365 --out node1.crt --fullchain

The CSR's signature is verified first. Only its DNS and IP subjectAltNames are copied
(a CSR with none, like those of the classic openssl and keytool recipes, gets its CN as
the DNS name); key usages, validity and everything else come from the profile.")]
pub struct SignArgs {
    /// The certificate signing request (PEM or DER).
    pub csr: PathBuf,
    /// Where to write the certificate (PEM).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// server (serverAuth), client (clientAuth) or peer (both).
    #[arg(long, default_value = "server")]
    pub profile: String,
    /// Validity in days (never beyond the issuing CA's).
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// Add a DNS name to those the CSR asks for. Repeatable.
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub dns: Vec<String>,
    /// Add an IP address to those the CSR asks for. Repeatable.
    #[arg(long, value_name = "ADDR", value_delimiter = ',')]
    pub ip: Vec<IpAddr>,
    /// Name recorded in the inventory (default: the certificate's CN).
    #[arg(long)]
    pub name: Option<String>,
    /// Append the intermediate CA certificates after the leaf in --out.
    #[arg(long)]
    pub fullchain: bool,
    /// Sign RSA keys below 2048 bits and SHA-1 requests anyway (with a warning).
    #[arg(long = "allow-weak")]
    pub allow_weak: bool,
    /// Passphrase of the issuing CA key, when it is encrypted.
    #[arg(long = "ca-pass", value_name = "SPEC")]
    pub ca_pass: Option<String>,
    /// Overwrite --out if it exists.
    #[arg(long)]
    pub force: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(serde::Serialize)]
struct SignedView<'a> {
    out: String,
    serial: &'a str,
    not_after: &'a str,
    names: &'a [String],
}

pub fn run(ctx: &Context, a: SignArgs) -> Result<i32> {
    let profile = Profile::parse(&a.profile)?;
    let data = fsio::read(&a.csr)?;
    let info = csr::parse(&a.csr, &data)?;
    super::refuse_existing(&[&a.out], a.force)?;
    let (store, _lock, signer) = super::issuing_signer(ctx, a.ca_pass.as_deref())?;
    let req = SignRequest {
        csr: info,
        profile,
        days: a.days,
        extra_dns: a.dns,
        extra_ips: a.ip,
        name: a.name,
        allow_weak: a.allow_weak,
    };
    let signed = store.sign_csr(&signer, &req)?;
    for w in &signed.warnings {
        warn(w);
    }
    let mut pem = signed.cert_pem.clone();
    if a.fullchain {
        pem.push_str(&signed.intermediates_pem);
    }
    let overwrite = if a.force {
        Overwrite::Replace
    } else {
        Overwrite::Refuse
    };
    fsio::write_file(&a.out, pem.as_bytes(), PUBLIC, overwrite)?;
    store.record_signed(&signed)?;
    ctx.log(
        "sign",
        format!(
            "signed {} into {} serial {} expires {}",
            a.csr.display(),
            a.out.display(),
            signed.serial,
            signed.not_after
        ),
    );
    if a.json {
        print_json(&SignedView {
            out: a.out.display().to_string(),
            serial: &signed.serial,
            not_after: &signed.not_after,
            names: &signed.names,
        });
    } else {
        ctx.say(format!(
            "signed {} ({}, {}) into {}, expires {}",
            a.csr.display(),
            profile.name(),
            signed.names.join(", "),
            a.out.display(),
            &signed.not_after[..10]
        ));
    }
    Ok(0)
}
