//! What to extract: a class-folder tree, a CSV/Parquet manifest, or a plain folder.

use std::collections::HashMap;
use std::path::Path;

use arrow_array::Array;
use headstart_cache::ErrorRow;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::ExtractError;

pub use crate::listing::{
    IMAGE_EXTENSIONS, InputKind, Item, Listing, SPLIT_NAMES, Source, normalize_split,
};

/// Detects the kind of `input`: a file is a manifest, a folder is class folders
/// unless `unlabeled`.
/// A `.tar` file or `{a..b}` pattern of them is tar shards, a Parquet file with
/// an image column is images, a folder holding only tar (or image Parquet) files
/// is those.
pub fn detect(input: &Path, unlabeled: bool) -> Result<InputKind, ExtractError> {
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
    list_with(
        input,
        kind,
        &crate::container::LabelFrom::default(),
        &|_| true,
    )
}

/// [`list`], taking tar samples' labels from `label`, and reading only the
/// tar or Parquet files (by path relative to the input) that `keep` accepts.
pub fn list_with(
    input: &Path,
    kind: InputKind,
    label: &crate::container::LabelFrom,
    keep: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Listing, ExtractError> {
    let mut listing = match kind {
        InputKind::Manifest => list_manifest(input)?,
        InputKind::Unlabeled | InputKind::ClassFolders => list_folder(input, kind)?,
        InputKind::Tar => crate::container::list_tars(input, label, keep)?,
        InputKind::ImageParquet => crate::container::list_parquets(input, keep)?,
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
    let has_splits = kind == InputKind::ClassFolders
        && !top.is_empty()
        && top.iter().any(|t| normalize_split(t).is_some());
    // Top folders that hold images beside split folders: `test/ dog/ cat/`.
    let mut not_splits = std::collections::BTreeSet::new();
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
        let parts: Vec<&str> = rel.split('/').collect();
        let (label, split) = match kind {
            InputKind::Unlabeled => (None, None),
            _ if has_splits => {
                let split = normalize_split(parts[0]);
                if split.is_none() && parts.len() > 1 {
                    not_splits.insert(parts[0].to_string());
                    continue;
                }
                if parts.len() < 3 {
                    out.errors.push(ErrorRow {
                        path: rel.clone(),
                        stage: "list".into(),
                        message:
                            "expected <split>/<class>/<file> under a folder with split folders"
                                .into(),
                    });
                    continue;
                }
                (Some(parts[1].to_string()), split)
            }
            _ => {
                if parts.len() < 2 {
                    out.errors.push(ErrorRow {
                        path: rel.clone(),
                        stage: "list".into(),
                        message: "image at the top level has no class folder; move it into INPUT/<class>/, or list the input as unlabeled".into(),
                    });
                    continue;
                }
                (Some(parts[0].to_string()), None)
            }
        };
        out.items.push(Item {
            abs: entry.path().to_path_buf(),
            rel,
            label,
            split,
            source: Source::File,
        });
    }
    if !not_splits.is_empty() {
        let splits: Vec<String> = top
            .iter()
            .filter(|t| normalize_split(t).is_some())
            .map(|t| format!("{t}/"))
            .collect();
        let others: Vec<String> = not_splits.iter().map(|t| format!("{t}/")).collect();
        return Err(ExtractError::Input {
            path: root.to_path_buf(),
            message: format!(
                "the top folder mixes split folders ({}) with other folders ({}): is {} a split or a class? \
                 Put every class under split folders (train/<class>/, test/<class>/), \
                 or list the images in a CSV manifest with columns path,label,split and pass that as INPUT",
                splits.join(", "),
                others.join(", "),
                splits.first().map_or("it", String::as_str),
            ),
        });
    }
    Ok(out)
}

fn rel_lossy(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .into_owned()
}

fn list_manifest(manifest: &Path) -> Result<Listing, ExtractError> {
    let base = manifest.parent().unwrap_or(Path::new(".")).to_path_buf();
    let err = |message: String| ExtractError::Input {
        path: manifest.to_path_buf(),
        message,
    };
    let rows: Vec<(String, Option<String>, Option<String>)> = match manifest
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("csv") => {
            let mut r = csv::Reader::from_path(manifest).map_err(|e| err(e.to_string()))?;
            let headers = r.headers().map_err(|e| err(e.to_string()))?.clone();
            let col = |n: &str| headers.iter().position(|h| h.trim() == n);
            let p = col("path").ok_or_else(|| err("the manifest has no `path` column".into()))?;
            let (l, s) = (col("label"), col("split"));
            let mut rows = Vec::new();
            for (i, rec) in r.records().enumerate() {
                let rec = rec.map_err(|e| err(format!("line {}: {e}", i + 2)))?;
                let get = |c: Option<usize>| {
                    c.and_then(|c| rec.get(c))
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(str::to_string)
                };
                let path =
                    get(Some(p)).ok_or_else(|| err(format!("line {}: empty path", i + 2)))?;
                rows.push((path, get(l), get(s)));
            }
            rows
        }
        Some("parquet") => read_parquet_manifest(manifest).map_err(err)?,
        _ => return Err(err("a manifest must be a .csv or .parquet file".into())),
    };
    let mut out = Listing::default();
    for (path, label, split) in rows {
        let split = match split {
            None => None,
            Some(s) => match normalize_split(&s) {
                Some(s) => Some(s),
                None => {
                    out.errors.push(ErrorRow {
                        path,
                        stage: "list".into(),
                        message: format!("unknown split `{s}` (use train, val or test)"),
                    });
                    continue;
                }
            },
        };
        let p = Path::new(&path);
        let abs = if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        };
        out.items.push(Item {
            rel: path.replace('\\', "/"),
            abs,
            label,
            split,
            source: Source::File,
        });
    }
    Ok(out)
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

fn read_parquet_manifest(path: &Path) -> Result<ManifestRows, String> {
    let (file, _) = headstart_files::open_regular(path).map_err(|e| e.reason())?;
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
        assert_eq!(l.items[1].abs, d.path().join("imgs/a.jpg"));
        assert_eq!(l.items[0].abs, std::path::PathBuf::from("/abs/b.jpg"));
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
