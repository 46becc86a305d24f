//! Images inside containers: WebDataset tar shards (img2dataset's layout) and
//! Parquet files with an image column (the Hugging Face `datasets` layout).
//!
//! Listing reads only names, labels and offsets (tar headers; Parquet's label,
//! split and path columns), never the image bytes. The decode workers then read
//! the bytes in place: a tar member by its offset, a Parquet row group at a time.
//! Nothing is unpacked to disk, and memory holds at most one row group per worker.
//!
//! Cache keys: `<shard>.tar/<key>` for tar samples, `<file>.parquet/<row>` for
//! Parquet rows: stable, readable, and naming the file they come from. Shards
//! (`--shard I/N`) own whole container files, so each process reads only its own.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_schema::{DataType, Field};
use headstart_cache::ErrorRow;
use headstart_files::{open_regular, read_regular};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use serde::{Deserialize, Serialize};

use crate::ExtractError;
use crate::input::ListOptions;
use crate::listing::{IMAGE_EXTENSIONS, Item, Listing, Origin, Source, normalize_split};
use crate::remote::Object;

/// Where a WebDataset sample's label comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LabelFrom {
    /// The `.cls` member (a class index or name).
    #[default]
    Cls,
    /// The `.txt` member.
    Txt,
    /// A field of the `.json` member.
    Json(String),
}

impl std::fmt::Display for LabelFrom {
    /// As parsed: `cls`, `txt` or `json:FIELD`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LabelFrom::Cls => write!(f, "cls"),
            LabelFrom::Txt => write!(f, "txt"),
            LabelFrom::Json(field) => write!(f, "json:{field}"),
        }
    }
}

impl std::str::FromStr for LabelFrom {
    type Err = ExtractError;
    /// `cls`, `txt` or `json:FIELD`.
    fn from_str(s: &str) -> Result<LabelFrom, ExtractError> {
        match s.split_once(':') {
            None if s == "cls" => Ok(LabelFrom::Cls),
            None if s == "txt" => Ok(LabelFrom::Txt),
            Some(("json", field)) if !field.is_empty() => Ok(LabelFrom::Json(field.into())),
            _ => Err(ExtractError::Param {
                name: "label_from",
                value: s.to_string(),
                message: "use cls, txt or json:FIELD".into(),
            }),
        }
    }
}

/// Largest label member (`.cls`, `.txt`, `.json`) read while listing.
const MAX_LABEL_MEMBER: u64 = 1 << 20;

/// Whether `input` names tar shards: a `.tar` file or a `{a..b}` pattern of them.
pub fn is_tar_input(input: &Path) -> bool {
    let s = input.to_string_lossy();
    s.ends_with(".tar") && (input.is_file() || s.contains(".."))
}

/// Expands `{a..b}` ranges in a shard pattern, keeping the bounds' zero padding
/// (`shards/{00000..00002}.tar` -> three names); several ranges multiply.
pub fn expand_braces(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('{') else {
        return Ok(vec![pattern.to_string()]);
    };
    let close = pattern[open..]
        .find('}')
        .map(|c| open + c)
        .ok_or_else(|| format!("`{pattern}`: `{{` without `}}`"))?;
    let (a, b) = pattern[open + 1..close]
        .split_once("..")
        .ok_or_else(|| format!("`{pattern}`: a range looks like {{00000..00127}}"))?;
    let (lo, hi): (u64, u64) = match (a.parse(), b.parse()) {
        (Ok(lo), Ok(hi)) if lo <= hi => (lo, hi),
        _ => {
            return Err(format!(
                "`{pattern}`: `{a}..{b}` is not a rising range of numbers"
            ));
        }
    };
    let rests = expand_braces(&pattern[close + 1..])?;
    if (hi - lo + 1).saturating_mul(rests.len() as u64) > 1_000_000 {
        return Err(format!("`{pattern}`: over a million shards"));
    }
    let width = a.len();
    let mut out = Vec::new();
    for rest in rests {
        for n in lo..=hi {
            out.push(format!("{}{n:0width$}{rest}", &pattern[..open]));
        }
    }
    out.sort();
    Ok(out)
}

/// The files of a container input: `input` itself, the expansion of a shard
/// pattern, or every file with extension `ext` under a folder; with the folder
/// that keys are relative to.
fn container_files(input: &Path, ext: &str) -> Result<(PathBuf, Vec<PathBuf>), ExtractError> {
    let err = |message: String| ExtractError::Input {
        path: input.to_path_buf(),
        message,
    };
    if input.is_dir() {
        let mut files: Vec<PathBuf> = walkdir::WalkDir::new(input)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file())
            .map(|e| e.into_path())
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .collect();
        files.sort();
        return Ok((input.to_path_buf(), files));
    }
    let text = input
        .to_str()
        .ok_or_else(|| err("the path is not valid UTF-8".into()))?;
    let files: Vec<PathBuf> = expand_braces(text)
        .map_err(err)?
        .into_iter()
        .map(PathBuf::from)
        .collect();
    // Keys are relative to the folder before the first `{` (or the file's folder),
    // so they do not depend on which expanded folder comes first.
    let fixed = text.split('{').next().unwrap_or(text);
    let root = match fixed.rfind('/') {
        Some(at) if text.contains('{') => PathBuf::from(&fixed[..at]),
        _ => input.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    Ok((root, files))
}

fn rel_to(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Split named by a container file: `train-00000-of-00004.parquet`, `val_003.tar`.
fn split_of_file(name: &str) -> Option<String> {
    let stem = name.rsplit('/').next().unwrap_or(name);
    let first = stem.split(['-', '_', '.']).next().unwrap_or(stem);
    normalize_split(first)
}

// ------------------------------------------------------------------ tar

/// One sample of a shard being listed.
#[derive(Default)]
struct Sample {
    image: Option<(u64, u64)>,
    cls: Option<Result<String, String>>,
    txt: Option<Result<String, String>>,
    json: Option<Result<String, String>>,
    /// Why the sample cannot be used (a key or member seen twice).
    bad: Option<String>,
}

/// The compression a file's first bytes show, if any: a compressed tar is
/// not read (its members cannot be read in place by offset).
fn compression_of(head: &[u8]) -> Option<&'static str> {
    [
        (&[0x1f, 0x8b][..], "gzip"),
        (&[0x28, 0xb5, 0x2f, 0xfd][..], "zstd"),
        (&b"BZh"[..], "bzip2"),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0][..], "xz"),
    ]
    .into_iter()
    .find(|(magic, _)| head.starts_with(magic))
    .map(|(_, name)| name)
}

