//! `certmesh revoke`, `certmesh crl` and `certmesh rollback`, checked by openssl and by
//! nginx refusing a revoked client certificate; the `--log` file; the cron and systemd
//! units under scripts/.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use support::nginx::Nginx;
use support::openssl::{got_http_200, https_get, openssl, verify};
use support::{
    certmesh, cluster_with_a_revoked_member, cm, run, snapshot, tempdir, RevokedCluster, Run,
};

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The serial as openssl prints it (upper-case hex).
fn serial(cert: &Path) -> String {
    let r = openssl(&["x509", "-in", p(cert), "-noout", "-serial"]);
    r.assert_success();
    r.stdout.trim().trim_start_matches("serial=").to_string()
}

fn crl_text(home: &Path) -> Run {
    let r = openssl(&[
        "crl",
        "-in",
        p(&home.join("crl.pem")),
        "-CAfile",
        p(&home.join("ca/root/cert.pem")),
        "-noout",
        "-text",
        "-verify",
    ]);
    r.assert_success();
    assert!(r.stderr.contains("verify OK"), "{r:?}");
    r
}

fn crl_number(text: &str) -> u64 {
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.contains("X509v3 CRL Number") {
            return lines.next().unwrap().trim().parse().unwrap();
        }
    }
    panic!("no CRL number in\n{text}")
}

fn list(home: &Path) -> Vec<serde_json::Value> {
    let r = cm(home, &["list", "--all", "--json"]);
    r.assert_success();
    serde_json::from_str::<serde_json::Value>(&r.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn status_of(home: &Path, serial_upper: &str) -> String {
    list(home)
        .iter()
        .find(|r| {
            r["serial"]
                .as_str()
                .unwrap()
                .eq_ignore_ascii_case(serial_upper)
        })
        .unwrap_or_else(|| panic!("{serial_upper} not in the inventory"))["status"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn revoked_client_is_listed_on_the_crl_and_refused_by_nginx() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "CRL Test CA"]).assert_success();
    cm(&home, &["issue", "web", "--dns", "web.example.test"]).assert_success();
    for who in ["alice", "bob"] {
        cm(
            &home,
            &[
                "issue",
                who,
                "--dns",
                &format!("{who}.example.test"),
                "--profile",
                "client",
            ],
        )
        .assert_success();
    }
    let alice = serial(&home.join("issued/alice/cert.pem"));
    let bob = serial(&home.join("issued/bob/cert.pem"));

    let r = cm(&home, &["revoke", "alice", "--reason", "keyCompromise"]);
    r.assert_success();
    assert!(r.stdout.contains("revoked alice"), "{r:?}");
    let text = crl_text(&home).stdout;
    assert!(text.contains(&format!("Serial Number: {alice}")), "{text}");
    assert!(!text.contains(&bob), "{text}");
    assert!(text.contains("Key Compromise"), "{text}");
    assert!(text.contains("Version 2"), "{text}");
    let first = crl_number(&text);
    assert_eq!(status_of(&home, &alice), "revoked");
    assert_eq!(status_of(&home, &bob), "valid");
    let rec = list(&home)
        .into_iter()
        .find(|r| r["name"] == "alice")
        .unwrap();
    assert_eq!(rec["revocation_reason"], "keyCompromise", "{rec}");
    assert!(rec["revoked_at"].as_i64().unwrap() > 1_700_000_000, "{rec}");
    assert!(list(&home)
        .iter()
        .find(|r| r["name"] == "bob")
        .unwrap()
        .get("revoked_at")
        .is_none());

    // Revoking again changes nothing, not even the CRL.
    let before = fs::read(home.join("crl.pem")).unwrap();
    let r = cm(&home, &["revoke", "alice"]);
    r.assert_success();
    assert!(r.stdout.contains("already revoked"), "{r:?}");
    assert_eq!(fs::read(home.join("crl.pem")).unwrap(), before);

    // Unknown names and serials: one line, exit 1, nothing changed.
    for what in ["nobody", "00:11:22"] {
        let r = cm(&home, &["revoke", what]);
        assert_eq!(r.status, 1, "{r:?}");
        assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
        assert!(r.stderr.contains(what), "{r:?}");
    }
    let r = cm(&home, &["revoke", "bob", "--reason", "bogus"]);
    assert_eq!(r.status, 2, "{r:?}");
    assert_eq!(status_of(&home, &bob), "valid");

    // `crl` numbers every CRL one higher, and --out gets the same bytes.
    let out = dir.path().join("copy.pem");
    cm(&home, &["crl", "--days", "2", "--out", p(&out)]).assert_success();
    let text = crl_text(&home).stdout;
    assert_eq!(crl_number(&text), first + 1);
    assert!(text.contains(&format!("Serial Number: {alice}")), "{text}");
    assert_eq!(
        fs::read(&out).unwrap(),
        fs::read(home.join("crl.pem")).unwrap()
    );

    // A revoked certificate by serial (with colons, lower case), with another reason.
    cm(
        &home,
        &[
            "issue",
            "carol",
            "--dns",
            "carol.example.test",
            "--profile",
            "client",
        ],
    )
    .assert_success();
    let carol = serial(&home.join("issued/carol/cert.pem"));
    let colon: Vec<String> = carol
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).to_lowercase())
        .collect();
    cm(
        &home,
        &[
            "revoke",
            &colon.join(":"),
            "--reason",
            "cessationOfOperation",
        ],
    )
    .assert_success();
    let text = crl_text(&home).stdout;
    assert_eq!(crl_number(&text), first + 2);
    assert!(text.contains(&format!("Serial Number: {carol}")), "{text}");
    assert!(text.contains("Cessation Of Operation"), "{text}");

    // nginx: the CA for client certificates plus the CRL.
    let issued = home.join("issued");
    let extra = format!(
        "ssl_client_certificate {};\n        ssl_crl {};\n        ssl_verify_client on;",
        p(&home.join("ca/root/cert.pem")),
        p(&home.join("crl.pem"))
    );
    let web = Nginx::serve_with(
        &issued.join("web/fullchain.pem"),
        &issued.join("web/key.pem"),
        &extra,
    );
    let ca = issued.join("web/ca.pem");
    let get = |who: &str| {
        https_get(
            web.port(),
            &ca,
            "web.example.test",
            &[
                "-cert",
                p(&issued.join(who).join("cert.pem")),
                "-key",
                p(&issued.join(who).join("key.pem")),
            ],
        )
    };
    let ok = get("bob");
    assert!(got_http_200(&ok), "{ok:?}\n{}", web.logs());
    for revoked in ["alice", "carol"] {
        let r = get(revoked);
        assert!(r.stdout.contains("HTTP/1.1 400"), "{r:?}\n{}", web.logs());
        assert!(!got_http_200(&r));
    }
    assert!(web.logs().contains("revoked"), "{}", web.logs());
}

