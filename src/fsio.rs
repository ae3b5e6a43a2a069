//! Files on disk: atomic writes, private modes from the first byte, staged directories,
//! and the lock that keeps two runs from changing one store at once.
//!
//! A crash at any point leaves either the old file or the new one, never half of one:
//! content goes to a temporary file in the destination directory (created with its final
//! mode, so a private key is never readable by others even for a moment), is synced, and
//! is renamed over the destination; then the directory itself is synced so the rename
//! survives a power loss.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Mode for private keys and other secrets.
pub const PRIVATE: u32 = 0o600;
/// Mode for certificates and other public files.
pub const PUBLIC: u32 = 0o644;
/// Mode for directories that hold private material.
pub const PRIVATE_DIR: u32 = 0o700;

/// What to do when the destination already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// Fail with an error naming the file.
    Refuse,
    /// Replace it atomically.
    Replace,
}

/// Writes `bytes` to `path` atomically with permission bits `mode` set at creation.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32, overwrite: Overwrite) -> Result<()> {
    let dir = parent_dir(path);
    let mut tmp = temp_file(dir, mode)?;
    tmp.write_all(bytes).map_err(|e| Error::io(path, e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    match overwrite {
        Overwrite::Replace => {
            tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
        }
        Overwrite::Refuse => {
            tmp.persist_noclobber(path).map_err(|e| {
                if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                    Error::Exists {
                        path: path.to_path_buf(),
                    }
                } else {
                    Error::io(path, e.error)
                }
            })?;
        }
    }
    sync_dir(dir)?;
    crash_point();
    Ok(())
}

/// A new temporary file in `dir`, to be renamed over a file there: created with `mode`
/// from the first byte, and named `.certmesh-*.tmp` so a leftover is recognisable.
pub fn temp_file(dir: &Path, mode: u32) -> Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(".certmesh-")
        .suffix(".tmp")
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))
}

/// Creates `dir` and any missing parents; directories created here get `mode`.
pub fn create_dir(dir: &Path, mode: u32) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(|e| Error::io(dir, e))
}

/// Flushes a directory's entries (renames, creations) to disk.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// The directory `path` is in (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A directory assembled under a temporary name and moved into place in one rename, so
/// that a set of files (a key with its certificate and chains) appears all at once or not
/// at all.
pub struct StagedDir {
    staging: Option<tempfile::TempDir>,
    target: PathBuf,
}

impl StagedDir {
    /// Starts staging the directory that will become `target`.
    pub fn new(target: &Path) -> Result<Self> {
        let parent = parent_dir(target);
        create_dir(parent, PRIVATE_DIR)?;
        let staging = tempfile::Builder::new()
            .prefix(".certmesh-stage-")
            .permissions(Permissions::from_mode(PRIVATE_DIR))
            .tempdir_in(parent)
            .map_err(|e| Error::io(parent, e))?;
        Ok(StagedDir {
            staging: Some(staging),
            target: target.to_path_buf(),
        })
    }

    /// Path inside the staging directory for a file that will end up as `target/name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.staging_path().join(name)
    }

    fn staging_path(&self) -> &Path {
        self.staging
            .as_ref()
            .map(|t| t.path())
            .unwrap_or(&self.target)
    }

    /// Writes one file into the staged directory.
    pub fn write(&self, name: &str, bytes: &[u8], mode: u32) -> Result<()> {
        let path = self.path(name);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode_private(mode)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&path, e))?;
        f.sync_all().map_err(|e| Error::io(&path, e))
    }

    /// Moves the staged directory into place. An existing target is first moved to
    /// `backup` when one is given; without one, an existing target is an error.
    pub fn commit(mut self, backup: Option<&Path>) -> Result<PathBuf> {
        let staging = self
            .staging
            .take()
            .expect("staged directory committed twice");
        let parent = parent_dir(&self.target).to_path_buf();
        sync_dir(staging.path())?;
        if self.target.exists() {
            match backup {
                Some(b) => {
                    create_dir(parent_dir(b), PRIVATE_DIR)?;
                    fs::rename(&self.target, b).map_err(|e| Error::io(&self.target, e))?;
                    sync_dir(parent_dir(b))?;
                }
                None => {
                    return Err(Error::Exists {
                        path: self.target.clone(),
                    })
                }
            }
        }
        let staged = staging.keep();
        if let Err(e) = fs::rename(&staged, &self.target) {
            let _ = fs::remove_dir_all(&staged);
            return Err(Error::io(&self.target, e));
        }
        sync_dir(&parent)?;
        crash_point();
        Ok(self.target.clone())
    }
}

