//! `certmesh issue NAME`

use std::net::IpAddr;

use clap::Args;

use certmesh::ca::IssueRequest;
use certmesh::cert::{Profile, SubjectNames};
use certmesh::key::KeyAlg;
use certmesh::Result;

use super::{print_json, warn, Context};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  certmesh issue node1 --dns node1.example.com --ip 10.0.0.11
  certmesh issue lb --dns lb.example.com --dns www.example.com --key rsa2048 --days 397
  certmesh issue app1 --dns app1.example.com --profile peer

Writes <home>/issued/NAME/: key.pem (0600), cert.pem, chain.pem (CA certificates, issuing
CA first, root last), fullchain.pem (leaf + intermediates, what nginx and Apache serve) and
ca.pem (the root).")]
pub struct IssueArgs {
    /// Name of the entry; becomes the directory under issued/.
    pub name: String,
    /// DNS name (subjectAltName); the first one is also the CN. Repeatable.
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub dns: Vec<String>,
    /// IP address (subjectAltName). Repeatable.
    #[arg(long, value_name = "ADDR", value_delimiter = ',')]
    pub ip: Vec<IpAddr>,
    /// server (serverAuth), client (clientAuth) or peer (both).
    #[arg(long, default_value = "server")]
    pub profile: String,
    /// Validity in days (never beyond the issuing CA's).
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// Key type: p256, p384, ed25519, rsa2048, rsa3072, rsa4096.
    #[arg(long, default_value = "p256", value_name = "ALG")]
    pub key: String,
    /// Passphrase of the issuing CA key, when it is encrypted.
    #[arg(long = "ca-pass", value_name = "SPEC")]
    pub ca_pass: Option<String>,
    /// Replace an existing entry (the old files move to backup/).
    #[arg(long)]
    pub force: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, a: IssueArgs) -> Result<i32> {
    let req = IssueRequest {
        name: a.name.clone(),
        names: SubjectNames::new(&a.dns, &a.ip)?,
        profile: Profile::parse(&a.profile)?,
        days: a.days,
        key: KeyAlg::parse(&a.key)?,
        replace: a.force,
        data_encipherment: false,
    };
    let (store, _lock, signer) = super::issuing_signer(ctx, a.ca_pass.as_deref())?;
    let issued = store.issue(&signer, &req)?;
    ctx.log(
        "issue",
        format!(
            "issued {} serial {} expires {}{}",
            issued.name,
            issued.serial,
            issued.not_after,
            match &issued.backup {
                Some(b) => format!(", previous files moved to {}", b.display()),
                None => String::new(),
            }
        ),
    );
    for w in &issued.warnings {
        warn(w);
    }
    if a.json {
        print_json(&issued);
    } else {
        ctx.say(format!(
            "issued {} ({} {}, {}) in {}, expires {}",
            issued.name,
            req.profile.name(),
            req.key,
            req.names.all().join(", "),
            issued.dir.display(),
            &issued.not_after[..10]
        ));
        if let Some(b) = &issued.backup {
            ctx.say(format!("  previous files kept in {}", b.display()));
        }
    }
    Ok(0)
}
