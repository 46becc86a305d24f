//! The int8 backbone: `models quantize` and `extract --precision int8`, on the
//! real default backbone and sample images.

use std::path::Path;

use crate::common::{self, run_ok};

/// Cosine of two feature rows.
fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let n = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (n(a) * n(b))
}

fn extract(images: &Path, cache: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "extract",
        images.to_str().unwrap(),
        "--out",
        cache.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run_ok(&args)
}

#[test]
fn an_int8_copy_is_a_model_like_any_other_and_keeps_features_close() {
    let root = common::scratch("int8");
    let images = root.join("images");
    common::sample_subset(&images, 4);
    let name = format!("lite0-int8-test-{}", std::process::id());
    let out = run_ok(&[
        "models",
        "quantize",
        "efficientnet-lite0",
        "--calibrate",
        images.to_str().unwrap(),
        "--samples",
        "16",
        "--out",
        &name,
    ]);
    assert!(out.contains("calibrated on 16 images"), "{out}");
    // A QDQ graph with int8 weights, installed in the cache.
    let onnx = common::home().join("models").join(&name).join("model.onnx");
    let model = headstart_onnx::load_model(&onnx).unwrap();
    let ops = |op: &str| model.graph.node.iter().filter(|n| n.op_type == op).count();
    let convs = ops("Conv");
    assert!(convs > 40 && ops("QuantizeLinear") > 40, "{convs} convs");
    assert_eq!(
        ops("DequantizeLinear"),
        ops("QuantizeLinear") + 2 * convs,
        "weights and biases too"
    );
    assert!(run_ok(&["models", "list"]).contains(&name));

    // Its features: own fingerprint, close to the float ones.
    let float_cache = root.join("float");
    let int8_cache = root.join("int8");
    extract(&images, &float_cache, &["--quiet"]);
    extract(&images, &int8_cache, &["--model", &name, "--quiet"]);
    let f = common::rows(&float_cache);
    let q = common::rows(&int8_cache);
    assert_eq!(f.len(), q.len());
    let cos: Vec<f64> = f.iter().map(|(k, v)| cosine(&v.3, &q[k].3)).collect();
    let mean = cos.iter().sum::<f64>() / cos.len() as f64;
    let min = cos.iter().copied().fold(1.0, f64::min);
    // Measured 0.98 mean on the 1,300-image sample (docs/benchmarks.md H).
    assert!(
        mean > 0.95 && min > 0.8,
        "cosine mean {mean:.4}, min {min:.4}"
    );
    let info = |c: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(c.join("cache.json")).unwrap()).unwrap()
    };
    assert_ne!(
        info(&float_cache)["model_fingerprint"],
        info(&int8_cache)["model_fingerprint"]
    );

    // --precision int8 quantises once per model and input, then reuses the copy.
    let auto_cache = root.join("auto");
    let first = common::run(&[
        "extract",
        images.to_str().unwrap(),
        "--out",
        auto_cache.to_str().unwrap(),
        "--precision",
        "int8",
        "--samples",
        "8",
    ]);
    assert!(first.status.success(), "{}", common::describe(&first));
    let log = String::from_utf8_lossy(&first.stderr);
    assert!(
        log.contains("calibrating efficientnet-lite0 on 8 of 40 images"),
        "{log}"
    );
    let auto_model = info(&auto_cache)["model_name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        auto_model.starts_with("efficientnet-lite0-int8-"),
        "{auto_model}"
    );
    let again = common::run(&[
        "extract",
        images.to_str().unwrap(),
        "--out",
        auto_cache.to_str().unwrap(),
        "--precision",
        "int8",
    ]);
    assert!(again.status.success(), "{}", common::describe(&again));
    let log = String::from_utf8_lossy(&again.stderr);
    assert!(!log.contains("calibrating"), "{log}");
    assert!(String::from_utf8_lossy(&again.stdout).contains("0 extracted, 40 already cached"));

    // A built-in name is not taken over, and a typo'd node name says which exist.
    let e = common::run(&[
        "models",
        "quantize",
        "efficientnet-lite0",
        "--calibrate",
        images.to_str().unwrap(),
        "--out",
        "efficientnet-lite1",
    ]);
    assert!(!e.status.success());
    assert!(
        String::from_utf8_lossy(&e.stderr).contains("built-in names"),
        "{}",
        common::describe(&e)
    );
    // Regression (#22 item 5): an installed name was replaced silently.
    let e = common::run(&[
        "models",
        "quantize",
        "efficientnet-lite0",
        "--calibrate",
        images.to_str().unwrap(),
        "--out",
        &name,
    ]);
    assert_eq!(e.status.code(), Some(2), "{}", common::describe(&e));
    assert!(
        String::from_utf8_lossy(&e.stderr).contains("--force"),
        "{}",
        common::describe(&e)
    );
    let e = common::run(&[
        "models",
        "quantize",
        "efficientnet-lite0",
        "--calibrate",
        images.to_str().unwrap(),
        "--out",
        &name,
        "--force",
        "--keep-float",
        "_conv_stme",
    ]);
    assert!(
        String::from_utf8_lossy(&e.stderr).contains("`_conv_stem`"),
        "{}",
        common::describe(&e)
    );

    // The shared test cache does not keep per-run models.
    for m in [name.as_str(), auto_model.as_str()] {
        std::fs::remove_dir_all(common::home().join("models").join(m)).unwrap();
    }
}
