//! `certmesh audit`: the seed guides' openssl directory gets its problems named; the
//! directory certmesh itself writes has nothing at warning level.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::openssl::openssl;
use support::{certmesh, run, tempdir, Run};

fn in_dir(dir: &Path, args: &[&str]) -> Run {
    let mut cmd = std::process::Command::new("openssl");
    cmd.current_dir(dir).args(args);
    run(&mut cmd)
}

/// Audits `paths` with `--json` and returns (exit status, file name -> codes).
fn audit(paths: &[&Path], extra: &[&str]) -> (i32, Vec<(String, String, Vec<String>)>) {
    let r = run(certmesh()
        .arg("audit")
        .args(paths)
        .arg("--json")
        .args(extra));
    let v: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    let files = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let name = Path::new(f["file"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let codes = f["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["code"].as_str().unwrap().to_string())
                .collect();
            (name, f["kind"].as_str().unwrap().to_string(), codes)
        })
        .collect();
    (r.status, files)
}

fn codes_of<'a>(files: &'a [(String, String, Vec<String>)], name: &str) -> &'a [String] {
    &files
        .iter()
        .find(|f| f.0 == name)
        .unwrap_or_else(|| panic!("{name} not reported: {files:?}"))
        .2
}

#[test]
fn seed_directory_problems_are_found() {
    let dir = tempdir();
    let d = dir.path();
    for step in [
        "genrsa -des3 -passout pass:secret -out ca.key 1024",
        "req -new -x509 -days 365 -key ca.key -passin pass:secret -subj /CN=Seed-CA -out ca.crt",
        "genrsa -des3 -passout pass:secret -out server.key 1024",
        "req -new -key server.key -passin pass:secret -subj /CN=server.example.com -out server.csr",
        "x509 -req -days 365 -in server.csr -CA ca.crt -CAkey ca.key -passin pass:secret -set_serial 01 -out server.crt",
        "rsa -in server.key -passin pass:secret -out server.key.insecure",
        "pkcs12 -export -in server.crt -inkey server.key.insecure -passout pass:storepw -out server.p12",
    ] {
        let args: Vec<&str> = step.split(' ').collect();
        in_dir(d, &args).assert_success();
    }
    fs::write(d.join("ca.pass"), "secret\n").unwrap();
    fs::set_permissions(
        d.join("server.key.insecure"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    fs::write(
        d.join("wso2carbon.jks"),
        [0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2],
    )
    .unwrap();
    fs::write(d.join("notes.txt"), "not PKI\n").unwrap();
    let lone = d.join("lone");
    fs::create_dir(&lone).unwrap();
    openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        lone.join("orphan.key").to_str().unwrap(),
    ])
    .assert_success();

    let (status, files) = audit(&[d], &[]);
    assert_eq!(status, 1, "{files:?}");
    assert!(files.iter().all(|f| f.0 != "notes.txt"), "{files:?}");
    let has = |name: &str, code: &str| {
        assert!(
            codes_of(&files, name).iter().any(|c| c == code),
            "{name}: {code} missing: {files:?}"
        )
    };
    has("ca.crt", "weak-rsa-key");
    has("ca.crt", "ca-without-key-usage");
    has("server.crt", "no-subject-alt-name");
    has("server.crt", "weak-rsa-key");
    has("server.crt", "short-serial");
    // verify refuses the chain to the directory's CA (its 1024-bit key), and says so.
    has("server.crt", "chain-refused");
    has("server.csr", "weak-rsa-key");
    has("server.csr", "csr-without-subject-alt-name");
    has("ca.key", "passphrase-next-to-key");
    has("server.key.insecure", "world-readable-key");
    has("server.key.insecure", "weak-rsa-key");
    has("server.p12", "pkcs12-locked");
    has("orphan.key", "key-without-certificate");
    // The stripped key has its certificate beside it.
    assert!(
        !codes_of(&files, "server.key.insecure")
            .iter()
            .any(|c| c == "key-without-certificate"),
        "{files:?}"
    );
    let kind = |name: &str| files.iter().find(|f| f.0 == name).unwrap().1.clone();
    assert_eq!(kind("wso2carbon.jks"), "java keystore");
    assert_eq!(kind("server.p12"), "pkcs12");
    assert_eq!(kind("server.key"), "private key");
    assert_eq!(kind("server.csr"), "csr");

    // With the right store password the PKCS#12 file opens.
    let r = run(certmesh()
        .arg("audit")
        .arg(d.join("server.p12"))
        .args(["--storepass", "env:STOREPW_T"])
        .env("STOREPW_T", "storepw"));
    // Opened, its certificate is linted like any other.
    assert_eq!(r.status, 1, "{r:?}");
    assert!(r.stdout.contains("PKCS#12, opened"), "{r:?}");
    assert!(r.stdout.contains("error no-subject-alt-name"), "{r:?}");

    // A PKCS#12 file with an empty password opens with the explicit `--storepass empty`,
    // and stays locked without it.
    in_dir(
        d,
        &[
            "pkcs12",
            "-export",
            "-nokeys",
            "-in",
            "server.crt",
            "-out",
            "empty.p12",
            "-passout",
            "pass:",
        ],
    )
    .assert_success();
    let empty = d.join("empty.p12");
    let opened = |extra: &[&str]| {
        let r = run(certmesh().arg("audit").arg(&empty).args(extra));
        r.stdout.contains("PKCS#12, opened")
    };
    assert!(opened(&["--storepass", "empty"]));
    assert!(!opened(&[]));
}

