//! `headstart compare`: the same data and head sweep on several backbones.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use headstart_extract::Extractor;
use serde::{Deserialize, Serialize};

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

/// A folder name for a model given by name or path.
fn folder_name(spec: &str) -> String {
    let p = Path::new(spec);
    let base = if p.extension().is_some_and(|e| e == "onnx") {
        p.file_stem()
            .map_or(spec.into(), |s| s.to_string_lossy().into_owned())
    } else {
        spec.to_string()
    };
    base.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub fn run(ctx: &Ctx, a: CompareArgs) -> Result<ExitCode> {
    super::require(!a.models.is_empty(), || {
        "--models needs at least one backbone".into()
    })?;
    let params = super::fit::head_params(&a.head, &[0.01, 0.1, 1.0, 10.0])?.check()?;
    let session = session_config(ctx, &a.device)?;
    // Every backbone resolved (fetched, converted) before any work: a typo in the
    // last name must not cost the extraction of the first ones.
    let models = a
        .models
        .iter()
        .map(|spec| resolve_recipe(ctx, spec, &a.recipe))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows = Vec::new();
    for (spec, model) in a.models.iter().zip(models) {
        let dir = a.out.join(folder_name(spec));
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
            super::write_file(&speed_file, &serde_json::to_vec_pretty(&speed)?)?;
        }
        let speed: Option<Speed> = std::fs::read(&speed_file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());

        let caches = [cache];
        let table = headstart_cache::read_features(&caches)?;
        let outcome = headstart_fit::fit(&table, &params)
            .with_context(|| format!("fitting the head on {spec}'s features"))?;
        let head = dir.join("head");
        outcome.save(&head)?;
        let shown = outcome
            .test_metrics
            .as_ref()
            .unwrap_or(&outcome.val_metrics);
        report::write_head_report(
            &a.report,
            &caches,
            &report::context(&format!("headstart compare: {spec}"), &caches, &table),
            Some(&outcome),
            shown,
            &head.join(report::FIT_REPORT),
        );
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
    super::write_file(&a.out.join("compare.csv"), &csv.into_inner()?)?;
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
    super::write_file(&a.out.join("compare.svg"), svg.as_bytes())?;
    print!("{}", table(&rows));
    println!(
        "saved {} and {}",
        a.out.join("compare.csv").display(),
        a.out.join("compare.svg").display()
    );
    Ok(ExitCode::SUCCESS)
}

fn table(rows: &[Row]) -> String {
    let w = rows.iter().map(|r| r.model.len()).max().unwrap_or(5).max(5);
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
            r.model,
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
        assert_eq!(folder_name("../x/y"), ".._x_y");
    }
}
