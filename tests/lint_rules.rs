//! The RFC rules certmesh keeps when it issues and that `certmesh lint` reports on files
//! made by other tools, one test per rule: key usages that fit the key (RFC 8813 for EC,
//! RFC 8410 for Ed25519), keyUsage consistent with extendedKeyUsage, keyUsage critical,
//! the 64-character CN limit, valid IDNA A-labels, and a CRL's thisUpdate not before the
//! revocations it lists. openssl, pkilint and Python `cryptography` check the files.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::openssl::{openssl, verify};
use support::pkilint::{at_least_warning, describe, lint_pkix_cert, venv_python};
use support::{certmesh, cluster_apply, cm, run, tempdir, Run};

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn x509_text(path: &Path) -> String {
    let r = openssl(&["x509", "-in", s(path), "-noout", "-text"]);
    r.assert_success();
    r.stdout
}

/// The line after `X509v3 Key Usage...` in openssl's text, trimmed.
fn key_usage_line(path: &Path) -> String {
    let text = x509_text(path);
    let mut lines = text.lines();
    lines
        .find(|l| l.contains("X509v3 Key Usage"))
        .and_then(|_| lines.next())
        .map(|l| l.trim().to_string())
        .unwrap_or_default()
}

/// `certmesh lint --json FILE`: (severity, code) of every finding of every certificate
/// and CRL in the file, and the exit status.
fn lint_codes(file: &Path) -> (Vec<(String, String)>, i32) {
    let r = run(certmesh().arg("lint").arg(file).arg("--json"));
    let v: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    let mut codes = Vec::new();
    for part in ["certificates", "crls"] {
        for item in v[part].as_array().unwrap() {
            for f in item["findings"].as_array().unwrap() {
                codes.push((
                    f["severity"].as_str().unwrap().to_string(),
                    f["code"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    (codes, r.status)
}

fn has(codes: &[(String, String)], severity: &str, code: &str) -> bool {
    codes.iter().any(|(s, c)| s == severity && c == code)
}

/// A self-signed end-entity certificate made by openssl with `key` (`ec`, `rsa`) and the
/// given `-addext` extensions.
fn openssl_leaf(dir: &Path, name: &str, key: &str, cn: &str, exts: &[&str]) -> PathBuf {
    let out = dir.join(format!("{name}.pem"));
    let mut args = vec!["req", "-x509", "-newkey"];
    let keyopt = match key {
        "ec" => vec!["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        _ => vec!["rsa:2048"],
    };
    args.extend(keyopt);
    let keyfile = dir.join(format!("{name}.key"));
    let subj = format!("/CN={cn}");
    args.extend([
        "-nodes",
        "-keyout",
        s(&keyfile),
        "-subj",
        &subj,
        "-days",
        "30",
    ]);
    args.extend(["-addext", "basicConstraints=critical,CA:FALSE"]);
    for e in exts {
        args.extend(["-addext", e]);
    }
    args.extend(["-out", s(&out)]);
    openssl(&args).assert_success();
    out
}

/// openssl's text shows an empty subject (no CN).
fn empty_subject(text: &str) -> bool {
    text.lines().any(|l| l.trim() == "Subject:")
}

fn issue(home: &Path, name: &str, dns: &str, profile: &str, key: &str) -> Run {
    cm(
        home,
        &[
            "issue",
            name,
            "--dns",
            dns,
            "--profile",
            profile,
            "--key",
            key,
        ],
    )
}

fn apply(manifest: &Path, out: &Path) -> Run {
    cluster_apply(manifest, out)
}

#[test]
fn key_usages_fit_the_key_type() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "KU CA"]).assert_success();
    for key in ["p256", "p384", "ed25519", "rsa2048"] {
        for profile in ["server", "client", "peer"] {
            let name = format!("{key}-{profile}");
            issue(&home, &name, &format!("{name}.example.com"), profile, key).assert_success();
            let ku = key_usage_line(&home.join("issued").join(&name).join("cert.pem"));
            // keyEncipherment only for RSA keys that serve TLS (RSA key exchange).
            let want = if key.starts_with("rsa") && profile != "client" {
                "Digital Signature, Key Encipherment"
            } else {
                "Digital Signature"
            };
            assert_eq!(ku, want, "{name}");
        }
    }

    // A product that encrypts with its members' keys (a profile asking for
    // dataEncipherment): RSA keys get dataEncipherment, EC keys keyAgreement (RFC 8813),
    // Ed25519 neither.
    let profiles = dir.path().join("profiles");
    fs::create_dir(&profiles).unwrap();
    fs::write(
        profiles.join("encrypting.toml"),
        "name = \"encrypting\"\ndescription = \"a product that encrypts with its key\"\n\
         cert_profile = \"peer\"\ndata_encipherment = true\n\
         [[file]]\npath = \"fullchain.pem\"\ncontent = \"fullchain\"\n\
         [[file]]\npath = \"key.pem\"\ncontent = \"key\"\n",
    )
    .unwrap();
    let manifest = dir.path().join("encrypting.toml");
    fs::write(
        &manifest,
        "name = \"ku\"\n[defaults]\nprofile = \"encrypting\"\n\
         [[member]]\nname = \"ec\"\ndns = [\"ec.example.com\"]\nkey = \"p256\"\n\
         [[member]]\nname = \"rsa\"\ndns = [\"rsa.example.com\"]\nkey = \"rsa2048\"\n\
         [[member]]\nname = \"ed\"\ndns = [\"ed.example.com\"]\nkey = \"ed25519\"\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let apply = |manifest: &Path, out: &Path| {
        run(certmesh()
            .args(["cluster", "apply"])
            .arg(manifest)
            .arg("--out")
            .arg(out)
            .arg("--profiles")
            .arg(&profiles))
    };
    apply(&manifest, &out).assert_success();
    let store = out.join("pki/ca/issued");
    for (member, want) in [
        ("ec", "Digital Signature, Key Agreement"),
        (
            "rsa",
            "Digital Signature, Key Encipherment, Data Encipherment",
        ),
        ("ed", "Digital Signature"),
    ] {
        let cert = store.join(member).join("cert.pem");
        assert_eq!(key_usage_line(&cert), want, "{member}");
        let bad = at_least_warning(&lint_pkix_cert(&cert)).len();
        assert_eq!(
            bad,
            0,
            "{member}: {}",
            describe(&at_least_warning(&lint_pkix_cert(&cert)))
        );
    }
    // A second apply finds the key usages as wanted: nothing to do.
    let r = apply(&manifest, &out);
    assert!(r.stdout.contains("nothing to do"), "{r:?}");

    // `certmesh lint` reports key usages that do not fit, as pkilint does.
    let ec = openssl_leaf(
        dir.path(),
        "ec-kenc",
        "ec",
        "ec.example.com",
        &[
            "keyUsage=critical,digitalSignature,keyEncipherment",
            "subjectAltName=DNS:ec.example.com",
        ],
    );
    let (codes, status) = lint_codes(&ec);
    assert!(has(&codes, "error", "key-usage-not-for-key"), "{codes:?}");
    assert_eq!(status, 1);
    assert!(
        !at_least_warning(&lint_pkix_cert(&ec)).is_empty(),
        "pkilint agrees that keyEncipherment does not fit an EC key"
    );
    let rsa = openssl_leaf(
        dir.path(),
        "rsa-ka",
        "rsa",
        "rsa.example.com",
        &[
            "keyUsage=critical,digitalSignature,keyAgreement",
            "subjectAltName=DNS:rsa.example.com",
        ],
    );
    assert!(has(&lint_codes(&rsa).0, "error", "key-usage-not-for-key"));
    let fine = openssl_leaf(
        dir.path(),
        "ec-fine",
        "ec",
        "fine.example.com",
        &[
            "keyUsage=critical,digitalSignature",
            "extendedKeyUsage=serverAuth",
            "subjectAltName=DNS:fine.example.com",
        ],
    );
    let (codes, _) = lint_codes(&fine);
    assert!(
        codes.iter().all(|(sev, _)| sev != "error"),
        "a fitting key usage is no error: {codes:?}"
    );
}

#[test]
fn key_usage_and_extended_key_usage_agree() {
    let dir = tempdir();
    // clientAuth needs digitalSignature (or keyAgreement); keyEncipherment alone is not it.
    let c = openssl_leaf(
        dir.path(),
        "client-kenc",
        "rsa",
        "c.example.com",
        &[
            "keyUsage=critical,keyEncipherment",
            "extendedKeyUsage=clientAuth",
            "subjectAltName=DNS:c.example.com",
        ],
    );
    let (codes, status) = lint_codes(&c);
    assert!(has(&codes, "error", "key-usage-eku-mismatch"), "{codes:?}");
    assert_eq!(status, 1);
    // serverAuth is served by keyEncipherment on an RSA key: no mismatch.
    let sv = openssl_leaf(
        dir.path(),
        "server-kenc",
        "rsa",
        "s.example.com",
        &[
            "keyUsage=critical,keyEncipherment",
            "extendedKeyUsage=serverAuth",
            "subjectAltName=DNS:s.example.com",
        ],
    );
    assert!(
        !has(&lint_codes(&sv).0, "error", "key-usage-eku-mismatch"),
        "{:?}",
        lint_codes(&sv)
    );
    // An end entity that may sign certificates.
    let ks = openssl_leaf(
        dir.path(),
        "leaf-kcs",
        "ec",
        "k.example.com",
        &[
            "keyUsage=critical,digitalSignature,keyCertSign",
            "extendedKeyUsage=serverAuth",
            "subjectAltName=DNS:k.example.com",
        ],
    );
    let (codes, _) = lint_codes(&ks);
    assert!(has(&codes, "error", "leaf-key-cert-sign"), "{codes:?}");
    assert!(
        !at_least_warning(&lint_pkix_cert(&ks)).is_empty(),
        "pkilint agrees"
    );
}

#[test]
fn key_usage_is_critical() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(
        &home,
        &["ca", "init", "--name", "Critical CA", "--key", "rsa2048"],
    )
    .assert_success();
    issue(&home, "n", "n.example.com", "peer", "rsa2048").assert_success();
    for cert in [
        home.join("ca/root/cert.pem"),
        home.join("issued/n/cert.pem"),
    ] {
        assert!(
            x509_text(&cert).contains("X509v3 Key Usage: critical"),
            "{}",
            cert.display()
        );
    }
    let soft = openssl_leaf(
        dir.path(),
        "soft",
        "ec",
        "soft.example.com",
        &[
            "keyUsage=digitalSignature",
            "extendedKeyUsage=serverAuth",
            "subjectAltName=DNS:soft.example.com",
        ],
    );
    let (codes, status) = lint_codes(&soft);
    assert!(
        has(&codes, "warning", "key-usage-not-critical"),
        "{codes:?}"
    );
    assert_eq!(status, 0, "a warning fails only with --fail-on warning");
    let r = run(certmesh()
        .arg("lint")
        .arg(&soft)
        .args(["--fail-on", "warning"]));
    assert_eq!(r.status, 1, "{r:?}");
}

#[test]
fn a_common_name_longer_than_64_characters_is_left_out() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "CN CA", "--key", "p256"]).assert_success();
    let long = format!("{}.example.com", "a".repeat(60));
    assert!(long.len() > 64);
    cm(
        &home,
        &[
            "issue",
            "long",
            "--dns",
            &long,
            "--dns",
            "short.example.com",
        ],
    )
    .assert_success();
    let cert = home.join("issued/long/cert.pem");
    let text = x509_text(&cert);
    assert!(empty_subject(&text), "no CN in the subject: {text}");
    assert!(
        text.contains("X509v3 Subject Alternative Name: critical"),
        "an empty subject makes the subjectAltName critical: {text}"
    );
    assert!(text.contains(&format!("DNS:{long}")), "{text}");
    verify(
        &home.join("ca/root/cert.pem"),
        None,
        &cert,
        &["-verify_hostname", &long, "-purpose", "sslserver"],
    )
    .assert_success();
    let bad = at_least_warning(&lint_pkix_cert(&cert)).len();
    assert_eq!(
        bad,
        0,
        "{}",
        describe(&at_least_warning(&lint_pkix_cert(&cert)))
    );
    assert_eq!(lint_codes(&cert), (Vec::new(), 0));

    // A CSR naming only the long name gets the same.
    let csr = dir.path().join("long.csr");
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        s(&dir.path().join("csr.key")),
        "-subj",
        "/O=Example",
        "-addext",
        &format!("subjectAltName=DNS:{long}"),
        "-out",
        s(&csr),
    ])
    .assert_success();
    let signed = dir.path().join("signed.pem");
    cm(&home, &["sign", s(&csr), "--out", s(&signed)]).assert_success();
    assert!(empty_subject(&x509_text(&signed)), "{}", x509_text(&signed));

    // A CA name that long is refused with one line, and nothing is created.
    let too_long = "C".repeat(65);
    let other = dir.path().join("other");
    let r = cm(&other, &["ca", "init", "--name", &too_long]);
    assert_eq!(r.status, 2, "{r:?}");
    assert!(
        r.stderr.trim().lines().count() == 1 && r.stderr.contains("64"),
        "{r:?}"
    );
    assert!(!other.join("ca").exists());

    // `certmesh lint` reports a CN over the limit (made with Python's cryptography, as
    // openssl refuses to write one).
    let made = dir.path().join("long-cn.pem");
    let py = r#"
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, sys.argv[2], _validate=False)])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
    .public_key(key.public_key()).serial_number(x509.random_serial_number())
    .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
    .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    .add_extension(x509.SubjectAlternativeName([x509.DNSName(sys.argv[2])]), critical=False)
    .sign(key, hashes.SHA256()))
