//! The README's tested blocks (a ```sh block right after `<!-- tested -->`) run as
//! written, in an empty directory, with the built certmesh first on PATH.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use support::{run, tempdir};

#[test]
fn readme_examples_run() {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split("<!-- tested -->\n```sh\n")
        .skip(1)
        .map(|rest| rest.split("\n```").next().unwrap())
        .collect();
    assert!(!blocks.is_empty(), "README has tested blocks");
    let bin = Path::new(env!("CARGO_BIN_EXE_certmesh"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for (i, block) in blocks.iter().enumerate() {
        let dir = tempdir();
        let script = format!("set -euo pipefail\n{block}\n");
        let r = run(Command::new("bash")
            .arg("-c")
            .arg(&script)
            .current_dir(dir.path())
            .env("PATH", &path)
            .env("P12_PASS", "readme-p12-pass")
            .env("STORE_PASS", "readme-store-pass")
            .env_remove("CERTMESH_HOME"));
        assert!(r.success(), "README block {i} failed:\n{block}\n{r:?}");
    }
}