/// Lists the samples of the tar shards of `input` (a `.tar`, a `{a..b}`
/// pattern, or a folder of `.tar` files; or the same in object storage).
/// Only files for which `o.keep(rel_file)` holds are read (a shard's own).
pub fn list_tars(input: &Path, o: &ListOptions<'_>) -> Result<Listing, ExtractError> {
    let label = &o.label;
    list_containers(input, "tar", o, &|at, rel, out| match at {
        Origin::File(tar) => list_tar(tar, rel, label, out),
        Origin::Object(obj) => {
            let len = crate::remote::read::size_of(obj)?;
            let reader = crate::remote::read::RemoteReader::new(obj.clone(), len);
            list_tar_from(reader, len, rel, label, at, out)
        }
    })
}

/// A function listing one container file (its origin and relative path).
type ListOne<'a> = dyn Fn(&Origin, &str, &mut Listing) -> Result<(), String> + Sync + 'a;

/// Lists each container file of `input` with `list_one`. A file that fails
/// midway keeps what was listed before the damage and gets an error row; the
/// rest of it may still exist, so its cached rows are not taken as deleted.
/// Objects in a store are listed side by side (`io_concurrency` at once),
/// and one still at the version of its listing in `o.stored` is not read.
fn list_containers(
    input: &Path,
    ext: &str,
    o: &ListOptions<'_>,
    list_one: &ListOne<'_>,
) -> Result<Listing, ExtractError> {
    use rayon::prelude::*;
    let label_key = if ext == "tar" {
        o.label.to_string()
    } else {
        String::new()
    };
    let files: Vec<(String, Result<Origin, String>)> =
        match crate::input::remote_url(input, &o.access)? {
            Some(url) => crate::remote::list::container_objects(&url, ext)?
                .into_iter()
                .map(|(rel, obj)| (rel, obj.map(Origin::Object)))
                .collect(),
            None => {
                let (root, files) = container_files(input, ext)?;
                files
                    .into_iter()
                    .map(|f| (rel_to(&root, &f), Ok(Origin::File(f))))
                    .collect()
            }
        };
    let one = |(rel, at): &(String, Result<Origin, String>)| {
        let mut out = Listing::default();
        if !(o.keep)(rel) {
            return out;
        }
        let at = match at {
            Ok(at) => at,
            Err(message) => {
                out.unlisted.push(rel.clone());
                out.errors.push(ErrorRow {
                    path: rel.clone(),
                    stage: "list".into(),
                    message: message.clone(),
                });
                return out;
            }
        };
        let versioned = at
            .as_object()
            .and_then(|obj| Some((obj, obj.version.clone()?)));
        if let (Some((obj, version)), Some(dir)) = (&versioned, &o.stored)
            && let Some(stored) = Stored::load(dir, &obj.url(), &label_key)
            && stored.version == *version
        {
            stored.replay(rel, obj, &mut out);
            return out;
        }
        match list_one(at, rel, &mut out) {
            Ok(()) => {
                if let Some((obj, version)) = versioned {
                    out.fresh
                        .push(Stored::of(&out, obj, version, &label_key, rel));
                }
            }
            Err(message) => {
                out.unlisted.push(rel.clone());
                out.errors.push(ErrorRow {
                    path: rel.clone(),
                    stage: "list".into(),
                    message,
                });
            }
        }
        out
    };
    // Files are listed in parallel (a tar's headers are read one by one), then
    // merged in file order; objects as many at once as requests may be.
    let remote = files
        .iter()
        .any(|(_, f)| f.as_ref().is_ok_and(Origin::is_remote));
    let listed: Vec<Listing> = if remote && files.len() > 1 {
        let threads = o.access.io_concurrency.min(files.len());
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("headstart-list-{i}"))
            .build()
            .map_err(|e| ExtractError::Threads {
                threads,
                message: e.to_string(),
            })?
            .install(|| files.par_iter().map(one).collect())
    } else {
        files.par_iter().map(one).collect()
    };
    let mut out = Listing::default();
    for mut l in listed {
        out.items.append(&mut l.items);
        out.errors.append(&mut l.errors);
        out.unlisted.append(&mut l.unlisted);
        out.fresh.append(&mut l.fresh);
    }
    Ok(out)
}

/// The listing of one tar or Parquet object, kept in a cache's `listings/`
/// so that a rerun does not read the object again while the store reports
/// the same version for it (a tar shard's headers are spread over the whole
/// object: listing one reads most of it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stored {
    /// The object's URL.
    pub url: String,
    /// Its version when it was listed (see `remote::version_of`).
    pub version: String,
    /// Where tar labels came from (`cls`, `txt`, `json:FIELD`; empty for Parquet).
    pub label_from: String,
    /// Samples or rows: key within the object, label, split, where.
    pub items: Vec<(String, Option<String>, Option<String>, Source)>,
    /// Samples or rows that could not be listed: key within the object, why.
    pub errors: Vec<(String, String)>,
}

impl Stored {
    /// The file name of the listing of `url` with labels from `label_from`.
    pub fn file_name(url: &str, label_from: &str) -> String {
        let h = blake3::hash(format!("{url}\0{label_from}").as_bytes());
        format!("{}.json", &h.to_hex()[..32])
    }

    /// The listing of `url` in `dir`, if one is there and reads.
    pub(crate) fn load(dir: &Path, url: &str, label_from: &str) -> Option<Stored> {
        let text = std::fs::read(dir.join(Stored::file_name(url, label_from))).ok()?;
        let s: Stored = serde_json::from_slice(&text).ok()?;
        (s.url == url && s.label_from == label_from).then_some(s)
    }

    /// What `out` listed of the object `obj` (keys relative to `rel_file`).
    fn of(
        out: &Listing,
        obj: &Object,
        version: String,
        label_from: &str,
        rel_file: &str,
    ) -> Stored {
        let key = |rel: &str| {
            rel.strip_prefix(rel_file)
                .and_then(|k| k.strip_prefix('/'))
                .unwrap_or(rel)
                .to_string()
        };
        Stored {
            url: obj.url(),
            version,
            label_from: label_from.to_string(),
            items: out
                .items
                .iter()
                .map(|i| (key(&i.rel), i.label.clone(), i.split.clone(), i.source))
                .collect(),
            errors: out
                .errors
                .iter()
                .map(|e| (key(&e.path), e.message.clone()))
                .collect(),
        }
    }

