//! `certmesh probe`: the chain a real server serves (nginx, a Java TLS server), judged
//! as `verify` judges files, and one clear line for each way a connection goes wrong,
//! each against a loopback listener made for it.

mod support;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::java::JavaServer;
use support::nginx::{free_port, Nginx};
use support::openssl::{got_http_200, handshake_ok, https_get, openssl, s_client};
use support::{cluster_apply, cm, tempdir, Run};

/// A store at `home` with a root and a leaf `web` for web.test and 127.0.0.1.
fn store_with_web(home: &Path) -> PathBuf {
    cm(home, &["ca", "init", "--name", "Probe CA"]).assert_success();
    cm(
        home,
        &["issue", "web", "--dns", "web.test", "--ip", "127.0.0.1"],
    )
    .assert_success();
    home.join("issued/web")
}

fn probe(home: &Path, args: &[&str]) -> Run {
    cm(home, &[&["probe"][..], args].concat())
}

fn json(r: &Run) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"))
}

/// The serial of a PEM certificate as openssl prints it, in lower case (the form certmesh
/// reports).
fn openssl_serial(cert: &Path) -> String {
    let r = openssl(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-serial"]);
    r.assert_success();
    r.stdout.trim().trim_start_matches("serial=").to_lowercase()
}

#[test]
fn probe_reports_and_judges_what_nginx_serves() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    let web = store_with_web(&home);
    let nginx = Nginx::serve(&web.join("fullchain.pem"), &web.join("key.pem"));
    let ep = format!("127.0.0.1:{}", nginx.port());
    let root = home.join("ca/root/cert.pem");
    // openssl agrees the chain and name are good.
    assert!(handshake_ok(&s_client(
        nginx.port(),
        &root,
        "web.test",
        &[]
    )));

    // Trust from the store at --home; the name checked is --host, sent as SNI too.
    let r = probe(&home, &[&ep, "--host", "web.test", "--json"]);
    assert_eq!(r.status, 0, "{r:?}");
    let v = json(&r);
    let p = &v["probes"][0];
    assert_eq!(v["status"], "OK", "{v}");
    assert_eq!(p["endpoint"], ep.as_str());
    assert_eq!(p["sni"], "web.test");
    // The protocol openssl negotiates with the same nginx (Debian's nginx 1.22 enables up
    // to TLS 1.2 unless told otherwise).
    let s = s_client(nginx.port(), &root, "web.test", &[]);
    let proto = s
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Protocol  :"))
        .unwrap_or_else(|| panic!("{s:?}"))
        .trim()
        .to_string();
    assert_eq!(p["protocol"], proto.as_str(), "{v}");
    assert!(
        p["cipher_suite"].as_str().unwrap().starts_with("TLS_"),
        "{v}"
    );
    assert_eq!(
        p["chain"][0]["serial"],
        openssl_serial(&web.join("cert.pem")).as_str()
    );
    assert_eq!(p["chain"][0]["key"], "EC P-256", "{v}");
    assert_eq!(p["verdict"]["ok"], true, "{v}");
    assert_eq!(p["client_certificate"]["requested"], false);

    // By address: the IP subjectAltName is checked; the text names chain and verdict.
    let r = probe(&home, &[&ep, "--ca", root.to_str().unwrap()]);
    assert_eq!(r.status, 0, "{r:?}");
    assert!(r.stdout.starts_with(&format!("OK {ep}\n")), "{r:?}");
    assert!(r.stdout.contains(&format!(" {proto} TLS_")), "{r:?}");
    assert!(r.stdout.contains("verify: OK for 127.0.0.1"), "{r:?}");

    // A name the certificate does not carry: CRITICAL, as openssl refuses it.
    let r = probe(&home, &[&ep, "--host", "other.test"]);
    assert_eq!(r.status, 2, "{r:?}");
    assert!(
        r.stdout.starts_with(&format!(
            "CRITICAL {ep}: CN=web.test: hostname mismatch: other.test"
        )),
        "{r:?}"
    );
    assert!(!handshake_ok(&s_client(
        nginx.port(),
        &root,
        "other.test",
        &[]
    )));

    // Another CA's root: untrusted, CRITICAL.
    let other = dir.path().join("other");
    cm(&other, &["ca", "init", "--name", "Other CA"]).assert_success();
    let other_root = other.join("ca/root/cert.pem");
    let r = probe(
        &home,
        &[
            &ep,
            "--host",
            "web.test",
            "--ca",
            other_root.to_str().unwrap(),
        ],
    );
    assert_eq!(r.status, 2, "{r:?}");
    assert!(r.stdout.contains("unable to find the issuer"), "{r:?}");
    assert!(!handshake_ok(&s_client(
        nginx.port(),
        &other_root,
        "web.test",
        &[]
    )));

    // Expiring within --within: WARNING.
    let r = probe(&home, &[&ep, "--host", "web.test", "--within", "400d"]);
    assert_eq!(r.status, 1, "{r:?}");
    assert!(
        r.stdout
            .starts_with(&format!("WARNING {ep}: the served chain expires in")),
        "{r:?}"
    );
}

