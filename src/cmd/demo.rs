//! `headstart demo`: the whole workflow on the bundled sample data: provision,
//! extract, fit (with a C sweep), compare with a raw-pixel baseline, export, predict.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use headstart_extract::input::{self, Item};
use headstart_extract::{Extractor, OrtFeatures, baseline::raw_pixel_table};
use headstart_fit::FitParams;
use headstart_models::{FeatureSel, PreprocessOverrides, zoo};
use headstart_serve::{Classifier, Record, export, records};

use super::Ctx;
use crate::cli::DemoArgs;
use crate::progress::Bar;

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
    let (auto, none) = (FeatureSel::Auto, PreprocessOverrides::default());
    let model =
        headstart_models::resolve(&ctx.home, zoo::DEFAULT_MODEL, &auto, &none, &|s| ctx.log(s))?;
    println!(
        "backbone {} ({}-d features from `{}`), fingerprint {}",
        model.name,
        model.feature_dim.unwrap_or(0),
        model.feature_tensor,
        model.fingerprint
    );
    let mut net = OrtFeatures::open(rt, &model, &Default::default())?;

    step(
        2,
        "extract features of the sample images (train and test) into the cache",
    );
    let cache = out.join("cache");
    // The demo's cache belongs to the demo: another --data replaces what it held,
    // and a cache of an older recipe (another fingerprint) starts over.
    if let Ok(old) = headstart_cache::Cache::open(&cache)
        && old.info().model_fingerprint != model.fingerprint
    {
        ctx.log("the demo's cache holds features of another recipe; extracting again");
        std::fs::remove_dir_all(&cache).with_context(|| format!("removing {}", cache.display()))?;
    }
    let extractor = Extractor::builder(&data, &cache).prune(true).build()?;
    let summary = extractor.run(&mut net, &Bar::new(ctx.quiet))?;
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
    print!("{}", outcome.to_text());
    let test = outcome
        .test_metrics
        .as_ref()
        .context("the sample data has no test split")?;
    let caches = [cache.clone()];
    let html = super::report::head_report(
        &Default::default(),
        &caches,
        &super::report::context("headstart demo", &caches, &table),
        Some(&outcome),
        test,
    )
    .unwrap_or_default();
    outcome.save(
        &head_dir,
        false,
        &[(super::report::FIT_REPORT, html.as_bytes())],
    )?;
    let report = head_dir.join(super::report::FIT_REPORT);
    println!("confusion matrix (test):\n{}", test.confusion_text());

    step(4, "baseline: the same head on raw pixels, same split");
    let raw = raw_pixel_table(&data, &table, 28)?;
    let base = headstart_fit::fit(&raw, &params)?;
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
    let exported = export::export(&outcome.head, Some(&model), export::ExportInput::Tensor)?;
    super::write_file(&onnx, &exported.bytes)?;
    print!("{}", exported.describe(&onnx));

    step(6, "predict a few test images with the saved head");
    let picks = first_test_images(&data, 3)?;
    let mut classifier = Classifier::open(&head_dir, |_| Ok(Box::new(net)))?
        .with_caches(std::slice::from_ref(&cache))?;
    let predictions = classifier.predict(&picks, 32, &Bar::new(true))?;
    let classes = classifier.head().class_names();
    let rows: Vec<Record> = predictions
        .iter()
        .map(|p| Record::new(p, classes, 3))
        .collect();
    print!("{}", records::table(&rows));

    println!("\nartifacts:");
    println!("  feature cache      {}", cache.display());
    println!("  head               {}", head_dir.display());
    let metrics = head_dir.join(headstart_fit::METRICS_FILE);
    println!("  metrics            {}", metrics.display());
    let svg = head_dir.join("confusion_test.svg");
    println!("  confusion matrix   {}", svg.display());
    println!(
        "  report             {} (open in a browser)",
        report.display()
    );
    println!(
        "  classifier         {} (float NCHW input; outputs probabilities, label)",
        onnx.display()
    );
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// The first image of the first `n` test classes.
fn first_test_images(root: &Path, n: usize) -> Result<Vec<PathBuf>> {
    let listing = input::list(&root.join("test"), input::InputKind::ClassFolders)?;
    let mut out: Vec<Item> = Vec::new();
    for item in listing.items {
        if out.len() < n && out.last().is_none_or(|last| last.label != item.label) {
            out.push(item);
        }
    }
    Ok(out.into_iter().map(|i| i.abs).collect())
}
