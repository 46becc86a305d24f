//! Reading caches (live rows only) and foreign feature Parquet files.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type};
use arrow_array::{Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Schema};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::metadata::ParquetMetaData;
use rayon::prelude::*;

use crate::write::{Tombstones, kv_map};
use crate::{Cache, CacheError, FeatureTable, columns, meta_keys};

/// An event in a cache directory, in sequence order.
#[derive(Debug, Clone)]
enum Entry {
    Part(PathBuf),
    Tomb(PathBuf),
}

impl Entry {
    /// The sequence part of the file name (`<seq>.parquet`, `<seq>.tomb.json`).
    fn seq(&self) -> String {
        let (Entry::Part(p) | Entry::Tomb(p)) = self;
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        name.split('.').next().unwrap_or_default().to_string()
    }
}

fn list_entries(dir: &Path) -> Result<Vec<Entry>, CacheError> {
    let mut named = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CacheError::io(dir)(e)),
    };
    for e in rd {
        let e = e.map_err(CacheError::io(dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue; // temporary files of writers, live or crashed
        }
        if let Some(seq) = name.strip_suffix(".parquet") {
            named.push((seq.to_string(), Entry::Part(e.path())));
        } else if let Some(seq) = name.strip_suffix(".tomb.json") {
            named.push((seq.to_string(), Entry::Tomb(e.path())));
        }
    }
    named.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(named.into_iter().map(|(_, e)| e).collect())
}

fn open_reader(
    path: &Path,
    cols: Option<&[&str]>,
) -> Result<
    (
        parquet::arrow::arrow_reader::ParquetRecordBatchReader,
        String,
        usize,
    ),
    CacheError,
> {
    let file = File::open(path).map_err(CacheError::io(path))?;
    let id = part_identity(&file, path)?;
    let mut b =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(CacheError::parquet(path))?;
    let id = kv_map(b.metadata().file_metadata().key_value_metadata())
        .remove(meta_keys::PART_ID)
        .unwrap_or(id);
    if let Some(cols) = cols {
        let mask = ProjectionMask::columns(b.parquet_schema(), cols.iter().copied());
        b = b.with_projection(mask);
    }
    let rows = usize::try_from(b.metadata().file_metadata().num_rows()).unwrap_or(0);
    let reader = b
        .with_batch_size(8192)
        .build()
        .map_err(CacheError::parquet(path))?;
    Ok((reader, id, rows))
}

/// A file's device and inode: the same for every hard link to it.
fn part_identity(file: &File, path: &Path) -> Result<String, CacheError> {
    use std::os::unix::fs::MetadataExt;
    let m = file.metadata().map_err(CacheError::io(path))?;
    Ok(format!("inode:{}:{}", m.dev(), m.ino()))
}

/// A string column as Utf8, whichever way a writer stored it: any string type
/// (Utf8; LargeUtf8 as pandas writes; Utf8View as Polars writes) or
/// dictionary-encoded strings (pandas categoricals, pyarrow dictionaries). `None`
/// for any other type (integers included: [`column_utf8`] turns those into text).
pub fn to_utf8(a: &dyn Array) -> Option<StringArray> {
    if let Some(s) = a.as_string_opt::<i32>() {
        return Some(s.clone());
    }
    if let Some(s) = a.as_string_opt::<i64>() {
        return Some(s.iter().collect());
    }
    if let Some(s) = a.as_string_view_opt() {
        return Some(s.iter().collect());
    }
    if let Some(d) = a.as_any_dictionary_opt() {
        let values = to_utf8(d.values().as_ref())?;
        let keys = d.normalized_keys();
        return Some(
            (0..a.len())
                .map(|i| (a.is_valid(i) && values.is_valid(keys[i])).then(|| values.value(keys[i])))
                .collect(),
        );
    }
    None
}

/// The values of an integer column of any width and sign; `None` for other types.
fn integers(a: &dyn Array) -> Option<Vec<Option<i128>>> {
    use arrow_array::types::{
        Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
    };
    macro_rules! each {
        ($($t:ty),*) => {$(
            if let Some(p) = a.as_primitive_opt::<$t>() {
                return Some(p.iter().map(|v| v.map(i128::from)).collect());
            }
        )*};
    }
    each!(
        Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type
    );
    None
}

/// Schema metadata key under which Hugging Face `datasets` describes its features.
const HF_METADATA: &str = "huggingface";

/// The class names of column `name` when `schema`'s metadata marks it as a Hugging
/// Face `datasets` ClassLabel (`{"info": {"features": {name: {"_type":
/// "ClassLabel", "names": [...]}}}}`), whose values are indices into the names.
pub fn class_label_names(schema: &Schema, name: &str) -> Option<Vec<String>> {
    let meta: serde_json::Value = serde_json::from_str(schema.metadata().get(HF_METADATA)?).ok()?;
    let feature = meta.get("info")?.get("features")?.get(name)?;
    if feature.get("_type")?.as_str()? != "ClassLabel" {
        return None;
    }
    feature
        .get("names")?
        .as_array()?
        .iter()
        .map(|n| n.as_str().map(str::to_string))
        .collect()
}

/// Column `name` of a batch with `schema` as Utf8 strings: strings as [`to_utf8`]
/// reads them; integers as their decimal text (`0`, `1`, ...), or, when `schema`'s
/// metadata gives the column Hugging Face ClassLabel names
/// ([`class_label_names`]), as those names (-1, `datasets`' "no label", is null).
/// The error says what is wrong with the column (the first bad value).
pub fn column_utf8(schema: &Schema, name: &str, a: &dyn Array) -> Result<StringArray, String> {
    column_utf8_rows(schema, name, a)?
        .into_iter()
        .collect::<Result<Vec<Option<String>>, String>>()
        .map(StringArray::from)
}

/// [`column_utf8`] row by row: a column of the wrong type is an error, and so
/// is each value that names no class (a ClassLabel index out of range) on its
/// own, so one bad row does not cost the others.
pub fn column_utf8_rows(
    schema: &Schema,
    name: &str,
    a: &dyn Array,
) -> Result<Vec<Result<Option<String>, String>>, String> {
    if let Some(names) = class_label_names(schema, name)
        && let Some(ints) = integers(a)
    {
        return Ok(ints
            .iter()
            .map(|v| match *v {
                None | Some(-1) => Ok(None),
                Some(k) => usize::try_from(k)
                    .ok()
                    .and_then(|k| names.get(k))
                    .map(|n| Some(n.clone()))
                    .ok_or_else(|| {
                        format!(
                            "column `{name}` holds class index {k}, but its ClassLabel names only {} classes",
                            names.len()
                        )
                    }),
            })
            .collect());
    }
    if let Some(s) = to_utf8(a) {
        return Ok(s.iter().map(|v| Ok(v.map(str::to_string))).collect());
    }
    if let Some(ints) = integers(a) {
        return Ok(ints.iter().map(|v| Ok(v.map(|v| v.to_string()))).collect());
    }
    Err(format!(
        "column `{name}` has type {}, expected strings (or integers)",
        a.data_type()
    ))
}

fn str_col(
    batch: &RecordBatch,
    name: &str,
    path: &Path,
) -> Result<Option<StringArray>, CacheError> {
    match batch.column_by_name(name) {
        None => Ok(None),
        Some(c) => column_utf8(&batch.schema(), name, c.as_ref())
            .map(Some)
            .map_err(|message| CacheError::Format {
                path: path.to_path_buf(),
                message,
            }),
    }
}

/// Value `i` of an optional string column; `None` when the column or the value is null.
fn opt(c: Option<&StringArray>, i: usize) -> Option<String> {
    c.filter(|c| c.is_valid(i)).map(|c| c.value(i).to_string())
}

fn required(c: Option<StringArray>, name: &str, path: &Path) -> Result<StringArray, CacheError> {
    c.ok_or_else(|| CacheError::Format {
        path: path.to_path_buf(),
        message: format!("missing column `{name}`; not a headstart cache part"),
    })
}

/// Label, split and source version of a stored row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowMeta {
    /// Class label, if any.
    pub label: Option<String>,
    /// Split the row was assigned to, if any.
    pub split: Option<String>,
    /// The object's version (size and ETag) for rows read from object storage.
    pub version: Option<String>,
}

impl RowMeta {
    /// Stored with this `label` and `split`.
    fn is(&self, label: Option<&str>, split: Option<&str>) -> bool {
        self.label.as_deref() == label && self.split.as_deref() == split
    }
}

/// A live row's key and what is stored with it.
#[derive(Debug)]
struct LiveRow {
    path: String,
    view: String,
    hash: String,
    meta: RowMeta,
}

