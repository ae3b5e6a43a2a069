//! A PKCS#12 file as `certmesh inspect`, `truststore list` and `keystore list` print it,
//! and the password of a PKCS#12 file to read.

use std::path::Path;

use certmesh::keystore::edit::untrusted_warning;
use certmesh::keystore::pkcs12;
use certmesh::pass::Secret;
use certmesh::Result;

use super::{print_json, secret, warn};

/// The password of a PKCS#12 file to read: `empty` allowed, and none asked for a file
/// that has none (no MAC, nothing encrypted).
pub fn p12_password(path: &Path, data: &[u8], spec: Option<&str>, flag: &str) -> Result<Secret> {
    if !pkcs12::needs_password(data) {
        if spec.is_some() {
            warn(format!(
                "{}: the PKCS#12 file has no password (no MAC, nothing encrypted); the one given is not used",
                path.display()
            ));
        }
        return Ok(Secret::new(String::new()));
    }
    let what = format!("{}: PKCS#12 password", path.display());
    secret::obtain_store_password(spec, &what, flag, false)
}

/// Prints a PKCS#12 file for `certmesh inspect`: its protection, then every bag. With
/// `json`, one pretty object, or one line per file when `many` files are inspected.
pub fn inspect_p12(
    path: &Path,
    data: &[u8],
    pass: Option<&str>,
    json: bool,
    many: bool,
    flag: &str,
) -> Result<()> {
    let pass = p12_password(path, data, pass, flag)?;
    let decoded = pkcs12::decode(path, data, &pass)?;
    if let Some(w) = untrusted_warning(path, &decoded) {
        warn(w);
    }
    let bags = decoded.bags();
    if json {
        #[derive(serde::Serialize)]
        struct Report<'a> {
            file: String,
            encoding: &'static str,
            protection: &'a pkcs12::Outline,
            bags: &'a [pkcs12::BagReport],
        }
        let report = Report {
            file: path.display().to_string(),
            encoding: "PKCS#12",
            protection: &decoded.outline,
            bags: &bags,
        };
        if many {
            println!(
                "{}",
                serde_json::to_string(&report).expect("report serializes")
            );
        } else {
            print_json(&report);
        }
        return Ok(());
    }
    let keys = bags.iter().filter(|b| b.kind == "key").count();
    println!(
        "{}: PKCS#12, {keys} private key(s), {} certificate(s)",
        path.display(),
        bags.len() - keys
    );
    let o = &decoded.outline;
    match &o.mac {
        Some(m) => println!("  MAC:           {m}"),
        None => println!("  MAC:           none (integrity not protected)"),
    }
    for p in &o.content_encryption {
        println!("  certificates:  {p}");
    }
    for p in &o.key_encryption {
        println!("  keys:          {p}");
    }
    if o.uses_weak_cipher() {
        println!("  warning:       40/128-bit RC2 or RC4 protects part of this file; re-export it");
    }
    for (i, b) in bags.iter().enumerate() {
        println!();
        println!(
            "[{i}] {}",
            match b.kind {
                "key" => "private key",
                "certificate" => "certificate",
                _ => b.content.as_deref().unwrap_or("other bag"),
            }
        );
        println!(
            "  alias:         {}",
            b.alias.as_deref().unwrap_or("(none)")
        );
        if let Some(k) = &b.key {
            println!("  key:           {k}");
        }
        if b.kind == "certificate" {
            println!("  trusted:       {}", if b.trusted { "yes" } else { "no" });
        }
        if let Some(id) = &b.local_key_id {
            println!("  localKeyId:    {id}");
        }
        if let Some(s) = &b.subject {
            println!("  subject:       {s}");
        }
        if let (Some(na), Some(d)) = (&b.not_after, b.days_left) {
            let state = if d < 0 {
                format!("EXPIRED {} days ago", -d)
            } else {
                format!("{d} days left")
            };
            println!("  expires:       {na} ({state})");
        }
        if let Some(f) = &b.sha256 {
            println!("  SHA-256:       {f}");
        }
    }
    Ok(())
}
