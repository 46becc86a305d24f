//! What to extract: a class-folder tree, a CSV/Parquet manifest, or a plain folder.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::Array;
use headstart_cache::ErrorRow;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::ExtractError;
use crate::container::LabelFrom;
use crate::remote::{Access, RemoteUrl};

pub use crate::listing::{
    IMAGE_EXTENSIONS, InputKind, Item, Listing, Origin, SPLIT_NAMES, Source, normalize_split,
};

/// How an input is listed: beyond the input itself, all optional.
pub struct ListOptions<'a> {
    /// Where tar samples' labels come from.
    pub label: LabelFrom,
    /// Which tar or Parquet files (by path relative to the input) are read: a
    /// shard's own.
    pub keep: &'a (dyn Fn(&str) -> bool + Sync),
    /// How object stores are reached.
    pub access: Access,
    /// Where listings of tar and Parquet objects are kept (a cache's
    /// `listings/`): an object still at the version listed there is not read.
    pub stored: Option<PathBuf>,
}

fn keep_all(_: &str) -> bool {
    true
}

impl Default for ListOptions<'_> {
    fn default() -> Self {
        ListOptions {
            label: LabelFrom::default(),
            keep: &keep_all,
            access: Access::default(),
            stored: None,
        }
    }
}

/// `input` as recorded and shown: an object-store URL without query or user
/// info, or the absolute path of a file or folder.
pub fn absolute(input: &Path) -> String {
    match input.to_str() {
        Some(t) if crate::remote::is_url(t) => crate::remote::shown_url(t),
        _ => std::path::absolute(input)
            .unwrap_or_else(|_| input.to_path_buf())
            .display()
            .to_string(),
    }
}

/// `input` as given, for messages: an object-store URL without query or
/// user info, a path as it is.
pub fn shown(input: &Path) -> String {
    match input.to_str() {
        Some(t) if crate::remote::is_url(t) => crate::remote::shown_url(t),
        _ => input.display().to_string(),
    }
}

/// The object-store URL that `input` names, if it names one (opening its
/// store; a malformed URL is an error).
pub fn remote_url(input: &Path, access: &Access) -> Result<Option<RemoteUrl>, ExtractError> {
    match input.to_str() {
        Some(t) if crate::remote::is_url(t) => RemoteUrl::parse(t, access).map(Some),
        _ => Ok(None),
    }
}

/// Detects the kind of `input`: a file is a manifest, a folder is class folders
/// unless `unlabeled`.
/// A `.tar` file or `{a..b}` pattern of them is tar shards, a Parquet file with
/// an image column is images, a folder holding only tar (or image Parquet) files
/// is those.
pub fn detect(input: &Path, unlabeled: bool) -> Result<InputKind, ExtractError> {
    detect_with(input, unlabeled, &ListOptions::default())
}

/// [`detect`], reaching object stores as `o` says: an object-store URL is
/// told by its name (`.tar`, `.csv`, `.parquet` with or without an image
/// column: its footer, unless `o.stored` holds its listing) or, for a
/// prefix, by the first keys under it.
pub fn detect_with(
    input: &Path,
    unlabeled: bool,
    o: &ListOptions<'_>,
) -> Result<InputKind, ExtractError> {
    if let Some(url) = remote_url(input, &o.access)? {
        return crate::remote::list::detect(&url, unlabeled, o.stored.as_deref());
    }
    if crate::container::is_tar_input(input) {
        return Ok(InputKind::Tar);
    }
    let meta = std::fs::metadata(input).map_err(|source| ExtractError::Input {
        path: input.to_path_buf(),
        message: source.to_string(),
    })?;
    Ok(if meta.is_file() {
        // By extension too: shards own a Parquet file by its `.parquet` name.
        if input.extension().is_some_and(|e| e == "parquet")
            && crate::container::is_image_parquet(input)
        {
            InputKind::ImageParquet
        } else {
            InputKind::Manifest
        }
    } else if unlabeled {
        InputKind::Unlabeled
    } else {
        folder_kind(input)
    })
}

