//! `ca init`, `ca intermediate`, `ca show` and `issue`, checked with openssl.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use support::openssl::{openssl, verify};
use support::{certmesh, cm, mode, run, snapshot, tempdir};

const KEYS: [&str; 6] = ["p256", "p384", "ed25519", "rsa2048", "rsa3072", "rsa4096"];

fn pem_count(path: &Path) -> usize {
    fs::read_to_string(path)
        .unwrap()
        .matches("-----BEGIN CERTIFICATE-----")
        .count()
}

/// Splits a PEM bundle into its certificate blocks.
fn pem_blocks(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap();
    text.split_inclusive("-----END CERTIFICATE-----\n")
        .map(str::to_string)
        .filter(|b| b.contains("BEGIN"))
        .collect()
}

fn issued(home: &Path, name: &str, file: &str) -> PathBuf {
    home.join("issued").join(name).join(file)
}

fn x509_text(path: &Path) -> String {
    openssl(&["x509", "-in", path.to_str().unwrap(), "-noout", "-text"])
        .assert_success()
        .stdout
        .clone()
}

#[test]
fn every_key_type_issues_a_chain_openssl_accepts() {
    for key in KEYS {
        for with_intermediate in [false, true] {
            let dir = tempdir();
            let home = dir.path().join("pki");
            cm(&home, &["ca", "init", "--name", "Cluster CA", "--key", key]).assert_success();
            if with_intermediate {
                cm(&home, &["ca", "intermediate", "--key", key]).assert_success();
            }
            cm(
                &home,
                &[
                    "issue",
                    "node1",
                    "--dns",
                    "node1.example.com",
                    "--ip",
                    "10.1.2.3",
                    "--key",
                    key,
                ],
            )
            .assert_success();
            let root = issued(&home, "node1", "ca.pem");
            let chain = issued(&home, "node1", "chain.pem");
            let leaf = issued(&home, "node1", "cert.pem");
            let ctx = format!("key {key}, intermediate {with_intermediate}");
            let r = verify(
                &root,
                Some(&chain),
                &leaf,
                &[
                    "-verify_hostname",
                    "node1.example.com",
                    "-purpose",
                    "sslserver",
                ],
            );
            assert!(r.success() && r.stdout.contains(": OK"), "{ctx}: {r:?}");
            let r = verify(&root, Some(&chain), &leaf, &["-verify_ip", "10.1.2.3"]);
            assert!(r.success(), "{ctx}: {r:?}");
            // A name the certificate does not carry must fail, or the checks above prove nothing.
            let r = verify(
                &root,
                Some(&chain),
                &leaf,
                &["-verify_hostname", "other.example.com"],
            );
            assert!(!r.success(), "{ctx}: wrong host name accepted: {r:?}");

            // chain.pem: issuing CA first, root last; fullchain.pem: leaf + intermediates.
            let expect_cas = if with_intermediate { 2 } else { 1 };
            assert_eq!(pem_count(&chain), expect_cas, "{ctx}");
            assert_eq!(
                pem_count(&issued(&home, "node1", "fullchain.pem")),
                expect_cas,
                "{ctx}"
            );
            let chain_blocks = pem_blocks(&chain);
            assert_eq!(
                chain_blocks.last().unwrap(),
                &fs::read_to_string(&root).unwrap(),
                "{ctx}: root last"
            );
            let full = pem_blocks(&issued(&home, "node1", "fullchain.pem"));
            assert_eq!(
                full[0],
                fs::read_to_string(&leaf).unwrap(),
                "{ctx}: leaf first"
            );
            assert!(
                !full.contains(&fs::read_to_string(&root).unwrap()),
                "{ctx}: no root in fullchain"
            );
            if with_intermediate {
                assert_eq!(full[1], chain_blocks[0], "{ctx}: intermediate after leaf");
                let text = x509_text(&home.join("ca/intermediate/cert.pem"));
                assert!(text.contains("CA:TRUE, pathlen:0"), "{ctx}: {text}");
            }

            // The key belongs to the certificate (openssl's view of both public keys).
            let key_pub = openssl(&[
                "pkey",
                "-in",
                issued(&home, "node1", "key.pem").to_str().unwrap(),
                "-pubout",
            ])
            .assert_success()
            .stdout
            .clone();
            let cert_pub = openssl(&["x509", "-in", leaf.to_str().unwrap(), "-noout", "-pubkey"])
                .assert_success()
                .stdout
                .clone();
            assert_eq!(key_pub, cert_pub, "{ctx}");
        }
    }
}

