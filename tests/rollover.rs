//! CA rollover without an outage: three nginx members with mutual TLS keep trusting each
//! other through every phase, whichever members have reloaded their new files.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::nginx::Nginx;
use support::openssl::verify;
use support::{certmesh, cluster_apply, run, run_with_timeout, tempdir, Run};

const MEMBERS: [&str; 3] = ["a", "b", "c"];

fn manifest_text() -> String {
    let mut m = String::from("name = \"roll\"\n[ca]\nname = \"Roll CA\"\nintermediate = true\n[defaults]\nprofile = \"nginx\"\n");
    for n in MEMBERS {
        m.push_str(&format!(
            "[[member]]\nname = \"{n}\"\ndns = [\"{n}.cluster.test\"]\n"
        ));
    }
    m
}

/// Serves a member from a private copy of its files, as a deployed server would hold
/// them until it is reloaded.
fn serve(out: &Path, name: &str, copies: &Path) -> Nginx {
    let dir = copies.join(format!(
        "{name}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    fs::create_dir_all(&dir).unwrap();
    for f in ["fullchain.pem", "privkey.pem", "trust.pem"] {
        fs::copy(out.join(name).join(f), dir.join(f)).unwrap();
    }
    let conf = format!(
        "ssl_client_certificate {};\nssl_verify_client on;\nssl_verify_depth 3;\nlocation = /whoami {{ return 200 \"{name}\\n\"; }}\n",
        dir.join("trust.pem").display()
    );
    Nginx::serve_with(&dir.join("fullchain.pem"), &dir.join("privkey.pem"), &conf)
}

/// Member `from` (with the files it currently holds in `held`) calls member `to`.
fn call(held: &Path, from: &str, to: &str, port: u16) -> Run {
    let d = held.join(from);
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-connect",
        &format!("127.0.0.1:{port}"),
        "-servername",
        &format!("{to}.cluster.test"),
        "-verify_return_error",
        "-verify_hostname",
        &format!("{to}.cluster.test"),
        "-ign_eof",
    ])
    .arg("-CAfile")
    .arg(d.join("trust.pem"))
    .arg("-cert")
    .arg(d.join("fullchain.pem"))
    .arg("-cert_chain")
    .arg(d.join("fullchain.pem"))
    .arg("-key")
    .arg(d.join("privkey.pem"));
    let req = format!("GET /whoami HTTP/1.1\r\nHost: {to}\r\nConnection: close\r\n\r\n");
    run_with_timeout(&mut cmd, Some(req.as_bytes()), Duration::from_secs(10))
}

struct Cluster {
    out: PathBuf,
    copies: PathBuf,
    /// What each member has loaded: its files as of its last reload.
    held: PathBuf,
    servers: BTreeMap<&'static str, Nginx>,
}

impl Cluster {
    fn reload(&mut self, name: &'static str) {
        let d = self.held.join(name);
        fs::create_dir_all(&d).unwrap();
        for f in ["fullchain.pem", "privkey.pem", "trust.pem"] {
            fs::copy(self.out.join(name).join(f), d.join(f)).unwrap();
        }
        self.servers.remove(name);
        let n = serve(&self.out, name, &self.copies);
        self.servers.insert(name, n);
    }

    fn all_pairs_trust(&self, when: &str) {
        for from in MEMBERS {
            for to in MEMBERS {
                if from == to {
                    continue;
                }
                let r = call(&self.held, from, to, self.servers[to].port());
                assert!(
                    r.stdout.contains("HTTP/1.1 200")
                        && r.stdout.contains(&format!("\r\n\r\n{to}\n")),
                    "{when}: {from} -> {to} failed: {r:?}\n{}",
                    self.servers[to].logs()
                );
            }
        }
    }
}