/// The live rows of a cache, keyed for incremental extraction.
#[derive(Debug, Default)]
pub struct LiveIndex {
    /// The live rows sorted by `(path, view)`, their positions in a table
    /// read from the cache; lookups search them (a map of maps per path
    /// cost the scan a third of its time).
    rows: Vec<LiveRow>,
    /// Rows stored but no longer live (superseded or deleted); `compact` drops them.
    pub dead_rows: usize,
    /// Parts and tombstone files in the cache.
    pub files: usize,
    /// (part index, row index, position in key order) of each live row, in
    /// part order: readers give rows sorted by `(path, view)`, so what they
    /// return never depends on how rows are spread over parts (compaction).
    live: Vec<(usize, usize, usize)>,
    parts: Vec<PathBuf>,
    /// Rows stored in each part.
    part_rows: Vec<usize>,
    /// Each part's identity: the id in its footer, else its device and inode.
    part_ids: Vec<String>,
    /// Parts skipped as the same file as an earlier one (a hard link or copy).
    pub duplicate_parts: usize,
}

impl LiveIndex {
    /// Number of live rows.
    pub fn live_rows(&self) -> usize {
        self.live.len()
    }

    /// The live paths (images; a path has a row per view), sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.rows
            .iter()
            .enumerate()
            .filter(|(i, r)| *i == 0 || self.rows[i - 1].path != r.path)
            .map(|(_, r)| r.path.as_str())
    }

    /// True if `path` has a live row.
    pub fn contains_path(&self, path: &str) -> bool {
        !self.views_of(path).is_empty()
    }

    /// The live rows of `path`, one per view, sorted by view.
    fn views_of(&self, path: &str) -> &[LiveRow] {
        let lo = self.rows.partition_point(|r| r.path.as_str() < path);
        let hi = lo + self.rows[lo..].partition_point(|r| r.path == path);
        &self.rows[lo..hi]
    }

    /// True if `path` is live with `hash` and has `view`, stored with this
    /// `label` and `split` (a relabelled file needs its rows rewritten).
    pub fn has(
        &self,
        path: &str,
        hash: &str,
        view: &str,
        label: Option<&str>,
        split: Option<&str>,
    ) -> bool {
        self.row(path, view)
            .is_some_and(|(h, m)| h == hash && m.is(label, split))
    }

    /// True if `path` has a live `view` read from an object of this
    /// `version` (size and ETag as the store reported them), stored with this
    /// `label` and `split`: the object need not be read again.
    pub fn has_version(
        &self,
        path: &str,
        version: &str,
        view: &str,
        label: Option<&str>,
        split: Option<&str>,
    ) -> bool {
        self.row(path, view)
            .is_some_and(|(_, m)| m.version.as_deref() == Some(version) && m.is(label, split))
    }

    /// The content hash of live `path` and the row of its `view`.
    fn row(&self, path: &str, view: &str) -> Option<(&str, &RowMeta)> {
        let views = self.views_of(path);
        let i = views.binary_search_by(|r| r.view.as_str().cmp(view)).ok()?;
        Some((&views[i].hash, &views[i].meta))
    }

    /// The source version of a live row of `path` (its original view first).
    pub fn version_of(&self, path: &str) -> Option<&str> {
        let views = self.views_of(path);
        views
            .iter()
            .find(|r| r.view == crate::ORIGINAL_VIEW)
            .or(views.first())
            .and_then(|r| r.meta.version.as_deref())
    }
}

/// How often a reader lists the parts again when compaction removed one under it.
const READ_ATTEMPTS: usize = 20;

impl Cache {
    /// Scans the keys of every part (not the features) and resolves which rows are live.
    pub fn live_index(&self) -> Result<LiveIndex, CacheError> {
        self.retry_vanished(|| self.live_index_of(&list_entries(&self.parts_dir())?))
    }

    /// Runs `read`, again from a fresh listing when a part it listed vanished
    /// (compaction removes parts once their rows are rewritten).
    fn retry_vanished<T>(
        &self,
        mut read: impl FnMut() -> Result<T, CacheError>,
    ) -> Result<T, CacheError> {
        let mut attempt = 1;
        loop {
            match read() {
                Err(CacheError::Io { path, source })
                    if source.kind() == std::io::ErrorKind::NotFound
                        && path.starts_with(self.parts_dir())
                        && attempt < READ_ATTEMPTS =>
                {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(25 * attempt as u64));
                }
                other => return other,
            }
        }
    }

    /// A part or tombstone that cannot be parsed, reported with the fix.
    fn damaged(&self, e: CacheError) -> CacheError {
        match e {
            CacheError::Format { path, message } if path.starts_with(self.parts_dir()) => {
                CacheError::Damaged {
                    path,
                    cache: self.dir().to_path_buf(),
                    message,
                }
            }
            e => e,
        }
    }

    /// [`Cache::live_index`] over the given entries only.
    fn live_index_of(&self, entries: &[Entry]) -> Result<LiveIndex, CacheError> {
        self.scan(entries).map_err(|e| self.damaged(e))
    }

    fn scan(&self, entries: &[Entry]) -> Result<LiveIndex, CacheError> {
        // newest row per (path, view): (order, part, row, hash, label and split)
        type Newest = (usize, usize, usize, String, RowMeta);
        // foldhash, not SipHash: the scan hashes every row's path a few times
        // and was most of a cache read's single-threaded time.
        let mut newest: foldhash::HashMap<(String, String), Newest> = Default::default();
        // newest hash per path and the (order, row) from which the path has had
        // it: rows from before a change of content are dead for good, so a file
        // that changes back does not revive them (compaction has dropped them);
        // newest tombstone order per path
        let mut path_hash: foldhash::HashMap<String, ((usize, usize), String)> = Default::default();
        let mut tomb: foldhash::HashMap<String, usize> = Default::default();
        let (mut parts, mut part_rows, mut part_ids) = (Vec::new(), Vec::new(), Vec::new());
        let mut duplicate_parts = 0;
        let mut total_rows = 0usize;
        for (order, entry) in entries.iter().enumerate() {
            match entry {
                Entry::Tomb(p) => {
                    let text = std::fs::read_to_string(p).map_err(CacheError::io(p))?;
                    let t: Tombstones =
                        serde_json::from_str(&text).map_err(|e| CacheError::Format {
                            path: p.clone(),
                            message: e.to_string(),
                        })?;
                    for path in t.paths {
                        tomb.insert(path, order);
                    }
                }
                Entry::Part(p) => {
                    let cols = [
                        columns::PATH,
                        columns::CONTENT_HASH,
                        columns::VIEW,
                        columns::LABEL,
                        columns::SPLIT,
                        columns::SOURCE_VERSION,
                    ];
                    let (reader, id, rows) = open_reader(p, Some(&cols))?;
                    if part_ids.contains(&id) {
                        // The same part again (a hard link or a copy): its rows once.
                        duplicate_parts += 1;
                        continue;
                    }
                    newest.reserve(rows);
                    path_hash.reserve(rows);
                    let part = parts.len();
                    parts.push(p.clone());
                    let mut row = 0usize;
                    for batch in reader {
                        let batch = batch.map_err(|e| CacheError::Format {
                            path: p.clone(),
                            message: e.to_string(),
                        })?;
                        let paths = required(str_col(&batch, columns::PATH, p)?, columns::PATH, p)?;
                        let hashes = required(
                            str_col(&batch, columns::CONTENT_HASH, p)?,
                            columns::CONTENT_HASH,
                            p,
                        )?;
                        let views = required(str_col(&batch, columns::VIEW, p)?, columns::VIEW, p)?;
                        let labels = str_col(&batch, columns::LABEL, p)?;
                        let splits = str_col(&batch, columns::SPLIT, p)?;
                        let versions = str_col(&batch, columns::SOURCE_VERSION, p)?;
                        for i in 0..batch.num_rows() {
                            let (path, hash, view) =
                                (paths.value(i), hashes.value(i), views.value(i));
                            newest.insert(
                                (path.to_string(), view.to_string()),
                                (
                                    order,
                                    part,
                                    row,
                                    hash.to_string(),
                                    RowMeta {
                                        label: opt(labels.as_ref(), i),
                                        split: opt(splits.as_ref(), i),
                                        version: opt(versions.as_ref(), i),
                                    },
                                ),
                            );
                            match path_hash.get_mut(path) {
                                Some((_, h)) if h == hash => {}
                                Some(entry) => *entry = ((order, row), hash.to_string()),
                                None => {
                                    path_hash
                                        .insert(path.to_string(), ((order, row), hash.to_string()));
                                }
                            }
                            row += 1;
                        }
                    }
                    total_rows += row;
                    part_rows.push(row);
                    part_ids.push(id);
                }
            }
        }
        let mut index = LiveIndex {
            files: entries.len(),
            parts,
            part_rows,
            part_ids,
            duplicate_parts,
            ..LiveIndex::default()
        };
        let mut live: Vec<(LiveRow, (usize, usize))> = Vec::with_capacity(newest.len());
        for ((path, view), (order, part, row, hash, meta)) in newest {
            let Some((since, newest_hash)) = path_hash.get(&path) else {
                continue;
            };
            let deleted = tomb.get(&path).is_some_and(|&t| t > order);
            if deleted || *newest_hash != hash || (order, row) < *since {
                continue;
            }
            let key = LiveRow {
                path,
                view,
                hash,
                meta,
            };
            live.push((key, (part, row)));
        }
        // Keys are unique, so the unstable sort is deterministic.
        live.par_sort_unstable_by(|(a, _), (b, _)| {
            (a.path.as_str(), a.view.as_str()).cmp(&(b.path.as_str(), b.view.as_str()))
        });
        let (rows, places): (Vec<_>, Vec<_>) = live.into_iter().unzip();
        index.rows = rows;
        index.live = places
            .into_iter()
            .enumerate()
            .map(|(pos, (part, row))| (part, row, pos))
            .collect();
        index.live.par_sort_unstable();
        index.dead_rows = total_rows - index.live.len();
        Ok(index)
    }

    /// Reads all live rows.
    pub fn read(&self) -> Result<FeatureTable, CacheError> {
        Ok(self.read_identified()?.0)
    }

    /// [`Cache::read`], with the identities of the parts read.
    fn read_identified(&self) -> Result<(FeatureTable, Vec<String>), CacheError> {
        self.retry_vanished(|| {
            let index = self.live_index_of(&list_entries(&self.parts_dir())?)?;
            let ids = index.part_ids.clone();
            Ok((self.read_index(index)?, ids))
        })
    }

    /// The live rows that `index` lists.
    fn read_index(&self, index: LiveIndex) -> Result<FeatureTable, CacheError> {
        self.read_rows(index).map_err(|e| self.damaged(e))
    }

    /// The table of `index`'s live rows: keys, labels and splits from the
    /// index (the scan read them), features straight from each part's float
    /// column into their rows' slots, in row ranges on the pool (a part's
    /// pages outside its range are skipped through the page index, so a
    /// cache of few big parts still keeps every core busy).
    fn read_rows(&self, index: LiveIndex) -> Result<FeatureTable, CacheError> {
        let dim = self.info().feature_dim;
        let mut features = vec![0f32; index.live.len() * dim];
        // Per part, each stored row's position in the table (DEAD: not live).
        let mut slots: Vec<Vec<usize>> = index.part_rows.iter().map(|&n| vec![DEAD; n]).collect();
        for &(part, row, pos) in &index.live {
            slots[part][row] = pos;
        }
        let threads = rayon::current_num_threads().max(1);
        let span = (index.live.len() / (4 * threads)).max(MIN_JOB_ROWS);
        let jobs: Vec<(usize, std::ops::Range<usize>)> = slots
            .iter()
            .enumerate()
            .flat_map(|(part, rows)| {
                (0..rows.len())
                    .step_by(span)
                    .map(move |lo| (part, lo..(lo + span).min(rows.len())))
            })
            .filter(|(part, range)| slots[*part][range.clone()].iter().any(|&p| p != DEAD))
            .collect();
        let LiveIndex {
            rows: keys, parts, ..
        } = index;
        // Each job gets the table rows its part rows go to (positions are
        // unique, so every row goes to one job): jobs write without a lock,
        // and the first touch of the table's pages happens on every core.
        let mut rows: Vec<Option<&mut [f32]>> = features.chunks_mut(dim.max(1)).map(Some).collect();
        let dsts: Vec<Vec<Option<&mut [f32]>>> = jobs
            .iter()
            .map(|(part, range)| {
                slots[*part][range.clone()]
                    .iter()
                    .map(|&pos| rows.get_mut(pos).and_then(Option::take))
                    .collect()
            })
            .collect();
        jobs.par_iter()
            .zip(dsts)
            .try_for_each(|((part, range), dst)| {
                part_features(&parts[*part], dim, range.clone(), dst)
            })?;
        Ok(FeatureTable {
            dim,
            model_fingerprint: Some(self.info().model_fingerprint.clone()),
            model_name: Some(self.info().model_name.clone()),
            features,
            ..key_columns(keys)
        })
    }
}

