//! Cluster profiles for Java and IBM products: PKCS#12 keystores and truststores that
//! keytool and a Java TLS client accept, IHS stash files, Liberty's server.xml, Axway's
//! signer exchange, and keystores rewritten only when what they hold changes.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use support::java::trust_client;
use support::nginx::Nginx;
use support::openssl::openssl;
use support::{certmesh, cluster_apply, mode, run, tempdir, Run};

const MANIFEST: &str = r#"name = "javaland"
trust = "mesh"
[defaults]
profile = "java-generic"
[[member]]
name = "web"
dns = ["web.cluster.test"]
ip = ["127.0.0.1"]
profile = "nginx"
[[member]]
name = "app"
dns = ["app.cluster.test"]
[[member]]
name = "Pfs1"
dns = ["pfs1.cluster.test"]
profile = "liberty"
[[member]]
name = "ihs"
dns = ["ihs.cluster.test"]
profile = "ibm-http-server"
[[member]]
name = "st1"
dns = ["st1.cluster.test"]
profile = "securetransport"
"#;

fn apply(manifest: &Path, out: &Path) -> Run {
    cluster_apply(manifest, out)
}

fn keytool_list(store: &Path, pass: &str) -> String {
    let o = Command::new("keytool")
        .args(["-list", "-v", "-storetype", "PKCS12", "-keystore"])
        .arg(store)
        .args(["-storepass", pass])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "keytool: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn mtimes(dir: &Path) -> BTreeMap<PathBuf, SystemTime> {
    support::snapshot(dir)
        .into_keys()
        .filter(|k| k.file_name().is_none_or(|n| n != ".lock"))
        .map(|k| {
            let t = fs::metadata(dir.join(&k)).unwrap().modified().unwrap();
            (k, t)
        })
        .collect()
}

