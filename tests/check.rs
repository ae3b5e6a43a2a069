//! `certmesh check`: Nagios exit codes and Prometheus metrics.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use support::pkilint::venv_python;
use support::{cm, tempdir};

/// A certificate that expired in 2021, made with the same generator certmesh uses.
fn expired_cert(path: &Path) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(vec!["old.example.com".to_string()]).unwrap();
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    fs::write(path, p.self_signed(&key).unwrap().pem()).unwrap();
}

#[test]
fn exit_codes_follow_the_nagios_convention() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "Check CA"]).assert_success();
    cm(
        &home,
        &["issue", "soon", "--dns", "soon.example.com", "--days", "2"],
    )
    .assert_success();
    cm(&home, &["issue", "later", "--dns", "later.example.com"]).assert_success();

    let r = cm(&home, &["check", "--within", "1d"]);
    assert_eq!(r.status, 0, "{r:?}");
    assert!(
        r.stdout
            .starts_with("CERTMESH OK - 3 certificate(s), none expires within 1d; next: soon in "),
        "{r:?}"
    );

    let r = cm(&home, &["check"]);
    assert_eq!(r.status, 1, "{r:?}");
    assert!(
        r.stdout.starts_with("CERTMESH WARNING - soon: expires in "),
        "{r:?}"
    );
    assert!(!r.stdout.contains("later"), "{r:?}");

    // Expired: CRITICAL.
    let old = dir.path().join("old.pem");
    expired_cert(&old);
    let r = cm(&home, &["check", "--file", old.to_str().unwrap()]);
    assert_eq!(r.status, 2, "{r:?}");
    assert!(
        r.stdout.contains("CRITICAL") && r.stdout.contains("expired"),
        "{r:?}"
    );

    // A chain whose leaf was not signed by the CA after it: CRITICAL.
    let other = dir.path().join("other");
    cm(&other, &["ca", "init", "--name", "Other CA"]).assert_success();
    let broken = dir.path().join("broken.pem");
    fs::write(
        &broken,
        format!(
            "{}{}",
            fs::read_to_string(home.join("issued/later/cert.pem")).unwrap(),
            fs::read_to_string(other.join("ca/root/cert.pem")).unwrap()
        ),
    )
    .unwrap();
    let r = cm(&home, &["check", "--file", broken.to_str().unwrap()]);
    assert_eq!(r.status, 2, "{r:?}");
    assert!(r.stdout.contains("broken chain"), "{r:?}");
    // The same leaf with its real chain is fine.
    let good = dir.path().join("good.pem");
    fs::write(
        &good,
        format!(
            "{}{}",
            fs::read_to_string(home.join("issued/later/cert.pem")).unwrap(),
            fs::read_to_string(home.join("ca/root/cert.pem")).unwrap()
        ),
    )
    .unwrap();
    assert_eq!(
        cm(&home, &["check", "--file", good.to_str().unwrap()]).status,
        0
    );

    // A tampered issued certificate in the store: CRITICAL.
    fs::copy(
        other.join("ca/root/cert.pem"),
        home.join("issued/later/cert.pem"),
    )
    .unwrap();
    let r = cm(&home, &["check", "--within", "1d"]);
    assert_eq!(r.status, 2, "{r:?}");

    // Unreadable: UNKNOWN.
    let junk = dir.path().join("junk.pem");
    fs::write(&junk, "nothing here\n").unwrap();
    let r = cm(&home, &["check", "--file", junk.to_str().unwrap()]);
    assert_eq!(r.status, 3, "{r:?}");
    assert!(r.stdout.starts_with("CERTMESH UNKNOWN"), "{r:?}");
}

#[test]
fn prometheus_textfile_parses_and_carries_every_certificate() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "Prom CA"]).assert_success();
    cm(
        &home,
        &["issue", "web", "--dns", "web.example.com", "--days", "10"],
    )
    .assert_success();
    let prom = dir.path().join("certmesh.prom");
    let r = cm(&home, &["check", "--prometheus", prom.to_str().unwrap()]);
    assert_eq!(r.status, 1, "{r:?}");
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
exp = {s.labels["name"]: s.value for s in fams["certmesh_cert_expiry_seconds"].samples}
print(sorted(exp), round(exp["web"] / 86400), int(fams["certmesh_check_status"].samples[0].value))
"#;
    let o = Command::new(venv_python())
        .arg("-c")
        .arg(script)
        .arg(&prom)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "['root', 'web'] 10 1"
    );
}

/// `check` judges each link of a chain by `verify`'s rules: a leaf signed by a
/// certificate that is no CA (here an X.509 v1 root, without basicConstraints) is a
/// broken chain, with the rule named, although the signature itself verifies.
#[test]
fn chain_links_follow_the_verify_rules() {
    use support::openssl::openssl;
    let dir = tempdir();
    let d = dir.path();
    let p = |n: &str| d.join(n).to_str().unwrap().to_string();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &p("root.key"),
        "-out",
        &p("root.pem"),
        "-subj",
        "/CN=V1 Root",
        "-days",
        "30",
    ])
    .assert_success();
    // A v1 root: `x509 -req -signkey` without extensions.
    openssl(&[
        "req",
        "-new",
        "-key",
        &p("root.key"),
        "-out",
        &p("root.csr"),
        "-subj",
        "/CN=V1 Root",
    ])
    .assert_success();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("root.csr"),
        "-signkey",
        &p("root.key"),
        "-days",
        "30",
        "-out",
        &p("v1.pem"),
    ])
    .assert_success();
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &p("leaf.key"),
        "-out",
        &p("leaf.csr"),
        "-subj",
        "/CN=leaf.example.com",
    ])
    .assert_success();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("leaf.csr"),
        "-CA",
        &p("v1.pem"),
        "-CAkey",
        &p("root.key"),
        "-CAcreateserial",
        "-days",
        "10",
        "-out",
        &p("leaf.pem"),
    ])
    .assert_success();
    let chain = d.join("chain.pem");
    fs::write(
        &chain,
        fs::read_to_string(d.join("leaf.pem")).unwrap()
            + &fs::read_to_string(d.join("v1.pem")).unwrap(),
    )
    .unwrap();
    let r = cm(
        &d.join("pki"),
        &["check", "--file", chain.to_str().unwrap()],
    );
    assert_eq!(r.status, 2, "{r:?}");
    assert!(
        r.stdout
            .contains("broken chain: CN=V1 Root: is not a CA (no basicConstraints"),
        "{r:?}"
    );
}