#[test]
fn certmesh_output_is_clean() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    let cm = |args: &[&str]| run(certmesh().arg("--home").arg(&home).args(args));
    cm(&["ca", "init", "--name", "Audit CA"]).assert_success();
    cm(&["ca", "intermediate"]).assert_success();
    cm(&[
        "issue",
        "web",
        "--dns",
        "web.example.com",
        "--ip",
        "10.0.0.1",
    ])
    .assert_success();
    cm(&[
        "issue",
        "cli",
        "--dns",
        "cli.example.com",
        "--profile",
        "client",
    ])
    .assert_success();
    let r = run(certmesh()
        .arg("audit")
        .arg(&home)
        .args(["--fail-on", "warning"]));
    assert_eq!(r.status, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("cert.pem: certificate: CN=web.example.com"),
        "{r:?}"
    );
    assert!(
        !r.stdout.contains("  warning ") && !r.stdout.contains("  error "),
        "{r:?}"
    );
}

/// A certificate beside a CA of the same name that did not sign it (two stores with one
/// CA name, files copied across) is refused the way `verify` refuses it.
#[test]
fn a_certificate_its_directorys_ca_did_not_sign_is_refused() {
    let dir = tempdir();
    let cm = |home: &Path, args: &[&str]| run(certmesh().arg("--home").arg(home).args(args));
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for home in [&a, &b] {
        cm(home, &["ca", "init", "--name", "Twin CA"]).assert_success();
        cm(home, &["issue", "web", "--dns", "web.example.com"]).assert_success();
    }
    let entry = a.join("issued/web");
    let (status, files) = audit(&[&entry], &[]);
    assert_eq!(status, 0, "{files:?}");
    assert!(
        files
            .iter()
            .all(|f| !f.2.contains(&"chain-refused".to_string())),
        "{files:?}"
    );
    // b's certificate and key replace a's: the directory's ca.pem (a's root) did not sign them.
    for f in ["cert.pem", "key.pem", "fullchain.pem"] {
        fs::copy(b.join("issued/web").join(f), entry.join(f)).unwrap();
    }
    fs::copy(a.join("ca/root/cert.pem"), entry.join("chain.pem")).unwrap();
    let r = run(certmesh().arg("audit").arg(&entry));
    assert_eq!(r.status, 1, "{r:?}");
    assert!(r.stdout.contains("error chain-refused"), "{r:?}");
    assert!(
        r.stdout
            .contains("does not verify with the key of CN=Twin CA"),
        "{r:?}"
    );
}
