//! The CBC block ciphers that old and new key encryption schemes share (legacy OpenSSL
//! PEM and PKCS#12 PBE here; PBES2 goes through the `pkcs5` crate), with PKCS#7 padding
//! and plaintext kept in zeroizing buffers.

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{
    BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, KeyInit, KeyIvInit,
};
use zeroize::Zeroizing;

/// A CBC cipher by its OpenSSL name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CbcCipher {
    Des,
    DesEde2,
    DesEde3,
    Aes128,
    Aes192,
    Aes256,
}

/// Decryption produced bad PKCS#7 padding: with an intact file, the passphrase was wrong.
#[derive(Debug)]
pub(crate) struct BadPadding;

impl CbcCipher {
    /// The name OpenSSL uses (`DEK-Info`, `openssl enc -list`).
    pub fn name(self) -> &'static str {
        match self {
            CbcCipher::Des => "DES-CBC",
            CbcCipher::DesEde2 => "DES-EDE-CBC",
            CbcCipher::DesEde3 => "DES-EDE3-CBC",
            CbcCipher::Aes128 => "AES-128-CBC",
            CbcCipher::Aes192 => "AES-192-CBC",
            CbcCipher::Aes256 => "AES-256-CBC",
        }
    }

    /// Parses an OpenSSL cipher name, case-insensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        let n = name.trim().to_ascii_uppercase();
        [
            CbcCipher::Des,
            CbcCipher::DesEde2,
            CbcCipher::DesEde3,
            CbcCipher::Aes128,
            CbcCipher::Aes192,
            CbcCipher::Aes256,
        ]
        .into_iter()
        .find(|c| c.name() == n)
    }

    pub fn key_len(self) -> usize {
        match self {
            CbcCipher::Des => 8,
            CbcCipher::DesEde2 | CbcCipher::Aes128 => 16,
            CbcCipher::DesEde3 | CbcCipher::Aes192 => 24,
            CbcCipher::Aes256 => 32,
        }
    }

    pub fn block_len(self) -> usize {
        match self {
            CbcCipher::Des | CbcCipher::DesEde2 | CbcCipher::DesEde3 => 8,
            _ => 16,
        }
    }

    /// Decrypts and unpads. Key and IV lengths must be [`key_len`](Self::key_len) and
    /// [`block_len`](Self::block_len); other lengths count as a padding failure.
    pub fn decrypt(
        self,
        key: &[u8],
        iv: &[u8],
        ct: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BadPadding> {
        match self {
            CbcCipher::Des => decrypt::<des::Des>(key, iv, ct),
            CbcCipher::DesEde2 => decrypt::<des::TdesEde2>(key, iv, ct),
            CbcCipher::DesEde3 => decrypt::<des::TdesEde3>(key, iv, ct),
            CbcCipher::Aes128 => decrypt::<aes::Aes128>(key, iv, ct),
            CbcCipher::Aes192 => decrypt::<aes::Aes192>(key, iv, ct),
            CbcCipher::Aes256 => decrypt::<aes::Aes256>(key, iv, ct),
        }
    }

    /// Pads and encrypts. Returns `None` only for wrong key or IV lengths (a bug).
    pub fn encrypt(self, key: &[u8], iv: &[u8], pt: &[u8]) -> Option<Vec<u8>> {
        match self {
            CbcCipher::Des => encrypt::<des::Des>(key, iv, pt),
            CbcCipher::DesEde2 => encrypt::<des::TdesEde2>(key, iv, pt),
            CbcCipher::DesEde3 => encrypt::<des::TdesEde3>(key, iv, pt),
            CbcCipher::Aes128 => encrypt::<aes::Aes128>(key, iv, pt),
            CbcCipher::Aes192 => encrypt::<aes::Aes192>(key, iv, pt),
            CbcCipher::Aes256 => encrypt::<aes::Aes256>(key, iv, pt),
        }
    }
}