    /// Adds the stored samples of `obj` to `out`, keyed under `rel_file`.
    fn replay(self, rel_file: &str, obj: &Arc<Object>, out: &mut Listing) {
        let abs = Origin::Object(obj.clone());
        for (key, label, split, source) in self.items {
            out.items.push(Item {
                rel: format!("{rel_file}/{key}"),
                abs: abs.clone(),
                label,
                split,
                source,
            });
        }
        for (key, message) in self.errors {
            out.errors.push(ErrorRow {
                path: format!("{rel_file}/{key}"),
                stage: "list".into(),
                message,
            });
        }
    }

    /// Its JSON text.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

fn list_tar(tar: &Path, rel_tar: &str, label: &LabelFrom, out: &mut Listing) -> Result<(), String> {
    let (file, len) = open_regular(tar).map_err(|e| e.reason())?;
    list_tar_from(
        file,
        len,
        rel_tar,
        label,
        &Origin::File(tar.to_path_buf()),
        out,
    )
}

/// Lists the samples of the tar at `at` (`len` bytes), read through `reader`.
fn list_tar_from<R: Read + Seek>(
    mut reader: R,
    len: u64,
    rel_tar: &str,
    label: &LabelFrom,
    at: &Origin,
    out: &mut Listing,
) -> Result<(), String> {
    let mut head = [0u8; 6];
    let n = read_up_to(&mut reader, &mut head);
    reader
        .seek(std::io::SeekFrom::Start(0))
        .map_err(|e| e.to_string())?;
    if let Some(c) = compression_of(&head[..n]) {
        return Err(format!(
            "{c}-compressed: headstart reads tar shards in place, uncompressed (WebDataset's default); decompress it first (e.g. `{}`)",
            match c {
                "gzip" => "gunzip -c x.tar.gz > x.tar",
                "zstd" => "zstd -d x.tar.zst",
                "bzip2" => "bunzip2 x.tar.bz2",
                _ => "unxz x.tar.xz",
            }
        ));
    }
    let split = split_of_file(rel_tar);
    let mut archive = tar::Archive::new(reader);
    let mut samples: BTreeMap<String, Sample> = BTreeMap::new();
    let mut damage = None;
    // End of the last member's data blocks, and the last sample key seen.
    let mut end = 0u64;
    let mut last_key: Option<String> = None;
    // Tar errors may quote raw header bytes: shown escaped.
    let clean = |e: std::io::Error| headstart_files::escape(&e.to_string()).into_owned();
    for entry in archive.entries_with_seek().map_err(clean)? {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                damage = Some(format!("truncated or damaged tar: {}", clean(e)));
                break;
            }
        };
        let (offset, size) = (entry.raw_file_position(), entry.size());
        // A declared size past the end of the file (huge, or negative in
        // base-256) is damage: the samples before it stay.
        if offset.checked_add(size).is_none_or(|e| e > len) {
            let name = entry
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            damage = Some(format!(
                "truncated or damaged tar: member {} declares {size} bytes at byte {offset} of a {len}-byte file",
                headstart_files::escape(&name)
            ));
            break;
        }
        end = offset + size.div_ceil(512) * 512;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = match entry.path() {
            Ok(p) => p.to_string_lossy().replace('\\', "/"),
            Err(e) => {
                damage = Some(format!("unreadable member name: {}", clean(e)));
                break;
            }
        };
        // WebDataset: the key is the name up to the first dot of its last part.
        let (dir, base) = name
            .rsplit_once('/')
            .map_or(("", name.as_str()), |(d, b)| (d, b));
        let Some((stem, ext)) = base.split_once('.') else {
            continue;
        };
        let key = if dir.is_empty() {
            stem.to_string()
        } else {
            format!("{dir}/{stem}")
        };
        let ext = ext.to_ascii_lowercase();
        // A sample's members are adjacent: a key seen before, after another
        // sample, is a second sample of that key.
        let again = last_key.as_deref() != Some(key.as_str()) && samples.contains_key(&key);
        last_key = Some(key.clone());
        let sample = samples.entry(key).or_default();
        if again {
            sample.bad = Some(
                "its key appears twice in the shard, apart: two samples under one key; rename one"
                    .into(),
            );
            continue;
        }
        let small = |entry: &mut tar::Entry<'_, R>| -> Result<String, String> {
            if size > MAX_LABEL_MEMBER {
                return Err(format!(
                    "its .{ext} member is {}, over the {} a label member may have",
                    headstart_files::describe_size(size),
                    headstart_files::describe_size(MAX_LABEL_MEMBER)
                ));
            }
            let mut b = Vec::new();
            entry.read_to_end(&mut b).map_err(|e| e.to_string())?;
            String::from_utf8(b)
                .map(|s| s.trim().to_string())
                .map_err(|_| format!("its .{ext} member is not UTF-8 text"))
        };
        let slot = match ext.as_str() {
            e if IMAGE_EXTENSIONS.contains(&e) => {
                if sample.image.replace((offset, size)).is_some() {
                    sample.bad = Some(format!(
                        "it has two image members (another `.{e}` or other image extension)"
                    ));
                }
                continue;
            }
            "cls" => &mut sample.cls,
            "txt" => &mut sample.txt,
            "json" => &mut sample.json,
            _ => continue,
        };
        if slot.replace(small(&mut entry)).is_some() {
            sample.bad = Some(format!("it has two .{ext} members"));
        }
    }
    // A tar cut at a block boundary reads like a shorter, complete one: only the
    // end-of-archive marker (two zero blocks) shows it is whole.
    if damage.is_none() && !has_end_marker(archive.into_inner(), end, len) {
        damage = Some(format!(
            "truncated tar: no end-of-archive marker after byte {end} of a {len}-byte file"
        ));
    }
    if damage.is_some()
        && let Some(k) = last_key
    {
        // Its other members may lie past the damage: not listed, not taken as deleted.
        samples.remove(&k);
    }
    for (key, s) in samples {
        let rel = format!("{rel_tar}/{key}");
        let fail = |out: &mut Listing, message: String| {
            out.errors.push(ErrorRow {
                path: rel.clone(),
                stage: "list".into(),
                message,
            });
        };
        if let Some(why) = s.bad {
            fail(out, format!("sample not used: {why}"));
            continue;
        }
        let Some((offset, len)) = s.image else {
            fail(
                out,
                format!(
                    "sample has no image member ({})",
                    IMAGE_EXTENSIONS.join(", ")
                ),
            );
            continue;
        };
        let label = match label {
            LabelFrom::Cls => s.cls.transpose(),
            LabelFrom::Txt => s.txt.transpose(),
            LabelFrom::Json(field) => s
                .json
                .transpose()
                .map(|j| j.as_deref().and_then(|j| json_field(j, field))),
        };
        let label = match label {
            Ok(l) => l,
            Err(why) => {
                fail(out, format!("no label: {why}"));
                continue;
            }
        };
        out.items.push(Item {
            rel,
            abs: at.clone(),
            label: label.filter(|l| !l.is_empty()),
            split: split.clone(),
            source: Source::TarMember { offset, len },
        });
    }
    damage.map_or(Ok(()), Err)
}

