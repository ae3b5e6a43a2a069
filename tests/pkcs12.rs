//! `export p12`, `export pem` and `inspect` of PKCS#12 files, checked with the real
//! consumers: openssl 3, keytool and a Java program (Java 17), and Python `cryptography`.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::openssl::{handshake_ok, openssl, s_client};
use support::{certmesh, mode, run, snapshot, tempdir, Run};

const PASS: &str = "p12-Secret 42";
const MODES: [&str; 2] = ["modern", "legacy"];

fn cm(home: &Path, args: &[&str]) -> Run {
    run(certmesh()
        .arg("--home")
        .arg(home)
        .args(args)
        .env("P12_PASS", PASS))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A store with root + intermediate and one issued leaf `n1`.
fn store(dir: &Path, key: &str) -> PathBuf {
    let home = dir.join("pki");
    cm(&home, &["ca", "init", "--name", "P12 Root"]).assert_success();
    cm(&home, &["ca", "intermediate", "--name", "P12 Issuing"]).assert_success();
    cm(
        &home,
        &["issue", "n1", "--dns", "n1.example.com", "--key", key],
    )
    .assert_success();
    home
}

fn issued(home: &Path, file: &str) -> PathBuf {
    home.join("issued").join("n1").join(file)
}

/// The base64 bodies of every certificate in PEM text, as a set.
fn cert_blocks(text: &str) -> BTreeSet<String> {
    text.split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .map(|b| {
            b.split("-----END CERTIFICATE-----")
                .next()
                .unwrap()
                .split_whitespace()
                .collect()
        })
        .collect()
}

/// `openssl pkey -pubout` of a key file (PEM text of the public key).
fn public_key_of(key: &Path) -> String {
    openssl(&["pkey", "-in", s(key), "-pubout"])
        .assert_success()
        .stdout
        .clone()
}

fn openssl_p12(args: &[&str]) -> Run {
    run(Command::new("openssl")
        .arg("pkcs12")
        .args(args)
        .args(["-passin", "env:P12_PASS"])
        .env("P12_PASS", PASS))
}

fn keytool_list(store: &Path) -> Run {
    run(Command::new("keytool")
        .args(["-list", "-v", "-storetype", "PKCS12", "-keystore", s(store)])
        .args(["-storepass:env", "P12_PASS"])
        .env("P12_PASS", PASS))
}

const JAVA_SRC: &str = r#"
import java.io.*;
import java.net.InetAddress;
import java.security.KeyStore;
import java.util.Collections;
import javax.net.ssl.*;

public class P12Check {
    public static void main(String[] a) throws Exception {
        char[] pw = System.getenv("P12_PASS").toCharArray();
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (InputStream in = new FileInputStream(a[1])) { ks.load(in, pw); }
        if (a[0].equals("list")) {
            System.out.println("size " + ks.size());
            for (String al : Collections.list(ks.aliases())) {
                String kind = ks.isKeyEntry(al) ? "key" : ks.isCertificateEntry(al) ? "cert" : "other";
                int chain = ks.isKeyEntry(al) ? ks.getCertificateChain(al).length : 0;
                System.out.println(kind + " " + chain + " " + al);
            }
            return;
        }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, pw);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), null, null);
        SSLServerSocket ss = (SSLServerSocket) ctx.getServerSocketFactory()
            .createServerSocket(0, 1, InetAddress.getLoopbackAddress());
        ss.setSoTimeout(30000);
        System.out.println("port " + ss.getLocalPort());
        System.out.flush();
        try (SSLSocket sock = (SSLSocket) ss.accept()) {
            sock.startHandshake();
            System.out.println("handshake done");
            try {
                sock.getOutputStream().write("hello\n".getBytes());
                sock.getOutputStream().flush();
            } catch (IOException ignored) {
                // the client may already have gone
            }
        }
    }
}
"#;

/// The directory holding the compiled `P12Check` class, compiled once per test run.
fn java_classes() -> PathBuf {
    support::java::compiled("P12Check", JAVA_SRC)
}

fn java_list(store: &Path) -> Run {
    run(Command::new("java")
        .arg("-cp")
        .arg(java_classes())
        .args(["P12Check", "list", s(store)])
        .env("P12_PASS", PASS))
}

