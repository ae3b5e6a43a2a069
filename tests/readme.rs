//! The README's tested blocks (a ```sh block right after `<!-- tested -->`) run as
//! written, in an empty directory, with the built certmesh first on PATH.

mod support;

use std::path::Path;

use support::readme;

#[test]
fn readme_examples_run() {
    let bin = Path::new(env!("CARGO_BIN_EXE_certmesh")).parent().unwrap();
    for (i, block) in readme::blocks().iter().enumerate() {
        let r = readme::run_block(block, bin);
        assert!(r.success(), "README block {i} failed:\n{block}\n{r:?}");
    }
}
