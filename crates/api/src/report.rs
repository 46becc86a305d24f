//! HTML reports: finds the images behind cached rows for thumbnails (in class
//! folders, manifests, tar shards or image Parquet, by path and content hash)
//! and renders `report.html` / `report_eval.html` / `audit.html`.

use std::collections::HashMap;
use std::path::PathBuf;

use headstart_extract::input::{self, InputKind};
use headstart_extract::remote::Access;
use headstart_fit::{AuditReport, FitOutcome, Metrics};
use headstart_models::Preprocess;
use headstart_models::preprocess::JpegDecode;
use headstart_report::{Context, ImageRef, THUMB_SIDE, Thumb};
use rayon::prelude::*;

use crate::Error;
use crate::options::ReportOptions as ReportArgs;

/// What a report says about its data: the caches and the model that made them.
pub(crate) fn context(
    title: &str,
    caches: &[PathBuf],
    table: &headstart_cache::FeatureTable,
) -> Context {
    let dataset: Vec<String> = caches.iter().map(|c| c.display().to_string()).collect();
    Context {
        title: title.to_string(),
        dataset: format!("{} ({} rows)", dataset.join(", "), table.len()),
        backbone: match (&table.model_name, &table.model_fingerprint) {
            (Some(n), Some(f)) => format!("{n} (fingerprint {f})"),
            (Some(n), None) => n.clone(),
            (None, Some(f)) => format!("fingerprint {f}"),
            (None, None) => "unknown (features without a model record)".into(),
        },
        train_class_counts: Vec::new(),
    }
}

/// Checks the report options once, at the edge: `images` must exist (an
/// object-store URL is looked at when the thumbnails are read).
pub(crate) fn check(args: &ReportArgs) -> Result<(), Error> {
    match &args.images {
        Some(dir) if !dir.exists() && !headstart_extract::remote::is_remote(dir) => Err(
            Error::param("images", dir.display(), "no such file or folder"),
        ),
        _ => Ok(()),
    }
}

/// A place to look for images in: a folder, manifest or container input
/// (or its URL, with the endpoint it was read through and the cache's stored
/// listings of its tar and Parquet objects).
#[derive(Debug, Clone, Default)]
struct Root {
    input: PathBuf,
    endpoint: Option<String>,
    listings: Option<PathBuf>,
}

/// The places to look for images in: `--images`, else what each cache
/// recorded; and why there are none, when there are none.
fn roots(args: &ReportArgs, caches: &[PathBuf]) -> (Vec<Root>, String) {
    if let Some(dir) = &args.images {
        let root = Root {
            input: dir.clone(),
            ..Root::default()
        };
        return (vec![root], "file is gone".into());
    }
    let recorded: Vec<Root> = caches
        .iter()
        .filter_map(|c| {
            let cache = headstart_cache::Cache::open(c).ok()?;
            Some(Root {
                input: cache.recorded_input()?,
                endpoint: cache.recorded_endpoint(),
                listings: Some(cache.listings_dir()),
            })
        })
        .collect();
    let (there, gone): (Vec<Root>, Vec<Root>) = recorded
        .into_iter()
        .partition(|r| r.input.exists() || headstart_extract::remote::is_remote(&r.input));
    let why = if let Some(g) = gone.first().filter(|_| there.is_empty()) {
        let why = format!(
            "the input {} that extract recorded is not there: pass --images DIR",
            g.input.display()
        );
        eprintln!(
            "headstart: report thumbnails: {}",
            headstart_files::escape(&why)
        );
        why
    } else if there.is_empty() {
        "image folder unknown (cache made before headstart recorded it): pass --images DIR".into()
    } else {
        "file is gone".into()
    };
    (there, why)
}

/// Thumbnails of `images` (cache paths, relative to the extract INPUT, with
/// their content hashes); a missing, changed or unreadable image says why in
/// its place.
pub(crate) fn thumbnails(
    args: &ReportArgs,
    caches: &[PathBuf],
    images: &[ImageRef],
) -> HashMap<ImageRef, Thumb> {
    let (roots, gone) = roots(args, caches);
    thumbnails_from(&roots, &gone, images)
}

