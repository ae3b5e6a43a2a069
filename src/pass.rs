//! Passphrase sources in openssl's `-passin` convention: `pass:TEXT`, `env:VAR`,
//! `file:PATH`, `fd:N` and `stdin`.
//!
//! Secrets are kept in [`Secret`], which wipes its memory when dropped. Prompting on a
//! terminal is the CLI's job; the library only resolves explicit sources.

use std::io::Read;
use std::path::PathBuf;
use std::str::FromStr;

use zeroize::Zeroizing;

use crate::{Error, Result};

/// A passphrase, wiped from memory on drop. Its `Debug` never shows the content.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a passphrase.
    pub fn new(s: String) -> Self {
        Secret(Zeroizing::new(s))
    }

    /// The passphrase's bytes, as key-derivation functions take them.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The passphrase as text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Refuses an empty passphrase for encrypting a private key: the key would be recorded
/// and shown as encrypted while anyone can open it. Every key encryption goes through
/// here, whatever the passphrase's source (option, manifest, file, variable, stdin).
pub fn check_key_passphrase(pass: &Secret) -> Result<()> {
    if pass.as_bytes().is_empty() {
        return Err(Error::Secret(
            "refusing to encrypt a key with an empty passphrase".into(),
        ));
    }
    Ok(())
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Where a passphrase comes from.
#[derive(Clone)]
pub enum PassSource {
    /// `pass:TEXT`: inline, visible in the process list; accepted with a warning.
    Inline(Secret),
    /// `env:VAR`
    Env(String),
    /// `file:PATH`: the first line of the file.
    File(PathBuf),
    /// `fd:N`: the first line read from an inherited file descriptor.
    Fd(u32),
    /// `stdin`: the first line of standard input.
    Stdin,
    /// `empty`: the empty password, said explicitly (keystores made with
    /// `keytool -storepass ''`, `openssl pkcs12 -passout pass:`). Accepted only where the
    /// caller allows it: store passwords, never passphrases that encrypt a key.
    Empty,
}

impl std::fmt::Debug for PassSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl FromStr for PassSource {
    type Err = Error;

    fn from_str(spec: &str) -> Result<Self> {
        if spec == "stdin" {
            return Ok(PassSource::Stdin);
        }
        if spec == "empty" {
            return Ok(PassSource::Empty);
        }
        let (kind, rest) = spec.split_once(':').ok_or_else(|| {
            Error::Usage(
                "invalid passphrase source: use pass:TEXT, env:VAR, file:PATH, fd:N or stdin"
                    .into(),
            )
        })?;
        match kind {
            "pass" => Ok(PassSource::Inline(Secret::new(rest.to_string()))),
            "env" if !rest.is_empty() => {
                crate::process::note_secret_var(rest);
                Ok(PassSource::Env(rest.to_string()))
            }
            "file" if !rest.is_empty() => Ok(PassSource::File(PathBuf::from(rest))),
            "fd" => rest.parse().map(PassSource::Fd).map_err(|_| {
                Error::Usage(format!("invalid passphrase source 'fd:{rest}': N must be a number"))
            }),
            _ => Err(Error::Usage(format!(
                "invalid passphrase source '{kind}:...': use pass:TEXT, env:VAR, file:PATH, fd:N or stdin"
            ))),
        }
    }
}

impl PassSource {
    /// True for `pass:TEXT`, which exposes the secret in the process list.
    pub fn is_inline(&self) -> bool {
        matches!(self, PassSource::Inline(_))
    }

    /// A description that never contains the secret itself.
    pub fn describe(&self) -> String {
        match self {
            PassSource::Inline(_) => "pass:<hidden>".into(),
            PassSource::Env(v) => format!("env:{v}"),
            PassSource::File(p) => format!("file:{}", p.display()),
            PassSource::Fd(n) => format!("fd:{n}"),
            PassSource::Stdin => "stdin".into(),
            PassSource::Empty => "empty".into(),
        }
    }

    /// Reads the passphrase. Only the first line of files, descriptors and standard
    /// input counts, without its line ending, as openssl does.
    pub fn read(&self) -> Result<Secret> {
        match self {
            PassSource::Inline(s) => Ok(s.clone()),
            PassSource::Env(var) => std::env::var(var).map(Secret::new).map_err(|_| {
                // `env:` followed by the passphrase itself is a common slip: the name is
                // shown only when it looks like a variable name (upper case, digits, '_').
                let conventional = var.len() <= 64
                    && !var.starts_with(|c: char| c.is_ascii_digit())
                    && var
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
                Error::Secret(if conventional {
                    format!("passphrase variable {var} is not set (or not UTF-8)")
                } else {
                    "the passphrase variable named after env: is not set (its name is not shown: it does not look like a variable name, and may be the passphrase itself)".into()
                })
            }),
            PassSource::File(path) => read_file(path),
            PassSource::Fd(n) => {
                // /dev/fd/N reopens the inherited descriptor without unsafe code.
                let path = PathBuf::from(format!("/dev/fd/{n}"));
                let f = std::fs::File::open(&path)
                    .map_err(|e| Error::Secret(format!("passphrase descriptor fd:{n}: {e}")))?;
                first_line(f)
                    .map_err(|e| Error::Secret(format!("passphrase descriptor fd:{n}: {e}")))
            }
            PassSource::Stdin => first_line(std::io::stdin().lock())
                .map_err(|e| Error::Secret(format!("passphrase from stdin: {e}"))),
            PassSource::Empty => Ok(Secret::new(String::new())),
        }
    }
}

/// The most a passphrase source is read: a passphrase is one line, and a hostile spec
/// (`file:/dev/zero`, `fd:` of an endless pipe) must end with an error, not fill memory.
pub const MAX_SOURCE_BYTES: u64 = 64 * 1024;

/// Reads the first line of a regular file of at most [`MAX_SOURCE_BYTES`]. Opened without
/// blocking, so a FIFO (or a device) is refused at once instead of hanging the run.
fn read_file(path: &std::path::Path) -> Result<Secret> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let meta = f.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::bad_file(
            path,
            "a passphrase file must be a regular file (not a device, FIFO or directory)",
        ));
    }
    if meta.len() > MAX_SOURCE_BYTES {
        return Err(Error::bad_file(
            path,
            format!(
                "{} bytes is too large for a passphrase file (at most {MAX_SOURCE_BYTES})",
                meta.len()
            ),
        ));
    }
    first_line(f).map_err(|e| Error::io(path, e))
}

