//! `cluster apply --deploy`: files pushed over SSH to an OpenSSH server the test runs on
//! a loopback port, with its own host key and authorized_keys.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::java::server_command;
use support::nginx::{free_port, Nginx};
use support::sshd::Sshd;
use support::{certmesh, run, tempdir, Run};

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

fn apply_json(
    manifest: &Path,
    out: &Path,
    sshd: &Sshd,
    extra: &[&str],
) -> (Run, serde_json::Value) {
    let r = run(certmesh()
        .args(["cluster", "apply", "--deploy", "--json"])
        .args(extra)
        .arg(manifest)
        .arg("--out")
        .arg(out)
        .env("CERTMESH_SSH", sshd.ssh_command()));
    let v = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    (r, v)
}

#[test]
fn deploy_reports_a_member_whose_reload_did_not_take() {
    let dir = tempdir();
    let sshdir = dir.path().join("ssh");
    fs::create_dir(&sshdir).unwrap();
    let sshd = Sshd::start(&sshdir, &["node-a"]);
    let remote = dir.path().join("remote");
    let manifest = dir.path().join("cluster.toml");
    let out = dir.path().join("out");
    // days = 1 is inside the renew window, so every apply renews and pushes.
    let text = |extra: &str, reload: &str| {
        format!(
            "name = \"probed\"\n[defaults]\nprofile = \"nginx\"\n[[member]]\nname = \"a\"\ndns = [\"a.cluster.test\"]\nip = [\"127.0.0.1\"]\ndays = 1\n{extra}[member.deploy]\nhost = \"node-a\"\ndir = \"{}\"\nreload = \"{reload}\"\n",
            remote.join("a").display()
        )
    };
    // The default endpoint (a.cluster.test:443) does not resolve here: after a graceful
    // reload an endpoint that cannot be reached is reported, not a failure.
    fs::write(&manifest, text("", "true")).unwrap();
    let (r, v) = apply_json(&manifest, &out, &sshd, &[]);
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(v["roll"][0]["outcome"], "unverified", "{v}");
    assert_eq!(
        v["roll"][0]["served"][0]["endpoint"], "a.cluster.test:443",
        "{v}"
    );

    // nginx serves the pushed files; the reload command does nothing.
    let nginx = Nginx::serve_reloadable(
        &remote.join("a/fullchain.pem"),
        &remote.join("a/privkey.pem"),
    );
    let probe = format!("probe = [\"127.0.0.1:{}\"]\n", nginx.port());
    fs::write(&manifest, text(&probe, "true")).unwrap();
    let (r, v) = apply_json(&manifest, &out, &sshd, &[]);
    assert_eq!(r.status, 1, "the stale member fails the run: {r:?}");
    assert_eq!(v["failed"], true, "{v}");
    let step = &v["roll"][0];
    assert_eq!(step["member"], "a", "{v}");
    assert_eq!(step["reload"], "graceful", "{v}");
    assert_eq!(step["outcome"], "stale", "{v}");
    assert_eq!(step["served"][0]["serves"], "previous", "{v}");
    // Without --json the stale member is named on stderr.
    fs::write(&manifest, text(&probe, "true")).unwrap();
    let r = run(certmesh()
        .args(["cluster", "apply", "--deploy"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .env("CERTMESH_SSH", sshd.ssh_command()));
    assert_eq!(r.status, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "a: 127.0.0.1:{}: serves the previous certificate",
            nginx.port()
        )) && r.stderr.contains("reload missing"),
        "{r:?}"
    );
    // --no-probe: the push and the reload succeeded, nothing is checked.
    let (r, v) = apply_json(&manifest, &out, &sshd, &["--no-probe"]);
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(v["roll"][0]["outcome"], "pushed", "{v}");

    // A reload that works: the member serves its new certificate and the run succeeds.
    let reload = format!("kill -HUP $(cat {}/nginx.pid)", nginx.dir().display());
    fs::write(&manifest, text(&probe, &reload)).unwrap();
    let (r, v) = apply_json(&manifest, &out, &sshd, &[]);
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(v["roll"][0]["outcome"], "ready", "{v}");
    assert_eq!(v["roll"][0]["served"][0]["serves"], "current", "{v}");
}

/// Three Java TLS servers on loopback stand for three members whose reload restarts the
/// service: the reload kills the JVM, waits a second, and starts it again on the new
/// keystore.
struct Fleet {
    remote: PathBuf,
    names: Vec<&'static str>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for n in &self.names {
            if let Ok(pid) = fs::read_to_string(self.remote.join(n).join("server.pid")) {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
        }
    }
}

