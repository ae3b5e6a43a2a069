//! Pushing a member's files to its host with the system OpenSSH client.
//!
//! certmesh runs `ssh` (BatchMode, so it never prompts; the user's ssh config and agent
//! apply) rather than embedding an SSH library: operators already have host keys, jump
//! hosts and agents set up for it. `CERTMESH_SSH` replaces the command (like
//! `GIT_SSH_COMMAND`), e.g. `ssh -F /etc/certmesh/ssh_config`.
//!
//! On the remote side every file is written to a private temporary name in its directory,
//! given its mode (and owner), then renamed into place, so a service never reads half a
//! file (see [`write_script`]).

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
    // Neither ssh nor the remote side (through SendEnv) sees a passphrase variable.
    crate::process::clean_env(&mut cmd);
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

/// The shell script that writes one file on the remote side, reading its bytes from
/// standard input.
///
/// The script works inside the file's physical directory (`cd -P`), after refusing one
/// that another user could change (see [`shared_dir_check`]); the content goes to a
/// private name made by `mktemp` (exclusive create under `umask 077`, so a name another
/// user planted or a symbolic link is never written through), is given its owner and mode,
/// and is then renamed over the file, so a service never reads half a file nor a file
/// someone else owns. Every operand that comes from the manifest follows `--`.
pub fn write_script(d: &Deploy, path: &str, mode: u32) -> String {
    let target = format!("{}/{path}", d.dir.trim_end_matches('/'));
    let (dir, name) = target.rsplit_once('/').unwrap_or((".", target.as_str()));
    let dir = if dir.is_empty() { "/" } else { dir };
    let chown = match &d.owner {
        Some(o) => format!("chown -- {} \"$t\"\n", shell_quote(o)),
        None => String::new(),
    };
    let check = if d.allow_shared_dir {
        String::new()
    } else {
        shared_dir_check()
    };
    format!(
        "umask 077\nset -e\nmkdir -p -- {dir}\ncd -P -- {dir}\n{check}\
t=$(mktemp -- ./.certmesh-tmp.XXXXXXXXXX)\ntrap 'rm -f -- \"$t\"' EXIT\n\
cat > \"$t\"\n{chown}chmod -- {mode:o} \"$t\"\n\
if [ -d {name} ]; then printf 'certmesh: %s is a directory\\n' {name} >&2; exit 1; fi\n\
mv -f -- \"$t\" {name}\ntrap - EXIT\n",
        dir = shell_quote(dir),
        name = shell_quote(name),
    )
}

/// Shell lines refusing the current directory when it, or any directory above it, is
/// writable by group or others without the sticky bit, or owned by someone other than
/// root and the remote user: like OpenSSH's StrictModes, and the same rule certmesh applies
/// to its local directories. In such a directory another user can swap or plant the files
/// a service reads. A sticky directory (`/tmp`) is accepted: others cannot rename or
/// remove what is not theirs there, and the temporary name is made exclusively.
fn shared_dir_check() -> String {
    const FIX: &str = "set allow_shared_dir = true in [member.deploy] to accept it";
    format!(
        "p=$(pwd -P)\nwhile :; do\n\
if [ -n \"$(find \"$p\" -prune \\( -perm -0002 -o -perm -0020 \\) ! -perm -1000 -print)\" ]; then \
printf 'certmesh: %s is writable by other users: run chmod go-w on it, or {FIX}\\n' \"$p\" >&2; exit 1; fi\n\
if [ -n \"$(find \"$p\" -prune ! -user 0 ! -user \"$(id -u)\" -print)\" ]; then \
printf 'certmesh: %s is owned by another user: make root or the deploy user its owner, or {FIX}\\n' \"$p\" >&2; exit 1; fi\n\
[ \"$p\" = / ] && break\np=$(dirname -- \"$p\")\ndone\n"
    )
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
        let script = write_script(d, f.path, f.mode);
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
