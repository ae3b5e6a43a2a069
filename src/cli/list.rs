//! `certmesh list`

use clap::Args;

use certmesh::ca::Store;
use certmesh::duration::parse_seconds;
use certmesh::Result;

use super::{print_json, Context};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  certmesh list
  certmesh list --expiring-within 30d --json")]
pub struct ListArgs {
    /// Only certificates that expire within this time (e.g. 30d, 12h, 2w).
    #[arg(long = "expiring-within", value_name = "DURATION")]
    pub expiring_within: Option<String>,
    /// Include superseded certificates.
    #[arg(long)]
    pub all: bool,
    /// Print the list as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, a: ListArgs) -> Result<i32> {
    let before = match &a.expiring_within {
        Some(d) => Some(time::OffsetDateTime::now_utc().unix_timestamp() + parse_seconds(d)?),
        None => None,
    };
    let store = Store::open(&ctx.home)?;
    let inventory = store.inventory()?;
    let records = inventory.list(before, a.all)?;
    if a.json {
        // Revoked records also carry when and why (Unix seconds, RFC 5280 reason name).
        let revocations = inventory.revocations()?;
        let out: Vec<serde_json::Value> = records
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).expect("record serializes");
                if let Some(x) = revocations.iter().find(|x| x.serial == r.serial) {
                    v["revoked_at"] = x.revoked_at.into();
                    v["revocation_reason"] = x.reason.clone().into();
                }
                // A CA's own row says where its key lives: "file" or the token's URI.
                if let Some(a) = ca_row(&store, r) {
                    v["ca_key"] = a
                        .pkcs11
                        .as_ref()
                        .map_or("file".to_string(), |t| t.uri.clone())
                        .into();
                }
                v
            })
            .collect();
        print_json(&out);
        return Ok(0);
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    println!(
        "{:<20} {:<12} {:<7} {:<10} {:>9}  {:<10} NAMES",
        "NAME", "KIND", "PROFILE", "EXPIRES", "DAYS LEFT", "STATUS"
    );
    for r in &records {
        let expires = time::OffsetDateTime::from_unix_timestamp(r.not_after)
            .map(|t| t.date().to_string())
            .unwrap_or_default();
        println!(
            "{:<20} {:<12} {:<7} {:<10} {:>9}  {:<10} {}",
            r.name,
            r.kind,
            if r.profile.is_empty() {
                "-"
            } else {
                &r.profile
            },
            expires,
            (r.not_after - now).div_euclid(86_400),
            r.status,
            r.sans.join(",")
        );
    }
    for r in &records {
        if let Some(t) = ca_row(&store, r).and_then(|a| a.pkcs11.as_ref()) {
            println!("{}: key in the PKCS#11 token {}", r.name, t.uri);
        }
    }
    Ok(0)
}

/// The authority a root or intermediate row of the inventory stands for.
fn ca_row<'a>(
    store: &'a Store,
    r: &certmesh::inventory::Record,
) -> Option<&'a certmesh::ca::AuthorityEntry> {
    r.kind.is_ca().then(|| store.authority(&r.name)).flatten()
}
