//! `certmesh cluster plan|apply`: manifests, trust models, idempotence, and real nginx
//! members talking mutual TLS to each other with the files certmesh wrote.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use support::nginx::Nginx;
use support::openssl::{openssl, verify};
use support::{certmesh, cluster_apply, mode, run, run_with_timeout, tempdir, Run};

fn apply(manifest: &Path, out: &Path) -> Run {
    cluster_apply(manifest, out)
}

fn mesh_manifest(members: &[&str]) -> String {
    let mut m =
        String::from("name = \"mesh-demo\"\ntrust = \"mesh\"\n\n[defaults]\nprofile = \"nginx\"\n");
    for name in members {
        m.push_str(&format!("\n[[member]]\nname = \"{name}\"\ndns = [\"{name}.cluster.test\"]\nip = [\"127.0.0.1\"]\n"));
    }
    m
}

/// GET `path` from the member on `port` as `host`, presenting `cert`/`key`.
fn get(port: u16, ca: &Path, host: &str, cert: &Path, key: &Path, path: &str) -> Run {
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-connect",
        &format!("127.0.0.1:{port}"),
        "-servername",
        host,
        "-verify_return_error",
        "-verify_hostname",
        host,
        "-ign_eof",
    ])
    .arg("-CAfile")
    .arg(ca)
    .arg("-cert")
    .arg(cert)
    .arg("-key")
    .arg(key);
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    run_with_timeout(&mut cmd, Some(req.as_bytes()), Duration::from_secs(10))
}

/// nginx directives for a member: require client certificates signed by a trusted
/// signer, answer /whoami, and proxy /to-X to other members with mutual TLS.
fn member_conf(dir: &Path, name: &str, upstreams: &[(&str, u16)]) -> String {
    let f = |n: &str| dir.join(n).display().to_string();
    let mut conf = format!(
        "ssl_client_certificate {trust};\nssl_verify_client on;\nlocation = /whoami {{ return 200 \"{name}\\n\"; }}\n",
        trust = f("trust.pem")
    );
    for (peer, port) in upstreams {
        conf.push_str(&format!(
            "location = /to-{peer} {{\n proxy_pass https://127.0.0.1:{port}/whoami;\n proxy_ssl_certificate {cert};\n proxy_ssl_certificate_key {key};\n proxy_ssl_trusted_certificate {trust};\n proxy_ssl_verify on;\n proxy_ssl_server_name on;\n proxy_ssl_name {peer}.cluster.test;\n}}\n",
            cert = f("fullchain.pem"),
            key = f("privkey.pem"),
            trust = f("trust.pem"),
        ));
    }
    conf
}

