//! Bad input of every kind, across the commands: each case exits non-zero with exactly
//! one line on stderr that names the problem (and the file, where there is one), no panic
//! and no Rust debug formatting, and every file that existed before is byte-identical
//! after.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use support::openssl::openssl;
use support::{certmesh, run, snapshot, tempdir};

/// Fixtures shared by the cases, made once per test run.
struct Fx {
    dir: PathBuf,
}

impl Fx {
    fn p(&self, rel: &str) -> String {
        self.dir.join(rel).display().to_string()
    }
}

fn write(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap();
}

fn truncate(src: &Path, dst: &Path, keep: usize) {
    let b = fs::read(src).unwrap();
    write(dst, &b[..keep.min(b.len())]);
}

fn flip(src: &Path, dst: &Path, at: usize) {
    let mut b = fs::read(src).unwrap();
    let i = at.min(b.len() - 1);
    b[i] ^= 0x5a;
    write(dst, &b);
}

fn ossl(args: &[&str]) {
    openssl(args).assert_success();
}

fn fixtures(dir: &Path) -> Fx {
    let fx = Fx {
        dir: dir.to_path_buf(),
    };
    let cm = |args: &[&str]| {
        run(certmesh().args(args).env("PW", "fixture-pass"))
            .assert_success()
            .clone()
    };
    let pki = fx.p("pki");
    cm(&[
        "--home",
        &pki,
        "ca",
        "init",
        "--name",
        "Bad CA",
        "--permit-dns",
        "example.com",
    ]);
    cm(&["--home", &pki, "issue", "n1", "--dns", "n1.example.com"]);
    let enc = fx.p("enc");
    cm(&[
        "--home",
        &enc,
        "ca",
        "init",
        "--name",
        "Enc CA",
        "--key-pass",
        "env:PW",
    ]);
    cm(&[
        "--home",
        &pki,
        "export",
        "p12",
        "n1",
        "--out",
        &fx.p("n1.p12"),
        "--pass",
        "env:PW",
    ]);
    let d = dir;
    fs::copy(d.join("pki/issued/n1/cert.pem"), d.join("cert.pem")).unwrap();
    fs::copy(d.join("pki/issued/n1/key.pem"), d.join("key.pem")).unwrap();
    ossl(&[
        "x509",
        "-in",
        &fx.p("cert.pem"),
        "-outform",
        "DER",
        "-out",
        &fx.p("cert.der"),
    ]);
    ossl(&[
        "genrsa",
        "-aes256",
        "-passout",
        "pass:fixture-pass",
        "-out",
        &fx.p("enc.key"),
        "2048",
    ]);
    ossl(&[
        "genrsa",
        "-des3",
        "-traditional",
        "-passout",
        "pass:fixture-pass",
        "-out",
        &fx.p("legacy.key"),
        "2048",
    ]);
    ossl(&[
        "pkey",
        "-in",
        &fx.p("key.pem"),
        "-outform",
        "DER",
        "-out",
        &fx.p("key.der"),
    ]);
    ossl(&[
        "genpkey",
        "-algorithm",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &fx.p("other.key"),
    ]);
    ossl(&[
        "req",
        "-new",
        "-key",
        &fx.p("other.key"),
        "-subj",
        "/CN=x.example.com",
        "-addext",
        "subjectAltName=DNS:x.example.com",
        "-out",
        &fx.p("good.csr"),
    ]);
    ossl(&[
        "req",
        "-new",
        "-key",
        &fx.p("other.key"),
        "-subj",
        "/CN=x.example.com",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-out",
        &fx.p("ca.csr"),
    ]);
    ossl(&[
        "req",
        "-new",
        "-key",
        &fx.p("other.key"),
        "-subj",
        "/CN=x.other.org",
        "-addext",
        "subjectAltName=DNS:x.other.org",
        "-out",
        &fx.p("outside.csr"),
    ]);
    ossl(&[
        "req",
        "-new",
        "-newkey",
        "rsa:1024",
        "-nodes",
        "-keyout",
        &fx.p("weak.key"),
        "-subj",
        "/CN=w.example.com",
        "-out",
        &fx.p("weak.csr"),
    ]);
    ossl(&[
        "req",
        "-new",
        "-key",
        &fx.p("enc.key"),
        "-passin",
        "pass:fixture-pass",
        "-sha1",
        "-subj",
        "/CN=s.example.com",
        "-out",
        &fx.p("sha1.csr"),
    ]);
    ossl(&[
        "req",
        "-in",
        &fx.p("good.csr"),
        "-outform",
        "DER",
        "-out",
        &fx.p("good.csr.der"),
    ]);
    truncate(&d.join("cert.pem"), &d.join("trunc-cert.pem"), 300);
    truncate(&d.join("cert.der"), &d.join("trunc-cert.der"), 200);
    truncate(&d.join("key.pem"), &d.join("trunc-key.pem"), 100);
    truncate(&d.join("key.der"), &d.join("trunc-key.der"), 60);
    truncate(&d.join("enc.key"), &d.join("trunc-enc.key"), 500);
    truncate(&d.join("n1.p12"), &d.join("trunc.p12"), 400);
    truncate(&d.join("good.csr.der"), &d.join("trunc.csr"), 100);
    let der = fs::read(d.join("enc.key")).unwrap();
    let text = String::from_utf8(der).unwrap();
    // Damage the base64 body of encrypted keys in a way that still decodes.
    let body_damage = |t: &str| {
        let mut lines: Vec<String> = t.lines().map(str::to_string).collect();
        let mid = lines.len() / 2;
        let l = &mut lines[mid];
        let replaced: String = l.chars().rev().collect();
        *l = replaced;
        lines.join("\n") + "\n"
    };
    write(&d.join("flip-enc.key"), body_damage(&text).as_bytes());
    write(
        &d.join("flip-legacy.key"),
        body_damage(&fs::read_to_string(d.join("legacy.key")).unwrap()).as_bytes(),
    );
    flip(
        &d.join("n1.p12"),
        &d.join("flip-mac.p12"),
        fs::metadata(d.join("n1.p12")).unwrap().len() as usize - 10,
    );
    flip(&d.join("good.csr.der"), &d.join("flip.csr"), 40);
    write(&d.join("random.bin"), &[0x17u8; 333]);
    write(&d.join("empty.pem"), b"");
    write(&d.join("hello.txt"), b"hello\n");
    write(&d.join("manifest-unknown.toml"), b"name = \"x\"\ncolour = 1\n[[member]]\nname = \"a\"\ndns = [\"a.example.com\"]\nprofile = \"nginx\"\n");
    write(&d.join("manifest-dup.toml"), b"name = \"x\"\n[[member]]\nname = \"a\"\ndns = [\"a.example.com\"]\nprofile = \"nginx\"\n[[member]]\nname = \"a\"\ndns = [\"b.example.com\"]\nprofile = \"nginx\"\n");
    write(&d.join("manifest-profile.toml"), b"name = \"x\"\n[[member]]\nname = \"a\"\ndns = [\"a.example.com\"]\nprofile = \"nosuch\"\n");
    write(
        &d.join("manifest-ip.toml"),
        b"name = \"x\"\n[[member]]\nname = \"a\"\nip = [\"10.0.0.256\"]\nprofile = \"nginx\"\n",
    );
    write(&d.join("manifest-syntax.toml"), b"name = \"x\n[[member]]\n");
    write(&d.join("manifest-empty.toml"), b"name = \"x\"\n");
    write(&d.join("manifest-key.toml"), b"name = \"x\"\n[defaults]\nkey = \"rsa1024\"\n[[member]]\nname = \"a\"\ndns = [\"a.example.com\"]\nprofile = \"nginx\"\n");
    write(&d.join("manifest-window.toml"), b"name = \"x\"\n[defaults]\nrenew_before = \"soon\"\n[[member]]\nname = \"a\"\ndns = [\"a.example.com\"]\nprofile = \"nginx\"\n");
    write(&d.join("manifest-extra.toml"), b"name = \"x\"\n[[extra_trust]]\nname = \"p\"\ncert = \"missing-partner.pem\"\n[[member]]\nname = \"a\"\ndns = [\"a.example.com\"]\nprofile = \"nginx\"\n");
    write(&d.join("manifest-reserved.toml"), b"name = \"x\"\n[[member]]\nname = \"pki\"\ndns = [\"a.example.com\"]\nprofile = \"nginx\"\n");
    write(
        &d.join("manifest-longname.toml"),
        format!("name = \"x\"\n[[member]]\nname = \"{}\"\ndns = [\"a.example.com\"]\nprofile = \"nginx\"\n", "m".repeat(129)).as_bytes(),
    );
    write(&d.join("manifest-owner.toml"), b"name = \"x\"\n[[member]]\nname = \"a\"\ndns = [\"a.example.com\"]\nprofile = \"nginx\"\n[member.deploy]\nhost = \"h\"\ndir = \"/srv\"\nowner = \"--reference=/etc/passwd\"\n");
    write(&d.join("manifest-emptypass.toml"), b"name = \"x\"\n[ca]\nkey_pass = \"env:EMPTY_CA\"\n[[member]]\nname = \"a\"\ndns = [\"a.example.com\"]\nprofile = \"nginx\"\n");
    write(&d.join("existing.out"), b"do not overwrite\n");
    fx
}

