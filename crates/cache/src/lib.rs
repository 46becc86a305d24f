//! The feature cache: the Parquet contract between `extract` (writer) and `fit`
//! (reader).
//!
//! A cache is a directory:
//!
//! ```text
//! CACHE_DIR/
//!   cache.json                 CacheInfo: model, fingerprint, feature dim, preprocessing
//!   input.json                 the INPUT of the newest extract run (absolute path or URL)
//!   parts/<seq>.parquet        rows: path, label, split, content_hash, view, feature,
//!                              source_version (object storage: size and ETag; else null)
//!   parts/<seq>.json           small manifest of that part (rows, shard, provider, ...)
//!   parts/<seq>.tomb.json      paths deleted from the input as of <seq>
//!   errors/<seq>.parquet       files that could not be read: path, stage, message
//!   listings/<hash>.json       listings of tar and Parquet objects in a store, by version
//!   lock                       advisory lock: one writer, or shards side by side
//! ```
//!
//! `<seq>` sorts by creation time (`<unix nanos>-<pid>-<counter>`), so any number of
//! processes may add parts at once. A row is live when it is the newest row for its
//! `(path, view)`, carries the newest content hash seen for its path, and no newer
//! tombstone names the path. Files are written under temporary names, synced and
//! renamed, so a crash never leaves a half part; temporary files are ignored.
//!
//! ```
//! use headstart_cache::{Cache, CacheInfo, FORMAT_VERSION, ORIGINAL_VIEW, PartWriter, Row, RunInfo, read_features};
//! # fn main() -> Result<(), headstart_cache::CacheError> {
//! # let tmp = tempfile::tempdir().unwrap();
//! let dir = tmp.path().join("cache");
//! let info = CacheInfo {
//!     format_version: FORMAT_VERSION,
//!     model_name: "toy".into(),
//!     model_fingerprint: "0123abcd".into(),
//!     feature_dim: 2,
//!     preprocessing: serde_json::json!({}),
//!     created_by: "docs".into(),
//! };
//! let cache = Cache::open_or_create(&dir, &info)?;
//!
//! let row = |path, label, hash, feature| Row {
//!     path, label: Some(label), split: None, content_hash: hash, source_version: None,
//!     view: ORIGINAL_VIEW, feature,
//! };
//! let mut writer = PartWriter::new(&cache, RunInfo::default());
//! writer.push(row("cat/a.png", "cat", "aa", &[1.0, 0.0]))?;
//! writer.push(row("dog/b.png", "dog", "bb", &[0.0, 1.0]))?;
//! let part = writer.flush()?.expect("two rows were buffered");
//! assert!(part.starts_with(cache.parts_dir()));
//!
//! // A newer row for the same path and view replaces the old one; a tombstone deletes a path.
//! writer.push(row("cat/a.png", "cat", "a2", &[0.5, 0.5]))?;
//! writer.flush()?;
//! cache.write_tombstones(&["dog/b.png".to_string()])?;
//!
//! let table = read_features(&[dir])?;
//! assert_eq!((table.len(), table.dim), (1, 2));
//! assert_eq!((table.paths[0].as_str(), table.row(0)), ("cat/a.png", &[0.5, 0.5][..]));
//! assert_eq!(table.model_fingerprint.as_deref(), Some("0123abcd"));
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod error;
mod lock;
#[cfg(test)]
mod model_test;
mod read;
mod table;
mod write;

pub use error::CacheError;
pub use lock::{CacheLock, LockKind};
pub use read::{
    CompactStats, LiveIndex, class_label_names, column_utf8, column_utf8_rows, read_features,
    to_utf8,
};
pub use table::FeatureTable;
pub use write::{ErrorRow, PartWriter, Row, read_errors};

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Version of the on-disk layout.
pub const FORMAT_VERSION: u32 = 1;

/// The `view` of un-augmented rows.
pub const ORIGINAL_VIEW: &str = "original";
/// The `view` of rows extracted from the image mirrored left-right.
pub const HFLIP_VIEW: &str = "hflip";

/// True for the un-augmented view (an empty view name counts as original).
pub fn is_original(view: &str) -> bool {
    view.is_empty() || view == ORIGINAL_VIEW
}

/// Column names of a part.
pub mod columns {
    /// Image path relative to the extract INPUT (Utf8, non-null).
    pub const PATH: &str = "path";
    /// Class label (Utf8, null when unlabeled).
    pub const LABEL: &str = "label";
    /// Given split (Utf8, null when not given).
    pub const SPLIT: &str = "split";
    /// Hash of the file's bytes (Utf8 hex, non-null).
    pub const CONTENT_HASH: &str = "content_hash";
    /// View name: `original`, `hflip`, ... (Utf8, non-null).
    pub const VIEW: &str = "view";
    /// What the object store reported of the image's content when it was
    /// read: size and ETag (plus, for a tar member or Parquet row, where in
    /// the object). Utf8, null for files; parts written before it lack it.
    pub const SOURCE_VERSION: &str = "source_version";
    /// Feature vector (FixedSizeList<Float32, D>, non-null items).
    pub const FEATURE: &str = "feature";
    /// Name of the list item field of `feature`.
    pub const FEATURE_ITEM: &str = "item";
}