open(sys.argv[1], "wb").write(cert.public_bytes(serialization.Encoding.PEM))
"#;
    run(Command::new(venv_python())
        .args(["-c", py])
        .arg(&made)
        .arg(&long))
    .assert_success();
    let (codes, status) = lint_codes(&made);
    assert!(has(&codes, "error", "common-name-too-long"), "{codes:?}");
    assert_eq!(status, 1);
}

#[test]
fn invalid_a_labels_are_refused_and_reported() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "IDNA CA"]).assert_success();
    // bücher.example.com is xn--bcher-kva; "kv8" leaves the Punycode unfinished, and
    // xn--bung-fna is "Übung", with an upper-case letter IDNA never allows.
    issue(&home, "good", "xn--bcher-kva.example.com", "server", "p256").assert_success();
    let good = home.join("issued/good/cert.pem");
    assert_eq!(lint_codes(&good), (Vec::new(), 0));
    for bad in ["xn--bcher-kv8.example.com", "www.xn--bung-fna.example.com"] {
        let r = issue(&home, "bad", bad, "server", "p256");
        assert_eq!(r.status, 2, "{bad}: {r:?}");
        let line = r.stderr.trim();
        assert!(
            line.lines().count() == 1 && line.contains(bad) && line.contains("A-label"),
            "{r:?}"
        );
        assert!(!home.join("issued/bad").exists());
    }

    // In a manifest: the apply names the file and the member, and writes nothing.
    let manifest = dir.path().join("cluster.toml");
    fs::write(
        &manifest,
        "name = \"idna\"\n[defaults]\nprofile = \"nginx\"\n[[member]]\nname = \"m\"\ndns = [\"xn--bcher-kv8.example.com\"]\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let r = apply(&manifest, &out);
    assert_ne!(r.status, 0, "{r:?}");
    assert!(
        r.stderr.contains("cluster.toml") && r.stderr.contains("A-label"),
        "{r:?}"
    );
    assert!(!out.join("m").exists());

    // In a CSR: refused.
    let csr = dir.path().join("bad.csr");
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        s(&dir.path().join("csr.key")),
        "-subj",
        "/CN=xn--bcher-kv8.example.com",
        "-addext",
        "subjectAltName=DNS:xn--bcher-kv8.example.com",
        "-out",
        s(&csr),
    ])
    .assert_success();
    let signed = dir.path().join("signed.pem");
    let r = cm(&home, &["sign", s(&csr), "--out", s(&signed)]);
    assert_ne!(r.status, 0, "{r:?}");
    assert!(r.stderr.contains("A-label"), "{r:?}");
    assert!(!signed.exists());

    // `certmesh lint` reports one made by openssl.
    let made = openssl_leaf(
        dir.path(),
        "bad-alabel",
        "ec",
        "ok.example.com",
        &[
            "keyUsage=critical,digitalSignature",
            "subjectAltName=DNS:xn--bcher-kv8.example.com",
        ],
    );
    let (codes, status) = lint_codes(&made);
    assert!(has(&codes, "error", "invalid-a-label"), "{codes:?}");
    assert_eq!(status, 1);
}

