//! Shared helpers for the integration tests. Each test file says `mod support;`
//! and uses what it needs; the rest must not warn, hence the `allow` below.
//!
//! External tools (nginx, apache2, the Python venv with pkilint/cryptography/
//! pyjks) are installed by `scripts/test`; run that once before a bare
//! `cargo test`.
#![allow(dead_code, unused_imports)]

pub mod ansible;
pub mod java;
pub mod nginx;
pub mod openssl;
pub mod pkilint;
pub mod pkix;
pub mod readme;
pub mod sshd;

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub use tempfile::TempDir;

/// The `certmesh` binary under test, with `CERTMESH_HOME` removed from the
/// environment and stdin closed (so a password prompt fails instead of hanging).
pub fn certmesh() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_certmesh"));
    cmd.env_remove("CERTMESH_HOME").stdin(Stdio::null());
    cmd
}

/// `certmesh cluster apply MANIFEST --out OUT`, run to completion.
pub fn cluster_apply(
    manifest: impl AsRef<std::ffi::OsStr>,
    out: impl AsRef<std::ffi::OsStr>,
) -> Run {
    run(certmesh()
        .args(["cluster", "apply"])
        .arg(manifest)
        .arg("--out")
        .arg(out))
}

/// `certmesh --home HOME ARGS...`, run to completion.
pub fn cm(home: &Path, args: &[&str]) -> Run {
    run(certmesh().arg("--home").arg(home).args(args))
}

/// What [`cluster_with_a_revoked_member`] made.
pub struct RevokedCluster {
    /// The cluster's output directory.
    pub out: PathBuf,
    /// The revoked member's files as they were before the revocation replaced them.
    pub old: PathBuf,
    /// The `cluster apply` run after the revocation.
    pub reapplied: Run,
}

/// A cluster `name` under `dir` whose CA has an intermediate, one `profile` member per
/// name of `members`, applied; then the member `revoked` has its `files` copied aside, is
/// revoked (keyCompromise), and the cluster is applied again.
pub fn cluster_with_a_revoked_member(
    dir: &Path,
    name: &str,
    profile: &str,
    members: &[&str],
    revoked: &str,
    files: &[&str],
) -> RevokedCluster {
    let manifest = dir.join("cluster.toml");
    let mut text = format!(
        "name = \"{name}\"\n[ca]\nname = \"{name} CA\"\nintermediate = true\n[defaults]\nprofile = \"{profile}\"\n"
    );
    for m in members {
        text.push_str(&format!(
            "[[member]]\nname = \"{m}\"\ndns = [\"{m}.cluster.test\"]\n"
        ));
    }
    std::fs::write(&manifest, text).unwrap();
    let out = dir.join("out");
    let apply = || {
        run(certmesh()
            .args(["cluster", "apply"])
            .arg(&manifest)
            .arg("--out")
            .arg(&out))
    };
    apply().assert_success();
    let old = dir.join(format!("old-{revoked}"));
    std::fs::create_dir(&old).unwrap();
    for f in files {
        std::fs::copy(out.join(revoked).join(f), old.join(f)).unwrap();
    }
    cm(
        &out.join("pki/ca"),
        &["revoke", revoked, "--reason", "keyCompromise"],
    )
    .assert_success();
    let reapplied = apply();
    RevokedCluster {
        out,
        old,
        reapplied,
    }
}

/// A store at `home` with a `key` root (`ca init` with `init_extra` added), an
/// intermediate, and one leaf per profile (server, client, peer) for
/// `PROFILE.example.com` and 10.0.0.1. Returns every certificate: root,
/// intermediate, then the leaves.
pub fn ca_with_every_profile(home: &Path, key: &str, init_extra: &[&str]) -> Vec<PathBuf> {
    let name = format!("Every-profile {key} CA");
    let mut init = vec!["ca", "init", "--name", &name, "--key", key];
    init.extend_from_slice(init_extra);
    cm(home, &init).assert_success();
    cm(home, &["ca", "intermediate", "--key", key]).assert_success();
    let mut files = vec![
        home.join("ca/root/cert.pem"),
        home.join("ca/intermediate/cert.pem"),
    ];
    for profile in ["server", "client", "peer"] {
        let dns = format!("{profile}.example.com");
        cm(
            home,
            &[
                "issue",
                profile,
                "--dns",
                &dns,
                "--ip",
                "10.0.0.1",
                "--profile",
                profile,
                "--key",
                key,
            ],
        )
        .assert_success();
        files.push(home.join("issued").join(profile).join("cert.pem"));
    }
    files
}

