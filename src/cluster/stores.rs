//! Where a cluster's CA stores live in its output directory, and finding the ones that
//! exist: one `cluster` store with shared-CA trust, one per member with mesh trust.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::manifest::{Manifest, Member, TrustModel};
use crate::ca::Store;
use crate::fsio;
use crate::Result;

/// Where the cluster's CA stores live inside the output directory.
pub const PKI_DIR: &str = "pki";

/// The cluster's CA stores by signer id; `None` where a store does not exist yet.
pub type Stores = BTreeMap<String, Option<Store>>;

/// The signer a member's certificate comes from: `cluster`, or with mesh trust its own.
pub fn store_id(trust: TrustModel, m: &Member) -> &str {
    store_id_of(trust, m.name.get_ref())
}

/// The signer id of the member named `member`.
pub fn store_id_of(trust: TrustModel, member: &str) -> &str {
    match trust {
        TrustModel::SharedCa => "cluster",
        TrustModel::Mesh => member,
    }
}

/// Where the CA store of signer `id` lives.
pub fn store_dir(trust: TrustModel, out: &Path, id: &str) -> PathBuf {
    match trust {
        TrustModel::SharedCa => out.join(PKI_DIR).join("ca"),
        TrustModel::Mesh => out.join(PKI_DIR).join("signers").join(id),
    }
}

/// A store's directory relative to the output directory, for the identities record.
pub fn store_rel(trust: TrustModel, id: &str) -> String {
    store_dir(trust, Path::new(""), id).display().to_string()
}

/// The cluster's CA stores by signer id (`cluster`, or each member's name for mesh);
/// `None` where a store does not exist yet.
pub fn open_stores(manifest: &Manifest, out: &Path) -> Result<Stores> {
    // Whatever reads a cluster's stores (apply, status, rollback, check) reads the member
    // directories too: the output directory must be one no one else can change.
    fsio::check_dir_chain(out)?;
    let ids: Vec<String> = match manifest.trust {
        TrustModel::SharedCa => vec!["cluster".into()],
        TrustModel::Mesh => manifest
            .members
            .iter()
            .map(|m| m.name.get_ref().clone())
            .collect(),
    };
    let mut stores = BTreeMap::new();
    for id in ids {
        let dir = store_dir(manifest.trust, out, &id);
        let store = if Store::config_path(&dir).exists() {
            Some(Store::open(&dir)?)
        } else {
            None
        };
        stores.insert(id, store);
    }
    Ok(stores)
}

/// The cluster's existing CA stores (for commands that work on them, like rollback).
pub fn cluster_stores(manifest: &Manifest, out: &Path) -> Result<Vec<Option<Store>>> {
    Ok(open_stores(manifest, out)?.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_ca_members_share_one_store_and_mesh_members_have_their_own() {
        let out = Path::new("/srv/out");
        assert_eq!(store_id_of(TrustModel::SharedCa, "web1"), "cluster");
        assert_eq!(store_id_of(TrustModel::Mesh, "web1"), "web1");
        assert_eq!(
            store_dir(TrustModel::SharedCa, out, "cluster"),
            Path::new("/srv/out/pki/ca")
        );
        assert_eq!(
            store_dir(TrustModel::Mesh, out, "web1"),
            Path::new("/srv/out/pki/signers/web1")
        );
        assert_eq!(store_rel(TrustModel::Mesh, "web1"), "pki/signers/web1");
        assert_eq!(store_rel(TrustModel::SharedCa, "cluster"), "pki/ca");
    }

    #[test]
    fn only_existing_stores_are_opened() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let manifest = Manifest::parse(
            &dir.path().join("cluster.toml"),
            "name = \"t\"\ntrust = \"mesh\"\n[defaults]\nprofile = \"nginx\"\n\
             [[member]]\nname = \"a\"\ndns = [\"a.test\"]\n\
             [[member]]\nname = \"b\"\ndns = [\"b.test\"]\n",
        )
        .unwrap();
        let stores = open_stores(&manifest, &out).unwrap();
        assert_eq!(stores.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert!(stores.values().all(Option::is_none));
    }
}
