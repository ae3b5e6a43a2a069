//! CA keys held in a PKCS#11 token (SoftHSM2, a token made per test): the chains they
//! sign pass openssl, nginx and pkilint; the keys are sensitive and never extractable;
//! no file of the store holds private key material; a cluster applies, renews from a
//! cron-like run, revokes and rolls over with them; every failure names its cause and
//! leaves the store as it was.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::nginx::Nginx;
use support::openssl::{handshake_ok, openssl, s_client, verify};
use support::pkilint::{at_least_warning, describe, lint_pkix_cert};
use support::{certmesh, run, snapshot, tempdir, Run, TempDir};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "4711";

/// A SoftHSM2 token of its own, in a temporary directory.
struct Token {
    dir: TempDir,
    label: String,
}

impl Token {
    fn new(label: &str) -> Token {
        let dir = tempdir();
        fs::create_dir(dir.path().join("tokens")).unwrap();
        fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.path().join("tokens").display()
            ),
        )
        .unwrap();
        let t = Token {
            dir,
            label: label.to_string(),
        };
        let r = run(t.env(&mut Command::new("softhsm2-util")).args([
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            PIN,
            "--so-pin",
            "0000",
        ]));
        assert!(r.success(), "softhsm2-util: {r:?}");
        t
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    fn env<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.env("SOFTHSM2_CONF", self.conf())
    }

    fn uri(&self, object: &str) -> String {
        format!("pkcs11:token={};object={object}", self.label)
    }

    /// `certmesh --home HOME ARGS` with this token reachable and the PIN in `$PIN`.
    fn cm(&self, home: &Path, args: &[&str]) -> Run {
        run(self
            .env(&mut certmesh())
            .env("PIN", PIN)
            .arg("--home")
            .arg(home)
            .args(args))
    }

    /// `pkcs11-tool --list-objects --type privkey`, one block per key.
    fn private_keys(&self) -> Vec<String> {
        let r = run(self.env(&mut Command::new("pkcs11-tool")).args([
            "--module",
            MODULE,
            "--token-label",
            &self.label,
            "--login",
            "--pin",
            PIN,
            "--list-objects",
            "--type",
            "privkey",
        ]));
        assert!(r.success(), "pkcs11-tool: {r:?}");
        r.stdout
            .split("Private Key Object")
            .skip(1)
            .map(str::to_string)
            .collect()
    }
}

/// Every file of a store outside `issued/` (where member keys belong): none may hold a
/// private key, PEM or DER.
fn assert_no_ca_key_files(store: &Path) {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "issued") {
                    walk(&p, out);
                }
            } else {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(store, &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("ca/root/cert.pem")),
        "{files:?}"
    );
    for f in files {
        let data = fs::read(&f).unwrap();
        assert!(
            !String::from_utf8_lossy(&data).contains("PRIVATE KEY"),
            "{} holds a PEM private key",
            f.display()
        );
        let as_der = openssl(&[
            "pkey",
            "-inform",
            "DER",
            "-in",
            f.to_str().unwrap(),
            "-noout",
        ]);
        assert!(
            !as_der.success(),
            "{} parses as a DER private key",
            f.display()
        );
    }
}

