//! OpenSSL's legacy ("traditional") PEM encryption: a `Proc-Type: 4,ENCRYPTED` header and
//! a `DEK-Info: CIPHER,IV` header on a PKCS#1 or SEC1 block.
//!
//! This is what OpenSSL 1.x `genrsa -des3` and OpenSSL 3 `-traditional` write, and what
//! some consumers still insist on. The key is derived with OpenSSL's `EVP_BytesToKey`:
//! MD5, one iteration, salt = the first 8 bytes of the IV. That derivation is weak (one
//! MD5 per guess), which is why certmesh only writes this form on request.

use md5::{Digest, Md5};
use zeroize::Zeroizing;

use super::cbc_cipher::{BadPadding, CbcCipher};
use crate::pass::Secret;

/// The parsed `DEK-Info` header.
#[derive(Debug, Clone)]
pub(crate) struct DekInfo {
    /// The cipher name as written in the file, e.g. `DES-EDE3-CBC`.
    pub cipher_name: String,
    /// The cipher, when certmesh implements it.
    pub cipher: Option<CbcCipher>,
    /// The IV, whose first 8 bytes are also the key-derivation salt.
    pub iv: Vec<u8>,
}

/// The ciphers certmesh decrypts in legacy PEM: what OpenSSL's `-des`, `-des3`, `-aes128`,
/// `-aes192` and `-aes256` write.
const READABLE: [CbcCipher; 5] = [
    CbcCipher::Des,
    CbcCipher::DesEde3,
    CbcCipher::Aes128,
    CbcCipher::Aes192,
    CbcCipher::Aes256,
];

impl DekInfo {
    /// Reads the legacy encryption headers of a PEM block. `Ok(None)` means the block is
    /// not legacy-encrypted; errors are one-line problem descriptions.
    pub fn from_headers(
        proc_type: Option<&str>,
        dek_info: Option<&str>,
    ) -> Result<Option<Self>, String> {
        let encrypted = proc_type.is_some_and(|p| {
            p.split(',')
                .any(|f| f.trim().eq_ignore_ascii_case("ENCRYPTED"))
        });
        if !encrypted {
            return match dek_info {
                Some(_) => Err(
                    "damaged legacy PEM: DEK-Info header without 'Proc-Type: 4,ENCRYPTED'".into(),
                ),
                None => Ok(None),
            };
        }
        let dek = dek_info
            .ok_or("damaged legacy PEM: 'Proc-Type: 4,ENCRYPTED' without a DEK-Info header")?;
        let (name, iv_hex) = dek
            .split_once(',')
            .ok_or_else(|| format!("damaged legacy PEM: DEK-Info '{}' has no IV", short(dek)))?;
        let cipher_name = name.trim().to_ascii_uppercase();
        let iv = hex::decode(iv_hex.trim())
            .map_err(|_| format!("damaged legacy PEM: DEK-Info IV for {cipher_name} is not hex"))?;
        let cipher = CbcCipher::from_name(&cipher_name).filter(|c| READABLE.contains(c));
        if let Some(c) = cipher {
            if iv.len() != c.block_len() {
                return Err(format!(
                    "damaged legacy PEM: DEK-Info IV for {cipher_name} is {} bytes, expected {}",
                    iv.len(),
                    c.block_len()
                ));
            }
        } else if iv.len() < 8 {
            return Err(format!(
                "damaged legacy PEM: DEK-Info IV for {cipher_name} is too short"
            ));
        }
        Ok(Some(DekInfo {
            cipher_name,
            cipher,
            iv,
        }))
    }

    /// Why this file cannot be decrypted, when it cannot.
    pub fn unsupported_reason(&self) -> Option<String> {
        match self.cipher {
            Some(_) => None,
            None => Some(format!(
                "legacy PEM cipher {} is not supported (certmesh reads DES-CBC, DES-EDE3-CBC and AES-128/192/256-CBC)",
                self.cipher_name
            )),
        }
    }