/// Key-value metadata keys stored in every part's Parquet footer.
pub mod meta_keys {
    /// Version of headstart that wrote the part.
    pub const TOOL_VERSION: &str = "headstart.tool_version";
    /// [`CacheInfo::model_name`](crate::CacheInfo::model_name).
    pub const MODEL_NAME: &str = "headstart.model_name";
    /// [`CacheInfo::model_fingerprint`](crate::CacheInfo::model_fingerprint).
    pub const MODEL_FINGERPRINT: &str = "headstart.model_fingerprint";
    /// The feature dimension D, in decimal.
    pub const FEATURE_DIM: &str = "headstart.feature_dim";
    /// The preprocessing recipe, as JSON.
    pub const PREPROCESSING: &str = "headstart.preprocessing";
    /// [`RunInfo::ort_version`](crate::RunInfo::ort_version).
    pub const ORT_VERSION: &str = "headstart.ort_version";
    /// [`RunInfo::execution_provider`](crate::RunInfo::execution_provider).
    pub const EXECUTION_PROVIDER: &str = "headstart.execution_provider";
    /// A unique id of the part (machine and time of writing): a copy or a
    /// hard link of a part has the same id, so its rows are never counted twice.
    pub const PART_ID: &str = "headstart.part_id";
}

/// What a cache holds features of; fixed when the cache is created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheInfo {
    /// Layout version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Model name (built-in name or file stem).
    pub model_name: String,
    /// Hash of the ONNX bytes + feature tensor + preprocessing.
    pub model_fingerprint: String,
    /// Feature dimension D.
    pub feature_dim: usize,
    /// The preprocessing recipe, as JSON.
    pub preprocessing: serde_json::Value,
    /// Version of headstart that created the cache.
    pub created_by: String,
}

/// Per-part provenance written to the part's footer and manifest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// ONNX Runtime version used.
    pub ort_version: String,
    /// Execution provider that ran the model (e.g. `CPUExecutionProvider`).
    pub execution_provider: String,
    /// Shard `I/N` of the run, if sharded.
    pub shard: Option<String>,
}

/// An opened cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    info: CacheInfo,
}

