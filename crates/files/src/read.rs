//! Bounded reads of regular files.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The default limit on the bytes read from one input file (or tar member, or
/// Parquet cell): 512 MiB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 512 << 20;

/// Why an input file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening or reading failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A FIFO, device, socket or folder where a file was expected.
    #[error("{}: {}", path.display(), not_regular(kind))]
    NotRegular {
        /// The path given.
        path: PathBuf,
        /// What it is: `a FIFO`, `a character device`, ...
        kind: &'static str,
    },
    /// More bytes than the limit.
    #[error("{}: {}", path.display(), too_large(*bytes, *limit))]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size in bytes (at least `limit + 1`).
        bytes: u64,
        /// The limit in bytes.
        limit: u64,
    },
}

impl ReadError {
    /// The reason alone, without the path (for rows that name the file in a
    /// column of their own).
    pub fn reason(&self) -> String {
        match self {
            ReadError::Io { source, .. } => source.to_string(),
            ReadError::NotRegular { kind, .. } => not_regular(kind),
            ReadError::TooLarge { bytes, limit, .. } => too_large(*bytes, *limit),
        }
    }
}

fn not_regular(kind: &str) -> String {
    format!("not a regular file ({kind}); headstart reads images only from regular files")
}

fn too_large(bytes: u64, limit: u64) -> String {
    format!(
        "too large: {} is over the {} limit per file (--max-file-size)",
        describe_size(bytes),
        describe_size(limit)
    )
}

/// A byte count for people: `812 B`, `3.1 MiB`, `52.0 GiB`.
pub fn describe_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Opens `path` for reading when it is a regular file (symlinks to one are
/// followed): the open does not block on a FIFO, and the type is checked on
/// the open file, so a path swapped after a check cannot slip through.
/// Returns the file and its size.
pub fn open_regular(path: &Path) -> Result<(File, u64), ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    let t = meta.file_type();
    let kind = if t.is_file() {
        return Ok((file, meta.len()));
    } else if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    Err(ReadError::NotRegular {
        path: path.to_path_buf(),
        kind,
    })
}

/// Reads all of `path` when it is a regular file of at most `limit` bytes.
/// A file that grows while being read is cut off at `limit + 1` bytes and
/// refused, so memory stays bounded whatever the file does.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let (file, size) = open_regular(path)?;
    let too_large = |bytes| ReadError::TooLarge {
        path: path.to_path_buf(),
        bytes,
        limit,
    };
    if size > limit {
        return Err(too_large(size));
    }
    let mut buf = Vec::with_capacity(size as usize);
    file.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if buf.len() as u64 > limit {
        return Err(too_large(buf.len() as u64));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (#22 item 7): a FIFO named like an image hung the run forever.
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.jpg");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::RUSR).unwrap();
        let e = read_regular(&fifo, 1 << 20).unwrap_err();
        assert!(
            matches!(e, ReadError::NotRegular { kind: "a FIFO", .. }),
            "{e}"
        );
        assert!(e.to_string().contains("fifo.jpg"), "{e}");
    }

    /// Regression (#22 item 6): `/dev/zero` behind an image path was read
    /// without limit until the kernel killed the process.
    #[test]
    fn devices_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("zero.jpg");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let e = read_regular(&link, 1 << 20).unwrap_err();
        assert!(
            matches!(
                e,
                ReadError::NotRegular {
                    kind: "a character device",
                    ..
                }
            ),
            "{e}"
        );
        let e = read_regular(dir.path(), 1 << 20).unwrap_err();
        assert!(
            matches!(
                e,
                ReadError::NotRegular {
                    kind: "a folder",
                    ..
                }
            ),
            "{e}"
        );
    }

    /// Regression (#22 item 17): a 50 GB sparse file reported "out of memory"
    /// instead of "too large".
    #[test]
    fn a_big_sparse_file_is_too_large_before_any_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.jpg");
        let f = File::create(&p).unwrap();
        f.set_len(50 << 30).unwrap();
        let e = read_regular(&p, DEFAULT_MAX_FILE_SIZE).unwrap_err();
        assert!(matches!(e, ReadError::TooLarge { .. }), "{e}");
        assert!(e.reason().contains("50.0 GiB"), "{}", e.reason());
        assert!(e.reason().contains("512.0 MiB limit"), "{}", e.reason());
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(read_regular(&p, 5).unwrap(), b"12345");
        assert!(read_regular(&p, 4).is_err());
        // Symlinks to regular files are followed.
        let link = dir.path().join("link.jpg");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert_eq!(read_regular(&link, 5).unwrap(), b"12345");
    }
}