#[test]
fn rollback_puts_back_the_previous_generation_and_can_be_undone() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "Rollback CA"]).assert_success();
    let r = cm(&home, &["rollback"]);
    assert_eq!(r.status, 1, "{r:?}");
    assert!(r.stderr.contains("nothing to roll back"), "{r:?}");

    cm(&home, &["issue", "node", "--dns", "node.example.test"]).assert_success();
    cm(&home, &["issue", "other", "--dns", "other.example.test"]).assert_success();
    let entry = home.join("issued/node");
    let gen1 = snapshot(&entry);
    let s1 = serial(&entry.join("cert.pem"));
    cm(
        &home,
        &["issue", "node", "--dns", "node.example.test", "--force"],
    )
    .assert_success();
    let gen2 = snapshot(&entry);
    let s2 = serial(&entry.join("cert.pem"));
    assert_ne!(gen1, gen2);
    let other = snapshot(&home.join("issued/other"));

    let r = cm(&home, &["rollback", "--list"]);
    r.assert_success();
    assert!(r.stdout.contains("node"), "{r:?}");
    assert!(
        r.stdout.to_lowercase().contains(&s1.to_lowercase()),
        "{r:?}"
    );

    let r = cm(&home, &["rollback"]);
    r.assert_success();
    assert!(r.stdout.contains("restored node"), "{r:?}");
    assert_eq!(snapshot(&entry), gen1, "byte-identical first generation");
    assert_eq!(snapshot(&home.join("issued/other")), other);
    assert_eq!(status_of(&home, &s1), "valid");
    assert_eq!(status_of(&home, &s2), "superseded");
    let r = cm(&home, &["list"]);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("node ") && l.contains("valid")),
        "{r:?}"
    );
    // The restored files still verify against the CA.
    support::openssl::verify(&entry.join("ca.pem"), None, &entry.join("cert.pem"), &[])
        .assert_success();

    // Rolling back again undoes the rollback.
    cm(&home, &["rollback"]).assert_success();
    assert_eq!(snapshot(&entry), gen2);
    assert_eq!(status_of(&home, &s2), "valid");
    assert_eq!(status_of(&home, &s1), "superseded");

    // An unknown generation is one line.
    let r = cm(&home, &["rollback", "--to", "19990101T000000Z"]);
    assert_eq!(r.status, 1, "{r:?}");
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");

    // A revoked certificate is never put back.
    cm(&home, &["revoke", &s1]).assert_success();
    let r = cm(&home, &["rollback"]);
    assert_eq!(r.status, 1, "{r:?}");
    assert!(r.stderr.contains("revoked"), "{r:?}");
    assert_eq!(snapshot(&entry), gen2);
}

