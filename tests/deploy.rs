//! `cluster apply --deploy`: files pushed over SSH to an OpenSSH server the test runs on
//! a loopback port, with its own host key and authorized_keys.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::nginx::free_port;
use support::{certmesh, run, tempdir, Run};

struct Sshd {
    child: Child,
    dir: PathBuf,
}

impl Sshd {
    /// Starts sshd on 127.0.0.1 and writes `ssh_config` with a host alias per name in
    /// `hosts`, all pointing at it.
    fn start(dir: &Path, hosts: &[&str]) -> Sshd {
        let keygen = |path: &Path| {
            let o = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(path)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        };
        keygen(&dir.join("host_key"));
        keygen(&dir.join("client_key"));
        fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
        fs::create_dir_all("/run/sshd").unwrap();
        let port = free_port();
        let d = dir.display();
        fs::write(
            dir.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\nAuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nPermitRootLogin prohibit-password\n"
            ),
        )
        .unwrap();
        let host_pub = fs::read_to_string(dir.join("host_key.pub")).unwrap();
        fs::write(
            dir.join("known_hosts"),
            format!("[127.0.0.1]:{port} {host_pub}"),
        )
        .unwrap();
        let mut cfg = String::new();
        for h in hosts {
            cfg.push_str(&format!(
                "Host {h}\n  HostName 127.0.0.1\n  Port {port}\n  User root\n  IdentityFile {d}/client_key\n  IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n  HostKeyAlias [127.0.0.1]:{port}\n  StrictHostKeyChecking yes\n"
            ));
        }
        fs::write(dir.join("ssh_config"), cfg).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("sshd.log")).unwrap())
            .spawn()
            .expect("start sshd (scripts/test installs openssh-server)");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "sshd did not start: {}",
                fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Sshd {
            child,
            dir: dir.to_path_buf(),
        }
    }

    fn ssh_command(&self) -> String {
        format!("ssh -F {}", self.dir.join("ssh_config").display())
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn apply(manifest: &Path, out: &Path, sshd: &Sshd) -> Run {
    run(certmesh()
        .args(["cluster", "apply", "--deploy", "--parallel", "2"])
        .arg(manifest)
        .arg("--out")
        .arg(out)
        .env("CERTMESH_SSH", sshd.ssh_command()))
}

#[test]
fn deploy_pushes_changed_files_atomically_and_reports_failures() {
    let dir = tempdir();
    let sshdir = dir.path().join("ssh");
    fs::create_dir(&sshdir).unwrap();
    let sshd = Sshd::start(&sshdir, &["node-a", "node-b"]);
    let remote = dir.path().join("remote");
    let manifest = dir.path().join("cluster.toml");
    let r = |m: &str| remote.join(m).display().to_string();
    let text = format!(
        r#"name = "deployed"
[defaults]
profile = "nginx"
[[member]]
name = "a"
dns = ["a.cluster.test"]
[member.deploy]
host = "node-a"
dir = "{a}"
reload = "date +%s%N >> {a}/reloads"
[[member]]
name = "b"
dns = ["b.cluster.test"]
[member.deploy]
host = "node-b"
dir = "{b}"
reload = "echo nginx: configuration test failed >&2; exit 3"
"#,
        a = r("a"),
        b = r("b")
    );
    fs::write(&manifest, &text).unwrap();
    let out = dir.path().join("out");

    let first = apply(&manifest, &out, &sshd);
    assert_eq!(
        first.status, 1,
        "b's failing reload makes the run fail: {first:?}"
    );
    assert!(first.stderr.contains("b: deploy to node-b failed: reload: remote command exited with 3: nginx: configuration test failed"), "{first:?}");
    assert!(
        first
            .stdout
            .contains("node-a: pushed fullchain.pem, privkey.pem, trust.pem; reloaded"),
        "{first:?}"
    );
    // The remote files are the local ones, with the profile's modes, and no temporaries.
    for f in ["fullchain.pem", "privkey.pem", "trust.pem"] {
        let local = fs::read(out.join("a").join(f)).unwrap();
        assert_eq!(fs::read(remote.join("a").join(f)).unwrap(), local, "{f}");
        let m = fs::metadata(remote.join("a").join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(m, if f == "privkey.pem" { 0o600 } else { 0o644 }, "{f}");
    }
    let names: Vec<String> = fs::read_dir(remote.join("a"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("certmesh-tmp")),
        "{names:?}"
    );
    assert_eq!(
        fs::read_to_string(remote.join("a/reloads"))
            .unwrap()
            .lines()
            .count(),
        1
    );

    // Second run: a is current (nothing pushed, no reload); b is retried because its
    // reload failed.
    let second = apply(&manifest, &out, &sshd);
    assert_eq!(second.status, 1, "{second:?}");
    assert!(
        second.stdout.contains("node-a: deployed files are current"),
        "{second:?}"
    );
    assert!(second.stderr.contains("node-b failed"), "{second:?}");
    assert_eq!(
        fs::read_to_string(remote.join("a/reloads"))
            .unwrap()
            .lines()
            .count(),
        1
    );

    // Fix b's reload: it deploys, and the run succeeds.
    fs::write(
        &manifest,
        text.replace("echo nginx: configuration test failed >&2; exit 3", "true"),
    )
    .unwrap();
    let third = apply(&manifest, &out, &sshd);
    third.assert_success();
    assert!(third.stdout.contains("node-b: pushed"), "{third:?}");
    assert_eq!(
        fs::read(remote.join("b/privkey.pem")).unwrap(),
        fs::read(out.join("b/privkey.pem")).unwrap()
    );

    // A rollback with --deploy puts the previous generation back on the host: reissue a's
    // certificate by hand (its old files go to the store's backup), then roll back.
    let old_key = fs::read(out.join("a/privkey.pem")).unwrap();
    run(certmesh().arg("--home").arg(out.join("pki/ca")).args([
        "issue",
        "a",
        "--dns",
        "a.cluster.test",
        "--profile",
        "peer",
        "--force",
    ]))
    .assert_success();
    apply(&manifest, &out, &sshd).assert_success();
    assert_ne!(fs::read(remote.join("a/privkey.pem")).unwrap(), old_key);
    let r = run(certmesh()
        .args(["rollback", "--deploy", "--cluster"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .env("CERTMESH_SSH", sshd.ssh_command()));
    r.assert_success();
    assert!(r.stdout.contains("node-a: pushed"), "{r:?}");
    assert_eq!(
        fs::read(remote.join("a/privkey.pem")).unwrap(),
        old_key,
        "the host has the old key again"
    );

    // status: the record says current; over SSH the hosts agree; a file changed on the
    // host shows up as a mismatch.
    let status = |extra: &[&str]| {
        let r = run(certmesh()
            .args(["cluster", "status", "--json"])
            .args(extra)
            .arg(&manifest)
            .arg("--out")
            .arg(&out)
            .env("CERTMESH_SSH", sshd.ssh_command()));
        r.assert_success();
        serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap()
    };
    let v = status(&[]);
    assert_eq!(v[0]["deploy"]["state"], "current", "{v}");
    let v = status(&["--remote"]);
    assert_eq!(v[0]["deploy"]["state"], "current", "{v}");
    assert_eq!(v[1]["deploy"]["state"], "current", "{v}");
    fs::write(remote.join("a/trust.pem"), "tampered\n").unwrap();
    let v = status(&["--remote"]);
    assert_eq!(v[0]["deploy"]["state"], "mismatch", "{v}");
    assert_eq!(
        v[0]["deploy"]["files"],
        serde_json::json!(["trust.pem"]),
        "{v}"
    );

    // An unreachable host is reported per member and does not stop the others.
    fs::write(
        &manifest,
        text.replace("host = \"node-b\"", "host = \"node-b\"\nport = 1")
            .replace("echo nginx: configuration test failed >&2; exit 3", "true"),
    )
    .unwrap();
    fs::remove_file(out.join("a/.certmesh-deployed.json")).unwrap();
    let fourth = apply(&manifest, &out, &sshd);
    assert_eq!(fourth.status, 1, "{fourth:?}");
    assert!(fourth.stdout.contains("node-a: pushed"), "{fourth:?}");
    assert!(fourth.stderr.contains("ssh to node-b failed"), "{fourth:?}");
}

/// A second local user for the foreign-owner cases (the tests run as root); made once and
/// reused. Returns its uid.
fn other_user() -> u32 {
    support::other_user()
}

/// Remote directories another user can change are refused; where the manifest accepts
/// one, names another user planted there (the old fixed temporary name as a symbolic link
/// to a victim file, or as a file of their own) are never written through, and the
/// deployed files end up owned by the deploy user with the profile's modes. An `owner`
/// that looks like an option is refused before anything runs.
#[test]
fn deploy_refuses_shared_remote_dirs_and_never_writes_through_planted_names() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempdir();
    let sshdir = dir.path().join("ssh");
    fs::create_dir(&sshdir).unwrap();
    let sshd = Sshd::start(&sshdir, &["node"]);
    let uid = other_user();
    let remote = dir.path().join("remote");
    fs::create_dir(&remote).unwrap();
    let (open, foreign, shared) = (
        remote.join("open"),
        remote.join("foreign"),
        remote.join("shared"),
    );
    for d in [&open, &foreign, &shared] {
        fs::create_dir(d).unwrap();
    }
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::chown(&foreign, Some(uid), Some(uid)).unwrap();
    // What another user plants in the shared directory before the deploy.
    let victim = dir.path().join("victim");
    fs::write(&victim, "keep me\n").unwrap();
    std::os::unix::fs::symlink(&victim, shared.join(".privkey.pem.certmesh-tmp")).unwrap();
    let planted = shared.join(".fullchain.pem.certmesh-tmp");
    fs::write(&planted, "").unwrap();
    fs::set_permissions(&planted, fs::Permissions::from_mode(0o666)).unwrap();
    std::os::unix::fs::chown(&planted, Some(uid), Some(uid)).unwrap();

    let member = |name: &str, d: &Path, extra: &str| {
        format!(
            "[[member]]\nname = \"{name}\"\ndns = [\"{name}.cluster.test\"]\n[member.deploy]\nhost = \"node\"\ndir = \"{}\"\nreload = \"true\"\n{extra}",
            d.display()
        )
    };
    let manifest = dir.path().join("cluster.toml");
    let out = dir.path().join("out");
    let text = format!(
        "name = \"shared\"\n[defaults]\nprofile = \"nginx\"\n{}{}{}",
        member("open", &open, ""),
        member("foreign", &foreign, ""),
        member("shared", &shared, "allow_shared_dir = true\n"),
    );
    fs::write(&manifest, &text).unwrap();
    let r = apply(&manifest, &out, &sshd);
    assert_eq!(r.status, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "open: deploy to node failed: fullchain.pem: remote command exited with 1: certmesh: {} is writable by other users",
            open.display()
        )),
        "{r:?}"
    );
    assert!(
        r.stderr.contains(&format!(
            "certmesh: {} is owned by another user",
            foreign.display()
        )),
        "{r:?}"
    );
    assert_eq!(fs::read_dir(&open).unwrap().count(), 0, "nothing written");
    assert_eq!(
        fs::read_dir(&foreign).unwrap().count(),
        0,
        "nothing written"
    );

    // The accepted shared directory: the planted names are left alone, the victim is
    // untouched, and the files are root's with the profile's modes.
    assert!(
        r.stdout
            .contains("node: pushed fullchain.pem, privkey.pem, trust.pem"),
        "{r:?}"
    );
    assert_eq!(fs::read_to_string(&victim).unwrap(), "keep me\n");
    for (f, want) in [
        ("fullchain.pem", 0o644),
        ("privkey.pem", 0o600),
        ("trust.pem", 0o644),
    ] {
        let p = shared.join(f);
        let meta = fs::symlink_metadata(&p).unwrap();
        assert!(meta.is_file(), "{f}");
        assert_eq!((meta.uid(), meta.mode() & 0o777), (0, want), "{f}");
        assert_eq!(
            fs::read(&p).unwrap(),
            fs::read(out.join("shared").join(f)).unwrap()
        );
    }
    assert_eq!(
        fs::metadata(&planted).unwrap().len(),
        0,
        "the planted file is not used"
    );
    let left: Vec<String> = fs::read_dir(&shared)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".certmesh-tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");

    // An owner that chown would take for an option never reaches the remote side.
    let reference = dir.path().join("theirs");
    fs::write(&reference, "").unwrap();
    std::os::unix::fs::chown(&reference, Some(uid), Some(uid)).unwrap();
    fs::write(
        &manifest,
        format!(
            "name = \"shared\"\n[defaults]\nprofile = \"nginx\"\n{}",
            member(
                "shared",
                &shared,
                &format!(
                    "allow_shared_dir = true\nowner = \"--reference={}\"\n",
                    reference.display()
                )
            )
        ),
    )
    .unwrap();
    fs::remove_file(out.join("shared/.certmesh-deployed.json")).unwrap();
    let r = apply(&manifest, &out, &sshd);
    assert_eq!(r.status, 1, "{r:?}");
    assert!(r.stderr.contains("invalid deploy owner"), "{r:?}");
    assert_eq!(fs::metadata(shared.join("privkey.pem")).unwrap().uid(), 0);
}
