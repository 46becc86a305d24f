//! headstart's rules for the file system, in one place:
//!
//! - **Inputs are regular files, read with a limit** ([`read_regular`]): a FIFO,
//!   device or socket behind an image path (a symlink to `/dev/zero`, a
//!   `fifo.jpg`) is refused after a non-blocking open, and a file over the
//!   limit is refused before it is read.
//! - **Outputs are headstart's own** ([`SetKind`]): an artifact set (a head, an
//!   audit, a comparison's result) is written into a new hidden sibling folder
//!   and takes the place of its folder in one atomic exchange, so a kill at any
//!   instant leaves the old set or the new one. A folder that holds files
//!   headstart did not write is refused, never cleaned.
//! - **Names from user input become one safe path component**
//!   ([`safe_component`]), and are shown on a terminal through [`escape`].

#![warn(missing_docs)]

mod read;
mod set;

use std::path::{Path, PathBuf};

pub use read::{DEFAULT_MAX_FILE_SIZE, ReadError, describe_size, open_regular, read_regular};
pub use set::{Existing, SetKind, Target};

/// Errors of output folders; each names the folder and the fix.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// A file-system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The folder holds entries headstart did not write.
    #[error(
        "{} holds {} that headstart did not write ({}); a {what} folder is replaced as a whole, so headstart never writes there: move them out, or choose a new or empty folder",
        dir.display(),
        if names.len() == 1 { "an entry" } else { "entries" },
        names.join(", ")
    )]
    Foreign {
        /// The output folder.
        dir: PathBuf,
        /// What would have been written there (`head`, `audit`).
        what: &'static str,
        /// Some of the entries that are not headstart's.
        names: Vec<String>,
    },
    /// The folder holds only artifact names, but not the marker that says
    /// headstart wrote them.
    #[error(
        "{} holds {} but no {marker} from headstart, so these may be your files: choose a new or empty folder, or pass --force to replace them with a new {what}",
        dir.display(),
        names.join(", ")
    )]
    Unmarked {
        /// The output folder.
        dir: PathBuf,
        /// What would have been written there.
        what: &'static str,
        /// The marker file of that kind.
        marker: &'static str,
        /// The files found.
        names: Vec<String>,
    },
    /// The output is a file, or something else that is not a folder.
    #[error("{} exists and is not a folder; choose a folder for the {what}", path.display())]
    NotAFolder {
        /// The output path.
        path: PathBuf,
        /// What would have been written there.
        what: &'static str,
    },
    /// The output is the current folder or one above it.
    #[error(
        "{} is the current folder (or holds it); a {what} needs a folder of its own, e.g. --out {what}",
        path.display()
    )]
    CurrentFolder {
        /// The output path.
        path: PathBuf,
        /// What would have been written there.
        what: &'static str,
    },
    /// A name from user input cannot become a path under the output folder.
    #[error("`{name}` cannot name a file under {}: {reason}", root.display())]
    Escapes {
        /// The output folder.
        root: PathBuf,
        /// The name, as given.
        name: String,
        /// Why.
        reason: &'static str,
    },
}

impl FilesError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FilesError + '_ {
        move |source| FilesError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// `s` for a terminal: every control character (newline and tab included)
/// and every bidirectional-formatting character escaped (`\n`, `\u{1b}`,
/// `\u{202e}`), so a label or file name can neither move the cursor, clear
/// the screen, reverse the text after it, nor fake a row of a table. Every
/// user-derived string headstart prints goes through this one function.
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Characters that change how a terminal shows the text around them.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// `s` as one file-name component: ASCII letters, digits, `-`, `_` and `.`
/// are kept, anything else becomes `_`; a leading dot becomes `_` (no hidden
/// names, no `.` or `..`), an empty name is `_`, and the result has at most
/// 100 bytes. Different names may map to the same component: callers that
/// create one folder per name check for that.
pub fn safe_component(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if out.starts_with('.') {
        out.replace_range(..1, "_");
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// `root/rel` when `rel` is a relative path of plain components (no `..`,
/// no root, no prefix), so that it stays under `root`.
pub fn join_inside(root: &Path, rel: &str) -> Result<PathBuf, FilesError> {
    use std::path::Component;
    let escapes = |reason| FilesError::Escapes {
        root: root.to_path_buf(),
        name: rel.to_string(),
        reason,
    };
    let p = Path::new(rel);
    if rel.is_empty() {
        return Err(escapes("it is empty"));
    }
    for c in p.components() {
        match c {
            Component::Normal(_) => {}
            Component::CurDir => return Err(escapes("it contains `.`")),
            Component::ParentDir => return Err(escapes("it contains `..`")),
            Component::RootDir | Component::Prefix(_) => return Err(escapes("it is absolute")),
        }
    }
    Ok(root.join(p))
}

/// Writes `bytes` to `path` through a temporary sibling, synced and renamed
/// into place: a reader sees the old file or the new one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FilesError> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let res = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(FilesError::io(&tmp))?;
        f.write_all(bytes).map_err(FilesError::io(&tmp))?;
        f.sync_all().map_err(FilesError::io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(FilesError::io(path))
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (#22 item 4): a model file named `...onnx` became the
    /// folder `..`, and compare wrote into the parent of --out.
    #[test]
    fn user_names_never_become_dot_dot_or_hidden() {
        assert_eq!(safe_component(".."), "_.");
        assert_eq!(safe_component("."), "_");
        assert_eq!(safe_component(""), "_");
        assert_eq!(safe_component("a/b"), "a_b");
        assert_eq!(safe_component(".hidden"), "_hidden");
        assert_eq!(safe_component("efficientnet-lite0"), "efficientnet-lite0");
        assert_eq!(safe_component(&"x".repeat(300)).len(), 100);
        assert_eq!(safe_component("\u{1b}[2Jbag"), "__2Jbag");
    }

    /// Regression (#22 item 14): labels and file names were printed raw, so
    /// a tar label `\x1b[2Jbag` cleared the screen and a `\n` faked a row.
    #[test]
    fn control_and_bidi_characters_are_escaped() {
        assert_eq!(escape("cat/a.jpg"), "cat/a.jpg");
        assert_eq!(
            escape("a\u{1b}[2Jb\nc\rd\u{202e}gpj.exe\tx"),
            "a\\u{1b}[2Jb\\nc\\rd\\u{202e}gpj.exe\\tx"
        );
        assert_eq!(escape("naïve/日本.png"), "naïve/日本.png");
    }

    #[test]
    fn join_inside_refuses_what_leaves_the_root() {
        let root = Path::new("/out");
        assert_eq!(join_inside(root, "a/b").unwrap(), Path::new("/out/a/b"));
        for bad in ["", "..", "a/../../b", "/etc/passwd", "./a"] {
            assert!(join_inside(root, bad).is_err(), "{bad}");
        }
    }
}
