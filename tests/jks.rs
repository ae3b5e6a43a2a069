//! Java keystores (issue 5): files certmesh writes are read by keytool, Java and pyjks;
//! files keytool writes (JKS, JCEKS, Debian's cacerts) survive certmesh's edits with every
//! old entry unchanged; damaged or wrongly unlocked files are refused without a change.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use certmesh::keystore::jks::KeyStore;
use support::nginx::Nginx;
use support::openssl::{handshake_ok, openssl, s_client};
use support::{certmesh, cm, mode, run, run_with_timeout, snapshot, tempdir, Run};

const JAVA_TIMEOUT: Duration = Duration::from_secs(90);
const CACERTS: &str = "/etc/ssl/certs/java/cacerts";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A CA store with one issued server certificate, n1 (n1.example.com).
fn ca_with_n1(dir: &Path, name: &str) -> PathBuf {
    let home = dir.join(name);
    cm(&home, &["ca", "init", "--name", &format!("{name} CA")]).assert_success();
    cm(&home, &["issue", "n1", "--dns", "n1.example.com"]).assert_success();
    home
}

fn issued(home: &Path, file: &str) -> PathBuf {
    home.join("issued").join("n1").join(file)
}

fn keytool(args: &[&str]) -> Run {
    run_with_timeout(Command::new("keytool").args(args), None, JAVA_TIMEOUT)
}

/// SHA-256 fingerprint of a PEM certificate, as keytool prints it.
fn fingerprint(pem: &Path) -> String {
    let r = openssl(&["x509", "-in", s(pem), "-noout", "-fingerprint", "-sha256"]);
    r.assert_success();
    r.stdout.trim().split('=').nth(1).unwrap().to_string()
}

/// `keytool -list -v`: alias -> (entry type, SHA-256 of its first certificate).
fn keytool_list(store: &Path, pass: &str, storetype: &str) -> BTreeMap<String, (String, String)> {
    let r = keytool(&[
        "-list",
        "-v",
        "-keystore",
        s(store),
        "-storepass",
        pass,
        "-storetype",
        storetype,
    ]);
    r.assert_success();
    let mut out = BTreeMap::new();
    let mut cur: Option<(String, String, String)> = None;
    for line in r.stdout.lines() {
        let t = line.trim();
        if let Some(a) = t.strip_prefix("Alias name: ") {
            if let Some((a, ty, fp)) = cur.take() {
                out.insert(a, (ty, fp));
            }
            cur = Some((a.to_string(), String::new(), String::new()));
        } else if let (Some(ty), Some(c)) = (t.strip_prefix("Entry type: "), cur.as_mut()) {
            c.1 = ty.to_string();
        } else if let (Some(fp), Some(c)) = (t.strip_prefix("SHA256: "), cur.as_mut()) {
            if c.2.is_empty() {
                c.2 = fp.to_string();
            }
        }
    }
    if let Some((a, ty, fp)) = cur.take() {
        out.insert(a, (ty, fp));
    }
    out
}

const PROBE: &str = r#"
import java.io.*;
import java.net.*;
import java.security.*;
import javax.net.ssl.*;

public class JksProbe {
    static KeyStore load(String type, String path, String pass) throws Exception {
        KeyStore ks = KeyStore.getInstance(type);
        try (InputStream in = new FileInputStream(path)) { ks.load(in, pass.toCharArray()); }
        return ks;
    }
    public static void main(String[] a) throws Exception {
        switch (a[0]) {
        case "serve": { // serve KEYSTORE PASS
            KeyStore ks = load("JKS", a[1], a[2]);
            KeyManagerFactory kmf = KeyManagerFactory.getInstance("SunX509");
            kmf.init(ks, a[2].toCharArray());
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(kmf.getKeyManagers(), null, null);
            SSLServerSocket ss = (SSLServerSocket) ctx.getServerSocketFactory()
                .createServerSocket(0, 5, InetAddress.getByName("127.0.0.1"));
            ss.setSoTimeout(30000);
            System.out.println(ss.getLocalPort());
            System.out.flush();
            try (SSLSocket s = (SSLSocket) ss.accept()) {
                s.setSoTimeout(10000);
                s.startHandshake();
                s.getOutputStream().write("hello\n".getBytes());
                s.getOutputStream().flush();
            }
            break;
        }
        case "connect": { // connect TRUSTSTORE PASS PORT HOST
            KeyStore ts = load("JKS", a[1], a[2]);
            TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
            tmf.init(ts);
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(null, tmf.getTrustManagers(), null);
            int port = Integer.parseInt(a[3]);
            try (Socket raw = new Socket()) {
                raw.connect(new InetSocketAddress("127.0.0.1", port), 10000);
                raw.setSoTimeout(10000);
                SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket(raw, a[4], port, true);
                SSLParameters p = s.getSSLParameters();
                p.setEndpointIdentificationAlgorithm("HTTPS");
                s.setSSLParameters(p);
                s.startHandshake();
                System.out.println("HANDSHAKE OK");
            }
            break;
        }
        case "getkey": { // getkey TYPE KEYSTORE STOREPASS ALIAS KEYPASS
            KeyStore ks = load(a[1], a[2], a[3]);
            Key k = ks.getKey(a[4], a[5].toCharArray());
            StringBuilder h = new StringBuilder();
            for (byte b : k.getEncoded()) h.append(String.format("%02x", b));
            System.out.println("KEY " + k.getAlgorithm() + " " + h);
            break;
        }
        }
    }
}
"#;