#[test]
fn mesh_members_trust_each_other_over_mutual_tls() {
    let dir = tempdir();
    let manifest = dir.path().join("cluster.toml");
    fs::write(&manifest, mesh_manifest(&["a", "b", "c"])).unwrap();
    let out = dir.path().join("out");
    apply(&manifest, &out).assert_success();

    // Every truststore holds exactly the three signers; every member's certificate
    // verifies against every other member's bundle.
    for m in ["a", "b", "c"] {
        let bundle = fs::read_to_string(out.join(m).join("trust.pem")).unwrap();
        assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 3, "{m}");
        assert_eq!(mode(&out.join(m).join("privkey.pem")), 0o600);
        for other in ["a", "b", "c"] {
            let r = verify(
                &out.join(other).join("trust.pem"),
                None,
                &out.join(m).join("fullchain.pem"),
                &["-verify_hostname", &format!("{m}.cluster.test")],
            );
            assert!(r.success(), "{m} against {other}'s truststore: {r:?}");
        }
    }

    // c, then b proxying to c, then a proxying to b and c: each pair once, both ways
    // verified (server certificate by the caller, client certificate by the callee).
    let d = |m: &str| out.join(m);
    let c = Nginx::serve_with(
        &d("c").join("fullchain.pem"),
        &d("c").join("privkey.pem"),
        &member_conf(&d("c"), "c", &[]),
    );
    let b = Nginx::serve_with(
        &d("b").join("fullchain.pem"),
        &d("b").join("privkey.pem"),
        &member_conf(&d("b"), "b", &[("c", c.port())]),
    );
    let a = Nginx::serve_with(
        &d("a").join("fullchain.pem"),
        &d("a").join("privkey.pem"),
        &member_conf(&d("a"), "a", &[("b", b.port()), ("c", c.port())]),
    );
    let call = |port: u16, host: &str, as_member: &str, path: &str| {
        get(
            port,
            &d(as_member).join("trust.pem"),
            host,
            &d(as_member).join("fullchain.pem"),
            &d(as_member).join("privkey.pem"),
            path,
        )
    };
    for (port, host, path, expect) in [
        (a.port(), "a.cluster.test", "/to-b", "b\n"),
        (a.port(), "a.cluster.test", "/to-c", "c\n"),
        (b.port(), "b.cluster.test", "/to-c", "c\n"),
    ] {
        let r = call(port, host, "a", path);
        assert!(
            r.stdout.contains("HTTP/1.1 200") && r.stdout.contains(&format!("\r\n\r\n{expect}")),
            "{host}{path}: {r:?}\n{}\n{}\n{}",
            a.logs(),
            b.logs(),
            c.logs()
        );
    }

    // Remove c from the cluster: a's and b's truststores drop c's signer, and a new a
    // refuses to talk to the old c.
    fs::write(&manifest, mesh_manifest(&["a", "b"])).unwrap();
    apply(&manifest, &out).assert_success();
    assert_eq!(
        fs::read_to_string(d("a").join("trust.pem"))
            .unwrap()
            .matches("BEGIN CERTIFICATE")
            .count(),
        2
    );
    drop(a);
    let a = Nginx::serve_with(
        &d("a").join("fullchain.pem"),
        &d("a").join("privkey.pem"),
        &member_conf(&d("a"), "a", &[("b", b.port()), ("c", c.port())]),
    );
    let r = call(a.port(), "a.cluster.test", "a", "/to-b");
    assert!(r.stdout.contains("HTTP/1.1 200"), "{r:?}");
    let r = call(a.port(), "a.cluster.test", "a", "/to-c");
    assert!(
        r.stdout.contains("HTTP/1.1 502"),
        "c's signer is no longer trusted: {r:?}"
    );
}

fn mtimes(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    let mut out = BTreeMap::new();
    for (rel, bytes) in support::snapshot(dir) {
        if rel.file_name().is_some_and(|n| n == ".lock") {
            continue;
        }
        let t = fs::metadata(dir.join(&rel)).unwrap().modified().unwrap();
        out.insert(rel, (bytes, t));
    }
    out
}

