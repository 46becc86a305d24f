//! `headstart demo`: the whole workflow on the bundled sample data.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use headstart_extract::backbone::{Backbone, SessionConfig};
use headstart_extract::tensor::Preprocessor;
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

pub fn run(ctx: &Ctx, args: DemoArgs) -> Result<ExitCode> {
    let data = sample_data(args.data)?;
    let rt = ctx.runtime()?;
    ctx.log(&format!(
        "ONNX Runtime {} from {}",
        rt.version,
        rt.path.display()
    ));
    let (model, _) = zoo::ensure(&ctx.home, zoo::DEFAULT_MODEL, &|s| ctx.log(s))?;
    ctx.log(&format!(
        "backbone {} at {}",
        model.card.name,
        model.onnx.display()
    ));
    let logits = model
        .card
        .logits_tensor
        .clone()
        .context("the default model has no logits output")?;
    let bytes = std::fs::read(&model.onnx)?;
    let mut net = Backbone::open(
        rt,
        &model.card.name,
        &bytes,
        model.card.preprocess.clone(),
        &[logits.as_str()],
        &SessionConfig::default(),
    )?;
    let mut pre = Preprocessor::new(model.card.preprocess.clone());
    let test = data.join("test");
    let mut classes: Vec<_> = std::fs::read_dir(&test)
        .with_context(|| format!("reading {}", test.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    classes.sort();
    println!("ImageNet top-1 of one test image per class (class index, probability):");
    for class in classes {
        let mut files: Vec<_> = std::fs::read_dir(&class)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        let Some(file) = files.first() else { continue };
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let img = headstart_extract::decode::decode_rgb8(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let mut t = vec![0f32; pre.preprocess().tensor_len()];
        pre.tensor_into(&img, &mut t)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let out = net.run(&t, 1)?;
        let (idx, p) = top1_softmax(&out[0]);
        println!("  {:<60} -> {idx:>4}  p={p:.3}", file.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Index and softmax probability of the largest logit.
fn top1_softmax(logits: &[f32]) -> (usize, f32) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
    let (idx, l) = logits
        .iter()
        .copied()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |a, b| if b.1 > a.1 { b } else { a });
    (idx, (l - max).exp() / sum)
}
