//! Writing a keystore back over itself.
//!
//! A truststore is often shared by a service that runs as another user (Debian's
//! `cacerts`, a product's `client-truststore.jks`), so the replacement keeps the old
//! file's mode and owner, set on the temporary file before it is renamed into place: the
//! service never sees a file it cannot read. The previous content is kept beside it as
//! `FILE.bak-<UTC timestamp>` (a hard link to the old file, so the same mode), because a
//! keystore edited by mistake cannot be rebuilt from anything else. A symbolic link is followed, so the file it
//! points to is replaced and the link stays.

use std::fs::{self, File, Permissions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::fsio::{self, Overwrite};
use crate::{Error, LockHolder, Result};

/// An existing keystore file: where it really is, its bytes, and its mode and owner.
pub struct StoreFile {
    /// The path to write (symbolic links resolved).
    pub path: PathBuf,
    pub data: Vec<u8>,
    mode: u32,
    uid: u32,
    gid: u32,
    /// Device and inode of the file that was read, to check the backup links that one.
    id: (u64, u64),
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
                        return Err(Error::Locked {
                            path: path.to_path_buf(),
                            holder: LockHolder::KeystoreEdit,
                        })
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
                id: (meta.dev(), meta.ino()),
                _file: file,
            });
        }
        Err(Error::Locked {
            path: path.to_path_buf(),
            holder: LockHolder::Replacing,
        })
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

    /// Atomically replaces the file with `bytes`, keeping its mode and owner, and keeps
    /// the previous content as `FILE.bak-<UTC timestamp>` (returned).
    ///
    /// The new content is written and synced first, so an edit refused on the way (an
    /// owner that cannot be kept, a full disk) leaves no backup behind. The backup is then
    /// a hard link to the old file, which is never written again (every change renames a
    /// new file over the name): no copy of the data, and one directory sync commits both
    /// the backup and the replacement. Where the filesystem has no hard links, the old
    /// content is copied instead.
    pub fn replace_keeping_backup(&self, bytes: &[u8]) -> Result<PathBuf> {
        let dir = fsio::parent_dir(&self.path);
        let mut tmp = fsio::temp_file(dir, self.mode)?;
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
        let backup = self.keep_backup()?;
        tmp.persist(&self.path)
            .map_err(|e| Error::io(&self.path, e.error))?;
        fsio::sync_dir(dir)?;
        Ok(backup)
    }

    /// Keeps the current file as a backup (as [`StoreFile::replace_keeping_backup`] does)
    /// and puts a new file with `bytes` in its place: created by this process with `mode`,
    /// so it has certmesh's owner and mode, not the old file's, and renamed into place.
    pub fn replace_with_new_file(&self, bytes: &[u8], mode: u32) -> Result<PathBuf> {
        let backup = self.keep_backup()?;
        fsio::write_file(&self.path, bytes, mode, Overwrite::Replace)?;
        Ok(backup)
    }

    /// Gives the current file a second name, `FILE.bak-<UTC timestamp>[-N]`.
    fn keep_backup(&self) -> Result<PathBuf> {
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
            let kept = match fs::hard_link(&self.path, &b) {
                Ok(()) if self.links_what_was_read(&b) => Ok(()),
                // Another program replaced the file after it was read: keep what was read.
                Ok(()) => fs::remove_file(&b)
                    .map_err(|e| Error::io(&b, e))
                    .and_then(|()| fsio::write_file(&b, &self.data, self.mode, Overwrite::Refuse)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                // No hard links here (some network and FUSE filesystems): copy.
                Err(_) => fsio::write_file(&b, &self.data, self.mode, Overwrite::Refuse),
            };
            match kept {
                Ok(()) => return Ok(b),
                Err(Error::Exists { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Refused(format!(
            "{}: too many backups made this second",
            self.path.display()
        )))
    }

    fn links_what_was_read(&self, backup: &Path) -> bool {
        fs::metadata(backup).is_ok_and(|m| (m.dev(), m.ino()) == self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path, content: &[u8], mode: u32) -> PathBuf {
        let p = dir.join("cacerts");
        fs::write(&p, content).unwrap();
        fs::set_permissions(&p, Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn backup_is_the_old_file_itself_and_the_new_one_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = store(dir.path(), b"old", 0o640);
        let old_ino = fs::metadata(&p).unwrap().ino();
        let f = StoreFile::open_for_update(&p).unwrap();
        let b = f.replace_keeping_backup(b"new").unwrap();
        drop(f);
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(fs::read(&b).unwrap(), b"old");
        let (new, bak) = (fs::metadata(&p).unwrap(), fs::metadata(&b).unwrap());
        assert_eq!(bak.ino(), old_ino, "the backup is a link to the old file");
        assert_ne!(new.ino(), old_ino);
        assert_eq!(new.mode() & 0o7777, 0o640);
        assert_eq!(bak.mode() & 0o7777, 0o640);
        let name = b.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("cacerts.bak-"), "{name}");
        // A second edit in the same second gets its own backup.
        let f = StoreFile::open_for_update(&p).unwrap();
        let b2 = f.replace_keeping_backup(b"newer").unwrap();
        assert_ne!(b, b2);
        assert_eq!(fs::read(&b2).unwrap(), b"new");
        assert_eq!(fs::read(&b).unwrap(), b"old");
    }

    #[test]
    fn a_second_edit_while_the_first_holds_the_file_is_locked_out() {
        let dir = tempfile::tempdir().unwrap();
        let p = store(dir.path(), b"old", 0o644);
        let first = StoreFile::open_for_update(&p).unwrap();
        let e = StoreFile::open_for_update(&p).err().unwrap();
        assert!(
            matches!(&e, Error::Locked { path, holder: LockHolder::KeystoreEdit } if *path == p),
            "{e:?}"
        );
        drop(first);
        StoreFile::open_for_update(&p).unwrap();
    }

    #[test]
    fn a_file_replaced_behind_our_back_is_not_what_gets_backed_up() {
        let dir = tempfile::tempdir().unwrap();
        let p = store(dir.path(), b"what we read", 0o644);
        let f = StoreFile::open_for_update(&p).unwrap();
        // Another program (not certmesh, so it ignores the lock) renames a file over it.
        let other = dir.path().join("other");
        fs::write(&other, b"someone else's").unwrap();
        fs::rename(&other, &p).unwrap();
        let b = f.replace_keeping_backup(b"ours").unwrap();
        assert_eq!(fs::read(&b).unwrap(), b"what we read");
        assert_eq!(fs::read(&p).unwrap(), b"ours");
    }
}
