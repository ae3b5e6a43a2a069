//! The products' use of their keys, not only the file formats: what WSO2 encrypts and signs
//! on one node, another node decrypts and verifies, also after renewals; every
//! SecureTransport server holds the one cluster certificate and key; IBM HTTP Server's
//! plug-in keyring holds exactly the signers of the servers it routes to; and an old
//! output directory migrates only by a deliberate, explained step.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::java::{product_crypto, trust_client};
use support::nginx::Nginx;
use support::openssl::openssl;
use support::{certmesh, run, snapshot, tempdir, Run};

fn pass(out: &Path, member: &str) -> String {
    fs::read_to_string(out.join(member).join("keystore.pass"))
        .unwrap()
        .trim()
        .to_string()
}

fn apply(manifest: &Path, out: &Path, extra: &[&str]) -> Run {
    run(certmesh()
        .args(["cluster", "apply"])
        .arg(manifest)
        .arg("--out")
        .arg(out)
        .args(extra))
}

fn keytool(args: &[&str]) -> String {
    let o = Command::new("keytool").args(args).output().unwrap();
    assert!(
        o.status.success(),
        "keytool {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// (alias, entry type, SHA-256 fingerprint) of every entry, as keytool lists them.
fn entries(store: &Path, store_type: &str, pass: &str) -> Vec<(String, String, String)> {
    let text = keytool(&[
        "-list",
        "-v",
        "-storetype",
        store_type,
        "-keystore",
        store.to_str().unwrap(),
        "-storepass",
        pass,
    ]);
    let mut out = Vec::new();
    let (mut alias, mut kind) = (String::new(), String::new());
    for line in text.lines() {
        if let Some(a) = line.strip_prefix("Alias name: ") {
            alias = a.to_string();
        }
        if let Some(k) = line.strip_prefix("Entry type: ") {
            kind = k.to_string();
        }
        if let Some(fp) = line.trim().strip_prefix("SHA256: ") {
            if !alias.is_empty() {
                out.push((alias.clone(), kind.clone(), fp.to_string()));
                alias.clear();
            }
        }
    }
    out
}

fn serial(store: &Path, store_type: &str, pass: &str, alias: &str) -> String {
    let text = keytool(&[
        "-list",
        "-v",
        "-storetype",
        store_type,
        "-keystore",
        store.to_str().unwrap(),
        "-storepass",
        pass,
        "-alias",
        alias,
    ]);
    text.lines()
        .find_map(|l| l.strip_prefix("Serial number: "))
        .unwrap()
        .to_string()
}

/// Encrypts `secret` with `from`'s certificate and checks `to` decrypts it; returns the
/// ciphertext.
fn crosses(from: (&Path, &str), to: (&Path, &str), alias: &str, secret: &str) -> String {
    let enc = product_crypto("encrypt", "JKS", from.0, from.1, alias, secret);
    enc.assert_success();
    let ct = enc.stdout.trim().to_string();
    let dec = product_crypto("decrypt", "JKS", to.0, to.1, alias, &ct);
    assert!(dec.success() && dec.stdout.trim() == secret, "{dec:?}");
    ct
}

const WSO2: &str = r#"name = "wso2-is"
[ca]
name = "WSO2 IS Cluster CA"
[defaults]
profile = "wso2-carbon"
[[shared]]
identity = "primary"
dns = ["is.example.com"]
[[member]]
name = "lb"
dns = ["is.example.com"]
profile = "nginx"
[[member]]
name = "is-node1"
dns = ["is-node1.example.com"]
[[member]]
name = "is-node2"
dns = ["is-node2.example.com"]
"#;

#[test]
fn wso2_nodes_share_their_primary_and_internal_keys_across_renewals() {
    let dir = tempdir();
    let manifest = dir.path().join("cluster.toml");
    fs::write(&manifest, WSO2).unwrap();
    let out = dir.path().join("out");
    apply(&manifest, &out, &[]).assert_success();
    let (n1, n2) = (out.join("is-node1"), out.join("is-node2"));
    let (p1, p2) = (pass(&out, "is-node1"), pass(&out, "is-node2"));
    assert_ne!(p1, p2, "each node keeps its own store password");

    // One primary and one internal key for the cluster, each node its own TLS key.
    for file in ["wso2carbon.jks", "internal.jks"] {
        let a = entries(&n1.join(file), "JKS", &p1);
        let b = entries(&n2.join(file), "JKS", &p2);
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(a, b, "{file} differs between the nodes");
        assert_eq!(a[0].0, "wso2carbon");
        assert_eq!(a[0].1, "PrivateKeyEntry");
    }
    assert_ne!(
        entries(&n1.join("wso2carbon.jks"), "JKS", &p1),
        entries(&n1.join("internal.jks"), "JKS", &p1),
        "primary and internal are distinct keys"
    );
    let t1 = entries(&n1.join("tls.jks"), "JKS", &p1);
    let t2 = entries(&n2.join("tls.jks"), "JKS", &p2);
    assert_ne!(t1[0].2, t2[0].2);
    let toml = fs::read_to_string(n1.join("deployment.toml")).unwrap();
    for (section, file) in [
        ("primary", "wso2carbon.jks"),
        ("internal", "internal.jks"),
        ("tls", "tls.jks"),
    ] {
        let want = format!("[keystore.{section}]\nfile_name = \"{file}\"\ntype = \"JKS\"");
        assert!(toml.contains(&want), "{want} missing from {toml}");
    }

    // What the products do: encrypt on node1, decrypt on node2 (primary and internal);
    // a token signed by node1 verifies with node2's keystore certificate.
    let primary = |d: &Path| d.join("wso2carbon.jks");
    let internal = |d: &Path| d.join("internal.jks");
    let old_primary_ct = crosses(
        (&primary(&n1), &p1),
        (&primary(&n2), &p2),
        "wso2carbon",
        "db-secret",
    );
    let old_internal_ct = crosses(
        (&internal(&n1), &p1),
        (&internal(&n2), &p2),
        "wso2carbon",
        "config-secret",
    );
    let jwt = product_crypto("sign-jwt", "JKS", &primary(&n1), &p1, "wso2carbon", "admin");
    jwt.assert_success();
    let v = product_crypto(
        "verify-jwt",
        "JKS",
        &primary(&n2),
        &p2,
        "wso2carbon",
        jwt.stdout.trim(),
    );
    assert!(
        v.success() && v.stdout.contains("\"sub\":\"admin\""),
        "{v:?}"
    );
    // A TLS key of another node is not the primary: the token does not verify with it.
    let alias2 = &t2[0].0;
    let v = product_crypto(
        "verify-jwt",
        "JKS",
        &n2.join("tls.jks"),
        &p2,
        alias2,
        jwt.stdout.trim(),
    );
    assert!(!v.success(), "{v:?}");

    // Past every renew window: the primary is certified again with the same key, the
    // internal keystore is held (manual), the TLS keys are new.
    let primary_serial = serial(&primary(&n1), "JKS", &p1, "wso2carbon");
    let internal_before = fs::read(internal(&n2)).unwrap();
    let r = run(certmesh()
        .args(["renew", "--cluster"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .args(["--within", "400d"]));
    r.assert_success();
    assert!(
        r.stdout.contains("renewed shared primary") && r.stdout.contains("kept key"),
        "{r:?}"
    );
    assert!(
        r.stderr.contains("shared internal is due but held")
            && r.stderr.contains("--renew-identity internal"),
        "{r:?}"
    );
    assert_ne!(
        serial(&primary(&n2), "JKS", &p2, "wso2carbon"),
        primary_serial,
        "the primary certificate was renewed"
    );
    assert_eq!(fs::read(internal(&n2)).unwrap(), internal_before);
    assert_ne!(entries(&n1.join("tls.jks"), "JKS", &p1)[0].2, t1[0].2);
    for (store, pw, ct, secret) in [
        (primary(&n2), &p2, &old_primary_ct, "db-secret"),
        (primary(&n1), &p1, &old_primary_ct, "db-secret"),
        (internal(&n2), &p2, &old_internal_ct, "config-secret"),
    ] {
        let d = product_crypto("decrypt", "JKS", &store, pw, "wso2carbon", ct);
        assert!(
            d.success() && d.stdout.trim() == secret,
            "{}: {d:?}",
            store.display()
        );
    }
    let v = product_crypto(
        "verify-jwt",
        "JKS",
        &primary(&n2),
        &p2,
        "wso2carbon",
        jwt.stdout.trim(),
    );
    assert!(v.success(), "a token signed before the renewal: {v:?}");

    // Monitoring names the deliberate command for the held internal keystore.
    let c = run(certmesh()
        .args(["check", "--within", "400d", "--cluster"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out));
    assert_eq!(c.status, 1, "{c:?}");
    assert!(
        c.stdout.contains("_shared.internal")
            && c.stdout.contains("rotation is manual")
            && c.stdout.contains("--renew-identity internal"),
        "{c:?}"
    );
    let s = run(certmesh()
        .args(["cluster", "status"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out));
    s.assert_success();
    assert!(
        s.stdout.contains("shared internal (manual)")
            && s.stdout.contains("--renew-identity internal"),
        "{s:?}"
    );

    // The deliberate renewal keeps the internal key: old secrets still decrypt.
    let internal_serial = serial(&internal(&n1), "JKS", &p1, "wso2carbon");
    let r = apply(&manifest, &out, &["--renew-identity", "internal"]);
    r.assert_success();
    assert!(
        r.stdout
            .contains("shared internal (is-node1, is-node2; rotation manual): certificate renewed"),
        "{r:?}"
    );
    assert_ne!(
        serial(&internal(&n1), "JKS", &p1, "wso2carbon"),
        internal_serial
    );
    let d = product_crypto(
        "decrypt",
        "JKS",
        &internal(&n2),
        &p2,
        "wso2carbon",
        &old_internal_ct,
    );
    assert!(d.success() && d.stdout.trim() == "config-secret", "{d:?}");
    // And then nothing is due.
    let r = apply(&manifest, &out, &[]);
    assert!(r.stdout.contains("nothing to do"), "{r:?}");
    // An identity the cluster does not have is a usage error, not a silent no-op.
    let r = apply(&manifest, &out, &["--renew-identity", "internl"]);
    assert!(
        r.status == 2 && r.stderr.contains("no identity 'internl'"),
        "{r:?}"
    );

    // The load balancer's certificate is trusted through every node's truststore.
    let nginx = Nginx::serve(&out.join("lb/fullchain.pem"), &out.join("lb/privkey.pem"));
    for (node, pw) in [(&n1, &p1), (&n2, &p2)] {
        let r = trust_client(
            "JKS",
            &node.join("client-truststore.jks"),
            pw,
            nginx.port(),
            "is.example.com",
        );
        assert!(
            r.success() && r.stdout.contains("trusted CN=is.example.com"),
            "{r:?}"
        );
    }
}

#[test]
fn a_key_the_product_cannot_use_is_refused_with_the_line() {
    let dir = tempdir();
    let manifest = dir.path().join("cluster.toml");
    let text = WSO2.replace(
        "dns = [\"is.example.com\"]\n[[member]]",
        "dns = [\"is.example.com\"]\nkey = \"p256\"\n[[member]]",
    );
    fs::write(&manifest, &text).unwrap();
    let out = dir.path().join("out");
    let r = apply(&manifest, &out, &[]);
    assert_eq!(r.status, 1, "{r:?}");
    let line = text.lines().position(|l| l == "key = \"p256\"").unwrap() + 1;
    assert!(
        r.stderr
            .starts_with(&format!("certmesh: {}:{line}:", manifest.display()))
            && r.stderr
                .contains("identity 'primary' needs one of rsa3072, rsa2048, rsa4096"),
        "{r:?}"
    );
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    assert!(!out.exists());

    // SecureTransport's cluster certificate is RSA too.
    let st = "name = \"st\"\ntrust = \"mesh\"\n[defaults]\nprofile = \"securetransport\"\n[[shared]]\nidentity = \"cluster\"\nkey = \"ed25519\"\n[[member]]\nname = \"a\"\ndns = [\"a.example.com\"]\n";
    fs::write(&manifest, st).unwrap();
    let r = apply(&manifest, &out, &[]);
    assert!(
        r.status == 1
            && r.stderr.contains("cluster.toml:7:")
            && r.stderr.contains("identity 'cluster' needs one of"),
        "{r:?}"
    );
}

#[test]
fn securetransport_servers_hold_one_cluster_certificate() {
    let dir = tempdir();
    let manifest = dir.path().join("cluster.toml");
    fs::write(
        &manifest,
        r#"name = "st"
trust = "mesh"
[defaults]
profile = "securetransport"
[[member]]
name = "st1"
dns = ["st1.example.com"]
[[member]]
name = "st2"
dns = ["st2.example.com"]
[[member]]
name = "st3"
dns = ["st3.example.com"]
"#,
    )
    .unwrap();
    let out = dir.path().join("out");
    apply(&manifest, &out, &[]).assert_success();
    let mut listed = Vec::new();
    let mut keys = Vec::new();
    for m in ["st1", "st2", "st3"] {
        let p12 = out.join(m).join("cluster.p12");
        let pw = pass(&out, m);
        // keytool: one key entry under the same alias everywhere.
        let e = entries(&p12, "PKCS12", &pw);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(
            (e[0].0.as_str(), e[0].1.as_str()),
            ("cluster", "PrivateKeyEntry")
        );
        listed.push(e[0].2.clone());
        // openssl: the same key.
        let pem = openssl(&[
            "pkcs12",
            "-in",
            p12.to_str().unwrap(),
            "-nocerts",
            "-nodes",
            "-passin",
            &format!("pass:{pw}"),
        ]);
        pem.assert_success();
        let k = dir.path().join(format!("{m}.key"));
        fs::write(&k, &pem.stdout).unwrap();
        let public = openssl(&["pkey", "-in", k.to_str().unwrap(), "-pubout"]);
        assert!(public.success(), "{public:?}");
        keys.push(public.stdout);
        assert_eq!(
            fs::read_to_string(out.join(m).join("cluster-crypto-alias.txt"))
                .unwrap()
                .lines()
                .last(),
            Some("Cluster.Crypto.Alias=cluster")
        );
    }
    assert!(listed.iter().all(|f| f == &listed[0]), "{listed:?}");
    assert!(keys.iter().all(|k| k == &keys[0]));
    let text = openssl(&[
        "pkey",
        "-in",
        dir.path().join("st1.key").to_str().unwrap(),
        "-noout",
        "-text",
    ]);
    assert!(text.stdout.contains("Private-Key: (3072 bit"), "{text:?}");

    // Data encrypted with st1's certificate decrypts with st3's key.
    let (p1, p3) = (pass(&out, "st1"), pass(&out, "st3"));
    let enc = product_crypto(
        "encrypt",
        "PKCS12",
        &out.join("st1/cluster.p12"),
        &p1,
        "cluster",
        "cluster traffic",
    );
    enc.assert_success();
    let dec = product_crypto(
        "decrypt",
        "PKCS12",
        &out.join("st3/cluster.p12"),
        &p3,
        "cluster",
        enc.stdout.trim(),
    );
    assert!(
        dec.success() && dec.stdout.trim() == "cluster traffic",
        "{dec:?}"
    );

    // Signed by the first member's CA, which every other server imports.
    let cert = dir.path().join("cluster.pem");
    let c = openssl(&[
        "pkcs12",
        "-in",
        out.join("st2/cluster.p12").to_str().unwrap(),
        "-nokeys",
        "-clcerts",
        "-passin",
        &format!("pass:{}", pass(&out, "st2")),
    ]);
    fs::write(&cert, &c.stdout).unwrap();
    support::openssl::verify(&out.join("st3/peer-signers.pem"), None, &cert, &[]).assert_success();
    support::openssl::verify(&out.join("st1/own-signer.pem"), None, &cert, &[]).assert_success();
}

/// The password an IBM stash (v1) holds: each byte XOR 0xF5, up to the first NUL.
fn unstash(path: &Path) -> String {
    fs::read(path)
        .unwrap()
        .iter()
        .map(|b| b ^ 0xF5)
        .take_while(|b| *b != 0)
        .map(char::from)
        .collect()
}

#[test]
fn ibm_plugin_keyring_holds_exactly_the_routed_members_signers() {
    let dir = tempdir();
    let outsider = dir.path().join("outsider");
    run(certmesh()
        .arg("--home")
        .arg(&outsider)
        .args(["ca", "init", "--name", "Outside CA"]))
    .assert_success();
    let manifest = dir.path().join("cluster.toml");
    fs::write(
        &manifest,
        r#"name = "pfs"
trust = "mesh"
[defaults]
profile = "liberty"
[[extra_trust]]
name = "outside"
cert = "outsider/ca/root/cert.pem"
[[member]]
name = "ihs"
dns = ["ihs.example.com"]
profile = "ibm-http-server"
[member.deploy]
host = "ihs.example.com"
dir = "/opt/IBM/HTTPServer/ssl"
[[member]]
name = "pfs1"
dns = ["pfs1.example.com"]
[[member]]
name = "pfs2"
dns = ["pfs2.example.com"]
"#,
    )
    .unwrap();
    let out = dir.path().join("out");
    apply(&manifest, &out, &[]).assert_success();
    let ihs = out.join("ihs");
    let pw = unstash(&ihs.join("plugin-key.sth"));
    assert_eq!(pw, pass(&out, "ihs"));
    let fp = |p: PathBuf| {
        openssl(&[
            "x509",
            "-in",
            p.to_str().unwrap(),
            "-noout",
            "-fingerprint",
            "-sha256",
        ])
        .stdout
        .trim()
        .rsplit('=')
        .next()
        .unwrap()
        .to_string()
    };
    let mut want = vec![
        fp(out.join("pki/signers/pfs1/ca/root/cert.pem")),
        fp(out.join("pki/signers/pfs2/ca/root/cert.pem")),
    ];
    want.sort();
    // keytool: exactly the two PFS signers, as trusted entries.
    let e = entries(&ihs.join("plugin-key.p12"), "PKCS12", &pw);
    let mut got: Vec<String> = e.iter().map(|(_, _, f)| f.clone()).collect();
    got.sort();
    assert_eq!(got, want, "{e:?}");
    assert!(e.iter().all(|(_, k, _)| k == "trustedCertEntry"), "{e:?}");
    // openssl: the same two certificates.
    let certs = openssl(&[
        "pkcs12",
        "-in",
        ihs.join("plugin-key.p12").to_str().unwrap(),
        "-nokeys",
        "-passin",
        &format!("pass:{pw}"),
    ]);
    certs.assert_success();
    assert_eq!(certs.stdout.matches("BEGIN CERTIFICATE").count(), 2);
    assert!(!certs.stdout.contains("Outside CA"), "{certs:?}");
    let xml = fs::read_to_string(ihs.join("plugin-cfg-keyring.xml")).unwrap();
    assert!(
        xml.contains(
            r#"<Property Name="keyring" Value="/opt/IBM/HTTPServer/ssl/plugin-key.p12"/>"#
        ) && xml.contains(
            r#"<Property Name="stashfile" Value="/opt/IBM/HTTPServer/ssl/plugin-key.sth"/>"#
        ),
        "{xml}"
    );
}

/// The wso2-carbon profile as it was before shared identities: one key per node in
/// wso2carbon.jks, used for every purpose.
const OLD_WSO2: &str = r#"name = "wso2-carbon"
description = "before shared identities"
cert_profile = "peer"
data_encipherment = true
[[file]]
path = "wso2carbon.jks"
content = "jks-keystore"
alias = "wso2carbon"
[[file]]
path = "client-truststore.jks"
content = "jks-truststore"
[[file]]
path = "deployment.toml"
content = "wso2-deployment-toml"
"#;

#[test]
fn an_old_output_directory_migrates_only_by_a_deliberate_step() {
    let dir = tempdir();
    let old_profiles = dir.path().join("old-profiles");
    fs::create_dir(&old_profiles).unwrap();
    fs::write(old_profiles.join("wso2-carbon.toml"), OLD_WSO2).unwrap();
    let manifest = dir.path().join("cluster.toml");
    fs::write(
        &manifest,
        WSO2.replace(
            "[defaults]\nprofile = \"wso2-carbon\"",
            "[defaults]\nprofile = \"wso2-carbon\"\nkey = \"rsa2048\"",
        )
        .replace(
            "[[shared]]\nidentity = \"primary\"\ndns = [\"is.example.com\"]\n",
            "",
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    apply(
        &manifest,
        &out,
        &["--profiles", old_profiles.to_str().unwrap()],
    )
    .assert_success();
    let (n1, n2) = (out.join("is-node1"), out.join("is-node2"));
    let (p1, p2) = (pass(&out, "is-node1"), pass(&out, "is-node2"));
    // Node1 encrypted data with its own key, as the old files made it do.
    let enc = product_crypto(
        "encrypt",
        "JKS",
        &n1.join("wso2carbon.jks"),
        &p1,
        "wso2carbon",
        "node1 data",
    );
    enc.assert_success();
    let ct = enc.stdout.trim().to_string();

    // The plan says what would change and why; apply refuses and changes nothing.
    let before = snapshot(&out);
    let plan = run(certmesh()
        .args(["cluster", "plan"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out));
    plan.assert_success();
    assert!(
        plan.stdout.contains("blocked wso2carbon.jks")
            && plan.stdout.contains("now holds identity 'primary'")
            && plan.stdout.contains("blocked internal.jks")
            && plan.stdout.contains("--adopt-key primary=MEMBER"),
        "{plan:?}"
    );
    let r = apply(&manifest, &out, &[]);
    assert_eq!(r.status, 1, "{r:?}");
    assert!(
        r.stderr.contains("wso2carbon.jks") && r.stderr.contains("--rekey-identity primary"),
        "{r:?}"
    );
    let mut after = snapshot(&out);
    after.remove(Path::new(".lock"));
    let mut before = before;
    before.remove(Path::new(".lock"));
    assert_eq!(after, before, "a refused migration writes nothing");

    // The deliberate step: the cluster adopts node1's key for both identities.
    let r = apply(
        &manifest,
        &out,
        &[
            "--adopt-key",
            "primary=is-node1",
            "--adopt-key",
            "internal=is-node1",
        ],
    );
    r.assert_success();
    assert!(r.stdout.contains("adopted key"), "{r:?}");
    for (store, pw) in [
        (n2.join("wso2carbon.jks"), &p2),
        (n2.join("internal.jks"), &p2),
        (n1.join("wso2carbon.jks"), &p1),
    ] {
        let d = product_crypto("decrypt", "JKS", &store, pw, "wso2carbon", &ct);
        assert!(d.success() && d.stdout.trim() == "node1 data", "{d:?}");
    }
    // Migrated: later runs need no flag and change nothing.
    let r = apply(&manifest, &out, &[]);
    assert!(r.success() && r.stdout.contains("nothing to do"), "{r:?}");
}
