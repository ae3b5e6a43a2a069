//! `certmesh lint`: certmesh's own certificates are clean (and pkilint agrees); the
//! certificates the seed guides make with openssl get the findings an operator must see.

mod support;

use std::path::Path;

use support::openssl::openssl;
use support::pkilint::{at_least_warning, describe, lint_pkix_cert};
use support::{ca_with_every_profile, certmesh, run, tempdir};

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// The codes `certmesh lint --json` reports for a single-certificate file.
fn codes(file: &Path) -> Vec<(String, String)> {
    let r = run(certmesh().arg("lint").arg(file).arg("--json"));
    let v: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    let has_error = v["certificates"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["severity"] == "error");
    assert_eq!(r.status, i32::from(has_error), "{r:?}");
    v["certificates"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["severity"].as_str().unwrap().to_string(),
                f["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn certmesh_certificates_are_clean_and_pkilint_agrees() {
    for key in ["p256", "rsa3072", "ed25519"] {
        let dir = tempdir();
        let home = dir.path().join("pki");
        let files = ca_with_every_profile(&home, key, &[]);
        for f in &files {
            let r = run(certmesh().arg("lint").arg(f).args(["--fail-on", "warning"]));
            assert_eq!(r.status, 0, "{key} {}: {r:?}", f.display());
            assert!(r.stdout.contains(": no findings"), "{r:?}");
            let findings = lint_pkix_cert(f);
            let bad = at_least_warning(&findings);
            assert!(bad.is_empty(), "{key} {}: {}", f.display(), describe(&bad));
        }
    }
}

#[test]
fn seed_style_certificates_get_their_findings() {
    let dir = tempdir();
    let d = dir.path();
    // The seeds' self-signed server certificate.
    let seed = d.join("seed.pem");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:1024",
        "-sha1",
        "-nodes",
        "-keyout",
        s(&d.join("seed.key")),
        "-subj",
        "/CN=host",
        "-days",
        "730",
        "-out",
        s(&seed),
    ])
    .assert_success();
    let c = codes(&seed);
    for want in ["weak-rsa-key", "weak-signature", "ca-without-key-usage"] {
        assert!(
            c.iter().any(|(sev, code)| code == want && sev == "error"),
            "{want} missing: {c:?}"
        );
    }

    // A CA made with `openssl req -x509` (no keyUsage) and a CN-only leaf with serial 01.
    let ca = d.join("ca.pem");
    let ca_key = d.join("ca.key");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        s(&ca_key),
        "-subj",
        "/CN=Seed CA",
        "-days",
        "365",
        "-out",
        s(&ca),
    ])
    .assert_success();
    let csr = d.join("server.csr");
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        s(&d.join("server.key")),
        "-subj",
        "/CN=server.example.com",
        "-out",
        s(&csr),
    ])
    .assert_success();
    let leaf = d.join("server.crt");
    openssl(&[
        "x509",
        "-req",
        "-in",
        s(&csr),
        "-CA",
        s(&ca),
        "-CAkey",
        s(&ca_key),
        "-set_serial",
        "01",
        "-days",
        "365",
        "-out",
        s(&leaf),
    ])
    .assert_success();
    let c = codes(&ca);
    assert!(
        c.contains(&("error".into(), "ca-without-key-usage".into())),
        "{c:?}"
    );
    let c = codes(&leaf);
    for (sev, code) in [
        ("error", "no-subject-alt-name"),
        ("warning", "short-serial"),
        ("warning", "missing-subject-key-id"),
        ("warning", "missing-authority-key-id"),
    ] {
        assert!(
            c.contains(&(sev.to_string(), code.to_string())),
            "{code} missing: {c:?}"
        );
    }

    // Text output: one line per finding, exit 1 on errors.
    let r = run(certmesh().arg("lint").arg(&seed));
    assert_eq!(r.status, 1, "{r:?}");
    assert!(
        r.stdout
            .contains("error weak-rsa-key: RSA key of 1024 bits"),
        "{r:?}"
    );

    // A self-signed leaf valid for two years: warnings only, fatal with --fail-on warning.
    let long = d.join("long.pem");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        s(&d.join("long.key")),
        "-subj",
        "/CN=long.example.com",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-addext",
        "subjectAltName=DNS:long.example.com",
        "-days",
        "730",
        "-out",
        s(&long),
    ])
    .assert_success();
    let c = codes(&long);
    assert!(
        c.contains(&("warning".into(), "validity-too-long".into())),
        "{c:?}"
    );
    assert!(
        c.contains(&("warning".into(), "self-signed-leaf".into())),
        "{c:?}"
    );
    assert!(c.iter().all(|(sev, _)| sev != "error"), "{c:?}");
    let r = run(certmesh()
        .arg("lint")
        .arg(&long)
        .args(["--fail-on", "warning"]));
    assert_eq!(r.status, 1, "{r:?}");
}