/// The probe, compiled once (see [`support::java::compiled`]).
fn probe_dir() -> PathBuf {
    support::java::compiled("JksProbe", PROBE)
}

fn java_probe(args: &[&str]) -> Run {
    run_with_timeout(
        Command::new("java")
            .arg("-cp")
            .arg(probe_dir())
            .arg("JksProbe")
            .args(args),
        None,
        JAVA_TIMEOUT,
    )
}

/// Imports `cert` under `alias`, store password from a file.
fn import(store: &Path, alias: &str, cert: &Path, passfile: &Path, extra: &[&str]) -> Run {
    let mut cmd = certmesh();
    cmd.args([
        "truststore",
        "import",
        "--store",
        s(store),
        "--alias",
        alias,
    ])
    .args(["--cert", s(cert)])
    .arg("--storepass")
    .arg(format!("file:{}", s(passfile)))
    .args(extra);
    run(&mut cmd)
}

fn passfile(dir: &Path, pass: &str) -> PathBuf {
    let p = dir.join(format!("pass-{pass}"));
    fs::write(&p, format!("{pass}\n")).unwrap();
    p
}

#[test]
fn export_jks_is_listed_by_keytool_and_serves_tls_from_java() {
    let dir = tempdir();
    let home = ca_with_n1(dir.path(), "pki");
    let out = dir.path().join("wso2carbon.jks");
    let pw = passfile(dir.path(), "wso2carbon");
    cm(
        &home,
        &[
            "export",
            "jks",
            "n1",
            "--out",
            s(&out),
            "--alias",
            "wso2carbon",
        ],
    )
    .assert_failure(); // no --storepass and no terminal
    let r = cm(
        &home,
        &[
            "export",
            "jks",
            "n1",
            "--out",
            s(&out),
            "--alias",
            "wso2carbon",
            "--storepass",
            &format!("file:{}", s(&pw)),
        ],
    );
    r.assert_success();
    assert_eq!(mode(&out), 0o600);
    let listed = keytool_list(&out, "wso2carbon", "JKS");
    assert_eq!(listed.len(), 1, "{listed:?}");
    let (ty, fp) = &listed["wso2carbon"];
    assert_eq!(ty, "PrivateKeyEntry");
    assert_eq!(fp, &fingerprint(&issued(&home, "cert.pem")));
    // pyjks, an independent implementation, recovers exactly our key and chain.
    let r = run(Command::new(support::pkilint::venv_python()).args([
        "-c",
        "import jks,sys,base64\n\
ks=jks.KeyStore.load(sys.argv[1], 'wso2carbon')\n\
pk=ks.private_keys['wso2carbon']\n\
pem=open(sys.argv[2]).read().split('-----')[2]\n\
print(pk.is_decrypted(), pk.pkey_pkcs8 == base64.b64decode(pem), len(pk.cert_chain))",
        s(&out),
        s(&issued(&home, "key.pem")),
    ]));
    assert_eq!(r.stdout.trim(), "True True 2", "{r:?}");

    // Java loads it with KeyManagerFactory and serves TLS that openssl verifies.
    let mut child = Command::new("java")
        .arg("-cp")
        .arg(probe_dir())
        .args(["JksProbe", "serve", s(&out), "wso2carbon"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(JAVA_TIMEOUT).unwrap_or_default();
    let Ok(port) = line.trim().parse::<u16>() else {
        let _ = child.kill();
        let o = child.wait_with_output().unwrap();
        panic!(
            "java serve did not start: {line:?} {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let r = s_client(port, &issued(&home, "ca.pem"), "n1.example.com", &[]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(handshake_ok(&r), "{r:?}");
}

#[test]
fn export_jks_for_every_key_type_gives_java_the_same_key() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "T"]).assert_success();
    let pw = passfile(dir.path(), "changeit");
    for key in ["p384", "ed25519", "rsa2048"] {
        let name = format!("n-{key}");
        cm(
            &home,
            &["issue", &name, "--dns", "n.example.com", "--key", key],
        )
        .assert_success();
        let out = dir.path().join(format!("{key}.jks"));
        cm(
            &home,
            &[
                "export",
                "jks",
                &name,
                "--out",
                s(&out),
                "--storepass",
                &format!("file:{}", s(&pw)),
            ],
        )
        .assert_success();
        let r = java_probe(&["getkey", "JKS", s(&out), "changeit", &name, "changeit"]);
        r.assert_success();
        let pkcs8 = fs::read_to_string(home.join("issued").join(&name).join("key.pem")).unwrap();
        let b64: String = pkcs8.lines().filter(|l| !l.starts_with("-----")).collect();
        let java_hex = r.stdout.split_whitespace().nth(2).unwrap().to_string();
        let r = run(Command::new("python3").args([
            "-c",
            "import base64,sys; print(base64.b64decode(sys.argv[1]).hex())",
            &b64,
        ]));
        assert_eq!(java_hex, r.stdout.trim(), "{key}");
    }
}

#[test]
fn keystore_create_with_separate_key_password() {
    let dir = tempdir();
    let home = ca_with_n1(dir.path(), "pki");
    let out = dir.path().join("server.jks");
    let sp = passfile(dir.path(), "storepass");
    let kp = passfile(dir.path(), "keypass1");
    let r = run(certmesh().args([
        "keystore",
        "create",
        "--cert",
        s(&issued(&home, "cert.pem")),
        "--key",
        s(&issued(&home, "key.pem")),
        "--chain",
        s(&issued(&home, "chain.pem")),
        "--out",
        s(&out),
        "--type",
        "jks",
        "--alias",
        "Tomcat",
        "--storepass",
        &format!("file:{}", s(&sp)),
        "--keypass",
        &format!("file:{}", s(&kp)),
    ]));
    r.assert_success();
    let listed = keytool_list(&out, "storepass", "JKS");
    assert_eq!(listed["tomcat"].0, "PrivateKeyEntry");
    let r = java_probe(&["getkey", "JKS", s(&out), "storepass", "tomcat", "keypass1"]);
    assert!(r.success() && r.stdout.starts_with("KEY EC "), "{r:?}");
    let r = java_probe(&["getkey", "JKS", s(&out), "storepass", "tomcat", "storepass"]);
    r.assert_failure();

    // An existing file is replaced only with --force, by a new file of certmesh's own
    // (mode 0600, whatever the old one had).
    let create = |extra: &[&str]| {
        run(certmesh()
            .args([
                "keystore",
                "create",
                "--cert",
                s(&issued(&home, "cert.pem")),
            ])
            .args(["--key", s(&issued(&home, "key.pem")), "--out", s(&out)])
            .args(["--type", "jks", "--alias", "again", "--storepass"])
            .arg(format!("file:{}", s(&sp)))
            .args(extra))
    };
    let r = create(&[]);
    r.assert_failure();
    assert!(r.stderr.contains("--force"), "{r:?}");
    fs::set_permissions(&out, fs::Permissions::from_mode(0o644)).unwrap();
    let r = create(&["--force"]);
    r.assert_success();
    assert_eq!(mode(&out), 0o600, "{r:?}");
    assert_eq!(
        keytool_list(&out, "storepass", "JKS")
            .keys()
            .collect::<Vec<_>>(),
        ["again"]
    );

    // A key that is not the certificate's is refused before anything is written.
    let other = ca_with_n1(dir.path(), "other");
    let bad = dir.path().join("bad.jks");
    let r = run(certmesh().args([
        "keystore",
        "create",
        "--cert",
        s(&issued(&home, "cert.pem")),
        "--key",
        s(&issued(&other, "key.pem")),
        "--out",
        s(&bad),
        "--type",
        "jks",
        "--alias",
        "x",
        "--storepass",
        &format!("file:{}", s(&sp)),
    ]));
    r.assert_failure();
    assert!(r.stderr.contains("does not belong"), "{r:?}");
    assert!(!bad.exists());
    // --type pkcs12 writes through the PKCS#12 codec, in either mode; keytool reads both.
    for compat in ["modern", "legacy"] {
        let p12 = dir.path().join(format!("server-{compat}.p12"));
        let r = run(certmesh().args([
            "keystore",
            "create",
            "--cert",
            s(&issued(&home, "cert.pem")),
            "--key",
            s(&issued(&home, "key.pem")),
            "--chain",
            s(&issued(&home, "chain.pem")),
            "--out",
            s(&p12),
            "--type",
            "pkcs12",
            "--compat",
            compat,
            "--alias",
            "Tomcat",
            "--storepass",
            &format!("file:{}", s(&sp)),
        ]));
        r.assert_success();
        assert_eq!(mode(&p12), 0o600);
        let listed = keytool_list(&p12, "storepass", "PKCS12");
        assert_eq!(listed.len(), 1, "{listed:?}");
        let (ty, fp) = &listed["tomcat"];
        assert_eq!(ty, "PrivateKeyEntry");
        assert_eq!(fp, &fingerprint(&issued(&home, "cert.pem")));
    }
    // One password only for PKCS#12.
    let r = run(certmesh().args([
        "keystore",
        "create",
        "--cert",
        s(&issued(&home, "cert.pem")),
        "--key",
        s(&issued(&home, "key.pem")),
        "--out",
        s(&bad),
        "--type",
        "pkcs12",
        "--alias",
        "x",
        "--storepass",
        &format!("file:{}", s(&sp)),
        "--keypass",
        &format!("file:{}", s(&kp)),
    ]));
    r.assert_failure();
    assert!(r.stderr.contains("one password"), "{r:?}");
    assert!(!bad.exists());
}

#[test]
fn truststore_drives_java_client_against_nginx() {
    let dir = tempdir();
    let home = ca_with_n1(dir.path(), "pki");
    let stranger = ca_with_n1(dir.path(), "stranger");
    let pw = passfile(dir.path(), "changeit");
    let good = dir.path().join("trust.jks");
    let bad = dir.path().join("other.jks");
    import(
        &good,
        "cluster-ca",
        &issued(&home, "ca.pem"),
        &pw,
        &["--create"],
    )
    .assert_success();
    import(
        &bad,
        "other-ca",
        &issued(&stranger, "ca.pem"),
        &pw,
        &["--create"],
    )
    .assert_success();
    assert_eq!(mode(&good), 0o644);
    let listed = keytool_list(&good, "changeit", "JKS");
    assert_eq!(
        listed["cluster-ca"],
        (
            "trustedCertEntry".to_string(),
            fingerprint(&issued(&home, "ca.pem"))
        )
    );

    let web = Nginx::serve(&issued(&home, "fullchain.pem"), &issued(&home, "key.pem"));
    let port = web.port().to_string();
    let r = java_probe(&["connect", s(&good), "changeit", &port, "n1.example.com"]);
    assert!(r.success() && r.stdout.contains("HANDSHAKE OK"), "{r:?}");
    let r = java_probe(&["connect", s(&bad), "changeit", &port, "n1.example.com"]);
    r.assert_failure();
    assert!(
        r.stderr.contains("PKIX") || r.stderr.contains("certification path"),
        "{r:?}"
    );
}

#[test]
fn keytool_jks_with_unknown_key_password_survives_an_import() {
    let dir = tempdir();
    let home = ca_with_n1(dir.path(), "pki");
    let store = dir.path().join("keystore.jks");
    keytool(&[
        "-genkeypair",
        "-alias",
        "Server",
        "-keyalg",
        "RSA",
        "-keysize",
        "2048",
        "-dname",
        "CN=server.example.com",
        "-storetype",
        "JKS",
        "-keystore",
        s(&store),
        "-storepass",
        "storepass",
        "-keypass",
        "secretkeypass",
        "-validity",
        "30",
    ])
    .assert_success();
    keytool(&[
        "-importcert",
        "-noprompt",
        "-alias",
        "OldCA",
        "-file",
        s(&issued(&home, "chain.pem")),
        "-storetype",
        "JKS",
        "-keystore",
        s(&store),
        "-storepass",
        "storepass",
    ])
    .assert_success();
    fs::set_permissions(&store, fs::Permissions::from_mode(0o640)).unwrap();
    // As root, give the file to another owner: the rewrite must keep it.
    let as_root = fs::metadata(dir.path()).unwrap().uid() == 0;
    if as_root {
        std::os::unix::fs::chown(&store, Some(65534), Some(65534)).unwrap();
    }
    let before = keytool_list(&store, "storepass", "JKS");
    assert_eq!(before.len(), 2);
    let key_before = java_probe(&[
        "getkey",
        "JKS",
        s(&store),
        "storepass",
        "server",
        "secretkeypass",
    ]);
    key_before.assert_success();

    let original = fs::read(&store).unwrap();
    let stranger = ca_with_n1(dir.path(), "stranger");
    let pw = passfile(dir.path(), "storepass");
    let r = import(&store, "new-ca", &issued(&stranger, "ca.pem"), &pw, &[]);
    r.assert_success();
    assert_eq!(mode(&store), 0o640);
    if as_root {
        let m = fs::metadata(&store).unwrap();
        assert_eq!((m.uid(), m.gid()), (65534, 65534));
    }
    let backups: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("keystore.jks.bak-")
        })
        .collect();
    assert_eq!(backups.len(), 1, "{r:?}");
    assert_eq!(mode(&backups[0]), 0o640);

    let after = keytool_list(&store, "storepass", "JKS");
    assert_eq!(after.len(), 3);
    for (alias, v) in &before {
        assert_eq!(after.get(alias), Some(v), "{alias}");
    }
    assert_eq!(after["new-ca"].1, fingerprint(&issued(&stranger, "ca.pem")));
    // The key certmesh could not decrypt is still recoverable with its own password.
    let key_after = java_probe(&[
        "getkey",
        "JKS",
        s(&store),
        "storepass",
        "server",
        "secretkeypass",
    ]);
    assert_eq!(key_after, key_before);
    let p12 = dir.path().join("out.p12");
    keytool(&[
        "-importkeystore",
        "-srckeystore",
        s(&store),
        "-srcstoretype",
        "JKS",
        "-srcstorepass",
        "storepass",
        "-srcalias",
        "server",
        "-srckeypass",
        "secretkeypass",
        "-destkeystore",
        s(&p12),
        "-deststoretype",
        "PKCS12",
        "-deststorepass",
        "p12pass",
        "-noprompt",
    ])
    .assert_success();

    // Removing the new entry gives back the original entries again.
    let r = run(certmesh().args([
        "truststore",
        "remove",
        "--store",
        s(&store),
        "--alias",
        "NEW-CA",
        "--storepass",
        &format!("file:{}", s(&pw)),
    ]));
    r.assert_success();
    assert_eq!(keytool_list(&store, "storepass", "JKS"), before);
    assert!(fs::read(&store).unwrap() == original);
}