    /// Decrypts the block body to PKCS#1/SEC1 DER.
    pub fn decrypt(
        &self,
        pass: &Secret,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BadPadding> {
        let cipher = self.cipher.ok_or(BadPadding)?;
        let key = bytes_to_key(pass.as_bytes(), &self.iv[..8], cipher.key_len());
        cipher.decrypt(&key, &self.iv, ciphertext)
    }
}

/// Encrypts PKCS#1/SEC1 DER as OpenSSL's `PEM_write_*PrivateKey` does with a cipher: a
/// random IV, the key from [`bytes_to_key`]. Returns the `DEK-Info` value and the body.
pub(crate) fn encrypt(
    cipher: CbcCipher,
    pass: &Secret,
    der: &[u8],
) -> crate::Result<(String, Vec<u8>)> {
    crate::pass::check_key_passphrase(pass)?;
    let mut iv = vec![0u8; cipher.block_len()];
    aws_lc_rs::rand::fill(&mut iv).map_err(|_| crate::Error::Crypto("no randomness".into()))?;
    let key = bytes_to_key(pass.as_bytes(), &iv[..8], cipher.key_len());
    let body = cipher
        .encrypt(&key, &iv, der)
        .ok_or_else(|| crate::Error::Crypto(format!("{} encryption failed", cipher.name())))?;
    Ok((
        format!("{},{}", cipher.name(), hex::encode_upper(&iv)),
        body,
    ))
}

/// OpenSSL's `EVP_BytesToKey(cipher, EVP_md5(), salt, pass, count = 1)`, key part only:
/// `D_1 = MD5(pass || salt)`, `D_i = MD5(D_{i-1} || pass || salt)`, key = D_1 || D_2 ...
fn bytes_to_key(pass: &[u8], salt: &[u8], key_len: usize) -> Zeroizing<Vec<u8>> {
    let mut key = Zeroizing::new(Vec::with_capacity(key_len + 16));
    let mut prev: Option<Zeroizing<[u8; 16]>> = None;
    while key.len() < key_len {
        let mut h = Md5::new();
        if let Some(p) = &prev {
            h.update(p.as_slice());
        }
        h.update(pass);
        h.update(salt);
        let d = Zeroizing::new(<[u8; 16]>::from(h.finalize()));
        key.extend_from_slice(d.as_slice());
        prev = Some(d);
    }
    key.truncate(key_len);
    key
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_to_key_matches_openssl() {
        // From `openssl enc -aes-256-cbc -pass pass:secret -S 0102030405060708 -md md5 -P`.
        let key = bytes_to_key(b"secret", &[1, 2, 3, 4, 5, 6, 7, 8], 32);
        assert_eq!(
            hex::encode_upper(key.as_slice()),
            "C9E5A1BD216DBE1317E230CEF48F38EE7F0E17AD64022144BCCEC4A1AA2879AB"
        );
        let key = bytes_to_key(b"secret", &[1, 2, 3, 4, 5, 6, 7, 8], 24);
        assert_eq!(
            hex::encode_upper(key.as_slice()),
            "C9E5A1BD216DBE1317E230CEF48F38EE7F0E17AD64022144"
        );
    }

    #[test]
    fn headers_and_round_trip() {
        assert!(DekInfo::from_headers(None, None).unwrap().is_none());
        assert!(DekInfo::from_headers(Some("4,ENCRYPTED"), None).is_err());
        let dek = DekInfo::from_headers(
            Some("4,ENCRYPTED"),
            Some("CAMELLIA-256-CBC,00112233445566778899AABBCCDDEEFF"),
        )
        .unwrap()
        .unwrap();
        assert!(dek
            .unsupported_reason()
            .unwrap()
            .contains("CAMELLIA-256-CBC is not supported"));

        let pass = Secret::new("pw".into());
        let (info, body) = encrypt(CbcCipher::DesEde3, &pass, b"0123456789").unwrap();
        let dek = DekInfo::from_headers(Some("4,ENCRYPTED"), Some(&info))
            .unwrap()
            .unwrap();
        assert_eq!(dek.cipher, Some(CbcCipher::DesEde3));
        assert_eq!(dek.decrypt(&pass, &body).unwrap().as_slice(), b"0123456789");
    }
}
