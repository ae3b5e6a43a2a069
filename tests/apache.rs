//! The `apache-httpd` profile in front of a real Apache httpd: it serves the member's
//! chain to `openssl s_client`, and proxies to an nginx member that demands a client
//! certificate, authenticating with the SSLProxyMachineCertificateFile certmesh wrote.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::nginx::{free_port, Nginx};
use support::openssl::{handshake_ok, s_client};
use support::{
    certmesh, cluster_apply, cluster_with_a_revoked_member, run, run_with_timeout, tempdir,
    RevokedCluster,
};

struct Apache {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Apache {
    fn start(dir: &Path, vhost: &str) -> Apache {
        let port = free_port();
        let m = |name: &str| {
            format!("LoadModule {name}_module /usr/lib/apache2/modules/mod_{name}.so\n")
        };
        let mut conf = String::new();
        for name in [
            "mpm_event",
            "authz_core",
            "socache_shmcb",
            "ssl",
            "proxy",
            "proxy_http",
        ] {
            conf.push_str(&m(name));
        }
        let d = dir.display();
        conf.push_str(&format!(
            "ServerName localhost\nListen 127.0.0.1:{port}\nPidFile {d}/httpd.pid\nErrorLog {d}/error.log\nLogLevel info\nDefaultRuntimeDir {d}\nMutex file:{d} default\nUser www-data\nGroup www-data\nSSLSessionCache none\n<VirtualHost 127.0.0.1:{port}>\n{vhost}\n</VirtualHost>\n"
        ));
        fs::write(dir.join("httpd.conf"), conf).unwrap();
        let child = Command::new("/usr/sbin/apache2")
            .args(["-DFOREGROUND", "-f"])
            .arg(dir.join("httpd.conf"))
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("stderr.log")).unwrap())
            .spawn()
            .expect("start apache2 (scripts/test installs it)");
        let mut a = Apache {
            child,
            dir: dir.to_path_buf(),
            port,
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(_)) = a.child.try_wait() {
                panic!("apache2 exited: {}", a.logs());
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "apache2 did not start: {}",
                a.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        a
    }

    fn logs(&self) -> String {
        let read = |n: &str| fs::read_to_string(self.dir.join(n)).unwrap_or_default();
        format!(
            "--- error.log ---\n{}--- stderr ---\n{}",
            read("error.log"),
            read("stderr.log")
        )
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn apache_serves_the_profile_and_proxies_with_its_machine_certificate() {
    let dir = tempdir();
    let manifest = dir.path().join("cluster.toml");
    fs::write(
        &manifest,
        r#"name = "apache-front"
[[member]]
name = "lb"
dns = ["lb.cluster.test"]
profile = "apache-httpd"
key = "rsa2048"
[[member]]
name = "n1"
dns = ["n1.cluster.test"]
ip = ["127.0.0.1"]
profile = "nginx"
"#,
    )
    .unwrap();
    let out = dir.path().join("out");
    cluster_apply(&manifest, &out).assert_success();
    let f = |m: &str, n: &str| out.join(m).join(n).display().to_string();

    // The member behind the proxy only answers clients with a certificate it trusts.
    let n1 = Nginx::serve_with(
        &out.join("n1/fullchain.pem"),
        &out.join("n1/privkey.pem"),
        &format!("ssl_client_certificate {};\nssl_verify_client on;\nlocation = /member {{ return 200 \"n1 saw $ssl_client_s_dn\\n\"; }}\n", f("n1", "trust.pem")),
    );
    // Apache matches a proxied peer's name against DNS names only, and the member is
    // reached by address here (no resolver for *.cluster.test), so the name check is off;
    // the chain is still verified against ca-bundle.crt (SSLProxyVerify require).
    let adir = dir.path().join("apache");
    fs::create_dir(&adir).unwrap();
    let apache = Apache::start(
        &adir,
        &format!(
            "SSLEngine on\nSSLCertificateFile {}\nSSLCertificateKeyFile {}\nSSLProxyEngine on\nSSLProxyVerify require\nSSLProxyVerifyDepth 3\nSSLProxyCheckPeerName off\nSSLProxyCACertificateFile {}\nSSLProxyMachineCertificateFile {}\nProxyPass /member https://127.0.0.1:{}/member\n",
            f("lb", "server.crt"),
            f("lb", "server.key"),
            f("lb", "ca-bundle.crt"),
            f("lb", "proxy-machine.pem"),
            n1.port()
        ),
    );
    let ca = out.join("lb/ca-bundle.crt");
    let r = s_client(apache.port, &ca, "lb.cluster.test", &[]);
    assert!(handshake_ok(&r), "{r:?}\n{}", apache.logs());

    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-connect",
        &format!("127.0.0.1:{}", apache.port),
        "-servername",
        "lb.cluster.test",
        "-verify_return_error",
        "-ign_eof",
        "-CAfile",
    ])
    .arg(&ca);
    let r = run_with_timeout(
        &mut cmd,
        Some(b"GET /member HTTP/1.1\r\nHost: lb.cluster.test\r\nConnection: close\r\n\r\n"),
        Duration::from_secs(10),
    );
    assert!(
        r.stdout.contains("HTTP/1.1 200") && r.stdout.contains("n1 saw CN=lb.cluster.test"),
        "{r:?}\n{}\n{}",
        apache.logs(),
        n1.logs()
    );
}