/// Class folders, unless the folder holds no image files but tar shards or
/// image Parquet files (stops at the first image file).
fn folder_kind(dir: &Path) -> InputKind {
    let (mut tars, mut parquets) = (0, 0);
    for e in walkdir::WalkDir::new(dir)
        .follow_links(true)
        .into_iter()
        .flatten()
    {
        let p = e.path();
        if is_image(p) {
            return InputKind::ClassFolders;
        }
        match p.extension().and_then(|e| e.to_str()) {
            Some("tar") => tars += 1,
            Some("parquet") if parquets == 0 && crate::container::is_image_parquet(p) => {
                parquets += 1
            }
            _ => {}
        }
    }
    if tars > 0 {
        InputKind::Tar
    } else if parquets > 0 {
        InputKind::ImageParquet
    } else {
        InputKind::ClassFolders
    }
}

/// Lists the images of `input`, sorted by relative path.
pub fn list(input: &Path, kind: InputKind) -> Result<Listing, ExtractError> {
    list_with(input, kind, &ListOptions::default())
}

/// [`list`] with options: where tar labels come from, which container files
/// are read, how stores are reached and where container listings are kept.
pub fn list_with(
    input: &Path,
    kind: InputKind,
    o: &ListOptions<'_>,
) -> Result<Listing, ExtractError> {
    let remote = remote_url(input, &o.access)?;
    let mut listing = match (kind, &remote) {
        (InputKind::Manifest, _) => list_manifest(input, &o.access)?,
        (InputKind::Unlabeled | InputKind::ClassFolders, Some(url)) => {
            crate::remote::list::list_folder(url, kind)?
        }
        (InputKind::Unlabeled | InputKind::ClassFolders, None) => list_folder(input, kind)?,
        (InputKind::Tar, _) => crate::container::list_tars(input, o)?,
        (InputKind::ImageParquet, _) => crate::container::list_parquets(input, o)?,
    };
    listing.items.sort_by(|a, b| a.rel.cmp(&b.rel));
    let mut seen = HashMap::new();
    for it in &listing.items {
        if let Some(prev) = seen.insert(it.rel.clone(), it)
            && (prev.label != it.label || prev.split != it.split)
        {
            return Err(ExtractError::Input {
                path: input.to_path_buf(),
                message: format!("`{}` is listed twice with different label or split", it.rel),
            });
        }
    }
    listing.items.dedup_by(|a, b| a.rel == b.rel);
    if listing.items.is_empty() && listing.errors.is_empty() {
        return Err(ExtractError::NoImages {
            path: input.to_path_buf(),
            kind,
        });
    }
    Ok(listing)
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Whether a name (a key, a file name) has an image extension.
pub fn is_image_name(name: &str) -> bool {
    is_image(Path::new(name))
}

/// Places one image of a folder input by its path relative to the input:
/// its label and split (`None` when it is skipped or an error row), as
/// [`list`] does for class folders (optionally under split folders) and
/// unlabeled folders.
pub(crate) struct Placer {
    kind: InputKind,
    has_splits: bool,
    /// Top folders that hold images beside split folders: `test/ dog/ cat/`.
    not_splits: BTreeSet<String>,
    top: Vec<String>,
}

impl Placer {
    /// For an input whose top-level folders are `top`.
    pub(crate) fn new(kind: InputKind, top: Vec<String>) -> Placer {
        let has_splits = kind == InputKind::ClassFolders
            && !top.is_empty()
            && top.iter().any(|t| normalize_split(t).is_some());
        Placer {
            kind,
            has_splits,
            not_splits: BTreeSet::new(),
            top,
        }
    }

    /// The label and split of the image at `rel`, or `None` (an error row in
    /// `out`, or a file beside the split folders).
    #[allow(clippy::type_complexity)]
    pub(crate) fn place(
        &mut self,
        rel: &str,
        out: &mut Listing,
    ) -> Option<(Option<String>, Option<String>)> {
        let parts: Vec<&str> = rel.split('/').collect();
        let err = |out: &mut Listing, message: &str| {
            out.errors.push(ErrorRow {
                path: rel.to_string(),
                stage: "list".into(),
                message: message.into(),
            });
            None
        };
        match self.kind {
            InputKind::Unlabeled => Some((None, None)),
            _ if self.has_splits => {
                let split = normalize_split(parts[0]);
                if split.is_none() && parts.len() > 1 {
                    self.not_splits.insert(parts[0].to_string());
                    return None;
                }
                if parts.len() < 3 {
                    return err(
                        out,
                        "expected <split>/<class>/<file> under a folder with split folders",
                    );
                }
                Some((Some(parts[1].to_string()), split))
            }
            _ => {
                if parts.len() < 2 {
                    return err(
                        out,
                        "image at the top level has no class folder; move it into INPUT/<class>/, or list the input as unlabeled",
                    );
                }
                Some((Some(parts[0].to_string()), None))
            }
        }
    }

    /// Refuses an input whose top folder mixes split folders with others.
    pub(crate) fn finish(self, root: &Path) -> Result<(), ExtractError> {
        if self.not_splits.is_empty() {
            return Ok(());
        }
        let splits: Vec<String> = self
            .top
            .iter()
            .filter(|t| normalize_split(t).is_some())
            .map(|t| format!("{t}/"))
            .collect();
        let others: Vec<String> = self.not_splits.iter().map(|t| format!("{t}/")).collect();
        Err(ExtractError::Input {
            path: root.to_path_buf(),
            message: format!(
                "the top folder mixes split folders ({}) with other folders ({}): is {} a split or a class? \
                 Put every class under split folders (train/<class>/, test/<class>/), \
                 or list the images in a CSV manifest with columns path,label,split and pass that as INPUT",
                splits.join(", "),
                others.join(", "),
                splits.first().map_or("it", String::as_str),
            ),
        })
    }
}

fn list_folder(root: &Path, kind: InputKind) -> Result<Listing, ExtractError> {
    let mut out = Listing::default();
    let top: Vec<String> = std::fs::read_dir(root)
        .map_err(|e| ExtractError::Input {
            path: root.to_path_buf(),
            message: e.to_string(),
        })?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    let mut placer = Placer::new(kind, top);
    for entry in walkdir::WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
    {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = e.path().map(|p| rel_lossy(root, p)).unwrap_or_default();
                out.unlisted.push(path.replace('\\', "/"));
                out.errors.push(ErrorRow {
                    path,
                    stage: "list".into(),
                    message: e.to_string(),
                });
                continue;
            }
        };
        if entry.file_type().is_dir() || !is_image(entry.path()) {
            continue;
        }
        let rel_path = entry.path().strip_prefix(root).unwrap_or(entry.path());
        let Some(rel) = rel_path.to_str().map(|s| s.replace('\\', "/")) else {
            out.errors.push(ErrorRow {
                path: rel_lossy(root, entry.path()),
                stage: "list".into(),
                message: "file name is not valid UTF-8; rename the file".into(),
            });
            continue;
        };
        let Some((label, split)) = placer.place(&rel, &mut out) else {
            continue;
        };
        out.items.push(Item {
            abs: Origin::File(entry.path().to_path_buf()),
            rel,
            label,
            split,
            source: Source::File,
        });
    }
    placer.finish(root)?;
    Ok(out)
}

