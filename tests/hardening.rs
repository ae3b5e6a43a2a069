//! Hostile neighbours and hostile input: directories other users can change, a store
//! whose `store.toml` or CA certificate was tampered with, empty and endless passphrase
//! sources, secrets in child processes and in the process itself.

mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{certmesh, cm, run, run_with_timeout, snapshot, tempdir};

/// Long enough for any of these commands; only a run that hangs or spins reaches it.
const HANG: Duration = Duration::from_secs(120);

fn manifest(dir: &Path, body: &str) -> std::path::PathBuf {
    let m = dir.join("cluster.toml");
    fs::write(
        &m,
        format!("name = \"h\"\n[defaults]\nprofile = \"nginx\"\n{body}[[member]]\nname = \"a\"\ndns = [\"a.cluster.test\"]\n"),
    )
    .unwrap();
    m
}

fn apply(m: &Path, out: &Path) -> Command {
    let mut c = certmesh();
    c.args(["cluster", "apply"]).arg(m).arg("--out").arg(out);
    c
}

#[test]
fn empty_ca_passphrase_is_refused_from_every_source_before_anything_is_written() {
    let dir = tempdir();
    let empty = dir.path().join("empty-pass");
    fs::write(&empty, "").unwrap();
    let out = dir.path().join("out");
    for spec in [
        "env:CM_EMPTY_PASS".to_string(),
        format!("file:{}", empty.display()),
        "stdin".to_string(),
    ] {
        let m = manifest(dir.path(), &format!("[ca]\nkey_pass = \"{spec}\"\n"));
        let r = run(apply(&m, &out).env("CM_EMPTY_PASS", ""));
        assert_eq!(r.status, 1, "{spec}: {r:?}");
        assert!(
            r.stderr.contains("[ca] key_pass: the passphrase is empty"),
            "{spec}: {r:?}"
        );
        assert!(!out.exists(), "{spec}: nothing is created");
    }
    // Keys encrypted by the library directly refuse it as well.
    let key = dir.path().join("k.pem");
    let r = run(certmesh()
        .args(["key", "gen", "--pass", "env:CM_EMPTY_PASS", "--out"])
        .arg(&key)
        .env("CM_EMPTY_PASS", ""));
    assert_eq!(r.status, 1, "{r:?}");
    assert!(r.stderr.contains("empty"), "{r:?}");
    assert!(!key.exists());
}

#[test]
fn passphrase_files_must_be_small_regular_files() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    let fifo = dir.path().join("fifo");
    let o = Command::new("mkfifo").arg(&fifo).output().unwrap();
    assert!(o.status.success());
    let big = dir.path().join("big");
    fs::write(&big, vec![b'x'; 1 << 20]).unwrap();
    for (src, expect) in [
        ("/dev/zero".to_string(), "must be a regular file"),
        (fifo.display().to_string(), "must be a regular file"),
        (big.display().to_string(), "too large for a passphrase file"),
    ] {
        let r = run_with_timeout(
            certmesh().arg("--home").arg(&home).args([
                "ca",
                "init",
                "--name",
                "X",
                "--key-pass",
                &format!("file:{src}"),
            ]),
            None,
            HANG,
        );
        assert_eq!(r.status, 1, "{src}: {r:?}");
        assert!(r.stderr.contains(expect), "{src}: {r:?}");
        assert_eq!(r.stderr.lines().count(), 1, "{src}: {r:?}");
        assert!(!home.exists(), "{src}");
    }
}

