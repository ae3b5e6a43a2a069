//! `certmesh sign`: CSRs made by openssl and keytool.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::openssl::{openssl, verify};
use support::{cm, snapshot, tempdir};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn store(dir: &Path, intermediate: bool) -> PathBuf {
    let home = dir.join("pki");
    cm(&home, &["ca", "init", "--name", "Sign CA"]).assert_success();
    if intermediate {
        cm(&home, &["ca", "intermediate"]).assert_success();
    }
    home
}

fn openssl_csr(dir: &Path, name: &str, newkey: &[&str], subj: &str, extra: &[&str]) -> PathBuf {
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let mut args = vec![
        "req",
        "-new",
        "-nodes",
        "-keyout",
        s(&key),
        "-out",
        s(&csr),
        "-subj",
        subj,
    ];
    args.extend_from_slice(newkey);
    args.extend_from_slice(extra);
    openssl(&args).assert_success();
    csr
}

#[test]
fn signs_an_openssl_csr_keeping_only_its_names() {
    let dir = tempdir();
    let home = store(dir.path(), true);
    let csr = openssl_csr(
        dir.path(),
        "web",
        &["-newkey", "rsa:2048"],
        "/C=US/O=Ignored Org/CN=web.example.com",
        &["-addext", "subjectAltName=DNS:web.example.com,DNS:www.example.com,IP:10.9.8.7,email:a@example.com", "-addext", "keyUsage=critical,keyCertSign"],
    );
    let out = dir.path().join("web.crt");
    let r = cm(&home, &["sign", s(&csr), "--out", s(&out), "--fullchain"]);
    r.assert_success();
    assert!(
        r.stderr.contains("email"),
        "dropped email SAN is reported: {r:?}"
    );
    let text = openssl(&["x509", "-in", s(&out), "-noout", "-text"]).stdout;
    assert!(
        text.contains("DNS:web.example.com, DNS:www.example.com, IP Address:10.9.8.7"),
        "{text}"
    );
    assert!(!text.contains("a@example.com"), "{text}");
    assert!(
        !text.contains("Certificate Sign"),
        "CSR's keyUsage must not be copied: {text}"
    );
    assert!(text.contains("Subject: CN = web.example.com"), "{text}");
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
    // --fullchain: leaf then intermediate; verify against the root.
    assert_eq!(
        fs::read_to_string(&out)
            .unwrap()
            .matches("BEGIN CERTIFICATE")
            .count(),
        2
    );
    let root = home.join("ca/root/cert.pem");
    let r = verify(
        &root,
        Some(&out),
        &out,
        &[
            "-verify_hostname",
            "www.example.com",
            "-purpose",
            "sslserver",
        ],
    );
    assert!(r.success(), "{r:?}");
    verify(&root, Some(&out), &out, &["-verify_ip", "10.9.8.7"]).assert_success();
    // The certificate carries the CSR's key.
    let a = openssl(&["req", "-in", s(&csr), "-noout", "-pubkey"]).stdout;
    let b = openssl(&["x509", "-in", s(&out), "-noout", "-pubkey"]).stdout;
    assert_eq!(a, b);
    // Recorded in the inventory under the CN.
    let list = cm(&home, &["list", "--json"]).stdout;
    assert!(list.contains("\"name\": \"web.example.com\""), "{list}");
}

#[test]
fn signs_a_keytool_csr_with_only_a_cn() {
    let dir = tempdir();
    let home = store(dir.path(), false);
    let ks = dir.path().join("node.p12");
    let csr = dir.path().join("node.csr");
    let kt = |args: &[&str]| {
        let o = Command::new("keytool")
            .args(args)
            .output()
            .expect("keytool runs");
        assert!(
            o.status.success(),
            "keytool {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    kt(&[
        "-genkeypair",
        "-alias",
        "wso2carbon",
        "-keyalg",
        "RSA",
        "-keysize",
        "2048",
        "-dname",
        "CN=is-node1.example.com, OU=IS, O=WSO2",
        "-keystore",
        s(&ks),
        "-storepass",
        "changeit",
        "-storetype",
        "PKCS12",
        "-validity",
        "30",
    ]);
    kt(&[
        "-certreq",
        "-alias",
        "wso2carbon",
        "-keystore",
        s(&ks),
        "-storepass",
        "changeit",
        "-file",
        s(&csr),
    ]);
    assert!(fs::read_to_string(&csr)
        .unwrap()
        .contains("NEW CERTIFICATE REQUEST"));
    let out = dir.path().join("node.crt");
    let r = cm(
        &home,
        &["sign", s(&csr), "--out", s(&out), "--profile", "peer"],
    );
    r.assert_success();
    assert!(r.stderr.contains("using its CN"), "{r:?}");
    let root = home.join("ca/root/cert.pem");
    verify(
        &root,
        None,
        &out,
        &[
            "-verify_hostname",
            "is-node1.example.com",
            "-purpose",
            "sslclient",
        ],
    )
    .assert_success();
    // keytool accepts the reply into the keystore (the chain is complete with the root).
    let reply = dir.path().join("reply.pem");
    fs::write(
        &reply,
        format!(
            "{}{}",
            fs::read_to_string(&out).unwrap(),
            fs::read_to_string(&root).unwrap()
        ),
    )
    .unwrap();
    kt(&[
        "-importcert",
        "-noprompt",
        "-alias",
        "wso2carbon",
        "-keystore",
        s(&ks),
        "-storepass",
        "changeit",
        "-file",
        s(&reply),
    ]);
}