#[test]
fn root_has_the_required_extensions_and_a_128_bit_serial() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(
        &home,
        &["ca", "init", "--name", "Cluster CA", "--key", "rsa3072"],
    )
    .assert_success();
    let root = home.join("ca/root/cert.pem");
    let text = x509_text(&root);
    assert!(
        text.contains("X509v3 Basic Constraints: critical\n                CA:TRUE"),
        "{text}"
    );
    assert!(
        text.contains("X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign"),
        "{text}"
    );
    assert!(text.contains("X509v3 Subject Key Identifier"), "{text}");
    assert!(text.contains("X509v3 Authority Key Identifier"), "{text}");
    assert!(
        text.contains("Issuer: CN = Cluster CA") && text.contains("Subject: CN = Cluster CA"),
        "{text}"
    );
    assert!(text.contains("sha256WithRSAEncryption"), "{text}");
    let serial = openssl(&["x509", "-in", root.to_str().unwrap(), "-noout", "-serial"]).stdout;
    let hex = serial.trim().trim_start_matches("serial=");
    assert!(hex.len() >= 30 && hex.len() <= 34, "serial {hex}");
    // Two CAs never share a serial.
    let home2 = dir.path().join("pki2");
    cm(&home2, &["ca", "init", "--name", "Cluster CA"]).assert_success();
    let serial2 = openssl(&[
        "x509",
        "-in",
        home2.join("ca/root/cert.pem").to_str().unwrap(),
        "-noout",
        "-serial",
    ])
    .stdout;
    assert_ne!(serial, serial2);
}

#[test]
fn leaf_profiles_set_extended_key_usage_and_san() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "Cluster CA"]).assert_success();
    for (profile, expect, reject) in [
        ("server", vec!["sslserver"], vec!["sslclient"]),
        ("client", vec!["sslclient"], vec!["sslserver"]),
        ("peer", vec!["sslserver", "sslclient"], vec![]),
    ] {
        let name = format!("n-{profile}");
        cm(
            &home,
            &[
                "issue",
                &name,
                "--dns",
                "a.example.com",
                "--dns",
                "b.example.com",
                "--profile",
                profile,
            ],
        )
        .assert_success();
        let leaf = issued(&home, &name, "cert.pem");
        let text = x509_text(&leaf);
        assert!(
            text.contains("Subject: CN = a.example.com"),
            "first DNS name is the CN: {text}"
        );
        assert!(
            text.contains("DNS:a.example.com, DNS:b.example.com"),
            "{text}"
        );
        assert!(text.contains("CA:FALSE"), "{text}");
        assert!(text.contains("X509v3 Subject Key Identifier"), "{text}");
        for p in expect {
            verify(
                &issued(&home, &name, "ca.pem"),
                None,
                &leaf,
                &["-purpose", p],
            )
            .assert_success();
        }
        for p in reject {
            verify(
                &issued(&home, &name, "ca.pem"),
                None,
                &leaf,
                &["-purpose", p],
            )
            .assert_failure();
        }
    }
}

#[test]
fn files_are_private_from_creation_and_layout_is_complete() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "Cluster CA"]).assert_success();
    cm(&home, &["issue", "web", "--dns", "web.example.com"]).assert_success();
    assert_eq!(mode(&home), 0o700);
    assert_eq!(mode(&home.join("ca/root/key.pem")), 0o600);
    assert_eq!(mode(&issued(&home, "web", "key.pem")), 0o600);
    for f in ["cert.pem", "chain.pem", "fullchain.pem", "ca.pem"] {
        assert_eq!(mode(&issued(&home, "web", f)), 0o644, "{f}");
    }
    // Nothing half-written is left next to the entries.
    let names: Vec<String> = fs::read_dir(home.join("issued"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["web"]);
}

#[test]
fn existing_ca_is_never_overwritten() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "First"]).assert_success();
    let before = snapshot(&home.join("ca"));
    let r = cm(&home, &["ca", "init", "--name", "Second"]);
    assert_eq!(r.status, 1, "{r:?}");
    assert!(r.stderr.contains("already exists"), "{r:?}");
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    assert_eq!(snapshot(&home.join("ca")), before);
}

