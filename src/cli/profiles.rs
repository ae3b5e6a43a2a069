//! Where the product profiles of a cluster command come from.

use std::path::PathBuf;

use certmesh::cluster::profile::Profiles;
use certmesh::Result;

/// The shipped profiles plus those in the `--profiles` directories, or in the default
/// directory (`./profiles`, else the packaged one) when none is given.
pub(crate) fn load_profiles(given: &[PathBuf]) -> Result<Profiles> {
    let dirs = if given.is_empty() {
        certmesh::cluster::profile::default_dirs()
    } else {
        given.to_vec()
    };
    let dirs: Vec<&std::path::Path> = dirs.iter().map(PathBuf::as_path).collect();
    Profiles::load(&dirs)
}