#[test]
fn token_held_root_and_intermediate_sign_chains_every_consumer_accepts() {
    let token = Token::new("chain");
    let work = tempdir();
    let home = work.path().join("pki");
    let h = home.to_str().unwrap();
    let root_uri = token.uri("root");
    let r = token.cm(
        &home,
        &[
            "ca",
            "init",
            "--name",
            "Token Root",
            "--key",
            "rsa2048",
            "--pkcs11",
            &root_uri,
            "--module",
            MODULE,
            "--pin",
            "env:PIN",
        ],
    );
    r.assert_success();
    assert!(r.stdout.contains("in the PKCS#11 token"), "{r:?}");
    let store = fs::read_to_string(home.join("store.toml")).unwrap();
    assert!(
        store.contains(&root_uri) && store.contains(MODULE),
        "{store}"
    );
    assert!(!store.contains(PIN), "the PIN is never recorded");
    let int_uri = token.uri("issuing");
    token
        .cm(
            &home,
            &[
                "ca",
                "intermediate",
                "--key",
                "p384",
                "--pkcs11",
                &int_uri,
                "--module",
                MODULE,
                "--ca-pass",
                "env:PIN",
            ],
        )
        .assert_success();
    token
        .cm(
            &home,
            &[
                "issue",
                "web",
                "--dns",
                "web.example.com",
                "--ip",
                "127.0.0.1",
                "--ca-pass",
                "env:PIN",
            ],
        )
        .assert_success();
    let root = home.join("ca/root/cert.pem");
    let int = home.join("ca/intermediate/cert.pem");
    let leaf = home.join("issued/web/cert.pem");
    let v = verify(
        &root,
        Some(&int),
        &leaf,
        &["-verify_hostname", "web.example.com", "-x509_strict"],
    );
    assert!(v.success() && v.stdout.contains("OK"), "{v:?}");

    // nginx serves the chain; s_client checks it and the host name.
    let nginx = Nginx::serve(
        &home.join("issued/web/fullchain.pem"),
        &home.join("issued/web/key.pem"),
    );
    let hs = s_client(nginx.port(), &root, "web.example.com", &[]);
    assert!(handshake_ok(&hs), "{hs:?}");

    // pkilint: nothing at warning level or above on any certificate of the chain.
    for cert in [&root, &int, &leaf] {
        let findings = lint_pkix_cert(cert);
        let bad = at_least_warning(&findings);
        assert!(bad.is_empty(), "{}: {}", cert.display(), describe(&bad));
    }

    // Both keys are in the token, sensitive and never extractable; neither is anywhere
    // on disk.
    let keys = token.private_keys();
    assert_eq!(keys.len(), 2, "{keys:?}");
    for k in &keys {
        assert!(
            k.contains("never extractable") && k.contains("sensitive"),
            "token key not protected: {k}"
        );
        assert!(!k.contains("decrypt"), "a CA key only signs: {k}");
    }
    assert!(!home.join("ca/root/key.pem").exists());
    assert!(!home.join("ca/intermediate/key.pem").exists());
    assert_no_ca_key_files(&home);

    // ca show, list and audit say where the keys live.
    let show = token.cm(&home, &["ca", "show", "--json"]);
    show.assert_success();
    let view: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(view["authorities"][0]["key_pkcs11"], root_uri.as_str());
    assert_eq!(view["authorities"][1]["key_pkcs11"], int_uri.as_str());
    let list = token.cm(&home, &["list", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let root_row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "root")
        .unwrap();
    assert_eq!(root_row["ca_key"], root_uri.as_str());
    let leaf_row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "leaf")
        .unwrap();
    assert!(leaf_row.get("ca_key").is_none());
    let audit = run(certmesh().args(["audit", h]));
    assert!(
        audit
            .stdout
            .contains(&format!("key in PKCS#11 token {root_uri}")),
        "{audit:?}"
    );
    assert!(!audit.stdout.contains("key-file-beside-token"), "{audit:?}");

    // A key file beside a token-held key is flagged.
    fs::copy(
        home.join("issued/web/key.pem"),
        home.join("ca/root/key.pem"),
    )
    .unwrap();
    let audit = run(certmesh().args(["audit", h]));
    assert!(audit.stdout.contains("key-file-beside-token"), "{audit:?}");
    assert!(!audit.success());
}

