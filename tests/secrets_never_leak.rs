//! Secrets stay where they belong: the passphrases given to certmesh never show up in its
//! output (plain or `--json`) or in files that are not meant to hold them, private-key
//! bodies never show up outside key files, and every private file is 0600 in a directory
//! nobody else can write to.
//!
//! One session runs the commands that take passphrases (ca init, issue, key gen / strip /
//! encrypt, export p12, inspect, renew, cluster apply with a manifest `key_pass`), each
//! passphrase distinctive and passed through `env:` so that it is never on the command line.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use support::{certmesh, run, tempdir, Run};

const CA_PASS: &str = "Leak-CA-pass-7f3a91";
const KEY_PASS: &str = "Leak-key-pass-c28e04";
const KEY_PASS2: &str = "Leak-key-pass-two-5b7d";
const P12_PASS: &str = "Leak-p12-pass-e6190c";
const CLUSTER_CA_PASS: &str = "Leak-cluster-ca-4d2b88";
const CLUSTER_KS_PASS: &str = "Leak-cluster-ks-93a1f7";

const SECRETS: [(&str, &str); 6] = [
    ("CM_LEAK_CA", CA_PASS),
    ("CM_LEAK_KEY", KEY_PASS),
    ("CM_LEAK_KEY2", KEY_PASS2),
    ("CM_LEAK_P12", P12_PASS),
    ("CM_LEAK_CLUSTER_CA", CLUSTER_CA_PASS),
    ("CM_LEAK_CLUSTER_KS", CLUSTER_KS_PASS),
];

/// Files whose job is to hold a keystore password for a product (the member's keystore
/// password, never a CA passphrase): the generated password file, the GSKit stash, and
/// product configuration that names the password (Liberty `{xor}`, WSO2 deployment.toml).
fn may_hold_keystore_password(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    name == "keystore.pass"
        || name.ends_with(".sth")
        || name.ends_with(".xml")
        || name == "deployment.toml"
        || name.ends_with(".p12")
}

struct Session {
    dir: support::TempDir,
    runs: Vec<(String, Run)>,
}

impl Session {
    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn home(&self) -> PathBuf {
        self.root().join("pki")
    }

    /// Runs certmesh in the session directory with every secret in the environment.
    fn cm(&mut self, args: &[&str]) -> &Run {
        let mut cmd = certmesh();
        cmd.current_dir(self.root()).arg("--home").arg(self.home());
        for (var, value) in SECRETS {
            cmd.env(var, value);
        }
        cmd.args(args);
        let r = run(&mut cmd);
        assert!(r.success(), "certmesh {}: {r:?}", args.join(" "));
        self.runs.push((args.join(" "), r));
        &self.runs.last().unwrap().1
    }

    /// Runs a command once plainly and once with `--json`, when it takes `--json`.
    fn cm_both(&mut self, plain: &[&str], json: &[&str]) {
        self.cm(plain);
        self.cm(json);
    }
}

/// Every file under `dir` (not following symlinks) with its content.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                out.insert(e.path(), fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

fn dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                out.push(e.path());
                stack.push(e.path());
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Whether the file holds a private key in a form certmesh writes: a PEM private-key
/// block, or DER (the session's DER keys are named *.der / *.key).
fn is_pem_key_file(content: &[u8]) -> bool {
    contains(content, b"PRIVATE KEY-----")
}

/// The base64 lines of every unencrypted private-key PEM block in `content`.
fn private_key_bodies(content: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(content);
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("-----BEGIN ") && line.contains("PRIVATE KEY") {
            inside = !line.contains("ENCRYPTED");
            continue;
        }
        if line.starts_with("-----END ") {
            inside = false;
            continue;
        }
        // Full 64-character lines only: long enough to be unique, and headers excluded.
        if inside && line.len() == 64 && !line.contains(':') {
            out.push(line.to_string());
        }
    }
    out
}