fn python_load(store: &Path, key: &Path, leaf: &Path) -> Run {
    const PY: &str = r#"
import os, sys
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12, load_pem_private_key
data = open(sys.argv[1], "rb").read()
key, cert, extra = pkcs12.load_key_and_certificates(data, os.environ["P12_PASS"].encode())
ref = load_pem_private_key(open(sys.argv[2], "rb").read(), None)
leaf = x509.load_pem_x509_certificate(open(sys.argv[3], "rb").read())
same = key.public_key().public_numbers() == ref.public_key().public_numbers()
print("same_key", same)
print("same_leaf", cert == leaf)
print("chain", 1 + len(extra))
"#;
    run(Command::new(support::pkilint::venv_python())
        .args(["-c", PY, s(store), s(key), s(leaf)])
        .env("P12_PASS", PASS))
}

#[test]
fn both_modes_open_in_openssl_keytool_java_and_python() {
    for key in ["p256", "rsa2048"] {
        let dir = tempdir();
        let home = store(dir.path(), key);
        for compat in MODES {
            let ctx = format!("key {key}, mode {compat}");
            let out = dir.path().join(format!("n1-{compat}.p12"));
            let started = Instant::now();
            cm(
                &home,
                &[
                    "export",
                    "p12",
                    "n1",
                    "--out",
                    s(&out),
                    "--pass",
                    "env:P12_PASS",
                    "--compat",
                    compat,
                ],
            )
            .assert_success();
            eprintln!("{ctx}: export took {:?}", started.elapsed());
            assert_eq!(mode(&out), 0o600, "{ctx}");

            // openssl: MAC and every bag decrypt; algorithms are the promised ones.
            let info = openssl_p12(&["-in", s(&out), "-info", "-noout"]);
            info.assert_success();
            let (enc, mac) = if compat == "modern" {
                (
                    "PBES2, PBKDF2, AES-256-CBC, Iteration 10000, PRF hmacWithSHA256",
                    "MAC: sha256",
                )
            } else {
                (
                    "pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 10000",
                    "MAC: sha1",
                )
            };
            assert!(info.stderr.contains(mac), "{ctx}: {info:?}");
            assert_eq!(
                info.stderr.matches(enc).count(),
                2,
                "{ctx}: keys and certs: {info:?}"
            );
            assert!(!info.stderr.contains("RC2"), "{ctx}");

            // The key and certificates openssl extracts are the originals.
            let key_out = dir.path().join(format!("key-{compat}.pem"));
            openssl_p12(&["-in", s(&out), "-nocerts", "-nodes", "-out", s(&key_out)])
                .assert_success();
            assert_eq!(
                public_key_of(&key_out),
                public_key_of(&issued(&home, "key.pem")),
                "{ctx}"
            );
            let certs = openssl_p12(&["-in", s(&out), "-nokeys"]);
            certs.assert_success();
            let mut want = cert_blocks(&fs::read_to_string(issued(&home, "cert.pem")).unwrap());
            want.extend(cert_blocks(
                &fs::read_to_string(issued(&home, "chain.pem")).unwrap(),
            ));
            assert_eq!(want.len(), 3);
            assert_eq!(cert_blocks(&certs.stdout), want, "{ctx}");
            // localKeyId pairs the key with the leaf.
            let key_text = fs::read_to_string(&key_out).unwrap();
            let key_id = key_text
                .lines()
                .find(|l| l.contains("localKeyID"))
                .unwrap_or_else(|| panic!("{ctx}: key bag without localKeyID"))
                .to_string();
            assert_eq!(
                certs.stdout.matches(key_id.trim()).count(),
                1,
                "{ctx}: exactly the leaf carries the key's localKeyID"
            );
            assert!(key_text.contains("friendlyName: n1"), "{ctx}: {key_text}");

            // keytool: one PrivateKeyEntry, leaf + intermediate + root.
            let kt = keytool_list(&out);
            kt.assert_success();
            assert!(
                kt.stdout.contains("Your keystore contains 1 entry"),
                "{ctx}: {kt:?}"
            );
            assert!(kt.stdout.contains("Alias name: n1\n"), "{ctx}: {kt:?}");
            assert!(
                kt.stdout.contains("Entry type: PrivateKeyEntry"),
                "{ctx}: {kt:?}"
            );
            assert!(
                kt.stdout.contains("Certificate chain length: 3"),
                "{ctx}: {kt:?}"
            );

            // Java's KeyStore API.
            let j = java_list(&out);
            j.assert_success();
            assert_eq!(j.stdout, "size 1\nkey 3 n1\n", "{ctx}: {j:?}");

            // Python cryptography.
            let py = python_load(&out, &issued(&home, "key.pem"), &issued(&home, "cert.pem"));
            py.assert_success();
            assert_eq!(
                py.stdout, "same_key True\nsame_leaf True\nchain 3\n",
                "{ctx}: {py:?}"
            );

            // certmesh itself names the algorithms.
            let insp = cm(&home, &["inspect", s(&out), "--pass", "env:P12_PASS"]);
            insp.assert_success();
            let (enc_name, mac_name) = if compat == "modern" {
                (
                    "PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC), 10000 iterations",
                    "HMAC-SHA256, 10000 iterations",
                )
            } else {
                (
                    "PBEWithSHA1And3-KeyTripleDES-CBC, 10000 iterations",
                    "HMAC-SHA1, 10000 iterations",
                )
            };
            assert!(
                insp.stdout.contains(&format!("MAC:           {mac_name}")),
                "{ctx}: {insp:?}"
            );
            assert!(
                insp.stdout.contains(&format!("certificates:  {enc_name}")),
                "{ctx}: {insp:?}"
            );
            assert!(
                insp.stdout.contains(&format!("keys:          {enc_name}")),
                "{ctx}: {insp:?}"
            );
            assert!(
                insp.stdout.contains("1 private key(s), 3 certificate(s)"),
                "{ctx}: {insp:?}"
            );
        }
    }
}