#[test]
fn a_crl_never_says_it_was_issued_before_a_revocation_it_lists() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "CRL CA"]).assert_success();
    issue(&home, "n", "n.example.com", "server", "p256").assert_success();
    cm(&home, &["revoke", "n", "--reason", "keyCompromise"]).assert_success();
    let crl = home.join("crl.pem");
    let py = r#"
import sys
from cryptography import x509
crl = x509.load_pem_x509_crl(open(sys.argv[1], "rb").read())
entries = list(crl)
assert len(entries) == 1, entries
for r in entries:
    assert r.revocation_date_utc <= crl.last_update_utc, (r.revocation_date_utc, crl.last_update_utc)
print("ok")
"#;
    let r = run(Command::new(venv_python()).args(["-c", py]).arg(&crl));
    assert!(r.success() && r.stdout.trim() == "ok", "{r:?}");
    assert_eq!(lint_codes(&crl), (Vec::new(), 0));

    // `certmesh lint` reads CRLs, PEM or DER, and reports one whose thisUpdate precedes
    // a revocation it lists.
    let made = dir.path().join("made");
    let py = r#"
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Made CA")])
now = datetime.datetime.now(datetime.timezone.utc)
entry = (x509.RevokedCertificateBuilder().serial_number(12345)
    .revocation_date(now + datetime.timedelta(minutes=5)).build())
crl = (x509.CertificateRevocationListBuilder().issuer_name(name)
    .last_update(now).next_update(now + datetime.timedelta(days=7))
    .add_revoked_certificate(entry)
    .add_extension(x509.CRLNumber(1), critical=False)
    .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
    .sign(key, hashes.SHA256()))
open(sys.argv[1] + ".pem", "wb").write(crl.public_bytes(serialization.Encoding.PEM))
open(sys.argv[1] + ".der", "wb").write(crl.public_bytes(serialization.Encoding.DER))
"#;
    run(Command::new(venv_python()).args(["-c", py]).arg(&made)).assert_success();
    for ext in ["pem", "der"] {
        let file = dir.path().join(format!("made.{ext}"));
        let (codes, status) = lint_codes(&file);
        assert!(
            has(&codes, "error", "crl-revoked-after-this-update"),
            "{ext}: {codes:?}"
        );
        assert_eq!(status, 1);
    }
    let r = run(certmesh().arg("lint").arg(dir.path().join("made.pem")));
    assert!(
        r.stdout
            .contains("CRL of CN=Made CA: error crl-revoked-after-this-update"),
        "{r:?}"
    );
}
