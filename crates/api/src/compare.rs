//! `compare`: the same data and head sweep on several backbones.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use headstart_extract::{Extractor, Progress};
use headstart_files::{FilesError, SetKind};
use headstart_fit::HEAD_SET;
use serde::{Deserialize, Serialize};

use crate::options::{CompareOptions, FitOptions};
use crate::{Env, Error};

/// One backbone's line of the comparison (a row of compare.csv).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareRow {
    /// The backbone's name.
    pub model: String,
    /// Its feature dimension.
    pub feature_dim: usize,
    /// The set the accuracy is measured on: `test` when the data marks one, else `val`.
    pub set: String,
    /// Accuracy on that set.
    pub accuracy: f64,
    /// Macro-F1 on that set.
    pub macro_f1: f64,
    /// Images per second of the last extract run that extracted anything.
    pub extract_images_per_second: Option<f64>,
    /// Seconds the head sweep took.
    pub fit_seconds: f64,
}

/// What `compare` wrote.
#[derive(Debug)]
pub struct CompareResult {
    /// One row per backbone, in the order given.
    pub rows: Vec<CompareRow>,
    /// The result folder (compare.csv, compare.svg, rows.json).
    pub dir: PathBuf,
}

/// Extract speed of the last run that did work, kept across cached reruns.
#[derive(Debug, Serialize, Deserialize)]
struct Speed {
    images: usize,
    images_per_second: f64,
}

/// The marker of a compare folder, written before any work.
const MARKER: &str = "compare.json";
/// The result set: compare.csv, compare.svg and rows.json, replaced as a whole.
const RESULT: &str = "result";
const RESULT_SET: SetKind = SetKind {
    what: "comparison result",
    marker: "rows.json",
    is_artifact: |n| ["compare.csv", "compare.svg", "rows.json"].contains(&n),
    is_marker: |b| serde_json::from_slice::<Vec<CompareRow>>(b).is_ok(),
};

/// What `compare.json` records: that the folder is a comparison, of what.
#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    headstart: String,
    input: String,
}

/// Extracts `input` with each backbone into `out/<model>/cache` (reused on
/// reruns), fits the same head sweep on each into `out/<model>/head`, and
/// saves the table into `out/result`. Options, backbone names and every
/// folder are checked first; every backbone is resolved before any work.
pub fn compare(
    env: &Env,
    input: &Path,
    out: &Path,
    o: &CompareOptions,
    progress: &dyn Progress,
) -> Result<CompareResult, Error> {
    let folders = folders(&o.models)?;
    let params = crate::fit::head_params(&o.head, &[0.01, 0.1, 1.0, 10.0])?.check()?;
    let session = env.session_config(&o.device)?;
    crate::report::check(&o.report)?;
    claim(out, input)?;
    for f in &folders {
        HEAD_SET.check(&out.join(f).join("head"), o.force.force)?;
    }
    RESULT_SET.check(&out.join(RESULT), o.force.force)?;
    // A typo in the last name must not cost the extraction of the first ones.
    let models = o
        .models
        .iter()
        .map(|spec| env.resolve(spec, &o.recipe))
        .collect::<Result<Vec<_>, _>>()?;
    let fit_options = FitOptions {
        force: o.force,
        report: o.report.clone(),
        ..FitOptions::default()
    };
    let mut rows = Vec::new();
    for ((spec, model), folder) in o.models.iter().zip(models).zip(&folders) {
        let dir = out.join(folder);
        let cache = dir.join("cache");
        env.log(&format!("{spec}: extracting into {}", cache.display()));
        let mut net = env.open_features(&model, &session)?;
        let summary = Extractor::builder(input, &cache)
            .access(o.store.access())
            .build()?
            .run(&mut net, progress)?;
        env.record_speed(&model, &summary);
        if summary.failed > 0 {
            env.log(&format!(
                "{spec}: {} images failed (see {}); compared on the rest",
                summary.failed,
                cache.join("errors").display()
            ));
        }
        let speed = speed(&dir, &summary)?;
        let caches = [cache];
        let table = headstart_cache::read_features(&caches)?;
        let outcome = headstart_fit::fit(&table, &params)?;
        let title = format!("headstart compare: {spec}");
        let saved = crate::fit::save(
            outcome,
            &table,
            &caches,
            &dir.join("head"),
            &fit_options,
            &title,
        )?;
        let shown = saved
            .outcome
            .test_metrics
            .as_ref()
            .unwrap_or(&saved.outcome.val_metrics);
        rows.push(CompareRow {
            model: model.name.clone(),
            feature_dim: table.dim,
            set: shown.set.clone(),
            accuracy: shown.summary.accuracy,
            macro_f1: shown.summary.macro_f1,
            extract_images_per_second: speed,
            fit_seconds: saved.outcome.fit_seconds,
        });
    }
    let dir = publish(out, input, &rows, o.force.force)?;
    Ok(CompareResult { rows, dir })
}

