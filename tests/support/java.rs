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
