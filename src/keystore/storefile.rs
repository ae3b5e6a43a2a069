//! Writing a keystore back over itself.
//!
//! A truststore is often shared by a service that runs as another user (Debian's
//! `cacerts`, a product's `client-truststore.jks`), so the replacement keeps the old
//! file's mode and owner, set on the temporary file before it is renamed into place: the
//! service never sees a file it cannot read. The previous content is kept beside it as
//! `FILE.bak-<UTC timestamp>` with the same mode, because a keystore edited by mistake
//! cannot be rebuilt from anything else. A symbolic link is followed, so the file it
//! points to is replaced and the link stays.

use std::fs::{self, File, Permissions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::fsio::{self, Overwrite};
use crate::{Error, Result};

/// An existing keystore file: where it really is, its bytes, and its mode and owner.
pub struct StoreFile {
    /// The path to write (symbolic links resolved).
    pub path: PathBuf,
    pub data: Vec<u8>,
    mode: u32,
    uid: u32,
    gid: u32,
    /// The open file, holding an exclusive `flock` when opened for update.
    _file: File,
}

impl StoreFile {
    /// Reads `path`, following symbolic links, without locking it.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_inner(path, false)
    }

    /// Reads `path` for a change: an exclusive lock on the file is held until this value
    /// is dropped, so two certmesh runs editing one truststore (cron and an operator) do
    /// not lose each other's entries. A second run fails at once with exit code 75.
    pub fn open_for_update(path: &Path) -> Result<Self> {
        Self::open_inner(path, true)
    }

    fn open_inner(path: &Path, lock: bool) -> Result<Self> {
        use fs4::fs_std::FileExt;
        // The file we lock may be replaced (renamed over) by the run that held the lock
        // before us; then we lock and read the new one.
        for _ in 0..10 {
            let real = fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
            let mut file = File::open(&real).map_err(|e| Error::io(path, e))?;
            let meta = file.metadata().map_err(|e| Error::io(path, e))?;
            if !meta.is_file() {
                return Err(Error::bad_file(path, "not a regular file"));
            }
            if lock {
                match file.try_lock_exclusive() {
                    Ok(true) => {}
                    Ok(false) => {
                        return Err(Error::Locked(format!(
                            "{}: another certmesh run is changing this keystore; try again later",
                            path.display()
                        )))
                    }
                    Err(e) => return Err(Error::io(path, e)),
                }
                let now = fs::metadata(&real).map_err(|e| Error::io(path, e))?;
                if (now.dev(), now.ino()) != (meta.dev(), meta.ino()) {
                    continue;
                }
            }
            let mut data = Vec::with_capacity(meta.len().min(1 << 26) as usize);
            file.read_to_end(&mut data)
                .map_err(|e| Error::io(path, e))?;
            return Ok(StoreFile {
                path: real,
                data,
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
                _file: file,
            });
        }
        Err(Error::Locked(format!(
            "{}: the file keeps being replaced by another program; try again later",
            path.display()
        )))
    }

    /// The file's permission bits.
    pub fn mode(&self) -> u32 {
        self.mode
    }

    /// Takes away access for others from the replacement (not from the backup, which is
    /// the old content): a file that now holds a private key must not stay
    /// world-readable. Returns whether anything was taken away.
    pub fn restrict_others(&mut self) -> bool {
        let before = self.mode;
        self.mode &= !0o007;
        before != self.mode
    }

    /// Copies the current content to `FILE.bak-<UTC timestamp>` (same mode) and returns
    /// that path. Called only once the new content is ready, so a refused edit leaves no
    /// backup behind.
    pub fn backup(&self) -> Result<PathBuf> {
        let stamp = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .map_err(|e| Error::Crypto(format!("timestamp: {e}")))?;
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "keystore".into());
        for n in 1..100 {
            let suffix = if n == 1 {
                String::new()
            } else {
                format!("-{n}")
            };
            let b = self
                .path
                .with_file_name(format!("{name}.bak-{stamp}{suffix}"));
            match fsio::write_file(&b, &self.data, self.mode, Overwrite::Refuse) {
                Ok(()) => return Ok(b),
                Err(Error::Refused(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Refused(format!(
            "{}: too many backups made this second",
            self.path.display()
        )))
    }

    /// Atomically replaces the file with `bytes`, keeping its mode and owner.
    pub fn replace(&self, bytes: &[u8]) -> Result<()> {
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(".certmesh-")
            .suffix(".tmp")
            .permissions(Permissions::from_mode(self.mode))
            .tempfile_in(dir)
            .map_err(|e| Error::io(dir, e))?;
        let meta = tmp.as_file().metadata().map_err(|e| Error::io(dir, e))?;
        if meta.uid() != self.uid || meta.gid() != self.gid {
            std::os::unix::fs::fchown(tmp.as_file(), Some(self.uid), Some(self.gid)).map_err(
                |e| {
                    Error::Refused(format!(
                        "{}: cannot keep the file's owner {}:{} ({e}); run as that user or root",
                        self.path.display(),
                        self.uid,
                        self.gid
                    ))
                },
            )?;
            // chown may clear set-id bits; put the mode back.
            fs::set_permissions(tmp.path(), Permissions::from_mode(self.mode))
                .map_err(|e| Error::io(&self.path, e))?;
        }
        tmp.write_all(bytes).map_err(|e| Error::io(&self.path, e))?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| Error::io(&self.path, e))?;
        tmp.persist(&self.path)
            .map_err(|e| Error::io(&self.path, e.error))?;
        fsio::sync_dir(dir)
    }
}