#[test]
fn a_second_apply_changes_nothing_and_a_new_member_changes_only_what_it_must() {
    let dir = tempdir();
    let manifest = dir.path().join("cluster.toml");
    fs::write(&manifest, mesh_manifest(&["a", "b", "c"])).unwrap();
    let out = dir.path().join("out");
    apply(&manifest, &out).assert_success();
    let before = mtimes(&out);
    let r = apply(&manifest, &out);
    r.assert_success();
    assert!(r.stdout.contains("nothing to do"), "{r:?}");
    assert_eq!(mtimes(&out), before, "a second apply wrote something");
    let plan = run(certmesh()
        .args(["cluster", "plan"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .arg("--json"));
    let v: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(v["changed"], false, "{plan:?}");

    // A fourth member: its own files, its signer, and the others' truststores.
    fs::write(&manifest, mesh_manifest(&["a", "b", "c", "d"])).unwrap();
    let plan = run(certmesh()
        .args(["cluster", "plan"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out));
    plan.assert_success();
    assert!(
        plan.stdout.contains("d (nginx): certificate to issue"),
        "{plan:?}"
    );
    assert_eq!(mtimes(&out), before, "plan wrote something");
    apply(&manifest, &out).assert_success();
    let after = mtimes(&out);
    let changed: Vec<String> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(v))
        .map(|(k, _)| k.display().to_string())
        .filter(|k| !k.starts_with("pki/signers/d/") && !k.starts_with("d/"))
        .collect();
    assert_eq!(changed, ["a/trust.pem", "b/trust.pem", "c/trust.pem"]);
    assert!(
        after.keys().any(|k| k.starts_with("d/"))
            && after.keys().any(|k| k.starts_with("pki/signers/d/"))
    );

    // Changing a member's names renews only that member.
    let text = fs::read_to_string(&manifest).unwrap().replace(
        "dns = [\"b.cluster.test\"]",
        "dns = [\"b.cluster.test\", \"b2.cluster.test\"]",
    );
    fs::write(&manifest, text).unwrap();
    let r = apply(&manifest, &out);
    r.assert_success();
    assert!(
        r.stdout
            .contains("b (nginx): certificate renewed (names changed"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("a (nginx): certificate kept; files unchanged"),
        "{r:?}"
    );
    let san = openssl(&[
        "x509",
        "-in",
        out.join("b/fullchain.pem").to_str().unwrap(),
        "-noout",
        "-ext",
        "subjectAltName",
    ])
    .stdout;
    assert!(san.contains("b2.cluster.test"), "{san}");
}

#[test]
fn shared_ca_signs_every_member_and_every_truststore_holds_it() {
    let dir = tempdir();
    let manifest = dir.path().join("cluster.toml");
    fs::write(
        &manifest,
        r#"name = "shared"
[ca]
name = "Shared Cluster CA"
intermediate = true
[defaults]
profile = "apache-httpd"
key = "rsa2048"
[[member]]
name = "lb"
dns = ["lb.cluster.test"]
[[member]]
name = "n1"
dns = ["n1.cluster.test"]
profile = "haproxy"
"#,
    )
    .unwrap();
    let out = dir.path().join("out");
    apply(&manifest, &out).assert_success();
    let root = out.join("pki/ca/ca/root/cert.pem");
    for bundle in [out.join("lb/ca-bundle.crt"), out.join("n1/ca.pem")] {
        assert_eq!(
            fs::read_to_string(&bundle).unwrap(),
            fs::read_to_string(&root).unwrap()
        );
    }
    // Apache: server.crt is leaf + intermediate; the machine file is cert + PKCS#1 key.
    let server = out.join("lb/server.crt");
    assert_eq!(
        fs::read_to_string(&server)
            .unwrap()
            .matches("BEGIN CERTIFICATE")
            .count(),
        2
    );
    verify(
        &root,
        Some(&server),
        &server,
        &["-verify_hostname", "lb.cluster.test"],
    )
    .assert_success();
    let machine = fs::read_to_string(out.join("lb/proxy-machine.pem")).unwrap();
    assert!(
        machine.contains("BEGIN CERTIFICATE") && machine.contains("BEGIN RSA PRIVATE KEY"),
        "{machine}"
    );
    assert_eq!(mode(&out.join("lb/proxy-machine.pem")), 0o600);
    openssl(&[
        "rsa",
        "-in",
        out.join("lb/proxy-machine.pem").to_str().unwrap(),
        "-check",
        "-noout",
    ])
    .assert_success();
    // HAProxy: one file with the chain and the key.
    let combined = fs::read_to_string(out.join("n1/haproxy.pem")).unwrap();
    assert_eq!(combined.matches("BEGIN CERTIFICATE").count(), 2);
    assert!(combined.contains("BEGIN PRIVATE KEY"));
}

#[test]
fn invalid_manifests_name_the_line() {
    let dir = tempdir();
    let good = mesh_manifest(&["a", "b"]);
    let cases = [
        (
            good.replace("trust = \"mesh\"", "trust = \"mesh\"\ncolour = \"red\""),
            ":3:",
            "colour",
        ),
        (
            good.replace("name = \"b\"", "name = \"a\""),
            ":13:",
            "duplicate member 'a'",
        ),
        (
            good.replace("profile = \"nginx\"", "profile = \"nginy\""),
            ":8:",
            "unknown profile 'nginy'",
        ),
        (
            good.replace(
                "ip = [\"127.0.0.1\"]\n\n[[member]]\nname = \"b\"",
                "ip = [\"127.0.0.300\"]\n\n[[member]]\nname = \"b\"",
            ),
            ":10:",
            "invalid IP address",
        ),
        (
            good.replace("dns = [\"b.cluster.test\"]", "dns = [\"b cluster\"]"),
            ":13:",
            "invalid DNS name",
        ),
    ];
    for (text, line, expect) in cases {
        let manifest = dir.path().join("bad.toml");
        fs::write(&manifest, &text).unwrap();
        let out = dir.path().join("out");
        let r = apply(&manifest, &out);
        assert_eq!(r.status, 1, "{text}\n{r:?}");
        assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
        assert!(
            r.stderr.contains(&format!("bad.toml{line}")),
            "{expect}: {r:?}"
        );
        assert!(r.stderr.contains(expect), "{r:?}");
        assert!(!out.exists(), "nothing is written for a bad manifest");
    }
}

#[test]
fn status_compares_truststores_with_what_they_should_hold() {
    let dir = tempdir();
    let manifest = dir.path().join("cluster.toml");
    fs::write(&manifest, mesh_manifest(&["a", "b", "c"])).unwrap();
    let out = dir.path().join("out");
    let status = || {
        let r = run(certmesh()
            .args(["cluster", "status"])
            .arg(&manifest)
            .arg("--out")
            .arg(&out)
            .arg("--json"));
        r.assert_success();
        serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap()
    };
    let v = status();
    assert!(v[0]["certificate"].is_null(), "nothing applied yet: {v}");
    apply(&manifest, &out).assert_success();
    let v = status();
    for m in v.as_array().unwrap() {
        assert!(
            m["certificate"]["days_left"].as_i64().unwrap() >= 364,
            "{m}"
        );
        assert_eq!(
            m["truststores"][0]["missing"].as_array().unwrap().len(),
            0,
            "{m}"
        );
        assert_eq!(
            m["truststores"][0]["unexpected"].as_array().unwrap().len(),
            0,
            "{m}"
        );
    }
    // Someone edits b's truststore by hand: c's signer goes, a stranger comes in.
    let stranger = dir.path().join("stranger");
    run(certmesh()
        .arg("--home")
        .arg(&stranger)
        .args(["ca", "init", "--name", "Stranger CA"]))
    .assert_success();
    let bundle = fs::read_to_string(out.join("b/trust.pem")).unwrap();
    let blocks: Vec<&str> = bundle
        .split_inclusive("-----END CERTIFICATE-----\n")
        .collect();
    let edited = format!(
        "{}{}{}",
        blocks[0],
        blocks[1],
        fs::read_to_string(stranger.join("ca/root/cert.pem")).unwrap()
    );
    fs::write(out.join("b/trust.pem"), edited).unwrap();
    let v = status();
    let b = &v[1]["truststores"][0];
    assert_eq!(
        b["missing"],
        serde_json::json!(["CN=mesh-demo CA c"]),
        "{b}"
    );
    assert_eq!(
        b["unexpected"],
        serde_json::json!(["CN=Stranger CA"]),
        "{b}"
    );
    let text = run(certmesh()
        .args(["cluster", "status"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out));
    assert!(
        text.stdout.contains("b (nginx): CN=b.cluster.test expires"),
        "{text:?}"
    );
    assert!(
        text.stdout
            .contains("trust.pem: missing CN=mesh-demo CA c, unexpected CN=Stranger CA"),
        "{text:?}"
    );
    // apply repairs it.
    apply(&manifest, &out).assert_success();
    assert_eq!(
        status()[1]["truststores"][0]["missing"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // Every member's certificate is judged as `verify` judges it: its chain up to its
    // root, for its own name as a server.
    for m in status().as_array().unwrap() {
        assert_eq!(m["certificate"]["verified"], true, "{m}");
        assert!(m["certificate"].get("verify_error").is_none(), "{m}");
    }
    // a's entry now holds a certificate for another name from another CA.
    run(certmesh().arg("--home").arg(&stranger).args([
        "issue",
        "a",
        "--dns",
        "elsewhere.example.com",
    ]))
    .assert_success();
    let entry = out.join("pki/signers/a/issued/a/cert.pem");
    assert!(entry.exists(), "{entry:?}");
    fs::copy(stranger.join("issued/a/cert.pem"), &entry).unwrap();
    let v = status();
    assert_eq!(v[0]["certificate"]["verified"], false, "{v}");
    let why = v[0]["certificate"]["verify_error"].as_str().unwrap();
    assert!(why.contains("CN=Stranger CA"), "{why}");
    assert_eq!(v[1]["certificate"]["verified"], true, "{v}");
    let text = run(certmesh()
        .args(["cluster", "status"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out));
    assert!(text.stdout.contains(", REFUSED: "), "{text:?}");
}

#[test]
fn a_progress_bar_shows_on_a_terminal_only() {
    let dir = tempdir();
    let manifest = dir.path().join("cluster.toml");
    let mut text = String::from("name = \"big\"\n[defaults]\nprofile = \"nginx\"\n");
    for i in 0..10 {
        text.push_str(&format!(
            "[[member]]\nname = \"m{i}\"\ndns = [\"m{i}.cluster.test\"]\n"
        ));
    }
    fs::write(&manifest, text).unwrap();
    let out = dir.path().join("out");
    let r = run(Command::new("script")
        .arg("-qec")
        .arg(format!(
            "'{}' cluster apply '{}' --out '{}'",
            env!("CARGO_BIN_EXE_certmesh"),
            manifest.display(),
            out.display()
        ))
        .arg("/dev/null"));
    r.assert_success();
    assert!(r.stdout.contains("generating keys ["), "{r:?}");
    let out2 = dir.path().join("out2");
    let r = apply(&manifest, &out2);
    r.assert_success();
    assert!(
        !r.stderr.contains("generating keys") && !r.stdout.contains("generating keys"),
        "{r:?}"
    );
}

#[test]
fn a_revocation_reaches_every_member_as_its_crl() {
    let dir = tempdir();
    let manifest = dir.path().join("cluster.toml");
    fs::write(&manifest, "name = \"crl\"\n[defaults]\nprofile = \"nginx\"\n[[member]]\nname = \"a\"\ndns = [\"a.cluster.test\"]\n[[member]]\nname = \"b\"\ndns = [\"b.cluster.test\"]\nprofile = \"apache-httpd\"\n").unwrap();
    let out = dir.path().join("out");
    apply(&manifest, &out).assert_success();
    assert!(
        !out.join("a/crl.pem").exists(),
        "no CRL before the CA has one"
    );
    let r = apply(&manifest, &out);
    assert!(r.stdout.contains("nothing to do"), "{r:?}");
    // Revoke b's certificate in the cluster's store; the next apply gives b a new one and
    // every member the CRL that lists the old.
    let old = openssl(&[
        "x509",
        "-in",
        out.join("b/server.crt").to_str().unwrap(),
        "-noout",
        "-serial",
    ])
    .stdout
    .trim()
    .trim_start_matches("serial=")
    .to_string();
    run(certmesh().arg("--home").arg(out.join("pki/ca")).args([
        "revoke",
        "b",
        "--reason",
        "keyCompromise",
    ]))
    .assert_success();
    let r = apply(&manifest, &out);
    assert!(
        r.stdout
            .contains("b (apache-httpd): certificate renewed (revoked)"),
        "{r:?}"
    );
    let new = openssl(&[
        "x509",
        "-in",
        out.join("b/server.crt").to_str().unwrap(),
        "-noout",
        "-serial",
    ])
    .stdout;
    assert!(!new.contains(&old), "b got a new certificate");
    for (m, f) in [("a", "crl.pem"), ("b", "crl.pem")] {
        let crl = out.join(m).join(f);
        let r = openssl(&[
            "crl",
            "-in",
            crl.to_str().unwrap(),
            "-CAfile",
            out.join("pki/ca/ca/root/cert.pem").to_str().unwrap(),
            "-noout",
            "-text",
        ]);
        assert!(
            r.success() && format!("{}{}", r.stdout, r.stderr).contains("verify OK"),
            "{m}: {r:?}"
        );
        assert!(
            r.stdout.to_uppercase().contains(&old.to_uppercase()),
            "{m}: {r:?}"
        );
    }
    let r = apply(&manifest, &out);
    assert!(r.stdout.contains("nothing to do"), "{r:?}");
}

/// Members are signed and written as their keys are ready, so one member failing does
/// not undo the others: the run names the member's problem and fails, the inventory
/// lists every certificate that is on disk, and the next run finishes the job without
/// issuing anything again.
#[test]
fn a_member_that_cannot_be_written_fails_the_run_and_the_next_run_finishes_it() {
    let dir = tempdir();
    let manifest = dir.path().join("cluster.toml");
    let mut text = String::from("name = \"partial\"\n[ca]\nkey = \"p256\"\n[defaults]\nprofile = \"nginx\"\nkey = \"p256\"\n");
    for name in ["m1", "m2", "m3", "m4"] {
        text.push_str(&format!(
            "[[member]]\nname = \"{name}\"\ndns = [\"{name}.cluster.test\"]\n"
        ));
    }
    fs::write(&manifest, text).unwrap();
    let out = dir.path().join("out");
    fs::create_dir(&out).unwrap();
    // A file where m3's directory must go.
    fs::write(out.join("m3"), b"in the way").unwrap();

    let failed = apply(&manifest, &out);
    failed.assert_failure();
    let line = failed.stderr.trim();
    assert_eq!(line.lines().count(), 1, "{failed:?}");
    assert!(
        line.contains("m3") && line.contains("Not a directory"),
        "{failed:?}"
    );
    for name in ["m1", "m2", "m4"] {
        assert!(out.join(name).join("privkey.pem").exists(), "{name}");
    }
    let home = out.join("pki/ca");
    let listed = run(certmesh().args(["list", "--json", "--home"]).arg(&home));
    listed.assert_success();
    let records: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let mut leaves: Vec<(String, String)> = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "leaf")
        .map(|r| {
            (
                r["name"].as_str().unwrap().into(),
                r["serial"].as_str().unwrap().into(),
            )
        })
        .collect();
    leaves.sort();
    let names: Vec<&str> = leaves.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["m1", "m2", "m3", "m4"],
        "every certificate on disk is listed"
    );
    for (name, serial) in &leaves {
        let cert = home.join("issued").join(name).join("cert.pem");
        let on_disk = openssl(&["x509", "-noout", "-serial", "-in", cert.to_str().unwrap()]);
        on_disk.assert_success();
        assert_eq!(
            on_disk
                .stdout
                .trim()
                .trim_start_matches("serial=")
                .to_uppercase(),
            serial.replace(':', "").to_uppercase(),
            "{name}: the inventory's serial is the file's"
        );
    }

    fs::remove_file(out.join("m3")).unwrap();
    let second = apply(&manifest, &out);
    second.assert_success();
    assert_eq!(
        second.stdout.matches("certificate kept").count(),
        4,
        "nothing is issued again: {second:?}"
    );
    assert!(out.join("m3/privkey.pem").exists());
}

#[test]
fn what_an_interrupted_apply_left_beside_a_member_is_cleared_by_the_next() {
    let dir = tempdir();
    let manifest = dir.path().join("cluster.toml");
    fs::write(&manifest, mesh_manifest(&["a", "b"])).unwrap();
    let out = dir.path().join("out");
    apply(&manifest, &out).assert_success();
    let before = mtimes(&out);
    // An apply stopped in the middle of a member's swap leaves its stage beside it.
    let stage = out.join(".a.certmesh-new");
    fs::create_dir(&stage).unwrap();
    fs::write(stage.join("fullchain.pem"), "partial").unwrap();
    // The stage of a directory that is no member is not this manifest's to remove.
    let other = out.join(".x.certmesh-new");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("keep"), "x").unwrap();
    let r = apply(&manifest, &out);
    r.assert_success();
    assert!(!stage.exists(), "the stage of member a is left: {r:?}");
    assert!(other.join("keep").exists());
    fs::remove_dir_all(&other).unwrap();
    assert_eq!(mtimes(&out), before, "the members' files changed");
}
