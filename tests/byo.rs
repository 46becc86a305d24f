//! Bring your own backbone (README, "Bring your own ONNX backbone"): tiny
//! random-weight exports of a DINOv2-style ViT (timm, and transformers'
//! `Dinov2Model`), a CLIP vision tower (transformers) and a ConvNeXt (timm),
//! each made with both of `torch.onnx.export`'s exporters by
//! `scripts/make_byo_fixtures.py`, which recorded the features the frameworks
//! compute (timm's pre-logits, the pooled outputs) from headstart's own input
//! tensors. `headstart extract --features auto` with the README's preset must
//! give those features; no torch needed here.

use crate::common;

use std::path::Path;

use serde_json::Value;

/// Largest allowed |headstart - framework| per feature value. ONNX Runtime and
/// torch differ in float32 kernels and summation order; the fixtures measured
/// at most 1.1e-6 on values up to 2.6 when they were made
/// (`max_abs_diff_when_made`), so 1e-4 leaves room for other CPUs' kernels,
/// while the two closest images (chelsea.png and its JPEG re-encoding) are
/// at least 5e-3 apart in every model: the test checks that margin.
const TOL: f32 = 1e-4;

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap_or_else(|| panic!("not a number: {x}")) as f32)
        .collect()
}

/// `headstart extract IMAGES --model MODEL --features auto ARGS` into `cache`;
/// its features by image key.
fn extract(images: &Path, cache: &Path, model: &Path, args: &[&str]) -> Vec<(String, Vec<f32>)> {
    let mut cmd = vec![
        "-q",
        "extract",
        images.to_str().unwrap(),
        "--out",
        cache.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--features",
        "auto",
    ];
    cmd.extend(args);
    common::run_ok(&cmd);
    common::rows(cache)
        .into_iter()
        .map(|((path, view), row)| {
            assert_eq!(view, "original");
            (path, row.3)
        })
        .collect()
}

/// Every export, each image: headstart's `--features auto` equals the
/// framework's features within [`TOL`]; and the preset matters (the CLIP
/// tower through the DINOv2 preset is far off).
#[test]
fn features_auto_on_exported_backbones_match_the_frameworks() {
    let fixtures = common::repo().join("tests/data/byo");
    let reference: Value =
        serde_json::from_slice(&std::fs::read(fixtures.join("reference.json")).unwrap())
            .expect("reference.json");
    let root = common::scratch("byo");
    let images = root.join("images");
    let sources = reference["images"].as_object().expect("images");
    for (key, src) in sources {
        let to = images.join(key);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(common::repo().join(src.as_str().unwrap()), &to).unwrap();
    }
    let models = reference["models"].as_object().expect("models");
    for arch in ["vit", "dinov2-hf", "clip", "convnext"] {
        for file in [format!("{arch}.onnx"), format!("{arch}-torchscript.onnx")] {
            assert!(models.contains_key(&file), "no reference for {file}");
        }
    }

    for (file, m) in models {
        let args: Vec<&str> = m["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let cache = root.join(format!("cache-{file}"));
        let got = extract(&images, &cache, &fixtures.join(file), &args);
        let want: Vec<(String, Vec<f32>)> = m["features"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), floats(v)))
            .collect();
        assert_eq!(got.len(), sources.len(), "{file}: one row per image");
        let mut worst = 0f32;
        for (key, expected) in &want {
            assert_eq!(expected.len() as u64, m["dim"].as_u64().unwrap());
            let (_, row) = got
                .iter()
                .find(|(k, _)| k == key)
                .unwrap_or_else(|| panic!("{file}: no row for {key}"));
            let d = common::max_abs_diff(row, expected);
            assert!(d <= TOL, "{file} {key}: max abs diff {d:e} > {TOL:e}");
            worst = worst.max(d);
            // A mix-up of images could not pass: every other image is far off.
            for (other, theirs) in &want {
                if other != key {
                    let apart = common::max_abs_diff(expected, theirs);
                    assert!(
                        apart > 10.0 * TOL,
                        "{file}: {key} and {other} differ by {apart:e}"
                    );
                }
            }
        }
        eprintln!(
            "{file} {}: max abs diff to the framework {worst:e}",
            args.join(" ")
        );
    }

    // The preset is part of what is checked: CLIP's tower through DINOv2's
    // recipe (crop 0.875, ImageNet mean/std) gives other features.
    let clip = &reference["models"]["clip.onnx"]["features"];
    let wrong = extract(
        &images,
        &root.join("cache-clip-wrong-preset"),
        &fixtures.join("clip.onnx"),
        &["--preset", "dinov2"],
    );
    let off = wrong
        .iter()
        .map(|(k, row)| common::max_abs_diff(row, &floats(&clip[k])))
        .fold(0f32, f32::max);
    assert!(off > 100.0 * TOL, "--preset dinov2 on CLIP: {off:e}");
}