#[test]
fn shared_or_foreign_home_and_out_are_refused_and_audit_reports_them() {
    let dir = tempdir();
    let shared = dir.path().join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    let home = shared.join("pki");
    let r = cm(&home, &["ca", "init", "--name", "Shared"]);
    assert_eq!(r.status, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "{}: writable by other users (mode 0777); run `chmod go-w {}`, or pass --allow-shared-dir",
            shared.display(),
            shared.display()
        )),
        "{r:?}"
    );
    assert!(!home.exists());
    // Deliberately shared: accepted with the flag, refused again without it.
    run(certmesh()
        .args(["--allow-shared-dir", "--home"])
        .arg(&home)
        .args(["ca", "init", "--name", "Shared"]))
    .assert_success();
    let r = cm(&home, &["list"]);
    assert!(r.stderr.contains("writable by other users"), "{r:?}");
    // audit says so about the store.
    let r = run(certmesh().arg("audit").arg(&shared));
    assert_eq!(r.status, 1, "{r:?}");
    assert!(
        r.stdout.contains("error shared-store-dir") && r.stdout.contains("writable by other users"),
        "{r:?}"
    );

    // A directory above the store owned by someone else.
    let uid = support::other_user();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&shared, Some(uid), Some(uid)).unwrap();
    let r = cm(&home, &["list"]);
    assert_eq!(r.status, 1, "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("{}: owned by uid {uid}", shared.display())),
        "{r:?}"
    );
    let r = run(certmesh().arg("audit").arg(&shared));
    assert!(r.stdout.contains("owned by uid"), "{r:?}");

    // A cluster's --out where someone planted a keystore password: refused before it
    // is read, and nothing is written.
    let open = dir.path().join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let out = open.join("out");
    fs::create_dir_all(out.join("a")).unwrap();
    fs::write(out.join("a/keystore.pass"), "planted\n").unwrap();
    let m = manifest(dir.path(), "");
    let before = snapshot(&open);
    let r = run(&mut apply(&m, &out));
    assert_eq!(r.status, 1, "{r:?}");
    assert!(r.stderr.contains("writable by other users"), "{r:?}");
    assert_eq!(snapshot(&open), before);
}

/// A store whose `store.toml` was edited into a loop or to point outside the store is
/// refused when opened, instead of spinning or following the path.
#[test]
fn tampered_store_toml_is_refused_when_opened() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "Loop"]).assert_success();
    cm(&home, &["ca", "intermediate"]).assert_success();
    let config = home.join("store.toml");
    let good = fs::read_to_string(&config).unwrap();
    let cycle = good.replacen("parent = \"root\"", "parent = \"intermediate\"", 1);
    assert_ne!(cycle, good);
    let outside = good.replace("\"intermediate\"", "\"../../elsewhere\"");
    for (text, expect) in [
        (cycle, "form a cycle"),
        (outside, "not a plain name inside the store"),
    ] {
        fs::write(&config, &text).unwrap();
        for args in [
            &["issue", "n1", "--dns", "n1.example.com"][..],
            &["crl"][..],
        ] {
            let r = run_with_timeout(certmesh().arg("--home").arg(&home).args(args), None, HANG);
            assert_eq!(r.status, 1, "{args:?}: {r:?}");
            assert!(r.stderr.contains(expect), "{args:?}: {r:?}");
        }
    }
    assert!(!home.join("issued/n1").exists());
}

/// A CA certificate replaced on disk (not the one the store made and recorded) is not
/// signed with, not put into chains, and not put into any member's trust bundle.
#[test]
fn replaced_ca_certificate_is_never_trusted() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "Real"]).assert_success();
    cm(&home, &["ca", "intermediate"]).assert_success();
    let intruder = dir.path().join("intruder");
    cm(&intruder, &["ca", "init", "--name", "Intruder"]).assert_success();
    let foreign = fs::read(intruder.join("ca/root/cert.pem")).unwrap();
    fs::write(home.join("ca/root/cert.pem"), &foreign).unwrap();
    let r = cm(&home, &["issue", "n1", "--dns", "n1.example.com"]);
    assert_eq!(r.status, 1, "{r:?}");
    assert!(r.stderr.contains("is not one the store recorded"), "{r:?}");
    assert!(!home.join("issued/n1").exists());

    // The same through a cluster: the next apply refuses instead of trusting it.
    let m = manifest(dir.path(), "[ca]\nintermediate = true\n");
    let out = dir.path().join("out");
    run(&mut apply(&m, &out)).assert_success();
    let trust = fs::read(out.join("a/trust.pem")).unwrap();
    fs::write(out.join("pki/ca/ca/root/cert.pem"), &foreign).unwrap();
    let r = run(&mut apply(&m, &out));
    assert_eq!(r.status, 1, "{r:?}");
    assert!(r.stderr.contains("is not one the store recorded"), "{r:?}");
    assert_eq!(fs::read(out.join("a/trust.pem")).unwrap(), trust);
}