fn rel_lossy(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .into_owned()
}

/// The most bytes a manifest in object storage may have.
const MAX_MANIFEST: u64 = 1 << 30;

fn list_manifest(manifest: &Path, access: &Access) -> Result<Listing, ExtractError> {
    let remote = remote_url(manifest, access)?;
    let err = |message: String| ExtractError::Input {
        path: manifest.to_path_buf(),
        message,
    };
    let ext = manifest
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if !matches!(ext.as_deref(), Some("csv" | "parquet")) {
        return Err(err("a manifest must be a .csv or .parquet file".into()));
    }
    let rows: ManifestRows = match &remote {
        None if ext.as_deref() == Some("csv") => {
            let r = csv::Reader::from_path(manifest).map_err(|e| err(e.to_string()))?;
            read_csv_manifest(r).map_err(err)?
        }
        None => {
            let (file, _) = headstart_files::open_regular(manifest).map_err(|e| err(e.reason()))?;
            read_parquet_manifest(file).map_err(err)?
        }
        Some(url) => {
            let bytes = crate::remote::list::read_all(url, MAX_MANIFEST)?;
            if ext.as_deref() == Some("csv") {
                read_csv_manifest(csv::Reader::from_reader(&bytes[..])).map_err(err)?
            } else {
                read_parquet_manifest(bytes::Bytes::from(bytes)).map_err(err)?
            }
        }
    };
    let base = manifest.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut out = Listing::default();
    for (path, label, split) in rows {
        // A URL is shown without its query or user info (never stored).
        let is_url = crate::remote::is_url(&path);
        let rel = if is_url {
            crate::remote::shown_url(&path)
        } else {
            path.replace('\\', "/")
        };
        let split = match split {
            None => None,
            Some(s) => match normalize_split(&s) {
                Some(s) => Some(s),
                None => {
                    out.errors.push(ErrorRow {
                        path: rel,
                        stage: "list".into(),
                        message: format!("unknown split `{s}` (use train, val or test)"),
                    });
                    continue;
                }
            },
        };
        let abs = match (&remote, is_url) {
            (_, true) => {
                RemoteUrl::parse(&path, access).map(|u| Origin::Object(Arc::new(u.object())))
            }
            // Keys relative to the manifest's folder; `/key` from the bucket's root.
            (Some(url), false) => relative_key(url.parent_key(), &rel)
                .map(|key| Origin::Object(Arc::new(url.sibling(key).object())))
                .map_err(|message| ExtractError::Input {
                    path: PathBuf::from(&rel),
                    message,
                }),
            (None, false) => {
                let p = Path::new(&path);
                Ok(Origin::File(if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    base.join(p)
                }))
            }
        };
        match abs {
            Ok(abs) => out.items.push(Item {
                rel,
                abs,
                label,
                split,
                source: Source::File,
            }),
            Err(e) => out.errors.push(ErrorRow {
                path: rel,
                stage: "list".into(),
                message: e.to_string(),
            }),
        }
    }
    Ok(out)
}

