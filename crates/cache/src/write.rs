//! Writing parts, tombstones and error files: temporary name, sync, rename.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use arrow_array::{ArrayRef, FixedSizeListArray, Float32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::{Cache, CacheError, RunInfo, columns, meta_keys};

/// One feature row to write.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    /// Image path relative to the extract INPUT (the row's key with `view`).
    pub path: &'a str,
    /// Class label; `None` when unlabeled.
    pub label: Option<&'a str>,
    /// Given split (`train`, `val`, `test`); `None` when not given.
    pub split: Option<&'a str>,
    /// Hash of the image file's bytes (hex).
    pub content_hash: &'a str,
    /// What an object store reported of the image's content (size and ETag,
    /// and where in its object); `None` for files.
    pub source_version: Option<&'a str>,
    /// View name ([`ORIGINAL_VIEW`](crate::ORIGINAL_VIEW), [`HFLIP_VIEW`](crate::HFLIP_VIEW), ...).
    pub view: &'a str,
    /// The feature vector; its length must be the cache's feature dimension.
    pub feature: &'a [f32],
}

/// One input file that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRow {
    /// Path relative to the input.
    pub path: String,
    /// Stage that failed: `read`, `decode`, `preprocess`, `infer`.
    pub stage: String,
    /// What went wrong.
    pub message: String,
}

/// Reads an errors file written by [`Cache::write_errors`] (`errors/<seq>.parquet`).
pub fn read_errors(path: &Path) -> Result<Vec<ErrorRow>, CacheError> {
    let format = |message: String| CacheError::Format {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(CacheError::io(path))?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| format(e.to_string()))?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| format(e.to_string()))?;
        let col = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| crate::to_utf8(c.as_ref()))
                .ok_or_else(|| format(format!("no string column `{name}`")))
        };
        let (p, s, m) = (col("path")?, col("stage")?, col("message")?);
        for i in 0..batch.num_rows() {
            rows.push(ErrorRow {
                path: p.value(i).to_string(),
                stage: s.value(i).to_string(),
                message: m.value(i).to_string(),
            });
        }
    }
    Ok(rows)
}

/// Manifest written next to each part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PartManifest {
    pub rows: usize,
    pub feature_dim: usize,
    pub model_fingerprint: String,
    pub run: RunInfo,
    pub created_unix_ms: u128,
}

/// Paths removed from the input.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Tombstones {
    pub paths: Vec<String>,
}

/// The Arrow schema of a part with feature dimension `dim`.
pub fn part_schema(dim: usize) -> Schema {
    Schema::new(vec![
        Field::new(columns::PATH, DataType::Utf8, false),
        Field::new(columns::LABEL, DataType::Utf8, true),
        Field::new(columns::SPLIT, DataType::Utf8, true),
        Field::new(columns::CONTENT_HASH, DataType::Utf8, false),
        Field::new(columns::VIEW, DataType::Utf8, false),
        Field::new(
            columns::FEATURE,
            DataType::FixedSizeList(item_field(), dim as i32),
            false,
        ),
        // Last and nullable: readers of older parts, and of these by position
        // up to `feature`, are unaffected.
        Field::new(columns::SOURCE_VERSION, DataType::Utf8, true),
    ])
}

pub(crate) fn item_field() -> Arc<Field> {
    Arc::new(Field::new(columns::FEATURE_ITEM, DataType::Float32, false))
}

/// A new sequence number: sorts by time, unique across processes.
pub(crate) fn next_seq() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{nanos:020}-{:08}-{:06}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// This machine's name as used in temporary file names (dots replaced).
pub(crate) fn host_tag() -> String {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().replace(['.', '/'], "_"))
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into())
    })
    .clone()
}

/// `.{name}.{host}.{seq}.tmp` next to `path`: hidden from readers, and naming the
/// machine and process that writes it so crashed writers' leftovers can be cleaned.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.{}.tmp", host_tag(), next_seq()))
}

pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    let mut f = File::create(path).map_err(CacheError::io(path))?;
    f.write_all(bytes).map_err(CacheError::io(path))?;
    f.sync_all().map_err(CacheError::io(path))
}

/// Writes `bytes` to `path` through a synced temporary file and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    let tmp = temp_path(path);
    let res = write_synced(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path).map_err(CacheError::io(path)));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Gives the finished temporary file `tmp` its final name `path`, never replacing