#[test]
fn log_records_issue_renew_revoke_without_secrets() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    let secret = "Very-Secret-CA-Passphrase-42";
    let pw = dir.path().join("pw");
    fs::write(&pw, format!("{secret}\n")).unwrap();
    let pass = format!("file:{}", pw.display());
    let log = dir.path().join("log/certmesh.log");
    fs::create_dir_all(log.parent().unwrap()).unwrap();
    let lg = |args: &[&str]| {
        run(certmesh()
            .arg("--home")
            .arg(&home)
            .arg("--log")
            .arg(&log)
            .args(args))
    };
    lg(&["ca", "init", "--name", "Log CA", "--key-pass", &pass]).assert_success();
    lg(&[
        "issue",
        "a",
        "--dns",
        "a.example.test",
        "--days",
        "2",
        "--ca-pass",
        &pass,
    ])
    .assert_success();
    let s1 = serial(&home.join("issued/a/cert.pem")).to_lowercase();
    // Logrotate moves the file away between runs; the next line starts a new one.
    fs::rename(&log, log.with_extension("log.1")).unwrap();
    lg(&["renew", "--within", "3d", "--ca-pass", &pass]).assert_success();
    let s2 = serial(&home.join("issued/a/cert.pem")).to_lowercase();
    lg(&["revoke", "a", "--reason", "superseded", "--ca-pass", &pass]).assert_success();
    // Nothing due: nothing logged.
    lg(&["renew", "--within", "1d"]).assert_success();
    // A CSR signed by the CA.
    let csr = dir.path().join("req.csr");
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        p(&dir.path().join("req.key")),
        "-subj",
        "/CN=csr.example.test",
        "-out",
        p(&csr),
    ])
    .assert_success();
    let crt = dir.path().join("req.crt");
    lg(&["sign", p(&csr), "--out", p(&crt), "--ca-pass", &pass]).assert_success();
    let s3 = serial(&crt).to_lowercase();

    let old = fs::read_to_string(log.with_extension("log.1")).unwrap();
    let new = fs::read_to_string(&log).unwrap();
    assert!(
        old.lines()
            .any(|l| l.contains(" issue: ") && l.contains(&s1)),
        "{old}"
    );
    let lines: Vec<&str> = new.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" renew: ") && l.contains(&s1) && l.contains(&s2)),
        "{new}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" revoke: ") && l.contains(&s2) && l.contains("superseded")),
        "{new}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" revoke: ") && l.contains("CRL number 1")),
        "{new}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" sign: ") && l.contains(&s3)),
        "{new}"
    );
    assert_eq!(lines.len(), 4, "one line per change: {new}");
    for l in old.lines().chain(new.lines()) {
        assert!(l.starts_with("20"), "timestamped: {l}");
    }
    assert!(!old.contains(secret) && !new.contains(secret));
}

