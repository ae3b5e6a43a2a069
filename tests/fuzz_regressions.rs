//! Inputs the fuzzers (fuzz/, scripts/fuzz) found to crash, hang or exhaust memory, kept
//! after the fix: tests/data/fuzz-regressions/<target>/<file> is fed to the library
//! function that fuzz target drives, which must return (a value or an error) promptly and
//! without panicking.

use std::fs;
use std::panic;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use certmesh::pass::Secret;

/// Runs the code of fuzz target `target` on `data`, as fuzz/fuzz_targets/<target>.rs does.
fn feed(target: &str, data: &[u8]) {
    let path = Path::new("regression");
    match target {
        "pem_armor" => certmesh::key::fuzzing::pem_armor(data),
        "legacy_pem" => {
            certmesh::key::fuzzing::legacy_pem(data, "certmesh-vector");
            certmesh::key::fuzzing::read_key(data, "certmesh-vector");
        }
        "pkcs8_encrypted" => certmesh::key::fuzzing::pkcs8_encrypted(data, "certmesh-vector"),
        "key_describe" => {
            let _ = certmesh::key::describe_key_file(path, data, None);
        }
        "pkcs12" => {
            let _ = certmesh::keystore::pkcs12::outline(data);
            let pass = Secret::new("certmesh-fuzz".to_string());
            if let Ok(d) = certmesh::keystore::pkcs12::decode(path, data, &pass) {
                let _ = d.bags();
                let _ = d.key_and_chain(path);
            }
        }
        "csr" => {
            let _ = certmesh::cert::csr::parse(path, data);
        }
        "inspect" => {
            let _ = certmesh::inspect::inspect_bytes(path, data, None);
        }
        "manifest" => {
            if let Ok(text) = std::str::from_utf8(data) {
                let _ = certmesh::cluster::manifest::Manifest::parse(path, text);
            }
        }
        "profile" => {
            if let Ok(text) = std::str::from_utf8(data) {
                let _ = certmesh::cluster::profile::ProductProfile::parse(path, text);
            }
        }
        "jks" => {
            let _ = certmesh::keystore::jks::KeyStore::parse(path, data, None);
            let pass = Secret::new("certmesh-fuzz".to_string());
            let _ = certmesh::keystore::jks::KeyStore::parse(path, data, Some(&pass));
        }
        other => panic!("tests/data/fuzz-regressions/{other}: no fuzz target of that name"),
    }
}

fn cases() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz-regressions");
    let mut out = Vec::new();
    for dir in fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let target = dir.file_name().unwrap().to_string_lossy().into_owned();
        for f in fs::read_dir(&dir).unwrap() {
            out.push((target.clone(), f.unwrap().path()));
        }
    }
    out.sort();
    out
}

#[test]
fn every_kept_input_returns_promptly_without_panicking() {
    let cases = cases();
    assert!(!cases.is_empty(), "no regression inputs found");
    let mut problems = Vec::new();
    for (target, file) in &cases {
        let data = fs::read(file).unwrap();
        let start = Instant::now();
        if panic::catch_unwind(|| feed(target, &data)).is_err() {
            problems.push(format!("{}: panicked", file.display()));
        }
        // libFuzzer's -timeout in scripts/fuzz is 10 s; debug builds are slower than the
        // fuzzers' release builds, so allow some headroom.
        let took = start.elapsed();
        if took > Duration::from_secs(20) {
            problems.push(format!("{}: took {took:?}", file.display()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