fn decrypt<C>(key: &[u8], iv: &[u8], ct: &[u8]) -> Result<Zeroizing<Vec<u8>>, BadPadding>
where
    C: BlockCipherDecrypt + KeyInit,
{
    let dec = cbc::Decryptor::<C>::new_from_slices(key, iv).map_err(|_| BadPadding)?;
    let mut buf = Zeroizing::new(ct.to_vec());
    let n = dec
        .decrypt_padded::<Pkcs7>(&mut buf)
        .map_err(|_| BadPadding)?
        .len();
    buf.truncate(n);
    Ok(buf)
}

fn encrypt<C>(key: &[u8], iv: &[u8], pt: &[u8]) -> Option<Vec<u8>>
where
    C: BlockCipherEncrypt + KeyInit,
{
    let enc = cbc::Encryptor::<C>::new_from_slices(key, iv).ok()?;
    let block = C::block_size();
    let mut buf = Zeroizing::new(vec![0u8; pt.len() + block]);
    buf[..pt.len()].copy_from_slice(pt);
    let ct = enc.encrypt_padded::<Pkcs7>(&mut buf, pt.len()).ok()?;
    Some(ct.to_vec())
}

/// RC2-CBC decryption with `eff_bits` effective key bits (RFC 2268), for the 40- and
/// 128-bit RC2 PKCS#12 schemes older OpenSSL uses for certificates. The `rc2` crate gives
/// the block function; CBC and PKCS#7 unpadding are done here. `None` on bad padding.
pub(crate) fn rc2_decrypt(
    key: &[u8],
    eff_bits: usize,
    iv: &[u8],
    ct: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    use rc2::cipher::BlockCipherDecrypt;
    // The rc2 crate indexes its key table by these, so a hostile file's values must not
    // reach it out of range (RFC 2268: keys of 1 to 128 bytes, 1 to 1024 effective bits).
    if iv.len() != 8
        || ct.is_empty()
        || ct.len() % 8 != 0
        || !(1..=128).contains(&key.len())
        || !(1..=1024).contains(&eff_bits)
    {
        return None;
    }
    let cipher = rc2::Rc2::new_with_eff_key_len(key, eff_bits);
    let mut out = Zeroizing::new(Vec::with_capacity(ct.len()));
    let mut prev = [0u8; 8];
    prev.copy_from_slice(iv);
    for chunk in ct.chunks_exact(8) {
        let mut block = rc2::cipher::Block::<rc2::Rc2>::default();
        block.copy_from_slice(chunk);
        cipher.decrypt_block(&mut block);
        out.extend(block.iter().zip(prev.iter()).map(|(b, p)| b ^ p));
        prev.copy_from_slice(chunk);
    }
    let pad = usize::from(*out.last()?);
    if pad == 0
        || pad > 8
        || out[out.len() - pad..]
            .iter()
            .any(|b| usize::from(*b) != pad)
    {
        return None;
    }
    let n = out.len() - pad;
    out.truncate(n);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_key() {
        for c in [
            CbcCipher::Des,
            CbcCipher::DesEde3,
            CbcCipher::Aes128,
            CbcCipher::Aes256,
        ] {
            let key = vec![3u8; c.key_len()];
            let iv = vec![9u8; c.block_len()];
            let ct = c.encrypt(&key, &iv, b"secret key bytes").unwrap();
            assert_eq!(ct.len() % c.block_len(), 0);
            assert_eq!(
                c.decrypt(&key, &iv, &ct).unwrap().as_slice(),
                b"secret key bytes"
            );
            assert!(CbcCipher::from_name(&c.name().to_lowercase()) == Some(c));
        }
        // RC2 parameters out of RFC 2268's range are refused, not passed to the cipher.
        for (key_len, bits) in [(0, 40), (5, 0), (5, 1025), (129, 128), (16, usize::MAX)] {
            assert!(rc2_decrypt(&vec![1; key_len], bits, &[0; 8], &[0; 16]).is_none());
        }
        // A wrong key almost always breaks the padding; try a few to make that certain.
        let c = CbcCipher::Aes256;
        let ct = c.encrypt(&[1; 32], &[0; 16], b"x").unwrap();
        let failures = (2u8..20)
            .filter(|k| c.decrypt(&[*k; 32], &[0; 16], &ct).is_err())
            .count();
        assert!(failures >= 15);
    }
}
