//! `certmesh list` and `certmesh inspect`, and the JSON shapes documented in docs/json.md.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use serde_json::Value;
use support::openssl::openssl;
use support::{certmesh, cm, run, tempdir, Run};

fn json(r: &Run) -> Value {
    r.assert_success();
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {r:?}"))
}

#[test]
fn list_filters_by_expiry_and_shows_superseded_on_request() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "CA"]).assert_success();
    cm(
        &home,
        &["issue", "soon", "--dns", "soon.example.com", "--days", "10"],
    )
    .assert_success();
    cm(
        &home,
        &[
            "issue",
            "later",
            "--dns",
            "later.example.com",
            "--days",
            "100",
        ],
    )
    .assert_success();
    cm(
        &home,
        &[
            "issue",
            "year",
            "--dns",
            "year.example.com",
            "--ip",
            "10.0.0.9",
        ],
    )
    .assert_success();

    let all = json(&cm(&home, &["list", "--json"]));
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["soon", "later", "year", "root"],
        "earliest expiry first"
    );
    let year = &all[2];
    assert_eq!(year["profile"], "server");
    assert_eq!(
        year["sans"],
        serde_json::json!(["year.example.com", "10.0.0.9"])
    );
    assert_eq!(year["status"], "valid");
    assert!(year["paths"][0]
        .as_str()
        .unwrap()
        .ends_with("issued/year/key.pem"));
    // The fingerprint in the inventory is the certificate's.
    let fp = openssl(&[
        "x509",
        "-in",
        home.join("issued/year/cert.pem").to_str().unwrap(),
        "-noout",
        "-fingerprint",
        "-sha256",
    ])
    .stdout;
    assert_eq!(
        fp.trim().split('=').nth(1).unwrap(),
        year["sha256"].as_str().unwrap()
    );

    let due = json(&cm(&home, &["list", "--expiring-within", "30d", "--json"]));
    assert_eq!(due.as_array().unwrap().len(), 1);
    assert_eq!(due[0]["name"], "soon");
    let due = json(&cm(&home, &["list", "--expiring-within", "101d", "--json"]));
    assert_eq!(due.as_array().unwrap().len(), 2);

    let table = cm(&home, &["list"]);
    table.assert_success();
    assert!(table.stdout.lines().next().unwrap().starts_with("NAME"));
    assert!(table.stdout.contains("soon.example.com"));

    cm(
        &home,
        &["issue", "soon", "--dns", "soon.example.com", "--force"],
    )
    .assert_success();
    assert_eq!(
        json(&cm(&home, &["list", "--json"]))
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let all = json(&cm(&home, &["list", "--all", "--json"]));
    let superseded: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "superseded")
        .collect();
    assert_eq!(superseded.len(), 1);
    assert_eq!(superseded[0]["name"], "soon");

    let r = cm(&home, &["list", "--expiring-within", "soon"]);
    assert_eq!(r.status, 2, "{r:?}");
}