trait ModeExt {
    fn mode_private(&mut self, mode: u32) -> &mut Self;
}

impl ModeExt for OpenOptions {
    fn mode_private(&mut self, mode: u32) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, mode)
    }
}

/// An exclusive lock on a store or cluster, held until dropped.
///
/// The lock is an advisory `flock` on a file, so it disappears with the process that held
/// it: a killed run never leaves a stale lock behind, unlike a PID file.
pub struct StoreLock {
    _file: File,
}

impl StoreLock {
    /// Takes the lock at `path`, failing at once with [`Error::Locked`] when another
    /// process holds it, or waiting for it when `wait` is set.
    pub fn acquire(path: &Path, wait: bool) -> Result<Self> {
        use fs4::fs_std::FileExt;
        create_dir(parent_dir(path), PRIVATE_DIR)?;
        // O_NOFOLLOW: a symbolic link planted as `.lock` must not make us create or
        // lock a file elsewhere.
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode_private(PRIVATE)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        if wait {
            file.lock_exclusive().map_err(|e| Error::io(path, e))?;
        } else {
            match file.try_lock_exclusive() {
                Ok(true) => {}
                Ok(false) => {
                    return Err(Error::Locked {
                        path: path.to_path_buf(),
                        holder: crate::LockHolder::StoreRun,
                    })
                }
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        Ok(StoreLock { _file: file })
    }
}

/// Reads a whole file, naming it in the error.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| Error::io(path, e))
}

/// A new version of a whole directory, built beside it and swapped in with one atomic
/// `renameat2(RENAME_EXCHANGE)`, so readers (and a crash) see either every old file or
/// every new one. Unchanged files are hard-linked from the current version, keeping their
/// inodes and mtimes; certmesh never changes a file in place, so the link is safe.
pub struct DirSwap {
    target: PathBuf,
    stage: PathBuf,
}

impl DirSwap {
    fn stage_path(target: &Path) -> PathBuf {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        parent_dir(target).join(format!(".{name}.certmesh-new"))
    }

    /// Removes what an interrupted swap left behind: a stage is either incomplete (the
    /// swap never happened) or the old version (the swap happened); either way `target`
    /// is consistent and the stage can go.
    pub fn clean(target: &Path) -> Result<()> {
        let stage = Self::stage_path(target);
        if stage.exists() {
            fs::remove_dir_all(&stage).map_err(|e| Error::io(&stage, e))?;
        }
        Ok(())
    }

    /// The names of the directories in `parent` that an interrupted swap left a stage
    /// beside (what [`Self::clean`] removes), found with one listing rather than one
    /// lookup per directory; `None` when `parent` cannot be listed.
    pub fn leftovers(parent: &Path) -> Option<std::collections::BTreeSet<String>> {
        let mut names = std::collections::BTreeSet::new();
        for entry in fs::read_dir(parent).ok()? {
            let name = entry.ok()?.file_name();
            let target = name
                .to_str()
                .and_then(|n| n.strip_prefix('.'))
                .and_then(|n| n.strip_suffix(".certmesh-new"));
            if let Some(t) = target.filter(|t| !t.is_empty()) {
                names.insert(t.to_string());
            }
        }
        Some(names)
    }

    /// Starts a new version of `target`, holding links to its current files.
    pub fn begin(target: &Path) -> Result<Self> {
        Self::clean(target)?;
        let stage = Self::stage_path(target);
        create_dir(&stage, PRIVATE_DIR)?;
        if target.exists() {
            link_tree(target, &stage)?;
        }
        Ok(DirSwap {
            target: target.to_path_buf(),
            stage,
        })
    }

    /// Where `rel` goes in the new version.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.stage.join(rel)
    }

    /// Writes one file of the new version (replacing the link to the old one).
    pub fn write(&self, rel: &str, bytes: &[u8], mode: u32) -> Result<()> {
        let path = self.path(rel);
        create_dir(parent_dir(&path), PRIVATE_DIR)?;
        write_file(&path, bytes, mode, Overwrite::Replace)
    }

