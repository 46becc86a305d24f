//! `headstart compare`: the same data and head sweep on several backbones.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use headstart_extract::Extractor;
use serde::{Deserialize, Serialize};

use headstart_files::SetKind;
use headstart_fit::HEAD_SET;

use super::config::{open_features, resolve_recipe, session_config};
use super::{Ctx, report};
use crate::cli::CompareArgs;
use crate::progress::Bar;

/// One backbone's line of the comparison (a row of compare.csv).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Row {
    model: String,
    feature_dim: usize,
    /// The set the accuracy is measured on: `test` when the data marks one, else `val`.
    set: String,
    accuracy: f64,
    macro_f1: f64,
    /// Images per second of the last extract run that extracted anything.
    extract_images_per_second: Option<f64>,
    fit_seconds: f64,
}

/// Extract speed of the last run that did work, kept across cached reruns.
#[derive(Debug, Serialize, Deserialize)]
struct Speed {
    images: usize,
    images_per_second: f64,
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

/// The marker of a compare folder, written before any work.
const MARKER: &str = "compare.json";
/// The result set: compare.csv, compare.svg and rows.json, replaced as a whole.
const RESULT: &str = "result";
const RESULT_SET: SetKind = SetKind {
    what: "comparison result",
    marker: "rows.json",
    is_artifact: |n| ["compare.csv", "compare.svg", "rows.json"].contains(&n),
    is_marker: |b| serde_json::from_slice::<Vec<Row>>(b).is_ok(),
};

/// What `compare.json` records: that the folder is a comparison, of what.
#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    headstart: String,
    input: String,
}