/// A table of no features holding the key columns (paths, views, content
/// hashes, labels, splits) of `rows`, in their order.
fn key_columns(rows: Vec<LiveRow>) -> FeatureTable {
    let n = rows.len();
    let mut t = FeatureTable {
        paths: Vec::with_capacity(n),
        views: Vec::with_capacity(n),
        content_hashes: Vec::with_capacity(n),
        labels: Vec::with_capacity(n),
        splits: Vec::with_capacity(n),
        ..FeatureTable::default()
    };
    for LiveRow {
        path,
        view,
        hash,
        meta,
    } in rows
    {
        t.labels.push(meta.label);
        t.splits.push(meta.split);
        t.content_hashes.push(hash);
        t.paths.push(path);
        t.views.push(view);
    }
    t
}

/// `slots` value of a row that is not live.
const DEAD: usize = usize::MAX;
/// Fewest rows a read job takes (below, opening the part costs more).
const MIN_JOB_ROWS: usize = 4096;

/// Copies the features of the rows `rows` of the cache part at `path` into
/// `dst`, the table row of each stored row in `rows` (`None`: not live;
/// `dim` values a row), read from the Parquet float column
/// directly (no Arrow list arrays in between), a few dozen rows at a time.
/// Each row must hold exactly `dim` values.
fn part_features(
    path: &Path,
    dim: usize,
    rows: std::ops::Range<usize>,
    mut dst: Vec<Option<&mut [f32]>>,
) -> Result<(), CacheError> {
    use parquet::column::reader::ColumnReader;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::file::serialized_reader::ReadOptionsBuilder;
    let file = File::open(path).map_err(CacheError::io(path))?;
    // The page index lets `skip_records` pass over whole pages unread.
    let options = ReadOptionsBuilder::new().with_page_index().build();
    let reader =
        SerializedFileReader::new_with_options(file, options).map_err(CacheError::parquet(path))?;
    check_codecs(path, reader.metadata())?;
    let item = format!("{}.list.{}", columns::FEATURE, columns::FEATURE_ITEM);
    let col = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.path().string() == item)
        .ok_or_else(|| CacheError::Format {
            path: path.to_path_buf(),
            message: format!("no `{item}` column; not a headstart cache part"),
        })?;
    let format = |message: String| CacheError::Format {
        path: path.to_path_buf(),
        message,
    };
    let damaged = |e: parquet::errors::ParquetError| {
        format(format!(
            "cannot decode its data ({e}); is the file damaged?"
        ))
    };
    let (mut values, mut defs, mut reps) = (Vec::new(), Vec::new(), Vec::new());
    // Batches of about 64 Ki values: the values and their two levels stay in
    // a core's L2 cache until copied out (50,000 1280-d rows read in
    // 0.41-0.56 s in 1,024-row batches, 0.37-0.40 s in batches of 16-128).
    let batch_rows = ((1usize << 16) / dim.max(1)).clamp(1, 1024);
    // First row of the current row group.
    let mut first = 0usize;
    for g in 0..reader.num_row_groups() {
        if first >= rows.end {
            break;
        }
        let group = reader.get_row_group(g).map_err(CacheError::parquet(path))?;
        let group_rows = usize::try_from(group.metadata().num_rows()).unwrap_or(0);
        if first + group_rows <= rows.start {
            first += group_rows;
            continue;
        }
        let ColumnReader::FloatColumnReader(mut column) = group
            .get_column_reader(col)
            .map_err(CacheError::parquet(path))?
        else {
            return Err(format(format!("`{item}` is not a float column")));
        };
        let mut row = first;
        if rows.start > row {
            let want = rows.start - row;
            let skipped = column.skip_records(want).map_err(damaged)?;
            if skipped != want {
                return Err(format(format!(
                    "a row group of {group_rows} rows ends after {skipped} of them"
                )));
            }
            row = rows.start;
        }
        let end = rows.end.min(first + group_rows);
        while row < end {
            values.clear();
            defs.clear();
            reps.clear();
            let batch = (rows.end - row).min(batch_rows);
            let (records, read, _) = column
                .read_records(batch, Some(&mut defs), Some(&mut reps), &mut values)
                .map_err(damaged)?;
            if records == 0 {
                break;
            }
            if read != records * dim {
                return Err(CacheError::Row {
                    path: path.to_path_buf(),
                    row,
                    message: format!(
                        "{records} rows hold {read} feature values, expected {dim} each"
                    ),
                });
            }
            for (k, v) in values.chunks_exact(dim).enumerate() {
                if let Some(Some(out)) = dst.get_mut(row + k - rows.start) {
                    out.copy_from_slice(v);
                }
            }
            row += records;
        }
        if row < end {
            return Err(format(format!(
                "its features end at row {row}, its other columns at {end}; is the file damaged?"
            )));
        }
        first += group_rows;
    }
    Ok(())
}

/// One stored row, borrowed from the batch it was read in.
pub(crate) struct RowRef<'a> {
    pub path: &'a str,
    pub label: Option<&'a str>,
    pub split: Option<&'a str>,
    pub hash: &'a str,
    pub version: Option<&'a str>,
    pub view: &'a str,
    pub feature: &'a [f32],
}