fn session() -> Session {
    let mut s = Session {
        dir: tempdir(),
        runs: Vec::new(),
    };
    let root = s.root().to_path_buf();

    // The store: an encrypted CA, an issued certificate, a renewal.
    s.cm_both(
        &[
            "ca",
            "init",
            "--name",
            "Leak CA",
            "--key-pass",
            "env:CM_LEAK_CA",
        ],
        &["ca", "show", "--json"],
    );
    s.cm_both(
        &[
            "issue",
            "web",
            "--dns",
            "web.example.com",
            "--ca-pass",
            "env:CM_LEAK_CA",
        ],
        &[
            "issue",
            "api",
            "--dns",
            "api.example.com",
            "--ca-pass",
            "env:CM_LEAK_CA",
            "--json",
        ],
    );
    s.cm_both(
        &["renew", "--within", "400d", "--ca-pass", "env:CM_LEAK_CA"],
        &[
            "renew",
            "--within",
            "400d",
            "--ca-pass",
            "env:CM_LEAK_CA",
            "--json",
        ],
    );

    // Key files.
    s.cm(&[
        "key",
        "gen",
        "--key",
        "p256",
        "--out",
        "k.pem",
        "--pass",
        "env:CM_LEAK_KEY",
    ]);
    s.cm(&["key", "gen", "--key", "rsa2048", "--out", "plain-gen.pem"]);
    s.cm(&[
        "key",
        "strip",
        "k.pem",
        "--out",
        "k-plain.pem",
        "--pass",
        "env:CM_LEAK_KEY",
    ]);
    s.cm(&[
        "key",
        "strip",
        "k.pem",
        "--out",
        "k-plain.der",
        "--to",
        "der",
        "--pass",
        "env:CM_LEAK_KEY",
    ]);
    s.cm(&[
        "key",
        "encrypt",
        "k-plain.pem",
        "--out",
        "k-enc.pem",
        "--pass",
        "env:CM_LEAK_KEY2",
    ]);
    s.cm(&[
        "key",
        "encrypt",
        "k-plain.pem",
        "--out",
        "k-legacy.pem",
        "--legacy-pem",
        "--pass",
        "env:CM_LEAK_KEY2",
    ]);
    s.cm(&[
        "key",
        "encrypt",
        "k-enc.pem",
        "--out",
        "k-reenc.pem",
        "--in-pass",
        "env:CM_LEAK_KEY2",
        "--pass",
        "env:CM_LEAK_KEY",
    ]);
    s.cm(&[
        "key",
        "strip",
        "k-legacy.pem",
        "--in-place",
        "--pass",
        "env:CM_LEAK_KEY2",
    ]);

    // PKCS#12, written and read back.
    s.cm(&[
        "export",
        "p12",
        "web",
        "--out",
        "web.p12",
        "--pass",
        "env:CM_LEAK_P12",
    ]);
    s.cm(&[
        "key",
        "encrypt",
        "pki/issued/api/key.pem",
        "--out",
        "api-enc.pem",
        "--pass",
        "env:CM_LEAK_KEY2",
    ]);
    s.cm(&[
        "export",
        "p12",
        "--cert",
        "pki/issued/api/cert.pem",
        "--key",
        "api-enc.pem",
        "--key-pass",
        "env:CM_LEAK_KEY2",
        "--out",
        "files.p12",
        "--pass",
        "env:CM_LEAK_P12",
        "--force",
    ]);
    s.cm_both(
        &["inspect", "web.p12", "--pass", "env:CM_LEAK_P12"],
        &["inspect", "web.p12", "--pass", "env:CM_LEAK_P12", "--json"],
    );
    s.cm_both(
        &["inspect", "k-enc.pem", "--pass", "env:CM_LEAK_KEY2"],
        &[
            "inspect",
            "k-enc.pem",
            "--pass",
            "env:CM_LEAK_KEY2",
            "--json",
        ],
    );
    s.cm(&["inspect", "k-plain.pem", "--json"]);
    s.cm(&[
        "export",
        "pem",
        "web.p12",
        "--out",
        "split",
        "--pass",
        "env:CM_LEAK_P12",
    ]);

    // A cluster whose CA key is encrypted at rest, with keystores of both kinds: one with
    // its password from the manifest, one with a generated password.
    fs::write(
        root.join("cluster.toml"),
        r#"name = "leak"
trust = "shared-ca"

[ca]
name = "Leak Cluster CA"
key_pass = "env:CM_LEAK_CLUSTER_CA"

[defaults]
key = "p256"

[[member]]
name = "web1"
dns = ["web1.example.com"]
profile = "nginx"

[[member]]
name = "app1"
dns = ["app1.example.com"]
profile = "liberty"
password = "env:CM_LEAK_CLUSTER_KS"

[[member]]
name = "app2"
dns = ["app2.example.com"]
profile = "java-generic"

[[member]]
name = "ihs1"
dns = ["ihs1.example.com"]
profile = "ibm-http-server"
"#,
    )
    .unwrap();
    s.cm_both(
        &["cluster", "apply", "cluster.toml", "--out", "out"],
        &["cluster", "apply", "cluster.toml", "--out", "out", "--json"],
    );
    s.cm(&[
        "renew",
        "--cluster",
        "cluster.toml",
        "--out",
        "out",
        "--within",
        "400d",
        "--json",
    ]);
    s
}

