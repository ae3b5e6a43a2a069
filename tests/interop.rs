//! Issued certificates in front of real consumers: nginx serving them to
//! `openssl s_client`, and pkilint judging them against RFC 5280.

mod support;

use std::path::{Path, PathBuf};

use support::nginx::Nginx;
use support::openssl::{handshake_ok, s_client};
use support::pkilint::{at_least_warning, describe, lint_pkix_cert};
use support::{ca_with_every_profile, cm, tempdir};

fn issued(home: &Path, name: &str, file: &str) -> PathBuf {
    home.join("issued").join(name).join(file)
}

#[test]
fn nginx_serves_issued_chains_that_s_client_accepts() {
    for (key, intermediate) in [
        ("p256", true),
        ("rsa2048", true),
        ("ed25519", false),
        ("p384", false),
    ] {
        let dir = tempdir();
        let home = dir.path().join("pki");
        cm(&home, &["ca", "init", "--name", "Cluster CA", "--key", key]).assert_success();
        if intermediate {
            cm(&home, &["ca", "intermediate", "--key", key]).assert_success();
        }
        cm(
            &home,
            &[
                "issue",
                "lb",
                "--dns",
                "lb.example.com",
                "--ip",
                "127.0.0.1",
                "--key",
                key,
            ],
        )
        .assert_success();
        let nginx = Nginx::serve(
            &issued(&home, "lb", "fullchain.pem"),
            &issued(&home, "lb", "key.pem"),
        );
        let ca = issued(&home, "lb", "ca.pem");
        let r = s_client(nginx.port(), &ca, "lb.example.com", &[]);
        assert!(handshake_ok(&r), "{key}: {r:?}\n{}", nginx.logs());
        // The wrong host name fails: -verify_return_error makes the check count.
        let r = s_client(nginx.port(), &ca, "other.example.com", &[]);
        assert!(!handshake_ok(&r), "{key}: wrong host accepted: {r:?}");
        // IP SAN: verify the address, not a name.
        let r = s_client(
            nginx.port(),
            &ca,
            "lb.example.com",
            &["-verify_ip", "127.0.0.1"],
        );
        assert!(handshake_ok(&r), "{key}: {r:?}");
        // A client that does not trust the cluster CA refuses.
        let other = dir.path().join("other");
        cm(&other, &["ca", "init", "--name", "Other CA"]).assert_success();
        let r = s_client(
            nginx.port(),
            &other.join("ca/root/cert.pem"),
            "lb.example.com",
            &[],
        );
        assert!(!handshake_ok(&r), "{key}: untrusted CA accepted: {r:?}");
    }
}

#[test]
fn a_client_certificate_served_as_a_server_is_rejected() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "Cluster CA"]).assert_success();
    cm(
        &home,
        &[
            "issue",
            "cli",
            "--dns",
            "lb.example.com",
            "--profile",
            "client",
        ],
    )
    .assert_success();
    cm(
        &home,
        &[
            "issue",
            "peer",
            "--dns",
            "lb.example.com",
            "--profile",
            "peer",
        ],
    )
    .assert_success();
    let ca = issued(&home, "cli", "ca.pem");
    let nginx = Nginx::serve(
        &issued(&home, "cli", "fullchain.pem"),
        &issued(&home, "cli", "key.pem"),
    );
    let r = s_client(nginx.port(), &ca, "lb.example.com", &[]);
    assert!(
        !handshake_ok(&r),
        "clientAuth-only certificate accepted as a server: {r:?}"
    );
    assert!(
        format!("{}{}", r.stdout, r.stderr).contains("unsuitable certificate purpose"),
        "{r:?}"
    );
    drop(nginx);
    // The peer profile serves fine.
    let nginx = Nginx::serve(
        &issued(&home, "peer", "fullchain.pem"),
        &issued(&home, "peer", "key.pem"),
    );
    let r = s_client(nginx.port(), &ca, "lb.example.com", &[]);
    assert!(handshake_ok(&r), "{r:?}");
}

#[test]
fn pkilint_finds_nothing_to_warn_about() {
    for key in ["p256", "rsa3072", "ed25519"] {
        let dir = tempdir();
        let home = dir.path().join("pki");
        // Name-constrained, as `ca init --permit-dns` makes it.
        let files = ca_with_every_profile(&home, key, &["--permit-dns", "example.com"]);
        for f in files {
            let findings = lint_pkix_cert(&f);
            let bad = at_least_warning(&findings);
            assert!(bad.is_empty(), "{key} {}: {}", f.display(), describe(&bad));
        }
    }
}
