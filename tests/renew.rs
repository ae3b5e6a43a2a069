//! `certmesh renew`: exactly the due certificates, nothing when nothing is due, safe when
//! a key does not match, one run at a time.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use support::openssl::openssl;
use support::{certmesh, cluster_apply, cm, run, snapshot, tempdir};

fn serial(p: &Path) -> String {
    openssl(&["x509", "-in", p.to_str().unwrap(), "-noout", "-serial"])
        .stdout
        .trim()
        .to_string()
}

fn without_lock(
    mut s: std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>,
) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    s.remove(Path::new(".lock"));
    s
}

#[test]
fn renews_exactly_the_due_certificates_then_nothing() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    let pw = dir.path().join("pw");
    fs::write(&pw, "ca secret\n").unwrap();
    let ca_pass = format!("file:{}", pw.display());
    cm(
        &home,
        &["ca", "init", "--name", "Renew CA", "--key-pass", &ca_pass],
    )
    .assert_success();
    for (name, days) in [("soon", "2"), ("later", "365")] {
        cm(
            &home,
            &[
                "issue",
                name,
                "--dns",
                &format!("{name}.example.com"),
                "--days",
                days,
                "--ca-pass",
                &ca_pass,
            ],
        )
        .assert_success();
    }
    let soon_serial = serial(&home.join("issued/soon/cert.pem"));
    let soon_key = fs::read(home.join("issued/soon/key.pem")).unwrap();
    let later_before = snapshot(&home.join("issued/later"));

    let r = cm(
        &home,
        &[
            "renew",
            "--within",
            "3d",
            "--changed-exit",
            "3",
            "--ca-pass",
            &ca_pass,
        ],
    );
    assert_eq!(r.status, 3, "--changed-exit reports a renewal: {r:?}");
    assert!(r.stdout.contains("renewed soon"), "{r:?}");
    assert!(!r.stdout.contains("later"), "{r:?}");
    assert_ne!(serial(&home.join("issued/soon/cert.pem")), soon_serial);
    assert_ne!(
        fs::read(home.join("issued/soon/key.pem")).unwrap(),
        soon_key,
        "a new key by default"
    );
    assert_eq!(
        snapshot(&home.join("issued/later")),
        later_before,
        "not due, not touched"
    );
    let end = openssl(&[
        "x509",
        "-in",
        home.join("issued/soon/cert.pem").to_str().unwrap(),
        "-noout",
        "-checkend",
        &(300 * 86_400).to_string(),
    ]);
    end.assert_success();
    // The old generation is in the backup; the inventory knows it was superseded.
    let list: serde_json::Value =
        serde_json::from_str(&cm(&home, &["list", "--all", "--json"]).stdout).unwrap();
    assert_eq!(
        list.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["name"] == "soon")
            .count(),
        2
    );

    // Nothing due: exit 0, one line, no file changed, and no CA passphrase needed.
    let before = without_lock(snapshot(&home));
    let r = cm(&home, &["renew", "--within", "3d"]);
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(r.stdout.lines().count(), 1, "{r:?}");
    assert!(
        r.stdout
            .starts_with("nothing due: 2 certificate(s) checked"),
        "{r:?}"
    );
    assert_eq!(without_lock(snapshot(&home)), before);
    let r = cm(&home, &["renew", "--within", "3d", "--quiet"]);
    assert_eq!(
        (r.status, r.stdout.as_str(), r.stderr.as_str()),
        (0, "", ""),
        "cron wants silence"
    );

    // --reuse-key keeps the key.
    let key = fs::read(home.join("issued/later/key.pem")).unwrap();
    cm(
        &home,
        &[
            "renew",
            "--within",
            "400d",
            "--reuse-key",
            "--ca-pass",
            &ca_pass,
        ],
    )
    .assert_success();
    assert_eq!(fs::read(home.join("issued/later/key.pem")).unwrap(), key);
}

