//! A small Java TLS client, compiled once per test run: it loads a truststore (JKS or
//! PKCS#12) as its TrustManager and connects with SNI and HTTPS host-name checking, so a
//! test learns whether real Java trusts a server with that store.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{run, Run};

const CLIENT: &str = r#"
import java.io.*;
import java.security.KeyStore;
import javax.net.ssl.*;

public class TrustClient {
    public static void main(String[] a) throws Exception {
        KeyStore ts = KeyStore.getInstance(a[0]);
        try (InputStream in = new FileInputStream(a[1])) { ts.load(in, System.getenv("STORE_PASS").toCharArray()); }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(ts);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, tmf.getTrustManagers(), null);
        SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket("127.0.0.1", Integer.parseInt(a[2]));
        SSLParameters p = s.getSSLParameters();
        p.setEndpointIdentificationAlgorithm("HTTPS");
        p.setServerNames(java.util.List.of(new SNIHostName(a[3])));
        s.setSSLParameters(p);
        s.setSoTimeout(10000);
        s.startHandshake();
        System.out.println("trusted " + s.getSession().getPeerPrincipal());
        s.close();
    }
}
"#;

fn classes() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("trustclient-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap()
            .keep();
        fs::write(dir.join("TrustClient.java"), CLIENT).unwrap();
        run(Command::new("javac")
            .arg("-d")
            .arg(&dir)
            .arg(dir.join("TrustClient.java")))
        .assert_success();
        dir
    })
}

/// Connects to 127.0.0.1:`port` as `host`, trusting what `store` (of `store_type`, e.g.
/// `JKS` or `PKCS12`, opened with `pass`) holds. Success: exit 0 and stdout
/// `trusted <server subject>`.
pub fn trust_client(store_type: &str, store: &Path, pass: &str, port: u16, host: &str) -> Run {
    run(Command::new("java")
        .arg("-cp")
        .arg(classes())
        .arg("TrustClient")
        .arg(store_type)
        .arg(store)
        .arg(port.to_string())
        .arg(host)
        .env("STORE_PASS", pass))
}

const SERVER: &str = r#"
import java.io.*;
import java.net.*;
import java.security.KeyStore;
import javax.net.ssl.*;

public class TlsServer {
    public static void main(String[] a) throws Exception {
        char[] pw = System.getenv("STORE_PASS").toCharArray();
        KeyStore ks = KeyStore.getInstance(a[0]);
        try (InputStream in = new FileInputStream(a[1])) { ks.load(in, pw); }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, pw);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), null, null);
        SSLServerSocket ss = (SSLServerSocket) ctx.getServerSocketFactory().createServerSocket();
        ss.setReuseAddress(true);
        ss.bind(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), Integer.parseInt(a[2])), 50);
        System.out.println("listening " + ss.getLocalPort());
        System.out.flush();
        while (true) {
            final SSLSocket s = (SSLSocket) ss.accept();
            new Thread(() -> {
                try (SSLSocket c = s) {
                    c.setSoTimeout(5000);
                    c.startHandshake();
                    c.getOutputStream().write("ok\n".getBytes());
                    c.getOutputStream().flush();
                } catch (Exception e) {
                }
            }).start();
        }
    }
}
"#;

/// The directory holding the compiled `TlsServer` class.
pub fn server_classes() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("tlsserver-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap()
            .keep();
        fs::write(dir.join("TlsServer.java"), SERVER).unwrap();
        run(Command::new("javac")
            .arg("-d")
            .arg(&dir)
            .arg(dir.join("TlsServer.java")))
        .assert_success();
        dir
    })
}

/// The shell command that runs a Java TLS server on 127.0.0.1:`port` with the key entry
/// of `store` (of `store_type`, opened with the password in `$STORE_PASS`), answering
/// `ok` to each connection, as a product's JVM would serve its keystore.
pub fn server_command(store_type: &str, store: &Path, port: u16) -> String {
    format!(
        "java -cp {} TlsServer {store_type} {} {port}",
        server_classes().display(),
        store.display()
    )
}

/// A Java TLS server the test owns; dropping it kills the JVM.
pub struct JavaServer {
    child: std::process::Child,
    port: u16,
}

impl JavaServer {
    /// Starts [`server_command`] and waits (up to 30 s) until it accepts connections.
    #[track_caller]
    pub fn start(store_type: &str, store: &Path, pass: &str, port: u16) -> JavaServer {
        let child = Command::new("java")
            .arg("-cp")
            .arg(server_classes())
            .args(["TlsServer", store_type])
            .arg(store)
            .arg(port.to_string())
            .env("STORE_PASS", pass)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run java");
        let server = JavaServer { child, port };
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(30),
                "the Java TLS server did not start on {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for JavaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
