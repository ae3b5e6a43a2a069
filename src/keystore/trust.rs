//! Adding trusted certificates to a JKS/JCEKS store, with the decisions an operator
//! expects made explicit: the same certificate under the alias is a no-op, a different one
//! needs `replace`, and a certificate already trusted under another alias is skipped
//! unless `force_duplicate`. The CLI and `cluster apply` share this, so both decide alike.

use std::path::Path;

use super::jks::{normalize_alias, EntryBody, KeyStore};
use crate::{Error, Result};

/// How to treat conflicts.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// Replace a different certificate already under the alias.
    pub replace: bool,
    /// Add a certificate even when another alias already trusts it.
    pub force_duplicate: bool,
}

/// What happened to one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new entry.
    Added,
    /// A different certificate under the alias was replaced (`replace`).
    Replaced,
    /// The alias already held exactly this certificate.
    AlreadyPresent,
    /// Other aliases already trust it, so it was not added.
    DuplicateSkipped { trusted_as: Vec<String> },
    /// Other aliases already trust it, and it was added anyway (`force_duplicate`).
    DuplicateAdded { trusted_as: Vec<String> },
}

impl Outcome {
    /// Whether the store changed.
    pub fn changed(&self) -> bool {
        matches!(
            self,
            Outcome::Added | Outcome::Replaced | Outcome::DuplicateAdded { .. }
        )
    }
}

/// The alias for the `i`th certificate of a bundle: ALIAS, ALIAS-2, ALIAS-3, ...
pub fn bundle_alias(alias: &str, i: usize) -> String {
    if i == 0 {
        alias.to_string()
    } else {
        format!("{alias}-{}", i + 1)
    }
}

/// Adds `certs` (DER) under `alias`, `alias-2`, ... Nothing is changed when any
/// certificate is refused: the refusal comes back as an error naming `store_path`.
pub fn import_certs(
    ks: &mut KeyStore,
    store_path: &Path,
    alias: &str,
    certs: &[Vec<u8>],
    opts: ImportOptions,
    timestamp: i64,
) -> Result<Vec<(String, Outcome)>> {
    let mut work = ks.clone();
    let mut out = Vec::new();
    for (i, der) in certs.iter().enumerate() {
        let alias = bundle_alias(alias, i);
        let mut replacing = false;
        if let Some(e) = work.get(&alias) {
            match &e.body {
                EntryBody::TrustedCert(c) if c.der == *der => {
                    out.push((e.alias.clone(), Outcome::AlreadyPresent));
                    continue;
                }
                EntryBody::TrustedCert(_) if opts.replace => replacing = true,
                EntryBody::TrustedCert(_) => {
                    return Err(Error::AliasExists {
                        path: store_path.to_path_buf(),
                        alias: e.alias.clone(),
                        problem:
                            "already holds a different certificate; add --replace to replace it"
                                .into(),
                    })
                }
                other => {
                    return Err(Error::AliasExists {
                        path: store_path.to_path_buf(),
                        alias: e.alias.clone(),
                        problem: format!(
                            "is a {}, not a trusted certificate; not replaced",
                            other.type_name()
                        ),
                    })
                }
            }
        }
        let want = normalize_alias(&alias);
        let trusted_as: Vec<String> = work
            .aliases_with_cert(der)
            .into_iter()
            .filter(|x| normalize_alias(x) != want)
            .map(str::to_string)
            .collect();
        let outcome = match (trusted_as.is_empty(), opts.force_duplicate) {
            (false, false) => {
                out.push((alias, Outcome::DuplicateSkipped { trusted_as }));
                continue;
            }
            (false, true) => Outcome::DuplicateAdded { trusted_as },
            (true, _) if replacing => Outcome::Replaced,
            (true, _) => Outcome::Added,
        };
        work.set_trusted(&alias, der.clone(), timestamp);
        let stored = work.get(&alias).map(|e| e.alias.clone()).unwrap_or(alias);
        out.push((stored, outcome));
    }
    *ks = work;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystore::jks::Flavor;

    #[test]
    fn decisions() {
        let p = Path::new("t.jks");
        let mut ks = KeyStore::new(Flavor::Jks);
        let a = vec![1u8];
        let b = vec![2u8];
        let o = import_certs(
            &mut ks,
            p,
            "CA",
            &[a.clone(), b.clone()],
            ImportOptions::default(),
            1,
        )
        .unwrap();
        assert_eq!(
            o,
            vec![
                ("ca".into(), Outcome::Added),
                ("ca-2".into(), Outcome::Added)
            ]
        );
        let o = import_certs(
            &mut ks,
            p,
            "ca",
            std::slice::from_ref(&a),
            ImportOptions::default(),
            2,
        )
        .unwrap();
        assert_eq!(o[0].1, Outcome::AlreadyPresent);
        let before = ks.clone();
        let taken = import_certs(
            &mut ks,
            p,
            "ca",
            std::slice::from_ref(&b),
            ImportOptions::default(),
            3,
        );
        assert!(
            matches!(&taken, Err(Error::AliasExists { path, alias, .. }) if path == p && alias == "ca"),
            "{:?}",
            taken.err()
        );
        assert_eq!(ks, before);
        let o = import_certs(
            &mut ks,
            p,
            "other",
            std::slice::from_ref(&a),
            ImportOptions::default(),
            3,
        )
        .unwrap();
        assert_eq!(
            o[0].1,
            Outcome::DuplicateSkipped {
                trusted_as: vec!["ca".into()]
            }
        );
        assert!(!o[0].1.changed());
        let force = ImportOptions {
            force_duplicate: true,
            ..Default::default()
        };
        assert!(
            import_certs(&mut ks, p, "other", std::slice::from_ref(&a), force, 3).unwrap()[0]
                .1
                .changed()
        );
        let replace = ImportOptions {
            replace: true,
            ..Default::default()
        };
        let o = import_certs(&mut ks, p, "CA-2", &[vec![3u8]], replace, 4).unwrap();
        assert_eq!(o, vec![("ca-2".into(), Outcome::Replaced)]);
    }

    #[test]
    fn an_alias_holding_another_kind_of_entry_is_not_replaced() {
        let p = Path::new("t.jks");
        let mut ks = KeyStore::new(Flavor::Jks);
        ks.set_trusted("ca", vec![1u8], 1);
        ks.entries[0].body = EntryBody::SecretKey { sealed: vec![9u8] };
        let replace = ImportOptions {
            replace: true,
            ..Default::default()
        };
        let e = import_certs(&mut ks, p, "CA", &[vec![2u8]], replace, 2).unwrap_err();
        assert!(
            matches!(&e, Error::AliasExists { alias, .. } if alias == "ca"),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "t.jks: alias 'ca' is a SecretKeyEntry, not a trusted certificate; not replaced"
        );
    }
}