#[test]
fn targets_pick_the_mode() {
    let dir = tempdir();
    let home = store(dir.path(), "p256");
    for (target, mac) in [
        ("java8", "MAC: sha1"),
        ("openssl1", "MAC: sha1"),
        ("windows", "MAC: sha1"),
        ("macos", "MAC: sha1"),
        ("ibm-jdk", "MAC: sha1"),
        ("ihs", "MAC: sha1"),
        ("java11", "MAC: sha256"),
        ("java17", "MAC: sha256"),
        ("openssl3", "MAC: sha256"),
    ] {
        let out = dir.path().join(format!("{target}.p12"));
        cm(
            &home,
            &[
                "export",
                "p12",
                "n1",
                "--out",
                s(&out),
                "--pass",
                "env:P12_PASS",
                "--target",
                target,
            ],
        )
        .assert_success();
        let info = openssl_p12(&["-in", s(&out), "-info", "-noout"]);
        info.assert_success();
        assert!(info.stderr.contains(mac), "{target}: {info:?}");
    }
    let bad = cm(
        &home,
        &[
            "export",
            "p12",
            "n1",
            "--out",
            "x.p12",
            "--pass",
            "env:P12_PASS",
            "--target",
            "java5",
        ],
    );
    assert_eq!(bad.status, 2, "{bad:?}");
}

