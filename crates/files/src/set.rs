//! Artifact sets: folders headstart writes as a whole and replaces in one step.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::FilesError;

/// A kind of artifact folder: what marks it as headstart's and which file
/// names headstart writes into it.
#[derive(Debug, Clone, Copy)]
pub struct SetKind {
    /// What the folder holds, for messages: `head`, `audit`.
    pub what: &'static str,
    /// The file that marks the folder as headstart's (`head.json`).
    pub marker: &'static str,
    /// Whether a file name is one this kind writes (the marker among them).
    pub is_artifact: fn(&str) -> bool,
    /// Whether the marker's bytes are headstart's, not a user's file that
    /// happens to have that name.
    pub is_marker: fn(&[u8]) -> bool,
}

/// What is at an output path now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Nothing: the folder will be created.
    Absent,
    /// An empty folder.
    Empty,
    /// A folder of this kind, written by headstart.
    Ours,
    /// Only this kind's file names, without the marker, replaced because of `--force`.
    Forced,
}

/// A checked output folder: where the set goes and what is there now.
#[derive(Debug, Clone)]
pub struct Target {
    /// The folder, with symlinks and `.`/`..` resolved where needed.
    pub dir: PathBuf,
    /// What is there now.
    pub existing: Existing,
}

impl SetKind {
    /// Checks that `dir` may take a set of this kind, before any work: it is
    /// absent, empty, or holds this kind's marker and nothing but this kind's
    /// files (with `force`, the marker may be missing). Never changes anything.
    pub fn check(&self, dir: &Path, force: bool) -> Result<Target, FilesError> {
        let dir = resolve(dir, self.what)?;
        let meta = match fs::symlink_metadata(&dir) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Target {
                    dir,
                    existing: Existing::Absent,
                });
            }
            Err(e) => return Err(FilesError::io(&dir)(e)),
        };
        if !meta.is_dir() {
            return Err(FilesError::NotAFolder {
                path: dir,
                what: self.what,
            });
        }
        let (mut ours, mut foreign) = (Vec::new(), Vec::new());
        for e in fs::read_dir(&dir).map_err(FilesError::io(&dir))? {
            let e = e.map_err(FilesError::io(&dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let is_file = e.file_type().is_ok_and(|t| t.is_file());
            if is_file && (self.is_artifact)(&name) {
                ours.push(name);
            } else {
                foreign.push(name);
            }
        }
        foreign.sort();
        ours.sort();
        if !foreign.is_empty() {
            foreign.truncate(5);
            return Err(FilesError::Foreign {
                dir,
                what: self.what,
                names: foreign,
            });
        }
        let existing = if ours.is_empty() {
            Existing::Empty
        } else if fs::read(dir.join(self.marker)).is_ok_and(|b| (self.is_marker)(&b)) {
            Existing::Ours
        } else if force {
            Existing::Forced
        } else {
            return Err(FilesError::Unmarked {
                dir,
                what: self.what,
                marker: self.marker,
                names: ours,
            });
        };
        Ok(Target { dir, existing })
    }

    /// Publishes a set into `dir`: [`SetKind::check`]s it, lets `write` fill
    /// a new hidden sibling folder, then puts that folder in `dir`'s place in
    /// one atomic step (a rename, or an exchange with the old set, which is
    /// then removed). With `keep_old`, the old set's files that `write` did
    /// not write are carried over (hard links), as when `eval` adds its
    /// report to a head. A kill at any instant leaves the old set or the new
    /// one at `dir`; a leftover hidden folder is removed by the next publish.
    pub fn publish<E: From<FilesError>>(
        &self,
        dir: &Path,
        force: bool,
        keep_old: bool,
        write: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<PathBuf, E> {
        let target = self.check(dir, force)?;
        let (parent, name) = parent_and_name(&target.dir)?;
        fs::create_dir_all(&parent).map_err(FilesError::io(&parent))?;
        remove_stale_siblings(&parent, &name);
        let new = sibling(&parent, &name);
        fs::create_dir(&new).map_err(FilesError::io(&new))?;
        let filled = write(&new).and_then(|()| {
            if keep_old && target.existing == Existing::Ours {
                carry_over(&target.dir, &new, self)?;
            }
            Ok(sync_files(&new)?)
        });
        if let Err(e) = filled {
            let _ = fs::remove_dir_all(&new);
            return Err(e);
        }
        let swapped = match target.existing {
            Existing::Absent | Existing::Empty => {
                fs::rename(&new, &target.dir).map_err(FilesError::io(&target.dir))
            }
            Existing::Ours | Existing::Forced => exchange(&new, &target.dir),
        };
        if let Err(e) = swapped {
            let _ = fs::remove_dir_all(&new);
            return Err(e.into());
        }
        sync_dir(&parent);
        // After an exchange `new` holds the previous set: only clutter now.
        let _ = fs::remove_dir_all(&new);
        Ok(target.dir)
    }
}

/// `dir` as a path whose last component names the folder itself: `.`,
/// `x/..` and symlinks are resolved; the current folder and its ancestors are
/// refused (replacing them would pull the folder out from under the shell).
fn resolve(dir: &Path, what: &'static str) -> Result<PathBuf, FilesError> {
    let is_link = fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink());
    let named = dir.file_name().is_some() && !dir.ends_with(".");
    let dir = if is_link || !named {
        fs::canonicalize(dir).map_err(FilesError::io(dir))?
    } else {
        dir.to_path_buf()
    };
    if let (Ok(cwd), Ok(abs)) = (std::env::current_dir(), std::path::absolute(&dir))
        && let (Ok(cwd), Ok(abs)) = (fs::canonicalize(cwd), fs::canonicalize(&abs))
        && cwd.starts_with(&abs)
    {
        return Err(FilesError::CurrentFolder { path: dir, what });
    }
    Ok(dir)
}