/// [`thumbnails`] from the first of `roots` that holds each image: the file at
/// its path with its content hash, so that two inputs' files at the same
/// relative path (train/ and test/ both holding cat/001.jpg) are not confused,
/// and a file changed since extraction is not shown as the one extracted.
fn thumbnails_from(roots: &[Root], gone: &str, images: &[ImageRef]) -> HashMap<ImageRef, Thumb> {
    let mut bytes: HashMap<&ImageRef, Result<Vec<u8>, String>> = HashMap::new();
    for root in roots {
        let wanted: Vec<&ImageRef> = images
            .iter()
            .filter(|i| !matches!(bytes.get(i), Some(Ok(_))))
            .collect();
        if wanted.is_empty() {
            break;
        }
        load_from(root, &wanted, &mut bytes);
    }
    // Decoding for a 96 px thumbnail: big JPEGs at 1/8 scale.
    let recipe = Preprocess {
        height: THUMB_SIDE,
        width: THUMB_SIDE,
        crop_fraction: 1.0,
        jpeg_decode: JpegDecode::Reduced,
        ..Preprocess::tf_lite("thumbnail")
    };
    images
        .par_iter()
        .map_init(Vec::new, |buf, i| {
            let thumb = match bytes.get(i) {
                None => Thumb::Missing(gone.to_string()),
                Some(Err(why)) => Thumb::Missing(why.clone()),
                Some(Ok(b)) => match headstart_extract::isolate::decode(b, buf, &recipe) {
                    Err(e) => Thumb::Missing(format!("cannot decode: {e}")),
                    Ok(img) => {
                        let (w, h) = img.dimensions();
                        let uri = headstart_extract::isolate::guarded(|| {
                            headstart_report::thumbnail_uri(w, h, img.as_raw(), THUMB_SIDE)
                        });
                        match uri {
                            Ok(Ok(uri)) => Thumb::Image(uri),
                            Ok(Err(e)) => Thumb::Missing(e.to_string()),
                            Err(p) => Thumb::Missing(format!("thumbnail panicked: {p}")),
                        }
                    }
                },
            };
            (i.clone(), thumb)
        })
        .collect()
}

/// Reads the bytes of `wanted` under `root`: plain files directly, objects
/// of a prefix in a store by their keys, anything else (a manifest, tar
/// shards, image Parquet) through a listing of `root` (for objects in a
/// store, the cache's stored listings spare reading them again). Bytes whose
/// content hash is not the image's are recorded as why not.
fn load_from<'a>(
    root: &Root,
    wanted: &[&'a ImageRef],
    out: &mut HashMap<&'a ImageRef, Result<Vec<u8>, String>>,
) {
    let shown = input::shown(&root.input);
    let mut keep = |image: &'a ImageRef, read: Result<Vec<u8>, String>| {
        let checked = read.map_err(|e| format!("unreadable: {e}")).and_then(|b| {
            let same = image.content_hash.is_empty()
                || headstart_extract::pipeline::content_hash(&b) == image.content_hash;
            same.then_some(b).ok_or_else(|| {
                format!(
                    "not the image extracted: {}/{} has other content now (changed, or another input's file at the same path): pass --images DIR",
                    shown.trim_end_matches('/'),
                    image.path
                )
            })
        });
        out.insert(image, checked);
    };
    let access = Access {
        endpoint: root.endpoint.clone(),
        ..Access::default()
    };
    let remote = match input::remote_url(&root.input, &access) {
        Ok(r) => r,
        Err(e) => {
            for &image in wanted {
                keep(image, Err(e.to_string()));
            }
            return;
        }
    };
    let options = input::ListOptions {
        access: access.clone(),
        stored: root.listings.clone(),
        ..input::ListOptions::default()
    };
    let Ok(kind) = input::detect_with(&root.input, false, &options) else {
        return;
    };
    let mut rest = Vec::new();
    match &remote {
        // Objects of a prefix: read by key, side by side.
        Some(url) if matches!(kind, InputKind::ClassFolders | InputKind::Unlabeled) => {
            let objects: Vec<_> = wanted
                .iter()
                .map(|i| {
                    let key = if url.key.is_empty() {
                        i.path.clone()
                    } else {
                        format!("{}/{}", url.key, i.path)
                    };
                    std::sync::Arc::new(url.sibling(key).object())
                })
                .collect();
            let read = headstart_extract::remote::read_objects(
                &objects,
                headstart_files::DEFAULT_MAX_FILE_SIZE,
                access.io_concurrency,
            );
            for (&image, r) in wanted.iter().zip(read) {
                keep(image, r);
            }
            return;
        }
        Some(_) => rest.extend_from_slice(wanted),
        None => {
            for &image in wanted {
                let file = root.input.join(&image.path);
                if root.input.is_dir() && file.is_file() {
                    let read = headstart_files::read_regular(
                        &file,
                        headstart_files::DEFAULT_MAX_FILE_SIZE,
                    );
                    keep(image, read.map_err(|e| e.reason()));
                } else {
                    rest.push(image);
                }
            }
        }
    }
    // In class folders on disk a path that is not there is gone.
    if rest.is_empty() || (remote.is_none() && kind == InputKind::ClassFolders) {
        return;
    }
    let Ok(listing) = input::list_with(&root.input, kind, &options) else {
        return;
    };
    let index: HashMap<&str, usize> = listing
        .items
        .iter()
        .enumerate()
        .map(|(i, it)| (it.rel.as_str(), i))
        .collect();
    // The listed items of the wanted images, and those images, side by side.
    let (picked, names): (Vec<usize>, Vec<&'a ImageRef>) = rest
        .iter()
        .filter_map(|&i| Some((*index.get(i.path.as_str())?, i)))
        .unzip();
    let items: Vec<input::Item> = picked.iter().map(|&i| listing.items[i].clone()).collect();
    for unit in headstart_extract::container::units(&items) {
        let loaded = headstart_extract::container::load(
            &items,
            &unit,
            headstart_files::DEFAULT_MAX_FILE_SIZE,
        );
        for (&i, b) in unit.iter().zip(loaded) {
            keep(names[i], b);
        }
    }
}

