//! Pushing a member's files to its host with the system OpenSSH client.
//!
//! certmesh runs `ssh` (BatchMode, so it never prompts; the user's ssh config and agent
//! apply) rather than embedding an SSH library: operators already have host keys, jump
//! hosts and agents set up for it. `CERTMESH_SSH` replaces the command (like
//! `GIT_SSH_COMMAND`), e.g. `ssh -F /etc/certmesh/ssh_config`.
//!
//! On the remote side every file is written to a temporary name in its directory, given
//! its mode (and owner), then renamed into place, so a service never reads half a file.

use std::io::Write;
use std::process::{Command, Stdio};

use serde::Serialize;

use super::manifest::Deploy;

/// A file to push.
pub struct PushFile<'a> {
    /// Path relative to the remote directory.
    pub path: &'a str,
    pub bytes: &'a [u8],
    pub mode: u32,
}

/// What happened on one host.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeployReport {
    pub host: String,
    /// Files written on the remote side.
    pub files: Vec<String>,
    pub reloaded: bool,
    /// Why the deploy failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Quotes a string for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn ssh_base(d: &Deploy) -> Command {
    let spec = std::env::var("CERTMESH_SSH").unwrap_or_else(|_| "ssh".into());
    let mut words = spec.split_whitespace();
    let mut cmd = Command::new(words.next().unwrap_or("ssh"));
    cmd.args(words);
    cmd.args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=15"]);
    if let Some(p) = d.port {
        cmd.args(["-p", &p.to_string()]);
    }
    if let Some(u) = &d.user {
        cmd.args(["-l", u]);
    }
    cmd.arg("--").arg(&d.host);
    cmd
}

/// Runs `script` on the host with `stdin` as its input; the error is ssh's or the
/// script's last line of stderr.
fn remote(d: &Deploy, script: &str, stdin: &[u8]) -> Result<(), String> {
    remote_output(d, script, stdin).map(drop)
}

/// As [`remote`], returning what the script printed.
pub fn remote_output(d: &Deploy, script: &str, stdin: &[u8]) -> Result<Vec<u8>, String> {
    let mut cmd = ssh_base(d);
    cmd.arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot run ssh: {e}"))?;
    if let Some(mut input) = child.stdin.take() {
        // A remote side that fails early closes its input; its exit status tells why.
        let _ = input.write_all(stdin);
    }
    let out = child.wait_with_output().map_err(|e| format!("ssh: {e}"))?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    Err(match out.status.code() {
        Some(255) => format!("ssh to {} failed: {last}", d.host),
        Some(c) => format!(
            "remote command exited with {c}{}",
            if last.is_empty() {
                String::new()
            } else {
                format!(": {last}")
            }
        ),
        None => "ssh was killed".into(),
    })
}

/// Writes `files` under the member's remote directory, then runs `reload`.
pub fn push(d: &Deploy, files: &[PushFile<'_>], reload: Option<&str>) -> DeployReport {
    let mut report = DeployReport {
        host: d.host.clone(),
        files: Vec::new(),
        reloaded: false,
        error: None,
    };
    for f in files {
        let target = format!("{}/{}", d.dir.trim_end_matches('/'), f.path);
        let (dir, name) = target.rsplit_once('/').unwrap_or((".", target.as_str()));
        let tmp = format!("{dir}/.{name}.certmesh-tmp");
        let chown = match &d.owner {
            Some(o) => format!(" && chown {} {}", shell_quote(o), shell_quote(&tmp)),
            None => String::new(),
        };
        let script = format!(
            "umask 077 && mkdir -p {d} && cat > {t} && chmod {mode:o} {t}{chown} && mv -f {t} {f}",
            d = shell_quote(dir),
            t = shell_quote(&tmp),
            mode = f.mode,
            f = shell_quote(&target),
        );
        if let Err(e) = remote(d, &script, f.bytes) {
            report.error = Some(format!("{}: {e}", f.path));
            return report;
        }
        report.files.push(f.path.to_string());
    }
    if let Some(cmd) = reload {
        match remote(d, cmd, b"") {
            Ok(()) => report.reloaded = true,
            Err(e) => report.error = Some(format!("reload: {e}")),
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