#[test]
fn java_and_ibm_profiles_work_with_their_consumers() {
    let dir = tempdir();
    let manifest = dir.path().join("cluster.toml");
    fs::write(&manifest, MANIFEST).unwrap();
    let out = dir.path().join("out");
    apply(&manifest, &out).assert_success();
    let pass = |m: &str| {
        fs::read_to_string(out.join(m).join("keystore.pass"))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(mode(&out.join("app/keystore.pass")), 0o600);

    // java-generic: keytool sees one key entry with its chain, and five trusted signers.
    let ks = keytool_list(&out.join("app/keystore.p12"), &pass("app"));
    assert!(
        ks.contains("Entry type: PrivateKeyEntry") && ks.contains("Certificate chain length: 2"),
        "{ks}"
    );
    let ts = keytool_list(&out.join("app/truststore.p12"), &pass("app"));
    assert_eq!(
        ts.matches("Entry type: trustedCertEntry").count(),
        5,
        "{ts}"
    );

    // A Java client with app's truststore trusts web (served by nginx with web's files),
    // checking the host name; a truststore without web's signer does not.
    let nginx = Nginx::serve(&out.join("web/fullchain.pem"), &out.join("web/privkey.pem"));
    let client = |store: &Path, pw: &str| {
        trust_client("PKCS12", store, pw, nginx.port(), "web.cluster.test")
    };
    let r = client(&out.join("app/truststore.p12"), &pass("app"));
    assert!(
        r.success() && r.stdout.contains("trusted CN=web.cluster.test"),
        "{r:?}"
    );
    let stranger = dir.path().join("stranger");
    run(certmesh()
        .arg("--home")
        .arg(&stranger)
        .args(["ca", "init", "--name", "Stranger"]))
    .assert_success();
    let lonely = dir.path().join("lonely.p12");
    run(certmesh()
        .args(["export", "p12", "--trust"])
        .arg(stranger.join("ca/root/cert.pem"))
        .arg("--out")
        .arg(&lonely)
        .args(["--pass", "env:P"])
        .env("P", "lonely-pass"))
    .assert_success();
    let r = client(&lonely, "lonely-pass");
    assert!(
        !r.success(),
        "a truststore without web's signer must fail: {r:?}"
    );

    // IBM HTTP Server: lower-case label, legacy encryption, and a stash that decodes to
    // the keystore password (XOR 0xF5 up to the NUL).
    let ihs = keytool_list(&out.join("ihs/key.p12"), &pass("ihs"));
    assert!(ihs.contains("Alias name: ihs"), "{ihs}");
    let info = openssl(&[
        "pkcs12",
        "-in",
        out.join("ihs/key.p12").to_str().unwrap(),
        "-info",
        "-noout",
        "-passin",
        &format!("pass:{}", pass("ihs")),
    ]);
    assert!(
        format!("{}{}", info.stdout, info.stderr).contains("pbeWithSHA1And3-KeyTripleDES-CBC"),
        "{info:?}"
    );
    let sth = fs::read(out.join("ihs/key.sth")).unwrap();
    assert_eq!(sth.len(), 129);
    let decoded: Vec<u8> = sth
        .iter()
        .map(|b| b ^ 0xF5)
        .take_while(|b| *b != 0)
        .collect();
    assert_eq!(String::from_utf8(decoded).unwrap(), pass("ihs"));
    assert_eq!(mode(&out.join("ihs/key.sth")), 0o600);

    // Liberty: the {xor} password in the snippet is the keystore password; trust.p12 loads.
    let xml = fs::read_to_string(out.join("Pfs1/certmesh-ssl.xml")).unwrap();
    let enc = xml
        .split("password=\"{xor}")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let o = Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut o = o;
    use std::io::Write;
    o.stdin.take().unwrap().write_all(enc.as_bytes()).unwrap();
    let bytes = o.wait_with_output().unwrap().stdout;
    let plain: String = bytes.iter().map(|b| (b ^ 0x5F) as char).collect();
    assert_eq!(plain, pass("Pfs1"));
    assert!(
        xml.contains("location=\"key.p12\"") && xml.contains("location=\"trust.p12\""),
        "{xml}"
    );
    assert!(keytool_list(&out.join("Pfs1/trust.p12"), &pass("Pfs1")).contains("trustedCertEntry"));

    // SecureTransport: the cluster .p12 (legacy) and the other four members' signers.
    let peers = fs::read_to_string(out.join("st1/peer-signers.pem")).unwrap();
    assert_eq!(peers.matches("BEGIN CERTIFICATE").count(), 4);
    assert!(!peers.contains(&fs::read_to_string(out.join("st1/own-signer.pem")).unwrap()));
    openssl(&[
        "pkcs12",
        "-in",
        out.join("st1/cluster.p12").to_str().unwrap(),
        "-noout",
        "-passin",
        &format!("pass:{}", pass("st1")),
    ])
    .assert_success();

    // Keystores are re-encoded only when what they hold changes.
    let before = mtimes(&out);
    let r = apply(&manifest, &out);
    assert!(r.stdout.contains("nothing to do"), "{r:?}");
    assert_eq!(mtimes(&out), before);
    fs::write(
        &manifest,
        format!("{MANIFEST}[[member]]\nname = \"app2\"\ndns = [\"app2.cluster.test\"]\n"),
    )
    .unwrap();
    apply(&manifest, &out).assert_success();
    let after = mtimes(&out);
    let changed: Vec<String> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(v))
        .map(|(k, _)| k.display().to_string())
        .filter(|k| !k.starts_with("app2/") && !k.starts_with("pki/signers/app2/"))
        .collect();
    for k in &changed {
        let ok = [
            "truststore.p12",
            "trust.pem",
            "trust.p12",
            "ca-bundle.pem",
            "peer-signers.pem",
            // IHS's plug-in keyring holds the signers of the members it routes to.
            "plugin-key.p12",
            ".certmesh-state.json",
        ]
        .iter()
        .any(|t| k.ends_with(t));
        assert!(
            ok,
            "{k} changed though only the trusted signers did: {changed:?}"
        );
    }
    assert!(
        changed.contains(&"app/truststore.p12".to_string()),
        "{changed:?}"
    );
}