impl LiveIndex {
    /// Whether compacting would change nothing but file names: no dead rows,
    /// no tombstones or duplicate parts (of `files` listed), and at most one
    /// part smaller than `part_rows` (a compaction's last part). Compacting
    /// such a cache again is a no-op at every size.
    fn is_compact(&self, files: usize, part_rows: usize) -> bool {
        let small = self.part_rows.iter().filter(|&&n| n < part_rows).count();
        self.dead_rows == 0 && self.parts.len() == files && small <= 1
    }

    /// Calls `f(row)` for each live row in file order (part by part, row by
    /// row), one batch in memory at a time.
    fn read_in_file_order(
        &self,
        dim: usize,
        f: &mut dyn FnMut(RowRef<'_>) -> Result<(), CacheError>,
    ) -> Result<(), CacheError> {
        self.for_each_live(dim, &mut |_, r| f(r))
    }

    /// Calls `f(position, row)` for each live row, part by part, reading one
    /// batch at a time: memory stays that of a batch, whatever the cache size.
    pub(crate) fn for_each_live(
        &self,
        dim: usize,
        f: &mut dyn FnMut(usize, RowRef<'_>) -> Result<(), CacheError>,
    ) -> Result<(), CacheError> {
        let mut live = self.live.iter().peekable();
        for (part, path) in self.parts.iter().enumerate() {
            let rows: HashMap<usize, usize> = std::iter::from_fn(|| {
                live.next_if(|(p, _, _)| *p == part)
                    .map(|&(_, r, pos)| (r, pos))
            })
            .collect();
            if !rows.is_empty() {
                visit_part(path, &rows, dim, f)?;
            }
        }
        Ok(())
    }
}

/// Calls `f(position, row)` for the rows of the cache part at `path` that
/// `keep` maps to a position, in file order.
fn visit_part(
    path: &Path,
    keep: &HashMap<usize, usize>,
    dim: usize,
    f: &mut dyn FnMut(usize, RowRef<'_>) -> Result<(), CacheError>,
) -> Result<(), CacheError> {
    let (reader, _) = open_checked(path)?;
    let mut row = 0usize;
    let mut scratch = vec![0f32; dim];
    for batch in reader {
        let batch = batch.map_err(|e| CacheError::Format {
            path: path.to_path_buf(),
            message: format!("cannot decode its data ({e}); is the file damaged?"),
        })?;
        let col = |name| required(str_col(&batch, name, path)?, name, path);
        let (paths, hashes, views) = (
            col(columns::PATH)?,
            col(columns::CONTENT_HASH)?,
            col(columns::VIEW)?,
        );
        let labels = str_col(&batch, columns::LABEL, path)?;
        let splits = str_col(&batch, columns::SPLIT, path)?;
        let versions = str_col(&batch, columns::SOURCE_VERSION, path)?;
        let feature = batch
            .column_by_name(columns::FEATURE)
            .ok_or_else(|| CacheError::Format {
                path: path.to_path_buf(),
                message: format!("no `{}` column", columns::FEATURE),
            })?;
        for i in 0..batch.num_rows() {
            let global = row + i;
            let Some(&pos) = keep.get(&global) else {
                continue;
            };
            let bad = |message| CacheError::Row {
                path: path.to_path_buf(),
                row: global,
                message,
            };
            copy_feature(feature.as_ref(), i, &mut scratch).map_err(bad)?;
            f(
                pos,
                RowRef {
                    path: paths.value(i),
                    label: valid(labels.as_ref(), i),
                    split: valid(splits.as_ref(), i),
                    hash: hashes.value(i),
                    version: valid(versions.as_ref(), i),
                    view: views.value(i),
                    feature: &scratch,
                },
            )?;
        }
        row += batch.num_rows();
    }
    Ok(())
}

/// Value `i` of an optional string column; `None` when the column or the value is null.
fn valid(c: Option<&StringArray>, i: usize) -> Option<&str> {
    c.filter(|c| c.is_valid(i)).map(|c| c.value(i))
}

/// Copies the feature vector of row `i` into `dst`, whose length is the
/// dimension expected: FixedSizeList<Float32> straight from the column's
/// values, any other list of floats through [`feature_row`].
fn copy_feature(col: &dyn Array, i: usize, dst: &mut [f32]) -> Result<(), String> {
    if let Some(fsl) = col.as_fixed_size_list_opt()
        && let Some(values) = fsl.values().as_primitive_opt::<Float32Type>()
        && fsl.value_length() as usize == dst.len()
        && !col.is_null(i)
        && values.null_count() == 0
    {
        let start = (fsl.offset() + i) * dst.len();
        dst.copy_from_slice(&values.values()[start..start + dst.len()]);
        return Ok(());
    }
    let v = feature_row(col, i)?;
    if v.len() != dst.len() {
        return Err(format!(
            "feature has {} values, expected {}",
            v.len(),
            dst.len()
        ));
    }
    dst.copy_from_slice(&v);
    Ok(())
}

/// Appends rows of one Parquet file (all rows, or those in `keep`) to `table`.
fn append_file(
    table: &mut FeatureTable,
    path: &Path,
    keep: Option<&HashSet<usize>>,
) -> Result<(), CacheError> {
    let mut row = 0usize;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (reader, metadata) = open_checked(path)?;
    for batch in reader {
        let batch = batch.map_err(|e| CacheError::Format {
            path: path.to_path_buf(),
            message: format!("cannot decode its data ({e}); is the file damaged?"),
        })?;
        // The batches lack the file's schema metadata, where Hugging Face
        // `datasets` keeps the ClassLabel names of integer labels.
        let batch = with_metadata(batch, &metadata);
        let feature = batch
            .column_by_name(columns::FEATURE)
            .ok_or_else(|| CacheError::Format {
                path: path.to_path_buf(),
                message: format!(
                    "no `{}` column; a feature file needs a list-of-float column named `feature`",
                    columns::FEATURE
                ),
            })?;
        let paths = str_col(&batch, columns::PATH, path)?;
        let labels = str_col(&batch, columns::LABEL, path)?;
        let splits = str_col(&batch, columns::SPLIT, path)?;
        let hashes = str_col(&batch, columns::CONTENT_HASH, path)?;
        let views = str_col(&batch, columns::VIEW, path)?;
        for i in 0..batch.num_rows() {
            let global = row + i;
            if keep.is_some_and(|k| !k.contains(&global)) {
                continue;
            }
            let values = feature_row(feature.as_ref(), i).map_err(|message| CacheError::Row {
                path: path.to_path_buf(),
                row: global,
                message,
            })?;
            if table.dim == 0 && table.is_empty() {
                table.dim = values.len();
            }
            if values.len() != table.dim {
                return Err(CacheError::Row {
                    path: path.to_path_buf(),
                    row: global,
                    message: format!(
                        "feature has {} values, expected {}",
                        values.len(),
                        table.dim
                    ),
                });
            }
            table.features.extend(values);
            let p = opt(paths.as_ref(), i).unwrap_or_else(|| format!("{file_name}#{global}"));
            table
                .content_hashes
                .push(opt(hashes.as_ref(), i).unwrap_or_else(|| format!("path:{p}")));
            table.paths.push(p);
            table.labels.push(opt(labels.as_ref(), i));
            table.splits.push(opt(splits.as_ref(), i));
            table
                .views
                .push(opt(views.as_ref(), i).unwrap_or_else(|| crate::ORIGINAL_VIEW.into()));
        }
        row += batch.num_rows();
    }
    Ok(())
}

/// Schema-level key-value metadata of a file.
type SchemaMetadata = arrow_schema::Metadata;

/// A reader of every column of `path`, once [`check_codecs`] passed, and the
/// file's schema metadata.
fn open_checked(
    path: &Path,
) -> Result<
    (
        parquet::arrow::arrow_reader::ParquetRecordBatchReader,
        SchemaMetadata,
    ),
    CacheError,
> {
    let file = File::open(path).map_err(CacheError::io(path))?;
    let b = ParquetRecordBatchReaderBuilder::try_new(file).map_err(CacheError::parquet(path))?;
    check_codecs(path, b.metadata())?;
    let metadata = b.schema().metadata().clone();
    let reader = b
        .with_batch_size(8192)
        .build()
        .map_err(CacheError::parquet(path))?;
    Ok((reader, metadata))
}

/// `batch` with `metadata` added to its schema's.
fn with_metadata(batch: RecordBatch, metadata: &SchemaMetadata) -> RecordBatch {
    if metadata.is_empty() {
        return batch;
    }
    let schema = batch.schema();
    let mut all = schema.metadata().clone();
    all.extend(metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
    let schema = Schema::new_with_metadata(schema.fields().clone(), all);
    // A schema that only adds metadata always fits the batch.
    batch.clone().with_schema(Arc::new(schema)).unwrap_or(batch)
}

/// Errors, naming the codec, the column and the file, when a column chunk is
/// compressed with a codec that this build cannot decompress. It reads
/// uncompressed, snappy, gzip, LZ4 (Hadoop-framed and raw), brotli and zstd: every
/// codec that pyarrow, pandas, Polars, DuckDB and Spark write; only LZO is left.
fn check_codecs(path: &Path, meta: &ParquetMetaData) -> Result<(), CacheError> {
    for rg in meta.row_groups() {
        for c in rg.columns() {
            if matches!(c.compression(), Compression::LZO) {
                return Err(CacheError::Codec {
                    path: path.to_path_buf(),
                    column: c.column_path().string(),
                    codec: c.compression().to_string(),
                });
            }
        }
    }
    Ok(())
}

/// The feature vector of row `i` of a FixedSizeList, List or LargeList of Float32/Float64.
fn feature_row(col: &dyn Array, i: usize) -> Result<Vec<f32>, String> {
    if col.is_null(i) {
        return Err("feature is null".into());
    }
    let values = match col.data_type() {
        DataType::FixedSizeList(_, _) => col.as_fixed_size_list().value(i),
        DataType::List(_) => col.as_list::<i32>().value(i),
        DataType::LargeList(_) => col.as_list::<i64>().value(i),
        other => {
            return Err(format!(
                "feature column has type {other}, expected a list of float"
            ));
        }
    };
    if values.null_count() > 0 {
        return Err("feature has null values".into());
    }
    match values.data_type() {
        DataType::Float32 => Ok(values.as_primitive::<Float32Type>().values().to_vec()),
        DataType::Float64 => Ok(values
            .as_primitive::<Float64Type>()
            .values()
            .iter()
            .map(|&v| v as f32)
            .collect()),
        other => Err(format!(
            "feature items have type {other}, expected float32 or float64"
        )),
    }
}

/// (model fingerprint, model name, feature dim) from a file's footer, when recorded.
type Identity = (Option<String>, Option<String>, Option<usize>);

fn file_identity(path: &Path) -> Result<Identity, CacheError> {
    let file = File::open(path).map_err(CacheError::io(path))?;
    let b = ParquetRecordBatchReaderBuilder::try_new(file).map_err(CacheError::parquet(path))?;
    let kv = kv_map(b.metadata().file_metadata().key_value_metadata());
    Ok((
        kv.get(meta_keys::MODEL_FINGERPRINT).cloned(),
        kv.get(meta_keys::MODEL_NAME).cloned(),
        kv.get(meta_keys::FEATURE_DIM).and_then(|d| d.parse().ok()),
    ))
}

/// The cache that `path` lies in, when it is a cache's `parts` folder or a file in it.
fn enclosing_cache(path: &Path) -> Option<PathBuf> {
    let parts = if path.is_dir() { path } else { path.parent()? };
    let cache = parts.parent()?;
    (parts.file_name()? == "parts" && cache.join("cache.json").is_file())
        .then(|| cache.to_path_buf())
}

/// Reads features from any mix of cache directories, plain directories of Parquet
/// files and single Parquet files (e.g. written by pyarrow, with the feature column
/// as FixedSizeList or List). Refuses to mix model fingerprints or dimensions.
/// A cache's `parts` folder, or a file in it, is refused: it also holds dead rows.
/// The same cache or file given twice (under any spelling of its path) is refused.
pub fn read_features(inputs: &[PathBuf]) -> Result<FeatureTable, CacheError> {
    let mut out = FeatureTable::default();
    let mut first: Option<(PathBuf, Option<String>, usize)> = None;
    let mut seen: HashMap<PathBuf, PathBuf> = HashMap::new();
    let mut part_owner: HashMap<String, PathBuf> = HashMap::new();
    let mut once = |p: &Path| -> Result<(), CacheError> {
        let key = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        match seen.insert(key, p.to_path_buf()) {
            Some(first) => Err(CacheError::Repeated {
                first,
                second: p.to_path_buf(),
            }),
            None => Ok(()),
        }
    };
    for input in inputs {
        if let Some(cache) = enclosing_cache(input) {
            return Err(CacheError::InsideCache {
                path: input.clone(),
                cache,
            });
        }
        once(input)?;
        let mut t = if input.join("cache.json").is_file() {
            let (t, ids) = Cache::open(input)?.read_identified()?;
            // A copied cache, or parts hard-linked between caches: rows once.
            for id in ids {
                if let Some(first) = part_owner.insert(id, input.clone()) {
                    return Err(CacheError::SharedParts {
                        first,
                        second: input.clone(),
                    });
                }
            }
            t
        } else if input.is_dir() {
            let mut t = FeatureTable::default();
            let mut files: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(CacheError::io(input))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(CacheError::NotACache {
                    path: input.clone(),
                });
            }
            for f in &files {
                once(f)?;
                read_foreign(&mut t, f)?;
            }
            t
        } else {
            let mut t = FeatureTable::default();
            read_foreign(&mut t, input)?;
            t
        };
        let fp = t.model_fingerprint.clone();
        match &first {
            None => first = Some((input.clone(), fp, t.dim)),
            Some((p0, fp0, d0)) => {
                if fp != *fp0 || t.dim != *d0 {
                    let desc = |fp: &Option<String>, d: usize| {
                        format!(
                            "fingerprint {}, {d}-d features",
                            fp.as_deref().unwrap_or("unknown")
                        )
                    };
                    return Err(CacheError::Mixed {
                        first: p0.clone(),
                        first_desc: desc(fp0, *d0),
                        second: input.clone(),
                        second_desc: desc(&fp, t.dim),
                    });
                }
            }
        }
        if out.is_empty() && out.dim == 0 {
            // The first input's table is the result (appending would copy it).
            out = t;
            continue;
        }
        out.paths.append(&mut t.paths);
        out.labels.append(&mut t.labels);
        out.splits.append(&mut t.splits);
        out.content_hashes.append(&mut t.content_hashes);
        out.views.append(&mut t.views);
        out.features.append(&mut t.features);
    }
    Ok(out)
}

fn read_foreign(t: &mut FeatureTable, path: &Path) -> Result<(), CacheError> {
    let (fp, name, dim) = file_identity(path)?;
    if t.is_empty() {
        t.model_fingerprint = fp;
        t.model_name = name;
        if let Some(d) = dim {
            t.dim = d;
        }
    } else if fp != t.model_fingerprint {
        return Err(CacheError::Mixed {
            first: path.with_file_name(""),
            first_desc: format!(
                "fingerprint {}",
                t.model_fingerprint.as_deref().unwrap_or("unknown")
            ),
            second: path.to_path_buf(),
            second_desc: format!("fingerprint {}", fp.as_deref().unwrap_or("unknown")),
        });
    }
    append_file(t, path, None)
}

/// What [`Cache::compact`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactStats {
    /// Live rows kept.
    pub live_rows: usize,
    /// Dead rows dropped.
    pub dropped_rows: usize,
    /// Files removed.
    pub files_removed: usize,
}

/// A step of [`Cache::compact`], for tests that crash it or write beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The live rows were read; nothing was written yet.
    Read,
    /// The n-th new part (0-based) is written.
    Wrote(usize),
    /// The new parts were read back and hold what was written.
    Verified,
    /// The n-th old file (0-based) is removed.
    Removed(usize),
}

/// Feature bytes per part that compaction writes: what it holds in memory at
/// once, whatever the size of the cache.
const COMPACT_PART_BYTES: usize = 64 << 20;

/// Rows per part that compaction writes for `dim`-d features (13,107 at 1280-d).
fn compact_part_rows(dim: usize) -> usize {
    (COMPACT_PART_BYTES / (4 * dim.max(1))).clamp(1024, 1 << 20)
}

impl Cache {
    /// Rewrites the live rows into fresh parts and removes the old parts and tombstones.
    ///
    /// Takes the cache's lock exclusively, so it waits for running extracts
    /// (`waiting` is told why). Idempotent: a cache without dead rows in more than
    /// one file is left as it is. Safe against crashes at any step: the new parts
    /// are complete and read back before anything is removed, old parts go before
    /// the tombstones that kill their rows, and no file is ever replaced. Also
    /// safe against writers that ignore the lock: only the files listed at the
    /// start are read and removed, and the new parts sort right after the newest
    /// of them, so rows and tombstones written meanwhile stay newer.
    pub fn compact(
        &self,
        run: crate::RunInfo,
        waiting: &dyn Fn(&str),
    ) -> Result<CompactStats, CacheError> {
        let _lock = self.lock(crate::LockKind::Exclusive, waiting)?;
        self.compact_with(run, compact_part_rows(self.info().feature_dim), &mut |_| {
            true
        })
    }