/// Whether the tar read by `reader` has two zero blocks at `end` (the
/// end-of-archive marker).
fn has_end_marker<R: Read + Seek>(mut reader: R, end: u64, len: u64) -> bool {
    if end + 1024 > len {
        return false;
    }
    let mut block = [0u8; 1024];
    reader.seek(std::io::SeekFrom::Start(end)).is_ok()
        && reader.read_exact(&mut block).is_ok()
        && block.iter().all(|&b| b == 0)
}

/// Reads up to `buf.len()` bytes from the start (fewer at the end of the file).
fn read_up_to<R: Read>(reader: &mut R, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}

/// A JSON object's field as label text (strings as they are, numbers as written).
fn json_field(json: &str, field: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    match v.get(field)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

// -------------------------------------------------------------- Parquet

fn is_binary(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
    )
}

/// The name of the image column of a Parquet schema: a struct with `bytes`
/// (and usually `path`), or plain binary. Named `image`, `img`, `jpg`, `png` or
/// `webp` preferred.
fn image_column(fields: &[Arc<Field>]) -> Option<String> {
    let candidates: Vec<&String> = fields
        .iter()
        .filter(|f| match f.data_type() {
            t if is_binary(t) => true,
            DataType::Struct(children) => children
                .iter()
                .any(|c| c.name() == "bytes" && is_binary(c.data_type())),
            _ => false,
        })
        .map(|f| f.name())
        .collect();
    let preferred = ["image", "img", "jpg", "jpeg", "png", "webp"];
    candidates
        .iter()
        .find(|c| preferred.contains(&c.to_ascii_lowercase().as_str()))
        .or(candidates.first())
        .map(|c| c.to_string())
}

/// A Parquet file or object whose metadata is read, ready to read some
/// columns of some row groups: a file by its handle, an object by fetching
/// the column chunks asked for, or column chunks fetched already.
pub(crate) enum ParquetAt {
    /// A file.
    File(File, ArrowReaderMetadata),
    /// An object of `len` bytes: column chunks are fetched when read.
    Object(Arc<Object>, u64, ArrowReaderMetadata),
    /// Column chunks of an object, fetched (by the extract pipeline's I/O).
    Fetched(crate::remote::read::Sparse, ArrowReaderMetadata),
}

impl ParquetAt {
    /// Opens the file or object at `at` and reads its metadata (a remote
    /// object's footer: one or two requests).
    pub(crate) fn open(at: &Origin) -> Result<ParquetAt, String> {
        let cannot = |e: parquet::errors::ParquetError| format!("cannot read as Parquet: {e}");
        match at {
            Origin::File(path) => {
                let (file, _) = open_regular(path).map_err(|e| e.reason())?;
                let meta = ArrowReaderMetadata::load(&file, Default::default()).map_err(cannot)?;
                Ok(ParquetAt::File(file, meta))
            }
            Origin::Object(obj) => {
                let len = crate::remote::read::size_of(obj)?;
                let meta =
                    crate::remote::block_on(crate::remote::read::parquet_metadata(obj, len))?;
                let meta = ArrowReaderMetadata::try_new(Arc::new(meta), Default::default())
                    .map_err(cannot)?;
                Ok(ParquetAt::Object(obj.clone(), len, meta))
            }
        }
    }

    pub(crate) fn metadata(&self) -> &ArrowReaderMetadata {
        match self {
            ParquetAt::File(_, m) | ParquetAt::Object(_, _, m) | ParquetAt::Fetched(_, m) => m,
        }
    }

    /// A reader of the columns `mask` of the row groups `groups` (all: `None`).
    fn reader(
        &self,
        mask: ProjectionMask,
        groups: Option<Vec<usize>>,
        batch: usize,
    ) -> Result<ParquetRecordBatchReader, String> {
        fn build<T: parquet::file::reader::ChunkReader + 'static>(
            input: T,
            meta: &ArrowReaderMetadata,
            mask: ProjectionMask,
            groups: Option<Vec<usize>>,
            batch: usize,
        ) -> Result<ParquetRecordBatchReader, String> {
            let mut b = ParquetRecordBatchReaderBuilder::new_with_metadata(input, meta.clone())
                .with_projection(mask)
                .with_batch_size(batch);
            if let Some(g) = groups {
                b = b.with_row_groups(g);
            }
            b.build().map_err(|e| e.to_string())
        }
        match self {
            ParquetAt::File(f, meta) => {
                let f = f.try_clone().map_err(|e| e.to_string())?;
                build(f, meta, mask, groups, batch)
            }
            ParquetAt::Object(obj, len, meta) => {
                let data = fetch_chunks(obj, *len, meta, &mask, groups.as_deref())?;
                build(data, meta, mask, groups, batch)
            }
            ParquetAt::Fetched(data, meta) => build(data.clone(), meta, mask, groups, batch),
        }
    }
}

/// Fetches the column chunks of `mask` in `groups` (all: `None`) of a
/// Parquet object.
fn fetch_chunks(
    obj: &Object,
    len: u64,
    meta: &ArrowReaderMetadata,
    mask: &ProjectionMask,
    groups: Option<&[usize]>,
) -> Result<crate::remote::read::Sparse, String> {
    let ranges = projected_ranges(meta, mask, groups, len)?;
    let bytes = crate::remote::block_on(crate::remote::read::get_ranges(obj, &ranges))?;
    Ok(crate::remote::read::Sparse::new(len, &ranges, bytes))
}

