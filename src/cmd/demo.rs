//! `headstart demo`: the whole workflow on the bundled sample data: provision,
//! extract, fit (with a C sweep), compare with a raw-pixel baseline, export, predict.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use headstart_cache::FeatureTable;
use headstart_extract::{Extractor, FeatureSel, PreprocessOverrides};
use headstart_fit::FitParams;
use headstart_models::zoo;

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
    let data = sample_data(args.data)?;
    let out = args.out;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    step(1, "provision ONNX Runtime and the default backbone");
    let rt = ctx.runtime()?;
    println!("ONNX Runtime {} from {}", rt.version, rt.path.display());
    let model = headstart_extract::resolve(
        &ctx.home,
        zoo::DEFAULT_MODEL,
        &FeatureSel::Auto,
        &PreprocessOverrides::default(),
        &|s| ctx.log(s),
    )?;
    println!(
        "backbone {} ({}-d features from `{}`), fingerprint {}",
        model.name,
        model.feature_dim.unwrap_or(0),
        model.feature_tensor,
        model.fingerprint
    );

    step(
        2,
        "extract features of the sample images (train and test) into the cache",
    );
    let cache = out.join("cache");
    // The demo's cache belongs to the demo: another --data replaces what it held.
    let summary = Extractor::builder(&data, &cache).prune(true).build()?.run(
        rt,
        &model,
        &super::extract::Bar::new(ctx.quiet),
    )?;
    print!("{summary}");
    anyhow::ensure!(
        summary.failed == 0,
        "{} sample images failed; see {}",
        summary.failed,
        summary
            .errors_file
            .as_ref()
            .map_or(String::new(), |p| p.display().to_string())
    );

    step(3, "fit a softmax head, sweeping C, picked on validation");
    let table = headstart_cache::read_features(std::slice::from_ref(&cache))?;
    let params = FitParams::new().c([0.1, 1.0, 10.0]).check()?;
    let outcome = headstart_fit::fit(&table, &params)?;
    let head_dir = out.join("head");
    outcome.save(&head_dir)?;
    print!("{}", outcome.to_text());
    let test = outcome
        .test_metrics
        .as_ref()
        .context("the sample data has no test split")?;
    println!("confusion matrix (test):\n{}", test.confusion_text());

    step(4, "baseline: the same head on raw pixels, same split");
    let raw = raw_pixel_table(&data, &table)?;
    let base = headstart_fit::fit(&raw, &FitParams::new().c([0.1, 1.0, 10.0]).check()?)?;
    let base_acc = base
        .test_metrics
        .as_ref()
        .map_or(f64::NAN, |m| m.summary.accuracy);
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
    let onnx_s = onnx.to_string_lossy().into_owned();
    let head_s = head_dir.to_string_lossy().into_owned();
    same_as_cli(ctx, &["export", &head_s, "--out", &onnx_s])?;

    step(6, "predict a few test images with the saved head");
    let picks = first_test_images(&data, 3)?;
    let cache_s = cache.to_string_lossy().into_owned();
    let mut argv: Vec<&str> = vec!["predict", &head_s, "--top-k", "3", "--cache", &cache_s];
    argv.extend(picks.iter().map(String::as_str));
    same_as_cli(ctx, &argv)?;

    println!("\nartifacts:");
    println!("  feature cache      {}", cache.display());
    println!("  head               {}", head_dir.display());
    println!(
        "  metrics            {}",
        head_dir.join(headstart_fit::METRICS_FILE).display()
    );
    println!(
        "  confusion matrix   {}",
        head_dir.join("confusion_test.svg").display()
    );
    println!(
        "  classifier         {} (float NCHW input; outputs probabilities, label)",
        onnx.display()
    );
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// Runs a subcommand through the same parser and code as the command line.
fn same_as_cli(ctx: &Ctx, argv: &[&str]) -> Result<()> {
    use clap::Parser;
    let cli =
        crate::cli::Cli::try_parse_from(std::iter::once("headstart").chain(argv.iter().copied()))?;
    let code = match cli.command {
        crate::cli::Command::Export(a) => super::export::run(ctx, a)?,
        crate::cli::Command::Predict(a) => super::predict::run(ctx, a)?,
        other => anyhow::bail!("the demo does not run {other:?}"),
    };
    anyhow::ensure!(
        code == ExitCode::SUCCESS,
        "`headstart {}` failed",
        argv.join(" ")
    );
    Ok(())
}

/// The first image of the first `n` test classes.
fn first_test_images(root: &Path, n: usize) -> Result<Vec<String>> {
    let test = root.join("test");
    let mut classes: Vec<PathBuf> = std::fs::read_dir(&test)
        .with_context(|| format!("reading {}", test.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    classes.sort();
    let mut out = Vec::new();
    for c in classes.into_iter().take(n) {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&c)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        if let Some(f) = files.into_iter().next() {
            out.push(f.to_string_lossy().into_owned());
        }
    }
    Ok(out)
}

/// The same rows as `table` (same paths, labels, splits, content hashes) with
/// standardisable raw grey pixels (28x28) as features: the no-transfer baseline.
fn raw_pixel_table(root: &Path, table: &FeatureTable) -> Result<FeatureTable> {
    const SIDE: u32 = 28;
    let mut raw = FeatureTable {
        dim: (SIDE * SIDE) as usize,
        ..FeatureTable::default()
    };
    for i in 0..table.len() {
        if !headstart_fit::is_original(&table.views[i]) {
            continue;
        }
        let path = root.join(&table.paths[i]);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let img = headstart_extract::decode::decode_rgb8(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let grey = image::DynamicImage::ImageRgb8(img)
            .resize_exact(SIDE, SIDE, image::imageops::FilterType::Triangle)
            .to_luma8();
        raw.features
            .extend(grey.as_raw().iter().map(|&v| f32::from(v) / 255.0));
        raw.paths.push(table.paths[i].clone());
        raw.labels.push(table.labels[i].clone());
        raw.splits.push(table.splits[i].clone());
        raw.content_hashes.push(table.content_hashes[i].clone());
        raw.views.push(table.views[i].clone());
    }
    Ok(raw)
}