    /// [`Cache::compact`] without the lock, writing parts of `part_rows` rows and
    /// calling `step` before each step (tests stop it there, or write beside it:
    /// it returns false to simulate a crash).
    pub(crate) fn compact_with(
        &self,
        run: crate::RunInfo,
        part_rows: usize,
        step: &mut dyn FnMut(Step) -> bool,
    ) -> Result<CompactStats, CacheError> {
        let crash = |at: Step| CacheError::Format {
            path: self.dir().to_path_buf(),
            message: format!("compaction stopped at {at:?} (simulated crash)"),
        };
        let before = list_entries(&self.parts_dir())?;
        let index = self.live_index_of(&before)?;
        if index.is_compact(before.len(), part_rows) {
            return Ok(CompactStats {
                live_rows: index.live_rows(),
                dropped_rows: 0,
                files_removed: 0,
            });
        }
        if !step(Step::Read) {
            return Err(crash(Step::Read));
        }
        let mut w = crate::PartWriter::new(self, run);
        if let Some(newest) = before.last() {
            // Name the new parts after the newest listed one: `<base>~c<n>`, with n
            // past every compacted part of that base, so no name is reused.
            let seq = newest.seq();
            let base = seq.split('~').next().unwrap_or_default();
            let last = before
                .iter()
                .filter_map(|e| {
                    e.seq()
                        .strip_prefix(base)?
                        .strip_prefix("~c")?
                        .parse::<usize>()
                        .ok()
                })
                .max()
                .unwrap_or(0);
            w = w.with_seq_after(base, last);
        }
        // Streamed: one batch read and one part buffered at a time.
        let mut written: Vec<(PathBuf, usize)> = Vec::new();
        let mut flush = |w: &mut crate::PartWriter,
                         step: &mut dyn FnMut(Step) -> bool|
         -> Result<(), CacheError> {
            let rows = w.len();
            if let Some(p) = w.flush()? {
                written.push((p, rows));
                if !step(Step::Wrote(written.len() - 1)) {
                    return Err(crash(Step::Wrote(written.len() - 1)));
                }
            }
            Ok(())
        };
        let part_rows = part_rows.max(1);
        index
            .read_in_file_order(self.info().feature_dim, &mut |r| {
                if w.is_empty() {
                    w.reserve(part_rows.min(index.live_rows()));
                }
                w.push(crate::Row {
                    path: r.path,
                    label: r.label,
                    split: r.split,
                    content_hash: r.hash,
                    source_version: r.version,
                    view: r.view,
                    feature: r.feature,
                })?;
                if w.len() >= part_rows {
                    flush(&mut w, step)?;
                }
                Ok(())
            })
            .map_err(|e| self.damaged(e))?;
        flush(&mut w, step)?;
        let live_rows = written.iter().map(|(_, n)| n).sum();
        // Read back what was written before removing anything.
        for (p, rows) in &written {
            let file = File::open(p).map_err(CacheError::io(p))?;
            let n = ParquetRecordBatchReaderBuilder::try_new(file)
                .map_err(CacheError::parquet(p))?
                .metadata()
                .file_metadata()
                .num_rows();
            if usize::try_from(n).ok() != Some(*rows) {
                return Err(CacheError::Format {
                    path: p.clone(),
                    message: format!(
                        "compaction wrote {rows} rows but the part holds {n}; nothing was removed"
                    ),
                });
            }
        }
        if !step(Step::Verified) {
            return Err(crash(Step::Verified));
        }
        // Parts first, oldest first; tombstones last: a tombstone removed before
        // the part holding the rows it kills would bring those rows back.
        let (mut old, tombs): (Vec<Entry>, Vec<Entry>) = before
            .into_iter()
            .partition(|e| matches!(e, Entry::Part(_)));
        old.extend(tombs);
        let mut removed = 0;
        for e in old {
            let p = match e {
                Entry::Part(p) => p,
                Entry::Tomb(p) => p,
            };
            if written.iter().any(|(w, _)| *w == p) {
                continue; // never remove what this compaction wrote
            }
            if !step(Step::Removed(removed)) {
                return Err(crash(Step::Removed(removed)));
            }
            match std::fs::remove_file(&p) {
                Ok(()) => removed += 1,
                // Another compaction that ignored the lock removed it already.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(CacheError::io(&p)(e)),
            }
            if p.extension().is_some_and(|x| x == "parquet") {
                let _ = std::fs::remove_file(p.with_extension("json"));
            }
        }
        Ok(CompactStats {
            live_rows,
            dropped_rows: index.dead_rows,
            files_removed: removed,
        })
    }

