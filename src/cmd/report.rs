//! HTML reports: finds the images behind cached rows for thumbnails and
//! writes `report.html` / `report_eval.html` / `audit.html`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use headstart_extract::input::{self, InputKind};
use headstart_fit::{AuditReport, FitOutcome, Metrics};
use headstart_models::Preprocess;
use headstart_models::preprocess::JpegDecode;
use headstart_report::{Context, THUMB_SIDE, Thumb};
use rayon::prelude::*;

use crate::cli::ReportArgs;

pub use headstart_fit::{EVAL_REPORT_FILE as EVAL_REPORT, REPORT_FILE as FIT_REPORT};
/// File name of the page `audit` writes into its --out.
pub const AUDIT_REPORT: &str = "audit.html";

/// What a report says about its data: the caches and the model that made them.
pub fn context(title: &str, caches: &[PathBuf], table: &headstart_cache::FeatureTable) -> Context {
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
    }
}

/// Checks `--images` once, at the edge: it must exist.
pub fn check_args(args: &ReportArgs) -> Result<()> {
    if let Some(dir) = &args.images {
        super::require(dir.exists(), || {
            format!("--images {}: no such file or folder", dir.display())
        })?;
    }
    Ok(())
}

/// The places to look for images in: `--images`, else what each cache
/// recorded; and why there are none, when there are none.
fn roots(args: &ReportArgs, caches: &[PathBuf]) -> (Vec<PathBuf>, String) {
    if let Some(dir) = &args.images {
        return (vec![dir.clone()], "file is gone".into());
    }
    let recorded: Vec<PathBuf> = caches
        .iter()
        .filter_map(|c| headstart_cache::Cache::open(c).ok()?.recorded_input())
        .collect();
    let (there, gone): (Vec<PathBuf>, Vec<PathBuf>) =
        recorded.into_iter().partition(|p| p.exists());
    let why = if let Some(g) = gone.first().filter(|_| there.is_empty()) {
        let why = format!(
            "the input {} that extract recorded is not there: pass --images DIR",
            g.display()
        );
        eprintln!(
            "headstart: report thumbnails: {}",
            crate::term::escape(&why)
        );
        why
    } else if there.is_empty() {
        "image folder unknown (cache made before headstart recorded it): pass --images DIR".into()
    } else {
        "file is gone".into()
    };
    (there, why)
}

/// Thumbnails of `paths` (cache paths, relative to the extract INPUT); a
/// missing or unreadable image says why in its place.
pub fn thumbnails(
    args: &ReportArgs,
    caches: &[PathBuf],
    paths: &[String],
) -> HashMap<String, Thumb> {
    let (roots, gone) = roots(args, caches);
    let mut bytes: HashMap<&str, Result<Vec<u8>, String>> = HashMap::new();
    for root in &roots {
        let wanted: Vec<&String> = paths
            .iter()
            .filter(|p| !matches!(bytes.get(p.as_str()), Some(Ok(_))))
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
    paths
        .par_iter()
        .map_init(Vec::new, |buf, p| {
            let thumb = match bytes.get(p.as_str()) {
                None => Thumb::Missing(gone.clone()),
                Some(Err(e)) => Thumb::Missing(format!("unreadable: {e}")),
                Some(Ok(b)) => match headstart_extract::decode::decode_for(b, buf, &recipe) {
                    Err(e) => Thumb::Missing(format!("cannot decode: {e}")),
                    Ok(img) => {
                        let (w, h) = img.dimensions();
                        match headstart_report::thumbnail_uri(w, h, img.as_raw(), THUMB_SIDE) {
                            Ok(uri) => Thumb::Image(uri),
                            Err(e) => Thumb::Missing(e.to_string()),
                        }
                    }
                },
            };
            (p.clone(), thumb)
        })
        .collect()
}

/// Reads the bytes of `wanted` under `root`: plain files directly, anything
/// else (a manifest, tar shards, image Parquet) through a listing of `root`.
fn load_from<'a>(
    root: &Path,
    wanted: &[&'a String],
    out: &mut HashMap<&'a str, Result<Vec<u8>, String>>,
) {
    let mut rest = Vec::new();
    for &p in wanted {
        let file = root.join(p);
        if root.is_dir() && file.is_file() {
            out.insert(p, std::fs::read(&file).map_err(|e| e.to_string()));
        } else {
            rest.push(p);
        }
    }
    if rest.is_empty() {
        return;
    }
    // In class folders a path that is not there is gone.
    let Ok(kind) = input::detect(root, false) else {
        return;
    };
    if kind == InputKind::ClassFolders {
        return;
    }
    let Ok(listing) = input::list(root, kind) else {
        return;
    };
    let index: HashMap<&str, usize> = listing
        .items
        .iter()
        .enumerate()
        .map(|(i, it)| (it.rel.as_str(), i))
        .collect();
    // The listed items of the wanted paths, and those paths, side by side.
    let (picked, names): (Vec<usize>, Vec<&'a String>) = rest
        .iter()
        .filter_map(|&p| Some((*index.get(p.as_str())?, p)))
        .unzip();
    let items: Vec<input::Item> = picked.iter().map(|&i| listing.items[i].clone()).collect();
    for unit in headstart_extract::container::units(&items) {
        let loaded = headstart_extract::container::load(&items, &unit);
        for (&i, b) in unit.iter().zip(loaded) {
            out.insert(names[i], b);
        }
    }
}

/// Writes `html` to `path`; a failure is a warning (the results are already
/// saved and printed), not an error.
fn write_or_warn(path: &Path, html: &str) -> Option<PathBuf> {
    match super::write_file(path, html.as_bytes()) {
        Ok(()) => Some(path.to_path_buf()),
        Err(e) => {
            eprintln!(
                "headstart: warning: no report: {} (--no-report skips it)",
                crate::term::escape(&format!("{e:#}"))
            );
            None
        }
    }
}

/// Writes the report of a fit (or, with `outcome` None, of an evaluation)
/// to `path`; returns where it went, or None with `--no-report` or when it
/// could not be written (a warning says why).
pub fn write_head_report(
    args: &ReportArgs,
    caches: &[PathBuf],
    ctx: &Context,
    outcome: Option<&FitOutcome>,
    shown: &Metrics,
    path: &Path,
) -> Option<PathBuf> {
    if args.no_report {
        return None;
    }
    let paths = headstart_report::head_thumbnail_paths(shown);
    let thumbs = thumbnails(args, caches, &paths);
    write_or_warn(
        path,
        &headstart_report::head_report(ctx, outcome, shown, &thumbs),
    )
}

/// Writes the audit page into `dir`; None with `--no-report` or on failure.
pub fn write_audit_report(
    args: &ReportArgs,
    caches: &[PathBuf],
    ctx: &Context,
    audit: &AuditReport,
    dir: &Path,
) -> Option<PathBuf> {
    if args.no_report {
        return None;
    }
    let paths = headstart_report::audit_thumbnail_paths(audit);
    let thumbs = thumbnails(args, caches, &paths);
    write_or_warn(
        &dir.join(AUDIT_REPORT),
        &headstart_report::audit_report(ctx, audit, &thumbs),
    )
}
