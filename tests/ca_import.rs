//! `certmesh ca import`: adopting a CA made with the seeds' openssl steps.

mod support;

use std::fs;
use std::path::Path;

use support::openssl::{openssl, verify};
use support::{certmesh, cm, mode, run, snapshot, tempdir};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The seed's CA: `openssl genrsa -des3` then `openssl req -new -x509`, here with
/// 2048 bits (the seed's 1024 is refused without --allow-weak, tested below).
fn seed_ca(dir: &Path, bits: &str, traditional: bool) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = dir.join("ca.key");
    let crt = dir.join("ca.crt");
    let mut args = vec![
        "genrsa",
        "-des3",
        "-passout",
        "pass:seedpass",
        "-out",
        s(&key),
    ];
    if traditional {
        args.insert(1, "-traditional");
    }
    args.push(bits);
    openssl(&args).assert_success();
    openssl(&[
        "req",
        "-new",
        "-x509",
        "-days",
        "365",
        "-key",
        s(&key),
        "-passin",
        "pass:seedpass",
        "-subj",
        "/C=US/O=WSO2/CN=Seed CA",
        "-out",
        s(&crt),
    ])
    .assert_success();
    (key, crt)
}

#[test]
fn adopts_the_seed_ca_with_its_encrypted_key_and_issues_from_it() {
    for traditional in [false, true] {
        let dir = tempdir();
        let (key, crt) = seed_ca(dir.path(), "2048", traditional);
        let pw = dir.path().join("pw");
        fs::write(&pw, "seedpass\n").unwrap();
        let home = dir.path().join("pki");
        let r = cm(
            &home,
            &[
                "ca",
                "import",
                "--cert",
                s(&crt),
                "--key",
                s(&key),
                "--pass",
                &format!("file:{}", pw.display()),
            ],
        );
        r.assert_success();
        assert!(
            r.stderr.contains("no keyUsage"),
            "the seed CA's missing keyUsage is a warning: {r:?}"
        );
        // Stored unencrypted, 0600, same key as the original.
        let stored = home.join("ca/root/key.pem");
        assert_eq!(mode(&stored), 0o600);
        assert!(fs::read_to_string(&stored)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----"));
        let a = openssl(&[
            "pkey",
            "-in",
            s(&key),
            "-passin",
            "pass:seedpass",
            "-pubout",
        ])
        .stdout;
        let b = openssl(&["pkey", "-in", s(&stored), "-pubout"]).stdout;
        assert_eq!(a, b, "traditional={traditional}");
        cm(&home, &["issue", "node1", "--dns", "node1.example.com"]).assert_success();
        verify(
            &crt,
            None,
            &home.join("issued/node1/cert.pem"),
            &["-verify_hostname", "node1.example.com"],
        )
        .assert_success();
        assert_eq!(
            fs::read(home.join("issued/node1/ca.pem")).unwrap(),
            fs::read(&crt).unwrap()
        );
    }
}

#[test]
fn import_can_encrypt_the_key_at_rest() {
    let dir = tempdir();
    let (key, crt) = seed_ca(dir.path(), "2048", false);
    let home = dir.path().join("pki");
    let r = run(certmesh()
        .arg("--home")
        .arg(&home)
        .args([
            "ca",
            "import",
            "--cert",
            s(&crt),
            "--key",
            s(&key),
            "--pass",
            "env:SEED",
            "--key-pass",
            "env:STORE",
        ])
        .env("SEED", "seedpass")
        .env("STORE", "store pass"));
    r.assert_success();
    let stored = home.join("ca/root/key.pem");
    assert!(fs::read_to_string(&stored)
        .unwrap()
        .contains("ENCRYPTED PRIVATE KEY"));
    openssl(&[
        "pkey",
        "-in",
        s(&stored),
        "-passin",
        "pass:store pass",
        "-noout",
    ])
    .assert_success();
    let r = cm(&home, &["issue", "n", "--dns", "n.example.com"]);
    assert!(r.stderr.contains("--ca-pass"), "{r:?}");
    run(certmesh()
        .arg("--home")
        .arg(&home)
        .args([
            "issue",
            "n",
            "--dns",
            "n.example.com",
            "--ca-pass",
            "env:STORE",
        ])
        .env("STORE", "store pass"))
    .assert_success();
}

#[test]
fn bad_imports_are_refused_and_write_nothing() {
    let dir = tempdir();
    let d = dir.path();
    let (key, crt) = seed_ca(d, "2048", false);
    let weak = tempdir();
    let (wkey, wcrt) = seed_ca(weak.path(), "1024", true);
    let other = d.join("other.key");
    openssl(&["genrsa", "-out", s(&other), "2048"]).assert_success();
    let home = d.join("pki");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--cert", s(&crt), "--key", s(&key), "--pass", "pass:wrong"],
            "wrong passphrase",
        ),
        (
            vec!["--cert", s(&crt), "--key", s(&other)],
            "does not match",
        ),
        (
            vec![
                "--cert",
                s(&key),
                "--key",
                s(&key),
                "--pass",
                "pass:seedpass",
            ],
            "ca.key",
        ),
        (
            vec![
                "--cert",
                s(&wcrt),
                "--key",
                s(&wkey),
                "--pass",
                "pass:seedpass",
            ],
            "RSA-1024",
        ),
    ];
    for (args, expect) in cases {
        let mut full = vec!["ca", "import"];
        full.extend(args);
        let r = cm(&home, &full);
        assert_eq!(r.status, 1, "{full:?}: {r:?}");
        assert!(
            r.stderr.contains(expect),
            "{full:?} should say {expect}: {r:?}"
        );
        assert!(!home.join("store.toml").exists());
    }
    // The seed's RSA-1024 key itself is readable: `key strip` removes its passphrase as
    // `openssl rsa -in server.key -out server.key.insecure` did.
    let insecure = d.join("server.key.insecure");
    let r = cm(
        &home,
        &[
            "key",
            "strip",
            s(&wkey),
            "--out",
            s(&insecure),
            "--pass",
            "pass:seedpass",
        ],
    );
    r.assert_success();
    let a = openssl(&[
        "rsa",
        "-in",
        s(&wkey),
        "-passin",
        "pass:seedpass",
        "-pubout",
    ])
    .stdout;
    let b = openssl(&["rsa", "-in", s(&insecure), "-pubout"]).stdout;
    assert_eq!(a, b);
    cm(
        &home,
        &[
            "ca",
            "import",
            "--cert",
            s(&crt),
            "--key",
            s(&key),
            "--pass",
            "pass:seedpass",
        ],
    )
    .assert_success();
    // An existing store is never overwritten.
    let before = snapshot(&home.join("ca"));
    let r = cm(
        &home,
        &[
            "ca",
            "import",
            "--cert",
            s(&crt),
            "--key",
            s(&key),
            "--pass",
            "pass:seedpass",
        ],
    );
    assert_eq!(r.status, 1);
    assert!(r.stderr.contains("already exists"), "{r:?}");
    assert_eq!(snapshot(&home.join("ca")), before);
}