/// The key of `rel` (a manifest row's path) next to a manifest in folder
/// `dir`: `rel` under `dir`, or from the bucket's root when it starts with `/`;
/// `.` and `..` segments are refused (keys have no parent folders).
fn relative_key(dir: &str, rel: &str) -> Result<String, String> {
    let (root, rel) = match rel.strip_prefix('/') {
        Some(r) => ("", r),
        None => (dir, rel),
    };
    if rel
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(format!(
            "`{rel}` has an empty, `.` or `..` segment: keys in a manifest in object storage are relative to the manifest's folder, without them"
        ));
    }
    Ok(if root.is_empty() {
        rel.to_string()
    } else {
        format!("{root}/{rel}")
    })
}

/// The rows of a CSV manifest: `path`, optional `label` and `split` columns.
fn read_csv_manifest<R: std::io::Read>(mut r: csv::Reader<R>) -> Result<ManifestRows, String> {
    let headers = r.headers().map_err(|e| e.to_string())?.clone();
    let col = |n: &str| headers.iter().position(|h| h.trim() == n);
    let p = col("path").ok_or("the manifest has no `path` column")?;
    let (l, s) = (col("label"), col("split"));
    let mut rows = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| format!("line {}: {e}", i + 2))?;
        let get = |c: Option<usize>| {
            c.and_then(|c| rec.get(c))
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let path = get(Some(p)).ok_or_else(|| format!("line {}: empty path", i + 2))?;
        rows.push((path, get(l), get(s)));
    }
    Ok(rows)
}

type ManifestRows = Vec<(String, Option<String>, Option<String>)>;

/// Why a Parquet file without a `path` column is neither a manifest nor image
/// Parquet: names a column that looks meant for images but has another type.
fn not_a_manifest(schema: &arrow_schema::Schema) -> String {
    let imagey = ["image", "img", "jpg", "jpeg", "png", "webp", "bytes"];
    match schema
        .fields()
        .iter()
        .find(|f| imagey.contains(&f.name().to_ascii_lowercase().as_str()))
    {
        Some(f) => format!(
            "column `{}` has type {}, but images are binary or a struct {{bytes, path}} (as Hugging Face datasets write); a manifest instead needs a `path` column",
            f.name(),
            f.data_type()
        ),
        None => {
            "no image column (binary, or a struct {bytes, path}) and no `path` column of a manifest"
                .into()
        }
    }
}