#[test]
fn renew_refreshes_a_crl_only_when_it_exists() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "Refresh CA"]).assert_success();
    let r = cm(&home, &["renew"]);
    r.assert_success();
    assert!(!home.join("crl.pem").exists(), "no CRL is made by renew");
    cm(&home, &["crl", "--days", "7"]).assert_success();
    let before = fs::read(home.join("crl.pem")).unwrap();
    let r = cm(&home, &["renew", "--changed-exit", "3"]);
    assert_eq!(r.status, 0, "a fresh CRL is left alone: {r:?}");
    assert_eq!(fs::read(home.join("crl.pem")).unwrap(), before);
}

#[test]
fn cron_and_systemd_units() {
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let cron = fs::read_to_string(scripts.join("cron/certmesh-renew.cron")).unwrap();
    let lines: Vec<&str> = cron
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(lines.len(), 1, "{cron}");
    let fields: Vec<&str> = lines[0].split_whitespace().collect();
    // m h dom mon dow user command...
    assert!(fields.len() > 7, "{cron}");
    assert!(fields[6].ends_with("/certmesh"), "{cron}");
    let cmd = fields[6..].join(" ");
    for needle in [" renew", "--quiet", "--jitter", "--ca-pass file:", "--log "] {
        assert!(cmd.contains(needle), "{needle} in {cmd}");
    }
    // The command line parses: the same arguments with our binary print no usage error.
    let mut args: Vec<String> = fields[7..].iter().map(|s| s.to_string()).collect();
    args.push("--help".into());
    run(certmesh().args(&args)).assert_success();

    let units = scripts.join("systemd");
    let service = fs::read_to_string(units.join("certmesh-renew.service")).unwrap();
    let timer = fs::read_to_string(units.join("certmesh-renew.timer")).unwrap();
    let keys = |text: &str| -> Vec<(String, String)> {
        text.lines()
            .filter(|l| l.contains('=') && !l.starts_with('#'))
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                (k.trim().to_string(), v.trim().to_string())
            })
            .collect()
    };
    let get = |kv: &[(String, String)], k: &str| {
        kv.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{k} missing"))
    };
    let s = keys(&service);
    assert_eq!(get(&s, "Type"), "oneshot");
    assert_eq!(get(&s, "LoadCredential"), "ca-pass:/etc/certmesh/ca.pass");
    let exec = get(&s, "ExecStart");
    assert!(
        exec.contains("--ca-pass file:${CREDENTIALS_DIRECTORY}/ca-pass"),
        "{exec}"
    );
    assert!(exec.contains(" renew"), "{exec}");
    let t = keys(&timer);
    assert_eq!(get(&t, "Persistent"), "true");
    assert!(!get(&t, "RandomizedDelaySec").is_empty());
    assert!(!get(&t, "OnCalendar").is_empty());

    // systemd's own check, with ExecStart pointing at the binary under test.
    if Path::new("/usr/bin/systemd-analyze").exists() {
        let tmp = tempdir();
        fs::write(
            tmp.path().join("certmesh-renew.service"),
            service.replace("/usr/local/bin/certmesh", env!("CARGO_BIN_EXE_certmesh")),
        )
        .unwrap();
        fs::write(tmp.path().join("certmesh-renew.timer"), &timer).unwrap();
        let r = run(Command::new("systemd-analyze")
            .arg("verify")
            .arg(tmp.path().join("certmesh-renew.service"))
            .arg(tmp.path().join("certmesh-renew.timer")));
        assert_eq!(r.status, 0, "{r:?}");
        for bad in ["Unknown", "ignoring", "Failed"] {
            assert!(!r.stderr.contains(bad), "{r:?}");
        }
    }
}