/// With an intermediate CA, Apache checking revocation for the whole chain
/// (`SSLCARevocationCheck chain`) with the member's `crl.pem` accepts every valid
/// member's client certificate and refuses the revoked one: the file holds the root's CRL
/// as well as the intermediate's.
#[test]
fn apache_full_chain_revocation_refuses_only_the_revoked_member() {
    let dir = tempdir();
    let RevokedCluster {
        out,
        old,
        reapplied,
    } = cluster_with_a_revoked_member(
        dir.path(),
        "apache-chain",
        "apache-httpd",
        &["lb", "m1", "m2"],
        "m2",
        &["server.crt", "server.key"],
    );
    reapplied.assert_success();

    let f = |n: &str| out.join("lb").join(n).display().to_string();
    let adir = dir.path().join("apache");
    fs::create_dir(&adir).unwrap();
    let apache = Apache::start(
        &adir,
        &format!(
            "SSLEngine on\nSSLCertificateFile {}\nSSLCertificateKeyFile {}\nSSLCACertificateFile {}\nSSLVerifyClient require\nSSLVerifyDepth 3\nSSLCARevocationFile {}\nSSLCARevocationCheck chain\n",
            f("server.crt"),
            f("server.key"),
            f("ca-bundle.crt"),
            f("crl.pem"),
        ),
    );
    let ca = out.join("lb/ca-bundle.crt");
    let get = |d: &Path| {
        let mut cmd = Command::new("openssl");
        cmd.args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{}", apache.port),
            "-servername",
            "lb.cluster.test",
            "-verify_return_error",
            "-ign_eof",
        ])
        .arg("-CAfile")
        .arg(&ca)
        .arg("-cert")
        .arg(d.join("server.crt"))
        .arg("-cert_chain")
        .arg(d.join("server.crt"))
        .arg("-key")
        .arg(d.join("server.key"));
        run_with_timeout(
            &mut cmd,
            Some(b"GET / HTTP/1.1\r\nHost: lb.cluster.test\r\nConnection: close\r\n\r\n"),
            Duration::from_secs(10),
        )
    };
    for m in ["lb", "m1", "m2"] {
        let r = get(&out.join(m));
        assert!(
            handshake_ok(&r) && r.stdout.contains("HTTP/1.1 "),
            "{m}: {r:?}\n{}",
            apache.logs()
        );
    }
    let r = get(&old);
    assert!(!r.stdout.contains("HTTP/1.1 "), "{r:?}\n{}", apache.logs());
    assert!(apache.logs().contains("revoked"), "{}", apache.logs());
}

