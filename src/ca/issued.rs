//! One entry of the store's `issued/` directory: `issued/NAME/` with `key.pem`, `cert.pem`
//! and `chain.pem` (the CAs above it, issuing CA first). Every command that reads an entry
//! finds it here, so the name is checked once, the same way: a plain name, which cannot
//! lead outside `issued/`.

use std::path::{Path, PathBuf};

use crate::key::{read_private_key, PassPrompt, PrivateKey};
use crate::Result;

use super::store::{check_entry_name, Store};

impl Store {
    /// The issued entry `name` of this store (see [`IssuedEntry::at`]).
    pub fn issued(&self, name: &str) -> Result<IssuedEntry> {
        IssuedEntry::at(self.home(), name)
    }
}

/// The directory under the store's home that holds the issued entries.
pub const ISSUED_DIR: &str = "issued";

/// An issued entry, by name. Whether it exists is for the caller to ask ([`Self::exists`]):
/// some look an entry up, others are about to make it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedEntry {
    pub name: String,
    pub dir: PathBuf,
}

impl IssuedEntry {
    /// The entry `name` of the store at `home`; refuses a name that is not a plain name.
    pub fn at(home: &Path, name: &str) -> Result<Self> {
        check_entry_name(name)?;
        Ok(IssuedEntry {
            name: name.to_string(),
            dir: home.join(ISSUED_DIR).join(name),
        })
    }

    /// Whether the entry's directory is there.
    pub fn exists(&self) -> bool {
        self.dir.is_dir()
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    pub fn chain_path(&self) -> PathBuf {
        self.dir.join("chain.pem")
    }

    /// The root the entry's chain ends at (`ca.pem`).
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The entry's key; `pass` is asked only if the key file is encrypted (certmesh writes
    /// issued keys unencrypted, but an operator may have changed that).
    pub fn read_key(&self, pass: PassPrompt<'_>) -> Result<PrivateKey> {
        let path = self.key_path();
        let data = zeroize::Zeroizing::new(crate::fsio::read(&path)?);
        read_private_key(&path, &data, pass)
    }

    /// The certificate and the CAs above it (DER, leaf first): `cert.pem`, then the
    /// certificates of `chain.pem` not already there (a missing `chain.pem` is an empty
    /// chain).
    pub fn read_chain(&self) -> Result<Vec<Vec<u8>>> {
        let mut certs = crate::x509::read_certs(&self.cert_path())?;
        let chain = self.chain_path();
        if chain.exists() {
            for c in crate::x509::read_certs(&chain)? {
                if !certs.contains(&c) {
                    certs.push(c);
                }
            }
        }
        Ok(certs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn names_stay_inside_issued() {
        let home = Path::new("/srv/pki");
        let e = IssuedEntry::at(home, "node1").unwrap();
        assert_eq!(e.dir, Path::new("/srv/pki/issued/node1"));
        assert_eq!(e.chain_path(), Path::new("/srv/pki/issued/node1/chain.pem"));
        for bad in ["../ca", "a/b", "", ".hidden", "x y"] {
            assert!(
                matches!(IssuedEntry::at(home, bad), Err(Error::Usage(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn chain_is_leaf_first_without_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let e = IssuedEntry::at(dir.path(), "n").unwrap();
        assert!(!e.exists());
        std::fs::create_dir_all(&e.dir).unwrap();
        let pem = |cn: &str| crate::cert::testing::self_signed(cn).pem();
        let (leaf, ca) = (pem("leaf"), pem("ca"));
        std::fs::write(e.cert_path(), &leaf).unwrap();
        // chain.pem missing: the leaf alone.
        assert_eq!(e.read_chain().unwrap().len(), 1);
        std::fs::write(e.chain_path(), format!("{ca}{leaf}")).unwrap();
        let chain = e.read_chain().unwrap();
        assert_eq!(chain.len(), 2);
        assert_eq!(
            chain[0],
            crate::x509::read_certs(&e.cert_path()).unwrap()[0]
        );
        assert!(e.exists());
    }
}