#[test]
fn keystore_force_writes_a_new_file_of_its_own_and_never_through_a_link() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "KS"]).assert_success();
    cm(&home, &["issue", "n1", "--dns", "n1.example.com"]).assert_success();
    let issued = home.join("issued/n1");
    let create = |out: &Path| {
        run(certmesh()
            .args([
                "keystore", "create", "--type", "jks", "--alias", "n1", "--force",
            ])
            .arg("--cert")
            .arg(issued.join("cert.pem"))
            .arg("--key")
            .arg(issued.join("key.pem"))
            .arg("--out")
            .arg(out)
            .args(["--storepass", "env:KS_PASS"])
            .env("KS_PASS", "changeit"))
    };
    // Over a file another user owns and others may read: the new file is ours, 0600.
    let uid = support::other_user();
    let out = dir.path().join("node.jks");
    fs::write(&out, "old").unwrap();
    fs::set_permissions(&out, fs::Permissions::from_mode(0o664)).unwrap();
    std::os::unix::fs::chown(&out, Some(uid), Some(uid)).unwrap();
    create(&out).assert_success();
    let meta = fs::metadata(&out).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o600));
    let list = run(Command::new("keytool").args([
        "-list",
        "-keystore",
        out.to_str().unwrap(),
        "-storepass",
        "changeit",
        "-storetype",
        "JKS",
    ]));
    list.assert_success();
    assert!(list.stdout.contains("n1, "), "{list:?}");
    // A symbolic link as --out: refused, and the file it points to is untouched.
    let target = dir.path().join("elsewhere");
    fs::write(&target, "theirs").unwrap();
    let link = dir.path().join("link.jks");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let r = create(&link);
    assert_eq!(r.status, 1, "{r:?}");
    assert!(r.stderr.contains("is a symbolic link"), "{r:?}");
    assert_eq!(fs::read(&target).unwrap(), b"theirs");
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
}

