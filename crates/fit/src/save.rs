//! Writing a head directory as a unit: every file goes into a fresh sibling
//! folder first, which then replaces the directory by renames. A save that
//! fails midway leaves the previous head as it was, and no artifact of an
//! earlier fit (say `confusion_test.svg` of a run that had a test split)
//! survives next to the new head.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::FitError;
use crate::head::{META_FILE, TENSORS_FILE};

/// True for the names that a head save writes (so may replace or remove).
pub(crate) fn is_artifact_name(name: &str) -> bool {
    name == TENSORS_FILE
        || name == META_FILE
        || name == crate::METRICS_FILE
        || name == crate::REPORT_FILE
        || name == crate::EVAL_REPORT_FILE
        || (name.starts_with("confusion_") && name.ends_with(".svg"))
}

/// A name for a sibling of `dir` that no other save (of this process or
/// another) picks: `.<name>.<tag>-<pid>-<n>`.
fn sibling(parent: &Path, name: &std::ffi::OsStr, tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let mut s = OsString::from(".");
    s.push(name);
    s.push(format!(
        ".{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    parent.join(s)
}

/// Fills a new directory with `write` and puts it in place of `dir`.
///
/// When `dir` does not exist, or holds nothing but head artifacts, it is
/// swapped whole (rename the old one aside, rename the new one in, delete the
/// old one). When it holds other files too (e.g. `--out .`), those are kept:
/// the new files are renamed in one by one and the artifacts the new save
/// did not write are removed. Either way `dir` is untouched until `write`
/// has succeeded.
pub(crate) fn replace_dir(
    dir: &Path,
    write: impl FnOnce(&Path) -> Result<(), FitError>,
) -> Result<(), FitError> {
    // A path like `.` or `heads/..` has no file name: use its real path.
    let target: PathBuf = if dir.file_name().is_some() {
        dir.to_path_buf()
    } else {
        fs::canonicalize(dir).map_err(|e| FitError::io(dir, e))?
    };
    let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
        return Err(FitError::io(
            &target,
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "a head needs a folder of its own, not the file system root",
            ),
        ));
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    // Renaming `head/.` fails: name the folder by its parent and name.
    let target = parent.join(name);
    fs::create_dir_all(parent).map_err(|e| FitError::io(parent, e))?;
    let existing = match fs::symlink_metadata(&target) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(FitError::io(&target, e)),
    };
    let whole = match &existing {
        None => true,
        Some(m) if m.is_dir() => only_artifacts(&target)?,
        // A symlink to a folder: keep the link, replace what is inside.
        Some(m) if m.file_type().is_symlink() && target.is_dir() => false,
        Some(_) => {
            return Err(FitError::io(
                &target,
                io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "exists and is not a directory; choose another folder for the head",
                ),
            ));
        }
    };
    let new = sibling(parent, name, "new");
    fs::create_dir(&new).map_err(|e| FitError::io(&new, e))?;
    if let Err(e) = write(&new) {
        let _ = fs::remove_dir_all(&new);
        return Err(e);
    }
    let done = if whole {
        swap_whole(&target, &new, existing.is_some(), parent, name)
    } else {
        merge_into(&target, &new)
    };
    if done.is_err() {
        let _ = fs::remove_dir_all(&new);
    }
    done
}

/// True when every entry of `dir` is a head artifact.
fn only_artifacts(dir: &Path) -> Result<bool, FitError> {
    for e in fs::read_dir(dir).map_err(|e| FitError::io(dir, e))? {
        let e = e.map_err(|e| FitError::io(dir, e))?;
        let is_file = e.file_type().is_ok_and(|t| t.is_file());
        if !is_file || !e.file_name().to_str().is_some_and(is_artifact_name) {
            return Ok(false);
        }
    }
    Ok(true)
}

fn swap_whole(
    target: &Path,
    new: &Path,
    exists: bool,
    parent: &Path,
    name: &std::ffi::OsStr,
) -> Result<(), FitError> {
    if !exists {
        return fs::rename(new, target).map_err(|e| FitError::io(target, e));
    }
    let old = sibling(parent, name, "old");
    fs::rename(target, &old).map_err(|e| FitError::io(target, e))?;
    if let Err(e) = fs::rename(new, target) {
        // Put the previous head back.
        let _ = fs::rename(&old, target);
        return Err(FitError::io(target, e));
    }
    // The new head is in place; a leftover old copy is only clutter.
    let _ = fs::remove_dir_all(&old);
    Ok(())
}

/// Renames every file of `new` into `target`, then removes the artifacts
/// of `target` that `new` did not have, and `new` itself.
fn merge_into(target: &Path, new: &Path) -> Result<(), FitError> {
    let mut written: Vec<OsString> = Vec::new();
    for e in fs::read_dir(new).map_err(|e| FitError::io(new, e))? {
        written.push(e.map_err(|e| FitError::io(new, e))?.file_name());
    }
    // The head files last: head.json names the rest, so a reader that sees
    // the new head.json sees the new tensors too.
    written.sort();
    written.sort_by_key(|n| n == META_FILE);
    for n in &written {
        let to = target.join(n);
        fs::rename(new.join(n), &to).map_err(|e| FitError::io(&to, e))?;
    }
    for e in fs::read_dir(target).map_err(|e| FitError::io(target, e))? {
        let e = e.map_err(|e| FitError::io(target, e))?;
        let n = e.file_name();
        if n.to_str().is_some_and(is_artifact_name) && !written.contains(&n) {
            let p = e.path();
            fs::remove_file(&p).map_err(|e| FitError::io(&p, e))?;
        }
    }
    let _ = fs::remove_dir(new);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    /// Regression (#12): a save is a unit, so one that fails midway leaves
    /// the previous head as it was and no half-written folder beside it.
    #[test]
    fn a_failed_save_keeps_the_previous_head() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("head");
        replace_dir(&dir, |d| {
            fs::write(d.join(META_FILE), "old").map_err(|e| FitError::io(d, e))
        })
        .unwrap();
        let e = replace_dir(&dir, |d| {
            fs::write(d.join(META_FILE), "new").map_err(|e| FitError::io(d, e))?;
            Err(FitError::Diverged("stopped midway".into()))
        })
        .unwrap_err();
        assert!(matches!(e, FitError::Diverged(_)), "{e}");
        assert_eq!(fs::read_to_string(dir.join(META_FILE)).unwrap(), "old");
        assert_eq!(names(root.path()), vec!["head"]);
        // `.` style paths (no file name) resolve to the folder itself.
        let dotted = dir.join(".");
        replace_dir(&dotted, |d| {
            fs::write(d.join(META_FILE), "newer").map_err(|e| FitError::io(d, e))
        })
        .unwrap();
        assert_eq!(fs::read_to_string(dir.join(META_FILE)).unwrap(), "newer");
        assert_eq!(names(root.path()), vec!["head"]);
    }
}
