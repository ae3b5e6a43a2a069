//! Editing keystores other tools wrote, in place, losing nothing: PKCS#12 truststores from
//! `openssl pkcs12 -export -nokeys` (certificates without Java's trusted attribute),
//! keytool-made PKCS#12 keystores holding a private key, password-less PKCS#12 (JDK 18+
//! `cacerts`), and stores with an empty password. Each edit is checked by the real
//! consumers: keytool lists it, openssl and Python `cryptography` open it, Java uses the key.

mod support;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::openssl::{handshake_ok, openssl, s_client};
use support::{certmesh, run, tempdir, Run};

const PASS: &str = "edit-Secret 7";

fn cm(args: &[&str]) -> Run {
    run(certmesh().args(args).env("STORE_PASS", PASS))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A self-signed CA certificate (PEM) made by openssl, with its key beside it.
fn ca(dir: &Path, name: &str) -> PathBuf {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        &format!("/CN={name}"),
        "-days",
        "30",
        "-keyout",
        s(&key),
        "-out",
        s(&cert),
    ])
    .assert_success();
    cert
}

/// `certmesh truststore import --store STORE --alias ALIAS --cert CERT`, then `extra`.
fn import(store: &Path, alias: &str, cert: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "truststore",
        "import",
        "--store",
        s(store),
        "--alias",
        alias,
        "--cert",
        s(cert),
    ];
    args.extend_from_slice(extra);
    cm(&args)
}

fn keytool_list(store: &Path, pass: &str) -> Run {
    run(Command::new("keytool")
        .args(["-list", "-v", "-storetype", "PKCS12", "-keystore", s(store)])
        .args(["-storepass:env", "KT_PASS"])
        .env("KT_PASS", pass))
}

/// Every certificate openssl finds in a PKCS#12 file, as DER-derived SHA-256 lines.
fn openssl_certs(store: &Path, passin: &str) -> Vec<String> {
    let r = run(Command::new("openssl")
        .args(["pkcs12", "-in", s(store), "-nokeys", "-passin", passin])
        .env("STORE_PASS", PASS));
    assert!(r.success(), "{r:?}");
    let mut out: Vec<String> = r
        .stdout
        .split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .map(|b| {
            b.split("-----END")
                .next()
                .unwrap()
                .split_whitespace()
                .collect()
        })
        .collect();
    out.sort();
    out
}

fn pem_body(pem: &Path) -> String {
    let t = fs::read_to_string(pem).unwrap();
    t.split("-----BEGIN CERTIFICATE-----")
        .nth(1)
        .unwrap()
        .split("-----END")
        .next()
        .unwrap()
        .split_whitespace()
        .collect()
}

/// What Python `cryptography` reads: "key" when a key is there, then one subject per line.
fn python_read(store: &Path, pass: Option<&str>) -> Run {
    const PY: &str = r#"
import sys
from cryptography.hazmat.primitives.serialization import pkcs12
data = open(sys.argv[1], "rb").read()
pw = None if sys.argv[2] == "-" else sys.argv[2].encode()
p = pkcs12.load_pkcs12(data, pw)
if p.key is not None:
    print("key")
certs = ([p.cert] if p.cert else []) + list(p.additional_certs)
for c in certs:
    print(c.certificate.subject.rfc4514_string())
"#;
    run(Command::new(support::pkilint::venv_python()).args([
        "-c",
        PY,
        s(store),
        pass.unwrap_or("-"),
    ]))
}

/// The protection lines `certmesh inspect` prints (MAC, certificates, keys).
fn protection(store: &Path, pass: &[&str]) -> Vec<String> {
    let mut args = vec!["inspect", s(store)];
    args.extend_from_slice(pass);
    let r = cm(&args);
    r.assert_success();
    r.stdout
        .lines()
        .filter(|l| {
            l.starts_with("  MAC:") || l.starts_with("  certificates:") || l.starts_with("  keys:")
        })
        .map(str::to_string)
        .collect()
}