/// What Apache serves is what `probe` and `cluster status --probe` report: the member's
/// certificate, then, after its files were renewed without a reload, the previous one, and
/// the new one again once Apache reloads gracefully (SIGUSR1, what `apachectl graceful`
/// sends).
#[test]
fn probe_sees_what_apache_serves_until_it_reloads() {
    let dir = tempdir();
    let manifest = dir.path().join("cluster.toml");
    let out = dir.path().join("out");
    // days = 1 is inside the renew window: every apply renews.
    let text = |probe: &str| {
        format!(
            "name = \"apache-served\"\n[[member]]\nname = \"lb\"\ndns = [\"lb.cluster.test\"]\nip = [\"127.0.0.1\"]\nprofile = \"apache-httpd\"\ndays = 1\n{probe}"
        )
    };
    fs::write(&manifest, text("")).unwrap();
    let apply = || cluster_apply(&manifest, &out);
    apply().assert_success();
    // Apache reads the member's files where the deploy step would have put them.
    let served = dir.path().join("served");
    fs::create_dir(&served).unwrap();
    let deploy = || {
        for f in ["server.crt", "server.key"] {
            fs::copy(out.join("lb").join(f), served.join(f)).unwrap();
        }
    };
    deploy();
    let adir = dir.path().join("apache");
    fs::create_dir(&adir).unwrap();
    let apache = Apache::start(
        &adir,
        &format!(
            "SSLEngine on\nSSLCertificateFile {}\nSSLCertificateKeyFile {}\n",
            served.join("server.crt").display(),
            served.join("server.key").display()
        ),
    );
    let ep = format!("127.0.0.1:{}", apache.port);
    fs::write(&manifest, text(&format!("probe = [\"{ep}\"]\n"))).unwrap();
    let ca = out.join("lb/ca-bundle.crt");
    let serial = |cert: &Path| {
        let r = run(Command::new("openssl")
            .args(["x509", "-noout", "-serial", "-in"])
            .arg(cert));
        r.stdout.trim().trim_start_matches("serial=").to_lowercase()
    };
    let status = || {
        let r = run(certmesh()
            .args(["cluster", "status", "--probe", "--json"])
            .arg(&manifest)
            .arg("--out")
            .arg(&out));
        r.assert_success();
        serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap()
    };

    // probe: the chain Apache serves verifies for the name, and its leaf is lb's (a
    // one-day certificate: --within 1h keeps its expiry from being the verdict).
    let r = run(certmesh()
        .args([
            "probe",
            &ep,
            "--host",
            "lb.cluster.test",
            "--within",
            "1h",
            "--ca",
        ])
        .arg(&ca)
        .arg("--json"));
    assert_eq!(r.status, 0, "{r:?}\n{}", apache.logs());
    let first = serial(&out.join("lb/server.crt"));
    assert!(r.stdout.contains(&first), "{r:?}");
    let v = status();
    assert_eq!(v[0]["served"][0]["serves"], "current", "{v}");

    // Renewed on disk, deployed, not reloaded: Apache still serves the previous one.
    apply().assert_success();
    deploy();
    let renewed = serial(&out.join("lb/server.crt"));
    assert_ne!(renewed, first);
    let v = status();
    assert_eq!(v[0]["served"][0]["serves"], "previous", "{v}");
    assert_eq!(v[0]["served"][0]["serial"], first.as_str(), "{v}");

    // A graceful reload: the new certificate is served, and status says so.
    let pid = fs::read_to_string(adir.join("httpd.pid")).unwrap();
    assert!(run(Command::new("kill").args(["-USR1", pid.trim()])).success());
    let start = Instant::now();
    loop {
        let v = status();
        if v[0]["served"][0]["serves"] == "current" {
            assert_eq!(v[0]["served"][0]["serial"], renewed.as_str(), "{v}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "Apache did not serve the renewed certificate after a graceful reload: {v}\n{}",
            apache.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
