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
reason, then <home>/crl.pem is rewritten, and the CRL of every CA above the issuing one
(<home>/ca/<id>/crl.pem) is written when it has none or it is aging. Revoking a revoked
certificate changes nothing.")]
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
was revoked, with a CRL number one higher than the last, to <home>/crl.pem, and one signed
by each CA above it to <home>/ca/<id>/crl.pem. --out gets all of them in one file (issuing
CA's first), as servers that check the whole chain need (nginx ssl_crl, Apache
SSLCARevocationFile with SSLCARevocationCheck chain). `certmesh renew` refreshes existing
CRLs in the last third of their lifetime.")]
pub struct CrlArgs {
    /// Days until nextUpdate.
    #[arg(long, default_value_t = 7)]
    pub days: u32,
    /// Also write the CRLs of the whole chain here, in one file.
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
    if rec.status == certmesh::inventory::Status::Revoked {
        ctx.say(format!(
            "{} (serial {}) is already revoked; nothing changed",
            rec.name, rec.serial
        ));
        return Ok(0);
    }
    let issuing = store.issuing().id.clone();
    let pass = secret::AskOnce::new(a.ca_pass.as_deref(), "CA key passphrase", "--ca-pass");
    let signer = store.signer(&issuing, &mut || pass.get())?;
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
    let crl = store.write_crl(&signer, a.days)?;
    log_crl(ctx, "revoke", &crl);
    // The revocation stands once the issuing CA's CRL lists it; a CA above that cannot
    // sign its CRL now is a warning, and `crl` or the next renew/apply tries again.
    let chain = match store.refresh_crls(&mut |id| store.signer(id, &mut || pass.get())) {
        Ok(chain) => chain,
        Err(e) => {
            warn(format!(
                "the CRLs of the CAs above the issuing one were not written: {e}"
            ));
            Vec::new()
        }
    };
    for c in &chain {
        log_crl(ctx, "revoke", c);
    }
    if a.json {
        print_json(&serde_json::json!({ "revoked": revoked, "crl": crl, "chain_crls": chain }));
    } else {
        ctx.say(format!(
            "revoked {} (serial {}, {})",
            revoked.name, revoked.serial, revoked.reason
        ));
        say_crl(ctx, &crl);
        for c in &chain {
            say_crl(ctx, c);
        }
    }
    Ok(0)
}

pub fn run_crl(ctx: &Context, a: CrlArgs) -> Result<i32> {
    let store = Store::open(&ctx.home)?;
    let _lock = store.lock()?;
    let pass = secret::AskOnce::new(a.ca_pass.as_deref(), "CA key passphrase", "--ca-pass");
    // Every key is loaded before anything is written, so a wrong passphrase for one CA
    // leaves every CRL as it was.
    let signers = store
        .crl_chain_ids()?
        .iter()
        .map(|id| store.signer(id, &mut || pass.get()))
        .collect::<Result<Vec<_>>>()?;
    let mut written = Vec::new();
    for signer in &signers {
        written.push(store.write_crl(signer, a.days)?);
    }
    if let Some(out) = &a.out {
        let bundle = store.crl_bundle()?.unwrap_or_default();
        certmesh::fsio::write_file(
            out,
            &bundle,
            certmesh::fsio::PUBLIC,
            certmesh::fsio::Overwrite::Replace,
        )?;
    }
    for c in &written {
        log_crl(ctx, "crl", c);
    }
    let crl = written.remove(0);
    if a.json {
        let mut v = serde_json::to_value(&crl).expect("report serializes");
        v["chain_crls"] = serde_json::to_value(&written).expect("report serializes");
        print_json(&v);
    } else {
        say_crl(ctx, &crl);
        for c in &written {
            say_crl(ctx, c);
        }
        if let Some(out) = &a.out {
            ctx.say(format!("  all of them also written to {}", out.display()));
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
