//! Records what `certmesh --version` names besides the version: the commit the binary
//! was built from, so an operator can tell which source a downloaded or packaged binary
//! is, and the crypto library's version. A build outside a git checkout (a source
//! tarball, a vendored copy) says "unknown" instead of failing.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    // Whatever is compiled in: a change here re-runs this script, so "-dirty" stays true.
    for p in ["build", "Cargo.toml", "Cargo.lock", "src", "profiles"] {
        println!("cargo:rerun-if-changed={}", dir.join(p).display());
    }
    let commit =
        commit(&dir).unwrap_or_else(|| "unknown (not built from a git checkout)".to_string());
    println!("cargo:rustc-env=CERTMESH_COMMIT={commit}");
    println!("cargo:rustc-env=CERTMESH_CRYPTO={}", crypto(&dir));
}

/// Runs git in `dir`; `None` when git is missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}

/// The full hash of HEAD, with `-dirty` when tracked files differ from it. Only this
/// crate's own checkout counts, not a repository that merely contains it.
fn commit(dir: &Path) -> Option<String> {
    let top = git(dir, &["rev-parse", "--show-toplevel"])?;
    if Path::new(&top).canonicalize().ok()? != dir.canonicalize().ok()? {
        return None;
    }
    let head = git(dir, &["rev-parse", "--verify", "HEAD"])?;
    // Re-run when HEAD moves: a checkout, a commit, or the branch it names moving.
    let mut watch = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watch.push(branch);
    }
    for w in watch {
        if let Some(p) = git(dir, &["rev-parse", "--git-path", &w]) {
            let p = if Path::new(&p).is_absolute() {
                PathBuf::from(p)
            } else {
                dir.join(p)
            };
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
    // --no-optional-locks: never take the index lock a concurrent `git commit` needs.
    let dirty = git(
        dir,
        &[
            "--no-optional-locks",
            "status",
            "--porcelain",
            "--untracked-files=no",
        ],
    )
    .is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{head}-dirty") } else { head })
}

/// `aws-lc-rs X.Y.Z` from Cargo.lock, or just the name when the lock file is absent.
fn crypto(dir: &Path) -> String {
    let name = "aws-lc-rs";
    let version = std::fs::read_to_string(dir.join("Cargo.lock"))
        .ok()
        .and_then(|lock| {
            let (_, rest) = lock.split_once(&format!("name = \"{name}\"\nversion = \""))?;
            rest.split_once('"').map(|(v, _)| v.to_string())
        });
    match version {
        Some(v) => format!("{name} {v}"),
        None => name.to_string(),
    }
}