#[test]
fn rollover_keeps_every_pair_of_members_talking() {
    let dir = tempdir();
    let manifest = dir.path().join("cluster.toml");
    fs::write(&manifest, manifest_text()).unwrap();
    let out = dir.path().join("out");
    let apply = || {
        let r = cluster_apply(&manifest, &out);
        r.assert_success();
        r
    };
    apply();
    let mut c = Cluster {
        out: out.clone(),
        copies: dir.path().join("copies"),
        held: dir.path().join("held"),
        servers: BTreeMap::new(),
    };
    for m in MEMBERS {
        c.reload(m);
    }
    c.all_pairs_trust("before the rollover");
    let old_root = fs::read_to_string(out.join("pki/ca/ca/root/cert.pem")).unwrap();

    let home = out.join("pki/ca");
    let r = run(certmesh().arg("--home").arg(&home).args(["ca", "rollover"]));
    r.assert_success();
    assert!(r.stdout.contains("phase 1"), "{r:?}");

    // Each apply, then the members reload one at a time; every pair must keep working in
    // every mixed state.
    let mut phases = Vec::new();
    for step in 0..4 {
        apply();
        let status = run(certmesh()
            .args(["cluster", "status", "--json"])
            .arg(&manifest)
            .arg("--out")
            .arg(&out));
        let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
        phases.push(v[0]["ca_rollover_phase"].as_u64().unwrap());
        for m in MEMBERS {
            c.reload(m);
            c.all_pairs_trust(&format!("apply {step}, after {m} reloaded"));
        }
    }
    assert_eq!(
        phases,
        [2, 0, 0, 0],
        "apply moves the rollover through phases 2 and 3"
    );
    let r = cluster_apply(&manifest, &out);
    assert!(r.stdout.contains("nothing to do"), "{r:?}");

    // The end: no truststore holds the old root, every leaf chains to the new one.
    let new_root = out.join("pki/ca/ca/root-2/cert.pem");
    for m in MEMBERS {
        let trust = fs::read_to_string(out.join(m).join("trust.pem")).unwrap();
        assert!(!trust.contains(&old_root), "{m} still trusts the old root");
        assert_eq!(trust.matches("BEGIN CERTIFICATE").count(), 1);
        let full = out.join(m).join("fullchain.pem");
        verify(
            &new_root,
            Some(&full),
            &full,
            &["-verify_hostname", &format!("{m}.cluster.test")],
        )
        .assert_success();
        let old = dir.path().join("old-root.pem");
        fs::write(&old, &old_root).unwrap();
        assert!(
            !verify(&old, Some(&full), &full, &[]).success(),
            "{m} still chains to the old root"
        );
    }
}

/// The issuing CA's certificate of the store at `home`, from `ca show --json`.
fn issuing_cert(home: &Path) -> PathBuf {
    let r = support::cm(home, &["ca", "show", "--json"]);
    r.assert_success();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let id = v["issuing"].as_str().unwrap();
    home.join("ca").join(id).join("cert.pem")
}

fn key_text(cert: &Path) -> String {
    let r = support::openssl::openssl(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-text"]);
    r.assert_success();
    r.stdout
}

/// `ca rollover --complete` gives the new intermediate the new root's key type unless
/// `--key` names another, and everything the rollover writes passes pkilint.
#[test]
fn the_new_intermediate_takes_the_new_roots_key_type() {
    for (root_key, complete_key, want) in [
        ("p384", None, "NIST CURVE: P-384"),
        ("rsa3072", None, "Public-Key: (3072 bit)"),
        ("p384", Some("rsa2048"), "Public-Key: (2048 bit)"),
    ] {
        let dir = tempdir();
        let home = dir.path().join("pki");
        support::cm(&home, &["ca", "init", "--name", "Old CA", "--key", "p256"]).assert_success();
        support::cm(&home, &["ca", "intermediate", "--key", "p256"]).assert_success();
        support::cm(&home, &["ca", "rollover", "--key", root_key]).assert_success();
        let mut args = vec!["ca", "rollover", "--complete"];
        if let Some(k) = complete_key {
            args.extend(["--key", k]);
        }
        support::cm(&home, &args).assert_success();
        let inter = issuing_cert(&home);
        assert!(
            inter.parent().unwrap().file_name().unwrap() != "intermediate",
            "a new intermediate issues: {}",
            inter.display()
        );
        let text = key_text(&inter);
        assert!(text.contains(want), "{root_key} {complete_key:?}: {text}");
        // A leaf of the new generation chains to the new root; every certificate of the
        // rollover (new root, cross-certificate, intermediate, leaf) lints clean.
        support::cm(
            &home,
            &["issue", "n", "--dns", "n.example.com", "--key", "p256"],
        )
        .assert_success();
        let leaf = home.join("issued/n/cert.pem");
        let new_root = fs::read_dir(home.join("ca"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.join("cross.pem").exists())
            .expect("the new root has a cross-certificate");
        verify(
            &new_root.join("cert.pem"),
            Some(&inter),
            &leaf,
            &["-purpose", "sslserver"],
        )
        .assert_success();
        for cert in [
            new_root.join("cert.pem"),
            new_root.join("cross.pem"),
            inter.clone(),
            leaf.clone(),
        ] {
            let findings = support::pkilint::lint_pkix_cert(&cert);
            let bad = support::pkilint::at_least_warning(&findings);
            assert!(
                bad.is_empty(),
                "{}: {}",
                cert.display(),
                support::pkilint::describe(&bad)
            );
        }
    }
}
