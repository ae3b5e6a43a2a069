//! `scripts/bench` end to end in its smallest mode: every scenario row is printed, every
//! tool ran. Timings are not checked (this machine is shared); BENCHMARKS.md has them.

use std::path::{Path, PathBuf};
use std::process::Command;

const SCENARIOS: [&str; 8] = [
    "bootstrap-rsa",
    "bootstrap-ecdsa",
    "truststore-import",
    "renew-noop",
    "apply-noop",
    "verify-limits",
    "probe-many",
    "token-issue",
];

#[test]
fn bench_quick_prints_every_scenario() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let certmesh = PathBuf::from(env!("CARGO_BIN_EXE_certmesh"));
    // `cargo test --all-targets` (scripts/test) builds the example next to the binary.
    let floor = certmesh
        .parent()
        .expect("target dir")
        .join("examples")
        .join("keygen_floor");
    let work = tempfile::tempdir().expect("temp dir");
    let cwd = tempfile::tempdir().expect("temp dir");
    let out = Command::new(root.join("scripts/bench"))
        .args(["--n", "2", "--runs", "1", "--quick", "--keep"])
        .arg(work.path())
        .current_dir(cwd.path())
        .env("CERTMESH_BIN", &certmesh)
        .env(
            "KEYGEN_FLOOR_BIN",
            if floor.exists() {
                floor.as_os_str()
            } else {
                "none".as_ref()
            },
        )
        .output()
        .expect("scripts/bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/bench failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("| ")).collect();
    assert!(
        rows.first().is_some_and(|h| h.contains("median s")),
        "no table header:\n{stdout}"
    );
    for s in SCENARIOS {
        assert!(
            rows.iter()
                .any(|r| r.starts_with(&format!("| {s} | certmesh |"))),
            "no certmesh row for {s}:\n{stdout}"
        );
    }
    // Every alternative scripts/test installs ran to the end.
    for tool in [
        "seeds (openssl + keytool)",
        "easy-rsa 3",
        "cfssl",
        "keytool -importcert",
        "openssl x509 -checkend loop",
        "openssl s_client loop",
        "certmesh, CA key in SoftHSM2",
    ] {
        let row = rows
            .iter()
            .find(|r| r.contains(&format!(" | {tool} |")))
            .unwrap_or_else(|| panic!("no row for {tool}:\n{stdout}"));
        assert!(
            !row.contains("| failed |") && !row.contains("| n/a |"),
            "{tool} did not run: {row}\nstderr:\n{stderr}"
        );
    }
    assert!(
        !stdout.contains("| failed |"),
        "a run failed:\n{stdout}\nstderr:\n{stderr}"
    );
}

/// `--only` runs the scenarios it names and prints only their rows; an unknown name is a
/// usage error before anything runs. Nothing is written where the script is started.
#[test]
fn bench_only_runs_the_named_scenarios() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let certmesh = PathBuf::from(env!("CARGO_BIN_EXE_certmesh"));
    let cwd = tempfile::tempdir().expect("temp dir");
    let bench = |only: &str| {
        Command::new(root.join("scripts/bench"))
            .args(["--runs", "1", "--quick", "--large-n", "3", "--only", only])
            .current_dir(cwd.path())
            .env("CERTMESH_BIN", &certmesh)
            .env("KEYGEN_FLOOR_BIN", "none")
            .output()
            .expect("scripts/bench runs")
    };
    let out = bench("truststore-import");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scenarios: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| scenario"))
        .map(|l| l.split(" | ").next().unwrap_or("").trim_start_matches("| "))
        .collect();
    assert_eq!(
        scenarios,
        ["truststore-import", "truststore-import"],
        "{stdout}"
    );
    assert!(
        stdout.contains("harness") && stdout.contains("| net s |"),
        "{stdout}"
    );

    // The large-cluster scenario runs only when named: its first and no-op apply rows.
    let out = bench("apply-large");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("| apply-large | certmesh |"))
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(
        rows[0].contains("first `cluster apply`, 3 nginx members"),
        "{stdout}"
    );
    assert!(rows[1].contains("nothing to do"), "{stdout}");
    assert!(rows.iter().all(|r| !r.contains("| failed |")), "{stdout}");

    let bad = bench("bootstrap-dsa");
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("unknown scenario 'bootstrap-dsa'"),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(cwd.path())
        .expect("cwd")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(
        left.is_empty(),
        "scripts/bench wrote into its working directory: {left:?}"
    );
}