/// A loopback listener that answers each connection with `reply` (after reading what the
/// client sent first, when `read_first`), then closes; or, with `hold`, says nothing and
/// keeps the connection open that long.
fn listener(reply: &'static [u8], hold: Option<Duration>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            if let Some(h) = hold {
                std::thread::sleep(h);
                continue;
            }
            let mut buf = [0u8; 1024];
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            if !reply.is_empty() {
                let _ = s.read(&mut buf);
                let _ = s.write_all(reply);
            }
        }
    });
    port
}

#[track_caller]
fn one_line_failure(r: &Run, status: i32, line: &str) {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.stdout, format!("{line}\n"), "{r:?}");
    assert!(!r.stderr.contains("panic"), "{r:?}");
}

#[test]
fn every_failure_is_one_line_with_the_nagios_code() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    store_with_web(&home);

    // Nobody listens: UNKNOWN.
    let port = free_port();
    let r = probe(&home, &[&format!("127.0.0.1:{port}")]);
    one_line_failure(
        &r,
        3,
        &format!("UNKNOWN 127.0.0.1:{port}: connection refused"),
    );

    // Plain HTTP on the port.
    let port = listener(
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        None,
    );
    let r = probe(&home, &[&format!("127.0.0.1:{port}")]);
    one_line_failure(
        &r,
        2,
        &format!("CRITICAL 127.0.0.1:{port}: not TLS: the server answered in plain HTTP"),
    );

    // Another protocol (an SSH banner).
    let port = listener(b"SSH-2.0-OpenSSH_9.2\r\n", None);
    let r = probe(&home, &[&format!("127.0.0.1:{port}")]);
    one_line_failure(
        &r,
        2,
        &format!("CRITICAL 127.0.0.1:{port}: not TLS: the server answered 'SSH-2.0-OpenSSH_'"),
    );

    // A server that accepts and closes at once.
    let port = listener(b"", None);
    let r = probe(&home, &[&format!("127.0.0.1:{port}")]);
    one_line_failure(
        &r,
        2,
        &format!(
            "CRITICAL 127.0.0.1:{port}: the server closed the connection without a TLS handshake"
        ),
    );

    // A server that accepts and never answers.
    let port = listener(b"", Some(Duration::from_secs(5)));
    let r = probe(&home, &[&format!("127.0.0.1:{port}"), "--timeout", "1s"]);
    one_line_failure(
        &r,
        2,
        &format!("CRITICAL 127.0.0.1:{port}: timed out waiting for the TLS handshake after 1s"),
    );

    // An endpoint that is not HOST:PORT: a usage error naming it.
    let r = probe(&home, &["web.test"]);
    assert_eq!(r.status, 2, "{r:?}");
    assert!(r.stderr.contains("invalid endpoint 'web.test'"), "{r:?}");
}

#[test]
fn a_server_that_speaks_only_old_tls_is_protocol_too_old() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    let web = store_with_web(&home);
    let nginx = Nginx::serve_with(
        &web.join("fullchain.pem"),
        &web.join("key.pem"),
        "        ssl_protocols TLSv1.1;\n        ssl_ciphers DEFAULT:@SECLEVEL=0;\n",
    );
    let port = nginx.port();
    // openssl can still speak TLS 1.1 to it: the server is up, just old.
    let old = s_client(
        port,
        &home.join("ca/root/cert.pem"),
        "web.test",
        &["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"],
    );
    assert!(handshake_ok(&old), "{old:?}");
    let r = probe(&home, &[&format!("127.0.0.1:{port}")]);
    assert_eq!(r.status, 2, "{r:?}");
    assert!(
        r.stdout
            .starts_with(&format!("CRITICAL 127.0.0.1:{port}: protocol too old")),
        "{r:?}"
    );
    assert_eq!(r.stdout.lines().count(), 1, "{r:?}");
}

/// `openssl s_server` demanding a client certificate (`-Verify`): it refuses a client
/// without one with a TLS alert.
struct SServer {
    child: Child,
    port: u16,
}