/// Checks `--out` before any work: new, empty, or a compare folder (its
/// marker, the result and model folders only); then claims it with the marker.
fn claim(out: &Path, input: &Path) -> Result<()> {
    let ours = std::fs::read(out.join(MARKER))
        .ok()
        .and_then(|b| serde_json::from_slice::<Marker>(&b).ok())
        .is_some_and(|m| m.headstart == "compare");
    if let Ok(rd) = std::fs::read_dir(out) {
        let entries: Vec<_> = rd.flatten().collect();
        let foreign: Vec<String> = entries
            .iter()
            .filter(|e| {
                let n = e.file_name();
                !(n == MARKER || e.file_type().is_ok_and(|t| t.is_dir()))
            })
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if !entries.is_empty() && (!ours || !foreign.is_empty()) {
            let names: Vec<String> = if foreign.is_empty() {
                entries
                    .iter()
                    .take(5)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            } else {
                foreign.into_iter().take(5).collect()
            };
            return Err(headstart_files::FilesError::Foreign {
                dir: out.to_path_buf(),
                what: "compare",
                names,
            }
            .into());
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let marker = Marker {
        headstart: "compare".into(),
        input: input.display().to_string(),
    };
    headstart_files::write_atomic(&out.join(MARKER), &serde_json::to_vec_pretty(&marker)?)?;
    Ok(())
}

/// One folder per backbone: two specs that are the same, or that map to the
/// same folder, are refused before any work.
fn folders(specs: &[String]) -> Result<Vec<String>> {
    let mut seen: std::collections::HashMap<String, &str> = Default::default();
    for spec in specs {
        let f = folder_name(spec);
        if let Some(first) = seen.insert(f.clone(), spec) {
            let why = if first == spec {
                format!("--models lists `{spec}` twice")
            } else {
                format!(
                    "--models `{first}` and `{spec}` would share the folder `{f}`; rename one of the .onnx files"
                )
            };
            return Err(super::Usage(why).into());
        }
    }
    Ok(specs.iter().map(|s| folder_name(s)).collect())
}

pub fn run(ctx: &Ctx, a: CompareArgs) -> Result<ExitCode> {
    super::require(!a.models.is_empty(), || {
        "--models needs at least one backbone".into()
    })?;
    let folders = folders(&a.models)?;
    let params = super::fit::head_params(&a.head, &[0.01, 0.1, 1.0, 10.0])?.check()?;
    let session = session_config(ctx, &a.device)?;
    report::check_args(&a.report)?;
    claim(&a.out, &a.input)?;
    for f in &folders {
        HEAD_SET.check(&a.out.join(f).join("head"), a.force.force)?;
    }
    RESULT_SET.check(&a.out.join(RESULT), a.force.force)?;
    // Every backbone resolved (fetched, converted) before any work: a typo in the
    // last name must not cost the extraction of the first ones.
    let models = a
        .models
        .iter()
        .map(|spec| resolve_recipe(ctx, spec, &a.recipe))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows = Vec::new();
    for ((spec, model), folder) in a.models.iter().zip(models).zip(&folders) {
        let dir = a.out.join(folder);
        let cache = dir.join("cache");
        ctx.log(&format!("{spec}: extracting into {}", cache.display()));
        let rt = ctx.runtime_for(session.device)?;
        let mut net = open_features(rt, &model, &session)?;
        let summary = Extractor::builder(&a.input, &cache)
            .build()?
            .run(&mut net, &Bar::new(ctx.quiet))?;
        super::config::record_speed(ctx, &model, &summary);
        if summary.failed > 0 {
            ctx.log(&format!(
                "{spec}: {} images failed (see {}); compared on the rest",
                summary.failed,
                cache.join("errors").display()
            ));
        }
        // The speed of a run big enough to mean something (a rerun that extracts
        // a few added images keeps the earlier figure).
        let speed_file = dir.join("extract_speed.json");
        if summary.extracted as u64 >= headstart_models::zoo::MIN_SPEED_IMAGES
            || (summary.extracted > 0 && !speed_file.exists())
        {
            let speed = Speed {
                images: summary.extracted,
                images_per_second: summary.images_per_second,
            };
            headstart_files::write_atomic(&speed_file, &serde_json::to_vec_pretty(&speed)?)?;
        }
        let speed: Option<Speed> = std::fs::read(&speed_file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());

        let caches = [cache];
        let table = headstart_cache::read_features(&caches)?;
        let outcome = headstart_fit::fit(&table, &params)
            .with_context(|| format!("fitting the head on {spec}'s features"))?;
        let shown = outcome
            .test_metrics
            .as_ref()
            .unwrap_or(&outcome.val_metrics);
        let html = report::head_report(
            &a.report,
            &caches,
            &report::context(&format!("headstart compare: {spec}"), &caches, &table),
            Some(&outcome),
            shown,
        );
        let extra: Vec<(&str, &[u8])> = html
            .iter()
            .map(|h| (report::FIT_REPORT, h.as_bytes()))
            .collect();
        outcome.save(&dir.join("head"), a.force.force, &extra)?;
        rows.push(Row {
            model: model.name.clone(),
            feature_dim: table.dim,
            set: shown.set.clone(),
            accuracy: shown.summary.accuracy,
            macro_f1: shown.summary.macro_f1,
            extract_images_per_second: speed.map(|s| s.images_per_second),
            fit_seconds: outcome.fit_seconds,
        });
    }
    let mut csv = csv::Writer::from_writer(Vec::new());
    for r in &rows {
        csv.serialize(r)?;
    }
    let csv = csv.into_inner()?;
    let labels: Vec<String> = rows.iter().map(|r| r.model.clone()).collect();
    let svg = headstart_report::bar_chart(
        &format!("Backbones on {}", a.input.display()),
        &labels,
        &[
            ("accuracy", rows.iter().map(|r| r.accuracy).collect()),
            ("macro-F1", rows.iter().map(|r| r.macro_f1).collect()),
        ],
        1.0,
    );
    let json = serde_json::to_vec_pretty(&rows)?;
    let result = RESULT_SET.publish(&a.out.join(RESULT), a.force.force, false, |d| {
        for (name, bytes) in [
            ("compare.csv", &csv[..]),
            ("compare.svg", svg.as_bytes()),
            ("rows.json", &json),
        ] {
            std::fs::write(d.join(name), bytes).map_err(|e| headstart_files::FilesError::Io {
                path: d.join(name),
                source: e,
            })?;
        }
        Ok::<(), headstart_files::FilesError>(())
    })?;
    print!("{}", table(&rows));
    println!(
        "saved {} and {}",
        result.join("compare.csv").display(),
        result.join("compare.svg").display()
    );
    Ok(ExitCode::SUCCESS)
}

fn table(rows: &[Row]) -> String {
    use headstart_files::escape as esc;
    let w = rows
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
    for r in rows {
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
    }
}