#[test]
fn weak_and_unknown_choices_are_refused() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    let r = cm(&home, &["ca", "init", "--name", "X", "--key", "rsa1024"]);
    assert_eq!(r.status, 1, "{r:?}");
    assert!(
        r.stderr.contains("RSA-1024") && r.stderr.contains("2048"),
        "{r:?}"
    );
    let r = cm(&home, &["ca", "init", "--name", "X", "--digest", "sha1"]);
    assert_eq!(r.status, 1, "{r:?}");
    assert!(
        r.stderr.contains("sha1") && r.stderr.contains("refusing"),
        "{r:?}"
    );
    let r = cm(&home, &["ca", "init", "--name", "X", "--key", "dsa2048"]);
    assert_eq!(r.status, 2, "unknown key type is a usage error: {r:?}");
    assert!(r.stderr.contains("unknown key type"), "{r:?}");
    assert!(
        !home.join("store.toml").exists(),
        "a refused init leaves no store"
    );
    cm(&home, &["ca", "init", "--name", "X"]).assert_success();
    let r = cm(
        &home,
        &["issue", "n", "--dns", "n.example.com", "--key", "rsa512"],
    );
    assert_eq!(r.status, 1, "{r:?}");
    assert!(!home.join("issued/n").exists());
    let r = run(certmesh().args(["issue"]));
    assert_eq!(r.status, 2, "missing arguments are usage errors: {r:?}");
    assert!(!r.stderr.contains("panicked"));
}

#[test]
fn encrypted_ca_key_needs_the_passphrase_for_every_signature() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    let pw = dir.path().join("pw");
    fs::write(&pw, "correct horse\n").unwrap();
    let r = run(certmesh()
        .arg("--home")
        .arg(&home)
        .args(["ca", "init", "--name", "Enc CA", "--key-pass"])
        .arg(format!("file:{}", pw.display())));
    r.assert_success();
    let key = home.join("ca/root/key.pem");
    let text = fs::read_to_string(&key).unwrap();
    assert!(
        text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{text}"
    );
    // openssl opens it with the passphrase and finds PBES2 + AES-256.
    let r = openssl(&[
        "pkey",
        "-in",
        key.to_str().unwrap(),
        "-passin",
        &format!("file:{}", pw.display()),
        "-noout",
    ]);
    r.assert_success();
    let asn = openssl(&["asn1parse", "-in", key.to_str().unwrap()]).stdout;
    assert!(
        asn.contains("PBES2") && asn.contains("aes-256-cbc") && asn.contains("hmacWithSHA256"),
        "{asn}"
    );

    let r = cm(&home, &["issue", "n1", "--dns", "n1.example.com"]);
    assert_eq!(r.status, 1, "{r:?}");
    assert!(r.stderr.contains("--ca-pass"), "{r:?}");
    let r = run(certmesh()
        .arg("--home")
        .arg(&home)
        .args([
            "issue",
            "n1",
            "--dns",
            "n1.example.com",
            "--ca-pass",
            "env:CM_TEST_PW",
        ])
        .env("CM_TEST_PW", "wrong"));
    assert_eq!(r.status, 1, "{r:?}");
    assert!(
        r.stderr.contains("wrong passphrase") && r.stderr.contains("key.pem"),
        "{r:?}"
    );
    assert!(!r.stderr.contains("wrong\n") && !home.join("issued/n1").exists());
    let r = run(certmesh()
        .arg("--home")
        .arg(&home)
        .args([
            "issue",
            "n1",
            "--dns",
            "n1.example.com",
            "--ca-pass",
            "env:CM_TEST_PW",
        ])
        .env("CM_TEST_PW", "correct horse"));
    r.assert_success();
    // The passphrase can also come on stdin or inline (with a warning).
    let r = run(certmesh().arg("--home").arg(&home).args([
        "ca",
        "intermediate",
        "--ca-pass",
        "pass:correct horse",
    ]));
    r.assert_success();
    assert!(
        r.stderr.contains("warning") && r.stderr.contains("process list"),
        "{r:?}"
    );
    assert!(!r.stderr.contains("correct horse"), "secret echoed: {r:?}");
    // The intermediate is encrypted with the store's passphrase too.
    let ikey = home.join("ca/intermediate/key.pem");
    assert!(fs::read_to_string(&ikey)
        .unwrap()
        .contains("ENCRYPTED PRIVATE KEY"));
    openssl(&[
        "pkey",
        "-in",
        ikey.to_str().unwrap(),
        "-passin",
        "pass:correct horse",
        "-noout",
    ])
    .assert_success();
    let mut cmd = certmesh();
    cmd.arg("--home").arg(&home).args([
        "issue",
        "n2",
        "--dns",
        "n2.example.com",
        "--ca-pass",
        "stdin",
    ]);
    let r = support::run_with_timeout(
        &mut cmd,
        Some(b"correct horse\n"),
        std::time::Duration::from_secs(30),
    );
    r.assert_success();
    verify(
        &issued(&home, "n2", "ca.pem"),
        Some(&issued(&home, "n2", "chain.pem")),
        &issued(&home, "n2", "cert.pem"),
        &["-verify_hostname", "n2.example.com"],
    )
    .assert_success();
}