/// The byte ranges of the column chunks of `mask` in `groups` (all: `None`).
pub(crate) fn projected_ranges(
    meta: &ArrowReaderMetadata,
    mask: &ProjectionMask,
    groups: Option<&[usize]>,
    len: u64,
) -> Result<Vec<std::ops::Range<u64>>, String> {
    let schema = meta.metadata().file_metadata().schema_descr();
    let leaves: Vec<usize> = (0..schema.num_columns())
        .filter(|&i| mask.leaf_included(i))
        .collect();
    let all: Vec<usize> = (0..meta.metadata().num_row_groups()).collect();
    crate::remote::read::chunk_ranges(meta.metadata(), groups.unwrap_or(&all), &leaves, len)
}

/// Whether `path` is a Parquet file with an image column (not a manifest).
/// A top-level `path` column makes it a manifest, whatever else it holds.
pub fn is_image_parquet(path: &Path) -> bool {
    is_image_parquet_at(&Origin::File(path.to_path_buf()))
}

/// [`is_image_parquet`] for a file or an object (whose footer is read).
pub fn is_image_parquet_at(at: &Origin) -> bool {
    ParquetAt::open(at).is_ok_and(|p| {
        let fields = p.metadata().schema().fields();
        !fields.iter().any(|f| f.name() == "path") && image_column(fields).is_some()
    })
}

/// Lists the rows of the Parquet files of `input` (a file, or a folder of
/// them; or the same in object storage); only files for which
/// `o.keep(rel_file)` holds are read (a shard's own).
pub fn list_parquets(input: &Path, o: &ListOptions<'_>) -> Result<Listing, ExtractError> {
    list_containers(input, "parquet", o, &|at, rel, out| {
        list_parquet(&ParquetAt::open(at)?, at, rel, out)
    })
}

/// One row's value of a label or split column, or why it names nothing.
type RowValue = Result<Option<String>, String>;

fn list_parquet(
    b: &ParquetAt,
    at: &Origin,
    rel_file: &str,
    out: &mut Listing,
) -> Result<(), String> {
    let meta = b.metadata();
    let fields = meta.schema().fields().clone();
    image_column(&fields).ok_or(
        "no image column (a struct with `bytes`, as Hugging Face datasets write, or a binary column)",
    )?;
    let has = |n: &str| fields.iter().any(|f| f.name() == n);
    // The reader's schema keeps the file's metadata (Hugging Face ClassLabel names).
    let schema = meta.schema().clone();
    let cols: Vec<&str> = ["label", "split"].into_iter().filter(|n| has(n)).collect();
    // Row group of each row, to read a group at a time later.
    let groups: Vec<usize> = meta
        .metadata()
        .row_groups()
        .iter()
        .map(|g| usize::try_from(g.num_rows()).unwrap_or(0))
        .collect();
    let file_split = split_of_file(rel_file);
    let mask = ProjectionMask::columns(meta.parquet_schema(), cols);
    let reader = b.reader(mask, None, 8192)?;
    let abs = at.clone();
    let (mut group, mut in_group, mut row) = (0usize, 0usize, 0usize);
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        // Per row: one value that names no class is that row's error only.
        let col = |n: &str| -> Result<Option<Vec<RowValue>>, String> {
            batch
                .column_by_name(n)
                .map(|c| headstart_cache::column_utf8_rows(&schema, n, c.as_ref()))
                .transpose()
        };
        let labels = col("label")?;
        let splits = col("split")?;
        for i in 0..batch.num_rows() {
            while groups.get(group).is_some_and(|&n| in_group >= n) {
                group += 1;
                in_group = 0;
            }
            let rel = format!("{rel_file}/{row}");
            let get = |c: &Option<Vec<RowValue>>| c.as_ref().map_or(Ok(None), |c| c[i].clone());
            let (label, split) = match (get(&labels), get(&splits)) {
                (Ok(l), Ok(s)) => (l, s),
                (Err(message), _) | (_, Err(message)) => {
                    out.errors.push(ErrorRow {
                        path: rel,
                        stage: "list".into(),
                        message,
                    });
                    row += 1;
                    in_group += 1;
                    continue;
                }
            };
            let split = match split {
                None => file_split.clone(),
                Some(s) => match normalize_split(&s) {
                    Some(s) => Some(s),
                    None => {
                        out.errors.push(ErrorRow {
                            path: rel,
                            stage: "list".into(),
                            message: format!("unknown split `{s}` (use train, val or test)"),
                        });
                        row += 1;
                        in_group += 1;
                        continue;
                    }
                },
            };
            out.items.push(Item {
                rel,
                abs: abs.clone(),
                label: label.filter(|l| !l.is_empty()),
                split,
                source: Source::ParquetRow {
                    row_group: group,
                    row: in_group,
                },
            });
            row += 1;
            in_group += 1;
        }
    }
    Ok(())
}

/// Reads the bytes of the items `unit` of `items`: one file or tar member, or
/// the rows of one Parquet row group (see [`units`]); objects in a store are
/// fetched by byte range (a run of tar members, a row group's image column).
/// Only regular files are read, and no file, object, member or cell over
/// `limit` bytes: those are errors (`not a regular file`, `too large`), as is
/// anything unreadable.
pub fn load(items: &[Item], unit: &[usize], limit: u64) -> Vec<Result<Vec<u8>, String>> {
    let Some(&first) = unit.first() else {
        return Vec::new();
    };
    if items[first].abs.is_remote() {
        let ctx = crate::remote::fetch::Fetcher::new(limit, None);
        let fetched = crate::remote::block_on(ctx.fetch(items, unit, None));
        return fetched
            .finish(items, unit, limit)
            .into_iter()
            .map(|r| match r {
                Fetch::Bytes(b, _) => Ok(b),
                Fetch::Unchanged => Err("not modified".into()),
                Fetch::Failed(e) => Err(e),
            })
            .collect();
    }
    match items[first].source {
        Source::File => unit
            .iter()
            .map(|&i| match &items[i].abs {
                Origin::File(p) => read_regular(p, limit).map_err(|e| e.reason()),
                Origin::Object(_) => Err("mixed origins in one unit".into()),
            })
            .collect(),
        Source::TarMember { .. } => unit
            .iter()
            .map(|&i| read_member(&items[i], limit))
            .collect(),
        Source::ParquetRow { row_group, .. } => {
            let rows =
                ParquetAt::open(&items[first].abs).and_then(|pq| read_group(&pq, row_group, limit));
            group_cells(items, unit, rows)
        }
    }
}