impl Cache {
    /// Opens an existing cache.
    pub fn open(dir: &Path) -> Result<Cache, CacheError> {
        let path = dir.join("cache.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                CacheError::NotACache {
                    path: dir.to_path_buf(),
                }
            } else {
                CacheError::io(&path)(e)
            }
        })?;
        let info: CacheInfo = serde_json::from_str(&text).map_err(|e| CacheError::Format {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if info.format_version != FORMAT_VERSION {
            return Err(CacheError::Format {
                path,
                message: format!(
                    "cache format version {} is not supported (this headstart writes {FORMAT_VERSION})",
                    info.format_version
                ),
            });
        }
        Ok(Cache {
            dir: dir.to_path_buf(),
            info,
        })
    }

    /// Checks that a cache may be created or updated in `dir`: it does not
    /// exist, is empty, or holds only what a cache holds (a cache, or one
    /// being created by a concurrent shard). A folder with other files is
    /// refused: headstart never writes among a user's files.
    pub fn check_dir(dir: &Path) -> Result<(), CacheError> {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return Ok(()); // absent (created later), or the error comes with the first write
        };
        let entries: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        // Without cache.json only what a shard creating the cache makes first.
        let marked = entries.iter().any(|n| n == "cache.json");
        let mut names: Vec<String> = entries
            .into_iter()
            .filter(|n| !is_cache_entry(n) || (!marked && n == INPUT_FILE))
            .collect();
        if names.is_empty() {
            return Ok(());
        }
        names.sort();
        names.truncate(5);
        Err(CacheError::NotOurs {
            dir: dir.to_path_buf(),
            names,
        })
    }

    /// Opens `dir`, creating it for `info` if it holds no cache yet
    /// ([`Cache::check_dir`] first).
    ///
    /// An existing cache made with another model fingerprint or feature dimension is
    /// refused: one cache holds features of one model and preprocessing.
    pub fn open_or_create(dir: &Path, info: &CacheInfo) -> Result<Cache, CacheError> {
        Cache::check_dir(dir)?;
        std::fs::create_dir_all(dir.join("parts")).map_err(CacheError::io(dir))?;
        std::fs::create_dir_all(dir.join("errors")).map_err(CacheError::io(dir))?;
        let path = dir.join("cache.json");
        if !path.exists() {
            let bytes = serde_json::to_vec_pretty(info).map_err(|e| CacheError::Format {
                path: path.clone(),
                message: e.to_string(),
            })?;
            // Create-new via a temp file + hard link: exactly one concurrent creator wins.
            let tmp = write::temp_path(&path);
            write::write_synced(&tmp, &bytes)?;
            let linked = std::fs::hard_link(&tmp, &path);
            let _ = std::fs::remove_file(&tmp);
            match linked {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(CacheError::io(&path)(e)),
            }
        }
        let cache = Cache::open(dir)?;
        if cache.info.model_fingerprint != info.model_fingerprint
            || cache.info.feature_dim != info.feature_dim
        {
            return Err(CacheError::Mismatch {
                dir: dir.to_path_buf(),
                cached: describe(&cache.info),
                requested: describe(info),
            });
        }
        Ok(cache)
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the cache holds.
    pub fn info(&self) -> &CacheInfo {
        &self.info
    }

    /// Folder of the feature parts.
    pub fn parts_dir(&self) -> PathBuf {
        self.dir.join("parts")
    }

    /// Folder of the error parts.
    pub fn errors_dir(&self) -> PathBuf {
        self.dir.join("errors")
    }

    /// Records `input` (made absolute) as the INPUT the cache's paths are
    /// relative to, in `input.json`; the newest extract run wins. Reports use it
    /// to find the images again.
    pub fn record_input(&self, input: &Path) -> Result<(), CacheError> {
        let abs = std::path::absolute(input).unwrap_or_else(|_| input.to_path_buf());
        let json = serde_json::json!({ "input": abs });
        let bytes = serde_json::to_vec_pretty(&json).unwrap_or_default();
        write::write_atomic(&self.dir.join(INPUT_FILE), &bytes)
    }

    /// Records an INPUT in object storage: its URL and the endpoint it was
    /// read through (the caller gives both without credentials or query).
    pub fn record_remote_input(&self, url: &str, endpoint: Option<&str>) -> Result<(), CacheError> {
        let json = serde_json::json!({ "input": url, "endpoint": endpoint });
        let bytes = serde_json::to_vec_pretty(&json).unwrap_or_default();
        write::write_atomic(&self.dir.join(INPUT_FILE), &bytes)
    }

    /// The INPUT recorded by the newest extract run ([`Cache::record_input`]);
    /// `None` for caches made before it was recorded or when the file is unreadable.
    pub fn recorded_input(&self) -> Option<PathBuf> {
        self.recorded("input").map(PathBuf::from)
    }

    /// The endpoint of an INPUT in object storage, if one was given.
    pub fn recorded_endpoint(&self) -> Option<String> {
        self.recorded("endpoint")
    }

    fn recorded(&self, key: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.dir.join(INPUT_FILE)).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v.get(key)?.as_str().map(str::to_string)
    }

    /// Folder of the stored listings of tar and Parquet objects.
    pub fn listings_dir(&self) -> PathBuf {
        self.dir.join(LISTINGS_DIR)
    }

    /// Keeps a listing (`bytes`, written by extract) as `listings/<name>`,
    /// replacing an older one of that name in one atomic step.
    pub fn write_listing(&self, name: &str, bytes: &[u8]) -> Result<(), CacheError> {
        let dir = self.listings_dir();
        std::fs::create_dir_all(&dir).map_err(CacheError::io(&dir))?;
        write::write_atomic(&dir.join(name), bytes)
    }
}

/// Folder (in the cache directory) of the stored listings of containers.
pub const LISTINGS_DIR: &str = "listings";

/// File (in the cache directory) naming the INPUT of the newest extract run.
pub const INPUT_FILE: &str = "input.json";

/// Whether a name in a cache folder is one a cache writes: its files and
/// folders, and the hidden temporary files of its writers.
fn is_cache_entry(name: &str) -> bool {
    const OWN: [&str; 6] = [
        "cache.json",
        INPUT_FILE,
        "parts",
        "errors",
        LISTINGS_DIR,
        "lock",
    ];
    OWN.contains(&name)
        || OWN
            .iter()
            .any(|own| name.starts_with(&format!(".{own}.")) && name.ends_with(".tmp"))
}

fn describe(i: &CacheInfo) -> String {
    format!(
        "model {} (fingerprint {}, {}-d features)",
        i.model_name, i.model_fingerprint, i.feature_dim
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_recorded_input_wins_and_is_absolute() {
        let tmp = tempfile::tempdir().unwrap();
        let info = CacheInfo {
            format_version: FORMAT_VERSION,
            model_name: "m".into(),
            model_fingerprint: "f".into(),
            feature_dim: 1,
            preprocessing: serde_json::json!({}),
            created_by: "test".into(),
        };
        let cache = Cache::open_or_create(&tmp.path().join("c"), &info).unwrap();
        assert_eq!(cache.recorded_input(), None);
        cache.record_input(Path::new("images")).unwrap();
        cache.record_input(&tmp.path().join("other")).unwrap();
        assert_eq!(cache.recorded_input(), Some(tmp.path().join("other")));
        cache.record_input(Path::new("rel")).unwrap();
        assert!(cache.recorded_input().unwrap().is_absolute());
    }
}