/// The bytes of the file from the first shrouded key bag on, `len` of them: an edit that
/// keeps the key bag byte for byte has them too.
fn key_bag_bytes(data: &[u8], len: usize) -> Vec<u8> {
    const SHROUDED: [u8; 11] = [
        0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x02,
    ];
    let at = data
        .windows(SHROUDED.len())
        .position(|w| w == SHROUDED)
        .expect("a shrouded key bag");
    data[at..(at + len).min(data.len())].to_vec()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn openssl_nokeys_truststore_keeps_its_certificates() {
    // The data-loss case: certificates without Java's trusted attribute were dropped.
    let dir = tempdir();
    let a = ca(dir.path(), "Old CA");
    let b = ca(dir.path(), "New CA");
    let store = dir.path().join("trust.p12");
    openssl(&[
        "pkcs12",
        "-export",
        "-nokeys",
        "-in",
        s(&a),
        "-out",
        s(&store),
        "-passout",
        &format!("pass:{PASS}"),
    ])
    .assert_success();
    let before = openssl_certs(&store, "env:STORE_PASS");
    assert_eq!(before, vec![pem_body(&a)]);

    let list = cm(&[
        "truststore",
        "list",
        "--store",
        s(&store),
        "--storepass",
        "env:STORE_PASS",
    ]);
    list.assert_success();
    assert!(list.stdout.contains("CN=Old CA"), "{list:?}");
    let warnings: Vec<&str> = list
        .stderr
        .lines()
        .filter(|l| l.contains("trusted attribute"))
        .collect();
    assert_eq!(warnings.len(), 1, "{list:?}");
    assert!(
        warnings[0].contains("CN=Old CA") && warnings[0].contains(s(&store)),
        "{list:?}"
    );

    let r = import(&store, "new-ca", &b, &["--storepass", "env:STORE_PASS"]);
    r.assert_success();
    assert_eq!(
        r.stderr
            .lines()
            .filter(|l| l.contains("trusted attribute"))
            .count(),
        1,
        "{r:?}"
    );

    // openssl and Python find both certificates; the old one is byte for byte the same.
    let mut want = vec![pem_body(&a), pem_body(&b)];
    want.sort();
    assert_eq!(openssl_certs(&store, "env:STORE_PASS"), want);
    let py = python_read(&store, Some(PASS));
    py.assert_success();
    assert!(
        py.stdout.contains("CN=Old CA") && py.stdout.contains("CN=New CA"),
        "{py:?}"
    );
    // Java sees the new one as a trusted entry (and, as before, ignores the old one).
    let kt = keytool_list(&store, PASS);
    kt.assert_success();
    assert!(kt.stdout.contains("Alias name: new-ca"), "{kt:?}");
    assert!(kt.stdout.contains("trustedCertEntry"), "{kt:?}");
    // Removing the new one leaves the old one in place.
    cm(&[
        "truststore",
        "remove",
        "--store",
        s(&store),
        "--alias",
        "new-ca",
        "--storepass",
        "env:STORE_PASS",
    ])
    .assert_success();
    assert_eq!(openssl_certs(&store, "env:STORE_PASS"), vec![pem_body(&a)]);
}

const JAVA_SRC: &str = r#"
import java.io.*;
import java.net.InetAddress;
import java.security.KeyStore;
import java.util.Collections;
import javax.net.ssl.*;

public class KeyUse {
    public static void main(String[] a) throws Exception {
        char[] pw = System.getenv("STORE_PASS").toCharArray();
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (InputStream in = new FileInputStream(a[0])) { ks.load(in, pw); }
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
        }
    }
}
"#;

fn java_classes() -> PathBuf {
    support::java::compiled("KeyUse", JAVA_SRC)
}

