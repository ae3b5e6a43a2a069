//! `cluster apply --deploy`: files pushed over SSH to an OpenSSH server the test runs on
//! a loopback port, with its own host key and authorized_keys.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

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