#[test]
fn renew_refreshes_an_aging_crl_and_python_reads_it() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    let pw = dir.path().join("pw");
    fs::write(&pw, "aging secret\n").unwrap();
    let pass = format!("file:{}", pw.display());
    cm(
        &home,
        &["ca", "init", "--name", "Aging CA", "--key-pass", &pass],
    )
    .assert_success();
    cm(
        &home,
        &[
            "issue",
            "gone",
            "--dns",
            "gone.example.test",
            "--ca-pass",
            &pass,
        ],
    )
    .assert_success();
    cm(
        &home,
        &[
            "issue",
            "soon",
            "--dns",
            "soon.example.test",
            "--days",
            "2",
            "--ca-pass",
            &pass,
        ],
    )
    .assert_success();
    cm(
        &home,
        &[
            "revoke",
            "gone",
            "--reason",
            "affiliationChanged",
            "--ca-pass",
            &pass,
        ],
    )
    .assert_success();
    let gone = serial(&home.join("issued/gone/cert.pem"));
    // Age the CRL: the same CA signs one made 2.5 days ago that expires in half a day
    // (past two thirds of its 3-day lifetime), as if renew had not run for a while.
    let script = r#"
import sys, datetime
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
home = sys.argv[1]
ca = x509.load_pem_x509_certificate(open(home + "/ca/root/cert.pem", "rb").read())
key = serialization.load_pem_private_key(open(home + "/ca/root/key.pem", "rb").read(), b"aging secret")
now = datetime.datetime.now(datetime.timezone.utc)
crl = (x509.CertificateRevocationListBuilder()
       .issuer_name(ca.subject)
       .last_update(now - datetime.timedelta(hours=60))
       .next_update(now + datetime.timedelta(hours=12))
       .add_extension(x509.CRLNumber(1), False)
       .sign(key, hashes.SHA256()))
open(home + "/crl.pem", "wb").write(crl.public_bytes(serialization.Encoding.PEM))
"#;
    let py = support::pkilint::venv_python();
    run(Command::new(&py).arg("-c").arg(script).arg(&home)).assert_success();

    // One renewal and the CRL refresh in one run: the passphrase is read from stdin once.
    let r = support::run_with_timeout(
        certmesh().arg("--home").arg(&home).args([
            "renew",
            "--within",
            "3d",
            "--changed-exit",
            "3",
            "--ca-pass",
            "stdin",
        ]),
        Some(b"aging secret\n"),
        std::time::Duration::from_secs(60),
    );
    assert_eq!(
        r.status, 3,
        "a renewal and a CRL refresh are changes: {r:?}"
    );
    assert!(r.stdout.contains("renewed soon"), "{r:?}");
    assert!(r.stdout.contains("wrote CRL number 2"), "{r:?}");
    let text = crl_text(&home).stdout;
    assert_eq!(crl_number(&text), 2);
    assert!(text.contains(&format!("Serial Number: {gone}")), "{text}");
    // The aged CRL lived 3 days, so does the new one. An independent parser agrees on the
    // signature, the reason, the dates and the authority key identifier.
    let check = r#"
import sys, datetime
from cryptography import x509
home = sys.argv[1]
ca = x509.load_pem_x509_certificate(open(home + "/ca/root/cert.pem", "rb").read())
crl = x509.load_pem_x509_crl(open(home + "/crl.pem", "rb").read())
assert crl.is_signature_valid(ca.public_key())
life = crl.next_update_utc - crl.last_update_utc
assert datetime.timedelta(days=3) <= life <= datetime.timedelta(days=3, minutes=6), life
r = crl.get_revoked_certificate_by_serial_number(int(sys.argv[2], 16))
assert r is not None
reason = r.extensions.get_extension_for_class(x509.CRLReason).value.reason
assert reason == x509.ReasonFlags.affiliation_changed, reason
aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
assert aki == ski
print("ok")
"#;
    let r = run(Command::new(&py).arg("-c").arg(check).arg(&home).arg(&gone));
    assert_eq!(r.stdout.trim(), "ok", "{r:?}");
    // Fresh now: the next renew leaves it alone (and needs no passphrase).
    let before = fs::read(home.join("crl.pem")).unwrap();
    let r = cm(&home, &["renew", "--within", "3d", "--changed-exit", "3"]);
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(fs::read(home.join("crl.pem")).unwrap(), before);
}