/// What reading one item gave.
#[derive(Debug)]
pub enum Fetch {
    /// Its bytes, and the version of the object they are of when a whole
    /// object was read (a tar member's or Parquet row's comes from its listing).
    Bytes(Vec<u8>, Option<String>),
    /// Its object still has the version asked about (nothing was read).
    Unchanged,
    /// Why it could not be read.
    Failed(String),
}

/// The cells of the rows `unit` from the rows of their row group (or its error).
pub(crate) fn group_cells(
    items: &[Item],
    unit: &[usize],
    rows: Result<Vec<Option<Cell>>, String>,
) -> Vec<Result<Vec<u8>, String>> {
    match rows {
        Ok(rows) => unit
            .iter()
            .map(|&i| match items[i].source {
                Source::ParquetRow { row, row_group } => {
                    rows.get(row).cloned().flatten().unwrap_or_else(|| {
                        Err(format!(
                            "row {row} of row group {row_group} has no image bytes"
                        ))
                    })
                }
                _ => Err("mixed sources in one unit".into()),
            })
            .collect(),
        Err(e) => unit.iter().map(|_| Err(e.clone())).collect(),
    }
}

/// Why a member or cell of `bytes` bytes is not read.
fn too_large(bytes: u64, limit: u64) -> String {
    headstart_files::ReadError::TooLarge {
        path: PathBuf::new(),
        bytes,
        limit,
    }
    .reason()
}

fn read_member(item: &Item, limit: u64) -> Result<Vec<u8>, String> {
    use std::os::unix::fs::FileExt;
    let Source::TarMember { offset, len } = item.source else {
        return Err("not a tar member".into());
    };
    if len > limit {
        return Err(too_large(len, limit));
    }
    let Origin::File(path) = &item.abs else {
        return Err("not a file".into());
    };
    let (file, _) = open_regular(path).map_err(|e| e.reason())?;
    let len = usize::try_from(len).map_err(|_| too_large(len, limit))?;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)
        .map_err(|e| format!("{} (is the tar truncated?)", e))?;
    Ok(buf)
}

/// The image column of a Parquet file and the projection of it, after
/// checking that row group `group` holds at most [`MAX_GROUP_BYTES`] (or
/// `limit`) of image bytes: a thread holds one row group in memory.
pub(crate) fn group_plan(
    meta: &ArrowReaderMetadata,
    group: usize,
    limit: u64,
) -> Result<(String, ProjectionMask), String> {
    let image = image_column(meta.schema().fields()).ok_or("no image column")?;
    // By position: a column name may hold dots, which name-based projection splits.
    let root = meta
        .schema()
        .fields()
        .iter()
        .position(|f| *f.name() == image)
        .ok_or("no image column")?;
    let mask = ProjectionMask::roots(meta.parquet_schema(), [root]);
    let size: i64 = meta
        .metadata()
        .row_groups()
        .get(group)
        .map(|rg| {
            rg.columns()
                .iter()
                .filter(|c| mask.leaf_included(leaf_index(meta.parquet_schema(), c)))
                .map(|c| c.uncompressed_size())
                .sum()
        })
        .unwrap_or(0);
    let cap = MAX_GROUP_BYTES.max(limit);
    if u64::try_from(size).unwrap_or(0) > cap {
        return Err(format!(
            "row group {group} holds {} of image bytes, over the {} a row group may hold; write the file with smaller row groups (e.g. pyarrow `row_group_size=1000`)",
            headstart_files::describe_size(size as u64),
            headstart_files::describe_size(cap)
        ));
    }
    Ok((image, mask))
}

/// The image bytes of every row of one row group (`None` for null rows; a
/// cell over `limit` bytes is an error of its own row). A row group whose
/// image column holds more than [`MAX_GROUP_BYTES`] is refused whole before
/// it is read.
pub(crate) fn read_group(
    pq: &ParquetAt,
    group: usize,
    limit: u64,
) -> Result<Vec<Option<Cell>>, String> {
    let (image, mask) = group_plan(pq.metadata(), group, limit)?;
    let reader = pq.reader(mask, Some(vec![group]), 1024)?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let col = batch.column_by_name(&image).ok_or("image column missing")?;
        let bytes: &dyn Array = match col.as_struct_opt() {
            Some(s) => s
                .column_by_name("bytes")
                .ok_or("no `bytes` field")?
                .as_ref(),
            None => col.as_ref(),
        };
        let get = |i: usize| -> Option<Cell> {
            if bytes.is_null(i) {
                return None;
            }
            let value = if let Some(b) = bytes.as_binary_opt::<i32>() {
                b.value(i)
            } else if let Some(b) = bytes.as_binary_opt::<i64>() {
                b.value(i)
            } else {
                bytes.as_binary_view_opt()?.value(i)
            };
            Some(if value.len() as u64 > limit {
                Err(too_large(value.len() as u64, limit))
            } else {
                Ok(value.to_vec())
            })
        };
        rows.extend((0..bytes.len()).map(get));
    }
    Ok(rows)
}

/// One image cell's bytes, or why they are not read.
pub(crate) type Cell = Result<Vec<u8>, String>;

/// Image bytes a row group may hold (uncompressed), or the file limit if larger.
pub const MAX_GROUP_BYTES: u64 = 2 << 30;

/// The index of column chunk `c` among the leaves of `schema`.
fn leaf_index(
    schema: &parquet::schema::types::SchemaDescriptor,
    c: &parquet::file::metadata::ColumnChunkMetaData,
) -> usize {
    schema
        .columns()
        .iter()
        .position(|d| d.path() == c.column_path())
        .unwrap_or(usize::MAX)
}

/// The most bytes one request for a run of tar members spans.
pub const MEMBER_RUN_BYTES: u64 = 8 << 20;
/// The largest gap between tar members still read through in one request.
const MEMBER_RUN_GAP: u64 = 256 << 10;