#[test]
fn inspect_describes_certificates_chains_and_csrs() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(
        &home,
        &[
            "ca",
            "init",
            "--name",
            "Inspect CA",
            "--key",
            "rsa2048",
            "--permit-ip",
            "10.0.0.0/8",
        ],
    )
    .assert_success();
    cm(&home, &["ca", "intermediate", "--key", "p384"]).assert_success();
    cm(
        &home,
        &[
            "issue",
            "n",
            "--dns",
            "n.example.com",
            "--ip",
            "10.1.1.1",
            "--profile",
            "peer",
        ],
    )
    .assert_success();
    let leaf = home.join("issued/n/cert.pem");

    let v = json(&cm(&home, &["inspect", leaf.to_str().unwrap(), "--json"]));
    assert_eq!(v["encoding"], "PEM");
    let c = &v["objects"][0];
    assert_eq!(c["type"], "certificate");
    assert_eq!(c["subject"], "CN=n.example.com");
    assert_eq!(c["issuer"], "CN=Inspect CA Intermediate");
    assert_eq!(c["san"]["dns"], serde_json::json!(["n.example.com"]));
    assert_eq!(c["san"]["ip"], serde_json::json!(["10.1.1.1"]));
    assert_eq!(
        c["key"],
        serde_json::json!({"type": "EC", "bits": 256, "curve": "P-256"})
    );
    assert_eq!(c["signature_algorithm"], "ecdsa-with-SHA384");
    assert_eq!(
        c["extended_key_usage"],
        serde_json::json!(["serverAuth", "clientAuth"])
    );
    assert_eq!(c["key_usage"], serde_json::json!(["digitalSignature"]));
    assert_eq!(c["is_ca"], false);
    assert!(c["days_left"].as_i64().unwrap() >= 364);
    let serial = openssl(&["x509", "-in", leaf.to_str().unwrap(), "-noout", "-serial"]).stdout;
    assert_eq!(
        serial
            .trim()
            .trim_start_matches("serial=")
            .to_ascii_lowercase()
            .trim_start_matches('0'),
        c["serial"].as_str().unwrap().trim_start_matches('0')
    );
    let fp = openssl(&[
        "x509",
        "-in",
        leaf.to_str().unwrap(),
        "-noout",
        "-fingerprint",
        "-sha256",
    ])
    .stdout;
    assert_eq!(
        fp.trim().split('=').nth(1).unwrap(),
        c["fingerprints"]["sha256"].as_str().unwrap()
    );

    // chain.pem: two CA certificates, issuing CA first.
    let v = json(&cm(
        &home,
        &[
            "inspect",
            home.join("issued/n/chain.pem").to_str().unwrap(),
            "--json",
        ],
    ));
    let objs = v["objects"].as_array().unwrap();
    assert_eq!(objs.len(), 2);
    assert_eq!(objs[0]["path_len"], 0);
    assert_eq!(objs[1]["self_signed"], true);
    assert_eq!(objs[1]["key"]["bits"], 2048);
    assert_eq!(
        objs[1]["name_constraints"]["permitted_ip"],
        serde_json::json!(["10.0.0.0/8"])
    );

    // DER input and a CSR.
    let der = dir.path().join("leaf.der");
    openssl(&[
        "x509",
        "-in",
        leaf.to_str().unwrap(),
        "-outform",
        "DER",
        "-out",
        der.to_str().unwrap(),
    ])
    .assert_success();
    let v = json(&cm(&home, &["inspect", der.to_str().unwrap(), "--json"]));
    assert_eq!(v["encoding"], "DER");
    assert_eq!(v["objects"][0]["subject"], "CN=n.example.com");
    let csr = dir.path().join("r.csr");
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        dir.path().join("r.key").to_str().unwrap(),
        "-subj",
        "/CN=r.example.com",
        "-addext",
        "subjectAltName=DNS:r.example.com",
        "-out",
        csr.to_str().unwrap(),
    ])
    .assert_success();
    let v = json(&cm(&home, &["inspect", csr.to_str().unwrap(), "--json"]));
    let r = &v["objects"][0];
    assert_eq!(r["type"], "csr");
    assert_eq!(r["signature_valid"], true);
    assert_eq!(r["san"]["dns"], serde_json::json!(["r.example.com"]));
    assert_eq!(r["key"]["type"], "RSA");

    // Text form carries the same facts.
    let t = cm(&home, &["inspect", leaf.to_str().unwrap()]);
    t.assert_success();
    assert!(
        t.stdout.contains("DNS:n.example.com, IP:10.1.1.1")
            && t.stdout.contains("serverAuth, clientAuth"),
        "{t:?}"
    );

    // Several files: one JSON object per line.
    let r = cm(
        &home,
        &[
            "inspect",
            leaf.to_str().unwrap(),
            csr.to_str().unwrap(),
            "--json",
        ],
    );
    r.assert_success();
    assert_eq!(r.stdout.lines().count(), 2);
    for line in r.stdout.lines() {
        serde_json::from_str::<Value>(line).unwrap();
    }

    // Not a certificate: one line naming the file.
    let junk = dir.path().join("junk.pem");
    fs::write(&junk, b"hello world\n").unwrap();
    let r = cm(&home, &["inspect", junk.to_str().unwrap()]);
    assert_eq!(r.status, 1);
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    assert!(r.stderr.contains("junk.pem"), "{r:?}");
    let r = cm(
        &home,
        &["inspect", dir.path().join("missing.pem").to_str().unwrap()],
    );
    assert_eq!(r.status, 1);
    assert!(
        r.stderr.contains("missing.pem") && r.stderr.contains("No such file"),
        "{r:?}"
    );
}