/// Java serves TLS with the store's key; openssl connects trusting `ca` and checking `host`.
fn java_serves_with(store: &Path, ca: &Path, host: &str) {
    let mut java = Command::new("java")
        .arg("-cp")
        .arg(java_classes())
        .args(["KeyUse", s(store)])
        .env("STORE_PASS", PASS)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(java.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let port: u16 = first.strip_prefix("port ").unwrap().parse().unwrap();
    let r = s_client(port, ca, host, &[]);
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
fn keytool_keystores_with_a_key_get_a_signer_and_keep_the_key() {
    let dir = tempdir();
    let signer = ca(dir.path(), "Signer CA");
    // Java 17's default PKCS#12 (PBES2/AES-256, HMAC-SHA256) and its legacy form (3DES
    // keys, RC2 certificates, HMAC-SHA1), as keytool -genkeypair writes them.
    for (name, extra) in [
        ("default", None),
        ("legacy", Some("-J-Dkeystore.pkcs12.legacy")),
    ] {
        let store = dir.path().join(format!("{name}.p12"));
        let mut cmd = Command::new("keytool");
        if let Some(e) = extra {
            cmd.arg(e);
        }
        run(cmd
            .args([
                "-genkeypair",
                "-storetype",
                "PKCS12",
                "-keystore",
                s(&store),
            ])
            .args([
                "-alias",
                "server",
                "-keyalg",
                "EC",
                "-groupname",
                "secp256r1",
            ])
            .args([
                "-dname",
                "CN=srv.example.com",
                "-ext",
                "SAN=dns:srv.example.com",
            ])
            .args(["-validity", "30", "-storepass:env", "STORE_PASS"])
            .env("STORE_PASS", PASS))
        .assert_success();
        let server_cert = dir.path().join(format!("{name}-server.pem"));
        run(Command::new("keytool")
            .args([
                "-exportcert",
                "-rfc",
                "-keystore",
                s(&store),
                "-alias",
                "server",
            ])
            .args(["-file", s(&server_cert), "-storepass:env", "STORE_PASS"])
            .env("STORE_PASS", PASS))
        .assert_success();
        let old = fs::read(&store).unwrap();
        let key_bag = key_bag_bytes(&old, 200);
        let pass = ["--pass", "env:STORE_PASS"];
        let before = protection(&store, &pass);
        assert!(
            before.iter().any(|l| l.starts_with("  keys:")),
            "{name}: {before:?}"
        );

        let r = import(
            &store,
            "signer",
            &signer,
            &["--storepass", "env:STORE_PASS"],
        );
        r.assert_success();
        assert!(r.stdout.contains("imported 'signer'"), "{name}: {r:?}");

        let new = fs::read(&store).unwrap();
        assert!(
            contains(&new, &key_bag),
            "{name}: the key bag is carried byte for byte"
        );
        let mut after = protection(&store, &pass);
        let mut want = before.clone();
        if name == "legacy" {
            // RC2 is read, never written: the edited certificate safe is 3DES, as the keys.
            for l in &mut want {
                *l = l.replace(
                    "PBEWithSHA1And40BitRC2-CBC",
                    "PBEWithSHA1And3-KeyTripleDES-CBC",
                );
            }
        }
        after.sort();
        want.sort();
        assert_eq!(after, want, "{name}: same protection");

        let kt = keytool_list(&store, PASS);
        kt.assert_success();
        assert!(
            kt.stdout.contains("Your keystore contains 2 entries"),
            "{name}: {kt:?}"
        );
        assert!(kt.stdout.contains("Alias name: server\n"), "{name}: {kt:?}");
        assert!(kt.stdout.contains("PrivateKeyEntry"), "{name}: {kt:?}");
        assert!(kt.stdout.contains("Alias name: signer\n"), "{name}: {kt:?}");
        assert!(kt.stdout.contains("trustedCertEntry"), "{name}: {kt:?}");
        let py = python_read(&store, Some(PASS));
        py.assert_success();
        assert!(py.stdout.starts_with("key\n"), "{name}: {py:?}");
        assert!(py.stdout.contains("CN=Signer CA"), "{name}: {py:?}");
        let mut want = vec![pem_body(&server_cert), pem_body(&signer)];
        want.sort();
        assert_eq!(openssl_certs(&store, "env:STORE_PASS"), want, "{name}");
        java_serves_with(&store, &server_cert, "srv.example.com");

        // Removing the signer leaves the key entry as it was.
        cm(&[
            "truststore",
            "remove",
            "--store",
            s(&store),
            "--alias",
            "signer",
            "--storepass",
            "env:STORE_PASS",
        ])
        .assert_success();
        let kt = keytool_list(&store, PASS);
        assert!(
            kt.stdout.contains("Your keystore contains 1 entry"),
            "{name}: {kt:?}"
        );
        assert!(contains(&fs::read(&store).unwrap(), &key_bag), "{name}");
        java_serves_with(&store, &server_cert, "srv.example.com");
    }
}

#[test]
fn password_less_cacerts_gets_a_ca_and_stays_password_less() {
    // A JDK 18+ style cacerts, made with Java 17's keytool.
    let dir = tempdir();
    let a = ca(dir.path(), "First CA");
    let b = ca(dir.path(), "Second CA");
    let store = dir.path().join("cacerts");
    run(Command::new("keytool")
        .args([
            "-J-Dkeystore.pkcs12.certProtectionAlgorithm=NONE",
            "-J-Dkeystore.pkcs12.macAlgorithm=NONE",
        ])
        .args([
            "-importcert",
            "-noprompt",
            "-storetype",
            "PKCS12",
            "-keystore",
            s(&store),
        ])
        .args(["-alias", "first", "-file", s(&a), "-storepass", "changeit"]))
    .assert_success();
    let before = protection(&store, &[]);
    assert!(
        before.contains(&"  MAC:           none (integrity not protected)".to_string()),
        "{before:?}"
    );
    assert!(
        !before.iter().any(|l| l.starts_with("  certificates:")),
        "{before:?}"
    );

    // Listed and edited without any password.
    let list = cm(&["truststore", "list", "--store", s(&store)]);
    list.assert_success();
    assert!(list.stdout.contains("CN=First CA"), "{list:?}");
    import(&store, "second", &b, &[]).assert_success();
    assert_eq!(
        protection(&store, &[]),
        before,
        "still no MAC, nothing encrypted"
    );

    for pw in ["changeit", "anything"] {
        let kt = keytool_list(&store, pw);
        kt.assert_success();
        assert!(
            kt.stdout.contains("Your keystore contains 2 entries"),
            "{kt:?}"
        );
        assert!(kt.stdout.contains("Alias name: first\n"), "{kt:?}");
        assert!(kt.stdout.contains("Alias name: second\n"), "{kt:?}");
    }
    let py = python_read(&store, None);
    py.assert_success();
    assert!(
        py.stdout.contains("CN=First CA") && py.stdout.contains("CN=Second CA"),
        "{py:?}"
    );
    let mut want = vec![pem_body(&a), pem_body(&b)];
    want.sort();
    assert_eq!(openssl_certs(&store, "pass:"), want);
}

#[test]
fn empty_passwords_are_an_explicit_choice() {
    let dir = tempdir();
    let a = ca(dir.path(), "Empty A");
    let b = ca(dir.path(), "Empty B");

    // A text that happens to be empty is refused, with the spelling to use instead.
    let jks = dir.path().join("empty.jks");
    let r = cm(&[
        "truststore",
        "import",
        "--store",
        s(&jks),
        "--create",
        "--alias",
        "a",
        "--cert",
        s(&a),
        "--storepass",
        "pass:",
    ]);
    r.assert_failure();
    assert!(r.stderr.contains("--storepass empty"), "{r:?}");
    assert!(!jks.exists());

    // JKS and JCEKS with an empty password: pyjks opens them with "".
    for kind in ["jks", "jceks"] {
        let store = dir.path().join(format!("empty.{kind}"));
        for (alias, cert, create) in [("a", &a, true), ("b", &b, false)] {
            let create: &[&str] = if create { &["--create"] } else { &[] };
            import(
                &store,
                alias,
                cert,
                &[&["--storepass", "empty", "--type", kind], create].concat(),
            )
            .assert_success();
        }
        let py = run(Command::new(support::pkilint::venv_python()).args([
            "-c",
            "import jks,sys; ks=jks.KeyStore.load(sys.argv[1], ''); print(ks.store_type, sorted(ks.certs))",
            s(&store),
        ]));
        py.assert_success();
        assert_eq!(py.stdout.trim(), format!("{kind} ['a', 'b']"), "{py:?}");
        // A wrong (non-empty) password is still wrong.
        let r = cm(&[
            "truststore",
            "list",
            "--store",
            s(&store),
            "--storepass",
            "env:STORE_PASS",
        ]);
        r.assert_failure();
    }

    // PKCS#12 with an empty password, as `openssl pkcs12 -passout pass:` writes it.
    let p12 = dir.path().join("empty.p12");
    openssl(&[
        "pkcs12",
        "-export",
        "-nokeys",
        "-in",
        s(&a),
        "-out",
        s(&p12),
        "-passout",
        "pass:",
    ])
    .assert_success();
    import(&p12, "b", &b, &["--storepass", "empty"]).assert_success();
    let mut want = vec![pem_body(&a), pem_body(&b)];
    want.sort();
    assert_eq!(openssl_certs(&p12, "pass:"), want);
    let py = python_read(&p12, Some(""));
    py.assert_success();
    assert!(py.stdout.contains("CN=Empty B"), "{py:?}");
    // A key passphrase cannot be empty, even said explicitly.
    let r = cm(&[
        "key",
        "gen",
        "--out",
        s(&dir.path().join("k.pem")),
        "--pass",
        "empty",
    ]);
    r.assert_failure();
}

#[test]
fn export_pem_writes_every_certificate() {
    // A key with its chain plus an unrelated CA: chain.pem has the chain, extra.pem the rest.
    let dir = tempdir();
    let root = ca(dir.path(), "Chain Root");
    let other = ca(dir.path(), "Unrelated CA");
    let leaf_key = dir.path().join("leaf.key");
    let csr = dir.path().join("leaf.csr");
    let leaf = dir.path().join("leaf.pem");
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=leaf.example.com",
        "-keyout",
        s(&leaf_key),
        "-out",
        s(&csr),
    ])
    .assert_success();
    openssl(&[
        "x509",
        "-req",
        "-in",
        s(&csr),
        "-CA",
        s(&root),
        "-CAkey",
        s(&dir.path().join("Chain Root.key")),
        "-days",
        "30",
        "-out",
        s(&leaf),
    ])
    .assert_success();
    let bundle = dir.path().join("extra-certs.pem");
    fs::write(
        &bundle,
        [fs::read(&other).unwrap(), fs::read(&root).unwrap()].concat(),
    )
    .unwrap();
    let p12 = dir.path().join("bundle.p12");
    run(Command::new("openssl")
        .args(["pkcs12", "-export", "-in", s(&leaf), "-inkey", s(&leaf_key)])
        .args([
            "-certfile",
            s(&bundle),
            "-out",
            s(&p12),
            "-passout",
            "env:STORE_PASS",
        ])
        .env("STORE_PASS", PASS))
    .assert_success();
    let out = dir.path().join("out");
    let r = cm(&[
        "export",
        "pem",
        s(&p12),
        "--pass",
        "env:STORE_PASS",
        "--out",
        s(&out),
    ]);
    r.assert_success();
    assert!(r.stdout.contains("(1 CA certificate(s))"), "{r:?}");
    assert!(
        r.stdout.contains("extra.pem (1 other certificate(s)"),
        "{r:?}"
    );
    assert_eq!(pem_body(&out.join("chain.pem")), pem_body(&root));
    assert_eq!(pem_body(&out.join("extra.pem")), pem_body(&other));
    assert_eq!(pem_body(&out.join("cert.pem")), pem_body(&leaf));
}