/// an existing file: a part, once written, is only ever removed by compaction after
/// its rows were rewritten, so a name clash is a bug to report, not to overwrite.
/// On a filesystem without hard links (FAT, many FUSE mounts) it falls back to
/// a rename after checking the name is free (names are unique per process).
fn publish(tmp: &Path, path: &Path) -> Result<(), CacheError> {
    let linked = match std::fs::hard_link(tmp, path) {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::Unsupported | std::io::ErrorKind::PermissionDenied
            ) && !path.exists() =>
        {
            return std::fs::rename(tmp, path).map_err(CacheError::io(path));
        }
        other => other,
    };
    let _ = std::fs::remove_file(tmp);
    linked.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            CacheError::Exists {
                path: path.to_path_buf(),
            }
        } else {
            CacheError::io(path)(e)
        }
    })
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Buffers rows and writes them atomically as one part on each [`PartWriter::flush`].
pub struct PartWriter {
    cache: Cache,
    run: RunInfo,
    paths: Vec<String>,
    labels: Vec<Option<String>>,
    splits: Vec<Option<String>>,
    hashes: Vec<String>,
    versions: Vec<Option<String>>,
    views: Vec<String>,
    features: Vec<f32>,
    /// Name parts `<base>~c<n>` (sorting right after `<base>`) instead of by time.
    seq_after: Option<(String, usize)>,
}

impl PartWriter {
    /// A writer for a new part of `cache`.
    pub fn new(cache: &Cache, run: RunInfo) -> PartWriter {
        PartWriter {
            cache: cache.clone(),
            run,
            paths: Vec::new(),
            labels: Vec::new(),
            splits: Vec::new(),
            hashes: Vec::new(),
            versions: Vec::new(),
            views: Vec::new(),
            features: Vec::new(),
            seq_after: None,
        }
    }

    /// Names the parts `<base>~c<n>` for `n` after `last` (compaction): they sort
    /// right after `<base>` and after the compacted parts `<base>~c1..=last`.
    pub(crate) fn with_seq_after(mut self, base: &str, last: usize) -> PartWriter {
        self.seq_after = Some((base.to_string(), last));
        self
    }

    /// Reserves room for `rows` rows (features included) up front, so a part
    /// of that many rows takes exactly its size in memory.
    pub(crate) fn reserve(&mut self, rows: usize) {
        let dim = self.cache.info.feature_dim;
        self.features.reserve_exact(rows * dim);
        for v in [&mut self.paths, &mut self.hashes, &mut self.views] {
            v.reserve_exact(rows);
        }
        self.labels.reserve_exact(rows);
        self.splits.reserve_exact(rows);
        self.versions.reserve_exact(rows);
    }

    /// Rows buffered so far.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// True when no row is buffered.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Buffers a row; its feature must have the cache's dimension (only that is
    /// checked: callers keep non-finite features out, as extract does).
    pub fn push(&mut self, row: Row<'_>) -> Result<(), CacheError> {
        let dim = self.cache.info.feature_dim;
        if row.feature.len() != dim {
            return Err(CacheError::Row {
                path: PathBuf::from(row.path),
                row: self.len(),
                message: format!(
                    "feature has {} values, the cache holds {dim}",
                    row.feature.len()
                ),
            });
        }
        self.paths.push(row.path.to_string());
        self.labels.push(row.label.map(str::to_string));
        self.splits.push(row.split.map(str::to_string));
        self.hashes.push(row.content_hash.to_string());
        self.versions.push(row.source_version.map(str::to_string));
        self.views.push(row.view.to_string());
        self.features.extend_from_slice(row.feature);
        Ok(())
    }

