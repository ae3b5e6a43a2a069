//! The README's tested blocks (a ```sh block right after `<!-- tested -->`), run as
//! written in an empty directory with a given certmesh first on PATH: the debug build
//! (tests/readme.rs) or the static release binary (tests/package.rs).

use std::path::Path;
use std::process::Command;

use super::{run, tempdir, Run};

/// Every tested block of README.md, in order.
pub fn blocks() -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let blocks: Vec<String> = readme
        .split("<!-- tested -->\n```sh\n")
        .skip(1)
        .map(|rest| rest.split("\n```").next().unwrap().to_string())
        .collect();
    assert!(!blocks.is_empty(), "README has tested blocks");
    blocks
}

/// Runs `block` with bash (`set -euo pipefail`) in a fresh empty directory, with the
/// directory `bin_dir` (holding a `certmesh`) first on PATH.
pub fn run_block(block: &str, bin_dir: &Path) -> Run {
    let dir = tempdir();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = format!("set -euo pipefail\n{block}\n");
    run(Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("PATH", &path)
        .env("P12_PASS", "readme-p12-pass")
        .env("STORE_PASS", "readme-store-pass")
        .env_remove("CERTMESH_HOME"))
}
