//! The password-based key derivations of the PKCS#12 files certmesh writes, in one place.
//!
//! A derivation is the expensive part of writing a file (10,000 iterations each), and the
//! format needs one for the MAC and one per distinct bag salt: PBES2 bags in one file
//! share theirs (each has its own random IV), PKCS#12 PBE bags each need their own. The encoder derives
//! each key once and hands it on with the file, so the read-back check opens the bytes
//! with the same keys instead of deriving them again from the password. Every derivation
//! goes through [`derive`], and tests count its calls to hold that line.

use std::num::NonZeroU32;

use pkcs12::kdf::{derive_key_utf8, Pkcs12KeyType};
use zeroize::Zeroizing;

use crate::pass::Secret;
use crate::{Error, Result};

/// How an encrypted bag is protected: one per [`Compat`](super::Compat) mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BagCipher {
    /// PBES2: PBKDF2-HMAC-SHA256 over the UTF-8 password, AES-256-CBC with a random IV.
    Pbes2Aes256,
    /// pbeWithSHAAnd3-KeyTripleDES-CBC: key and IV both come from the PKCS#12 KDF
    /// (RFC 7292 Appendix B) with SHA-1 over the BMPString password.
    PbeSha1Des3,
}

impl BagCipher {
    /// Salt length written: what p12-keystore wrote for certmesh before, so files keep
    /// their shape.
    pub fn salt_len(self) -> usize {
        match self {
            BagCipher::Pbes2Aes256 => 32,
            BagCipher::PbeSha1Des3 => 20,
        }
    }
}

/// The digest of the PKCS#12 MAC (HMAC keyed with the PKCS#12 KDF, RFC 7292 Appendix B).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MacDigest {
    Sha256,
    Sha1,
}

impl MacDigest {
    /// Length of the HMAC key and of the MAC itself.
    pub fn len(self) -> usize {
        match self {
            MacDigest::Sha256 => 32,
            MacDigest::Sha1 => 20,
        }
    }

    /// The digest's identifier in `MacData`.
    pub fn oid(self) -> der::asn1::ObjectIdentifier {
        match self {
            MacDigest::Sha256 => super::oids::SHA256,
            MacDigest::Sha1 => super::oids::SHA1,
        }
    }

    pub fn hmac(self) -> aws_lc_rs::hmac::Algorithm {
        match self {
            MacDigest::Sha256 => aws_lc_rs::hmac::HMAC_SHA256,
            MacDigest::Sha1 => aws_lc_rs::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        }
    }
}

/// Salt length of the MAC: what p12-keystore and OpenSSL write.
pub(crate) const MAC_SALT_LEN: usize = 8;

/// The key one encrypted bag was sealed with, and the parameters it was derived from, which
/// are also written into the bag's AlgorithmIdentifier.
#[derive(Clone)]
pub(crate) struct BagKey {
    pub cipher: BagCipher,
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub key: Zeroizing<Vec<u8>>,
    /// The IV for PKCS#12 PBE, which derives it; PBES2 writes a random one in the file.
    pub derived_iv: Option<Zeroizing<Vec<u8>>>,
}

/// The MAC key, and the parameters it was derived from.
pub(crate) struct MacKey {
    pub digest: MacDigest,
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub key: Zeroizing<Vec<u8>>,
}

/// Every key derived for one file: what the read-back check needs to open it.
pub(crate) struct Secrets {
    pub mac: MacKey,
    pub bags: Vec<BagKey>,
}

/// What to derive.
enum Derivation {
    Bag(BagCipher),
    Mac(MacDigest),
}

impl BagKey {
    /// Derives the key for a new bag with a fresh random salt.
    pub fn derive(cipher: BagCipher, pass: &Secret, iterations: u32) -> Result<Self> {
        let salt = random(cipher.salt_len())?;
        let (key, derived_iv) = derive(Derivation::Bag(cipher), pass, &salt, iterations)?;
        Ok(BagKey {
            cipher,
            salt,
            iterations,
            key,
            derived_iv,
        })
    }
}

impl MacKey {
    /// Derives the MAC key for a new file with a fresh random salt.
    pub fn derive(digest: MacDigest, pass: &Secret, iterations: u32) -> Result<Self> {
        let salt = random(MAC_SALT_LEN)?;
        let (key, _) = derive(Derivation::Mac(digest), pass, &salt, iterations)?;
        Ok(MacKey {
            digest,
            salt,
            iterations,
            key,
        })
    }
}

/// Random bytes from the system generator, for salts and IVs.
pub(crate) fn random(len: usize) -> Result<Vec<u8>> {
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    let mut out = vec![0u8; len];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| Error::Crypto("no randomness".into()))?;
    Ok(out)
}

type KeyAndIv = (Zeroizing<Vec<u8>>, Option<Zeroizing<Vec<u8>>>);

