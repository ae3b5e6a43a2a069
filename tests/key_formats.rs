//! Private-key formats against the real OpenSSL: keys in every form OpenSSL 1.x and 3.x
//! write are made at test time (plus fixed vectors in tests/data/keys for what OpenSSL 3
//! only writes with its legacy provider), read by `certmesh key ...`, and everything
//! certmesh writes is read back by `openssl pkey`, comparing public keys byte for byte.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use certmesh::key::describe_key_file;
use support::{mode, tempdir};

const PASS: &str = "s3cret pass";
const VECTOR_PASS: &str = "certmesh-vector";

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/keys")
        .join(name)
}

/// Runs openssl with KEYPASS in its environment; panics with its stderr on failure.
fn openssl(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .env("KEYPASS", PASS)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs certmesh in `dir` with KEYPASS and VECTORPASS in its environment.
fn certmesh(dir: &Path, args: &[&str]) -> Output {
    support::certmesh()
        .args(args)
        .current_dir(dir)
        .env("KEYPASS", PASS)
        .env("VECTORPASS", VECTOR_PASS)
        .env("WRONGPASS", "not the passphrase")
        .output()
        .expect("certmesh runs")
}

fn ok(dir: &Path, args: &[&str]) -> Output {
    let out = certmesh(dir, args);
    assert!(
        out.status.success(),
        "certmesh {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The public key of a key file as `openssl pkey -pubout` prints it.
fn pubkey(dir: &Path, file: &str, extra: &[&str]) -> Vec<u8> {
    let mut args = vec!["pkey", "-in", file, "-pubout", "-passin", "env:KEYPASS"];
    args.extend_from_slice(extra);
    openssl(dir, &args).stdout
}

fn read(dir: &Path, file: &str) -> String {
    String::from_utf8_lossy(&std::fs::read(dir.join(file)).unwrap()).into_owned()
}

/// Every file under `dir` with its content, and with its mode.
type Snapshot = (BTreeMap<PathBuf, Vec<u8>>, BTreeMap<PathBuf, u32>);

fn snapshot(dir: &Path) -> Snapshot {
    let files = support::snapshot(dir);
    let modes = files
        .keys()
        .map(|p| (p.clone(), mode(&dir.join(p))))
        .collect();
    (files, modes)
}

/// A directory with one RSA and one EC P-256 key (unencrypted PKCS#8) and a certificate
/// for each.
fn keys_dir() -> support::TempDir {
    let dir = tempdir();
    let d = dir.path();
    openssl(d, &["genrsa", "-out", "rsa.pem", "2048"]);
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "ec.pem",
        ],
    );
    for k in ["rsa", "ec"] {
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                &format!("{k}.pem"),
                "-subj",
                &format!("/CN={k}.example.com"),
                "-days",
                "2",
                "-out",
                &format!("{k}.crt"),
            ],
        );
    }
    dir
}