fn parent_and_name(dir: &Path) -> Result<(PathBuf, OsString), FilesError> {
    let name = dir.file_name().ok_or_else(|| FilesError::Io {
        path: dir.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "names no folder"),
    })?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name.to_os_string()))
}

/// Prefix of the hidden siblings of `name`: `.<name>.hs-`.
fn sibling_prefix(name: &OsStr) -> String {
    format!(".{}.hs-", name.to_string_lossy())
}

/// A new hidden sibling name no other publish picks: `.<name>.hs-<pid>-<n>`.
fn sibling(parent: &Path, name: &OsStr) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    parent.join(format!(
        "{}{}-{}",
        sibling_prefix(name),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Removes hidden siblings left by publishes whose process is gone (killed
/// before or after their exchange): each holds a set that is not published.
fn remove_stale_siblings(parent: &Path, name: &OsStr) {
    let prefix = sibling_prefix(name);
    let Ok(rd) = fs::read_dir(parent) else { return };
    for e in rd.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = n
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
        if !alive && e.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Hard-links (or copies) into `new` the artifacts of `old` that `new` lacks.
fn carry_over(old: &Path, new: &Path, kind: &SetKind) -> Result<(), FilesError> {
    for e in fs::read_dir(old).map_err(FilesError::io(old))? {
        let e = e.map_err(FilesError::io(old))?;
        let name = e.file_name();
        let to = new.join(&name);
        if !name.to_str().is_some_and(kind.is_artifact) || to.exists() {
            continue;
        }
        if fs::hard_link(e.path(), &to).is_err() {
            fs::copy(e.path(), &to).map_err(FilesError::io(&to))?;
        }
    }
    Ok(())
}

/// Flushes every file of `dir` to disk, so the set is whole once it is visible.
fn sync_files(dir: &Path) -> Result<(), FilesError> {
    for e in fs::read_dir(dir).map_err(FilesError::io(dir))? {
        let p = e.map_err(FilesError::io(dir))?.path();
        if p.is_file() {
            fs::File::open(&p)
                .and_then(|f| f.sync_all())
                .map_err(FilesError::io(&p))?;
        }
    }
    sync_dir(dir);
    Ok(())
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Atomically exchanges the folders `new` and `dir` (renameat2
/// `RENAME_EXCHANGE`). Where the file system cannot (some network file
/// systems), falls back to two renames: the old set aside, the new one in.
fn exchange(new: &Path, dir: &Path) -> Result<(), FilesError> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, new, CWD, dir, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
            let (parent, name) = parent_and_name(dir)?;
            let aside = sibling(&parent, &name);
            fs::rename(dir, &aside).map_err(FilesError::io(dir))?;
            if let Err(e) = fs::rename(new, dir) {
                let _ = fs::rename(&aside, dir);
                return Err(FilesError::io(dir)(e));
            }
            // `new` is gone; leave the old set where publish removes it.
            fs::rename(&aside, new).map_err(FilesError::io(new))
        }
        Err(e) => Err(FilesError::io(dir)(e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIND: SetKind = SetKind {
        what: "head",
        marker: "head.json",
        is_artifact: |n| {
            [
                "head.json",
                "metrics.json",
                "report.html",
                "report_eval.html",
            ]
            .contains(&n)
        },
        is_marker: |b| b.starts_with(b"{\"headstart\""),
    };
    const MARK: &[u8] = b"{\"headstart\": 1}";

    fn names(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    fn write(
        files: &'static [(&'static str, &'static [u8])],
    ) -> impl FnOnce(&Path) -> Result<(), FilesError> {
        move |d| {
            for (n, b) in files {
                fs::write(d.join(n), b).map_err(FilesError::io(d))?;
            }
            Ok(())
        }
    }

    #[test]
    fn a_set_replaces_the_previous_one_whole() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("head");
        KIND.publish(
            &dir,
            false,
            false,
            write(&[("head.json", MARK), ("report.html", b"1")]),
        )
        .unwrap();
        KIND.publish(
            &dir,
            false,
            false,
            write(&[("head.json", MARK), ("metrics.json", b"2")]),
        )
        .unwrap();
        assert_eq!(names(&dir), ["head.json", "metrics.json"]);
        assert_eq!(names(root.path()), ["head"], "no hidden folder left");
        // eval adds its report and keeps the rest.
        KIND.publish(&dir, false, true, write(&[("report_eval.html", b"3")]))
            .unwrap();
        assert_eq!(
            names(&dir),
            ["head.json", "metrics.json", "report_eval.html"]
        );
        // A failing write leaves the set as it was.
        let e = KIND
            .publish(&dir, false, false, |d: &Path| {
                fs::write(d.join("head.json"), "half").unwrap();
                Err(FilesError::io(d)(io::Error::other("disk full")))
            })
            .unwrap_err();
        assert!(e.to_string().contains("disk full"), "{e}");
        assert_eq!(
            names(&dir),
            ["head.json", "metrics.json", "report_eval.html"]
        );
        assert_eq!(fs::read(dir.join("head.json")).unwrap(), MARK);
        assert_eq!(names(root.path()), ["head"]);
    }

    /// Regression (#22 item 1): a folder of the user's own `metrics.json` and
    /// `report.html` was swapped out whole, and `fit --out .` replaced the
    /// user's `report.html`.
    #[test]
    fn user_files_are_never_replaced() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("mine");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("report.html"), "my report").unwrap();
        fs::write(dir.join("metrics.json"), "my metrics").unwrap();
        let e = KIND
            .publish(&dir, false, false, write(&[("head.json", MARK)]))
            .unwrap_err();
        assert!(matches!(e, FilesError::Unmarked { .. }), "{e}");
        assert!(e.to_string().contains("--force"), "{e}");
        assert_eq!(
            fs::read_to_string(dir.join("report.html")).unwrap(),
            "my report"
        );
        // A user file of another name: refused even with --force.
        fs::write(dir.join("notes.txt"), "mine").unwrap();
        let e = KIND
            .publish(&dir, true, false, write(&[("head.json", MARK)]))
            .unwrap_err();
        assert!(matches!(e, FilesError::Foreign { .. }), "{e}");
        assert!(e.to_string().contains("notes.txt"), "{e}");
        // A file named like the marker but not headstart's is not a marker.
        fs::remove_file(dir.join("notes.txt")).unwrap();
        fs::write(dir.join("head.json"), "{}").unwrap();
        assert!(KIND.check(&dir, false).is_err());
        // --force replaces headstart's file names when there are no others.
        KIND.publish(&dir, true, false, write(&[("head.json", MARK)]))
            .unwrap();
        assert_eq!(names(&dir), ["head.json"]);
        assert_eq!(names(root.path()), ["mine"]);
        // The current folder is never replaced.
        let cwd = std::env::current_dir().unwrap();
        let e = KIND.check(&cwd, true).unwrap_err();
        assert!(matches!(e, FilesError::CurrentFolder { .. }), "{e}");
        let e = KIND.check(Path::new("."), true).unwrap_err();
        assert!(matches!(e, FilesError::CurrentFolder { .. }), "{e}");
    }

    /// Regression (#22 item 11): the swap was two renames, and a kill between
    /// them left no head folder. A kill now leaves a hidden folder at most,
    /// which the next publish removes.
    #[test]
    fn a_killed_publish_leaves_a_whole_set_and_its_leftover_goes() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("head");
        KIND.publish(&dir, false, false, write(&[("head.json", MARK)]))
            .unwrap();
        // What a publish killed after its exchange leaves: the old set under
        // the hidden name of a process that no longer runs.
        let dead = root.path().join(".head.hs-4294967295-0");
        fs::create_dir(&dead).unwrap();
        fs::write(dead.join("head.json"), MARK).unwrap();
        KIND.publish(
            &dir,
            false,
            false,
            write(&[("head.json", MARK), ("report.html", b"")]),
        )
        .unwrap();
        assert_eq!(names(root.path()), ["head"]);
    }

    #[test]
    fn a_symlinked_folder_keeps_its_link() {
        let root = tempfile::tempdir().unwrap();
        let real = root.path().join("real");
        KIND.publish(&real, false, false, write(&[("head.json", MARK)]))
            .unwrap();
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        KIND.publish(
            &link,
            false,
            false,
            write(&[("head.json", MARK), ("report.html", b"")]),
        )
        .unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(names(&link), ["head.json", "report.html"]);
    }
}
