//! The wso2-carbon profile: wso2carbon.jks as Carbon expects it, and a client-truststore.jks
//! merged into the one the product ships, that a Java client uses to reach a member.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use support::java::trust_client;
use support::nginx::Nginx;
use support::openssl::openssl;
use support::{certmesh, mode, run, tempdir};

const CACERTS: &str = "/etc/ssl/certs/java/cacerts";

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

/// alias -> SHA-256 fingerprint, from `keytool -list -v`.
fn entries(store: &Path, pass: &str) -> Vec<(String, String)> {
    let text = keytool(&[
        "-list",
        "-v",
        "-keystore",
        store.to_str().unwrap(),
        "-storepass",
        pass,
    ]);
    let mut out = Vec::new();
    let mut alias = String::new();
    for line in text.lines() {
        if let Some(a) = line.strip_prefix("Alias name: ") {
            alias = a.to_string();
        }
        if let Some(fp) = line.trim().strip_prefix("SHA256: ") {
            if !alias.is_empty() {
                out.push((alias.clone(), fp.to_string()));
                alias.clear();
            }
        }
    }
    out
}

#[test]
fn wso2_carbon_keystores_work_for_keytool_and_java() {
    let dir = tempdir();
    // The product's shipped client-truststore.jks: Debian's Java cacerts stands in for it.
    let shipped = dir.path().join("client-truststore.jks");
    fs::copy(CACERTS, &shipped).unwrap();
    let shipped_entries = entries(&shipped, "changeit");
    assert!(shipped_entries.len() > 100, "{}", shipped_entries.len());
    let manifest = dir.path().join("cluster.toml");
    fs::write(
        &manifest,
        r#"name = "wso2-is"
[ca]
name = "WSO2 IS Cluster CA"
[[member]]
name = "lb"
dns = ["lb.cluster.test"]
ip = ["127.0.0.1"]
profile = "nginx"
[[member]]
name = "is-node1"
dns = ["is1.cluster.test"]
profile = "wso2-carbon"
base_truststore = "client-truststore.jks"
base_truststore_pass = "env:SHIPPED_PASS"
"#,
    )
    .unwrap();
    let out = dir.path().join("out");
    let apply = || {
        run(certmesh()
            .args(["cluster", "apply"])
            .arg(&manifest)
            .arg("--out")
            .arg(&out)
            .env("SHIPPED_PASS", "changeit"))
    };
    apply().assert_success();
    let node = out.join("is-node1");
    let pass = fs::read_to_string(node.join("keystore.pass"))
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(mode(&node.join("wso2carbon.jks")), 0o600);

    // wso2carbon.jks: one key entry under wso2carbon, whose key password is the store's.
    let list = keytool(&[
        "-list",
        "-v",
        "-keystore",
        node.join("wso2carbon.jks").to_str().unwrap(),
        "-storepass",
        &pass,
    ]);
    assert!(
        list.contains("Alias name: wso2carbon")
            && list.contains("Entry type: PrivateKeyEntry")
            && list.contains("Keystore type: JKS"),
        "{list}"
    );
    let p12 = dir.path().join("check.p12");
    keytool(&[
        "-importkeystore",
        "-noprompt",
        "-srckeystore",
        node.join("wso2carbon.jks").to_str().unwrap(),
        "-srcstorepass",
        &pass,
        "-srcalias",
        "wso2carbon",
        "-srckeypass",
        &pass,
        "-destkeystore",
        p12.to_str().unwrap(),
        "-deststoretype",
        "PKCS12",
        "-deststorepass",
        &pass,
    ]);
    // Carbon encrypts with its key: the certificate allows it.
    let cert = dir.path().join("node.pem");
    keytool(&[
        "-exportcert",
        "-rfc",
        "-alias",
        "wso2carbon",
        "-keystore",
        node.join("wso2carbon.jks").to_str().unwrap(),
        "-storepass",
        &pass,
        "-file",
        cert.to_str().unwrap(),
    ]);
    let ku = openssl(&[
        "x509",
        "-in",
        cert.to_str().unwrap(),
        "-noout",
        "-ext",
        "keyUsage",
    ])
    .stdout;
    // Carbon encrypts with the key: dataEncipherment on an RSA key, keyAgreement on an EC
    // key (RFC 8813 forbids it dataEncipherment).
    let rsa = openssl(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-text"])
        .stdout
        .contains("rsaEncryption");
    let encipherment = if rsa {
        ku.contains("Data Encipherment")
    } else {
        ku.contains("Key Agreement") && !ku.contains("Data Encipherment")
    };
    assert!(encipherment && ku.contains("Digital Signature"), "{ku}");

    // client-truststore.jks: every shipped entry as it was, plus the cluster CA.
    let merged = entries(&node.join("client-truststore.jks"), &pass);
    assert_eq!(merged.len(), shipped_entries.len() + 1);
    for e in &shipped_entries {
        assert!(merged.contains(e), "shipped entry {e:?} lost or changed");
    }
    let toml = fs::read_to_string(node.join("deployment.toml")).unwrap();
    assert!(
        toml.contains("file_name = \"wso2carbon.jks\"")
            && toml.contains("type = \"JKS\"")
            && toml.contains("alias = \"wso2carbon\""),
        "{toml}"
    );
    assert_eq!(mode(&node.join("deployment.toml")), 0o600);

    // A Java client with the merged truststore trusts the cluster's load balancer.
    let nginx = Nginx::serve(&out.join("lb/fullchain.pem"), &out.join("lb/privkey.pem"));
    let r = trust_client(
        "JKS",
        &node.join("client-truststore.jks"),
        &pass,
        nginx.port(),
        "lb.cluster.test",
    );
    assert!(
        r.success() && r.stdout.contains("trusted CN=lb.cluster.test"),
        "{r:?}"
    );
    // The shipped store alone does not.
    let r = trust_client("JKS", &shipped, "changeit", nginx.port(), "lb.cluster.test");
    assert!(!r.success(), "{r:?}");

    let r = apply();
    assert!(r.stdout.contains("nothing to do"), "{r:?}");
}
