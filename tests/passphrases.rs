//! Passphrase sources: fd:N, a terminal prompt, and the errors when none can be had.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use support::openssl::openssl;
use support::{certmesh, run, tempdir, Run};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_certmesh")
}

fn sh(script: &str) -> Run {
    run(Command::new("bash")
        .arg("-c")
        .arg(script)
        .env_remove("CERTMESH_HOME"))
}

fn key_opens_with(key: &Path, pass: &str) -> bool {
    openssl(&[
        "pkey",
        "-in",
        key.to_str().unwrap(),
        "-passin",
        &format!("pass:{pass}"),
        "-noout",
    ])
    .success()
}

#[test]
fn fd_source_reads_an_inherited_descriptor() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    let pw = dir.path().join("pw");
    fs::write(&pw, "from fd three\n").unwrap();
    let r = sh(&format!(
        "'{}' --home '{}' ca init --name FD --key-pass fd:3 3<'{}'",
        bin(),
        home.display(),
        pw.display()
    ));
    r.assert_success();
    assert!(key_opens_with(
        &home.join("ca/root/key.pem"),
        "from fd three"
    ));
    let r = sh(&format!(
        "'{}' --home '{}' issue a --dns a.example.com --ca-pass fd:3 3<'{}'",
        bin(),
        home.display(),
        pw.display()
    ));
    r.assert_success();
    let r = run(certmesh().arg("--home").arg(&home).args([
        "issue",
        "b",
        "--dns",
        "b.example.com",
        "--ca-pass",
        "fd:9",
    ]));
    assert_eq!(r.status, 1, "{r:?}");
    assert!(r.stderr.contains("fd:9"), "{r:?}");
}

#[test]
fn a_terminal_is_asked_without_echo_and_its_absence_is_explained() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    // `script` gives the command a pseudo-terminal; the passphrase is typed twice.
    let r = sh(&format!(
        "printf 'typed secret\\ntyped secret\\n' | script -qec \"'{}' --home '{}' ca init --name TTY --key-pass\" /dev/null",
        bin(),
        home.display()
    ));
    r.assert_success();
    assert!(r.stdout.contains("new CA key passphrase (again):"), "{r:?}");
    assert!(key_opens_with(
        &home.join("ca/root/key.pem"),
        "typed secret"
    ));
    // Two different entries are refused and leave no store behind.
    let other = dir.path().join("other");
    let r = sh(&format!(
        "printf 'one\\ntwo\\n' | script -qec \"'{}' --home '{}' ca init --name TTY --key-pass\" /dev/null",
        bin(),
        other.display()
    ));
    assert!(r.stdout.contains("differ"), "{r:?}");
    assert!(!other.join("store.toml").exists());
    // Without a terminal, signing with an encrypted CA key says which option to give.
    let r = run(certmesh()
        .arg("--home")
        .arg(&home)
        .args(["issue", "a", "--dns", "a.example.com"]));
    assert_eq!(r.status, 1);
    assert!(r.stderr.contains("--ca-pass SPEC"), "{r:?}");
    assert_eq!(r.stderr.lines().count(), 1);
}

#[test]
fn bad_sources_are_clear_errors() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    let r = run(certmesh().arg("--home").arg(&home).args([
        "ca",
        "init",
        "--name",
        "X",
        "--key-pass",
        "env:CERTMESH_TEST_UNSET_VAR",
    ]));
    assert_eq!(r.status, 1);
    assert!(
        r.stderr.contains("CERTMESH_TEST_UNSET_VAR is not set"),
        "{r:?}"
    );
    let r = run(certmesh()
        .arg("--home")
        .arg(&home)
        .args(["ca", "init", "--name", "X", "--key-pass", "env:E"])
        .env("E", ""));
    assert_eq!(r.status, 1);
    assert!(r.stderr.contains("empty"), "{r:?}");
    let r = run(certmesh().arg("--home").arg(&home).args([
        "ca",
        "init",
        "--name",
        "X",
        "--key-pass",
        "hunter2",
    ]));
    assert_eq!(r.status, 2, "{r:?}");
    assert!(
        !r.stderr.contains("hunter2"),
        "the secret is not echoed: {r:?}"
    );
    let r = run(certmesh().arg("--home").arg(&home).args([
        "ca",
        "init",
        "--name",
        "X",
        "--key-pass",
        "file:/nonexistent/pw",
    ]));
    assert_eq!(r.status, 1);
    assert!(r.stderr.contains("/nonexistent/pw"), "{r:?}");
    assert!(!home.join("store.toml").exists());
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    let cmd = format!(
        "'{}' --home '{}' issue x --dns x.example.com",
        bin(),
        home.display()
    );
    // A terminal: the error is red.
    let r = sh(&format!("script -qec \"{cmd}\" /dev/null"));
    assert!(r.stdout.contains("\u{1b}[31m"), "{r:?}");
    // NO_COLOR on a terminal, and a pipe: plain text.
    let r = sh(&format!("NO_COLOR=1 script -qec \"{cmd}\" /dev/null"));
    assert!(!r.stdout.contains('\u{1b}'), "{r:?}");
    let r = sh(&cmd);
    assert!(
        r.stderr.contains("no CA store") && !r.stderr.contains('\u{1b}'),
        "{r:?}"
    );
}