/// A file or an object, as a key of a map.
#[derive(PartialEq, Eq, Hash)]
enum OriginKey<'a> {
    File(&'a Path),
    Object(*const Object),
}

fn origin_key(o: &Origin) -> OriginKey<'_> {
    match o {
        Origin::File(p) => OriginKey::File(p),
        Origin::Object(obj) => OriginKey::Object(Arc::as_ptr(obj)),
    }
}

/// Groups item indices into read units: Parquet rows by (file, row group), so a
/// group is read once; tar members of an object in a store by runs of nearby
/// members (one request each, at most [`MEMBER_RUN_BYTES`]); everything else
/// one item a unit.
pub fn units(items: &[Item]) -> Vec<Vec<usize>> {
    units_of(items, 0..items.len())
}

/// [`units`] of the items `which` only.
pub fn units_of(items: &[Item], which: impl IntoIterator<Item = usize>) -> Vec<Vec<usize>> {
    let mut groups: HashMap<(OriginKey<'_>, usize), usize> = HashMap::new();
    let mut members: HashMap<OriginKey<'_>, Vec<usize>> = HashMap::new();
    let mut out: Vec<Vec<usize>> = Vec::new();
    for i in which {
        let it = &items[i];
        match it.source {
            Source::ParquetRow { row_group, .. } => {
                let slot = *groups
                    .entry((origin_key(&it.abs), row_group))
                    .or_insert_with(|| {
                        out.push(Vec::new());
                        out.len() - 1
                    });
                out[slot].push(i);
            }
            Source::TarMember { .. } if it.abs.is_remote() => {
                members.entry(origin_key(&it.abs)).or_default().push(i);
            }
            _ => out.push(vec![i]),
        }
    }
    let span = |i: usize| match items[i].source {
        Source::TarMember { offset, len } => (offset, offset.saturating_add(len)),
        _ => (0, 0),
    };
    let mut runs: Vec<Vec<usize>> = Vec::new();
    for (_, mut m) in members {
        m.sort_by_key(|&i| span(i).0);
        let mut run: Vec<usize> = Vec::new();
        for i in m {
            let (start, end) = span(i);
            if let Some(&first) = run.first() {
                let last_end = run.iter().map(|&j| span(j).1).max().unwrap_or(0);
                if start > last_end.saturating_add(MEMBER_RUN_GAP)
                    || end.saturating_sub(span(first).0) > MEMBER_RUN_BYTES
                {
                    runs.push(std::mem::take(&mut run));
                }
            }
            run.push(i);
        }
        if !run.is_empty() {
            runs.push(run);
        }
    }
    runs.sort_by_key(|r| r[0]);
    out.extend(runs);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_patterns_expand_with_their_padding() {
        assert_eq!(
            expand_braces("s/{00008..00010}.tar").unwrap(),
            ["s/00008.tar", "s/00009.tar", "s/00010.tar"]
        );
        assert_eq!(expand_braces("a.tar").unwrap(), ["a.tar"]);
        assert_eq!(
            expand_braces("{0..1}/{7..8}.tar").unwrap(),
            ["0/7.tar", "0/8.tar", "1/7.tar", "1/8.tar"]
        );
        assert!(expand_braces("s/{3..1}.tar").is_err());
        assert!(expand_braces("s/{1..x}.tar").is_err());
    }

    /// Regression (review): a tar cut at a block boundary read as a shorter,
    /// complete shard, so its missing samples were taken as deleted; and a
    /// sample cut in half was listed without the label that lay past the cut.
    #[test]
    fn a_tar_cut_at_a_block_boundary_is_damage_not_a_shorter_shard() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.tar");
        let mut b = tar::Builder::new(File::create(&p).unwrap());
        for (name, data) in [
            ("a.png", &b"x"[..]),
            ("a.cls", b"cat"),
            ("b.png", b"y"),
            ("b.cls", b"dog"),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append_data(&mut h, name, data).unwrap();
        }
        b.finish().unwrap();
        drop(b);
        let mut out = Listing::default();
        list_tar(&p, "s.tar", &LabelFrom::Cls, &mut out).unwrap();
        assert_eq!(out.items.len(), 2);
        // Each member is a header block and a data block; cut after b.png.
        let whole = std::fs::read(&p).unwrap();
        std::fs::write(&p, &whole[..3 * 1024]).unwrap();
        let mut out = Listing::default();
        let e = list_tar(&p, "s.tar", &LabelFrom::Cls, &mut out).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        let listed: Vec<_> = out
            .items
            .iter()
            .map(|i| (i.rel.as_str(), i.label.as_deref()))
            .collect();
        assert_eq!(listed, [("s.tar/a", Some("cat"))]);
    }

    /// A tar of `(name, data)` members, for the damage tests.
    fn tar_of(p: &Path, members: &[(&str, &[u8])]) {
        let mut b = tar::Builder::new(File::create(p).unwrap());
        for (name, data) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.finish().unwrap();
    }

    fn listed(out: &Listing) -> Vec<(&str, Option<&str>)> {
        out.items
            .iter()
            .map(|i| (i.rel.as_str(), i.label.as_deref()))
            .collect()
    }

    fn errors(out: &Listing) -> Vec<(&str, &str)> {
        out.errors
            .iter()
            .map(|e| (e.path.as_str(), e.message.as_str()))
            .collect()
    }

    /// Regression (#22 item 16): a gzipped `.tar` printed raw binary in its
    /// error; it now says what it is and how to decompress it.
    #[test]
    fn a_compressed_tar_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.tar");
        std::fs::write(&p, [0x1f, 0x8b, 8, 0, 0xff, 0xfe, 0, 1, 2, 3]).unwrap();
        let e = list_tar(&p, "s.tar", &LabelFrom::Cls, &mut Listing::default()).unwrap_err();
        assert!(
            e.starts_with("gzip-compressed") && e.contains("gunzip"),
            "{e}"
        );
        assert!(!e.chars().any(|c| c.is_control()), "{e:?}");
    }

    /// Regression (#22 item 16): a member whose header declares a huge size
    /// lost the good samples before it; a duplicate key silently kept one of
    /// the two samples; an invalid-UTF-8 or 5 MB `.cls` silently unlabelled
    /// its sample. Each is now an error row of its own.
    #[test]
    fn tar_damage_costs_only_the_samples_it_touches() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.tar");
        let big = vec![b'x'; 2 << 20];
        tar_of(
            &p,
            &[
                ("a.png", b"1"),
                ("a.cls", b"cat"),
                ("b.png", b"2"),
                ("b.cls", b"\xff\xfe"),
                ("c.png", b"3"),
                ("c.cls", &big),
                ("d.png", b"4"),
                ("d.cls", b"dog"),
                ("e.png", b"5"),
                ("d.png", b"6"),
                ("z.png", b"7"),
                ("z.cls", b"cat"),
            ],
        );
        // The last member's size field says 8 GiB (octal, as tar writes it).
        let mut bytes = std::fs::read(&p).unwrap();
        let last = bytes.len() - 2 * 512 /* end marker */ - 2 * 512 /* z.cls */;
        bytes[last + 124..last + 136].copy_from_slice(b"77777777777\0");
        let sum: u32 = bytes[last..last + 512]
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(b)
                }
            })
            .sum();
        bytes[last + 148..last + 156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        std::fs::write(&p, &bytes).unwrap();
        let mut out = Listing::default();
        let e = list_tar(&p, "s.tar", &LabelFrom::Cls, &mut out).unwrap_err();
        assert!(e.contains("declares 8589934591 bytes"), "{e}");
        assert_eq!(listed(&out), [("s.tar/a", Some("cat")), ("s.tar/e", None)]);
        let errs = errors(&out);
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0].0 == "s.tar/b" && errs[0].1.contains("not UTF-8"),
            "{errs:?}"
        );
        assert!(
            errs[1].0 == "s.tar/c" && errs[1].1.contains("2.0 MiB"),
            "{errs:?}"
        );
        assert!(
            errs[2].0 == "s.tar/d" && errs[2].1.contains("appears twice"),
            "{errs:?}"
        );
    }

    /// Regression (#22 item 16): one out-of-range ClassLabel index turned the
    /// whole image Parquet file into one error row; it is now that row's.
    #[test]
    fn a_bad_class_index_fails_its_row_only() {
        use arrow_array::{BinaryArray, Int64Array};
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.parquet");
        let batch = arrow_array::RecordBatch::try_from_iter([
            (
                "image",
                Arc::new(BinaryArray::from_iter_values([b"a", b"b", b"c"]))
                    as arrow_array::ArrayRef,
            ),
            ("label", Arc::new(Int64Array::from(vec![0, 7, 1]))),
        ])
        .unwrap();
        let hf = r#"{"info": {"features": {"label": {"_type": "ClassLabel", "names": ["cat", "dog"]}}}}"#;
        let schema = Arc::new(batch.schema().as_ref().clone().with_metadata(
            std::collections::HashMap::from([("huggingface".to_string(), hf.to_string())]),
        ));
        let batch = batch.with_schema(schema.clone()).unwrap();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(File::create(&f).unwrap(), schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let l = list_parquets(&f, &ListOptions::default()).unwrap();
        assert_eq!(
            listed(&l),
            [("x.parquet/0", Some("cat")), ("x.parquet/2", Some("dog"))]
        );
        assert!(
            errors(&l)[0].1.contains("class index 7"),
            "{:?}",
            errors(&l)
        );
    }

    /// Keys of a multi-folder pattern are relative to the folder before the
    /// first `{`, not to the first expanded file's folder.
    #[test]
    fn pattern_keys_are_relative_to_the_fixed_folder() {
        let (root, files) = container_files(Path::new("/d/{0..1}/a.tar"), "tar").unwrap();
        assert_eq!(root, Path::new("/d"));
        assert_eq!(rel_to(&root, &files[1]), "1/a.tar");
        let (root, _) = container_files(Path::new("/d/s/{0..1}.tar"), "tar").unwrap();
        assert_eq!(root, Path::new("/d/s"));
    }

    fn write_parquet(path: &Path, cols: Vec<(&str, arrow_array::ArrayRef)>) {
        let batch = arrow_array::RecordBatch::try_from_iter(cols).unwrap();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), None)
                .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    /// Review: a plain binary image column with a dot in its name could not be
    /// read (name-based projection splits at dots); a manifest that also holds
    /// a binary column was taken for image Parquet.
    #[test]
    fn binary_image_columns_with_dots_and_manifests_with_bytes() {
        use arrow_array::{BinaryArray, StringArray};
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.parquet");
        let bytes = [&b"one"[..], b"two"];
        write_parquet(
            &f,
            vec![
                ("jpg.data", Arc::new(BinaryArray::from_iter_values(bytes))),
                ("label", Arc::new(StringArray::from(vec!["a", "b"]))),
            ],
        );
        assert!(is_image_parquet(&f));
        let l = list_parquets(&f, &ListOptions::default()).unwrap();
        let rels: Vec<_> = l.items.iter().map(|i| i.rel.as_str()).collect();
        assert_eq!(rels, ["x.parquet/0", "x.parquet/1"]);
        let got = load(&l.items, &[0, 1], 1 << 20);
        assert_eq!(got, vec![Ok(b"one".to_vec()), Ok(b"two".to_vec())]);

        let m = dir.path().join("m.parquet");
        write_parquet(
            &m,
            vec![
                ("path", Arc::new(StringArray::from(vec!["a.png"]))),
                ("thumb", Arc::new(BinaryArray::from_iter_values([b"x"]))),
            ],
        );
        assert!(!is_image_parquet(&m));
    }

    #[test]
    fn splits_come_from_container_file_names() {
        assert_eq!(
            split_of_file("data/train-00000-of-00004.parquet").as_deref(),
            Some("train")
        );
        assert_eq!(split_of_file("validation_3.tar").as_deref(), Some("val"));
        assert_eq!(split_of_file("00001.tar"), None);
    }

    #[test]
    fn label_sources_parse() {
        assert_eq!("cls".parse::<LabelFrom>().unwrap(), LabelFrom::Cls);
        assert_eq!(
            "json:class".parse::<LabelFrom>().unwrap(),
            LabelFrom::Json("class".into())
        );
        assert!("json:".parse::<LabelFrom>().is_err());
        assert!("caption".parse::<LabelFrom>().is_err());
        assert_eq!(
            json_field(r#"{"class": "cat", "n": 3}"#, "n").as_deref(),
            Some("3")
        );
    }
}
