//! Who trusts whom: the signers each member's truststores hold, and the signers of the
//! members a proxy routes to. `apply` renders them, `status` compares files with them.

use std::collections::{BTreeMap, HashMap, HashSet};

use x509_parser::prelude::{FromDer, X509Certificate};

use super::manifest::Manifest;
use super::stores::{store_id, Stores};
use crate::Result;

/// A trusted signer: its subject (for reports) and DER certificate.
pub type TrustedSigner = (String, Vec<u8>);

/// Every signer each member must trust, in a stable order: the cluster CA (or every
/// member's signer, for mesh), then the extra signers that apply to it.
pub fn member_trust(
    manifest: &Manifest,
    stores: &Stores,
) -> Result<BTreeMap<String, Vec<TrustedSigner>>> {
    let mut all: Vec<TrustedSigner> = Vec::new();
    for anchors in store_anchors(stores)?.into_values() {
        all.extend(anchors);
    }
    let mut extras: Vec<(Vec<String>, TrustedSigner)> = Vec::new();
    for x in &manifest.extra_trust {
        let path = manifest.resolve(&x.cert);
        for der in crate::x509::read_certs(&path)? {
            extras.push((x.members.clone(), (subject_of(&der), der)));
        }
    }
    let mut out = BTreeMap::new();
    for m in &manifest.members {
        let name = m.name.get_ref();
        let mut trust = all.clone();
        for (members, signer) in &extras {
            if members.is_empty() || members.iter().any(|x| x == name) {
                trust.push(signer.clone());
            }
        }
        out.insert(name.clone(), trust);
    }
    Ok(out)
}

/// Per member, the signers of the other members (what a proxy in front of them needs to
/// trust the servers it routes to): the cluster CA, or with mesh trust the other
/// members' signers, in the order the manifest first names a member of each signer.
pub fn routed_signers(
    manifest: &Manifest,
    stores: &Stores,
) -> Result<BTreeMap<String, Vec<TrustedSigner>>> {
    let anchors = store_anchors(stores)?;
    // Each signer id with the positions of its first two members: without member `i`,
    // a signer is still routed to when another member has it, and it comes where the
    // first of those others stands. Linear in the members, not quadratic.
    let ids: Vec<&str> = manifest
        .members
        .iter()
        .map(|m| store_id(manifest.trust, m))
        .collect();
    let mut firsts: HashMap<&str, (usize, Option<usize>)> = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        firsts
            .entry(id)
            .and_modify(|e| {
                if e.1.is_none() {
                    e.1 = Some(i);
                }
            })
            .or_insert((i, None));
    }
    let mut order: Vec<(usize, &str)> = firsts.iter().map(|(id, (f, _))| (*f, *id)).collect();
    order.sort_unstable();
    let mut out = BTreeMap::new();
    for (i, m) in manifest.members.iter().enumerate() {
        let own = ids[i];
        let mut routed: Vec<(usize, &str)> = Vec::with_capacity(order.len());
        for &(first, id) in &order {
            if id != own || first != i {
                routed.push((first, id));
            } else if let Some(second) = firsts[id].1 {
                routed.push((second, id));
            }
        }
        routed.sort_unstable();
        let mut seen: HashSet<&[u8]> = HashSet::new();
        let mut v: Vec<TrustedSigner> = Vec::new();
        for (_, id) in routed {
            for s in anchors.get(id).into_iter().flatten() {
                if seen.insert(&s.1) {
                    v.push(s.clone());
                }
            }
        }
        out.insert(m.name.get_ref().clone(), v);
    }
    Ok(out)
}

/// The trust anchors of each existing store, by signer id.
fn store_anchors(stores: &Stores) -> Result<BTreeMap<&str, Vec<TrustedSigner>>> {
    let mut anchors = BTreeMap::new();
    for (id, store) in stores {
        if let Some(store) = store {
            let mut v = Vec::new();
            for root_id in store.trust_anchors() {
                let der = store.cert_der(&root_id)?;
                v.push((subject_of(&der), der));
            }
            anchors.insert(id.as_str(), v);
        }
    }
    Ok(anchors)
}