fn read_parquet_manifest<T: parquet::file::reader::ChunkReader + 'static>(
    file: T,
) -> Result<ManifestRows, String> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| format!("cannot read as Parquet: {e}"))?;
    // The builder's schema keeps the file's metadata (Hugging Face ClassLabel names).
    let schema = builder.schema().clone();
    if schema.field_with_name("path").is_err() {
        return Err(not_a_manifest(&schema));
    }
    let reader = builder
        .build()
        .map_err(|e| format!("cannot read as Parquet: {e}"))?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let col = |n: &str| -> Result<Option<arrow_array::StringArray>, String> {
            batch
                .column_by_name(n)
                .map(|c| headstart_cache::column_utf8(&schema, n, c.as_ref()))
                .transpose()
        };
        let p = col("path")?.ok_or("the manifest has no `path` column")?;
        let (l, s) = (col("label")?, col("split")?);
        let get = |c: &Option<arrow_array::StringArray>, i: usize| {
            c.as_ref()
                .filter(|c| c.is_valid(i))
                .map(|c| c.value(i).to_string())
        };
        for i in 0..batch.num_rows() {
            if !p.is_valid(i) {
                return Err(format!("row {i}: null path"));
            }
            rows.push((p.value(i).to_string(), get(&l, i), get(&s, i)));
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    }

    fn label_split(l: &Listing) -> Vec<(Option<&str>, Option<&str>)> {
        l.items
            .iter()
            .map(|i| (i.label.as_deref(), i.split.as_deref()))
            .collect()
    }

    #[test]
    fn class_folders_with_and_without_splits() {
        let d = tempfile::tempdir().unwrap();
        touch(&d.path().join("cat/a.jpg"));
        touch(&d.path().join("dog/sub/b.PNG"));
        touch(&d.path().join("dog/notes.txt"));
        let l = list(d.path(), InputKind::ClassFolders).unwrap();
        let got: Vec<_> = l
            .items
            .iter()
            .map(|i| (i.rel.as_str(), i.label.as_deref(), i.split.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("cat/a.jpg", Some("cat"), None),
                ("dog/sub/b.PNG", Some("dog"), None)
            ]
        );

        let d = tempfile::tempdir().unwrap();
        touch(&d.path().join("train/cat/a.jpg"));
        touch(&d.path().join("validation/dog/b.jpg"));
        let l = list(d.path(), InputKind::ClassFolders).unwrap();
        let got = label_split(&l);
        assert_eq!(
            got,
            vec![(Some("cat"), Some("train")), (Some("dog"), Some("val"))]
        );
        let l = list(d.path(), InputKind::Unlabeled).unwrap();
        assert!(l.items.iter().all(|i| i.label.is_none()));
    }

    #[test]
    fn paths_under_an_unlisted_folder_may_still_exist() {
        let l = Listing {
            unlisted: vec!["cat/nfs".into()],
            ..Listing::default()
        };
        assert!(l.maybe_unlisted("cat/nfs/a.jpg"));
        assert!(l.maybe_unlisted("cat/nfs"));
        assert!(!l.maybe_unlisted("cat/nfs2/a.jpg"));
        assert!(!l.maybe_unlisted("cat/a.jpg"));
        // The root itself could not be listed: nothing counts as deleted.
        let root = Listing {
            unlisted: vec![String::new()],
            ..Listing::default()
        };
        assert!(root.maybe_unlisted("dog/b.jpg"));
    }

    /// Regression: `Training/` and `Testing/` (as in many Kaggle sets) were
    /// taken for two classes, so every image was labelled with its split.
    #[test]
    fn split_folders_in_any_case_are_splits_not_classes() {
        let d = tempfile::tempdir().unwrap();
        touch(&d.path().join("Training/glioma/a.jpg"));
        touch(&d.path().join("Testing/glioma/b.jpg"));
        touch(&d.path().join("VAL/meningioma/c.jpg"));
        let l = list(d.path(), InputKind::ClassFolders).unwrap();
        let got = label_split(&l);
        assert_eq!(
            got,
            vec![
                (Some("glioma"), Some("test")),
                (Some("glioma"), Some("train")),
                (Some("meningioma"), Some("val"))
            ]
        );
        assert!(l.errors.is_empty(), "{:?}", l.errors);
    }

    #[test]
    fn csv_manifest_resolves_relative_paths_and_reports_bad_splits() {
        let d = tempfile::tempdir().unwrap();
        let m = d.path().join("m.csv");
        std::fs::write(
            &m,
            "path,label,split\nimgs/a.jpg,cat,train\n/abs/b.jpg,,\nc.jpg,dog,holdout\n",
        )
        .unwrap();
        let l = list(&m, InputKind::Manifest).unwrap();
        assert_eq!(l.items.len(), 2);
        assert_eq!(l.items[1].abs, Origin::File(d.path().join("imgs/a.jpg")));
        assert_eq!(l.items[0].abs, Origin::File("/abs/b.jpg".into()));
        assert_eq!(l.items[0].label, None);
        assert_eq!(l.errors.len(), 1);
        assert!(l.errors[0].message.contains("holdout"));
    }

    #[test]
    fn empty_folder_explains_the_layout() {
        let d = tempfile::tempdir().unwrap();
        let e = list(d.path(), InputKind::ClassFolders)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no images found"), "{e}");
    }

    /// Regression: `predict` on an empty folder suggested `--unlabeled`, a flag
    /// predict does not have (it lists folders as unlabeled already).
    #[test]
    fn empty_unlabeled_folder_suggests_no_flag() {
        let d = tempfile::tempdir().unwrap();
        let e = list(d.path(), InputKind::Unlabeled)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no images found") && !e.contains("--unlabeled"),
            "{e}"
        );
    }

    /// Regression: `test/ dog/ cat/` at the top gave every image an error row
    /// and extracted nothing, and stderr said nothing useful.
    #[test]
    fn split_folders_beside_class_folders_are_refused_up_front() {
        let d = tempfile::tempdir().unwrap();
        touch(&d.path().join("test/dog/a.jpg"));
        touch(&d.path().join("dog/b.jpg"));
        touch(&d.path().join("cat/c.jpg"));
        let e = list(d.path(), InputKind::ClassFolders)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("test/") && e.contains("cat/, dog/") && e.contains("manifest"),
            "{e}"
        );
        // Folders without images beside the splits are not in the way.
        let d = tempfile::tempdir().unwrap();
        touch(&d.path().join("train/dog/a.jpg"));
        touch(&d.path().join("docs/readme.txt"));
        assert_eq!(
            list(d.path(), InputKind::ClassFolders).unwrap().items.len(),
            1
        );
    }

    #[test]
    fn manifest_keys_are_relative_to_the_manifest_folder() {
        assert_eq!(
            relative_key("data", "imgs/a.jpg").unwrap(),
            "data/imgs/a.jpg"
        );
        assert_eq!(relative_key("data", "/top/a.jpg").unwrap(), "top/a.jpg");
        assert_eq!(relative_key("", "a.jpg").unwrap(), "a.jpg");
        assert!(relative_key("data", "../a.jpg").is_err());
        assert!(relative_key("data", "x//a.jpg").is_err());
    }

    /// Regression (#22 item 16): image Parquet whose image column has the
    /// wrong type said "the manifest has no path column".
    #[test]
    fn a_wrong_typed_image_column_is_named() {
        let schema = arrow_schema::Schema::new(vec![
            arrow_schema::Field::new("image", arrow_schema::DataType::Int64, true),
            arrow_schema::Field::new("label", arrow_schema::DataType::Utf8, true),
        ]);
        let why = not_a_manifest(&schema);
        assert!(why.contains("column `image` has type Int64"), "{why}");
        assert!(why.contains("`path` column"), "{why}");
    }
}