    /// Writes the buffered rows as one part (nothing when empty) and clears the buffer.
    /// Returns the part's path.
    pub fn flush(&mut self) -> Result<Option<PathBuf>, CacheError> {
        if self.is_empty() {
            return Ok(None);
        }
        let info = &self.cache.info;
        let dim = info.feature_dim;
        let rows = self.len();
        let schema = Arc::new(part_schema(dim));
        let feature = FixedSizeListArray::try_new(
            item_field(),
            dim as i32,
            Arc::new(Float32Array::from(std::mem::take(&mut self.features))),
            None,
        )
        .map_err(|e| CacheError::Format {
            path: self.cache.parts_dir(),
            message: e.to_string(),
        })?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(std::mem::take(&mut self.paths))),
            Arc::new(StringArray::from(std::mem::take(&mut self.labels))),
            Arc::new(StringArray::from(std::mem::take(&mut self.splits))),
            Arc::new(StringArray::from(std::mem::take(&mut self.hashes))),
            Arc::new(StringArray::from(std::mem::take(&mut self.views))),
            Arc::new(feature),
            Arc::new(StringArray::from(std::mem::take(&mut self.versions))),
        ];
        let batch =
            RecordBatch::try_new(schema.clone(), columns).map_err(|e| CacheError::Format {
                path: self.cache.parts_dir(),
                message: e.to_string(),
            })?;
        let kv = [
            (
                meta_keys::TOOL_VERSION,
                env!("CARGO_PKG_VERSION").to_string(),
            ),
            (meta_keys::MODEL_NAME, info.model_name.clone()),
            (meta_keys::MODEL_FINGERPRINT, info.model_fingerprint.clone()),
            (meta_keys::FEATURE_DIM, dim.to_string()),
            (meta_keys::PREPROCESSING, info.preprocessing.to_string()),
            (meta_keys::ORT_VERSION, self.run.ort_version.clone()),
            (
                meta_keys::EXECUTION_PROVIDER,
                self.run.execution_provider.clone(),
            ),
            (meta_keys::PART_ID, format!("{}/{}", host_tag(), next_seq())),
        ];
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
            .set_column_dictionary_enabled(
                parquet::schema::types::ColumnPath::new(vec![
                    columns::FEATURE.into(),
                    "list".into(),
                    columns::FEATURE_ITEM.into(),
                ]),
                false,
            )
            .set_key_value_metadata(Some(
                kv.into_iter()
                    .map(|(k, v)| KeyValue::new(k.to_string(), v))
                    .collect(),
            ))
            .build();
        let seq = match &mut self.seq_after {
            Some((base, n)) => {
                *n += 1;
                format!("{base}~c{n:06}")
            }
            None => next_seq(),
        };
        let dir = self.cache.parts_dir();
        let final_path = dir.join(format!("{seq}.parquet"));
        let tmp = temp_path(&final_path);
        // Errors name the part being written, not the hidden temporary file.
        let format_err = |e: parquet::errors::ParquetError| CacheError::Format {
            path: final_path.clone(),
            message: e.to_string(),
        };
        let res = (|| {
            let file = File::create(&tmp).map_err(CacheError::io(&final_path))?;
            let mut w = ArrowWriter::try_new(file, schema, Some(props)).map_err(format_err)?;
            w.write(&batch).map_err(format_err)?;
            let file = w.into_inner().map_err(format_err)?;
            file.sync_all().map_err(CacheError::io(&final_path))?;
            publish(&tmp, &final_path)
        })();
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        res?;
        let manifest = PartManifest {
            rows,
            feature_dim: dim,
            model_fingerprint: info.model_fingerprint.clone(),
            run: self.run.clone(),
            created_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis()),
        };
        let json = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
        write_atomic(&dir.join(format!("{seq}.json")), &json)?;
        sync_dir(&dir);
        Ok(Some(final_path))
    }
}

impl Cache {
    /// Records that `paths` were removed from the input (their rows stop being live).
    pub fn write_tombstones(&self, paths: &[String]) -> Result<(), CacheError> {
        if paths.is_empty() {
            return Ok(());
        }
        let dir = self.parts_dir();
        let json = serde_json::to_vec(&Tombstones {
            paths: paths.to_vec(),
        })
        .unwrap_or_default();
        write_atomic(&dir.join(format!("{}.tomb.json", next_seq())), &json)?;
        sync_dir(&dir);
        Ok(())
    }

    /// Writes the files that failed in a run to `errors/<seq>.parquet`; returns its path.
    pub fn write_errors(&self, rows: &[ErrorRow]) -> Result<Option<PathBuf>, CacheError> {
        if rows.is_empty() {
            return Ok(None);
        }
        let schema = Arc::new(Schema::new(vec![
            Field::new("path", DataType::Utf8, false),
            Field::new("stage", DataType::Utf8, false),
            Field::new("message", DataType::Utf8, false),
        ]));
        let col = |f: fn(&ErrorRow) -> &str| -> ArrayRef {
            Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
        };
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![col(|r| &r.path), col(|r| &r.stage), col(|r| &r.message)],
        )
        .map_err(|e| CacheError::Format {
            path: self.errors_dir(),
            message: e.to_string(),
        })?;
        let path = self.errors_dir().join(format!("{}.parquet", next_seq()));
        let mut buf = Vec::new();
        let mut w =
            ArrowWriter::try_new(&mut buf, schema, None).map_err(|e| CacheError::Format {
                path: path.clone(),
                message: e.to_string(),
            })?;
        w.write(&batch)
            .and_then(|()| w.close().map(|_| ()))
            .map_err(|e| CacheError::Format {
                path: path.clone(),
                message: e.to_string(),
            })?;
        write_atomic(&path, &buf)?;
        Ok(Some(path))
    }
}

/// Key-value metadata of a part as a map (used by readers and tests).
pub(crate) fn kv_map(kv: Option<&Vec<KeyValue>>) -> HashMap<String, String> {
    kv.map(|kv| {
        kv.iter()
            .filter_map(|e| e.value.clone().map(|v| (e.key.clone(), v)))
            .collect()
    })
    .unwrap_or_default()
}