#[test]
fn passphrases_and_key_bodies_stay_out_of_output_and_other_files() {
    let s = session();
    let written = files(s.root());

    let mut bodies = Vec::new();
    for content in written.values() {
        bodies.extend(private_key_bodies(content));
    }
    assert!(
        bodies.len() > 20,
        "the session wrote unencrypted keys to look for ({} lines found)",
        bodies.len()
    );

    let mut problems = Vec::new();
    for (cmd, r) in &s.runs {
        for (stream, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
            for (var, secret) in SECRETS {
                if text.contains(secret) {
                    problems.push(format!("`certmesh {cmd}` {stream} shows ${var}"));
                }
            }
            if let Some(b) = bodies.iter().find(|b| text.contains(b.as_str())) {
                problems.push(format!(
                    "`certmesh {cmd}` {stream} shows a private key ({b})"
                ));
            }
        }
    }

    for (path, content) in &written {
        let rel = path.strip_prefix(s.root()).unwrap();
        if rel == Path::new("cluster.toml") {
            continue;
        }
        for (var, secret) in SECRETS {
            let allowed = secret == CLUSTER_KS_PASS && may_hold_keystore_password(path);
            if !allowed && contains(content, secret.as_bytes()) {
                problems.push(format!("{} holds ${var}", rel.display()));
            }
        }
        if !is_pem_key_file(content) {
            if let Some(b) = bodies.iter().find(|b| contains(content, b.as_bytes())) {
                problems.push(format!(
                    "{} is not a key file but holds a private key ({b})",
                    rel.display()
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "secrets leaked:\n{}",
        problems.join("\n")
    );
}

/// A file holds private material when it is a key (PEM or DER written by a key command),
/// a PKCS#12 file, a GSKit stash or a keystore password file.
fn is_private(path: &Path, content: &[u8]) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    is_pem_key_file(content)
        || name.ends_with(".p12")
        || name.ends_with(".sth")
        || name == "keystore.pass"
        || name == "k-plain.der"
}

#[test]
fn private_files_are_0600_and_key_directories_are_not_world_writable() {
    let s = session();
    let mut problems = Vec::new();
    let mut private = 0;
    for (path, content) in files(s.root()) {
        let rel = path.strip_prefix(s.root()).unwrap().to_path_buf();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        if is_private(&path, &content) {
            private += 1;
            if mode != 0o600 {
                problems.push(format!("{} is {mode:o}, not 600", rel.display()));
            }
        }
    }
    assert!(private > 20, "the session wrote private files ({private})");
    for d in dirs(s.root()) {
        let mode = fs::metadata(&d).unwrap().permissions().mode() & 0o7777;
        if mode & 0o002 != 0 {
            problems.push(format!(
                "directory {} is world-writable ({mode:o})",
                d.strip_prefix(s.root()).unwrap().display()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