/// Reads up to the first line end, one byte at a time into memory allocated once and
/// wiped on drop: a buffered reader would leave the passphrase (and whatever follows it)
/// in a buffer freed without wiping, and would consume input beyond the line.
fn first_line(mut r: impl Read) -> std::io::Result<Secret> {
    let too_long = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("no end of line within {MAX_SOURCE_BYTES} bytes"),
        )
    };
    let mut line = Zeroizing::new(Vec::with_capacity(MAX_SOURCE_BYTES as usize));
    let mut byte = Zeroizing::new([0u8; 1]);
    loop {
        match r.read(&mut byte[..]) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) if line.len() as u64 >= MAX_SOURCE_BYTES => return Err(too_long()),
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    if std::str::from_utf8(&line).is_err() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the passphrase is not UTF-8",
        ));
    }
    let text = String::from_utf8(std::mem::take(&mut *line)).expect("checked above");
    Ok(Secret::new(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert!(matches!(
            "pass:x".parse::<PassSource>().unwrap(),
            PassSource::Inline(_)
        ));
        assert!(matches!(
            "env:X".parse::<PassSource>().unwrap(),
            PassSource::Env(_)
        ));
        assert!(matches!(
            "file:/a".parse::<PassSource>().unwrap(),
            PassSource::File(_)
        ));
        assert!(matches!(
            "fd:3".parse::<PassSource>().unwrap(),
            PassSource::Fd(3)
        ));
        assert!(matches!(
            "stdin".parse::<PassSource>().unwrap(),
            PassSource::Stdin
        ));
        let empty = "empty".parse::<PassSource>().unwrap();
        assert!(matches!(empty, PassSource::Empty));
        assert_eq!(empty.read().unwrap().expose(), "");
        assert!("fd:x".parse::<PassSource>().is_err());
        assert!("secret".parse::<PassSource>().is_err());
        assert!("env:".parse::<PassSource>().is_err());
    }

    #[test]
    fn file_takes_first_line_and_debug_hides_secret() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\r\nsecond\n").unwrap();
        let s = PassSource::File(p).read().unwrap();
        assert_eq!(s.expose(), "s3cret");
        assert_eq!(format!("{s:?}"), "Secret(..)");
        let inline: PassSource = "pass:hunter2".parse().unwrap();
        assert!(!format!("{inline:?}").contains("hunter2"));
    }

    #[test]
    fn endless_input_is_an_error_and_reading_stops_at_the_line_end() {
        let err = first_line(std::io::repeat(0)).err().unwrap();
        assert!(err.to_string().contains("no end of line"), "{err}");
        let mut input: &[u8] = b"first\r\nsecond\n";
        assert_eq!(first_line(&mut input).unwrap().expose(), "first");
        assert_eq!(input, b"second\n", "nothing beyond the line is consumed");
    }
}
