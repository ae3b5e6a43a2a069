//! Every manifest shipped in examples/ applies cleanly, gives every member its files, and
//! converges (a second apply has nothing to do).

mod support;

use std::fs;
use std::path::Path;

use support::{cluster_apply, tempdir};

#[test]
fn every_example_manifest_applies_and_converges() {
    let dir = tempdir();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut seen = 0;
    for entry in fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        seen += 1;
        let out = dir.path().join(path.file_stem().unwrap());
        let r = cluster_apply(&path, &out);
        r.assert_success();
        let manifest = certmesh::cluster::manifest::Manifest::load(&path).unwrap();
        for m in &manifest.members {
            let files = fs::read_dir(out.join(m.name.get_ref())).unwrap().count();
            assert!(
                files >= 2,
                "{}: member {} got {files} files",
                path.display(),
                m.name.get_ref()
            );
        }
        let r = cluster_apply(&path, &out);
        assert!(
            r.success() && r.stdout.contains("nothing to do"),
            "{}: {r:?}",
            path.display()
        );
    }
    assert!(seen >= 2, "examples/ holds the seed manifests");
}