/// The outcome of a finished process. `status` is the exit code, or -1 when
/// the process was killed by a signal (or by a timeout, see [`run_with_timeout`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// Panics (showing stdout and stderr) unless the exit status was 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.success(), "expected success, got {self:?}");
        self
    }

    /// Panics (showing stdout and stderr) if the exit status was 0.
    #[track_caller]
    pub fn assert_failure(&self) -> &Self {
        assert!(!self.success(), "expected failure, got {self:?}");
        self
    }
}

impl fmt::Debug for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit status {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--------------",
            self.status, self.stdout, self.stderr
        )
    }
}

fn exit_code(status: ExitStatus) -> i32 {
    status.code().unwrap_or(-1)
}

/// Runs `cmd` to completion, collecting stdout and stderr (lossy UTF-8).
/// Stdin is closed unless the command set it. Panics if it cannot be spawned.
pub fn run(cmd: &mut Command) -> Run {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    Run {
        status: exit_code(out.status),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Like [`run`], but feeds `stdin` (then closes it; `None` = closed at once)
/// and kills the process after `timeout`. A killed process has status -1 and
/// a line "[support: killed after ...]" appended to its stderr.
pub fn run_with_timeout(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Run {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));

    let writer = match (stdin, child.stdin.take()) {
        (Some(data), Some(mut pipe)) => {
            let data = data.to_vec();
            // Errors (e.g. EPIPE because the child exited early) don't matter.
            Some(thread::spawn(move || {
                let _ = pipe.write_all(&data);
            }))
        }
        _ => None,
    };
    let mut out_pipe = child.stdout.take().expect("stdout piped");
    let mut err_pipe = child.stderr.take().expect("stderr piped");
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });

    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait().expect("wait for child") {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().expect("wait for killed child");
            }
            None => thread::sleep(Duration::from_millis(20)),
        }
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    // A grandchild holding the pipes open could block these joins; the tools
    // run here (openssl, python) don't fork.
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    let mut stderr = String::from_utf8_lossy(&stderr).into_owned();
    if timed_out {
        stderr.push_str(&format!("\n[support: killed after {timeout:?}]\n"));
    }
    Run {
        status: if timed_out { -1 } else { exit_code(status) },
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr,
    }
}

/// A fresh temporary directory, removed when the returned value is dropped.
pub fn tempdir() -> TempDir {
    tempfile::Builder::new()
        .prefix("certmesh-test-")
        .tempdir()
        .expect("create temporary directory")
}

/// The permission bits (`0o7777` part of st_mode) of `path`; follows symlinks.
#[track_caller]
pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Every regular file under `dir` (recursively) with its contents, keyed by
/// its path relative to `dir`. Symlinks are not followed: a symlink is recorded
/// with `b"symlink -> "` followed by its target. Compare two snapshots to prove
/// that a command changed nothing.
#[track_caller]
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()));
            let path = entry.path();
            let rel = path.strip_prefix(root).expect("under root").to_path_buf();
            let ft = entry
                .file_type()
                .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
            if ft.is_dir() {
                walk(root, &path, out);
            } else if ft.is_symlink() {
                let target = std::fs::read_link(&path)
                    .unwrap_or_else(|e| panic!("readlink {}: {e}", path.display()));
                let mut v = b"symlink -> ".to_vec();
                v.extend_from_slice(target.as_os_str().as_encoded_bytes());
                out.insert(rel, v);
            } else {
                let bytes =
                    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                out.insert(rel, bytes);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A second local user, `certmesh-other`, for tests of files and directories owned by
/// someone else (the tests run as root); created on first use. Returns its uid.
pub fn other_user() -> u32 {
    const NAME: &str = "certmesh-other";
    let uid = || {
        Command::new("id")
            .args(["-u", NAME])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
    };
    if let Some(u) = uid() {
        return u;
    }
    // Two tests may race to create it: whichever loses finds it made.
    let _ = Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            NAME,
        ])
        .output();
    uid().expect("create the second test user with useradd (tests run as root)")
}