#[test]
fn keytool_jceks_with_secret_key_survives_an_import() {
    let dir = tempdir();
    let home = ca_with_n1(dir.path(), "pki");
    let store = dir.path().join("store.jceks");
    let common = [
        "-storetype",
        "JCEKS",
        "-keystore",
        s(&store),
        "-storepass",
        "storepass",
    ];
    let mut args = vec![
        "-genkeypair",
        "-alias",
        "server",
        "-keyalg",
        "EC",
        "-dname",
        "CN=s",
        "-keypass",
        "keypass1",
    ];
    args.extend_from_slice(&common);
    keytool(&args).assert_success();
    let mut args = vec![
        "-genseckey",
        "-alias",
        "aeskey",
        "-keyalg",
        "AES",
        "-keysize",
        "128",
        "-keypass",
        "keypass2",
    ];
    args.extend_from_slice(&common);
    keytool(&args).assert_success();
    let before = keytool_list(&store, "storepass", "JCEKS");
    assert_eq!(before.len(), 2, "{before:?}");
    let secret_before = java_probe(&[
        "getkey",
        "JCEKS",
        s(&store),
        "storepass",
        "aeskey",
        "keypass2",
    ]);
    secret_before.assert_success();

    // No damaged or cut-short copy of this file makes the parser panic.
    let bytes = fs::read(&store).unwrap();
    let pass = certmesh::pass::Secret::new("storepass".into());
    for i in 0..bytes.len() {
        let _ = KeyStore::parse(Path::new("x"), &bytes[..i], None);
        let mut m = bytes.clone();
        m[i] ^= 0x5a;
        let _ = KeyStore::parse(Path::new("x"), &m, None);
        let _ = KeyStore::parse(Path::new("x"), &m, Some(&pass));
    }

    let pw = passfile(dir.path(), "storepass");
    let r = run(certmesh().args([
        "truststore",
        "list",
        "--store",
        s(&store),
        "--json",
        "--storepass",
        &format!("file:{}", s(&pw)),
    ]));
    r.assert_success();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["format"], "jceks");
    assert_eq!(v["integrity"], "verified");
    let types: Vec<&str> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"SecretKeyEntry") && types.contains(&"PrivateKeyEntry"),
        "{types:?}"
    );

    import(&store, "cluster-ca", &issued(&home, "ca.pem"), &pw, &[]).assert_success();
    let after = keytool_list(&store, "storepass", "JCEKS");
    assert_eq!(after.len(), 3);
    for (alias, v) in &before {
        assert_eq!(after.get(alias), Some(v), "{alias}");
    }
    let secret_after = java_probe(&[
        "getkey",
        "JCEKS",
        s(&store),
        "storepass",
        "aeskey",
        "keypass2",
    ]);
    assert_eq!(secret_after, secret_before);
    java_probe(&[
        "getkey",
        "JCEKS",
        s(&store),
        "storepass",
        "server",
        "keypass1",
    ])
    .assert_success();
}