#[test]
fn strip_reads_every_form_openssl_writes() {
    let dir = keys_dir();
    let d = dir.path();
    let pass_out = ["-passout", "env:KEYPASS"];
    // (input file, commands that make it, source key whose public half it has)
    let forms: Vec<(&str, Vec<Vec<&str>>, &str)> = vec![
        // OpenSSL 3 genrsa -des3 writes PBES2 PKCS#8 with DES-EDE3-CBC.
        (
            "genrsa-des3.pem",
            vec![vec!["genrsa", "-des3", "-out", "genrsa-des3.pem", "2048"]],
            "",
        ),
        // With -traditional: legacy PEM, what OpenSSL 1.x genrsa -des3 wrote.
        (
            "genrsa-trad.pem",
            vec![vec![
                "genrsa",
                "-des3",
                "-traditional",
                "-out",
                "genrsa-trad.pem",
                "2048",
            ]],
            "",
        ),
        (
            "p8-aes256.pem",
            vec![vec![
                "pkcs8",
                "-topk8",
                "-in",
                "rsa.pem",
                "-v2",
                "aes256",
                "-out",
                "p8-aes256.pem",
            ]],
            "rsa.pem",
        ),
        (
            "p8-des3.pem",
            vec![vec![
                "pkcs8",
                "-topk8",
                "-in",
                "rsa.pem",
                "-v2",
                "des3",
                "-out",
                "p8-des3.pem",
            ]],
            "rsa.pem",
        ),
        (
            "p8-sha1.pem",
            vec![vec![
                "pkcs8",
                "-topk8",
                "-in",
                "rsa.pem",
                "-v2",
                "aes128",
                "-v2prf",
                "hmacWithSHA1",
                "-out",
                "p8-sha1.pem",
            ]],
            "rsa.pem",
        ),
        (
            "p8-pbe-3des.pem",
            vec![vec![
                "pkcs8",
                "-topk8",
                "-in",
                "rsa.pem",
                "-v1",
                "PBE-SHA1-3DES",
                "-out",
                "p8-pbe-3des.pem",
            ]],
            "rsa.pem",
        ),
        (
            "p8-pbe-2des.pem",
            vec![vec![
                "pkcs8",
                "-topk8",
                "-in",
                "rsa.pem",
                "-v1",
                "PBE-SHA1-2DES",
                "-out",
                "p8-pbe-2des.pem",
            ]],
            "rsa.pem",
        ),
        (
            "p8-scrypt.pem",
            vec![vec![
                "pkcs8",
                "-topk8",
                "-in",
                "rsa.pem",
                "-scrypt",
                "-out",
                "p8-scrypt.pem",
            ]],
            "rsa.pem",
        ),
        (
            "p8-aes256.der",
            vec![vec![
                "pkcs8",
                "-topk8",
                "-in",
                "rsa.pem",
                "-v2",
                "aes256",
                "-outform",
                "DER",
                "-out",
                "p8-aes256.der",
            ]],
            "rsa.pem",
        ),
        (
            "pkcs1.pem",
            vec![vec![
                "rsa",
                "-in",
                "rsa.pem",
                "-traditional",
                "-out",
                "pkcs1.pem",
            ]],
            "rsa.pem",
        ),
        (
            "pkcs1.der",
            vec![vec![
                "rsa",
                "-in",
                "rsa.pem",
                "-traditional",
                "-outform",
                "DER",
                "-out",
                "pkcs1.der",
            ]],
            "rsa.pem",
        ),
        (
            "pkcs8.der",
            vec![vec![
                "pkey",
                "-in",
                "rsa.pem",
                "-outform",
                "DER",
                "-out",
                "pkcs8.der",
            ]],
            "rsa.pem",
        ),
        (
            "rsa-legacy-aes256.pem",
            vec![vec![
                "rsa",
                "-in",
                "rsa.pem",
                "-traditional",
                "-aes256",
                "-out",
                "rsa-legacy-aes256.pem",
            ]],
            "rsa.pem",
        ),
        // ecparam -genkey writes an EC PARAMETERS block before the SEC1 key.
        (
            "ecparam.pem",
            vec![vec![
                "ecparam",
                "-genkey",
                "-name",
                "prime256v1",
                "-out",
                "ecparam.pem",
            ]],
            "",
        ),
        (
            "ec-aes256.pem",
            vec![
                vec![
                    "ecparam",
                    "-genkey",
                    "-name",
                    "prime256v1",
                    "-noout",
                    "-out",
                    "ec-src.pem",
                ],
                vec![
                    "ec",
                    "-in",
                    "ec-src.pem",
                    "-aes256",
                    "-out",
                    "ec-aes256.pem",
                ],
            ],
            "ec-src.pem",
        ),
        (
            "sec1.der",
            vec![vec![
                "ec", "-in", "ec.pem", "-outform", "DER", "-out", "sec1.der",
            ]],
            "ec.pem",
        ),
        (
            "ec-p8.der",
            vec![vec![
                "pkcs8",
                "-topk8",
                "-in",
                "ec.pem",
                "-v2",
                "aes256",
                "-outform",
                "DER",
                "-out",
                "ec-p8.der",
            ]],
            "ec.pem",
        ),
        (
            "p384.pem",
            vec![vec![
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-384",
                "-aes128",
                "-out",
                "p384.pem",
            ]],
            "",
        ),
        (
            "p521.pem",
            vec![
                vec![
                    "ecparam",
                    "-genkey",
                    "-name",
                    "secp521r1",
                    "-noout",
                    "-out",
                    "p521-src.pem",
                ],
                vec![
                    "pkcs8",
                    "-topk8",
                    "-in",
                    "p521-src.pem",
                    "-v2",
                    "aes256",
                    "-out",
                    "p521.pem",
                ],
            ],
            "p521-src.pem",
        ),
        (
            "ed25519.pem",
            vec![vec![
                "genpkey",
                "-algorithm",
                "ed25519",
                "-aes256",
                "-out",
                "ed25519.pem",
            ]],
            "",
        ),
    ];
    for (file, cmds, _) in &forms {
        for cmd in cmds {
            let mut args = cmd.clone();
            // Every command that encrypts takes the passphrase from KEYPASS.
            if args.iter().any(|a| {
                a.starts_with("-des") || a.starts_with("-aes") || *a == "-topk8" || *a == "-v1"
            }) {
                // Options go before genrsa's positional bit count.
                if args[0] == "genpkey" {
                    args.splice(1..1, ["-pass", "env:KEYPASS"]);
                } else {
                    args.splice(1..1, pass_out);
                }
            }
            openssl(d, &args);
        }
        assert!(d.join(file).exists(), "{file} made");
    }
    for (file, _, source) in &forms {
        let der = file.ends_with(".der");
        let out = format!("plain-{file}");
        ok(
            d,
            &["key", "strip", file, "--out", &out, "--pass", "env:KEYPASS"],
        );
        assert_eq!(mode(&d.join(&out)), 0o600, "{out}");
        let form: &[&str] = if der { &["-inform", "DER"] } else { &[] };
        // The output is unencrypted: openssl opens it without a passphrase...
        let mut check = vec!["pkey", "-in", out.as_str(), "-noout", "-passin", "pass:"];
        check.extend_from_slice(form);
        openssl(d, &check);
        // ...and its public key is the original's.
        let original = if source.is_empty() { *file } else { *source };
        let src_form: &[&str] = if original.ends_with(".der") {
            &["-inform", "DER"]
        } else {
            &[]
        };
        assert_eq!(
            pubkey(d, &out, form),
            pubkey(d, original, src_form),
            "{file}: public key changed"
        );
        if !der {
            assert!(
                !read(d, &out).contains("ENCRYPTED"),
                "{out} is still encrypted"
            );
        }
    }
}

