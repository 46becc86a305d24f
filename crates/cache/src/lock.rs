//! The advisory lock that keeps writers of one cache out of each other's way.
//!
//! An unsharded `extract` and `cache compact` are meant to be the only writer, so
//! they take the lock exclusively; shards of one run share it. A second process
//! waits for the first instead of redoing its work (two unsharded runs) or
//! rewriting parts under it (compaction). Readers take no lock: they retry when
//! compaction replaced a part they were about to read.

use std::fs::{File, OpenOptions, TryLockError};

use crate::{Cache, CacheError};

/// How a process holds a cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// Alongside other shared holders (shards of one run).
    Shared,
    /// Alone (an unsharded extract, compaction).
    Exclusive,
}

/// A held lock on a cache; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct CacheLock {
    _file: Option<File>,
}

impl Cache {
    /// Takes the cache's lock, waiting for other holders; `waiting` is told once
    /// when the lock is busy. On a filesystem without advisory locks the lock is
    /// skipped and `waiting` says so.
    pub fn lock(&self, kind: LockKind, waiting: &dyn Fn(&str)) -> Result<CacheLock, CacheError> {
        let path = self.dir().join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(CacheError::io(&path))?;
        let tried = match kind {
            LockKind::Shared => file.try_lock_shared(),
            LockKind::Exclusive => file.try_lock(),
        };
        match tried {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                waiting(&format!(
                    "waiting for another headstart process that is writing to {} (it holds {})",
                    self.dir().display(),
                    path.display()
                ));
                match kind {
                    LockKind::Shared => file.lock_shared(),
                    LockKind::Exclusive => file.lock(),
                }
                .map_err(CacheError::io(&path))?;
            }
            Err(TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                waiting(&format!(
                    "{}: this filesystem has no advisory locks; make sure only one unsharded extract or compact writes to the cache at a time",
                    path.display()
                ));
                return Ok(CacheLock { _file: None });
            }
            Err(TryLockError::Error(e)) => return Err(CacheError::io(&path)(e)),
        }
        Ok(CacheLock { _file: Some(file) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn cache(dir: &std::path::Path) -> Cache {
        let info = crate::CacheInfo {
            format_version: crate::FORMAT_VERSION,
            model_name: "m".into(),
            model_fingerprint: "fp".into(),
            feature_dim: 1,
            preprocessing: serde_json::Value::Null,
            created_by: "test".into(),
        };
        Cache::open_or_create(dir, &info).unwrap()
    }

    #[test]
    fn exclusive_waits_for_shared_and_shared_holders_coexist() {
        let dir = tempfile::tempdir().unwrap();
        let c = cache(dir.path());
        let quiet = |_: &str| panic!("shared holders must not wait for each other");
        let a = c.lock(LockKind::Shared, &quiet).unwrap();
        let b = c.lock(LockKind::Shared, &quiet).unwrap();
        let got = AtomicBool::new(false);
        let waited = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let _x = c
                    .lock(LockKind::Exclusive, &|m| {
                        assert!(m.contains("waiting for another headstart process"), "{m}");
                        waited.store(true, Ordering::SeqCst);
                    })
                    .unwrap();
                got.store(true, Ordering::SeqCst);
            });
            std::thread::sleep(std::time::Duration::from_millis(100));
            assert!(
                !got.load(Ordering::SeqCst),
                "exclusive lock taken while shared"
            );
            drop(a);
            drop(b);
        });
        assert!(got.load(Ordering::SeqCst) && waited.load(Ordering::SeqCst));
    }
}