#[test]
fn rollback_undoes_a_whole_renew_run() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "Run CA"]).assert_success();
    for n in ["a", "b", "c"] {
        let days = if n == "c" { "365" } else { "2" };
        cm(
            &home,
            &[
                "issue",
                n,
                "--dns",
                &format!("{n}.example.test"),
                "--days",
                days,
            ],
        )
        .assert_success();
    }
    let before = snapshot(&home.join("issued"));
    let r = cm(&home, &["renew", "--within", "3d"]);
    r.assert_success();
    assert!(
        r.stdout.contains("renewed a") && r.stdout.contains("renewed b"),
        "{r:?}"
    );
    let after = snapshot(&home.join("issued"));
    assert_ne!(before, after);
    let r = cm(&home, &["rollback", "--list", "--json"]);
    let gens: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let gens = gens.as_array().unwrap();
    assert_eq!(gens.len(), 1, "{r:?}");
    assert_eq!(gens[0]["entries"].as_array().unwrap().len(), 2, "{r:?}");

    let r = cm(
        &home,
        &["rollback", "--to", gens[0]["stamp"].as_str().unwrap()],
    );
    r.assert_success();
    assert_eq!(snapshot(&home.join("issued")), before, "{r:?}");
    let valid: Vec<String> = list(&home)
        .iter()
        .filter(|r| r["kind"] == "leaf" && r["status"] == "valid")
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(valid.len(), 3, "one valid certificate per name: {valid:?}");
    cm(&home, &["rollback"]).assert_success();
    assert_eq!(snapshot(&home.join("issued")), after);
}

#[test]
fn a_ca_without_crl_sign_revokes_nothing() {
    let dir = tempdir();
    let d = dir.path();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        p(&d.join("ca.key")),
        "-out",
        p(&d.join("ca.crt")),
        "-days",
        "30",
        "-subj",
        "/CN=No CRL CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ])
    .assert_success();
    let home = d.join("pki");
    cm(
        &home,
        &[
            "ca",
            "import",
            "--cert",
            p(&d.join("ca.crt")),
            "--key",
            p(&d.join("ca.key")),
        ],
    )
    .assert_success();
    cm(
        &home,
        &["issue", "x", "--dns", "x.example.test", "--days", "10"],
    )
    .assert_success();
    let r = cm(&home, &["revoke", "x"]);
    assert_eq!(r.status, 1, "{r:?}");
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    assert!(
        r.stderr.contains("cRLSign") && r.stderr.contains("nothing was revoked"),
        "{r:?}"
    );
    let x = serial(&home.join("issued/x/cert.pem"));
    assert_eq!(status_of(&home, &x), "valid");
    assert!(!home.join("crl.pem").exists());
    let r = cm(&home, &["crl"]);
    assert_eq!(r.status, 1, "{r:?}");
    assert!(r.stderr.contains("cRLSign"), "{r:?}");

    // An intermediate under that root signs CRLs; the root, which cannot, gets none and
    // does not stand in the way: revoke, crl and renew work with the intermediate's.
    cm(&home, &["ca", "intermediate"]).assert_success();
    cm(
        &home,
        &["issue", "y", "--dns", "y.example.test", "--days", "10"],
    )
    .assert_success();
    cm(&home, &["revoke", "y"]).assert_success();
    let out = d.join("bundle.pem");
    cm(&home, &["crl", "--out", p(&out)]).assert_success();
    assert!(!home.join("ca/root/crl.pem").exists());
    let bundle = fs::read_to_string(&out).unwrap();
    assert_eq!(bundle.matches("BEGIN X509 CRL").count(), 1, "{bundle}");
    assert_eq!(bundle, fs::read_to_string(home.join("crl.pem")).unwrap());
    cm(&home, &["renew"]).assert_success();
}

