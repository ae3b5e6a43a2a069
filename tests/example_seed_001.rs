//! The shipped example for seeds/001 (what `scripts/demo` runs) produces files a TLS
//! server can serve and a client can verify.

mod support;

use std::path::Path;
use std::process::Command;

use support::nginx::Nginx;
use support::openssl::{handshake_ok, openssl, s_client, verify};
use support::{mode, run, tempdir};

#[test]
fn seed_001_example_bootstraps_a_servable_cluster() {
    let dir = tempdir();
    let out = dir.path().join("out");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/seed-001-wso2-is-apache.sh");
    let r = run(Command::new("bash")
        .arg(&script)
        .arg(&out)
        .arg(env!("CARGO_BIN_EXE_certmesh")));
    r.assert_success();
    assert!(r.stdout.contains("is-node2"), "{r:?}");

    let crt = out.join("apache/server.crt");
    let key = out.join("apache/server.key");
    let ca = out.join("clients/ca.crt");
    assert_eq!(mode(&key), 0o600);
    verify(
        &ca,
        None,
        &crt,
        &["-verify_hostname", "localhost", "-purpose", "sslserver"],
    )
    .assert_success();
    for node in ["is-node1", "is-node2"] {
        let c = out.join("pki/issued").join(node).join("cert.pem");
        verify(
            &ca,
            None,
            &c,
            &["-purpose", "sslclient", "-verify_ip", "127.0.0.1"],
        )
        .assert_success();
    }
    let key_pub = openssl(&["pkey", "-in", key.to_str().unwrap(), "-pubout"]).stdout;
    let crt_pub = openssl(&["x509", "-in", crt.to_str().unwrap(), "-noout", "-pubkey"]).stdout;
    assert_eq!(key_pub, crt_pub);
    let nginx = Nginx::serve(&crt, &key);
    let r = s_client(nginx.port(), &ca, "localhost", &[]);
    assert!(handshake_ok(&r), "{r:?}");
}