    /// Swaps the new version in and removes the old one.
    pub fn commit(self) -> Result<()> {
        sync_dir(&self.stage)?;
        if self.target.exists() {
            rustix::fs::renameat_with(
                rustix::fs::CWD,
                &self.stage,
                rustix::fs::CWD,
                &self.target,
                rustix::fs::RenameFlags::EXCHANGE,
            )
            .map_err(|e| Error::io(&self.target, std::io::Error::from(e)))?;
            sync_dir(parent_dir(&self.target))?;
            fs::remove_dir_all(&self.stage).map_err(|e| Error::io(&self.stage, e))?;
        } else {
            fs::rename(&self.stage, &self.target).map_err(|e| Error::io(&self.target, e))?;
            sync_dir(parent_dir(&self.target))?;
        }
        crash_point();
        Ok(())
    }
}

fn link_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in fs::read_dir(from).map_err(|e| Error::io(from, e))? {
        let entry = entry.map_err(|e| Error::io(from, e))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let ft = entry.file_type().map_err(|e| Error::io(&src, e))?;
        if ft.is_dir() {
            create_dir(&dst, PRIVATE_DIR)?;
            link_tree(&src, &dst)?;
        } else if ft.is_file() {
            fs::hard_link(&src, &dst).map_err(|e| Error::io(&dst, e))?;
        }
    }
    Ok(())
}

/// Test hook for crash-safety tests: with `CERTMESH_TEST_CRASH_AFTER_WRITES=N` in the
/// environment, the process kills itself with SIGKILL right after its N-th file write,
/// so tests can interrupt a run at every point without relying on timing.
fn crash_point() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::OnceLock;
    static LIMIT: OnceLock<Option<usize>> = OnceLock::new();
    static WRITES: AtomicUsize = AtomicUsize::new(0);
    let limit = LIMIT.get_or_init(|| {
        std::env::var("CERTMESH_TEST_CRASH_AFTER_WRITES")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(n) = limit {
        if WRITES.fetch_add(1, Ordering::SeqCst) + 1 >= *n {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &std::process::id().to_string()])
                .status();
            std::process::abort();
        }
    }
}

static SHARED_DIRS_ALLOWED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Accept directories other users can change (`--allow-shared-dir`): a process-wide
/// decision, like the umask, taken once by the front end.
pub fn allow_shared_dirs(allow: bool) {
    SHARED_DIRS_ALLOWED.store(allow, std::sync::atomic::Ordering::Relaxed);
}

/// Refuses `dir` when it, or any directory above it, could be changed by someone else
/// (see [`dir_chain_problems`]), unless [`allow_shared_dirs`] was set. Run before a store
/// or a cluster's output directory is read or written, as OpenSSH's StrictModes does for
/// `~/.ssh`: a planted `keystore.pass` or a swapped CA would otherwise be used as ours.
pub fn check_dir_chain(dir: &Path) -> Result<()> {
    if SHARED_DIRS_ALLOWED.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(());
    }
    match dir_chain_problems(dir).into_iter().next() {
        Some(p) => Err(Error::Refused(format!(
            "{p}, or pass --allow-shared-dir if this is deliberate"
        ))),
        None => Ok(()),
    }
}

/// What makes `dir` (when it exists) and every directory above it unsafe to keep a store
/// in: writable by group or others without the sticky bit, or owned by a user other than
/// root and the one running certmesh. Both the path as written and the one it resolves to
/// are walked, so a symbolic link in a shared directory counts too. Each problem is one
/// line naming the directory and the fix.
pub fn dir_chain_problems(dir: &Path) -> Vec<String> {
    let abs = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        match std::env::current_dir() {
            Ok(cwd) => cwd.join(dir),
            Err(_) => return Vec::new(),
        }
    };
    let mut dirs: Vec<PathBuf> = abs.ancestors().map(Path::to_path_buf).collect();
    if let Some(real) = abs.ancestors().find_map(|p| fs::canonicalize(p).ok()) {
        dirs.extend(real.ancestors().map(Path::to_path_buf));
    }
    let me = rustix::process::geteuid().as_raw();
    let mut seen = std::collections::HashSet::new();
    let mut problems = Vec::new();
    for d in dirs {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = fs::metadata(&d) else { continue };
        if !meta.is_dir() || !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 != 0 && mode & 0o1000 == 0 {
            problems.push(format!(
                "{}: writable by other users (mode {mode:04o}); run `chmod go-w {}`",
                d.display(),
                d.display()
            ));
        } else if meta.uid() != 0 && meta.uid() != me {
            problems.push(format!(
                "{}: owned by uid {}, neither root nor you (uid {me}); make root or yourself its owner",
                d.display(),
                meta.uid()
            ));
        }
    }
    problems
}

