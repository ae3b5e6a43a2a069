//! Passwords that product keystores need: taken from the manifest (`env:`/`file:`
//! sources), or generated once and kept 0600 in the member's directory so every later
//! run uses the same one (a new password would rewrite every keystore).

use std::path::Path;

use crate::fsio::{self, Overwrite, PRIVATE};
use crate::pass::{PassSource, Secret};
use crate::{Error, Result};

/// File in the member's directory that holds a generated password.
pub const PASSWORD_FILE: &str = "keystore.pass";

/// The member's keystore password: from `spec` when the manifest gives one, else the
/// generated one in `dir`, created on first use (unless `dry_run`).
pub fn member_password(spec: Option<&str>, dir: &Path, dry_run: bool) -> Result<Secret> {
    if let Some(spec) = spec {
        let s = spec.parse::<PassSource>()?.read()?;
        if s.as_bytes().is_empty() {
            return Err(Error::Secret(format!(
                "the keystore password from {spec} is empty"
            )));
        }
        return Ok(s);
    }
    let path = dir.join(PASSWORD_FILE);
    match std::fs::read_to_string(&path).map(zeroize::Zeroizing::new) {
        Ok(text) => {
            let line = text.lines().next().unwrap_or("").to_string();
            if line.is_empty() {
                return Err(Error::bad_file(&path, "empty password file"));
            }
            Ok(Secret::new(line))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let s = generate()?;
            if !dry_run {
                fsio::create_dir(dir, fsio::PRIVATE_DIR)?;
                fsio::write_file(
                    &path,
                    format!("{}\n", s.expose()).as_bytes(),
                    PRIVATE,
                    Overwrite::Refuse,
                )?;
            }
            Ok(s)
        }
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// 24 characters from an alphabet without look-alikes: about 137 bits, and safe in every
/// configuration file syntax a product uses.
pub fn generate() -> Result<Secret> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut out = String::with_capacity(24);
    while out.len() < 24 {
        let mut b = [0u8; 32];
        aws_lc_rs::rand::fill(&mut b).map_err(|_| Error::Crypto("no randomness".into()))?;
        for x in b {
            // Rejection sampling keeps every character equally likely.
            let limit = 256 - (256 % ALPHABET.len());
            if (x as usize) < limit && out.len() < 24 {
                out.push(ALPHABET[x as usize % ALPHABET.len()] as char);
            }
        }
    }
    Ok(Secret::new(out))
}

/// WebSphere Liberty's `{xor}` obfuscation for server.xml: every UTF-8 byte XOR 0x5F,
/// base64, prefixed with `{xor}`. Not encryption; it keeps passwords from being read at a
/// glance, as Liberty's own `securityUtility encode` does.
pub fn liberty_xor(pass: &Secret) -> String {
    use base64ct::{Base64, Encoding};
    let bytes: Vec<u8> = pass.as_bytes().iter().map(|b| b ^ 0x5F).collect();
    format!("{{xor}}{}", Base64::encode_string(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xor_matches_liberty() {
        // securityUtility encode "password" prints {xor}Lz4sLCgwLTs=
        assert_eq!(
            liberty_xor(&Secret::new("password".into())),
            "{xor}Lz4sLCgwLTs="
        );
    }

    #[test]
    fn generated_passwords_persist() {
        let dir = tempfile::tempdir().unwrap();
        let a = member_password(None, dir.path(), false).unwrap();
        let b = member_password(None, dir.path(), false).unwrap();
        assert_eq!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 24);
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(dir.path().join(PASSWORD_FILE))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(m, 0o600);
        assert_ne!(generate().unwrap().expose(), generate().unwrap().expose());
    }
}