#[test]
fn keytool_default_pkcs12_truststores_are_edited_in_their_own_format() {
    let dir = tempdir();
    let home = ca_with_n1(dir.path(), "pki");
    // Java 9+ keytool writes PKCS#12 even into a file named *.jks.
    let store = dir.path().join("named-like.jks");
    keytool(&[
        "-importcert",
        "-noprompt",
        "-alias",
        "ca",
        "-file",
        s(&issued(&home, "ca.pem")),
        "-keystore",
        s(&store),
        "-storepass",
        "storepass",
    ])
    .assert_success();
    let pw = passfile(dir.path(), "storepass");
    let stranger = ca_with_n1(dir.path(), "stranger");
    let before = fs::read(&store).unwrap();
    let r = import(&store, "stranger", &issued(&stranger, "ca.pem"), &pw, &[]);
    r.assert_success();
    assert!(r.stdout.contains("(PKCS#12)"), "{r:?}");
    assert_eq!(
        &fs::read(&store).unwrap()[..2],
        &before[..2],
        "still DER PKCS#12, not JKS"
    );
    let listed = keytool_list(&store, "storepass", "PKCS12");
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed["ca"],
        (
            "trustedCertEntry".to_string(),
            fingerprint(&issued(&home, "ca.pem"))
        )
    );
    assert_eq!(
        listed["stranger"],
        (
            "trustedCertEntry".to_string(),
            fingerprint(&issued(&stranger, "ca.pem"))
        )
    );
    let backups: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("named-like.jks.bak-")
        })
        .collect();
    assert_eq!(backups.len(), 1);
    assert_eq!(
        fs::read(backups[0].as_ref().unwrap().path()).unwrap(),
        before
    );

    // The same certificate again: nothing to change, file untouched.
    let now = fs::read(&store).unwrap();
    import(&store, "stranger", &issued(&stranger, "ca.pem"), &pw, &[]).assert_success();
    assert_eq!(fs::read(&store).unwrap(), now);
    // A different certificate under an existing alias needs --replace.
    let r = import(&store, "ca", &issued(&stranger, "cert.pem"), &pw, &[]);
    r.assert_failure();
    assert!(r.stderr.contains("--replace"), "{r:?}");
    assert_eq!(fs::read(&store).unwrap(), now);

    // Remove works too, and a wrong password changes nothing.
    let bad = passfile(dir.path(), "not-the-pass");
    let r = run(certmesh()
        .args([
            "truststore",
            "remove",
            "--store",
            s(&store),
            "--alias",
            "stranger",
            "--storepass",
        ])
        .arg(format!("file:{}", bad.display())));
    r.assert_failure();
    assert_eq!(r.stderr.trim().lines().count(), 1, "{r:?}");
    assert_eq!(fs::read(&store).unwrap(), now);
    run(certmesh()
        .args([
            "truststore",
            "remove",
            "--store",
            s(&store),
            "--alias",
            "stranger",
            "--storepass",
        ])
        .arg(format!("file:{}", pw.display())))
    .assert_success();
    let listed = keytool_list(&store, "storepass", "PKCS12");
    assert_eq!(listed.len(), 1);
    assert!(listed.contains_key("ca"));

    // A PKCS#12 keystore with a private key gets the signer as keytool -importcert adds
    // it, and keeps its key entry.
    let ks = dir.path().join("keystore.p12");
    keytool(&[
        "-genkeypair",
        "-alias",
        "k",
        "-keyalg",
        "EC",
        "-dname",
        "CN=k",
        "-keystore",
        s(&ks),
        "-storepass",
        "storepass",
        "-storetype",
        "PKCS12",
    ])
    .assert_success();
    let key_before = keytool_list(&ks, "storepass", "PKCS12");
    import(&ks, "x", &issued(&home, "ca.pem"), &pw, &[]).assert_success();
    let listed = keytool_list(&ks, "storepass", "PKCS12");
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed["k"], key_before["k"]);
    assert_eq!(listed["k"].0, "PrivateKeyEntry");
    assert_eq!(
        listed["x"],
        (
            "trustedCertEntry".to_string(),
            fingerprint(&issued(&home, "ca.pem"))
        )
    );
}