struct Case {
    what: &'static str,
    args: Vec<String>,
    env: Vec<(&'static str, &'static str)>,
    /// A phrase the one stderr line must contain.
    expect: &'static str,
}

fn case(what: &'static str, args: &[&str], expect: &'static str) -> Case {
    Case {
        what,
        args: args.iter().map(|s| s.to_string()).collect(),
        env: vec![],
        expect,
    }
}

fn case_env(
    what: &'static str,
    args: &[&str],
    env: &[(&'static str, &'static str)],
    expect: &'static str,
) -> Case {
    Case {
        env: env.to_vec(),
        ..case(what, args, expect)
    }
}

#[test]
fn every_bad_input_gets_one_clear_line_and_changes_nothing() {
    let dir = tempdir();
    let fx = fixtures(dir.path());
    let p = |r: &str| fx.p(r);
    let home = ["--home", &p("pki")];
    let enc = ["--home", &p("enc")];
    let out = p("out.file");
    let good_pw: [(&'static str, &'static str); 1] = [("PW", "fixture-pass")];
    let bad_pw: [(&'static str, &'static str); 1] = [("PW", "wrong-pass")];
    let empty_pw: [(&'static str, &'static str); 1] = [("PW", "")];
    let h = |rest: &[&str]| -> Vec<String> {
        home.iter()
            .chain(rest.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let e = |rest: &[&str]| -> Vec<String> {
        enc.iter()
            .chain(rest.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let mk = |what: &'static str,
              args: Vec<String>,
              env: &[(&'static str, &'static str)],
              expect: &'static str| Case {
        what,
        args,
        env: env.to_vec(),
        expect,
    };

    let mut cases: Vec<Case> = vec![
        // Truncated and damaged files of every format.
        case(
            "truncated PEM certificate",
            &["inspect", &p("trunc-cert.pem")],
            "trunc-cert.pem",
        ),
        case(
            "truncated DER certificate",
            &["inspect", &p("trunc-cert.der")],
            "trunc-cert.der",
        ),
        case(
            "truncated PEM key",
            &["key", "strip", &p("trunc-key.pem"), "--out", &out],
            "trunc-key.pem",
        ),
        case(
            "truncated DER key",
            &["key", "strip", &p("trunc-key.der"), "--out", &out],
            "trunc-key.der",
        ),
        case_env(
            "truncated encrypted key",
            &[
                "key",
                "strip",
                &p("trunc-enc.key"),
                "--out",
                &out,
                "--pass",
                "env:PW",
            ],
            &good_pw,
            "trunc-enc.key",
        ),
        case_env(
            "damaged encrypted PKCS#8",
            &[
                "key",
                "strip",
                &p("flip-enc.key"),
                "--out",
                &out,
                "--pass",
                "env:PW",
            ],
            &good_pw,
            "flip-enc.key",
        ),
        case_env(
            "damaged legacy PEM",
            &[
                "key",
                "strip",
                &p("flip-legacy.key"),
                "--out",
                &out,
                "--pass",
                "env:PW",
            ],
            &good_pw,
            "flip-legacy.key",
        ),
        case_env(
            "truncated PKCS#12",
            &["inspect", &p("trunc.p12"), "--pass", "env:PW"],
            &good_pw,
            "trunc.p12",
        ),
        case_env(
            "PKCS#12 with a damaged MAC",
            &[
                "export",
                "pem",
                &p("flip-mac.p12"),
                "--out",
                &p("pemdir"),
                "--pass",
                "env:PW",
            ],
            &good_pw,
            "flip-mac.p12",
        ),
        case_env(
            "truncated PKCS#12 to export",
            &[
                "export",
                "pem",
                &p("trunc.p12"),
                "--out",
                &p("pemdir"),
                "--pass",
                "env:PW",
            ],
            &good_pw,
            "trunc.p12",
        ),
        mk(
            "truncated CSR",
            h(&["sign", &p("trunc.csr"), "--out", &out]),
            &[],
            "trunc.csr",
        ),
        mk(
            "CSR with a bad signature",
            h(&["sign", &p("flip.csr"), "--out", &out]),
            &[],
            "flip.csr",
        ),
        mk(
            "truncated certificate to import",
            h(&[
                "ca",
                "import",
                "--cert",
                &p("trunc-cert.pem"),
                "--key",
                &p("key.pem"),
            ]),
            &[],
            "trunc-cert.pem",
        ),
        case(
            "truncated certificate to match",
            &["key", "match", &p("key.pem"), &p("trunc-cert.pem")],
            "trunc-cert.pem",
        ),
        case("empty file", &["inspect", &p("empty.pem")], "empty.pem"),
        case("random bytes", &["inspect", &p("random.bin")], "random.bin"),
        case(
            "text that is no PEM",
            &["key", "strip", &p("hello.txt"), "--out", &out],
            "hello.txt",
        ),
        // Wrong and empty passwords.
        case_env(
            "wrong passphrase, PBES2",
            &[
                "key",
                "strip",
                &p("enc.key"),
                "--out",
                &out,
                "--pass",
                "env:PW",
            ],
            &bad_pw,
            "passphrase",
        ),
        case_env(
            "wrong passphrase, legacy PEM",
            &[
                "key",
                "strip",
                &p("legacy.key"),
                "--out",
                &out,
                "--pass",
                "env:PW",
            ],
            &bad_pw,
            "passphrase",
        ),
        case_env(
            "wrong PKCS#12 password, export",
            &[
                "export",
                "pem",
                &p("n1.p12"),
                "--out",
                &p("pemdir"),
                "--pass",
                "env:PW",
            ],
            &bad_pw,
            "n1.p12",
        ),
        case_env(
            "wrong PKCS#12 password, inspect",
            &["inspect", &p("n1.p12"), "--pass", "env:PW"],
            &bad_pw,
            "n1.p12",
        ),
        mk(
            "wrong CA passphrase, issue",
            e(&[
                "issue",
                "x",
                "--dns",
                "x.example.com",
                "--ca-pass",
                "env:PW",
            ]),
            &bad_pw,
            "wrong passphrase",
        ),
        mk(
            "wrong CA passphrase, intermediate",
            e(&["ca", "intermediate", "--ca-pass", "env:PW"]),
            &bad_pw,
            "wrong passphrase",
        ),
        mk(
            "missing CA passphrase without a terminal",
            e(&["issue", "x", "--dns", "x.example.com"]),
            &[],
            "--ca-pass",
        ),
        case_env(
            "wrong key passphrase, ca import",
            &[
                "--home",
                &p("newstore"),
                "ca",
                "import",
                "--cert",
                &p("cert.pem"),
                "--key",
                &p("enc.key"),
                "--pass",
                "env:PW",
            ],
            &bad_pw,
            "passphrase",
        ),
        case_env(
            "wrong key passphrase, inspect",
            &["inspect", &p("enc.key"), "--pass", "env:PW"],
            &bad_pw,
            "enc.key",
        ),
        case_env(
            "empty passphrase, key encrypt",
            &[
                "key",
                "encrypt",
                &p("key.pem"),
                "--out",
                &out,
                "--pass",
                "env:PW",
            ],
            &empty_pw,
            "empty",
        ),
        case_env(
            "empty passphrase, ca init",
            &[
                "--home",
                &p("newstore"),
                "ca",
                "init",
                "--name",
                "N",
                "--key-pass",
                "env:PW",
            ],
            &empty_pw,
            "empty",
        ),
        case_env(
            "empty password, export p12",
            &[
                "--home",
                &p("pki"),
                "export",
                "p12",
                "n1",
                "--out",
                &p("new.p12"),
                "--pass",
                "env:PW",
            ],
            &empty_pw,
            "empty",
        ),
        case(
            "unset passphrase variable",
            &[
                "key",
                "strip",
                &p("enc.key"),
                "--out",
                &out,
                "--pass",
                "env:CERTMESH_NOT_SET",
            ],
            "CERTMESH_NOT_SET",
        ),
        case(
            "passphrase file missing",
            &[
                "key",
                "strip",
                &p("enc.key"),
                "--out",
                &out,
                "--pass",
                "file:/nonexistent/pw",
            ],
            "/nonexistent/pw",
        ),
        // The wrong kind of file for the option.
        case(
            "certificate given as a key",
            &["key", "strip", &p("cert.pem"), "--out", &out],
            "cert.pem",
        ),
        case(
            "CSR given as a key",
            &["key", "strip", &p("good.csr"), "--out", &out],
            "good.csr",
        ),
        mk(
            "certificate given as a CSR",
            h(&["sign", &p("cert.pem"), "--out", &out]),
            &[],
            "cert.pem",
        ),
        mk(
            "key given as a CSR",
            h(&["sign", &p("key.pem"), "--out", &out]),
            &[],
            "key.pem",
        ),
        case_env(
            "key given as the certificate to export",
            &[
                "export",
                "p12",
                "--cert",
                &p("key.pem"),
                "--key",
                &p("key.pem"),
                "--out",
                &p("new.p12"),
                "--pass",
                "env:PW",
            ],
            &good_pw,
            "key.pem",
        ),
        case_env(
            "certificate given as the key to export",
            &[
                "export",
                "p12",
                "--cert",
                &p("cert.pem"),
                "--key",
                &p("cert.pem"),
                "--out",
                &p("new.p12"),
                "--pass",
                "env:PW",
            ],
            &good_pw,
            "cert.pem",
        ),
        case(
            "key given as the CA certificate",
            &[
                "--home",
                &p("newstore"),
                "ca",
                "import",
                "--cert",
                &p("key.pem"),
                "--key",
                &p("key.pem"),
            ],
            "key.pem",
        ),
        case(
            "PEM given as a manifest",
            &["cluster", "apply", &p("cert.pem"), "--out", &p("cl")],
            "cert.pem",
        ),
        case(
            "PKCS#12 given to key strip",
            &["key", "strip", &p("n1.p12"), "--out", &out],
            "n1.p12",
        ),
        // Key and certificate that do not belong together.
        case_env(
            "export p12 with someone else's key",
            &[
                "export",
                "p12",
                "--cert",
                &p("cert.pem"),
                "--key",
                &p("other.key"),
                "--out",
                &p("new.p12"),
                "--pass",
                "env:PW",
            ],
            &good_pw,
            "match",
        ),
        case(
            "ca import with someone else's key",
            &[
                "--home",
                &p("newstore"),
                "ca",
                "import",
                "--cert",
                &p("pki/ca/root/cert.pem"),
                "--key",
                &p("other.key"),
            ],
            "does not match",
        ),
        case(
            "ca import of a leaf",
            &[
                "--home",
                &p("newstore"),
                "ca",
                "import",
                "--cert",
                &p("cert.pem"),
                "--key",
                &p("key.pem"),
            ],
            "cert.pem",
        ),
        // Requests the policy refuses.
        mk(
            "CSR asking for CA:TRUE",
            h(&["sign", &p("ca.csr"), "--out", &out]),
            &[],
            "CA:TRUE",
        ),
        mk(
            "CSR with an RSA-1024 key",
            h(&["sign", &p("weak.csr"), "--out", &out]),
            &[],
            "RSA-1024",
        ),
        mk(
            "CSR signed with SHA-1",
            h(&["sign", &p("sha1.csr"), "--out", &out]),
            &[],
            "sha1",
        ),
        mk(
            "CSR outside the name constraints",
            h(&["sign", &p("outside.csr"), "--out", &out]),
            &[],
            "permitted",
        ),
        mk(
            "issue outside the name constraints",
            h(&["issue", "x", "--dns", "x.other.org"]),
            &[],
            "permitted",
        ),
        mk(
            "issue over an existing entry",
            h(&["issue", "n1", "--dns", "n1.example.com"]),
            &[],
            "--force",
        ),
        mk(
            "issue with an RSA-1024 key",
            h(&["issue", "x", "--dns", "x.example.com", "--key", "rsa1024"]),
            &[],
            "RSA-1024",
        ),
        mk(
            "ca init over an existing store",
            h(&["ca", "init", "--name", "Again"]),
            &[],
            "already exists",
        ),
        mk(
            "ca init with SHA-1",
            vec![
                "--home".into(),
                p("newstore"),
                "ca".into(),
                "init".into(),
                "--name".into(),
                "N".into(),
                "--digest".into(),
                "sha1".into(),
            ],
            &[],
            "sha1",
        ),
        mk(
            "sign onto an existing file",
            h(&["sign", &p("good.csr"), "--out", &p("existing.out")]),
            &[],
            "existing.out",
        ),
        case(
            "key strip onto an existing file",
            &["key", "strip", &p("key.pem"), "--out", &p("existing.out")],
            "existing.out",
        ),
        case_env(
            "export p12 onto an existing file",
            &[
                "--home",
                &p("pki"),
                "export",
                "p12",
                "n1",
                "--out",
                &p("existing.out"),
                "--pass",
                "env:PW",
            ],
            &good_pw,
            "existing.out",
        ),
        // Paths that cannot be read or written.
        case("missing input", &["inspect", &p("nope.pem")], "nope.pem"),
        case(
            "missing key",
            &["key", "strip", &p("nope.key"), "--out", &out],
            "nope.key",
        ),
        mk(
            "missing CSR",
            h(&["sign", &p("nope.csr"), "--out", &out]),
            &[],
            "nope.csr",
        ),
        case(
            "missing manifest",
            &["cluster", "apply", &p("nope.toml"), "--out", &p("cl")],
            "nope.toml",
        ),
        case(
            "missing store",
            &[
                "--home",
                &p("nostore"),
                "issue",
                "x",
                "--dns",
                "x.example.com",
            ],
            "nostore",
        ),
        case(
            "unwritable output",
            &[
                "key",
                "strip",
                &p("key.pem"),
                "--out",
                "/proc/certmesh-nowhere/k.pem",
            ],
            "/proc/certmesh-nowhere",
        ),
        mk(
            "unwritable certificate output",
            h(&[
                "sign",
                &p("good.csr"),
                "--out",
                "/proc/certmesh-nowhere/c.pem",
            ]),
            &[],
            "/proc/certmesh-nowhere",
        ),
        // Manifest errors, each with its line.
        case(
            "manifest with an unknown key",
            &[
                "cluster",
                "apply",
                &p("manifest-unknown.toml"),
                "--out",
                &p("cl"),
            ],
            "manifest-unknown.toml:2",
        ),
        case(
            "manifest with a duplicate member",
            &[
                "cluster",
                "apply",
                &p("manifest-dup.toml"),
                "--out",
                &p("cl"),
            ],
            "manifest-dup.toml:7",
        ),
        case(
            "manifest with an unknown profile",
            &[
                "cluster",
                "apply",
                &p("manifest-profile.toml"),
                "--out",
                &p("cl"),
            ],
            "nosuch",
        ),
        case(
            "manifest with a bad IP",
            &[
                "cluster",
                "apply",
                &p("manifest-ip.toml"),
                "--out",
                &p("cl"),
            ],
            "manifest-ip.toml:4",
        ),
        case(
            "manifest that is not TOML",
            &[
                "cluster",
                "apply",
                &p("manifest-syntax.toml"),
                "--out",
                &p("cl"),
            ],
            "manifest-syntax.toml",
        ),
        case(
            "manifest without members",
            &[
                "cluster",
                "apply",
                &p("manifest-empty.toml"),
                "--out",
                &p("cl"),
            ],
            "member",
        ),
        case(
            "manifest with a weak key type",
            &[
                "cluster",
                "apply",
                &p("manifest-key.toml"),
                "--out",
                &p("cl"),
            ],
            "RSA-1024",
        ),
        case(
            "manifest with a bad renew window",
            &[
                "cluster",
                "apply",
                &p("manifest-window.toml"),
                "--out",
                &p("cl"),
            ],
            "soon",
        ),
        case(
            "manifest naming a missing signer file",
            &[
                "cluster",
                "apply",
                &p("manifest-extra.toml"),
                "--out",
                &p("cl"),
            ],
            "missing-partner.pem",
        ),
        case(
            "manifest using a reserved member name",
            &[
                "cluster",
                "apply",
                &p("manifest-reserved.toml"),
                "--out",
                &p("cl"),
            ],
            "reserved",
        ),
    ];
    cases.push(case(
        "usage: unknown key type",
        &["key", "gen", "--key", "dsa", "--out", &out],
        "unknown key type",
    ));
    cases.push(case(
        "usage: bad duration",
        &["--home", &p("pki"), "list", "--expiring-within", "later"],
        "later",
    ));
    cases.push(case(
        "usage: bad passphrase source",
        &[
            "key",
            "strip",
            &p("enc.key"),
            "--out",
            &out,
            "--pass",
            "hunter2",
        ],
        "passphrase source",
    ));

    cases.push(case(
        "hostile: passphrase file that never ends",
        &[
            "--home",
            &p("newca"),
            "ca",
            "init",
            "--name",
            "X",
            "--key-pass",
            "file:/dev/zero",
        ],
        "must be a regular file",
    ));
    cases.push(case(
        "hostile: export jks of a path outside issued/",
        &[
            "--home",
            &p("pki"),
            "export",
            "jks",
            "../ca/root",
            "--out",
            &p("root.jks"),
            "--storepass",
            "env:PW",
        ],
        "invalid name",
    ));
    cases.push(case_env(
        "hostile: the passphrase itself after env:",
        &[
            "--home",
            &p("enc"),
            "issue",
            "x",
            "--dns",
            "x.example.com",
            "--ca-pass",
            "env:fixture-pass",
        ],
        &[],
        "is not set",
    ));
    cases.push(case(
        "hostile: sign --name outside issued/",
        &[
            "--home",
            &p("pki"),
            "sign",
            &p("good.csr"),
            "--name",
            "../ca/root",
            "--out",
            &out,
        ],
        "invalid name",
    ));
    cases.push(case(
        "manifest: member name too long",
        &[
            "cluster",
            "plan",
            &p("manifest-longname.toml"),
            "--out",
            &p("cl"),
        ],
        "invalid name",
    ));
    cases.push(case(
        "manifest: deploy owner that is an option",
        &[
            "cluster",
            "plan",
            &p("manifest-owner.toml"),
            "--out",
            &p("cl"),
        ],
        "invalid deploy owner",
    ));
    cases.push(case_env(
        "manifest: empty CA passphrase",
        &[
            "cluster",
            "apply",
            &p("manifest-emptypass.toml"),
            "--out",
            &p("cl"),
        ],
        &[("EMPTY_CA", "")],
        "passphrase is empty",
    ));
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let bad_debug = [
        "Error {",
        "Os {",
        "kind:",
        "panicked",
        "RUST_BACKTRACE",
        "Some(",
        "\\n",
    ];
    for c in &cases {
        let before = snapshot(dir.path());
        let r = run(certmesh().args(&c.args).envs(c.env.iter().copied()));
        assert_ne!(r.status, 0, "{}: succeeded: {r:?}", c.what);
        assert!(
            r.status == 1 || r.status == 2,
            "{}: exit {}: {r:?}",
            c.what,
            r.status
        );
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{}: want one stderr line: {r:?}", c.what);
        assert!(
            lines[0].contains(c.expect),
            "{}: '{}' not in: {}",
            c.what,
            c.expect,
            lines[0]
        );
        for d in bad_debug {
            assert!(
                !r.stderr.contains(d),
                "{}: debug output '{d}': {r:?}",
                c.what
            );
        }
        assert!(
            !r.stderr.contains("fixture-pass") && !r.stderr.contains("wrong-pass"),
            "{}: a secret in the message",
            c.what
        );
        let mut after = snapshot(dir.path());
        // Lock files are created on first use and are not content.
        after.retain(|k, _| !k.ends_with(".lock"));
        let mut before = before;
        before.retain(|k, _| !k.ends_with(".lock"));
        assert_eq!(
            after.keys().collect::<Vec<_>>(),
            before.keys().collect::<Vec<_>>(),
            "{}: files appeared or vanished",
            c.what
        );
        assert!(after == before, "{}: a file changed", c.what);
    }
}

#[test]
fn a_full_disk_fails_cleanly_and_keeps_the_old_file() {
    let dir = tempdir();
    let mnt = dir.path().join("small");
    fs::create_dir(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16k", "tmpfs"])
        .arg(&mnt)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        mounted,
        "this test needs to mount a small tmpfs (run as root, as scripts/test does)"
    );
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    // Fill the disk, leaving an existing key file in place.
    fs::write(mnt.join("existing.pem"), b"old key\n").unwrap();
    let _ = fs::write(mnt.join("filler"), vec![0u8; 15 * 1024]);
    let key = dir.path().join("k.pem");
    openssl(&["genrsa", "-out", key.to_str().unwrap(), "4096"]).assert_success();
    let before = snapshot(&mnt);
    let r = run(certmesh()
        .args(["key", "strip"])
        .arg(&key)
        .arg("--out")
        .arg(mnt.join("existing.pem"))
        .arg("--force"));
    assert_eq!(r.status, 1, "{r:?}");
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    assert!(
        r.stderr.contains("small") && r.stderr.contains("No space left"),
        "{r:?}"
    );
    assert_eq!(
        snapshot(&mnt),
        before,
        "the old file is intact and no temporary is left"
    );
}