/// Recomputes a JKS/JCEKS integrity digest after the body was patched.
fn reseal_jks(bytes: &mut Vec<u8>, pass: &str) {
    use sha1::Digest;
    bytes.truncate(bytes.len() - 20);
    let mut h = sha1::Sha1::new();
    for c in pass.encode_utf16() {
        h.update(c.to_be_bytes());
    }
    h.update(b"Mighty Aphrodite");
    h.update(&bytes[..]);
    let d = h.finalize();
    bytes.extend_from_slice(&d);
}

fn replace_once(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern");
    bytes[at..at + to.len()].copy_from_slice(to);
}

fn keytool_aliases(store: &Path, storetype: &str, pass: &str) -> Run {
    run(Command::new("keytool")
        .args([
            "-list",
            "-v",
            "-storetype",
            storetype,
            "-keystore",
            s(store),
        ])
        .args(["-storepass", pass]))
}

#[test]
fn duplicate_aliases_behave_as_in_keytool_and_edits_change_nothing_else() {
    let dir = tempdir();
    let first = ca(dir.path(), "First Dup");
    let second = ca(dir.path(), "Second Dup");
    let third = ca(dir.path(), "Third Dup");
    let store = dir.path().join("dup.jks");
    for (alias, cert, create) in [("dup-a", &first, true), ("dup-b", &second, false)] {
        let create: &[&str] = if create { &["--create"] } else { &[] };
        import(
            &store,
            alias,
            cert,
            &[&["--storepass", "env:STORE_PASS"], create].concat(),
        )
        .assert_success();
    }
    // Give the second entry the first one's alias (a damaged or hand-made file).
    let mut bytes = fs::read(&store).unwrap();
    replace_once(&mut bytes, b"dup-b", b"dup-a");
    reseal_jks(&mut bytes, PASS);
    fs::write(&store, &bytes).unwrap();
    let kt = keytool_aliases(&store, "JKS", PASS);
    kt.assert_success();
    assert!(
        kt.stdout.contains("Your keystore contains 1 entry"),
        "{kt:?}"
    );
    assert!(
        kt.stdout.contains("CN=Second Dup"),
        "keytool keeps the later one: {kt:?}"
    );

    let list = cm(&[
        "truststore",
        "list",
        "--store",
        s(&store),
        "--storepass",
        "env:STORE_PASS",
        "--json",
    ]);
    list.assert_success();
    let v: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{list:?}");
    assert_eq!(entries[0]["subject"], "CN=Second Dup");
    let warn: Vec<&str> = list
        .stderr
        .lines()
        .filter(|l| l.contains("more than once"))
        .collect();
    assert_eq!(warn.len(), 1, "{list:?}");
    assert!(warn[0].contains("dup-a"), "{list:?}");

    // Adding another alias leaves both copies as they were.
    let first_der = {
        let t = fs::read_to_string(&first).unwrap();
        let b: String = t
            .split("-----")
            .nth(2)
            .unwrap()
            .split_whitespace()
            .collect();
        base64_decode(&b)
    };
    import(&store, "third", &third, &["--storepass", "env:STORE_PASS"]).assert_success();
    let after = fs::read(&store).unwrap();
    assert!(contains(&after, &first_der), "the shadowed entry is kept");
    let kt = keytool_aliases(&store, "JKS", PASS);
    assert!(
        kt.stdout.contains("Your keystore contains 2 entries"),
        "{kt:?}"
    );
    // Removing the alias removes it as keytool would: no copy comes back.
    cm(&[
        "truststore",
        "remove",
        "--store",
        s(&store),
        "--alias",
        "dup-a",
        "--storepass",
        "env:STORE_PASS",
    ])
    .assert_success();
    let kt = keytool_aliases(&store, "JKS", PASS);
    assert!(
        kt.stdout.contains("Your keystore contains 1 entry"),
        "{kt:?}"
    );
    assert!(!kt.stdout.contains("dup-a"), "{kt:?}");
}

