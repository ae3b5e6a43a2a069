//! The library's error type.
//!
//! Every variant renders as one line that names the file (where there is one) and the
//! problem, because the CLI prints `Display` as-is: no debug dumps reach the operator.

use std::path::{Path, PathBuf};

/// Errors returned by the certmesh library. New kinds of failure may be added, so callers
/// match with a catch-all arm. What an error means to a process (its exit code) is the
/// CLI's decision, not the library's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed at the operating-system level.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file exists but its content is not what was expected.
    #[error("{}: {problem}", path.display())]
    BadFile { path: PathBuf, problem: String },
    /// The request is understood but refused (weak algorithm, would overwrite, outside
    /// name constraints, ...).
    #[error("{0}")]
    Refused(String),
    /// The command line asked for something that does not exist (bad duration, unknown
    /// store type, ...).
    #[error("{0}")]
    Usage(String),
    /// A secret (passphrase, PIN) could not be obtained, or a token refused its PIN. A
    /// wrong passphrase for a file is [`Error::WrongPassphrase`].
    #[error("{0}")]
    Secret(String),
    /// Another process holds a lock certmesh needs (the CA store's, a keystore being
    /// changed), or keeps replacing the file. Nothing was changed, and the same request
    /// succeeds once the other run is done: a caller retries later (the CLI exits 75,
    /// EX_TEMPFAIL, so cron retries quietly) instead of reporting a fault.
    #[error("{}: {holder}; try again later", path.display())]
    Locked { path: PathBuf, holder: LockHolder },
    /// The passphrase or password given for an encrypted file (a private key, a PKCS#12
    /// file, a Java keystore) does not open it. A caller can ask for it again, which it
    /// must not do for a damaged file. Most formats cannot tell a wrong password from
    /// damage for certain; `problem` says what was seen.
    #[error("{}: {problem}", path.display())]
    WrongPassphrase { path: PathBuf, problem: String },
    /// A private key is not the one a certificate was issued for: their public keys
    /// differ. Pairing them would give a server that cannot complete a handshake, so the
    /// request stopped; a caller can look for the right key (or certificate) instead.
    /// `path` is the file the message names first (the key's, or the certificate's or
    /// keystore's when the key came from elsewhere), `None` for a key in a token or in
    /// memory.
    #[error("{}{problem}", prefix(path))]
    KeyMismatch {
        path: Option<PathBuf>,
        problem: String,
    },
    /// The keystore at `path` already has an entry under `alias` (compared ignoring case,
    /// as Java does), and the request would not replace it. A caller can pick another
    /// alias or ask for the replacement explicitly.
    #[error("{}: alias '{alias}' {problem}", path.display())]
    AliasExists {
        path: PathBuf,
        alias: String,
        problem: String,
    },
    /// A file certmesh was told not to overwrite is there already. Nothing was written;
    /// a caller choosing a free name (a backup's) tries the next one.
    #[error("{}: already exists, not overwritten", path.display())]
    Exists { path: PathBuf },
    /// A key-type name (`--type`, a manifest's `key`) that names no algorithm certmesh
    /// generates; `expected` lists the names it knows. A usage error, not a fault.
    #[error("unknown key type '{name}': expected one of {expected}")]
    UnknownKeyType {
        name: String,
        expected: &'static str,
    },
    /// Certificate or key generation failed inside the crypto provider.
    #[error("{0}")]
    Crypto(String),
}

/// What holds a file certmesh wanted for itself (see [`Error::Locked`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockHolder {
    /// Another certmesh run holds the CA store's lock.
    StoreRun,
    /// Another certmesh run is changing this keystore or truststore.
    KeystoreEdit,
    /// Another program replaced the file each time it was opened.
    Replacing,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LockHolder::StoreRun => "another certmesh run holds the lock",
            LockHolder::KeystoreEdit => "another certmesh run is changing this keystore",
            LockHolder::Replacing => "the file keeps being replaced by another program",
        })
    }
}

/// `PATH: ` before a message about a file, nothing when there is none.
fn prefix(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| format!("{}: ", p.display()))
        .unwrap_or_default()
}

/// A value quoted in an error message, cut to its first 64 characters: a hostile input
/// (a 50 MB name) must not become a 50 MB error line.
pub fn shorten(s: &str) -> std::borrow::Cow<'_, str> {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}... ({} bytes)", &s[..i], s.len()).into(),
        None => s.into(),
    }
}

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// A file whose content is wrong.
    pub fn bad_file(path: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        Error::BadFile {
            path: path.as_ref().to_path_buf(),
            problem: problem.into(),
        }
    }
}

impl From<rcgen::Error> for Error {
    fn from(e: rcgen::Error) -> Self {
        if let rcgen::Error::RemoteKeyError = e {
            if let Some(why) = REMOTE_SIGNER_ERROR.with(|w| w.take()) {
                return Error::Crypto(why);
            }
        }
        Error::Crypto(format!("certificate generation failed: {e}"))
    }
}

thread_local! {
    /// Why a signing key outside the process (a PKCS#11 token) refused to sign. rcgen's
    /// signing-key trait can only say "remote key error"; the key leaves its reason
    /// here, on the signing thread, for the conversion above to report.
    static REMOTE_SIGNER_ERROR: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Records why a remote signing key failed (see [`REMOTE_SIGNER_ERROR`]).
pub(crate) fn set_remote_signer_error(why: String) {
    REMOTE_SIGNER_ERROR.with(|w| *w.borrow_mut() = Some(why));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each typed variant prints the one line the CLI has always printed for it.
    #[test]
    fn typed_variants_print_the_messages_operators_know() {
        let cases = [
            (
                Error::Locked {
                    path: "/ca/.lock".into(),
                    holder: LockHolder::StoreRun,
                },
                "/ca/.lock: another certmesh run holds the lock; try again later",
            ),
            (
                Error::Locked {
                    path: "t.jks".into(),
                    holder: LockHolder::KeystoreEdit,
                },
                "t.jks: another certmesh run is changing this keystore; try again later",
            ),
            (
                Error::Locked {
                    path: "t.jks".into(),
                    holder: LockHolder::Replacing,
                },
                "t.jks: the file keeps being replaced by another program; try again later",
            ),
            (
                Error::WrongPassphrase {
                    path: "k.pem".into(),
                    problem: "wrong passphrase (legacy PEM AES-128-CBC: ...)".into(),
                },
                "k.pem: wrong passphrase (legacy PEM AES-128-CBC: ...)",
            ),
            (
                Error::KeyMismatch {
                    path: Some("n.key".into()),
                    problem: "does not match n.crt; not renewing".into(),
                },
                "n.key: does not match n.crt; not renewing",
            ),
            (
                Error::KeyMismatch {
                    path: None,
                    problem: "the private key does not match the certificate".into(),
                },
                "the private key does not match the certificate",
            ),
            (
                Error::AliasExists {
                    path: "trust.jks".into(),
                    alias: "ca".into(),
                    problem: "already holds a different certificate; add --replace to replace it"
                        .into(),
                },
                "trust.jks: alias 'ca' already holds a different certificate; add --replace to replace it",
            ),
            (
                Error::Exists {
                    path: "n.crt".into(),
                },
                "n.crt: already exists, not overwritten",
            ),
            (
                Error::UnknownKeyType {
                    name: "dsa".into(),
                    expected: "p256, rsa2048",
                },
                "unknown key type 'dsa': expected one of p256, rsa2048",
            ),
        ];
        for (e, line) in cases {
            assert_eq!(e.to_string(), line, "{e:?}");
        }
    }
}