#[test]
fn revoke_crl_and_rollback_wait_for_nobody_they_exit_75() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "Lock CA"]).assert_success();
    cm(&home, &["issue", "n", "--dns", "n.example.test"]).assert_success();
    cm(&home, &["issue", "n", "--dns", "n.example.test", "--force"]).assert_success();
    let before = snapshot(&home);
    // Another run holds the store's lock (flock(1) takes the same kind of lock).
    let mut holder = Command::new("flock")
        .arg(home.join(".lock"))
        .args(["sleep", "4"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    for args in [&["revoke", "n"][..], &["crl"], &["rollback"]] {
        let r = cm(&home, args);
        assert_eq!(r.status, 75, "{args:?}: {r:?}");
        assert!(r.stderr.contains("holds the lock"), "{r:?}");
    }
    holder.wait().unwrap();
    assert_eq!(snapshot(&home), before, "nothing changed");
}

/// With an intermediate CA, a server checking revocation for the whole chain (nginx
/// `ssl_crl`, `openssl verify -crl_check_all`) needs a current CRL from the root too:
/// after a revocation and an apply, every member's `crl.pem` holds both, so every other
/// member's client certificate is accepted and only the revoked one is refused.
#[test]
fn intermediate_cluster_revocation_refuses_only_the_revoked_member() {
    let dir = tempdir();
    // b's certificate and key as they were, before the revocation replaces them.
    let RevokedCluster {
        out,
        old,
        reapplied: r,
    } = cluster_with_a_revoked_member(
        dir.path(),
        "chain",
        "nginx",
        &["a", "b", "c"],
        "b",
        &["fullchain.pem", "privkey.pem"],
    );
    assert!(r.stdout.contains("certificate renewed (revoked)"), "{r:?}");

    let crl = out.join("a/crl.pem");
    let bundle = fs::read_to_string(&crl).unwrap();
    assert_eq!(
        bundle.matches("-----BEGIN X509 CRL-----").count(),
        2,
        "{bundle}"
    );
    assert_eq!(fs::read_to_string(out.join("c/crl.pem")).unwrap(), bundle);

    // openssl verify with full-chain CRL checking: the others pass, the revoked one not.
    let root = out.join("a/trust.pem");
    let check = |dir: &Path| {
        verify(
            &root,
            Some(&dir.join("fullchain.pem")),
            &dir.join("fullchain.pem"),
            &["-crl_check_all", "-CRLfile", p(&crl)],
        )
    };
    for m in ["a", "b", "c"] {
        let r = check(&out.join(m));
        assert!(r.success() && r.stdout.contains(": OK"), "{m}: {r:?}");
    }
    let r = check(&old);
    assert!(!r.success(), "{r:?}");
    assert!(
        format!("{}{}", r.stdout, r.stderr).contains("certificate revoked"),
        "{r:?}"
    );
    // Only the intermediate's CRL (what members got before): every member is refused.
    let first_only = dir.path().join("intermediate-only.pem");
    let end = bundle.find("-----END X509 CRL-----").unwrap() + "-----END X509 CRL-----\n".len();
    fs::write(&first_only, &bundle[..end]).unwrap();
    let r = verify(
        &root,
        Some(&out.join("c/fullchain.pem")),
        &out.join("c/fullchain.pem"),
        &["-crl_check_all", "-CRLfile", p(&first_only)],
    );
    assert!(
        !r.success()
            && format!("{}{}", r.stdout, r.stderr).contains("unable to get certificate CRL"),
        "{r:?}"
    );

    // nginx on member a, checking client certificates against a's crl.pem.
    let a = out.join("a");
    let extra = format!(
        "ssl_client_certificate {};\n        ssl_verify_client on;\n        ssl_verify_depth 3;\n        ssl_crl {};",
        p(&a.join("trust.pem")),
        p(&crl)
    );
    let web = Nginx::serve_with(&a.join("fullchain.pem"), &a.join("privkey.pem"), &extra);
    let get = |d: &Path| {
        https_get(
            web.port(),
            &a.join("trust.pem"),
            "a.cluster.test",
            &[
                "-cert",
                p(&d.join("fullchain.pem")),
                "-cert_chain",
                p(&d.join("fullchain.pem")),
                "-key",
                p(&d.join("privkey.pem")),
            ],
        )
    };
    for m in ["a", "b", "c"] {
        let r = get(&out.join(m));
        assert!(got_http_200(&r), "{m}: {r:?}\n{}", web.logs());
    }
    let r = get(&old);
    assert!(r.stdout.contains("HTTP/1.1 400"), "{r:?}\n{}", web.logs());
    assert!(web.logs().contains("certificate revoked"), "{}", web.logs());
}