/// The extract speed of a run big enough to mean something, kept in
/// `dir/extract_speed.json` (a rerun that extracts a few added images keeps
/// the earlier figure).
fn speed(dir: &Path, summary: &headstart_extract::Summary) -> Result<Option<f64>, Error> {
    let file = dir.join("extract_speed.json");
    if summary.extracted as u64 >= headstart_models::zoo::MIN_SPEED_IMAGES
        || (summary.extracted > 0 && !file.exists())
    {
        let speed = Speed {
            images: summary.extracted,
            images_per_second: summary.images_per_second,
        };
        let json = serde_json::to_vec_pretty(&speed).unwrap_or_default();
        headstart_files::write_atomic(&file, &json)?;
    }
    Ok(std::fs::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice::<Speed>(&b).ok())
        .map(|s| s.images_per_second))
}

/// Writes compare.csv, compare.svg and rows.json into `out/result` as one set.
fn publish(out: &Path, input: &Path, rows: &[CompareRow], force: bool) -> Result<PathBuf, Error> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    for r in rows {
        csv.serialize(r)
            .map_err(|e| Error::param("models", &r.model, e.to_string()))?;
    }
    let csv = csv.into_inner().unwrap_or_default();
    let labels: Vec<String> = rows.iter().map(|r| r.model.clone()).collect();
    let svg = headstart_report::bar_chart(
        &format!("Backbones on {}", headstart_extract::input::shown(input)),
        &labels,
        &[
            ("accuracy", rows.iter().map(|r| r.accuracy).collect()),
            ("macro-F1", rows.iter().map(|r| r.macro_f1).collect()),
        ],
        1.0,
    );
    let json = serde_json::to_vec_pretty(rows).unwrap_or_default();
    let files = [
        ("compare.csv", &csv[..]),
        ("compare.svg", svg.as_bytes()),
        ("rows.json", &json[..]),
    ];
    Ok(RESULT_SET.publish(&out.join(RESULT), force, false, |d| {
        for (name, bytes) in files {
            std::fs::write(d.join(name), bytes).map_err(|e| FilesError::Io {
                path: d.join(name),
                source: e,
            })?;
        }
        Ok::<(), FilesError>(())
    })?)
}

/// A folder name for a model given by name or path: one safe path component
/// (a model file named `...onnx` must not become `..`).
fn folder_name(spec: &str) -> String {
    let p = Path::new(spec);
    let base = if p.extension().is_some_and(|e| e == "onnx") {
        p.file_stem()
            .map_or(spec.into(), |s| s.to_string_lossy().into_owned())
    } else {
        spec.to_string()
    };
    headstart_files::safe_component(&base)
}

