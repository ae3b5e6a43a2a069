//! IBM GSKit password stash files (`.sth`), version 1, as IBM HTTP Server reads them
//! beside a keystore so it can open the store at start-up without an operator.
//!
//! The format is obfuscation, not encryption: the password bytes, a NUL, random non-zero
//! padding up to 129 bytes, every byte XORed with 0xF5. Anyone who can read the stash can
//! recover the password, which is why it is written with mode 0600.

use zeroize::Zeroizing;

use crate::pass::Secret;
use crate::{Error, Result};

/// Total size of a version-1 stash file.
pub const STASH_LEN: usize = 129;
const MASK: u8 = 0xf5;

/// Encodes `pass` as a version-1 stash file.
pub fn encode(pass: &Secret) -> Result<Zeroizing<Vec<u8>>> {
    let p = pass.as_bytes();
    if p.len() >= STASH_LEN {
        return Err(Error::Refused(format!(
            "a GSKit stash holds passwords of at most {} bytes",
            STASH_LEN - 1
        )));
    }
    if p.contains(&0) {
        return Err(Error::Refused(
            "a password with a NUL byte cannot be stashed".into(),
        ));
    }
    let mut out = Zeroizing::new(vec![0u8; STASH_LEN]);
    out[..p.len()].copy_from_slice(p);
    let pad = &mut out[p.len() + 1..];
    aws_lc_rs::rand::fill(pad).map_err(|_| Error::Crypto("no randomness".into()))?;
    for b in pad.iter_mut() {
        if *b == 0 {
            *b = 1;
        }
    }
    for b in out.iter_mut() {
        *b ^= MASK;
    }
    Ok(out)
}

/// Recovers the password from a version-1 stash file (bytes up to the first NUL).
pub fn decode(data: &[u8]) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(
        data.iter()
            .map(|b| b ^ MASK)
            .take_while(|b| *b != 0)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let s = encode(&Secret::new("WebAS".into())).unwrap();
        assert_eq!(s.len(), STASH_LEN);
        assert_eq!(&decode(&s)[..], b"WebAS");
        assert!(s[6..].iter().all(|b| *b != MASK), "padding is non-zero");
        assert!(encode(&Secret::new("x".repeat(129))).is_err());
    }
}