/// The one place a key is derived from the password. PKCS#12 PBE needs two runs of its KDF
/// (diversifier 1 for the key, 2 for the IV): the format defines them as one derivation
/// of a bag's secrets, and they are counted as one.
fn derive(what: Derivation, pass: &Secret, salt: &[u8], iterations: u32) -> Result<KeyAndIv> {
    #[cfg(test)]
    counter::bump();
    let rounds = NonZeroU32::new(iterations)
        .filter(|n| i32::try_from(n.get()).is_ok())
        .ok_or_else(|| Error::Crypto(format!("{iterations} is not a usable iteration count")))?;
    let pkcs12 = |kind, len, sha256: bool| -> Result<Zeroizing<Vec<u8>>> {
        // Checked above: the count fits an i32, as the pkcs12 crate takes it.
        let r = rounds.get() as i32;
        let out = if sha256 {
            derive_key_utf8::<sha2::Sha256>(pass.expose(), salt, kind, r, len)
        } else {
            derive_key_utf8::<sha1::Sha1>(pass.expose(), salt, kind, r, len)
        };
        out.map(Zeroizing::new).map_err(|_| {
            Error::Crypto("the password cannot be encoded as a BMPString for PKCS#12".into())
        })
    };
    match what {
        Derivation::Bag(BagCipher::Pbes2Aes256) => {
            let mut key = Zeroizing::new(vec![0u8; 32]);
            aws_lc_rs::pbkdf2::derive(
                aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
                rounds,
                salt,
                pass.as_bytes(),
                &mut key,
            );
            Ok((key, None))
        }
        Derivation::Bag(BagCipher::PbeSha1Des3) => {
            let key = pkcs12(Pkcs12KeyType::EncryptionKey, 24, false)?;
            let iv = pkcs12(Pkcs12KeyType::Iv, 8, false)?;
            Ok((key, Some(iv)))
        }
        Derivation::Mac(digest) => Ok((
            pkcs12(
                Pkcs12KeyType::Mac,
                digest.len(),
                digest == MacDigest::Sha256,
            )?,
            None,
        )),
    }
}

/// How many derivations this thread has run, for tests that hold the count to what the
/// format needs. Per thread, because the test harness runs tests in parallel.
#[cfg(test)]
pub(crate) mod counter {
    use std::cell::Cell;

    thread_local! {
        static DERIVATIONS: Cell<usize> = const { Cell::new(0) };
    }

    pub(super) fn bump() {
        DERIVATIONS.with(|c| c.set(c.get() + 1));
    }

    /// Derivations run on this thread so far.
    pub fn derivations() -> usize {
        DERIVATIONS.with(Cell::get)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_of(b: &[u8]) -> String {
        hex::encode(b)
    }

    /// Known answers from OpenSSL 3: `openssl kdf -keylen N -kdfopt digest:D -kdfopt
    /// hexsalt:0001020304050607 -kdfopt iter:2048` with `-kdfopt pass:pw PBKDF2`, or with
    /// `-kdfopt hexpass:007000770000 -kdfopt id:I PKCS12KDF` (OpenSSL's KDF takes the
    /// password already as a NUL-terminated BMPString).
    #[test]
    fn derivations_match_openssl() {
        let pass = Secret::new("pw".into());
        let salt = [0u8, 1, 2, 3, 4, 5, 6, 7];
        let (mac1, _) = derive(Derivation::Mac(MacDigest::Sha1), &pass, &salt, 2048).unwrap();
        assert_eq!(hex_of(&mac1), "83f6c88bb7fb270e066c50f5adce0fc23892bcff");
        let (mac256, _) = derive(Derivation::Mac(MacDigest::Sha256), &pass, &salt, 2048).unwrap();
        assert_eq!(
            hex_of(&mac256),
            "6cef9b24243061557163e0ae9a6c1a575b190d0e2fae1a0bc65e80dce9e78eed"
        );
        let (aes, none) =
            derive(Derivation::Bag(BagCipher::Pbes2Aes256), &pass, &salt, 2048).unwrap();
        assert!(none.is_none());
        assert_eq!(
            hex_of(&aes),
            "9ec60ccdf6481f9659022af983f7bfd675af1a51bb53cd1144a772a44e3ed301"
        );
        let (des, iv) =
            derive(Derivation::Bag(BagCipher::PbeSha1Des3), &pass, &salt, 2048).unwrap();
        assert_eq!(
            hex_of(&des),
            "07cc13c62ba55338321fddcf0c5949c3a081259d8159cbe9"
        );
        assert_eq!(hex_of(&iv.unwrap()), "2c7bdd62060d396d");
    }

    #[test]
    fn each_scheme_yields_its_lengths_and_is_counted_once() {
        let pass = Secret::new("pw".into());
        let before = counter::derivations();
        let a = BagKey::derive(BagCipher::Pbes2Aes256, &pass, 1000).unwrap();
        assert_eq!((a.key.len(), a.salt.len()), (32, 32));
        assert!(a.derived_iv.is_none());
        let b = BagKey::derive(BagCipher::PbeSha1Des3, &pass, 1000).unwrap();
        assert_eq!((b.key.len(), b.salt.len()), (24, 20));
        assert_eq!(b.derived_iv.as_ref().map(|v| v.len()), Some(8));
        let m = MacKey::derive(MacDigest::Sha256, &pass, 1000).unwrap();
        assert_eq!((m.key.len(), m.salt.len()), (32, 8));
        assert_eq!(counter::derivations() - before, 3);
        assert!(BagKey::derive(BagCipher::Pbes2Aes256, &pass, 0).is_err());
    }
}