#[test]
fn a_cluster_applies_renews_revokes_and_rolls_over_with_token_keys() {
    let token = Token::new("cluster");
    let work = tempdir();
    let out = work.path().join("out");
    let pin_file = work.path().join("pin");
    fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    let manifest = work.path().join("cluster.toml");
    fs::write(
        &manifest,
        format!(
            "name = \"hsm\"\n[ca]\nname = \"HSM Cluster CA\"\nkey = \"p256\"\nintermediate = true\n\
             pkcs11 = \"{}\"\npkcs11_module = \"{MODULE}\"\nkey_pass = \"file:{}\"\n\
             [defaults]\nprofile = \"nginx\"\n\
             [[member]]\nname = \"a\"\ndns = [\"a.cluster.test\"]\n\
             [[member]]\nname = \"b\"\ndns = [\"b.cluster.test\"]\n",
            token.uri("cluster-root"),
            pin_file.display()
        ),
    )
    .unwrap();
    let apply = || {
        run(token
            .env(&mut certmesh())
            .args(["cluster", "apply"])
            .arg(&manifest)
            .arg("--out")
            .arg(&out))
    };
    apply().assert_success();
    let store = out.join("pki/ca");
    let config = fs::read_to_string(store.join("store.toml")).unwrap();
    assert!(
        config.contains("object=cluster-root\"")
            && config.contains("object=cluster-root-intermediate\""),
        "{config}"
    );
    assert_eq!(token.private_keys().len(), 2);
    assert_no_ca_key_files(&store);
    let root = store.join("ca/root/cert.pem");
    let int = store.join("ca/intermediate/cert.pem");
    for m in ["a", "b"] {
        let v = verify(
            &root,
            Some(&int),
            &out.join(m).join("fullchain.pem"),
            &["-verify_hostname", &format!("{m}.cluster.test")],
        );
        assert!(v.success(), "{m}: {v:?}");
    }
    let serial = |m: &str| {
        openssl(&[
            "x509",
            "-in",
            out.join(m).join("fullchain.pem").to_str().unwrap(),
            "-noout",
            "-serial",
        ])
        .stdout
    };
    let before = serial("a");

    // Renewal from cron: no terminal, the PIN from the manifest's file.
    let renew = run(token
        .env(&mut certmesh())
        .args(["renew", "--cluster"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .args(["--within", "100000d"]));
    renew.assert_success();
    assert!(renew.stdout.contains("renewed a"), "{renew:?}");
    assert_ne!(serial("a"), before, "a was renewed through the token");
    let v = verify(&root, Some(&int), &out.join("a/fullchain.pem"), &[]);
    assert!(v.success(), "{v:?}");

    // Revocation: the CRL is signed in the token and handed to the members.
    let pass = format!("file:{}", pin_file.display());
    let old_b = out.join("b-revoked.pem");
    fs::copy(out.join("b/fullchain.pem"), &old_b).unwrap();
    token
        .cm(&store, &["revoke", "b", "--ca-pass", &pass])
        .assert_success();
    token
        .cm(&store, &["crl", "--ca-pass", &pass])
        .assert_success();
    apply().assert_success();
    let crl = store.join("crl.pem");
    // The members get every CA's CRL, the issuing CA's first.
    let handed = fs::read_to_string(out.join("a/crl.pem")).unwrap();
    assert!(
        handed.starts_with(&fs::read_to_string(&crl).unwrap()),
        "{handed}"
    );
    assert_eq!(handed.matches("BEGIN X509 CRL").count(), 2, "{handed}");
    let c = openssl(&[
        "crl",
        "-in",
        crl.to_str().unwrap(),
        "-CAfile",
        int.to_str().unwrap(),
        "-noout",
    ]);
    assert!(c.success() && c.stderr.contains("verify OK"), "{c:?}");
    let revoked = openssl(&[
        "verify",
        "-crl_check",
        "-CRLfile",
        crl.to_str().unwrap(),
        "-CAfile",
        root.to_str().unwrap(),
        "-untrusted",
        int.to_str().unwrap(),
        out.join("b/fullchain.pem").to_str().unwrap(),
    ]);
    // b was reissued by the apply after its revocation; the revoked one was the old.
    assert!(
        revoked.success(),
        "the reissued b is not revoked: {revoked:?}"
    );
    let old = openssl(&[
        "verify",
        "-crl_check",
        "-CRLfile",
        crl.to_str().unwrap(),
        "-CAfile",
        root.to_str().unwrap(),
        "-untrusted",
        int.to_str().unwrap(),
        old_b.to_str().unwrap(),
    ]);
    assert!(
        !old.success() && old.stderr.contains("certificate revoked"),
        "{old:?}"
    );

    // Rollover: the new root and intermediate are made in the same token.
    token
        .cm(&store, &["ca", "rollover", "--ca-pass", &pass])
        .assert_success();
    token
        .cm(
            &store,
            &["ca", "rollover", "--complete", "--ca-pass", &pass],
        )
        .assert_success();
    apply().assert_success();
    let config = fs::read_to_string(store.join("store.toml")).unwrap();
    assert!(config.contains("object=cluster-root-root-2\""), "{config}");
    assert_eq!(
        token.private_keys().len(),
        4,
        "the new generation lives in the token"
    );
    assert_no_ca_key_files(&store);
    let new_root = store.join("ca/root-2/cert.pem");
    let new_int = store.join("ca/intermediate-2/cert.pem");
    for m in ["a", "b"] {
        let v = verify(
            &new_root,
            Some(&new_int),
            &out.join(m).join("fullchain.pem"),
            &[],
        );
        assert!(v.success(), "{m} under the new root: {v:?}");
    }
}

#[test]
fn token_failures_name_the_cause_and_leave_the_store_unchanged() {
    let token = Token::new("errors");
    let work = tempdir();
    let home = work.path().join("pki");
    let uri = token.uri("root");

    // Before a store exists: nothing is created.
    let fails = |args: &[&str], want: &str, code: i32| {
        let r = token.cm(&home, args);
        assert_eq!(r.status, code, "{args:?}: {r:?}");
        assert!(r.stderr.contains(want), "{args:?}: want '{want}' in {r:?}");
        assert_eq!(r.stderr.trim().lines().count(), 1, "one line: {r:?}");
        assert!(!r.stderr.contains(PIN));
    };
    let init = |uri: &str, module: &str, extra: &[&str]| {
        let mut a = vec![
            "ca", "init", "--name", "E", "--pkcs11", uri, "--module", module, "--pin", "env:PIN",
        ];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    fails(
        &refs(&init(&uri, "/nonexistent/libp11.so", &[])),
        "PKCS#11 module not found",
        1,
    );
    fails(
        &refs(&init("pkcs11:token=nosuch;object=root", MODULE, &[])),
        "token not present",
        1,
    );
    fails(
        &refs(&init(&uri, MODULE, &["--key", "ed25519"])),
        "must be RSA",
        2,
    );
    fails(
        &refs(&init(&format!("{uri}?pin-value={PIN}"), MODULE, &[])),
        "does not belong in the URI",
        2,
    );
    fails(
        &refs(&init(&uri, MODULE, &["--key-pass", "env:PIN"])),
        "--key-pass",
        2,
    );
    let wrong = run(token
        .env(&mut certmesh())
        .env("PIN", "9999")
        .arg("--home")
        .arg(&home)
        .args(refs(&init(&uri, MODULE, &[]))));
    assert_eq!(wrong.status, 1, "{wrong:?}");
    assert!(wrong.stderr.contains("wrong PIN"), "{wrong:?}");
    assert!(
        !home.join("store.toml").exists(),
        "no store from a failed init"
    );

    // With a store: each failure leaves every file as it was.
    token
        .cm(&home, &refs(&init(&uri, MODULE, &[])))
        .assert_success();
    token
        .cm(
            &home,
            &[
                "issue",
                "web",
                "--dns",
                "web.example.com",
                "--ca-pass",
                "env:PIN",
            ],
        )
        .assert_success();
    let before = snapshot(&home);
    let issue = |pin: &str| {
        run(token
            .env(&mut certmesh())
            .env("PIN", pin)
            .arg("--home")
            .arg(&home)
            .args([
                "issue",
                "api",
                "--dns",
                "api.example.com",
                "--ca-pass",
                "env:PIN",
            ]))
    };
    let r = issue("9999");
    assert!(
        r.status == 1 && r.stderr.contains("wrong PIN for the token"),
        "{r:?}"
    );
    assert_eq!(snapshot(&home), before);

    // The key deleted from the token.
    let del = run(token.env(&mut Command::new("pkcs11-tool")).args([
        "--module",
        MODULE,
        "--token-label",
        "errors",
        "--login",
        "--pin",
        PIN,
        "--delete-object",
        "--type",
        "privkey",
        "--label",
        "root",
    ]));
    assert!(del.success(), "{del:?}");
    let r = issue(PIN);
    assert!(
        r.status == 1 && r.stderr.contains("key not found in the token"),
        "{r:?}"
    );
    assert_eq!(snapshot(&home), before);

    // The token gone (removed, or its store moved away).
    fs::rename(
        token.dir.path().join("tokens"),
        token.dir.path().join("away"),
    )
    .unwrap();
    fs::create_dir(token.dir.path().join("tokens")).unwrap();
    let r = issue(PIN);
    assert!(
        r.status == 1 && r.stderr.contains("token not present"),
        "{r:?}"
    );
    assert_eq!(snapshot(&home), before);
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
