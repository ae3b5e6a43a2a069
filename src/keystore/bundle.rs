//! What `export p12` writes, assembled from certificate and key files: a truststore (each
//! certificate of each file once, under its own alias) or one key entry (key, certificate,
//! chain), checked before any password is asked for.

use std::path::{Path, PathBuf};

use x509_parser::prelude::{FromDer, X509Certificate};

use super::alias::Aliases;
use super::pkcs12::{self, Compat, KeyEntry};
use crate::key::PrivateKey;
use crate::pass::Secret;
use crate::x509::read_certs;
use crate::{Error, Result};

/// What goes into the new file.
pub enum Contents {
    /// Trusted certificates, with their aliases.
    Trust(Vec<(String, Vec<u8>)>),
    /// A key with its certificate and chain (DER, leaf first).
    Key {
        alias: String,
        key: PrivateKey,
        certs: Vec<Vec<u8>>,
    },
}

impl Contents {
    /// A truststore of every certificate of `files`, each once. Aliases are A, A-2, A-3...
    /// with `alias` A, otherwise each certificate's CN (the file's name when it has none),
    /// made unique ignoring case, as Java does.
    pub fn trust(files: &[PathBuf], alias: Option<&str>) -> Result<Self> {
        let mut out: Vec<(String, Vec<u8>)> = Vec::new();
        let mut aliases = Aliases::new();
        for f in files {
            for der in read_certs(f)? {
                if out.iter().any(|(_, d)| *d == der) {
                    continue;
                }
                let base = match alias {
                    Some(a) => a.to_string(),
                    None => common_name(&der).unwrap_or_else(|| file_stem(f)),
                };
                out.push((aliases.allocate(&base), der));
            }
        }
        Ok(Contents::Trust(out))
    }

    /// A key entry. `certs` is the certificate then its chain; the key must belong to the
    /// certificate. `no_root` leaves self-signed roots out of the chain. The alias is
    /// `alias`, else the certificate's CN, else the certificate file's name.
    pub fn key(
        key: PrivateKey,
        mut certs: Vec<Vec<u8>>,
        key_path: &Path,
        cert_path: &Path,
        alias: Option<String>,
        no_root: bool,
    ) -> Result<Self> {
        let Some(leaf) = certs.first() else {
            return Err(Error::bad_file(cert_path, "holds no certificate"));
        };
        if !key.matches_cert_der(leaf)? {
            return Err(Error::KeyMismatch {
                path: Some(key_path.to_path_buf()),
                problem: format!(
                    "the private key does not match the certificate {}",
                    cert_path.display()
                ),
            });
        }
        if no_root {
            let leaf = certs.remove(0);
            certs.retain(|c| !crate::x509::is_self_signed_der(c));
            certs.insert(0, leaf);
        }
        let alias =
            alias.unwrap_or_else(|| common_name(&certs[0]).unwrap_or_else(|| file_stem(cert_path)));
        Ok(Contents::Key { alias, key, certs })
    }

    /// The aliases of the entries.
    pub fn aliases(&self) -> Vec<&str> {
        match self {
            Contents::Trust(entries) => entries.iter().map(|(a, _)| a.as_str()).collect(),
            Contents::Key { alias, .. } => vec![alias.as_str()],
        }
    }

    /// GSKit looks labels up in lower case, so a stash-using IBM product cannot find an
    /// entry whose alias has capitals.
    pub fn check_stash_aliases(&self) -> Result<()> {
        for al in self.aliases() {
            if al != al.to_lowercase() {
                return Err(Error::Refused(format!(
                    "with --ihs-stash the alias must be lowercase ('{al}' is not); give --alias {}",
                    al.to_lowercase()
                )));
            }
        }
        Ok(())
    }

    /// The PKCS#12 file, encoded and checked.
    pub fn encode(&self, compat: Compat, pass: &Secret) -> Result<pkcs12::Pkcs12File> {
        match self {
            Contents::Trust(entries) => pkcs12::trust_store(entries, compat, pass),
            Contents::Key { alias, key, certs } => {
                let entry = KeyEntry { alias, key, certs };
                pkcs12::key_store(&entry, compat, pass)
            }
        }
    }