#[test]
fn debian_cacerts_gains_one_ca_and_keeps_the_rest() {
    if !Path::new(CACERTS).exists() {
        panic!("{CACERTS} missing: install ca-certificates-java (scripts/test does)");
    }
    let dir = tempdir();
    let home = ca_with_n1(dir.path(), "pki");
    let copy = dir.path().join("cacerts");
    fs::copy(CACERTS, &copy).unwrap();
    let before = keytool_list(&copy, "changeit", "JKS");
    assert!(before.len() > 100, "{}", before.len());
    let pw = passfile(dir.path(), "changeit");
    let t = Instant::now();
    import(
        &copy,
        "certmesh-cluster-ca",
        &issued(&home, "ca.pem"),
        &pw,
        &[],
    )
    .assert_success();
    eprintln!(
        "import into a copy of cacerts ({} entries) took {:?}",
        before.len(),
        t.elapsed()
    );
    let after = keytool_list(&copy, "changeit", "JKS");
    assert_eq!(after.len(), before.len() + 1);
    for (alias, v) in &before {
        assert_eq!(after.get(alias), Some(v), "{alias}");
    }
    // Importing the same certificate again changes nothing.
    let snap = snapshot(dir.path());
    let r = import(
        &copy,
        "certmesh-cluster-ca",
        &issued(&home, "ca.pem"),
        &pw,
        &[],
    );
    r.assert_success();
    assert!(r.stdout.contains("unchanged"), "{r:?}");
    assert_eq!(snapshot(dir.path()), snap);

    let py = support::pkilint::venv_python();
    let r = run(Command::new(py).args([
        "-c",
        "import jks,sys; ks=jks.KeyStore.load(sys.argv[1], 'changeit'); print(ks.store_type, len(ks.certs), len(ks.private_keys))",
        s(&copy),
    ]));
    r.assert_success();
    assert_eq!(
        r.stdout.trim(),
        format!("jks {} 0", before.len() + 1),
        "{r:?}"
    );

    // Removing it again gives back the original file byte for byte: every entry certmesh
    // did not touch kept its bytes, timestamp and place.
    run(certmesh().args([
        "truststore",
        "remove",
        "--store",
        s(&copy),
        "--alias",
        "certmesh-cluster-ca",
        "--storepass",
        &format!("file:{}", s(&pw)),
    ]))
    .assert_success();
    assert!(fs::read(&copy).unwrap() == fs::read(CACERTS).unwrap());
}