/// One folder per backbone: none empty, and two specs that are the same, or
/// that map to the same folder, are refused before any work.
fn folders(specs: &[String]) -> Result<Vec<String>, Error> {
    if specs.is_empty() {
        return Err(Error::param("models", "", "name at least one backbone"));
    }
    let mut seen: std::collections::HashMap<String, &str> = Default::default();
    for spec in specs {
        if spec.trim().is_empty() {
            return Err(Error::param(
                "models",
                specs.join(","),
                "an empty backbone name; list built-in names or .onnx paths, e.g. efficientnet-lite0,my.onnx",
            ));
        }
        let f = folder_name(spec);
        if let Some(first) = seen.insert(f.clone(), spec) {
            let why = if first == spec {
                format!("lists `{spec}` twice")
            } else {
                format!(
                    "`{first}` and `{spec}` would share the folder `{f}`; rename one of the .onnx files"
                )
            };
            return Err(Error::param("models", specs.join(","), why));
        }
    }
    Ok(specs.iter().map(|s| folder_name(s)).collect())
}

/// Checks `out` before any work: new, empty, or a compare folder (its
/// marker, the result and model folders only); then claims it with the marker.
fn claim(out: &Path, input: &Path) -> Result<(), Error> {
    let ours = std::fs::read(out.join(MARKER))
        .ok()
        .and_then(|b| serde_json::from_slice::<Marker>(&b).ok())
        .is_some_and(|m| m.headstart == "compare");
    if let Ok(rd) = std::fs::read_dir(out) {
        let entries: Vec<_> = rd.flatten().collect();
        let name = |e: &std::fs::DirEntry| e.file_name().to_string_lossy().into_owned();
        let foreign: Vec<String> = entries
            .iter()
            .filter(|e| !(e.file_name() == MARKER || e.file_type().is_ok_and(|t| t.is_dir())))
            .map(name)
            .collect();
        if !entries.is_empty() && (!ours || !foreign.is_empty()) {
            let names = if foreign.is_empty() {
                entries.iter().take(5).map(name).collect()
            } else {
                foreign.into_iter().take(5).collect()
            };
            return Err(FilesError::Foreign {
                dir: out.to_path_buf(),
                what: "compare",
                names,
            }
            .into());
        }
    }
    std::fs::create_dir_all(out).map_err(Error::io(out))?;
    let marker = Marker {
        headstart: "compare".into(),
        input: headstart_extract::input::shown(input),
    };
    let json = serde_json::to_vec_pretty(&marker).unwrap_or_default();
    headstart_files::write_atomic(&out.join(MARKER), &json)?;
    Ok(())
}

impl CompareResult {
    /// The table people read: model, dimension, set, accuracy, macro-F1,
    /// extract images/s and fit seconds (names escaped for a terminal).
    pub fn to_text(&self) -> String {
        use headstart_files::escape as esc;
        let w = self
            .rows
            .iter()
            .map(|r| esc(&r.model).chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        let mut o = String::new();
        let _ = writeln!(
            o,
            "{:<w$}  {:>5}  {:>4}  {:>9}  {:>8}  {:>10}  {:>7}",
            "model", "dim", "set", "accuracy", "macro-F1", "extract/s", "fit s"
        );
        for r in &self.rows {
            let _ = writeln!(
                o,
                "{:<w$}  {:>5}  {:>4}  {:>8.2}%  {:>8.4}  {:>10}  {:>7.2}",
                esc(&r.model),
                r.feature_dim,
                r.set,
                100.0 * r.accuracy,
                r.macro_f1,
                r.extract_images_per_second
                    .map_or("-".into(), |v| format!("{v:.1}")),
                r.fit_seconds
            );
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_folders_are_plain_names() {
        assert_eq!(folder_name("efficientnet-lite1"), "efficientnet-lite1");
        assert_eq!(folder_name("models/my net.onnx"), "my_net");
        assert_eq!(folder_name("../x/y"), "_._x_y");
        // Regression (#22 item 4): a model file named `...onnx` was the folder `..`.
        assert_eq!(folder_name("../models/...onnx"), "_.");
        let twice = folders(&["a".into(), "a".into()]).unwrap_err();
        assert!(twice.to_string().contains("twice"), "{twice}");
        let clash = folders(&["m/x.onnx".into(), "x".into()]).unwrap_err();
        assert!(clash.to_string().contains("share the folder"), "{clash}");
        assert!(folders(&["".into()]).is_err() && folders(&[]).is_err());
    }
}