/// Threads for work that mostly waits on fsync (writing many small files): the disk
/// commits concurrent syncs together, so more threads than cores finish sooner.
pub const IO_THREADS: usize = 16;

/// A thread pool of [`IO_THREADS`] threads, built once.
pub fn io_pool() -> Result<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<std::result::Result<rayon::ThreadPool, String>> =
        std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(IO_THREADS)
            .thread_name(|i| format!("certmesh-io-{i}"))
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| Error::Crypto(format!("cannot start I/O threads: {e}")))
}

/// A file's bytes and permission bits, from one open: `None` when it cannot be read.
pub fn read_with_mode(path: &Path) -> Option<(zeroize::Zeroizing<Vec<u8>>, u32)> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let file = std::fs::File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(meta.len() as usize));
    // Through `take`, the read fills the room made from the size just read, where the
    // file's own `read_to_end` would ask the size again, and its position.
    file.take(u64::MAX).read_to_end(&mut bytes).ok()?;
    Some((bytes, meta.permissions().mode() & 0o777))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_file_sets_mode_and_refuses_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.pem");
        write_file(&p, b"one", PRIVATE, Overwrite::Refuse).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let err = write_file(&p, b"two", PRIVATE, Overwrite::Refuse).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert!(
            matches!(&err, Error::Exists { path } if *path == p),
            "{err:?}"
        );
        assert_eq!(fs::read(&p).unwrap(), b"one");
        write_file(&p, b"two", PUBLIC, Overwrite::Replace).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

    #[test]
    fn staged_dir_appears_whole_and_backs_up() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("issued").join("node1");
        let s = StagedDir::new(&target).unwrap();
        s.write("key.pem", b"k", PRIVATE).unwrap();
        assert!(!target.exists());
        s.commit(None).unwrap();
        assert_eq!(fs::read(target.join("key.pem")).unwrap(), b"k");

        let s = StagedDir::new(&target).unwrap();
        s.write("key.pem", b"k2", PRIVATE).unwrap();
        assert!(s.commit(None).is_err());
        let s = StagedDir::new(&target).unwrap();
        s.write("key.pem", b"k2", PRIVATE).unwrap();
        let backup = dir.path().join("backup").join("node1");
        s.commit(Some(&backup)).unwrap();
        assert_eq!(fs::read(target.join("key.pem")).unwrap(), b"k2");
        assert_eq!(fs::read(backup.join("key.pem")).unwrap(), b"k");
        // no staging directories are left behind
        let left: Vec<_> = fs::read_dir(dir.path().join("issued")).unwrap().collect();
        assert_eq!(left.len(), 1);
    }

    #[test]
    fn leftovers_name_the_directories_clean_would_clean() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        for d in [
            "m1",
            "m2",
            ".m2.certmesh-new",
            ".certmesh-new",
            "m3.certmesh-new",
        ] {
            create_dir(&out.join(d), PRIVATE_DIR).unwrap();
        }
        let left = DirSwap::leftovers(out).unwrap();
        assert_eq!(left.into_iter().collect::<Vec<_>>(), ["m2"]);
        // Each is the stage `clean` removes.
        assert!(DirSwap::stage_path(&out.join("m2")).exists());
        DirSwap::clean(&out.join("m2")).unwrap();
        assert!(DirSwap::leftovers(out).unwrap().is_empty());
        assert!(DirSwap::leftovers(&out.join("absent")).is_none());
    }

    #[test]
    fn read_with_mode_gives_bytes_and_permission_bits_or_nothing() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.pem");
        std::fs::write(&path, b"abc").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let (bytes, mode) = read_with_mode(&path).unwrap();
        assert_eq!((bytes.as_slice(), mode), (&b"abc"[..], 0o640));
        assert!(read_with_mode(&dir.path().join("missing")).is_none());
        assert!(
            read_with_mode(dir.path()).is_none(),
            "a directory is no file"
        );
    }

    #[test]
    fn second_lock_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".lock");
        let _a = StoreLock::acquire(&p, false).unwrap();
        let err = StoreLock::acquire(&p, false).err().unwrap();
        assert!(
            matches!(&err, crate::Error::Locked { path, holder: crate::LockHolder::StoreRun } if *path == p),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "{}: another certmesh run holds the lock; try again later",
                p.display()
            )
        );
    }
}
