//! `certmesh completions` and `certmesh man`: what shells and man(1) accept.

mod support;

use std::fs;
use std::process::Command;

use support::{certmesh, run, tempdir};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn bash_completion_parses_and_knows_the_commands() {
    let dir = tempdir();
    let r = run(certmesh().args(["completions", "bash"]));
    r.assert_success();
    for sub in ["verify", "lint", "issue", "inspect", "completions", "man"] {
        assert!(r.stdout.contains(sub), "{sub} missing from the completion");
    }
    let script = dir.path().join("certmesh.bash");
    fs::write(&script, &r.stdout).unwrap();
    let check = run(Command::new("bash").arg("-n").arg(&script));
    assert!(check.success(), "{check:?}");
    for shell in ["zsh", "fish"] {
        let r = run(certmesh().args(["completions", shell]));
        r.assert_success();
        assert!(r.stdout.contains("verify"), "{shell}: {r:?}");
    }
    let r = run(certmesh().args(["completions", "tcsh"]));
    assert_eq!(r.status, 2, "{r:?}");
}

#[test]
fn man_pages_render() {
    let r = run(certmesh().arg("man"));
    r.assert_success();
    assert!(
        r.stdout.starts_with(".ie") || r.stdout.contains(".TH certmesh"),
        "{r:?}"
    );

    let dir = tempdir();
    let out = dir.path().join("man1");
    run(certmesh().arg("man").arg("--out").arg(&out)).assert_success();
    for page in [
        "certmesh.1",
        "certmesh-verify.1",
        "certmesh-lint.1",
        "certmesh-ca.1",
        "certmesh-ca-init.1",
        "certmesh-issue.1",
    ] {
        let p = out.join(page);
        let text = fs::read_to_string(&p).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH "), "{page}");
        if have("groff") {
            let r = run(Command::new("groff")
                .args(["-man", "-Tutf8", "-P-cbou"])
                .arg(&p));
            assert!(
                r.success() && r.stdout.contains("SYNOPSIS") && r.stderr.trim().is_empty(),
                "{page}: {r:?}"
            );
        } else if have("man") {
            let r = run(Command::new("man").arg("-l").arg(&p).env("MANPAGER", "cat"));
            assert!(r.success(), "{page}: {r:?}");
        }
    }
}