    /// Removes temporary files left by crashed writers: those of this machine
    /// whose process is gone, and any untouched for 15 minutes (shards on other
    /// machines may be writing into the same directory; a part write takes seconds).
    pub fn clean_temp(&self) -> usize {
        let host = crate::write::host_tag();
        let mut n = 0;
        for dir in [
            self.parts_dir(),
            self.errors_dir(),
            self.dir().to_path_buf(),
        ] {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !(name.starts_with('.') && name.ends_with(".tmp")) {
                    continue;
                }
                // `.{name}.{host}.{nanos}-{pid}-{counter}.tmp`
                let mut fields = name.rsplit('.').skip(1);
                let seq = fields.next().unwrap_or_default();
                let same_host = fields.next() == Some(host.as_str());
                let pid = seq.split('-').nth(1).and_then(|p| p.parse::<u32>().ok());
                let dead_here = same_host
                    && pid.is_some_and(|p| {
                        p != std::process::id() && !Path::new(&format!("/proc/{p}")).exists()
                    });
                let stale = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age >= STALE_TEMP);
                if (dead_here || stale) && std::fs::remove_file(e.path()).is_ok() {
                    n += 1;
                }
            }
        }
        n
    }
}

/// Age after which a writer's temporary file counts as abandoned.
pub(crate) const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(15 * 60);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CacheInfo, PartWriter, Row, RunInfo};
    use std::sync::Arc;

    fn info(fp: &str, dim: usize) -> CacheInfo {
        CacheInfo {
            format_version: crate::FORMAT_VERSION,
            model_name: "m".into(),
            model_fingerprint: fp.into(),
            feature_dim: dim,
            preprocessing: serde_json::json!({"size": 2}),
            created_by: "test".into(),
        }
    }

    fn write(cache: &Cache, rows: &[(&str, &str, &str, f32)]) {
        let mut w = PartWriter::new(cache, RunInfo::default());
        for (path, hash, view, v) in rows {
            w.push(Row {
                path,
                label: Some("a"),
                split: None,
                content_hash: hash,
                source_version: None,
                view,
                feature: &[*v, *v + 1.0],
            })
            .unwrap();
        }
        w.flush().unwrap();
    }

    fn sorted(t: &FeatureTable) -> Vec<(String, String, f32)> {
        let mut v: Vec<_> = (0..t.len())
            .map(|i| (t.paths[i].clone(), t.views[i].clone(), t.row(i)[0]))
            .collect();
        v.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        v
    }

    /// A part bigger than a read job is read in row ranges (skipping pages
    /// through the page index, and rows within a page): every live row gets
    /// its own features, dead rows in the middle of a range are left out.
    #[test]
    fn big_parts_read_in_row_ranges_give_every_row_its_features() {
        let dir = tempfile::tempdir().unwrap();
        let dim = 64;
        let cache = Cache::open_or_create(dir.path(), &info("fp", dim)).unwrap();
        let n = 5 * MIN_JOB_ROWS + 123;
        let names: Vec<String> = (0..n).map(|i| format!("p{i}.png")).collect();
        let put = |rows: &mut dyn Iterator<Item = (usize, f32)>| {
            let mut w = PartWriter::new(&cache, RunInfo::default());
            for (i, v) in rows {
                let feature: Vec<f32> = (0..dim).map(|j| v + j as f32 / 1000.0).collect();
                w.push(Row {
                    path: &names[i],
                    label: Some("a"),
                    split: None,
                    content_hash: "h",
                    source_version: None,
                    view: "original",
                    feature: &feature,
                })
                .unwrap();
            }
            w.flush().unwrap();
        };
        put(&mut (0..n).map(|i| (i, i as f32)));
        // Re-extracted: their rows in the big part are dead.
        let again = [
            0,
            1,
            MIN_JOB_ROWS - 1,
            MIN_JOB_ROWS,
            2 * MIN_JOB_ROWS + 7,
            n - 1,
        ];
        put(&mut again.iter().map(|&i| (i, -(i as f32))));
        let t = cache.read().unwrap();
        assert_eq!(t.len(), n);
        for r in 0..t.len() {
            let i: usize = t.paths[r][1..t.paths[r].len() - 4].parse().unwrap();
            let v = if again.contains(&i) {
                -(i as f32)
            } else {
                i as f32
            };
            let want: Vec<f32> = (0..dim).map(|j| v + j as f32 / 1000.0).collect();
            assert_eq!(t.row(r), want.as_slice(), "{}", t.paths[r]);
        }
    }

    #[test]
    fn newer_rows_supersede_and_tombstones_delete() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open_or_create(dir.path(), &info("fp", 2)).unwrap();
        write(
            &cache,
            &[
                ("a.png", "h1", "original", 1.0),
                ("a.png", "h1", "hflip", 2.0),
                ("b.png", "h2", "original", 3.0),
            ],
        );
        // a.png changed: only its original view is re-extracted; the old hflip is dead.
        write(&cache, &[("a.png", "h9", "original", 9.0)]);
        let t = cache.read().unwrap();
        assert_eq!(
            sorted(&t),
            vec![
                ("a.png".into(), "original".into(), 9.0),
                ("b.png".into(), "original".into(), 3.0)
            ]
        );
        cache.write_tombstones(&["b.png".into()]).unwrap();
        let idx = cache.live_index().unwrap();
        assert!(idx.has("a.png", "h9", "original", Some("a"), None));
        // Another label or split is not the stored row.
        assert!(!idx.has("a.png", "h9", "original", Some("b"), None));
        assert!(!idx.has("a.png", "h9", "original", Some("a"), Some("test")));
        assert!(!idx.contains_path("b.png"));
        assert_eq!(idx.dead_rows, 3);
        // b.png comes back after its tombstone: live again.
        write(&cache, &[("b.png", "h2", "original", 4.0)]);
        assert_eq!(cache.read().unwrap().len(), 2);
        // Compaction keeps exactly the live rows.
        let stats = cache.compact(RunInfo::default(), &|_| {}).unwrap();
        assert_eq!((stats.live_rows, stats.dropped_rows), (2, 3));
        let t = cache.read().unwrap();
        assert_eq!(
            sorted(&t),
            vec![
                ("a.png".into(), "original".into(), 9.0),
                ("b.png".into(), "original".into(), 4.0)
            ]
        );
        assert_eq!(cache.live_index().unwrap().dead_rows, 0);
    }

    #[test]
    fn temp_files_are_ignored_and_other_models_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open_or_create(dir.path(), &info("fp", 2)).unwrap();
        write(&cache, &[("a.png", "h1", "original", 1.0)]);
        let host = crate::write::host_tag();
        // A crashed local writer (no such pid), a live writer on another machine,
        // and an abandoned file from another machine.
        let dead_local = cache.parts_dir().join(format!(
            ".a.parquet.{host}.00000000000000000001-99999999-000000.tmp"
        ));
        let other_live = cache
            .parts_dir()
            .join(".b.parquet.elsewhere.00000000000000000001-1-000000.tmp");
        let other_old = cache
            .parts_dir()
            .join(".c.parquet.elsewhere.00000000000000000001-1-000001.tmp");
        for p in [&dead_local, &other_live, &other_old] {
            std::fs::write(p, b"junk").unwrap();
        }
        let long_ago =
            std::time::SystemTime::now() - STALE_TEMP - std::time::Duration::from_secs(1);
        File::options()
            .write(true)
            .open(&other_old)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        assert_eq!(cache.read().unwrap().len(), 1);
        assert_eq!(cache.clean_temp(), 2);
        assert!(!dead_local.exists() && other_live.exists() && !other_old.exists());
        let e = Cache::open_or_create(dir.path(), &info("other", 2))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("fingerprint fp") && e.contains("fingerprint other"),
            "{e}"
        );
    }

    #[test]
    fn truncated_part_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open_or_create(dir.path(), &info("fp", 2)).unwrap();
        write(&cache, &[("a.png", "h1", "original", 1.0)]);
        let part = std::fs::read_dir(cache.parts_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "parquet"))
            .unwrap();
        let bytes = std::fs::read(&part).unwrap();
        std::fs::write(&part, &bytes[..bytes.len() / 2]).unwrap();
        let e = cache.read().unwrap_err().to_string();
        assert!(
            e.contains(&part.display().to_string()) && e.contains("truncated"),
            "{e}"
        );
    }

    #[test]
    fn foreign_list_column_reads_and_mixing_is_refused() {
        use arrow_array::builder::{Float32Builder, ListBuilder};
        let dir = tempfile::tempdir().unwrap();
        let mut lb = ListBuilder::new(Float32Builder::new());
        for r in [[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]] {
            lb.values().append_slice(&r);
            lb.append(true);
        }
        let feature: arrow_array::ArrayRef = Arc::new(lb.finish());
        // LargeUtf8, as pandas and Polars write strings.
        let label: arrow_array::ArrayRef =
            Arc::new(arrow_array::LargeStringArray::from(vec!["x", "y"]));
        let batch = RecordBatch::try_from_iter([("label", label), ("feature", feature)]).unwrap();
        let f = dir.path().join("foreign.parquet");
        let mut w =
            parquet::arrow::ArrowWriter::try_new(File::create(&f).unwrap(), batch.schema(), None)
                .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let t = read_features(std::slice::from_ref(&f)).unwrap();
        assert_eq!((t.len(), t.dim), (2, 3));
        assert_eq!(t.row(1), &[4.0, 5.0, 6.0]);
        assert_eq!(t.views, vec!["original", "original"]);
        assert_eq!(t.paths[0], "foreign.parquet#0");
        assert_eq!(t.labels, vec![Some("x".into()), Some("y".into())]);

        let c = dir.path().join("cache");
        let cache = Cache::open_or_create(&c, &info("fp", 2)).unwrap();
        write(&cache, &[("a.png", "h1", "original", 1.0)]);
        let e = read_features(&[c.clone(), f.clone()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("fingerprint fp, 2-d") && e.contains("3-d"),
            "{e}"
        );
    }

    /// Regression: compacted parts were named by time, so a row or tombstone
    /// written while `compact` ran sorted before the compacted rows, and the
    /// stale row won (a re-extracted file kept its old feature, a deleted one
    /// came back).
    #[test]
    fn writes_during_compaction_stay_newer() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open_or_create(dir.path(), &info("fp", 2)).unwrap();
        write(
            &cache,
            &[
                ("a.png", "h1", "original", 1.0),
                ("b.png", "h2", "original", 2.0),
            ],
        );
        write(&cache, &[("c.png", "h3", "original", 3.0)]);
        cache.write_tombstones(&["c.png".into()]).unwrap();
        cache
            .compact_with(RunInfo::default(), 50_000, &mut |step| {
                if step == Step::Read {
                    // A concurrent extract: a.png changed, b.png was deleted.
                    write(&cache, &[("a.png", "h9", "original", 9.0)]);
                    cache.write_tombstones(&["b.png".into()]).unwrap();
                }
                true
            })
            .unwrap();
        let t = cache.read().unwrap();
        assert_eq!(sorted(&t), vec![("a.png".into(), "original".into(), 9.0)]);
        // A second compaction (of a compacted part) keeps the same rows.
        cache.compact(RunInfo::default(), &|_| {}).unwrap();
        let t = cache.read().unwrap();
        assert_eq!(sorted(&t), vec![("a.png".into(), "original".into(), 9.0)]);
        assert_eq!(cache.live_index().unwrap().dead_rows, 0);
    }

    /// Regression: a second `cache compact` named its part exactly like the
    /// compacted part it read (`<seq>~c000001`), replaced it, then removed it as an
    /// old file: the whole cache was gone.
    #[test]
    fn a_second_compact_deleted_the_whole_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open_or_create(dir.path(), &info("fp", 2)).unwrap();
        write(&cache, &[("a.png", "h1", "original", 1.0)]);
        write(&cache, &[("a.png", "h2", "original", 2.0)]);
        write(&cache, &[("b.png", "h3", "original", 3.0)]);
        let expected = sorted(&cache.read().unwrap());
        for round in 0..4 {
            cache.compact(RunInfo::default(), &|_| {}).unwrap();
            assert_eq!(sorted(&cache.read().unwrap()), expected, "round {round}");
        }
        // A compaction that crashed after writing its part, then another one.
        write(&cache, &[("c.png", "h4", "original", 4.0)]);
        write(&cache, &[("c.png", "h5", "original", 5.0)]);
        let expected = sorted(&cache.read().unwrap());
        let crashed = cache.compact_with(RunInfo::default(), 1, &mut |s| s != Step::Wrote(1));
        assert!(crashed.is_err());
        assert_eq!(sorted(&cache.read().unwrap()), expected);
        let stats = cache.compact(RunInfo::default(), &|_| {}).unwrap();
        assert_eq!(stats.live_rows, 3);
        assert_eq!(sorted(&cache.read().unwrap()), expected);
        // Nothing left to do: the cache is left as it is.
        let files = std::fs::read_dir(cache.parts_dir()).unwrap().count();
        let again = cache.compact(RunInfo::default(), &|_| {}).unwrap();
        assert_eq!((again.dropped_rows, again.files_removed), (0, 0));
        assert_eq!(std::fs::read_dir(cache.parts_dir()).unwrap().count(), files);
        assert_eq!(sorted(&cache.read().unwrap()), expected);
    }

    /// Every row as read, in the order read.
    fn in_order(t: &FeatureTable) -> Vec<(String, String, f32)> {
        (0..t.len())
            .map(|i| (t.paths[i].clone(), t.views[i].clone(), t.row(i)[0]))
            .collect()
    }

    fn part_files(cache: &Cache) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(cache.parts_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    /// Regression (#22 item 9): a cache of more rows than compaction puts in
    /// one part was never compact: every run rewrote all rows into new parts.
    #[test]
    fn compacting_a_big_compacted_cache_again_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open_or_create(dir.path(), &info("fp", 2)).unwrap();
        for (i, p) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            write(&cache, &[(p, "h", "original", i as f32)]);
        }
        let first = cache
            .compact_with(RunInfo::default(), 2, &mut |_| true)
            .unwrap();
        assert_eq!((first.live_rows, first.files_removed), (5, 5));
        let files = part_files(&cache);
        assert_eq!(files.iter().filter(|f| f.ends_with(".parquet")).count(), 3);
        for _ in 0..2 {
            let again = cache
                .compact_with(RunInfo::default(), 2, &mut |_| true)
                .unwrap();
            assert_eq!((again.dropped_rows, again.files_removed), (0, 0));
            assert_eq!(part_files(&cache), files);
        }
    }

    /// Regression (#22 item 12): rows came in part order, so a fit reading
    /// while compaction had published only its first part got the same rows
    /// in another order and fitted another head. Rows now come sorted by
    /// (path, view), however they are spread over parts.
    #[test]
    fn rows_come_in_key_order_whatever_the_parts() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open_or_create(dir.path(), &info("fp", 2)).unwrap();
        write(
            &cache,
            &[("c", "h", "original", 3.0), ("a", "h", "hflip", 2.0)],
        );
        write(
            &cache,
            &[("b", "h", "original", 4.0), ("a", "h", "original", 1.0)],
        );
        let want = vec![
            ("a".to_string(), "hflip".to_string(), 2.0),
            ("a".into(), "original".into(), 1.0),
            ("b".into(), "original".into(), 4.0),
            ("c".into(), "original".into(), 3.0),
        ];
        assert_eq!(in_order(&cache.read().unwrap()), want);
        // Mid-compaction: its first part is published, the old parts are there.
        let mut mid = None;
        let _ = cache.compact_with(RunInfo::default(), 3, &mut |step| {
            if step == Step::Wrote(0) {
                mid = Some(in_order(&cache.read().unwrap()));
            }
            step != Step::Wrote(0)
        });
        assert_eq!(mid.as_ref(), Some(&want));
        cache.compact(RunInfo::default(), &|_| {}).unwrap();
        assert_eq!(in_order(&cache.read().unwrap()), want);
    }

    /// Regression (#22 item 13): a hard-linked part or a copied cache was
    /// accepted and its rows counted twice.
    #[test]
    fn a_part_seen_twice_counts_once_or_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let (a, b) = (root.path().join("a"), root.path().join("b"));
        let cache = Cache::open_or_create(&a, &info("fp", 2)).unwrap();
        write(&cache, &[("x", "h1", "original", 1.0)]);
        write(&cache, &[("y", "h2", "original", 2.0)]);
        // A second name for a part in the same cache: its rows once.
        let part = part_files(&cache)
            .into_iter()
            .find(|f| f.ends_with(".parquet"))
            .unwrap();
        let linked = cache.parts_dir().join(format!("9{part}"));
        std::fs::hard_link(cache.parts_dir().join(&part), &linked).unwrap();
        let index = cache.live_index().unwrap();
        assert_eq!((index.live_rows(), index.duplicate_parts), (2, 1));
        std::fs::remove_file(&linked).unwrap();
        // A copy of the whole cache next to it: refused.
        let copy = Cache::open_or_create(&b, &info("fp", 2)).unwrap();
        for f in part_files(&cache) {
            std::fs::copy(cache.parts_dir().join(&f), copy.parts_dir().join(&f)).unwrap();
        }
        let e = read_features(&[a.clone(), b.clone()]).unwrap_err();
        assert!(matches!(e, CacheError::SharedParts { .. }), "{e}");
        assert!(e.to_string().contains("counted twice"), "{e}");
        // Each alone reads.
        assert_eq!(read_features(&[b]).unwrap().len(), 2);
    }

    /// Damage inside a part's feature data, behind an intact footer: the
    /// read that decodes features straight into the table's rows returns an
    /// error naming the part, never a panic.
    #[test]
    fn damaged_feature_pages_are_an_error_naming_the_part() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let dir = tempfile::tempdir().unwrap();
        let dim = 256;
        let cache = Cache::open_or_create(dir.path(), &info("fp", dim)).unwrap();
        let mut w = PartWriter::new(&cache, RunInfo::default());
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in 0..400 {
            let feature: Vec<f32> = (0..dim)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 40) as f32 / 1e6
                })
                .collect();
            let (path, hash) = (format!("{i}.png"), format!("h{i}"));
            w.push(Row {
                path: &path,
                label: Some("a"),
                split: None,
                content_hash: &hash,
                source_version: None,
                view: "original",
                feature: &feature,
            })
            .unwrap();
        }
        w.flush().unwrap();
        let part = std::fs::read_dir(cache.parts_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "parquet"))
            .unwrap();
        let reader = SerializedFileReader::new(File::open(&part).unwrap()).unwrap();
        let chunk = reader
            .metadata()
            .row_group(0)
            .columns()
            .iter()
            .find(|c| c.column_path().string().starts_with(columns::FEATURE))
            .map(|c| c.byte_range())
            .unwrap();
        drop(reader);
        let original = std::fs::read(&part).unwrap();
        let damaged = |fill: u8| {
            let mut bytes = original.clone();
            let mid = (chunk.0 + chunk.1 / 2) as usize;
            bytes[mid..mid + 4096].fill(fill);
            std::fs::write(&part, &bytes).unwrap();
            cache.read()
        };
        for fill in [0x00u8, 0x5a] {
            let e = damaged(fill).unwrap_err().to_string();
            assert!(e.contains(&part.display().to_string()), "fill {fill}: {e}");
        }
        // Known gap: parts carry no checksum, and these bytes happen to
        // decode as other, finite numbers. It must still not panic.
        let _ = damaged(0xff);
    }

    /// Regression: one unreadable part stopped fit, extract and compact with a
    /// Parquet message and no hint of the fix.
    #[test]
    fn a_damaged_part_is_named_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open_or_create(dir.path(), &info("fp", 2)).unwrap();
        write(&cache, &[("a.png", "h1", "original", 1.0)]);
        let bad = cache
            .parts_dir()
            .join("00000000000000000001-1-000000.parquet");
        std::fs::write(&bad, b"not parquet").unwrap();
        for e in [
            cache.read().unwrap_err(),
            cache.compact(RunInfo::default(), &|_| {}).unwrap_err(),
        ] {
            let e = e.to_string();
            assert!(
                e.contains(&bad.display().to_string()) && e.contains("quarantine"),
                "{e}"
            );
        }
    }

    /// Regression: `fit c1 c1` counted every row twice.
    #[test]
    fn the_same_cache_given_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("cache");
        let cache = Cache::open_or_create(&c, &info("fp", 2)).unwrap();
        write(&cache, &[("a.png", "h1", "original", 1.0)]);
        let again = dir.path().join("cache/../cache/");
        let e = read_features(&[c.clone(), again]).unwrap_err().to_string();
        assert!(e.contains("counted twice"), "{e}");
    }

    /// Regression: `fit` failed when `compact` removed a part between listing
    /// and reading it.
    #[test]
    fn readers_retry_when_compaction_replaces_a_part() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open_or_create(dir.path(), &info("fp", 2)).unwrap();
        write(&cache, &[("a.png", "h1", "original", 1.0)]);
        write(&cache, &[("b.png", "h2", "original", 2.0)]);
        let expected = sorted(&cache.read().unwrap());
        let mut first = true;
        let t = cache
            .retry_vanished(|| {
                let entries = list_entries(&cache.parts_dir())?;
                if std::mem::take(&mut first) {
                    cache.compact(RunInfo::default(), &|_| {})?;
                }
                cache.read_index(cache.live_index_of(&entries)?)
            })
            .unwrap();
        assert_eq!(sorted(&t), expected);
    }

    /// Regression: `fit CACHE/parts` read the parts as foreign Parquet, dead
    /// rows (superseded, deleted) included.
    #[test]
    fn a_caches_parts_are_refused_in_favour_of_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("cache");
        let cache = Cache::open_or_create(&c, &info("fp", 2)).unwrap();
        write(&cache, &[("a.png", "h1", "original", 1.0)]);
        write(&cache, &[("a.png", "h2", "original", 2.0)]);
        let part = std::fs::read_dir(c.join("parts"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "parquet"))
            .unwrap();
        for bad in [c.join("parts"), part] {
            let e = read_features(std::slice::from_ref(&bad))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("is part of the headstart cache")
                    && e.contains(&format!("pass the cache directory {}", c.display())),
                "{e}"
            );
        }
        assert_eq!(read_features(&[c]).unwrap().len(), 1);
    }
}