#[test]
fn mesh_truststores_hold_exactly_the_signers_and_extra_trust_goes_where_named() {
    let dir = tempdir();
    // A partner CA from outside the cluster, trusted by one member only.
    let partner = dir.path().join("partner");
    run(certmesh()
        .arg("--home")
        .arg(&partner)
        .args(["ca", "init", "--name", "Partner CA"]))
    .assert_success();
    fs::copy(
        partner.join("ca/root/cert.pem"),
        dir.path().join("partner-ca.pem"),
    )
    .unwrap();
    let manifest = dir.path().join("cluster.toml");
    fs::write(
        &manifest,
        r#"name = "mesh3"
trust = "mesh"
[[extra_trust]]
name = "partner"
cert = "partner-ca.pem"
members = ["java1"]
[[member]]
name = "carbon1"
dns = ["carbon1.cluster.test"]
profile = "wso2-carbon"
[[member]]
name = "java1"
dns = ["java1.cluster.test"]
profile = "java-generic"
[[member]]
name = "web1"
dns = ["web1.cluster.test"]
profile = "nginx"
"#,
    )
    .unwrap();
    let out = dir.path().join("out");
    apply(&manifest, &out).assert_success();
    let pass = |m: &str| {
        fs::read_to_string(out.join(m).join("keystore.pass"))
            .unwrap()
            .trim()
            .to_string()
    };
    let signers: Vec<String> = ["carbon1", "java1", "web1"]
        .iter()
        .map(|m| {
            let p = out.join("pki/signers").join(m).join("ca/root/cert.pem");
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
            .split('=')
            .nth(1)
            .unwrap()
            .to_string()
        })
        .collect();
    let fingerprints = |listing: &str| -> Vec<String> {
        let mut v: Vec<String> = listing
            .lines()
            .filter_map(|l| l.trim().strip_prefix("SHA256: ").map(str::to_string))
            .collect();
        v.sort();
        v
    };
    let mut want = signers.clone();
    want.sort();

    // JKS (wso2-carbon): exactly the three signers.
    let jks = keytool(&[
        "-list",
        "-v",
        "-keystore",
        out.join("carbon1/client-truststore.jks").to_str().unwrap(),
        "-storepass",
        &pass("carbon1"),
    ]);
    assert_eq!(fingerprints(&jks), want, "{jks}");
    assert_eq!(jks.matches("trustedCertEntry").count(), 3);
    // PKCS#12 (java-generic): the three signers and the partner CA named for it.
    let p12 = keytool_list(&out.join("java1/truststore.p12"), &pass("java1"));
    let partner_fp = openssl(&[
        "x509",
        "-in",
        dir.path().join("partner-ca.pem").to_str().unwrap(),
        "-noout",
        "-fingerprint",
        "-sha256",
    ])
    .stdout
    .trim()
    .split('=')
    .nth(1)
    .unwrap()
    .to_string();
    let mut want_java = want.clone();
    want_java.push(partner_fp.clone());
    want_java.sort();
    assert_eq!(fingerprints(&p12), want_java, "{p12}");
    // PEM (nginx): the three signers, not the partner.
    let pem = fs::read_to_string(out.join("web1/trust.pem")).unwrap();
    assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 3);
    assert!(!pem.contains(&fs::read_to_string(dir.path().join("partner-ca.pem")).unwrap()));

    // Every member's certificate verifies against every other member's bundle.
    for m in ["carbon1", "java1", "web1"] {
        let leaf = out
            .join("pki/signers")
            .join(m)
            .join("issued")
            .join(m)
            .join("cert.pem");
        let r = support::openssl::verify(
            &out.join("web1/trust.pem"),
            None,
            &leaf,
            &["-verify_hostname", &format!("{m}.cluster.test")],
        );
        assert!(r.success(), "{m}: {r:?}");
    }
}

fn keytool(args: &[&str]) -> String {
    let o = Command::new("keytool").args(args).output().unwrap();
    assert!(
        o.status.success(),
        "keytool {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}