/// ssh (here a stand-in that records its environment, then runs the remote script
/// locally) sees neither a variable a pass spec named nor certmesh's own.
#[test]
fn child_processes_get_no_secret_variables() {
    let dir = tempdir();
    let env_file = dir.path().join("ssh-env");
    let fake = dir.path().join("fake-ssh");
    fs::write(
        &fake,
        format!(
            "#!/bin/sh\nenv > '{}'\nwhile [ \"$1\" != -- ]; do shift; done\nshift 2\nexec sh -c \"$1\"\n",
            env_file.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let remote = dir.path().join("remote");
    let m = dir.path().join("cluster.toml");
    fs::write(
        &m,
        format!(
            "name = \"env\"\n[ca]\nkey_pass = \"env:LC_CM_CA_PASS\"\n[defaults]\nprofile = \"nginx\"\n[[member]]\nname = \"a\"\ndns = [\"a.cluster.test\"]\n[member.deploy]\nhost = \"node\"\ndir = \"{}\"\nreload = \"true\"\n",
            remote.display()
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let r = run(apply(&m, &out)
        .arg("--deploy")
        .env("LC_CM_CA_PASS", "ca-secret-passphrase")
        .env("CERTMESH_SSH", &fake)
        .env("CERTMESH_LOG_MARKER", "x")
        .env("CM_VISIBLE", "kept"));
    r.assert_success();
    assert_eq!(
        fs::read(remote.join("privkey.pem")).unwrap(),
        fs::read(out.join("a/privkey.pem")).unwrap()
    );
    let env = fs::read_to_string(&env_file).unwrap();
    assert!(env.contains("CM_VISIBLE=kept"), "{env}");
    assert!(!env.contains("ca-secret-passphrase"), "{env}");
    assert!(!env.contains("LC_CM_CA_PASS"), "{env}");
    assert!(!env.contains("CERTMESH_"), "{env}");
}

/// With `--log`, cluster runs write their changes like every other command; neither the
/// log nor a store's `.lock` is opened through a symbolic link.
#[test]
fn cluster_runs_are_logged_and_log_and_lock_do_not_follow_links() {
    let dir = tempdir();
    let m = manifest(dir.path(), "");
    let out = dir.path().join("out");
    let log = dir.path().join("certmesh.log");
    run(certmesh()
        .arg("--log")
        .arg(&log)
        .args(["cluster", "apply"])
        .arg(&m)
        .arg("--out")
        .arg(&out))
    .assert_success();
    let text = fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(" cluster apply: h: created CA for cluster"),
        "{text}"
    );
    assert!(
        text.contains(" cluster apply: a: certificate issued"),
        "{text}"
    );
    run(certmesh()
        .arg("--log")
        .arg(&log)
        .args(["renew", "--within", "400d", "--cluster"])
        .arg(&m)
        .arg("--out")
        .arg(&out))
    .assert_success();
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains(" renew: a: certificate renewed"), "{text}");

    // A log that is a link: the change is made, the warning says why nothing was logged,
    // and the file the link points to is untouched.
    let victim = dir.path().join("victim");
    fs::write(&victim, "keep\n").unwrap();
    let link = dir.path().join("link.log");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "L"]).assert_success();
    let r = run(certmesh()
        .arg("--home")
        .arg(&home)
        .arg("--log")
        .arg(&link)
        .args(["issue", "n1", "--dns", "n1.example.com"]));
    r.assert_success();
    assert!(r.stderr.contains("cannot write the log"), "{r:?}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "keep\n");
    // A `.lock` that is a link: refused, and nothing is created where it points.
    fs::remove_file(home.join(".lock")).unwrap();
    let elsewhere = dir.path().join("lock-target");
    std::os::unix::fs::symlink(&elsewhere, home.join(".lock")).unwrap();
    let r = cm(&home, &["issue", "n2", "--dns", "n2.example.com"]);
    assert_eq!(r.status, 1, "{r:?}");
    assert!(!elsewhere.exists());
    assert!(!home.join("issued/n2").exists());
}

/// Every check of the manifest and the profiles runs before anything is written.
#[test]
fn manifest_problems_are_found_before_anything_is_written() {
    let dir = tempdir();
    let out = dir.path().join("out");
    let long = "n".repeat(129);
    let m = dir.path().join("long.toml");
    fs::write(
        &m,
        format!("name = \"h\"\n[defaults]\nprofile = \"nginx\"\n[[member]]\nname = \"a\"\ndns = [\"a.cluster.test\"]\n[[member]]\nname = \"{long}\"\ndns = [\"b.cluster.test\"]\n"),
    )
    .unwrap();
    for cmd in ["plan", "apply"] {
        let r = run(certmesh()
            .args(["cluster", cmd])
            .arg(&m)
            .arg("--out")
            .arg(&out));
        assert_eq!(r.status, 1, "{cmd}: {r:?}");
        assert!(
            r.stderr.contains("long.toml:8: invalid name"),
            "{cmd}: {r:?}"
        );
        assert!(!out.exists(), "{cmd}");
    }
    // A profile whose file would be the generated keystore password.
    let profiles = dir.path().join("profiles");
    fs::create_dir(&profiles).unwrap();
    fs::write(
        profiles.join("odd.toml"),
        "name = \"odd\"\ndescription = \"d\"\ncert_profile = \"server\"\n[[file]]\npath = \"keystore.pass\"\ncontent = \"cert\"\n",
    )
    .unwrap();
    let m = dir.path().join("odd.toml");
    fs::write(
        &m,
        "name = \"h\"\n[[member]]\nname = \"a\"\ndns = [\"a.cluster.test\"]\nprofile = \"odd\"\n",
    )
    .unwrap();
    let r = run(apply(&m, &out).arg("--profiles").arg(&profiles));
    assert_eq!(r.status, 1, "{r:?}");
    assert!(
        r.stderr.contains("collides with a name certmesh keeps"),
        "{r:?}"
    );
    assert!(!out.exists());
}

/// A hostile manifest's huge name does not become a huge error line.
#[test]
fn error_lines_stay_short() {
    let dir = tempdir();
    let huge = "x".repeat(1 << 20) + "!";
    let m = manifest(dir.path(), "");
    let text = fs::read_to_string(&m)
        .unwrap()
        .replace("a.cluster.test", &huge);
    fs::write(&m, text).unwrap();
    let r = run(&mut apply(&m, &dir.path().join("out")));
    assert_eq!(r.status, 1, "{r:?}");
    assert!(
        r.stderr.contains("invalid DNS name"),
        "{}",
        &r.stderr[..200.min(r.stderr.len())]
    );
    assert!(r.stderr.len() < 1200, "{} bytes", r.stderr.len());
}

/// The process cannot dump core and is not dumpable: run as an unprivileged user so the
/// kernel's view shows (the files under /proc/PID of a non-dumpable process belong to
/// root), while it waits for a passphrase on stdin.
#[test]
fn the_process_is_not_dumpable_and_writes_no_core() {
    let dir = tempdir();
    let uid = support::other_user();
    let mut child = Command::new("prlimit")
        .arg("--core=unlimited")
        .arg("--")
        .arg("setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg("--clear-groups")
        .arg(env!("CARGO_BIN_EXE_certmesh"))
        .arg("--home")
        .arg(dir.path().join("pki"))
        .args(["ca", "init", "--name", "D", "--key-pass", "stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let limits = format!("/proc/{pid}/limits");
    // Wait until certmesh has run its first lines (prlimit and setpriv exec into it, so
    // the pid stays): its core limit drops to 0 right after it made itself non-dumpable.
    let deadline = Instant::now() + HANG;
    let mut seen = String::new();
    while Instant::now() < deadline {
        seen = fs::read_to_string(&limits).unwrap_or_default();
        let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        if exe.ends_with("certmesh")
            && seen.lines().any(|l| {
                l.starts_with("Max core file size") && l.split_whitespace().nth(4) == Some("0")
            })
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let owner = fs::metadata(format!("/proc/{pid}/status")).map(|m| m.uid());
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen.lines().any(|l| l.starts_with("Max core file size")
            && l.split_whitespace().nth(4) == Some("0")
            && l.split_whitespace().nth(5) == Some("0")),
        "{seen}"
    );
    assert_eq!(
        owner.unwrap(),
        0,
        "/proc/{pid} of a non-dumpable process belongs to root"
    );
}

/// rcgen's `KeyPair` keeps a plain (never wiped) copy of the key's PKCS#8 DER; certmesh
/// generates, loads and signs through `key::KeySigner` instead. This holds the line: no
/// source file names rcgen's key pair type.
#[test]
fn no_plain_copy_of_keys_through_rcgen() {
    fn walk(dir: &Path, hits: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, hits);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = fs::read_to_string(&p).unwrap();
                for (i, line) in text.lines().enumerate() {
                    let imports =
                        line.trim_start().starts_with("use rcgen") && line.contains("KeyPair");
                    let names = line.contains("rcgen::KeyPair")
                        || [
                            "generate_for(",
                            "generate_rsa_for(",
                            "from_pkcs8_der_and_sign_algo(",
                        ]
                        .iter()
                        .any(|f| line.contains(&format!("KeyPair::{f}")));
                    if imports || names {
                        hits.push(format!("{}:{}: {line}", p.display(), i + 1));
                    }
                }
            }
        }
    }
    let mut hits = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut hits,
    );
    assert!(hits.is_empty(), "{hits:#?}");
}