#[test]
fn a_key_that_does_not_match_is_never_certified() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "CA"]).assert_success();
    cm(
        &home,
        &["issue", "n", "--dns", "n.example.com", "--days", "1"],
    )
    .assert_success();
    // Someone replaced the key by hand.
    let other = dir.path().join("other.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        other.to_str().unwrap(),
    ])
    .assert_success();
    fs::copy(&other, home.join("issued/n/key.pem")).unwrap();
    let before = snapshot(&home.join("issued/n"));
    let r = cm(&home, &["renew"]);
    assert_eq!(r.status, 1, "{r:?}");
    assert!(
        r.stderr.contains("renewing n failed") && r.stderr.contains("does not match"),
        "{r:?}"
    );
    assert_eq!(snapshot(&home.join("issued/n")), before);
}

#[test]
fn a_second_run_waits_or_exits_75() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "CA"]).assert_success();
    cm(
        &home,
        &["issue", "n", "--dns", "n.example.com", "--days", "1"],
    )
    .assert_success();
    // Another run holds the store's lock (flock(1) takes the same kind of lock).
    let mut holder = Command::new("flock")
        .arg(home.join(".lock"))
        .args(["sleep", "3"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let r = cm(&home, &["renew"]);
    assert_eq!(r.status, 75, "{r:?}");
    assert!(
        r.stderr.contains("another certmesh run holds the lock"),
        "{r:?}"
    );
    let r = cm(&home, &["renew", "--wait"]);
    assert_eq!(r.status, 0, "--wait queues behind the holder: {r:?}");
    assert!(r.stdout.contains("renewed n"), "{r:?}");
    holder.wait().unwrap();
    // Exactly one renewal happened.
    let list: serde_json::Value =
        serde_json::from_str(&cm(&home, &["list", "--all", "--json"]).stdout).unwrap();
    assert_eq!(
        list.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["name"] == "n")
            .count(),
        2
    );
}

#[test]
fn cluster_renewal_follows_the_manifest() {
    let dir = tempdir();
    let manifest = dir.path().join("cluster.toml");
    let text = "name = \"r\"\n[defaults]\nprofile = \"nginx\"\n[[member]]\nname = \"a\"\ndns = [\"a.cluster.test\"]\ndays = 2\n[[member]]\nname = \"b\"\ndns = [\"b.cluster.test\"]\n";
    fs::write(&manifest, text).unwrap();
    let out = dir.path().join("out");
    cluster_apply(&manifest, &out).assert_success();
    let a = serial(&out.join("a/fullchain.pem"));
    let b = fs::read(out.join("b/fullchain.pem")).unwrap();
    fs::write(&manifest, text.replace("days = 2\n", "")).unwrap();
    let renew = |extra: &[&str]| {
        run(certmesh()
            .args(["renew", "--cluster"])
            .arg(&manifest)
            .arg("--out")
            .arg(&out)
            .args(extra))
    };
    let r = renew(&["--within", "3d"]);
    r.assert_success();
    assert!(
        r.stdout.contains("renewed a (expires in 1 days)")
            || r.stdout.contains("renewed a (expires in 2 days)"),
        "{r:?}"
    );
    assert_ne!(serial(&out.join("a/fullchain.pem")), a);
    assert_eq!(fs::read(out.join("b/fullchain.pem")).unwrap(), b);
    let r = renew(&["--within", "3d"]);
    r.assert_success();
    assert_eq!(r.stdout.trim(), "nothing due: 2 member(s) checked", "{r:?}");

    // Roll the cluster back: a's previous certificate and files return, nothing is renewed.
    let r = run(certmesh()
        .args(["rollback", "--cluster"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out));
    r.assert_success();
    assert!(r.stdout.contains("restored a"), "{r:?}");
    assert_eq!(
        serial(&out.join("a/fullchain.pem")),
        a,
        "the member's files carry the old certificate again"
    );
    assert_eq!(fs::read(out.join("b/fullchain.pem")).unwrap(), b);
    let r = run(certmesh()
        .args(["rollback", "--cluster"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out));
    r.assert_success();
    assert_ne!(
        serial(&out.join("a/fullchain.pem")),
        a,
        "a second rollback undoes the first"
    );
}