#[test]
fn home_is_global_and_read_from_the_environment() {
    let dir = tempdir();
    let home = dir.path().join("store");
    run(certmesh()
        .args(["ca", "init", "--name", "A"])
        .arg("--home")
        .arg(&home))
    .assert_success();
    run(certmesh()
        .arg("--home")
        .arg(&home)
        .args(["issue", "x", "--dns", "x.example.com"]))
    .assert_success();
    run(certmesh()
        .args(["issue", "y", "--dns", "y.example.com"])
        .env("CERTMESH_HOME", &home))
    .assert_success();
    assert!(home.join("issued/x/cert.pem").exists() && home.join("issued/y/cert.pem").exists());
    // Default ./pki relative to the working directory.
    run(certmesh()
        .current_dir(dir.path())
        .args(["ca", "init", "--name", "B"]))
    .assert_success();
    assert!(dir.path().join("pki/store.toml").exists());
    let r = run(certmesh()
        .current_dir(dir.path())
        .arg("--home")
        .arg(dir.path().join("nothing"))
        .args(["issue", "z", "--dns", "z.example.com"]));
    assert_eq!(r.status, 1);
    assert!(r.stderr.contains("no CA store"), "{r:?}");
}

#[test]
fn ca_show_describes_and_prints_the_root() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(
        &home,
        &[
            "ca",
            "init",
            "--name",
            "Show CA",
            "--permit-dns",
            "example.com",
        ],
    )
    .assert_success();
    cm(&home, &["ca", "intermediate", "--name", "Show Issuing"]).assert_success();
    let r = cm(&home, &["ca", "show", "--pem"]);
    r.assert_success();
    assert_eq!(
        r.stdout,
        fs::read_to_string(home.join("ca/root/cert.pem")).unwrap()
    );
    let r = cm(&home, &["ca", "show"]);
    r.assert_success();
    assert!(
        r.stdout.contains("CN=Show CA")
            && r.stdout.contains("intermediate (issuing)")
            && r.stdout.contains("example.com"),
        "{r:?}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&cm(&home, &["ca", "show", "--json"]).stdout).unwrap();
    assert_eq!(v["issuing"], "intermediate");
    assert_eq!(v["authorities"][0]["certificate"]["is_ca"], true);
    assert_eq!(v["authorities"][1]["certificate"]["path_len"], 0);
    assert_eq!(
        v["authorities"][0]["certificate"]["name_constraints"]["permitted_dns"][0],
        "example.com"
    );
}

#[test]
fn validity_never_exceeds_the_ca_and_is_backdated() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "Short CA", "--days", "30"]).assert_success();
    let r = cm(
        &home,
        &["issue", "n", "--dns", "n.example.com", "--days", "365"],
    );
    r.assert_success();
    assert!(r.stderr.contains("validity shortened"), "{r:?}");
    let end = |p: &Path| {
        openssl(&[
            "x509",
            "-in",
            p.to_str().unwrap(),
            "-noout",
            "-enddate",
            "-dateopt",
            "iso_8601",
        ])
        .stdout
    };
    assert_eq!(
        end(&issued(&home, "n", "cert.pem")),
        end(&home.join("ca/root/cert.pem"))
    );
    // not-before lies a few minutes in the past: valid 2 minutes ago already.
    let two_min_ago = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 120)
        .to_string();
    verify(
        &issued(&home, "n", "ca.pem"),
        None,
        &issued(&home, "n", "cert.pem"),
        &["-attime", &two_min_ago],
    )
    .assert_success();
    // ... and a CA of 30 days does not verify a year from now.
    let later = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60 * 86_400)
        .to_string();
    verify(
        &issued(&home, "n", "ca.pem"),
        None,
        &issued(&home, "n", "cert.pem"),
        &["-attime", &later],
    )
    .assert_failure();
}