/// A certificate's subject for reports; empty when it does not parse.
pub fn subject_of(der: &[u8]) -> String {
    X509Certificate::from_der(der)
        .map(|(_, c)| c.subject().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{CaInit, Store};
    use crate::key::{Digest, KeyAlg};
    use std::path::Path;

    /// A mesh of `names`, with a signer store for those in `with_store`.
    fn mesh(dir: &Path, names: &[&str], with_store: &[&str]) -> (Manifest, Stores) {
        let mut text =
            String::from("name = \"t\"\ntrust = \"mesh\"\n[defaults]\nprofile = \"nginx\"\n");
        for n in names {
            text.push_str(&format!(
                "[[member]]\nname = \"{n}\"\ndns = [\"{n}.test\"]\n"
            ));
        }
        let manifest = Manifest::parse(&dir.join("cluster.toml"), &text).unwrap();
        let mut stores = Stores::new();
        for n in names {
            let store = with_store.contains(n).then(|| {
                Store::init(
                    &dir.join(n),
                    &CaInit {
                        name: format!("Signer {n}"),
                        key: KeyAlg::P256,
                        days: 30,
                        digest: Digest::Sha256,
                        constraints: Default::default(),
                        token: None,
                    },
                    None,
                )
                .unwrap()
            });
            stores.insert(n.to_string(), store);
        }
        (manifest, stores)
    }

    fn subjects(v: &[TrustedSigner]) -> Vec<&str> {
        v.iter().map(|(s, _)| s.as_str()).collect()
    }

    #[test]
    fn each_member_routes_to_the_other_members_signers_in_manifest_order() {
        let dir = tempfile::tempdir().unwrap();
        let (manifest, stores) = mesh(dir.path(), &["b", "a", "c"], &["b", "a", "c"]);
        let routed = routed_signers(&manifest, &stores).unwrap();
        assert_eq!(subjects(&routed["b"]), ["CN=Signer a", "CN=Signer c"]);
        assert_eq!(subjects(&routed["a"]), ["CN=Signer b", "CN=Signer c"]);
        assert_eq!(subjects(&routed["c"]), ["CN=Signer b", "CN=Signer a"]);
        // Everyone trusts every signer, in store order.
        let trust = member_trust(&manifest, &stores).unwrap();
        assert_eq!(
            subjects(&trust["c"]),
            ["CN=Signer a", "CN=Signer b", "CN=Signer c"]
        );
    }

    #[test]
    fn a_signer_without_a_store_yet_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let (manifest, stores) = mesh(dir.path(), &["a", "b", "c"], &["a", "c"]);
        let routed = routed_signers(&manifest, &stores).unwrap();
        assert_eq!(subjects(&routed["a"]), ["CN=Signer c"]);
        assert_eq!(subjects(&routed["b"]), ["CN=Signer a", "CN=Signer c"]);
        assert_eq!(subjects(&routed["c"]), ["CN=Signer a"]);
    }

    #[test]
    fn with_one_cluster_ca_a_lone_member_routes_to_no_one() {
        let dir = tempfile::tempdir().unwrap();
        let (_, mut stores) = mesh(dir.path(), &["cluster"], &["cluster"]);
        let shared = |names: &[&str]| {
            let mut text = String::from("name = \"t\"\n[defaults]\nprofile = \"nginx\"\n");
            for n in names {
                text.push_str(&format!(
                    "[[member]]\nname = \"{n}\"\ndns = [\"{n}.test\"]\n"
                ));
            }
            Manifest::parse(&dir.path().join("cluster.toml"), &text).unwrap()
        };
        let routed = routed_signers(&shared(&["a"]), &stores).unwrap();
        assert!(routed["a"].is_empty());
        let routed = routed_signers(&shared(&["a", "b"]), &stores).unwrap();
        assert_eq!(subjects(&routed["a"]), ["CN=Signer cluster"]);
        assert_eq!(subjects(&routed["b"]), ["CN=Signer cluster"]);
        stores.insert("cluster".into(), None);
        assert!(routed_signers(&shared(&["a", "b"]), &stores).unwrap()["a"].is_empty());
    }
}