impl SServer {
    fn start(cert: &Path, key: &Path, ca: &Path) -> SServer {
        let port = free_port();
        let child = Command::new("openssl")
            .args(["s_server", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .args(["-Verify", "1", "-verify_return_error", "-CAfile"])
            .arg(ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "s_server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        SServer { child, port }
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn mutual_tls_with_the_members_client_certificate() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    let web = store_with_web(&home);
    cm(
        &home,
        &["issue", "app", "--dns", "app.test", "--profile", "client"],
    )
    .assert_success();
    let root = home.join("ca/root/cert.pem");
    let nginx = Nginx::serve_with(
        &web.join("fullchain.pem"),
        &web.join("key.pem"),
        &format!(
            "        ssl_client_certificate {};\n        ssl_verify_client on;\n",
            root.display()
        ),
    );
    let port = nginx.port();
    let app = home.join("issued/app");
    let (cert, key) = (app.join("cert.pem"), app.join("key.pem"));
    // nginx itself: 200 with the client certificate, 400 without.
    let with = [
        "-cert",
        cert.to_str().unwrap(),
        "-key",
        key.to_str().unwrap(),
    ];
    assert!(got_http_200(&https_get(port, &root, "web.test", &with)));
    let without = https_get(port, &root, "web.test", &[]);
    assert!(without.stdout.contains("HTTP/1.1 400"), "{without:?}");

    let ep = format!("127.0.0.1:{port}");
    // A directory holding cert.pem and key.pem.
    let r = probe(
        &home,
        &[
            &ep,
            "--host",
            "web.test",
            "--client-cert",
            app.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(r.status, 0, "{r:?}");
    let v = json(&r);
    assert_eq!(v["probes"][0]["client_certificate"]["requested"], true);
    assert_eq!(v["probes"][0]["client_certificate"]["sent"], true);
    // A name issued into the store at --home.
    let r = probe(&home, &[&ep, "--host", "web.test", "--client-cert", "app"]);
    assert_eq!(r.status, 0, "{r:?}");
    assert!(r.stdout.contains("client certificate sent"), "{r:?}");
    // Without one nginx refuses (at the HTTP layer, after the handshake).
    let r = probe(&home, &[&ep, "--host", "web.test"]);
    assert_eq!(r.status, 2, "{r:?}");
    assert!(
        r.stdout.starts_with(&format!(
            "CRITICAL {ep}: the server requires a client certificate (give --client-cert): HTTP 400"
        )),
        "{r:?}"
    );
    // A client certificate from another CA is refused too.
    let other = dir.path().join("other");
    cm(&other, &["ca", "init", "--name", "Other CA"]).assert_success();
    cm(
        &other,
        &["issue", "app", "--dns", "app.test", "--profile", "client"],
    )
    .assert_success();
    let r = probe(
        &home,
        &[
            &ep,
            "--host",
            "web.test",
            "--client-cert",
            other.join("issued/app").to_str().unwrap(),
        ],
    );
    assert_eq!(r.status, 2, "{r:?}");
    assert!(
        r.stdout
            .contains("the server refused the client certificate"),
        "{r:?}"
    );
    // Neither a directory nor an issued name.
    let r = probe(&home, &[&ep, "--client-cert", "nobody"]);
    assert_eq!(r.status, 2, "{r:?}");
    assert!(r.stderr.contains("--client-cert nobody"), "{r:?}");

    // A server that refuses with a TLS alert instead (openssl s_server -Verify).
    let s = SServer::start(&web.join("fullchain.pem"), &web.join("key.pem"), &root);
    let ep = format!("127.0.0.1:{}", s.port);
    let r = probe(&home, &[&ep, "--host", "web.test"]);
    assert_eq!(r.status, 2, "{r:?}");
    assert!(
        r.stdout.starts_with(&format!(
            "CRITICAL {ep}: the server requires a client certificate (give --client-cert): TLS alert"
        )),
        "{r:?}"
    );
}

#[test]
fn probe_reads_a_java_server_on_a_java_generic_keystore() {
    let dir = tempdir();
    let manifest = dir.path().join("cluster.toml");
    fs::write(
        &manifest,
        "name = \"java\"\n[[member]]\nname = \"app\"\nprofile = \"java-generic\"\ndns = [\"app.cluster.test\"]\nip = [\"127.0.0.1\"]\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    cluster_apply(&manifest, &out).assert_success();
    let pass = fs::read_to_string(out.join("app/keystore.pass")).unwrap();
    let server = JavaServer::start(
        "PKCS12",
        &out.join("app/keystore.p12"),
        pass.trim_end(),
        free_port(),
    );
    let ca = out.join("pki/ca");
    let r = probe(
        &ca,
        &[
            &format!("127.0.0.1:{}", server.port()),
            "--host",
            "app.cluster.test",
            "--json",
        ],
    );
    assert_eq!(r.status, 0, "{r:?}");
    let v = json(&r);
    assert_eq!(
        v["probes"][0]["chain"][0]["serial"],
        openssl_serial(&ca.join("issued/app/cert.pem")).as_str(),
        "{v}"
    );
    assert_eq!(v["probes"][0]["verdict"]["ok"], true, "{v}");
}