#[test]
fn duplicate_and_conflicting_aliases() {
    let dir = tempdir();
    let home = ca_with_n1(dir.path(), "pki");
    let other = ca_with_n1(dir.path(), "other");
    let pw = passfile(dir.path(), "changeit");
    let store = dir.path().join("t.jks");
    import(&store, "ca", &issued(&home, "ca.pem"), &pw, &["--create"]).assert_success();
    // Through a symbolic link, the file it points to is changed and the link stays.
    let link = dir.path().join("link.jks");
    std::os::unix::fs::symlink(&store, &link).unwrap();
    import(&link, "via-link", &issued(&other, "chain.pem"), &pw, &[]).assert_success();
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(keytool_list(&store, "changeit", "JKS").contains_key("via-link"));
    run(certmesh().args([
        "truststore",
        "remove",
        "--store",
        s(&link),
        "--alias",
        "via-link",
        "--storepass",
        &format!("file:{}", s(&pw)),
    ]))
    .assert_success();
    for e in fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().contains(".bak-") {
            fs::remove_file(p).unwrap();
        }
    }

    // A different certificate under an existing alias (any case) needs --replace.
    let snap = snapshot(dir.path());
    let r = import(&store, "CA", &issued(&other, "ca.pem"), &pw, &[]);
    r.assert_failure();
    assert!(r.stderr.contains("--replace"), "{r:?}");
    assert_eq!(snapshot(dir.path()), snap);
    // The same certificate under another alias is reported and skipped.
    let r = import(&store, "again", &issued(&home, "ca.pem"), &pw, &[]);
    r.assert_success();
    assert!(r.stderr.contains("already trusted as 'ca'"), "{r:?}");
    assert_eq!(snapshot(dir.path()), snap);
    // ...unless forced.
    import(
        &store,
        "again",
        &issued(&home, "ca.pem"),
        &pw,
        &["--force-duplicate"],
    )
    .assert_success();
    import(&store, "ca", &issued(&other, "ca.pem"), &pw, &["--replace"]).assert_success();
    let listed = keytool_list(&store, "changeit", "JKS");
    assert_eq!(listed["ca"].1, fingerprint(&issued(&other, "ca.pem")));
    assert_eq!(listed["again"].1, fingerprint(&issued(&home, "ca.pem")));

    // A bundle gets ALIAS, ALIAS-2, ...
    let bundle = dir.path().join("bundle.pem");
    let mut text = fs::read_to_string(issued(&home, "ca.pem")).unwrap();
    text.push_str(&fs::read_to_string(issued(&other, "ca.pem")).unwrap());
    fs::write(&bundle, text).unwrap();
    let fresh = dir.path().join("fresh.jks");
    import(&fresh, "b", &bundle, &pw, &["--create"]).assert_success();
    let listed = keytool_list(&fresh, "changeit", "JKS");
    assert_eq!(listed.keys().collect::<Vec<_>>(), ["b", "b-2"]);

    // --type must agree with the content.
    let snap = snapshot(dir.path());
    let r = import(
        &fresh,
        "c",
        &issued(&home, "chain.pem"),
        &pw,
        &["--type", "jceks"],
    );
    r.assert_failure();
    assert!(r.stderr.contains("is a JKS keystore"), "{r:?}");
    assert_eq!(snapshot(dir.path()), snap);
    // A new JCEKS store is one keytool reads.
    let jceks = dir.path().join("new.jceks");
    import(
        &jceks,
        "ca",
        &issued(&home, "ca.pem"),
        &pw,
        &["--create", "--type", "jceks"],
    )
    .assert_success();
    let listed = keytool_list(&jceks, "changeit", "JCEKS");
    assert_eq!(listed["ca"].1, fingerprint(&issued(&home, "ca.pem")));
    fs::remove_file(&jceks).unwrap();
    // Listing without a password warns that integrity was not checked.
    let r = run(certmesh().args(["truststore", "list", "--store", s(&fresh)]));
    r.assert_success();
    assert!(r.stderr.contains("integrity not checked"), "{r:?}");
    assert!(
        r.stdout.contains(&fingerprint(&issued(&other, "ca.pem"))),
        "{r:?}"
    );
    // While another run holds the keystore, a change fails at once with exit code 75.
    let snap = snapshot(dir.path());
    {
        let _held = certmesh::fsio::StoreLock::acquire(&fresh, false).unwrap();
        let r = import(
            &fresh,
            "c",
            &issued(&home, "chain.pem"),
            &pw,
            &["--force-duplicate"],
        );
        assert_eq!(r.status, 75, "{r:?}");
    }
    assert_eq!(snapshot(dir.path()), snap);
    // Changing it without one, and no terminal, names the option.
    let r = run(certmesh().args(["truststore", "remove", "--store", s(&fresh), "--alias", "b"]));
    r.assert_failure();
    assert!(r.stderr.contains("--storepass"), "{r:?}");
}

