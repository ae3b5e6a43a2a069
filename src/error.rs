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
    /// The command line asked for something that does not exist (unknown key type, bad
    /// duration, ...).
    #[error("{0}")]
    Usage(String),
    /// A secret (passphrase) could not be obtained or was wrong.
    #[error("{0}")]
    Secret(String),
    /// Another process holds the store's lock.
    #[error("{0}")]
    Locked(String),
    /// Certificate or key generation failed inside the crypto provider.
    #[error("{0}")]
    Crypto(String),
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