fn base64_decode(s: &str) -> Vec<u8> {
    let r = Command::new("openssl")
        .args(["base64", "-d", "-A"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    r.stdin.as_ref().unwrap().write_all(s.as_bytes()).unwrap();
    r.wait_with_output().unwrap().stdout
}

#[test]
fn a_jceks_sealed_object_of_another_class_is_not_called_a_secret_key() {
    let dir = tempdir();
    let store = dir.path().join("odd.jceks");
    let extra = dir.path().join("extra.pem");
    let ca_pem = ca(dir.path(), "JCEKS Signer");
    fs::copy(&ca_pem, &extra).unwrap();
    run(Command::new("keytool")
        .args([
            "-genseckey",
            "-alias",
            "aeskey",
            "-keyalg",
            "AES",
            "-keysize",
            "128",
        ])
        .args([
            "-storetype",
            "JCEKS",
            "-keystore",
            s(&store),
            "-storepass",
            PASS,
        ])
        .args(["-keypass", PASS]))
    .assert_success();
    let mut bytes = fs::read(&store).unwrap();
    let real = b"com.sun.crypto.provider.SealedObjectForKeyProtector";
    let odd = b"org.example.sealing.SomethingElseEntirelyForKeysXYZ";
    replace_once(&mut bytes, real, odd);
    reseal_jks(&mut bytes, PASS);
    fs::write(&store, &bytes).unwrap();

    let list = cm(&[
        "truststore",
        "list",
        "--store",
        s(&store),
        "--storepass",
        "env:STORE_PASS",
        "--json",
    ]);
    list.assert_success();
    let v: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(v["entries"][0]["type"], "unreadable", "{list:?}");
    assert!(
        list.stderr
            .contains("org.example.sealing.SomethingElseEntirelyForKeysXYZ"),
        "{list:?}"
    );
    // An import keeps the entry byte for byte.
    let sealed_at = bytes.windows(odd.len()).position(|w| w == odd).unwrap();
    let sealed = bytes[sealed_at - 8..sealed_at + odd.len() + 40].to_vec();
    import(&store, "signer", &extra, &["--storepass", "env:STORE_PASS"]).assert_success();
    assert!(contains(&fs::read(&store).unwrap(), &sealed));
}
