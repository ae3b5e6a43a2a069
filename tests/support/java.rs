//! A small Java TLS client, compiled once per test run: it loads a truststore (JKS or
//! PKCS#12) as its TrustManager and connects with SNI and HTTPS host-name checking, so a
//! test learns whether real Java trusts a server with that store.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{run, run_with_timeout, Run};

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

/// The directory holding class `class` compiled from `source` (the source of
/// `class.java`). It is compiled once into the target's temporary directory, under a name
/// that depends on the source: a changed source is compiled again, an unchanged one is
/// not, in this run or the next, and test processes racing to compile it each get a
/// complete copy.
pub fn compiled(class: &str, source: &str) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    source.hash(&mut h);
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = base.join(format!("java-{class}-{:016x}", h.finish()));
    if dir.join(format!("{class}.class")).exists() {
        return dir;
    }
    let build = tempfile::Builder::new()
        .prefix(&format!("java-{class}-build-"))
        .tempdir_in(base)
        .unwrap();
    let file = build.path().join(format!("{class}.java"));
    fs::write(&file, source).unwrap();
    run_with_timeout(
        Command::new("javac").arg("-d").arg(build.path()).arg(&file),
        None,
        std::time::Duration::from_secs(300),
    )
    .assert_success();
    // Another test process may have won the race; either copy will do.
    let build = build.keep();
    if fs::rename(&build, &dir).is_err() {
        let _ = fs::remove_dir_all(&build);
    }
    dir
}

fn classes() -> PathBuf {
    compiled("TrustClient", CLIENT)
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

/// What the products do with their keys, in Java as they do it: WSO2's cipher tool and
/// CryptoUtil encrypt with the keystore's certificate (RSA-OAEP) and decrypt with its key,
/// its token issuer signs JWTs (RS256) that other nodes verify with their keystore's
/// certificate, and SecureTransport encrypts cluster traffic with the cluster certificate.
/// Every command reads the store (of type `args[1]`, file `args[2]`, entry `args[3]`) with
/// the password in `STORE_PASS`, which is also the key's password.
const PRODUCT_CRYPTO: &str = r#"
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.security.*;
import java.security.cert.Certificate;
import java.util.Base64;
import javax.crypto.Cipher;

public class ProductCrypto {
    static final String OAEP = "RSA/ECB/OAEPwithSHA1andMGF1Padding";

    public static void main(String[] a) throws Exception {
        char[] pw = System.getenv("STORE_PASS").toCharArray();
        KeyStore ks = KeyStore.getInstance(a[1]);
        try (InputStream in = new FileInputStream(a[2])) { ks.load(in, pw); }
        Certificate cert = ks.getCertificate(a[3]);
        Base64.Encoder b64 = Base64.getUrlEncoder().withoutPadding();
        Base64.Decoder d64 = Base64.getUrlDecoder();
        switch (a[0]) {
            case "encrypt": {
                Cipher c = Cipher.getInstance(OAEP);
                c.init(Cipher.ENCRYPT_MODE, cert.getPublicKey());
                System.out.println(b64.encodeToString(c.doFinal(a[4].getBytes(StandardCharsets.UTF_8))));
                break;
            }
            case "decrypt": {
                Cipher c = Cipher.getInstance(OAEP);
                c.init(Cipher.DECRYPT_MODE, (PrivateKey) ks.getKey(a[3], pw));
                System.out.println(new String(c.doFinal(d64.decode(a[4])), StandardCharsets.UTF_8));
                break;
            }
            case "sign-jwt": {
                String header = b64.encodeToString("{\"alg\":\"RS256\",\"typ\":\"JWT\"}".getBytes(StandardCharsets.UTF_8));
                String claims = b64.encodeToString(("{\"sub\":\"" + a[4] + "\",\"iss\":\"https://localhost:9443/oauth2/token\"}").getBytes(StandardCharsets.UTF_8));
                Signature s = Signature.getInstance("SHA256withRSA");
                s.initSign((PrivateKey) ks.getKey(a[3], pw));
                s.update((header + "." + claims).getBytes(StandardCharsets.US_ASCII));
                System.out.println(header + "." + claims + "." + b64.encodeToString(s.sign()));
                break;
            }
            case "verify-jwt": {
                String[] parts = a[4].split("\\.");
                String header = new String(d64.decode(parts[0]), StandardCharsets.UTF_8);
                if (!header.contains("\"RS256\"")) throw new Exception("not RS256: " + header);
                Signature s = Signature.getInstance("SHA256withRSA");
                s.initVerify(cert.getPublicKey());
                s.update((parts[0] + "." + parts[1]).getBytes(StandardCharsets.US_ASCII));
                if (!s.verify(d64.decode(parts[2]))) { System.out.println("invalid"); System.exit(1); }
                System.out.println("valid " + new String(d64.decode(parts[1]), StandardCharsets.UTF_8));
                break;
            }
            default: throw new Exception("unknown command " + a[0]);
        }
    }
}
"#;

fn product_classes() -> PathBuf {
    compiled("ProductCrypto", PRODUCT_CRYPTO)
}

/// Runs `ProductCrypto COMMAND STORE_TYPE STORE ALIAS ARG` (see [`PRODUCT_CRYPTO`]):
/// `encrypt` prints the ciphertext of ARG, `decrypt` the plaintext of ARG, `sign-jwt` a
/// token with subject ARG, `verify-jwt` "valid <claims>" (exit 1 when it does not verify).
pub fn product_crypto(
    command: &str,
    store_type: &str,
    store: &Path,
    pass: &str,
    alias: &str,
    arg: &str,
) -> Run {
    run(Command::new("java")
        .arg("-cp")
        .arg(product_classes())
        .arg("ProductCrypto")
        .args([command, store_type])
        .arg(store)
        .args([alias, arg])
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
pub fn server_classes() -> PathBuf {
    compiled("TlsServer", SERVER)
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