#[test]
fn restarting_members_roll_one_at_a_time_and_a_failed_one_stops_the_roll() {
    let dir = tempdir();
    let sshdir = dir.path().join("ssh");
    fs::create_dir(&sshdir).unwrap();
    let names = vec!["n1", "n2", "n3"];
    let sshd = Sshd::start(&sshdir, &names);
    let remote = dir.path().join("remote");
    let out = dir.path().join("out");
    let fleet = Fleet {
        remote: remote.clone(),
        names: names.clone(),
    };
    let ports: Vec<u16> = names.iter().map(|_| free_port()).collect();
    let restart = |n: &str, port: u16| {
        let d = remote.join(n);
        format!(
            "if [ -f {d}/server.pid ]; then kill $(cat {d}/server.pid); fi; sleep 1; STORE_PASS=$(cat {pass}) nohup setsid {cmd} > {d}/server.log 2>&1 < /dev/null & echo $! > {d}/server.pid",
            d = d.display(),
            pass = out.join(n).join("keystore.pass").display(),
            cmd = server_command("PKCS12", &d.join("keystore.p12"), port),
        )
    };
    let manifest = dir.path().join("cluster.toml");
    let text = |broken: Option<&str>| {
        let mut t = "name = \"rolling\"\n[defaults]\nprofile = \"java-generic\"\n".to_string();
        for (n, port) in names.iter().zip(&ports) {
            let reload = if broken == Some(*n) {
                // Stops the server and never starts it again.
                format!("kill $(cat {}/server.pid)", remote.join(n).display())
            } else {
                restart(n, *port)
            };
            t.push_str(&format!(
                "[[member]]\nname = \"{n}\"\ndns = [\"{n}.cluster.test\"]\nip = [\"127.0.0.1\"]\ndays = 1\nprobe = [\"127.0.0.1:{port}\"]\n[member.deploy]\nhost = \"{n}\"\ndir = \"{}\"\nreload = '{reload}'\n",
                remote.join(n).display()
            ));
        }
        t
    };
    fs::write(&manifest, text(None)).unwrap();
    // `javac` runs once, outside the roll.
    support::java::server_classes();

    // Bring-up: one member after the other, each serving before the next starts.
    let (r, v) = apply_json(&manifest, &out, &sshd, &["--ready-timeout", "60s"]);
    assert_eq!(r.status, 0, "{r:?}");
    let roll = v["roll"].as_array().unwrap();
    assert_eq!(roll.len(), 3, "{v}");
    for (i, step) in roll.iter().enumerate() {
        assert_eq!(step["member"], names[i], "{v}");
        assert_eq!(step["order"], i + 1, "{v}");
        assert_eq!(step["reload"], "restart", "{v}");
        assert_eq!(step["outcome"], "ready", "{v}");
    }

    // The renewal: clients keep connecting to all three meanwhile.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (stop, ports) = (stop.clone(), ports.clone());
        std::thread::spawn(move || {
            let (mut rounds, mut all_down, mut some_down) = (0u32, 0u32, 0u32);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let down = ports
                    .iter()
                    .filter(|p| {
                        std::net::TcpStream::connect_timeout(
                            &std::net::SocketAddr::from(([127, 0, 0, 1], **p)),
                            Duration::from_millis(500),
                        )
                        .is_err()
                    })
                    .count();
                rounds += 1;
                all_down += u32::from(down == ports.len());
                some_down += u32::from(down > 0);
                std::thread::sleep(Duration::from_millis(20));
            }
            (rounds, all_down, some_down)
        })
    };
    let (r, v) = apply_json(&manifest, &out, &sshd, &["--ready-timeout", "60s"]);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (rounds, all_down, some_down) = watcher.join().unwrap();
    assert_eq!(r.status, 0, "{r:?}");
    assert!(rounds > 0);
    assert_eq!(
        all_down, 0,
        "all three were down at once in {all_down} of {rounds} rounds"
    );
    assert!(
        some_down > 0,
        "the restarts were seen by the clients ({rounds} rounds)"
    );
    let roll = v["roll"].as_array().unwrap();
    for (i, step) in roll.iter().enumerate() {
        assert_eq!(step["member"], names[i], "{v}");
        assert_eq!(step["outcome"], "ready", "{v}");
        assert_eq!(step["served"][0]["serves"], "current", "{v}");
        if i > 0 {
            // Each started only after the previous one served its new certificate.
            let prev = &roll[i - 1];
            assert!(
                step["started_ms"].as_u64().unwrap()
                    >= prev["started_ms"].as_u64().unwrap() + prev["waited_ms"].as_u64().unwrap(),
                "{v}"
            );
        }
    }

    // n2 does not come back: the roll stops there, n3 keeps its previous files.
    fs::write(&manifest, text(Some("n2"))).unwrap();
    let n3_before = fs::read(remote.join("n3/keystore.p12")).unwrap();
    let (r, v) = apply_json(&manifest, &out, &sshd, &["--ready-timeout", "20s"]);
    assert_eq!(r.status, 1, "{r:?}");
    let roll = v["roll"].as_array().unwrap();
    assert_eq!(roll[0]["member"], "n1", "{v}");
    assert_eq!(roll[0]["outcome"], "ready", "{v}");
    assert_eq!(roll[1]["member"], "n2", "{v}");
    assert_eq!(roll[1]["outcome"], "stale", "{v}");
    assert_eq!(roll[1]["served"][0]["serves"], "nothing", "{v}");
    assert_eq!(roll[2]["member"], "n3", "{v}");
    assert_eq!(roll[2]["outcome"], "skipped", "{v}");
    assert_eq!(roll[2]["order"], serde_json::Value::Null, "{v}");
    assert_eq!(fs::read(remote.join("n3/keystore.p12")).unwrap(), n3_before);
    drop(fleet);
}