#[test]
fn java_serves_tls_with_the_exported_key() {
    let dir = tempdir();
    let home = store(dir.path(), "p256");
    let out = dir.path().join("server.p12");
    cm(
        &home,
        &[
            "export",
            "p12",
            "n1",
            "--out",
            s(&out),
            "--pass",
            "env:P12_PASS",
            "--target",
            "java17",
        ],
    )
    .assert_success();
    let mut java = Command::new("java")
        .arg("-cp")
        .arg(java_classes())
        .args(["P12Check", "serve", s(&out)])
        .env("P12_PASS", PASS)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(java.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let port: u16 = first.strip_prefix("port ").unwrap().parse().unwrap();
    let r = s_client(port, &issued(&home, "ca.pem"), "n1.example.com", &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while java.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = java.kill();
    let _ = java.wait();
    assert!(handshake_ok(&r), "{r:?}");
    assert!(lines.any(|l| l.map(|l| l == "handshake done").unwrap_or(false)));
}

#[test]
fn truststore_entries_are_trusted_certificates_in_java() {
    let dir = tempdir();
    let home = store(dir.path(), "p256");
    let chain = issued(&home, "chain.pem");
    let leaf = issued(&home, "cert.pem");
    for compat in MODES {
        let ctx = format!("mode {compat}");
        // Default aliases: the CNs.
        let out = dir.path().join(format!("trust-{compat}.p12"));
        cm(
            &home,
            &[
                "export",
                "p12",
                "--trust",
                s(&chain),
                s(&leaf),
                "--out",
                s(&out),
                "--pass",
                "env:P12_PASS",
                "--compat",
                compat,
            ],
        )
        .assert_success();
        assert_eq!(mode(&out), 0o600);
        openssl_p12(&["-in", s(&out), "-info", "-noout"]).assert_success();
        let kt = keytool_list(&out);
        kt.assert_success();
        assert!(
            kt.stdout.contains("Your keystore contains 3 entries"),
            "{ctx}: {kt:?}"
        );
        assert_eq!(
            kt.stdout.matches("Entry type: trustedCertEntry").count(),
            3,
            "{ctx}: {kt:?}"
        );
        let j = java_list(&out);
        j.assert_success();
        let mut lines: Vec<&str> = j.stdout.lines().collect();
        lines.sort();
        assert_eq!(
            lines,
            [
                "cert 0 n1.example.com",
                "cert 0 p12 issuing",
                "cert 0 p12 root",
                "size 3"
            ],
            "{ctx}: {j:?}"
        );

        // --alias A gives A, A-2, ...
        let out = dir.path().join(format!("trust-alias-{compat}.p12"));
        cm(
            &home,
            &[
                "export",
                "p12",
                "--trust",
                s(&chain),
                "--alias",
                "peer",
                "--out",
                s(&out),
                "--pass",
                "env:P12_PASS",
                "--compat",
                compat,
            ],
        )
        .assert_success();
        let j = java_list(&out);
        j.assert_success();
        let mut lines: Vec<&str> = j.stdout.lines().collect();
        lines.sort();
        assert_eq!(
            lines,
            ["cert 0 peer", "cert 0 peer-2", "size 2"],
            "{ctx}: {j:?}"
        );
        let insp = cm(&home, &["inspect", s(&out), "--pass", "env:P12_PASS"]);
        insp.assert_success();
        assert_eq!(
            insp.stdout.matches("trusted:       yes").count(),
            2,
            "{insp:?}"
        );
    }
}

#[test]
fn from_files_with_encrypted_key_chain_and_no_root() {
    let dir = tempdir();
    let home = store(dir.path(), "rsa2048");
    let enc_key = dir.path().join("enc.key");
    run(Command::new("openssl")
        .args([
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-in",
            s(&issued(&home, "key.pem")),
        ])
        .args(["-out", s(&enc_key), "-passout", "env:KP"])
        .env("KP", "keypass"))
    .assert_success();
    let out = dir.path().join("files.p12");
    let r = run(certmesh()
        .args([
            "export",
            "p12",
            "--cert",
            s(&issued(&home, "cert.pem")),
            "--key",
            s(&enc_key),
        ])
        .args([
            "--chain",
            s(&issued(&home, "chain.pem")),
            "--no-root",
            "--key-pass",
            "env:KP",
        ])
        .args(["--out", s(&out), "--pass", "env:P12_PASS"])
        .env("P12_PASS", PASS)
        .env("KP", "keypass"));
    r.assert_success();
    let kt = keytool_list(&out);
    kt.assert_success();
    assert!(kt.stdout.contains("Alias name: n1.example.com\n"), "{kt:?}");
    assert!(kt.stdout.contains("Certificate chain length: 2"), "{kt:?}");
    assert!(!kt.stdout.contains("Owner: CN=P12 Root\n"), "{kt:?}");

    // A key that belongs to another certificate: one line, nothing written.
    cm(&home, &["issue", "n2", "--dns", "n2.example.com"]).assert_success();
    let before = snapshot(dir.path());
    let bad_out = dir.path().join("bad.p12");
    let r = run(certmesh()
        .args(["export", "p12", "--cert", s(&issued(&home, "cert.pem"))])
        .args([
            "--key",
            s(&home.join("issued/n2/key.pem")),
            "--out",
            s(&bad_out),
            "--pass",
            "env:P12_PASS",
        ])
        .env("P12_PASS", PASS));
    r.assert_failure();
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    assert!(r.stderr.contains("does not match the certificate"), "{r:?}");
    assert_eq!(snapshot(dir.path()), before);

    // An existing file is kept unless --force.
    let r = run(certmesh()
        .args([
            "export",
            "p12",
            "--cert",
            s(&issued(&home, "cert.pem")),
            "--key",
            s(&issued(&home, "key.pem")),
        ])
        .args(["--out", s(&out), "--pass", "env:P12_PASS"])
        .env("P12_PASS", PASS));
    r.assert_failure();
    assert!(r.stderr.contains("already exists"), "{r:?}");
    assert_eq!(snapshot(dir.path()), before);
    let r = run(certmesh()
        .args([
            "export",
            "p12",
            "--cert",
            s(&issued(&home, "cert.pem")),
            "--key",
            s(&issued(&home, "key.pem")),
        ])
        .args([
            "--out",
            s(&out),
            "--pass",
            "env:P12_PASS",
            "--force",
            "--alias",
            "Node One",
        ])
        .env("P12_PASS", PASS));
    r.assert_success();
    assert!(keytool_list(&out).stdout.contains("Alias name: node one\n"));
}

#[test]
fn reads_files_made_by_openssl_and_keytool() {
    let dir = tempdir();
    let home = store(dir.path(), "p256");
    let (cert, key, chain) = (
        issued(&home, "cert.pem"),
        issued(&home, "key.pem"),
        issued(&home, "chain.pem"),
    );
    let os_default = dir.path().join("openssl.p12");
    let os_legacy = dir.path().join("openssl-legacy.p12");
    for (out, extra) in [(&os_default, None), (&os_legacy, Some("-legacy"))] {
        let mut cmd = Command::new("openssl");
        cmd.args([
            "pkcs12",
            "-export",
            "-in",
            s(&cert),
            "-inkey",
            s(&key),
            "-certfile",
            s(&chain),
        ])
        .args(["-name", "n1", "-out", s(out), "-passout", "env:P12_PASS"])
        .env("P12_PASS", PASS);
        if let Some(e) = extra {
            cmd.arg(e);
        }
        run(&mut cmd).assert_success();
    }
    let kt = dir.path().join("keytool.p12");
    run(Command::new("keytool")
        .args([
            "-genkeypair",
            "-storetype",
            "PKCS12",
            "-keystore",
            s(&kt),
            "-alias",
            "kt",
        ])
        .args([
            "-keyalg",
            "EC",
            "-dname",
            "CN=kt.example.com",
            "-storepass:env",
            "P12_PASS",
        ])
        .env("P12_PASS", PASS))
    .assert_success();

    for (file, cert_enc, chain_len) in [
        (
            &os_default,
            "PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC), 2048 iterations",
            2,
        ),
        (&os_legacy, "PBEWithSHA1And40BitRC2-CBC, 2048 iterations", 2),
        (
            &kt,
            "PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC), 10000 iterations",
            0,
        ),
    ] {
        let ctx = file.display().to_string();
        let insp = cm(&home, &["inspect", s(file), "--pass", "env:P12_PASS"]);
        insp.assert_success();
        assert!(
            insp.stdout.contains(&format!("certificates:  {cert_enc}")),
            "{ctx}: {insp:?}"
        );
        assert!(insp.stdout.contains("[0] private key"), "{ctx}: {insp:?}");

        let out = dir.path().join(format!(
            "pem-{}",
            file.file_stem().unwrap().to_str().unwrap()
        ));
        cm(
            &home,
            &[
                "export",
                "pem",
                s(file),
                "--pass",
                "env:P12_PASS",
                "--out",
                s(&out),
            ],
        )
        .assert_success();
        assert_eq!(mode(&out.join("key.pem")), 0o600);
        let got_chain = cert_blocks(&fs::read_to_string(out.join("chain.pem")).unwrap());
        assert_eq!(got_chain.len(), chain_len, "{ctx}");
        if chain_len > 0 {
            assert_eq!(
                fs::read(out.join("cert.pem")).unwrap(),
                fs::read(&cert).unwrap(),
                "{ctx}"
            );
            assert_eq!(
                fs::read(out.join("chain.pem")).unwrap(),
                fs::read(&chain).unwrap(),
                "{ctx}"
            );
            assert_eq!(
                public_key_of(&out.join("key.pem")),
                public_key_of(&key),
                "{ctx}"
            );
        } else {
            // keytool's own key: the extracted key and certificate belong together.
            let from_cert =
                openssl(&["x509", "-in", s(&out.join("cert.pem")), "-noout", "-pubkey"]);
            assert_eq!(
                from_cert.assert_success().stdout,
                public_key_of(&out.join("key.pem")),
                "{ctx}"
            );
        }
    }
    let insp = cm(&home, &["inspect", s(&kt), "--pass", "env:P12_PASS"]);
    assert!(insp.stdout.contains("alias:         kt"), "{insp:?}");
}

#[test]
fn ihs_stash_holds_the_password() {
    let dir = tempdir();
    let home = store(dir.path(), "p256");
    let out = dir.path().join("key.p12");
    cm(
        &home,
        &[
            "export",
            "p12",
            "n1",
            "--out",
            s(&out),
            "--pass",
            "env:P12_PASS",
            "--target",
            "ihs",
            "--ihs-stash",
            "--alias",
            "ihs",
        ],
    )
    .assert_success();
    let sth = dir.path().join("key.sth");
    assert_eq!(mode(&sth), 0o600);
    let bytes = fs::read(&sth).unwrap();
    assert_eq!(bytes.len(), 129);
    let decoded: Vec<u8> = bytes
        .iter()
        .map(|b| b ^ 0xf5)
        .take_while(|b| *b != 0)
        .collect();
    assert_eq!(decoded, PASS.as_bytes());
    assert!(
        bytes[PASS.len() + 1..].iter().all(|b| b ^ 0xf5 != 0),
        "padding is non-zero"
    );
    assert!(keytool_list(&out).stdout.contains("Alias name: ihs\n"));

    // Capitals in the alias are refused, and nothing is written.
    let before = snapshot(dir.path());
    let r = cm(
        &home,
        &[
            "export",
            "p12",
            "n1",
            "--out",
            s(&dir.path().join("k2.p12")),
            "--pass",
            "env:P12_PASS",
            "--ihs-stash",
            "--alias",
            "IHS",
        ],
    );
    r.assert_failure();
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    assert!(r.stderr.contains("lowercase"), "{r:?}");
    assert_eq!(snapshot(dir.path()), before);
    // A keystore named like its own stash is a usage error.
    let r = cm(
        &home,
        &[
            "export",
            "p12",
            "n1",
            "--out",
            s(&dir.path().join("k3.sth")),
            "--pass",
            "env:P12_PASS",
            "--ihs-stash",
        ],
    );
    assert_eq!(r.status, 2, "{r:?}");
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn bad_files_fail_with_one_line_and_write_nothing() {
    let dir = tempdir();
    let home = store(dir.path(), "p256");
    let work = dir.path().join("work");
    fs::create_dir(&work).unwrap();
    let good = work.join("good.p12");
    cm(
        &home,
        &[
            "export",
            "p12",
            "n1",
            "--out",
            s(&good),
            "--pass",
            "env:P12_PASS",
        ],
    )
    .assert_success();
    let data = fs::read(&good).unwrap();

    // The MAC digest is the last OCTET STRING before salt and iterations; flip a byte of
    // it (found by its position: 32-byte SHA-256 digest, 8-byte salt, 2-byte count).
    let mut flipped = data.clone();
    let digest_at = flipped.len() - (2 + 2) - (8 + 2) - 32;
    flipped[digest_at] ^= 0x01;
    fs::write(work.join("mac.p12"), &flipped).unwrap();
    fs::write(work.join("short.p12"), &data[..data.len() / 2]).unwrap();

    let cases: [(&str, &str, &str); 3] = [
        ("good.p12", "pass:wrong", "wrong password"),
        ("mac.p12", "env:P12_PASS", "MAC check failed"),
        ("short.p12", "env:P12_PASS", "truncated"),
    ];
    for (file, pass, problem) in cases {
        let path = work.join(file);
        let out = work.join("out");
        let before = snapshot(dir.path());
        for args in [
            vec!["inspect", s(&path), "--pass", pass],
            vec!["export", "pem", s(&path), "--pass", pass, "--out", s(&out)],
        ] {
            let r = cm(&home, &args);
            r.assert_failure();
            let errors: Vec<&str> = r
                .stderr
                .lines()
                .filter(|l| !l.contains("warning"))
                .collect();
            assert_eq!(errors.len(), 1, "{file}: {r:?}");
            assert!(errors[0].contains(s(&path)), "{file}: {r:?}");
            assert!(errors[0].contains(problem), "{file}: {r:?}");
            assert!(r.stdout.is_empty(), "{file}: {r:?}");
            assert_eq!(snapshot(dir.path()), before, "{file}");
        }
    }
}

/// The first JSON block after `heading` in docs/json.md.
fn documented(heading: &str) -> serde_json::Value {
    let doc =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json.md")).unwrap();
    let section = &doc[doc.find(heading).expect("heading in docs/json.md")..];
    let block = section
        .split("```json")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    serde_json::from_str(block).unwrap()
}

fn keys(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn inspect_json_matches_docs() {
    let dir = tempdir();
    let home = store(dir.path(), "p256");
    let out = dir.path().join("n1.p12");
    cm(
        &home,
        &[
            "export",
            "p12",
            "n1",
            "--out",
            s(&out),
            "--pass",
            "env:P12_PASS",
        ],
    )
    .assert_success();
    let r = cm(
        &home,
        &["inspect", s(&out), "--pass", "env:P12_PASS", "--json"],
    );
    r.assert_success();
    let got: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let doc = documented("### PKCS#12 files");
    assert_eq!(keys(&got), keys(&doc));
    assert_eq!(keys(&got["protection"]), keys(&doc["protection"]));
    assert_eq!(
        keys(&got["protection"]["mac"]),
        keys(&doc["protection"]["mac"])
    );
    for i in 0..2 {
        assert_eq!(keys(&got["bags"][i]), keys(&doc["bags"][i]));
        assert_eq!(got["bags"][i]["kind"], doc["bags"][i]["kind"]);
    }
    assert_eq!(got["bags"].as_array().unwrap().len(), 4);
    assert_eq!(got["bags"][0]["alias"], "n1");
    assert_eq!(
        got["bags"][0]["local_key_id"],
        got["bags"][1]["local_key_id"]
    );
    assert_eq!(got["protection"]["mac"]["algorithm"], "HMAC-SHA256");
}

/// Non-ASCII passwords: certmesh, openssl and Python agree (UTF-8 for PBES2, BMPString for
/// the PKCS#12 KDF). keytool 17 refuses such passwords even on openssl's own files, which
/// README.md points out.
#[test]
fn non_ascii_password_agrees_with_openssl_and_python() {
    let dir = tempdir();
    let home = store(dir.path(), "p256");
    let pw = "pässwörd€";
    for compat in MODES {
        let out = dir.path().join(format!("u-{compat}.p12"));
        run(certmesh()
            .args(["--home", s(&home), "export", "p12", "n1", "--out", s(&out)])
            .args(["--pass", "env:U", "--compat", compat])
            .env("U", pw))
        .assert_success();
        run(Command::new("openssl")
            .args([
                "pkcs12",
                "-in",
                s(&out),
                "-info",
                "-noout",
                "-passin",
                "env:U",
            ])
            .env("U", pw))
        .assert_success();
        let py = run(Command::new(support::pkilint::venv_python())
            .args(["-c", "import os,sys; from cryptography.hazmat.primitives.serialization import pkcs12; k,c,e = pkcs12.load_key_and_certificates(open(sys.argv[1],'rb').read(), os.environ['U'].encode()); print(len(e))", s(&out)])
            .env("U", pw));
        assert_eq!(py.assert_success().stdout, "2\n", "{compat}");
    }
    let from_openssl = dir.path().join("openssl-u.p12");
    run(Command::new("openssl")
        .args([
            "pkcs12",
            "-export",
            "-in",
            s(&issued(&home, "cert.pem")),
            "-inkey",
            s(&issued(&home, "key.pem")),
        ])
        .args(["-out", s(&from_openssl), "-passout", "env:U"])
        .env("U", pw))
    .assert_success();
    run(certmesh()
        .args(["inspect", s(&from_openssl), "--pass", "env:U"])
        .env("U", pw))
    .assert_success();
}
