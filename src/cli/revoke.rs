//! `certmesh revoke` and `certmesh crl`

use std::path::PathBuf;

use clap::Args;

use certmesh::ca::{CrlWritten, Reason, Store};
use certmesh::Result;

use super::{print_json, secret, warn, Context};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  certmesh revoke node1 --reason keyCompromise
  certmesh revoke 3f:9a:...:01 --reason cessationOfOperation --ca-pass file:/etc/certmesh/ca.pass

NAME revokes the current certificate of an issued name; a serial (hex, colons allowed)
revokes that certificate, current or superseded. The inventory records the time and
reason, then <home>/crl.pem is rewritten. Revoking a revoked certificate changes nothing.")]
pub struct RevokeArgs {
    /// Issued name or serial number.
    #[arg(value_name = "NAME|SERIAL")]
    pub what: String,
    /// keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation
    /// or unspecified.
    #[arg(long, default_value = "unspecified")]
    pub reason: String,
    /// Validity of the CRL written afterwards, in days.
    #[arg(long, default_value_t = 7)]
    pub days: u32,
    /// Passphrase of the issuing CA key, when it is encrypted.
    #[arg(long = "ca-pass", value_name = "SPEC")]
    pub ca_pass: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  certmesh crl
  certmesh crl --days 30 --out /etc/nginx/certmesh-crl.pem

Writes an X.509 v2 CRL signed by the issuing CA, listing every certificate it signed that
was revoked, with a CRL number one higher than the last, to <home>/crl.pem (and --out).
`certmesh renew` refreshes an existing crl.pem in the last third of its lifetime.")]
pub struct CrlArgs {
    /// Days until nextUpdate.
    #[arg(long, default_value_t = 7)]
    pub days: u32,
    /// Also write the CRL here.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Passphrase of the issuing CA key, when it is encrypted.
    #[arg(long = "ca-pass", value_name = "SPEC")]
    pub ca_pass: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, a: RevokeArgs) -> Result<i32> {
    let reason = Reason::parse(&a.reason)?;
    let store = Store::open(&ctx.home)?;
    let _lock = store.lock()?;
    let rec = store.find_certificate(&a.what)?;
    if rec.status == "revoked" {
        ctx.say(format!(
            "{} (serial {}) is already revoked; nothing changed",
            rec.name, rec.serial
        ));
        return Ok(0);
    }
    let issuing = store.issuing().id.clone();
    let signer = store.signer(&issuing, &mut || {
        secret::obtain(
            a.ca_pass.as_deref(),
            "CA key passphrase",
            "--ca-pass",
            false,
        )
    })?;
    let revoked = store.revoke(&rec, reason, &signer)?;
    if revoked.other_issuer {
        warn(format!(
            "{} was signed by another CA than the current issuing one; the CRL written now does not list it",
            revoked.serial
        ));
    }
    ctx.log(
        "revoke",
        format!(
            "revoked {} serial {} reason {}",
            revoked.name, revoked.serial, revoked.reason
        ),
    );
    let crl = store.write_crl(&signer, a.days, None)?;
    log_crl(ctx, "revoke", &crl);
    if a.json {
        print_json(&serde_json::json!({ "revoked": revoked, "crl": crl }));
    } else {
        ctx.say(format!(
            "revoked {} (serial {}, {})",
            revoked.name, revoked.serial, revoked.reason
        ));
        say_crl(ctx, &crl);
    }
    Ok(0)
}

pub fn run_crl(ctx: &Context, a: CrlArgs) -> Result<i32> {
    let (store, _lock, signer) = super::issuing_signer(ctx, a.ca_pass.as_deref())?;
    let crl = store.write_crl(&signer, a.days, a.out.as_deref())?;
    log_crl(ctx, "crl", &crl);
    if a.json {
        print_json(&crl);
    } else {
        say_crl(ctx, &crl);
        if let Some(out) = &a.out {
            ctx.say(format!("  also written to {}", out.display()));
        }
    }
    Ok(0)
}

pub(super) fn log_crl(ctx: &Context, command: &str, crl: &CrlWritten) {
    ctx.log(
        command,
        format!(
            "wrote CRL number {} to {}, next update {}, revoked serials [{}]",
            crl.number,
            crl.path.display(),
            crl.next_update,
            crl.revoked.join(" ")
        ),
    );
}

pub(super) fn say_crl(ctx: &Context, crl: &CrlWritten) {
    ctx.say(format!(
        "wrote CRL number {} ({} revoked) to {}, next update {}",
        crl.number,
        crl.revoked.len(),
        crl.path.display(),
        crl.next_update
    ));
}