#[test]
fn reissue_needs_force_and_keeps_a_backup() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "CA"]).assert_success();
    cm(&home, &["issue", "n", "--dns", "n.example.com"]).assert_success();
    let before = snapshot(&home.join("issued/n"));
    let r = cm(&home, &["issue", "n", "--dns", "n.example.com"]);
    assert_eq!(r.status, 1, "{r:?}");
    assert!(r.stderr.contains("--force"), "{r:?}");
    assert_eq!(snapshot(&home.join("issued/n")), before);
    cm(&home, &["issue", "n", "--dns", "n.example.com", "--force"]).assert_success();
    assert_ne!(
        fs::read(home.join("issued/n/key.pem")).unwrap(),
        before[Path::new("key.pem")]
    );
    let backups: Vec<PathBuf> = fs::read_dir(home.join("backup"))
        .unwrap()
        .map(|e| e.unwrap().path().join("issued/n"))
        .collect();
    assert_eq!(backups.len(), 1);
    assert_eq!(
        fs::read(backups[0].join("key.pem")).unwrap(),
        before[Path::new("key.pem")]
    );
    assert_eq!(mode(&backups[0].join("key.pem")), 0o600);
}

#[test]
fn name_constraints_are_enforced_by_certmesh_and_by_openssl() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(
        &home,
        &[
            "ca",
            "init",
            "--name",
            "Constrained CA",
            "--permit-dns",
            "cluster.example.com",
            "--permit-ip",
            "10.0.0.0/8",
        ],
    )
    .assert_success();
    let text = x509_text(&home.join("ca/root/cert.pem"));
    assert!(text.contains("X509v3 Name Constraints: critical"), "{text}");
    assert!(
        text.contains("DNS:cluster.example.com") && text.contains("IP:10.0.0.0/255.0.0.0"),
        "{text}"
    );

    // Inside: issued and verified.
    cm(
        &home,
        &[
            "issue",
            "ok",
            "--dns",
            "n1.cluster.example.com",
            "--ip",
            "10.2.3.4",
        ],
    )
    .assert_success();
    verify(
        &issued(&home, "ok", "ca.pem"),
        None,
        &issued(&home, "ok", "cert.pem"),
        &["-verify_hostname", "n1.cluster.example.com"],
    )
    .assert_success();
    // Outside: refused by certmesh, nothing written.
    for args in [
        vec!["issue", "bad", "--dns", "n1.other.example.com"],
        vec![
            "issue",
            "bad",
            "--dns",
            "n1.cluster.example.com",
            "--ip",
            "192.168.1.1",
        ],
    ] {
        let r = cm(&home, &args);
        assert_eq!(r.status, 1, "{r:?}");
        assert!(r.stderr.contains("outside the CA's permitted"), "{r:?}");
        assert!(!home.join("issued/bad").exists());
    }
    // The same CA signing outside its constraints with openssl: clients reject the chain.
    let d = dir.path();
    let key = d.join("rogue.key");
    let csr = d.join("rogue.csr");
    let crt = d.join("rogue.crt");
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-subj",
        "/CN=www.evil.com",
        "-addext",
        "subjectAltName=DNS:www.evil.com",
        "-out",
        csr.to_str().unwrap(),
    ])
    .assert_success();
    openssl(&[
        "x509",
        "-req",
        "-in",
        csr.to_str().unwrap(),
        "-CA",
        home.join("ca/root/cert.pem").to_str().unwrap(),
        "-CAkey",
        home.join("ca/root/key.pem").to_str().unwrap(),
        "-days",
        "30",
        "-copy_extensions",
        "copy",
        "-out",
        crt.to_str().unwrap(),
    ])
    .assert_success();
    let r = verify(&home.join("ca/root/cert.pem"), None, &crt, &[]);
    assert!(!r.success(), "{r:?}");
    assert!(
        format!("{}{}", r.stdout, r.stderr).contains("permitted subtree violation"),
        "{r:?}"
    );
}