/// The report of a fit (or, with `outcome` None, of an evaluation): None with
/// `no_report`.
pub(crate) fn head_report(
    args: &ReportArgs,
    caches: &[PathBuf],
    ctx: &Context,
    outcome: Option<&FitOutcome>,
    shown: &Metrics,
) -> Option<String> {
    if args.no_report {
        return None;
    }
    let paths = headstart_report::head_thumbnail_images(shown);
    let thumbs = thumbnails(args, caches, &paths);
    Some(headstart_report::head_report(ctx, outcome, shown, &thumbs))
}

/// The audit page; None with `no_report`.
pub(crate) fn audit_report(
    args: &ReportArgs,
    caches: &[PathBuf],
    ctx: &Context,
    audit: &AuditReport,
) -> Option<String> {
    if args.no_report {
        return None;
    }
    let paths = headstart_report::audit_thumbnail_images(audit);
    let thumbs = thumbnails(args, caches, &paths);
    Some(headstart_report::audit_report(ctx, audit, &thumbs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(v: u8) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(8, 8, image::Rgb([v, 255 - v, v / 2]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    /// Regression: with a train and a test input that both hold cat/001.png,
    /// each row's thumbnail is its own file, found by content hash, and a
    /// file whose content is neither is not shown as the extracted image.
    #[test]
    fn the_same_relative_path_in_two_inputs_is_told_apart_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = [dir.path().join("train"), dir.path().join("test")];
        let (a, b) = (png(10), png(200));
        for (root, bytes) in dirs.iter().zip([&a, &b]) {
            std::fs::create_dir_all(root.join("cat")).unwrap();
            std::fs::write(root.join("cat/001.png"), bytes).unwrap();
        }
        let image = |bytes: &[u8]| ImageRef {
            path: "cat/001.png".into(),
            content_hash: headstart_extract::pipeline::content_hash(bytes),
        };
        let (in_train, in_test, changed) = (image(&a), image(&b), image(&png(99)));
        let wanted = [in_train.clone(), in_test.clone(), changed.clone()];
        let roots: Vec<Root> = dirs
            .iter()
            .map(|d| Root {
                input: d.clone(),
                ..Root::default()
            })
            .collect();
        let thumbs = thumbnails_from(&roots, "file is gone", &wanted);
        let (Thumb::Image(t1), Thumb::Image(t2)) = (&thumbs[&in_train], &thumbs[&in_test]) else {
            panic!("{thumbs:?}");
        };
        assert_ne!(t1, t2, "each input's own file");
        let Thumb::Missing(why) = &thumbs[&changed] else {
            panic!("{thumbs:?}");
        };
        assert!(why.contains("not the image extracted"), "{why}");
    }
}
