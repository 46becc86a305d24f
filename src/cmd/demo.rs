//! `headstart demo`: the whole workflow on the bundled sample data: provision,
//! extract, fit (with a C sweep), compare with a raw-pixel baseline, export, predict.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use headstart_api::options::{ExportOptions, ExtractOptions, FitOptions, PredictOptions};
use headstart_extract::baseline::raw_pixel_table;
use headstart_extract::input;
use headstart_fit::FitParams;
use headstart_serve::records;

use super::Ctx;
use crate::cli::DemoArgs;

/// The bundled sample data, found from the working directory or the source tree.
fn sample_data(given: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(d) = given {
        return Ok(d);
    }
    let rel = Path::new("data/fashion-mnist-mini");
    if rel.is_dir() {
        return Ok(rel.to_path_buf());
    }
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    anyhow::ensure!(
        built_in.is_dir(),
        "sample data not found at {} or {}; pass --data DIR",
        rel.display(),
        built_in.display()
    );
    Ok(built_in)
}

fn step(n: u32, what: &str) {
    println!("\n== {n}. {what}");
}

pub fn run(ctx: &Ctx, args: DemoArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let (env, data, out) = (&ctx.env, sample_data(args.data)?, args.out);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    step(1, "provision ONNX Runtime and the default backbone");
    let rt = env.runtime()?;
    println!("ONNX Runtime {} from {}", rt.version, rt.path.display());
    let model = env.resolve(headstart_api::options::DEFAULT_MODEL, &Default::default())?;
    let (dim, tensor) = (model.feature_dim.unwrap_or(0), &model.feature_tensor);
    let (name, fp) = (&model.name, &model.fingerprint);
    println!("backbone {name} ({dim}-d features from `{tensor}`), fingerprint {fp}");

    step(2, "extract features of the sample images into the cache");
    let cache = out.join("cache");
    // The demo's cache belongs to the demo: another --data replaces what it held,
    // and a cache of an older recipe (another fingerprint) starts over.
    if let Ok(old) = headstart_cache::Cache::open(&cache)
        && old.info().model_fingerprint != model.fingerprint
    {
        ctx.log("the demo's cache holds features of another recipe; extracting again");
        std::fs::remove_dir_all(&cache).with_context(|| format!("removing {}", cache.display()))?;
    }
    let extract = ExtractOptions {
        prune: true,
        ..ExtractOptions::default()
    };
    let bar = ctx.bar();
    let summary = headstart_api::extract(env, &data, &cache, &extract, &bar)?;
    bar.finish();
    print!("{summary}");
    anyhow::ensure!(summary.failed == 0, "sample images failed");

    step(3, "fit a softmax head, sweeping C, picked on validation");
    let mut fit = FitOptions::default();
    fit.head.c = vec![0.1, 1.0, 10.0];
    let caches = [cache.clone()];
    let fitted = headstart_api::fit(env, &caches, &out.join("head"), &fit)?;
    let outcome = &fitted.outcome;
    print!("{}", outcome.to_text());
    let test = outcome
        .test_metrics
        .as_ref()
        .context("the sample data has no test split")?;
    println!("confusion matrix (test):\n{}", test.confusion_text());

    step(4, "baseline: the same head on raw pixels, same split");
    let table = headstart_cache::read_features(&caches)?;
    let raw = raw_pixel_table(&data, &table, 28)?;
    let params = FitParams::new().c([0.1, 1.0, 10.0]).check()?;
    let base = headstart_fit::fit(&raw, &params)?;
    let base_acc = base.test_metrics.map_or(f64::NAN, |m| m.summary.accuracy);
    println!(
        "test accuracy: {:.1}% with {} features vs {:.1}% on raw pixels ({} -> {:+.1} points from transfer)",
        100.0 * test.summary.accuracy,
        model.name,
        100.0 * base_acc,
        raw.dim,
        100.0 * (test.summary.accuracy - base_acc)
    );

    step(5, "export backbone + head as one ONNX classifier");
    let onnx = out.join("classifier.onnx");
    // The demo's own file, replaced on every run.
    let mut export = ExportOptions::default();
    export.force.force = true;
    let exported = headstart_api::export(env, &fitted.dir, &onnx, &export)?;
    print!("{}", exported.describe(&onnx));

    step(6, "predict a few test images with the saved head");
    let predict = PredictOptions {
        cache: caches.to_vec(),
        top_k: 3,
        ..PredictOptions::default()
    };
    let picks = first_test_images(&data, 3)?;
    let quiet = headstart_api::NoProgress;
    let p = headstart_api::predict(env, &fitted.dir, &picks, &predict, &quiet)?;
    print!("{}", records::table(&p.rows));

    println!("\nartifacts:");
    let (head, report) = (&fitted.dir, fitted.report.clone().unwrap_or_default());
    let classifier = "(float NCHW input; outputs probabilities, label)";
    for (what, path, note) in [
        ("feature cache", cache, ""),
        ("head", head.clone(), ""),
        ("metrics", head.join(headstart_fit::METRICS_FILE), ""),
        ("confusion matrix", head.join("confusion_test.svg"), ""),
        ("report", report, "(open in a browser)"),
        ("classifier", onnx, classifier),
    ] {
        println!("  {what:<18} {} {note}", path.display());
    }
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// The first image of the first `n` test classes.
fn first_test_images(root: &Path, n: usize) -> Result<Vec<PathBuf>> {
    let mut items = input::list(&root.join("test"), input::InputKind::ClassFolders)?.items;
    items.dedup_by(|a, b| a.label == b.label);
    Ok(items
        .into_iter()
        .take(n)
        .filter_map(|i| i.abs.as_path().map(Path::to_path_buf))
        .collect())
}