/// The keys of the first JSON object after `heading` in docs/json.md.
fn documented_keys(heading: &str, nth_block: usize) -> BTreeSet<String> {
    let doc =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json.md")).unwrap();
    let section = &doc[doc
        .find(heading)
        .unwrap_or_else(|| panic!("docs/json.md has no {heading}"))..];
    let block = section
        .split("```json")
        .nth(nth_block + 1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let v: Value = serde_json::from_str(block)
        .unwrap_or_else(|e| panic!("docs/json.md {heading} block {nth_block}: {e}"));
    let obj = if v.is_array() { v[0].clone() } else { v };
    obj.as_object().unwrap().keys().cloned().collect()
}

/// The first JSON block after `heading` in docs/json.md.
fn documented_block(heading: &str) -> Value {
    let doc =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json.md")).unwrap();
    let section = &doc[doc
        .find(heading)
        .unwrap_or_else(|| panic!("docs/json.md has no {heading}"))..];
    serde_json::from_str(
        section
            .split("```json")
            .nth(1)
            .unwrap()
            .split("```")
            .next()
            .unwrap(),
    )
    .unwrap()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn json_output_matches_docs() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(
        &home,
        &[
            "ca",
            "init",
            "--name",
            "Doc CA",
            "--permit-dns",
            "example.com",
        ],
    )
    .assert_success();
    let issued = json(&cm(
        &home,
        &["issue", "n", "--dns", "n.example.com", "--json"],
    ));
    assert_eq!(
        keys(&issued),
        documented_keys("## `certmesh issue NAME --json`", 0)
    );
    let leaf = home.join("issued/n/cert.pem");
    let v = json(&cm(&home, &["inspect", leaf.to_str().unwrap(), "--json"]));
    assert_eq!(
        keys(&v),
        documented_keys("## `certmesh inspect FILE --json`", 0)
    );
    // The leaf has no name constraints, so that optional key is absent; the CA has it.
    let mut doc_cert = documented_keys("## `certmesh inspect FILE --json`", 1);
    let ca = json(&cm(
        &home,
        &[
            "inspect",
            home.join("ca/root/cert.pem").to_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(keys(&ca["objects"][0]), doc_cert);
    doc_cert.remove("name_constraints");
    assert_eq!(keys(&v["objects"][0]), doc_cert);
    let list = json(&cm(&home, &["list", "--json"]));
    assert_eq!(
        keys(&list[0]),
        documented_keys("## `certmesh list --json`", 0)
    );
    let csr = dir.path().join("r.csr");
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        dir.path().join("r.key").to_str().unwrap(),
        "-subj",
        "/CN=r.example.com",
        "-out",
        csr.to_str().unwrap(),
    ])
    .assert_success();
    let v = json(&cm(&home, &["inspect", csr.to_str().unwrap(), "--json"]));
    assert_eq!(
        keys(&v["objects"][0]),
        documented_keys("## `certmesh inspect FILE --json`", 2)
    );
    let out = dir.path().join("r.crt");
    let v = json(&cm(
        &home,
        &[
            "sign",
            csr.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(
        keys(&v),
        documented_keys("## `certmesh sign REQ --json`", 0)
    );
}

#[test]
fn inspect_describes_keys_without_needing_their_passphrase() {
    let dir = tempdir();
    let d = dir.path();
    let key = d.join("server.key");
    openssl(&[
        "genrsa",
        "-des3",
        "-traditional",
        "-passout",
        "pass:seedpass",
        "-out",
        key.to_str().unwrap(),
        "2048",
    ])
    .assert_success();
    // No passphrase: the encryption is named from the headers; nothing is asked.
    let v = json(&run(certmesh().args([
        "inspect",
        key.to_str().unwrap(),
        "--json",
    ])));
    let k = &v["objects"][0];
    assert_eq!(k["type"], "key");
    assert_eq!(k["encrypted"], true);
    assert_eq!(k["format"], "PKCS#1");
    assert_eq!(k["encryption"], "legacy PEM DES-EDE3-CBC");
    assert_eq!(k["key_type"], "RSA");
    assert!(k.get("public_key_sha256").is_none());
    // With it: size and the public-key fingerprint, which is openssl's too.
    let r = run(certmesh()
        .args([
            "inspect",
            key.to_str().unwrap(),
            "--json",
            "--pass",
            "env:P",
        ])
        .env("P", "seedpass"));
    let k = json(&r)["objects"][0].clone();
    assert_eq!(k["bits"], 2048);
    let pubder = d.join("pub.der");
    openssl(&[
        "pkey",
        "-in",
        key.to_str().unwrap(),
        "-passin",
        "pass:seedpass",
        "-pubout",
        "-outform",
        "DER",
        "-out",
        pubder.to_str().unwrap(),
    ])
    .assert_success();
    let dgst = openssl(&["dgst", "-sha256", "-c", pubder.to_str().unwrap()]).stdout;
    let hex = dgst.trim().rsplit(' ').next().unwrap().to_ascii_uppercase();
    assert_eq!(k["public_key_sha256"].as_str().unwrap(), hex);
    // Wrong passphrase: one line, exit 1.
    let r = run(certmesh()
        .args(["inspect", key.to_str().unwrap(), "--pass", "env:P"])
        .env("P", "nope"));
    assert_eq!(r.status, 1, "{r:?}");
    assert!(
        r.stderr.contains("server.key") && r.stderr.contains("passphrase"),
        "{r:?}"
    );
    assert_eq!(r.stderr.lines().count(), 1);
}

#[test]
fn more_json_shapes_match_docs() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "Doc CA"]).assert_success();
    cm(
        &home,
        &["issue", "n", "--dns", "n.example.com", "--days", "1"],
    )
    .assert_success();
    let leaf = home.join("issued/n/cert.pem");
    let v = json(&cm(&home, &["ca", "show", "--json"]));
    assert_eq!(keys(&v), documented_keys("## `certmesh ca show --json`", 0));
    let r = cm(&home, &["check", "--json"]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(keys(&v), documented_keys("## `certmesh check --json`", 0));
    assert_eq!(
        keys(&v["items"][0]),
        documented_block("## `certmesh check --json`")["items"][0]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    );
    let v = json(&cm(
        &home,
        &[
            "verify",
            leaf.to_str().unwrap(),
            "--ca",
            home.join("ca/root/cert.pem").to_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(
        keys(&v),
        documented_keys("## `certmesh verify CERT --json`", 0)
    );
    let r = cm(&home, &["lint", leaf.to_str().unwrap(), "--json"]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        keys(&v),
        documented_keys("## `certmesh lint CERT --json`", 0)
    );
    let v = json(&cm(&home, &["renew", "--within", "3d", "--json"]));
    let mut doc = documented_keys("## `certmesh renew --json` (store mode)", 0);
    // Present only when renew refreshed CRLs.
    doc.remove("crl");
    doc.remove("chain_crls");
    assert_eq!(keys(&v), doc);
    let v = json(&cm(&home, &["revoke", "n", "--json"]));
    assert_eq!(keys(&v), documented_keys("## `certmesh revoke --json`", 0));
    let v = json(&cm(&home, &["ca", "rollover", "--json"]));
    assert_eq!(
        keys(&v),
        documented_keys("## `certmesh ca rollover --json`", 0)
    );

    let manifest = dir.path().join("cluster.toml");
    fs::write(&manifest, "name = \"doc\"\n[[member]]\nname = \"a\"\ndns = [\"a.example.com\"]\nprofile = \"nginx\"\n").unwrap();
    let out = dir.path().join("out");
    let v = json(&run(certmesh()
        .args(["cluster", "apply", "--json"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out)));
    let mut doc = documented_keys("## `certmesh cluster plan --json`", 0);
    assert_eq!(keys(&v), doc);
    let block = documented_block("## `certmesh cluster plan --json`");
    let mut member_doc = keys(&block["members"][0]);
    member_doc.remove("deploy");
    assert_eq!(keys(&v["members"][0]), member_doc);
    doc.clear();
    let v = json(&run(certmesh()
        .args(["cluster", "status", "--json"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out)));
    let mut status_doc = documented_keys("## `certmesh cluster status --json`", 0);
    status_doc.remove("deploy");
    let mut got = keys(&v[0]);
    got.remove("deploy");
    assert_eq!(got, status_doc);
}

#[test]
fn keystore_and_lifecycle_json_shapes_match_docs() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "Doc CA"]).assert_success();
    cm(&home, &["issue", "n", "--dns", "n.example.com"]).assert_success();
    let store = dir.path().join("trust.jks");
    run(certmesh()
        .args([
            "truststore",
            "import",
            "--create",
            "--alias",
            "ca",
            "--cert",
        ])
        .arg(home.join("ca/root/cert.pem"))
        .arg("--store")
        .arg(&store)
        .args(["--storepass", "env:SP"])
        .env("SP", "doc-store-pass"))
    .assert_success();
    let v = json(&run(certmesh()
        .args([
            "truststore",
            "list",
            "--json",
            "--storepass",
            "env:SP",
            "--store",
        ])
        .arg(&store)
        .env("SP", "doc-store-pass")));
    let doc = documented_block("## `certmesh truststore list --json`");
    assert_eq!(keys(&v), keys(&doc));
    let mut entry_doc = keys(&doc["entries"][0]);
    entry_doc.remove("chain_length");
    assert_eq!(keys(&v["entries"][0]), entry_doc);

    // revoke's crl object is the shape `crl --json` prints, plus `chain_crls`.
    let mut v = json(&cm(&home, &["crl", "--json"]));
    assert!(v["chain_crls"].is_array(), "{v}");
    v.as_object_mut().unwrap().remove("chain_crls");
    assert_eq!(
        keys(&v),
        keys(&documented_block("## `certmesh revoke --json`")["crl"])
    );

    cm(&home, &["issue", "n", "--dns", "n.example.com", "--force"]).assert_success();
    let v = json(&cm(&home, &["rollback", "--json"]));
    assert_eq!(
        keys(&v),
        keys(&documented_block("## `certmesh rollback --json`"))
    );
}

/// `inspect` describes public keys in every form openssl writes them (SPKI PEM and DER,
/// PKCS#1 `RSA PUBLIC KEY`), with the SubjectPublicKeyInfo fingerprint openssl computes and
/// the modulus length as the RSA size (a 1025-bit key is RSA 1025, not 1024).
#[test]
fn inspect_describes_public_keys_as_openssl_writes_them() {
    let dir = tempdir();
    let d = dir.path();
    let cases = [
        (
            "rsa1025",
            vec![
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:1025",
            ],
            "RSA",
            1025,
        ),
        (
            "p384",
            vec![
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-384",
            ],
            "EC",
            384,
        ),
        (
            "ed25519",
            vec!["genpkey", "-algorithm", "ED25519"],
            "Ed25519",
            256,
        ),
    ];
    for (name, gen, kind, bits) in cases {
        let key = d.join(format!("{name}.key"));
        let mut args = gen.clone();
        args.extend(["-out", key.to_str().unwrap()]);
        openssl(&args).assert_success();
        let spki_der = d.join(format!("{name}.pub.der"));
        openssl(&[
            "pkey",
            "-in",
            key.to_str().unwrap(),
            "-pubout",
            "-outform",
            "DER",
            "-out",
            spki_der.to_str().unwrap(),
        ])
        .assert_success();
        let dgst = openssl(&["dgst", "-sha256", "-c", spki_der.to_str().unwrap()]).stdout;
        let want = dgst.trim().rsplit(' ').next().unwrap().to_ascii_uppercase();
        let spki_pem = d.join(format!("{name}.pub.pem"));
        openssl(&[
            "pkey",
            "-in",
            key.to_str().unwrap(),
            "-pubout",
            "-out",
            spki_pem.to_str().unwrap(),
        ])
        .assert_success();
        let mut files = vec![spki_pem, spki_der];
        if kind == "RSA" {
            let pkcs1 = d.join(format!("{name}.rsapub.pem"));
            openssl(&[
                "rsa",
                "-in",
                key.to_str().unwrap(),
                "-RSAPublicKey_out",
                "-out",
                pkcs1.to_str().unwrap(),
            ])
            .assert_success();
            assert!(fs::read_to_string(&pkcs1)
                .unwrap()
                .contains("BEGIN RSA PUBLIC KEY"));
            files.push(pkcs1);
        }
        for f in files {
            let r = run(certmesh().args(["inspect", f.to_str().unwrap(), "--json"]));
            r.assert_success();
            let o = json(&r)["objects"][0].clone();
            assert_eq!(o["type"], "public_key", "{}: {o}", f.display());
            assert_eq!(o["key"]["type"], kind, "{}: {o}", f.display());
            assert_eq!(o["key"]["bits"], bits, "{}: {o}", f.display());
            assert_eq!(
                o["public_key_sha256"].as_str().unwrap(),
                want,
                "{}",
                f.display()
            );
        }
    }
}
