//! What a listing is made of: the items to extract, where their bytes are,
//! and the entries that could not be listed. Shared by the input kinds
//! (`input`: folders and manifests; `container`: tar shards and image
//! Parquet), which depend on this module and not on each other.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use headstart_cache::ErrorRow;
use serde::{Deserialize, Serialize};

use crate::remote::Object;

/// File extensions treated as images when walking folders.
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"];

/// Split folder names recognised at the top of a class-folder tree, in any
/// letter case (`Train/`, `Testing/`, ...).
pub const SPLIT_NAMES: &[&str] = &[
    "train",
    "training",
    "val",
    "valid",
    "validation",
    "test",
    "testing",
];

/// One image to extract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Path relative to the input root (the cache key), with `/` separators:
    /// `<class>/<file>`, `<shard>.tar/<key>`, `<file>.parquet/<row>`.
    pub rel: String,
    /// Where to read it from: the image, or the tar or Parquet file holding
    /// it, as a file or an object in a store.
    pub abs: Origin,
    /// Class label.
    pub label: Option<String>,
    /// Given split.
    pub split: Option<String>,
    /// Where in `abs` its bytes are.
    pub source: Source,
}

/// A file on a file system, or an object in a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A file.
    File(PathBuf),
    /// An object, with its size and version when listed.
    Object(Arc<Object>),
}

impl Origin {
    /// The file, when it is one.
    pub fn as_path(&self) -> Option<&Path> {
        match self {
            Origin::File(p) => Some(p),
            Origin::Object(_) => None,
        }
    }

    /// The object, when it is one.
    pub fn as_object(&self) -> Option<&Arc<Object>> {
        match self {
            Origin::File(_) => None,
            Origin::Object(o) => Some(o),
        }
    }

    /// Whether it is an object in a store.
    pub fn is_remote(&self) -> bool {
        matches!(self, Origin::Object(_))
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Object(o) => write!(f, "{}", o.url()),
        }
    }
}

impl From<PathBuf> for Origin {
    fn from(p: PathBuf) -> Origin {
        Origin::File(p)
    }
}

impl Item {
    /// What the store reports of this item's content: its object's version
    /// (size and ETag) and, for a tar member or a Parquet row, where in the
    /// object it is. `None` for files and objects listed without a version.
    pub fn source_version(&self) -> Option<String> {
        let v = self.abs.as_object()?.version.as_deref()?;
        Some(match self.source {
            Source::File => v.to_string(),
            Source::TarMember { offset, len } => format!("{v};tar:{offset}+{len}"),
            Source::ParquetRow { row_group, row } => format!("{v};rg:{row_group}/{row}"),
        })
    }
}

/// Where an item's bytes are in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// The whole file.
    File,
    /// A member of a tar file: `len` bytes from `offset`.
    TarMember {
        /// Byte offset of the member's data in the tar file.
        offset: u64,
        /// The member's size in bytes.
        len: u64,
    },
    /// Row `row` of row group `row_group` of a Parquet file's image column.
    ParquetRow {
        /// Index of the row group in the file.
        row_group: usize,
        /// Index of the row within that row group.
        row: usize,
    },
}

/// How to interpret INPUT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// `root/<class>/**/img` or `root/{train,val,test}/<class>/**/img`.
    ClassFolders,
    /// Every image under the folder, without labels.
    Unlabeled,
    /// A CSV or Parquet manifest with `path`, optional `label`, optional `split`.
    Manifest,
    /// WebDataset tar shards: a `.tar`, a `{a..b}` pattern, or a folder of them.
    Tar,
    /// Parquet files with an image column: a file or a folder of them.
    ImageParquet,
}

/// The listed images plus the entries that could not be listed (as error rows).
#[derive(Debug, Default)]
pub struct Listing {
    /// The images to extract.
    pub items: Vec<Item>,
    /// Entries that could not be listed (stage `list`), as error rows.
    pub errors: Vec<ErrorRow>,
    /// Folders (relative, `/`-separated) whose contents could not be listed:
    /// images under them may still exist, so they are not treated as deleted.
    pub unlisted: Vec<String>,
    /// Listings of tar and Parquet objects read now, to keep with the cache
    /// so that a rerun does not read them again (see `container::Stored`).
    pub fresh: Vec<crate::container::Stored>,
}

impl Listing {
    /// Whether `rel` lies in a folder that could not be listed.
    pub fn maybe_unlisted(&self, rel: &str) -> bool {
        self.unlisted.iter().any(|d| {
            d.is_empty()
                || rel == d
                || (rel.starts_with(d.as_str()) && rel[d.len()..].starts_with('/'))
        })
    }
}

/// Canonical split name: `train`, `val` or `test`.
pub fn normalize_split(s: &str) -> Option<String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "train" | "training" => Some("train".into()),
        "val" | "valid" | "validation" => Some("val".into()),
        "test" | "testing" => Some("test".into()),
        _ => None,
    }
}