#[test]
fn dangerous_or_broken_requests_are_refused_and_nothing_is_written() {
    let dir = tempdir();
    let home = store(dir.path(), false);
    let d = dir.path();
    let cases: Vec<(PathBuf, &str)> = vec![
        (
            openssl_csr(
                d,
                "ca",
                &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
                "/CN=sub.example.com",
                &["-addext", "basicConstraints=critical,CA:TRUE"],
            ),
            "CA:TRUE",
        ),
        (
            openssl_csr(
                d,
                "weak",
                &["-newkey", "rsa:1024"],
                "/CN=weak.example.com",
                &[],
            ),
            "RSA-1024",
        ),
        (
            openssl_csr(
                d,
                "sha1",
                &["-newkey", "rsa:2048", "-sha1"],
                "/CN=sha1.example.com",
                &[],
            ),
            "sha1WithRSAEncryption",
        ),
        (
            openssl_csr(d, "noname", &["-newkey", "rsa:2048"], "/O=Nobody", &[]),
            "--dns",
        ),
    ];
    // A CSR whose signature does not verify: flip a byte inside the signed body.
    let good = openssl_csr(
        d,
        "tamper",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/CN=tamper.example.com",
        &[],
    );
    let der = d.join("tamper.der");
    openssl(&["req", "-in", s(&good), "-outform", "DER", "-out", s(&der)]).assert_success();
    let mut bytes = fs::read(&der).unwrap();
    let pos = bytes.windows(6).position(|w| w == b"tamper").unwrap();
    bytes[pos] = b'T';
    fs::write(&der, &bytes).unwrap();
    let mut cases = cases;
    cases.push((der, "signature does not verify"));
    let garbage = d.join("garbage.csr");
    fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    )
    .unwrap();
    cases.push((garbage, "garbage.csr"));

    for (csr, expect) in cases {
        let before = snapshot(&home);
        let out = d.join("out.crt");
        let r = cm(&home, &["sign", s(&csr), "--out", s(&out)]);
        assert_ne!(r.status, 0, "{csr:?}: {r:?}");
        assert!(
            r.stderr.contains(expect),
            "{csr:?} should mention {expect}: {r:?}"
        );
        assert_eq!(r.stderr.lines().count(), 1, "one line: {r:?}");
        assert!(!r.stderr.contains("panicked"));
        assert!(!out.exists(), "{csr:?}: output written");
        let mut after = snapshot(&home);
        after.remove(Path::new(".lock"));
        let mut before = before;
        before.remove(Path::new(".lock"));
        assert_eq!(after, before, "{csr:?}: store changed");
    }

    // --allow-weak signs the RSA-1024 request, with a warning.
    let out = d.join("weak.crt");
    let r = cm(
        &home,
        &[
            "sign",
            s(&d.join("weak.csr")),
            "--out",
            s(&out),
            "--allow-weak",
        ],
    );
    r.assert_success();
    assert!(
        r.stderr.contains("warning") && r.stderr.contains("RSA-1024"),
        "{r:?}"
    );
    // An existing --out is not overwritten without --force.
    let before = fs::read(&out).unwrap();
    let r = cm(
        &home,
        &[
            "sign",
            s(&d.join("weak.csr")),
            "--out",
            s(&out),
            "--allow-weak",
        ],
    );
    assert_eq!(r.status, 1);
    assert_eq!(fs::read(&out).unwrap(), before);
}

#[test]
fn signing_respects_name_constraints() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(
        &home,
        &["ca", "init", "--name", "C", "--permit-dns", "example.com"],
    )
    .assert_success();
    let csr = openssl_csr(
        dir.path(),
        "x",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/CN=x.example.org",
        &["-addext", "subjectAltName=DNS:x.example.org"],
    );
    let r = cm(
        &home,
        &["sign", s(&csr), "--out", s(&dir.path().join("x.crt"))],
    );
    assert_eq!(r.status, 1);
    assert!(
        r.stderr.contains("outside the CA's permitted names"),
        "{r:?}"
    );
}