    /// One phrase for the report: what the file holds.
    pub fn describe(&self) -> String {
        match self {
            Contents::Trust(entries) => format!(
                "truststore with {} trusted certificate(s): {}",
                entries.len(),
                entries
                    .iter()
                    .map(|(al, _)| al.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Contents::Key { alias, key, certs } => format!(
                "key entry '{alias}' ({}) with {} certificate(s)",
                key.describe(),
                certs.len()
            ),
        }
    }
}

fn common_name(der: &[u8]) -> Option<String> {
    X509Certificate::from_der(der)
        .ok()
        .and_then(|(_, c)| crate::x509::common_name(&c))
}

fn file_stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "cert".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::key::{Digest, KeyAlg, KeySigner};

    fn signer(k: &PrivateKey) -> KeySigner {
        k.signing_key(Digest::Sha256).unwrap()
    }

    fn new_key() -> PrivateKey {
        PrivateKey::generate(KeyAlg::P256).unwrap()
    }

    fn ca(cn: &str) -> (rcgen::CertificateParams, PrivateKey, String) {
        let key = new_key();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let pem = p.self_signed(&signer(&key)).unwrap().pem();
        (p, key, pem)
    }

    #[test]
    fn trust_aliases_are_unique_ignoring_case_and_certificates_appear_once() {
        let dir = tempfile::tempdir().unwrap();
        let (_, _, a) = ca("Cluster CA");
        let (_, _, b) = ca("cluster ca");
        let f1 = dir.path().join("one.pem");
        let f2 = dir.path().join("two.pem");
        std::fs::write(&f1, format!("{a}{b}")).unwrap();
        std::fs::write(&f2, &a).unwrap();
        let c = Contents::trust(&[f1.clone(), f2], None).unwrap();
        assert_eq!(c.aliases(), ["Cluster CA", "cluster ca-2"]);
        assert!(c.check_stash_aliases().is_err());
        let c = Contents::trust(&[f1], Some("ca")).unwrap();
        assert_eq!(c.aliases(), ["ca", "ca-2"]);
        assert!(c.check_stash_aliases().is_ok());
    }

    #[test]
    fn key_entries_check_the_key_and_drop_roots_on_request() {
        let (params, root_key, root_pem) = ca("Root");
        let issuer = rcgen::Issuer::new(params, signer(&root_key));
        let leaf_key = new_key();
        let mut lp = rcgen::CertificateParams::new(vec!["node1.example".to_string()]).unwrap();
        lp.distinguished_name = rcgen::DistinguishedName::new();
        lp.distinguished_name
            .push(rcgen::DnType::CommonName, "node1");
        let leaf = lp.signed_by(&signer(&leaf_key), &issuer).unwrap();
        let key = || PrivateKey::from_pkcs8_der(leaf_key.pkcs8_der()).unwrap();
        let root_der = crate::x509::parse_certs(Path::new("root"), root_pem.as_bytes())
            .unwrap()
            .remove(0);
        let certs = vec![leaf.der().to_vec(), root_der.clone()];
        let (kp, cp) = (Path::new("node1.key"), Path::new("node1.crt"));
        let c = Contents::key(key(), certs.clone(), kp, cp, None, true).unwrap();
        let Contents::Key {
            alias, certs: kept, ..
        } = &c
        else {
            panic!()
        };
        assert_eq!(alias, "node1");
        assert_eq!(kept, &certs[..1]);
        let c = Contents::key(key(), certs.clone(), kp, cp, Some("x".into()), false).unwrap();
        assert_eq!(c.aliases(), ["x"]);
        assert!(c.describe().contains("with 2 certificate(s)"));
        // The root's key does not belong to the leaf.
        let e = Contents::key(root_key, certs, kp, cp, None, false)
            .err()
            .unwrap();
        assert!(
            matches!(&e, Error::KeyMismatch { path: Some(p), .. } if p == kp),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "node1.key: the private key does not match the certificate node1.crt"
        );
    }
}