#[test]
fn strip_traditional_gives_pkcs1_and_sec1() {
    let dir = keys_dir();
    let d = dir.path();
    openssl(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-in",
            "rsa.pem",
            "-v2",
            "aes256",
            "-passout",
            "env:KEYPASS",
            "-out",
            "rsa-enc.pem",
        ],
    );
    openssl(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-in",
            "ec.pem",
            "-v2",
            "aes256",
            "-passout",
            "env:KEYPASS",
            "-out",
            "ec-enc.pem",
        ],
    );
    ok(
        d,
        &[
            "key",
            "strip",
            "rsa-enc.pem",
            "--out",
            "rsa-trad.pem",
            "--format",
            "traditional",
            "--pass",
            "env:KEYPASS",
        ],
    );
    ok(
        d,
        &[
            "key",
            "strip",
            "ec-enc.pem",
            "--out",
            "ec-trad.pem",
            "--format",
            "traditional",
            "--pass",
            "env:KEYPASS",
        ],
    );
    assert!(read(d, "rsa-trad.pem").starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
    assert!(read(d, "ec-trad.pem").starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
    openssl(d, &["rsa", "-in", "rsa-trad.pem", "-check", "-noout"]);
    openssl(d, &["ec", "-in", "ec-trad.pem", "-check", "-noout"]);
    assert_eq!(pubkey(d, "rsa-trad.pem", &[]), pubkey(d, "rsa.pem", &[]));
    assert_eq!(pubkey(d, "ec-trad.pem", &[]), pubkey(d, "ec.pem", &[]));
    // SEC1 output carries the named curve and the public key, as OpenSSL writes it.
    let parsed =
        String::from_utf8(openssl(d, &["asn1parse", "-in", "ec-trad.pem"]).stdout).unwrap();
    assert!(parsed.contains("prime256v1"), "{parsed}");
    assert!(parsed.contains("BIT STRING"), "{parsed}");
    // Traditional DER too.
    ok(
        d,
        &[
            "key",
            "strip",
            "ec-enc.pem",
            "--out",
            "ec-trad.der",
            "--format",
            "traditional",
            "--to",
            "der",
            "--pass",
            "env:KEYPASS",
        ],
    );
    openssl(
        d,
        &[
            "ec",
            "-in",
            "ec-trad.der",
            "-inform",
            "DER",
            "-check",
            "-noout",
        ],
    );
    // Ed25519 has no traditional form: refused, nothing written.
    openssl(d, &["genpkey", "-algorithm", "ed25519", "-out", "ed.pem"]);
    let out = certmesh(
        d,
        &[
            "key",
            "strip",
            "ed.pem",
            "--out",
            "ed-trad.pem",
            "--format",
            "traditional",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Ed25519 keys have no traditional"));
    assert!(!d.join("ed-trad.pem").exists());
}

#[test]
fn strip_in_place_keeps_a_backup() {
    let dir = keys_dir();
    let d = dir.path();
    openssl(
        d,
        &[
            "rsa",
            "-in",
            "rsa.pem",
            "-traditional",
            "-des3",
            "-passout",
            "env:KEYPASS",
            "-out",
            "server.key",
        ],
    );
    let original = std::fs::read(d.join("server.key")).unwrap();
    // A wrong passphrase changes nothing and leaves no backup.
    let before = snapshot(d);
    let out = certmesh(
        d,
        &[
            "key",
            "strip",
            "server.key",
            "--in-place",
            "--pass",
            "env:WRONGPASS",
        ],
    );
    assert!(!out.status.success());
    assert_eq!(snapshot(d), before);

    ok(
        d,
        &[
            "key",
            "strip",
            "server.key",
            "--in-place",
            "--pass",
            "env:KEYPASS",
        ],
    );
    assert_eq!(std::fs::read(d.join("server.key.bak")).unwrap(), original);
    assert_eq!(mode(&d.join("server.key.bak")), 0o600);
    assert_eq!(mode(&d.join("server.key")), 0o600);
    let text = read(d, "server.key");
    assert!(
        text.starts_with("-----BEGIN RSA PRIVATE KEY-----\n") && !text.contains("ENCRYPTED"),
        "{text}"
    );
    assert_eq!(pubkey(d, "server.key", &[]), pubkey(d, "rsa.pem", &[]));
}

#[test]
fn encrypt_writes_what_openssl_opens() {
    let dir = keys_dir();
    let d = dir.path();
    // Default: PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC, 600000 iterations.
    ok(
        d,
        &[
            "key",
            "encrypt",
            "rsa.pem",
            "--out",
            "default.pem",
            "--pass",
            "env:KEYPASS",
        ],
    );
    assert!(read(d, "default.pem").starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
    assert_eq!(mode(&d.join("default.pem")), 0o600);
    let parsed =
        String::from_utf8(openssl(d, &["asn1parse", "-in", "default.pem"]).stdout).unwrap();
    assert!(
        parsed.contains("PBES2")
            && parsed.contains("hmacWithSHA256")
            && parsed.contains("aes-256-cbc"),
        "{parsed}"
    );
    assert!(
        parsed.contains(":0927C0"),
        "600000 iterations expected: {parsed}"
    );
    assert_eq!(pubkey(d, "default.pem", &[]), pubkey(d, "rsa.pem", &[]));
    // Without the passphrase, openssl cannot open it.
    let no_pass = Command::new("openssl")
        .args([
            "pkey",
            "-in",
            "default.pem",
            "-noout",
            "-passin",
            "pass:wrong",
        ])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(!no_pass.status.success());

    for (cipher, oid_name) in [("aes128", "aes-128-cbc"), ("des3", "des-ede3-cbc")] {
        let out = format!("{cipher}.pem");
        ok(
            d,
            &[
                "key",
                "encrypt",
                "ec.pem",
                "--out",
                &out,
                "--pass",
                "env:KEYPASS",
                "--cipher",
                cipher,
                "--iterations",
                "10000",
            ],
        );
        let parsed = String::from_utf8(openssl(d, &["asn1parse", "-in", &out]).stdout).unwrap();
        assert!(parsed.contains(oid_name), "{cipher}: {parsed}");
        assert_eq!(pubkey(d, &out, &[]), pubkey(d, "ec.pem", &[]));
    }
    // Encrypted PKCS#8 DER.
    ok(
        d,
        &[
            "key",
            "encrypt",
            "rsa.pem",
            "--out",
            "enc.der",
            "--to",
            "der",
            "--pass",
            "env:KEYPASS",
            "--iterations",
            "10000",
        ],
    );
    assert_eq!(
        pubkey(d, "enc.der", &["-inform", "DER"]),
        pubkey(d, "rsa.pem", &[])
    );

    // Legacy PEM, as OpenSSL 1.x wrote it.
    for (key, cipher, dek, label) in [
        ("rsa.pem", "aes256", "AES-256-CBC", "RSA PRIVATE KEY"),
        ("rsa.pem", "des3", "DES-EDE3-CBC", "RSA PRIVATE KEY"),
        ("ec.pem", "aes128", "AES-128-CBC", "EC PRIVATE KEY"),
    ] {
        let out = format!("legacy-{cipher}-{key}");
        ok(
            d,
            &[
                "key",
                "encrypt",
                key,
                "--out",
                &out,
                "--pass",
                "env:KEYPASS",
                "--legacy-pem",
                "--cipher",
                cipher,
            ],
        );
        let text = read(d, &out);
        let head = format!("-----BEGIN {label}-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: {dek},");
        assert!(text.starts_with(&head), "{text}");
        assert_eq!(pubkey(d, &out, &[]), pubkey(d, key, &[]), "{out}");
        // And certmesh reads its own legacy output back.
        ok(
            d,
            &[
                "key",
                "strip",
                &out,
                "--out",
                &format!("back-{out}"),
                "--pass",
                "env:KEYPASS",
            ],
        );
        assert_eq!(pubkey(d, &format!("back-{out}"), &[]), pubkey(d, key, &[]));
    }
}

/// Runs a failing command and checks: non-zero exit, exactly one line on stderr that
/// contains `expect`, and no file in the directory created or changed.
fn fails_cleanly(d: &Path, args: &[&str], expect: &str) {
    let before = snapshot(d);
    let out = certmesh(d, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert_eq!(
        stderr.lines().count(),
        1,
        "{args:?}: one line expected, got: {stderr}"
    );
    assert!(
        stderr.contains(expect),
        "{args:?}: expected '{expect}' in: {stderr}"
    );
    assert!(
        !stderr.contains(PASS) && !stderr.contains("not the passphrase"),
        "secret in: {stderr}"
    );
    assert_eq!(snapshot(d), before, "{args:?} changed the directory");
}

#[test]
fn unreadable_keys_fail_with_one_clear_line_and_write_nothing() {
    let dir = keys_dir();
    let d = dir.path();
    openssl(
        d,
        &[
            "genrsa",
            "-des3",
            "-passout",
            "env:KEYPASS",
            "-out",
            "pbes2.pem",
            "2048",
        ],
    );
    openssl(
        d,
        &[
            "rsa",
            "-in",
            "rsa.pem",
            "-traditional",
            "-des3",
            "-passout",
            "env:KEYPASS",
            "-out",
            "legacy.pem",
        ],
    );
    openssl(
        d,
        &[
            "rsa",
            "-in",
            "rsa.pem",
            "-traditional",
            "-camellia256",
            "-passout",
            "env:KEYPASS",
            "-out",
            "camellia-legacy.pem",
        ],
    );
    openssl(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-in",
            "rsa.pem",
            "-v2",
            "camellia256",
            "-passout",
            "env:KEYPASS",
            "-out",
            "camellia-p8.pem",
        ],
    );
    openssl(
        d,
        &[
            "pkey", "-in", "rsa.pem", "-outform", "DER", "-out", "rsa.der",
        ],
    );
    openssl(
        d,
        &[
            "x509",
            "-in",
            "rsa.crt",
            "-outform",
            "DER",
            "-out",
            "rsa-crt.der",
        ],
    );
    let pem = std::fs::read(d.join("rsa.pem")).unwrap();
    std::fs::write(d.join("cut.pem"), &pem[..pem.len() / 2]).unwrap();
    let der = std::fs::read(d.join("rsa.der")).unwrap();
    std::fs::write(d.join("cut.der"), &der[..der.len() - 100]).unwrap();
    std::fs::copy(data("rsa-pkcs8-pbe-md5-des.pem"), d.join("md5des.pem")).unwrap();
    std::fs::write(d.join("existing.pem"), b"keep me").unwrap();

    let strip = |input: &str, pass: &str, expect: &str| {
        fails_cleanly(
            d,
            &["key", "strip", input, "--out", "out.pem", "--pass", pass],
            expect,
        );
        fails_cleanly(
            d,
            &["key", "strip", input, "--in-place", "--pass", pass],
            expect,
        );
    };
    strip(
        "pbes2.pem",
        "env:WRONGPASS",
        "wrong passphrase (PKCS#8 PBES2 PBKDF2-HMAC-SHA256 DES-EDE3-CBC",
    );
    strip(
        "legacy.pem",
        "env:WRONGPASS",
        "wrong passphrase (legacy PEM DES-EDE3-CBC",
    );
    strip("cut.pem", "env:KEYPASS", "truncated PEM");
    strip("cut.der", "env:KEYPASS", "truncated");
    strip(
        "rsa.crt",
        "env:KEYPASS",
        "this is a certificate (CN=rsa.example.com), not a private key",
    );
    strip(
        "rsa-crt.der",
        "env:KEYPASS",
        "this is a DER certificate (CN=rsa.example.com), not a private key",
    );
    strip(
        "camellia-legacy.pem",
        "env:KEYPASS",
        "legacy PEM cipher CAMELLIA-256-CBC is not supported",
    );
    strip(
        "camellia-p8.pem",
        "env:KEYPASS",
        "PKCS#8 PBES2 PBKDF2-HMAC-SHA256 CAMELLIA-256-CBC, which certmesh does not support",
    );
    strip(
        "md5des.pem",
        "env:KEYPASS",
        "PKCS#8 PBES1 pbeWithMD5AndDES-CBC, which certmesh does not support",
    );
    // An unsupported scheme fails before any passphrase is asked for.
    fails_cleanly(
        d,
        &["key", "strip", "md5des.pem", "--out", "out.pem"],
        "pbeWithMD5AndDES-CBC",
    );
    // A missing passphrase, not on a terminal, says how to give one.
    fails_cleanly(
        d,
        &["key", "strip", "legacy.pem", "--out", "out.pem"],
        "give --pass SPEC",
    );
    // encrypt and convert refuse the same inputs, and an existing output is kept.
    fails_cleanly(
        d,
        &[
            "key",
            "encrypt",
            "rsa.crt",
            "--out",
            "out.pem",
            "--pass",
            "env:KEYPASS",
        ],
        "not a private key",
    );
    fails_cleanly(
        d,
        &[
            "key",
            "encrypt",
            "rsa.pem",
            "--out",
            "existing.pem",
            "--pass",
            "env:KEYPASS",
        ],
        "already exists",
    );
    fails_cleanly(
        d,
        &[
            "key",
            "strip",
            "legacy.pem",
            "--out",
            "existing.pem",
            "--pass",
            "env:KEYPASS",
        ],
        "already exists",
    );
    fails_cleanly(
        d,
        &["key", "convert", "cut.der", "--out", "out.pem"],
        "truncated",
    );
    fails_cleanly(
        d,
        &["key", "convert", "legacy.pem", "--out", "out.pem"],
        "is encrypted: `key convert` does not change protection",
    );
    fails_cleanly(
        d,
        &[
            "key",
            "match",
            "legacy.pem",
            "rsa.crt",
            "--pass",
            "env:WRONGPASS",
        ],
        "wrong passphrase",
    );
    fails_cleanly(
        d,
        &["key", "match", "rsa.crt", "rsa.crt"],
        "not a private key",
    );
}

#[test]
fn fixed_vectors_in_openssl_1x_forms() {
    let dir = tempdir();
    let d = dir.path();
    let rsa_pub = std::fs::read(data("rsa.pub.pem")).unwrap();
    let ec_pub = std::fs::read(data("ec.pub.pem")).unwrap();
    for (file, public, scheme) in [
        ("rsa-legacy-des.pem", &rsa_pub, "legacy PEM DES-CBC"),
        ("rsa-legacy-des3.pem", &rsa_pub, "legacy PEM DES-EDE3-CBC"),
        ("rsa-legacy-aes128.pem", &rsa_pub, "legacy PEM AES-128-CBC"),
        ("rsa-legacy-aes192.pem", &rsa_pub, "legacy PEM AES-192-CBC"),
        ("rsa-legacy-aes256.pem", &rsa_pub, "legacy PEM AES-256-CBC"),
        ("ec-legacy-des3.pem", &ec_pub, "legacy PEM DES-EDE3-CBC"),
        ("ec-legacy-aes128.pem", &ec_pub, "legacy PEM AES-128-CBC"),
        (
            "rsa-pkcs8-des3-sha1.pem",
            &rsa_pub,
            "PKCS#8 PBES2 PBKDF2-HMAC-SHA1 DES-EDE3-CBC, 2048 iterations",
        ),
        (
            "rsa-pkcs8-pbe-sha1-3des.pem",
            &rsa_pub,
            "PKCS#8 PBES1 pbeWithSHAAnd3-KeyTripleDES-CBC (PKCS#12 PBE), 2048 iterations",
        ),
        ("rsa-pkcs1.pem", &rsa_pub, ""),
    ] {
        let out = format!("plain-{file}");
        let input = data(file);
        let stdout = ok(
            d,
            &[
                "key",
                "strip",
                input.to_str().unwrap(),
                "--out",
                &out,
                "--pass",
                "env:VECTORPASS",
            ],
        )
        .stdout;
        if !scheme.is_empty() {
            assert!(
                String::from_utf8_lossy(&stdout).contains(&format!("removed encryption: {scheme}")),
                "{file}"
            );
        }
        let got = Command::new("openssl")
            .args(["pkey", "-in", &out, "-pubout"])
            .current_dir(d)
            .output()
            .unwrap();
        assert!(
            got.status.success(),
            "{file}: openssl cannot read the stripped key"
        );
        assert_eq!(&got.stdout, public, "{file}: public key differs");
    }
}

#[test]
fn match_compares_public_keys() {
    let dir = keys_dir();
    let d = dir.path();
    openssl(d, &["genrsa", "-out", "other-rsa.pem", "2048"]);
    openssl(
        d,
        &[
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-noout",
            "-out",
            "other-ec.pem",
        ],
    );
    openssl(
        d,
        &[
            "rsa",
            "-in",
            "rsa.pem",
            "-traditional",
            "-aes256",
            "-passout",
            "env:KEYPASS",
            "-out",
            "rsa-enc.pem",
        ],
    );
    let check = |key: &str, cert: &str, pass: bool, code: i32, expect: &str| {
        let mut args = vec!["key", "match", key, cert];
        if pass {
            args.extend_from_slice(&["--pass", "env:KEYPASS"]);
        }
        let out = certmesh(d, &args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{key} {cert}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        assert!(stdout.contains(expect), "{key} {cert}: {stdout}");
    };
    check(
        "rsa.pem",
        "rsa.crt",
        false,
        0,
        "match: the key (RSA 2048) matches the certificate CN=rsa.example.com",
    );
    check(
        "ec.pem",
        "ec.crt",
        false,
        0,
        "match: the key (EC P-256) matches",
    );
    check("rsa-enc.pem", "rsa.crt", true, 0, "match:");
    check(
        "other-rsa.pem",
        "rsa.crt",
        false,
        1,
        "no match: the certificate CN=rsa.example.com holds a different RSA 2048 public key",
    );
    check(
        "other-ec.pem",
        "ec.crt",
        false,
        1,
        "no match: the certificate CN=ec.example.com holds a different EC P-256 public key",
    );
    check("ec.pem", "rsa.crt", false, 1, "no match: the key is EC P-256 but the certificate CN=rsa.example.com has an RSA 2048 public key");
    let out = certmesh(d, &["key", "match", "ec.pem", "ec.crt", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["matches"], true);
}

#[test]
fn gen_and_convert_write_private_files_openssl_reads() {
    let dir = keys_dir();
    let d = dir.path();
    // A permissive umask must not make key files readable by others.
    let sh = |cmd: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("umask 000; exec \"$CERTMESH\" {cmd}"))
            .current_dir(d)
            .env("CERTMESH", env!("CARGO_BIN_EXE_certmesh"))
            .env("KEYPASS", PASS)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for alg in ["p256", "p384", "ed25519", "rsa2048"] {
        let out = format!("gen-{alg}.pem");
        sh(&format!("key gen --key {alg} --out {out}"));
        assert_eq!(mode(&d.join(&out)), 0o600, "{out}");
        openssl(d, &["pkey", "-in", &out, "-noout"]);
    }
    sh("key gen --key p256 --out gen-enc.pem --pass env:KEYPASS");
    assert_eq!(mode(&d.join("gen-enc.pem")), 0o600);
    assert!(read(d, "gen-enc.pem").starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    openssl(
        d,
        &[
            "pkey",
            "-in",
            "gen-enc.pem",
            "-noout",
            "-passin",
            "env:KEYPASS",
        ],
    );
    sh("key gen --key rsa2048 --out gen-trad.pem --format traditional");
    assert!(read(d, "gen-trad.pem").starts_with("-----BEGIN RSA PRIVATE KEY-----"));

    for (args, out, inform, head) in [
        (vec!["--to", "der"], "c1.der", "DER", ""),
        (
            vec!["--to", "der", "--format", "traditional"],
            "c2.der",
            "DER",
            "",
        ),
        (
            vec!["--format", "traditional"],
            "c3.pem",
            "PEM",
            "-----BEGIN RSA PRIVATE KEY-----",
        ),
        (vec![], "c4.pem", "PEM", "-----BEGIN PRIVATE KEY-----"),
    ] {
        sh(&format!(
            "key convert rsa.pem --out {out} {}",
            args.join(" ")
        ));
        assert_eq!(mode(&d.join(out)), 0o600, "{out}");
        assert_eq!(
            pubkey(d, out, &["-inform", inform]),
            pubkey(d, "rsa.pem", &[]),
            "{out}"
        );
        if !head.is_empty() {
            assert!(read(d, out).starts_with(head), "{out}");
        }
    }
    // Converting back from DER gives the same public key.
    sh("key convert c2.der --out c5.pem --format pkcs8");
    assert_eq!(pubkey(d, "c5.pem", &[]), pubkey(d, "rsa.pem", &[]));
    sh("key strip ec.pem --out s1.pem");
    assert_eq!(mode(&d.join("s1.pem")), 0o600);
    sh("key encrypt ec.pem --out e1.pem --pass env:KEYPASS --iterations 10000");
    assert_eq!(mode(&d.join("e1.pem")), 0o600);
}

#[test]
fn describe_names_the_encryption_without_asking() {
    let dir = keys_dir();
    let d = dir.path();
    openssl(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-in",
            "rsa.pem",
            "-v2",
            "aes256",
            "-passout",
            "env:KEYPASS",
            "-out",
            "p8.pem",
        ],
    );
    openssl(
        d,
        &[
            "rsa",
            "-in",
            "rsa.pem",
            "-traditional",
            "-des3",
            "-passout",
            "env:KEYPASS",
            "-out",
            "legacy.pem",
        ],
    );
    let describe = |file: &Path, pass: Option<&str>| {
        let data = std::fs::read(file).unwrap();
        let mut asked = false;
        let info = match pass {
            Some(p) => {
                let mut prompt = || {
                    asked = true;
                    Ok(certmesh::pass::Secret::new(p.to_string()))
                };
                describe_key_file(file, &data, Some(&mut prompt)).unwrap()
            }
            None => describe_key_file(file, &data, None).unwrap(),
        };
        (info, asked)
    };
    let (info, _) = describe(&d.join("p8.pem"), None);
    assert_eq!(
        info.encryption.as_deref(),
        Some("PKCS#8 PBES2 PBKDF2-HMAC-SHA256 AES-256-CBC, 2048 iterations")
    );
    assert_eq!(info.encryption_supported, Some(true));
    assert_eq!(info.key_type, None);
    assert_eq!(info.public_key_sha256, None);

    let (info, _) = describe(&d.join("legacy.pem"), None);
    assert_eq!(
        info.to_string(),
        "RSA private key, PKCS#1 PEM, encrypted (legacy PEM DES-EDE3-CBC)"
    );

    let (info, _) = describe(&data("rsa-pkcs8-pbe-md5-des.pem"), None);
    assert_eq!(
        info.encryption.as_deref(),
        Some("PKCS#8 PBES1 pbeWithMD5AndDES-CBC, 2048 iterations")
    );
    assert_eq!(info.encryption_supported, Some(false));

    // With the passphrase: type, size and the same fingerprint openssl computes.
    let (info, asked) = describe(&d.join("p8.pem"), Some(PASS));
    assert!(asked);
    assert_eq!(
        (info.key_type.as_ref().map(|t| t.name()), info.bits),
        (Some("RSA"), Some(2048))
    );
    let spki = openssl(d, &["pkey", "-in", "rsa.pem", "-pubout", "-outform", "DER"]).stdout;
    std::fs::write(d.join("spki.der"), spki).unwrap();
    let dgst =
        String::from_utf8(openssl(d, &["dgst", "-sha256", "-r", "spki.der"]).stdout).unwrap();
    let hex = dgst.split_whitespace().next().unwrap().to_uppercase();
    assert_eq!(info.public_key_sha256.unwrap().replace(':', ""), hex);

    // An unencrypted key never triggers the prompt.
    let (info, asked) = describe(&d.join("ec.pem"), Some("unused"));
    assert!(!asked);
    assert_eq!(
        info.to_string(),
        "EC P-256 private key, PKCS#8 PEM, not encrypted"
    );
}

/// A second, independent reader: pyca/cryptography (from the test venv that
/// scripts/test installs) opens every encrypted and traditional form certmesh writes.
#[test]
fn python_cryptography_reads_what_certmesh_writes() {
    const LOAD: &str = r#"
import sys
from cryptography.hazmat.primitives import serialization as s
path, password, form = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
load = s.load_der_private_key if form == "der" else s.load_pem_private_key
key = load(open(path, "rb").read(), password=password or None)
spki = key.public_key().public_bytes(s.Encoding.DER, s.PublicFormat.SubjectPublicKeyInfo)
sys.stdout.write(spki.hex())
"#;
    let python = support::pkilint::venv_python();
    let dir = keys_dir();
    let d = dir.path();
    for key in ["rsa.pem", "ec.pem"] {
        let spki = openssl(d, &["pkey", "-in", key, "-pubout", "-outform", "DER"]).stdout;
        let expected: String = spki.iter().map(|b| format!("{b:02x}")).collect();
        let cases: [(&[&str], &str, &str); 6] = [
            (&["encrypt", "--iterations", "10000"], PASS, "pem"),
            (
                &["encrypt", "--iterations", "10000", "--cipher", "des3"],
                PASS,
                "pem",
            ),
            (
                &["encrypt", "--iterations", "10000", "--to", "der"],
                PASS,
                "der",
            ),
            (
                &["encrypt", "--legacy-pem", "--cipher", "aes256"],
                PASS,
                "pem",
            ),
            (
                &["encrypt", "--legacy-pem", "--cipher", "des3"],
                PASS,
                "pem",
            ),
            (&["convert", "--format", "traditional"], "", "pem"),
        ];
        for (i, (args, password, form)) in cases.iter().enumerate() {
            let out = format!("py-{i}-{key}");
            let mut cmd = vec!["key", args[0], key, "--out", out.as_str()];
            cmd.extend_from_slice(&args[1..]);
            if args[0] == "encrypt" {
                cmd.extend_from_slice(&["--pass", "env:KEYPASS"]);
            }
            ok(d, &cmd);
            let got = Command::new(&python)
                .args(["-c", LOAD, out.as_str(), password, form])
                .current_dir(d)
                .output()
                .unwrap();
            assert!(
                got.status.success(),
                "{cmd:?}: cryptography cannot load it: {}",
                String::from_utf8_lossy(&got.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&got.stdout), expected, "{cmd:?}");
        }
    }
}