#[test]
fn damaged_or_wrongly_unlocked_stores_are_refused_untouched() {
    let dir = tempdir();
    let home = ca_with_n1(dir.path(), "pki");
    let work = dir.path().join("work");
    fs::create_dir(&work).unwrap();
    let pw = passfile(dir.path(), "changeit");
    let wrong = passfile(dir.path(), "wrongpass");
    let good = work.join("t.jks");
    import(&good, "ca", &issued(&home, "ca.pem"), &pw, &["--create"]).assert_success();
    let bytes = fs::read(&good).unwrap();

    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    let mut bad_magic = bytes.clone();
    bad_magic[0] = 0x00;
    let cases: Vec<(&str, Vec<u8>, &Path)> = vec![
        ("wrong password", bytes.clone(), &wrong),
        ("flipped byte", flipped, &pw),
        ("truncated", bytes[..bytes.len() - 7].to_vec(), &pw),
        ("truncated mid-entry", bytes[..40].to_vec(), &pw),
        ("bad magic", bad_magic, &pw),
        ("empty", Vec::new(), &pw),
    ];
    let stranger = ca_with_n1(dir.path(), "stranger");
    for (what, content, pass) in cases {
        fs::write(&good, &content).unwrap();
        let snap = snapshot(&work);
        let r = import(&good, "new", &issued(&stranger, "ca.pem"), pass, &[]);
        assert_eq!(r.status, 1, "{what}: {r:?}");
        let lines: Vec<&str> = r.stderr.trim().lines().collect();
        assert_eq!(lines.len(), 1, "{what}: {r:?}");
        assert!(lines[0].contains(s(&good)), "{what}: {r:?}");
        assert_eq!(snapshot(&work), snap, "{what}");
        let r = run(certmesh().args([
            "truststore",
            "remove",
            "--store",
            s(&good),
            "--alias",
            "ca",
            "--storepass",
            &format!("file:{}", s(pass)),
        ]));
        assert_eq!(r.status, 1, "{what}: {r:?}");
        assert_eq!(snapshot(&work), snap, "{what}");
    }
}
