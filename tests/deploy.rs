//! End-to-end tests of `headstart export` and `headstart predict` (issue "Ship
//! the classifier"): the real binary on a few sample images per class. The
//! exported models run in-process through ONNX Runtime and must give the
//! probabilities of extract + `Head::predict_proba`; `predict` must agree with
//! the fused model, report bad files per file (exit 3) and give identical
//! probabilities from cached features and from recomputation. When `python3`
//! (or `$HEADSTART_TEST_PYTHON`) can import onnxruntime, the models are also
//! checked through Python; otherwise a note is printed and that part is skipped.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use headstart_cache::Cache;
use headstart_extract::decode::decode_rgb8;
use headstart_extract::tensor::{Preprocessor, normalize_into};
use headstart_fit::Head;
use headstart_models::preprocess::Preprocess;
use headstart_runtime::{Backbone, SessionConfig};
use ort::session::Session;
use ort::value::TensorRef;
use serde_json::Value;

const TOL: f32 = 1e-5;
/// Images per class copied from the sample data.
const PER_CLASS: usize = 4;
/// Head kinds fitted by the fixture, with the normalisation each uses.
const HEADS: &[(&str, &[&str])] = &[
    ("softmax", &["--head", "softmax"]),
    (
        "mlp",
        &["--head", "mlp", "--hidden", "16", "--normalize", "l2"],
    ),
    ("ncm", &["--head", "ncm", "--normalize", "none"]),
];

// ---------------------------------------------------------------- fixture

struct Fixture {
    root: PathBuf,
    /// Class folders of sample images.
    input: PathBuf,
    /// Two colour photos, unlabeled.
    photos: PathBuf,
    /// Caches of `input` and `photos`.
    cache: PathBuf,
    photo_cache: PathBuf,
    /// Head directories by kind.
    heads: BTreeMap<&'static str, PathBuf>,
}

impl Fixture {
    fn head(&self, kind: &str) -> &Path {
        &self.heads[kind]
    }

    /// Every image: (absolute path, cache dir, path relative to its cache input).
    fn images(&self) -> Vec<(PathBuf, PathBuf, String)> {
        let mut v = Vec::new();
        for (root, cache) in [
            (&self.input, &self.cache),
            (&self.photos, &self.photo_cache),
        ] {
            for e in common::walk(root) {
                let rel = e
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                v.push((e.clone(), cache.clone(), rel));
            }
        }
        v
    }
}

use common::describe;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Sample images extracted once, and one head of each kind fitted on them;
/// built once per test binary under a folder named after this process
/// (folders of earlier, finished runs are removed).
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let root = common::scratch("deploy-fixture");
        let input = root.join("input");
        common::sample_subset(&input, PER_CLASS);
        let photos = root.join("photos");
        std::fs::create_dir_all(&photos).unwrap();
        for p in ["chelsea.png", "coffee.png"] {
            std::fs::copy(common::repo().join("tests/data").join(p), photos.join(p)).unwrap();
        }
        let cache = root.join("cache");
        let photo_cache = root.join("photo-cache");
        common::run_ok(&["-q", "extract", s(&input), "--out", s(&cache)]);
        common::run_ok(&[
            "-q",
            "extract",
            s(&photos),
            "--unlabeled",
            "--out",
            s(&photo_cache),
        ]);
        let mut heads = BTreeMap::new();
        for (kind, flags) in HEADS {
            let dir = root.join(format!("head-{kind}"));
            let mut args = vec!["-q", "fit", s(&cache), "--out", s(&dir)];
            args.extend(flags.iter());
            common::run_ok(&args);
            heads.insert(*kind, dir);
        }
        Fixture {
            root,
            input,
            photos,
            cache,
            photo_cache,
            heads,
        }
    })
}

// ---------------------------------------------------------------- helpers

/// Original-view features of a cache by relative path.
fn cached_features(cache: &Path) -> BTreeMap<String, Vec<f32>> {
    let t = Cache::open(cache).unwrap().read().unwrap();
    (0..t.len())
        .filter(|&i| t.views[i] == "original")
        .map(|i| (t.paths[i].clone(), t.row(i).to_vec()))
        .collect()
}

/// The default model's preprocessing, as recorded in the cache.
fn preprocess(cache: &Path) -> Preprocess {
    serde_json::from_value(Cache::open(cache).unwrap().info().preprocessing.clone()).unwrap()
}

/// `headstart -q export HEAD --out OUT EXTRA...` into the fixture; returns OUT.
fn export(kind: &str, name: &str, extra: &[&str]) -> PathBuf {
    let f = fixture();
    let out = f.root.join(name);
    let mut args = vec!["-q", "export", s(f.head(kind)), "--out", s(&out)];
    args.extend(extra);
    let stdout = common::run_ok(&args);
    assert!(stdout.contains("probabilities"), "{stdout}");
    out
}

fn session(model: &Path) -> Session {
    let rt = headstart_runtime::init(&common::runtime_lib()).expect("load runtime");
    Session::builder(rt.env())
        .unwrap_or_else(|e| panic!("{e}"))
        .commit_from_file(model)
        .unwrap_or_else(|e| panic!("{}: {e}", model.display()))
}

/// Runs a classifier on one input; returns (probabilities [N*K], labels [N]).
fn classify<T: ort::value::PrimitiveTensorElementType + std::fmt::Debug + Clone + 'static>(
    session: &mut Session,
    input: &str,
    shape: &[i64],
    data: &[T],
) -> (Vec<f32>, Vec<i64>) {
    let tensor = TensorRef::from_array_view((shape.to_vec(), data)).unwrap();
    let out = session
        .run(ort::inputs![input => tensor])
        .unwrap_or_else(|e| panic!("{e}"));
    let (pshape, p) = out["probabilities"].try_extract_tensor::<f32>().unwrap();
    let (lshape, l) = out["label"].try_extract_tensor::<i64>().unwrap();
    assert_eq!(pshape[0], shape[0]);
    assert_eq!(lshape.len(), 1);
    (p.to_vec(), l.to_vec())
}

fn argmax(row: &[f32]) -> usize {
    (0..row.len()).fold(0, |b, j| if row[j] > row[b] { j } else { b })
}

/// Labels must be the argmax of the probabilities, and rows must sum to 1.
fn check_labels(p: &[f32], labels: &[i64], k: usize) {
    for (row, l) in p.chunks(k).zip(labels) {
        assert_eq!(argmax(row) as i64, *l, "{row:?}");
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
}

fn class_names_of(session: &Session) -> Vec<String> {
    let meta = session.metadata().unwrap();
    let json = meta
        .custom("headstart.class_names")
        .expect("class names metadata");
    serde_json::from_str(&json).unwrap()
}

// ---------------------------------------------------------------- tests

/// The fused model (float input, default export) gives the probabilities of
/// the head on the cached features, for every head kind.
#[test]
fn fused_model_equals_extract_plus_head() {
    let f = fixture();
    let pre = preprocess(&f.cache);
    let images = f.images();
    let mut tensors = Vec::new();
    let mut prep = Preprocessor::new(pre.clone());
    for (abs, _, _) in &images {
        let img = decode_rgb8(&std::fs::read(abs).unwrap()).unwrap();
        let mut t = vec![0f32; pre.tensor_len()];
        prep.tensor_into(&img, &mut t).unwrap();
        tensors.extend(t);
    }
    let features: BTreeMap<PathBuf, BTreeMap<String, Vec<f32>>> = [&f.cache, &f.photo_cache]
        .into_iter()
        .map(|c| (c.clone(), cached_features(c)))
        .collect();
    let n = images.len();
    for (kind, _) in HEADS {
        let head = Head::load(f.head(kind)).unwrap();
        let model = export(kind, &format!("fused-{kind}.onnx"), &[]);
        let mut sess = session(&model);
        assert_eq!(sess.inputs().len(), 1);
        assert_eq!(sess.inputs()[0].name(), pre.input_name);
        let outputs: Vec<&str> = sess.outputs().iter().map(|o| o.name()).collect();
        assert_eq!(outputs, ["probabilities", "label"]);
        assert_eq!(class_names_of(&sess), head.class_names());
        let (p, labels) = classify(&mut sess, &pre.input_name, &pre.shape(n), &tensors);
        let k = head.n_classes();
        check_labels(&p, &labels, k);
        let mut worst = 0f32;
        for (i, (_, cache, rel)) in images.iter().enumerate() {
            let want = head.predict_proba(&features[cache][rel], 1);
            let d = common::max_abs_diff(&p[i * k..(i + 1) * k], &want);
            assert!(d < TOL, "{kind} {rel}: max abs diff {d}");
            worst = worst.max(d);
        }
        eprintln!("fused {kind}: {n} images, max abs diff vs extract + head {worst:e}");
    }
}

/// `--with-preprocessing` takes the resized image as uint8 NHWC and gives the
/// probabilities of the head on the backbone's features of the same pixels.
#[test]
fn fused_model_with_preprocessing_equals_backbone_on_the_same_pixels() {
    let f = fixture();
    let pre = preprocess(&f.cache);
    let head = Head::load(f.head("softmax")).unwrap();
    let model = export("softmax", "fused-uint8.onnx", &["--with-preprocessing"]);
    let mut sess = session(&model);
    assert_eq!(sess.inputs()[0].name(), "image");

    let rt = headstart_runtime::init(&common::runtime_lib()).unwrap();
    let onnx = std::fs::read(common::default_model()).unwrap();
    let mut net = Backbone::open(
        rt,
        "backbone",
        &onnx,
        pre.clone(),
        &["features"],
        &SessionConfig::default(),
    )
    .expect("open backbone");

    let images = f.images();
    let (h, w) = (pre.height as usize, pre.width as usize);
    let mut pixels: Vec<u8> = Vec::new();
    let mut tensors = Vec::new();
    let mut prep = Preprocessor::new(pre.clone());
    let mut rounding = 0f32;
    for (abs, _, _) in &images {
        let img = decode_rgb8(&std::fs::read(abs).unwrap()).unwrap();
        let resized = prep.resize(&img).unwrap();
        let u8s: Vec<u8> = resized
            .iter()
            .map(|v| v.round().clamp(0.0, 255.0) as u8)
            .collect();
        rounding = rounding.max(
            resized
                .iter()
                .zip(&u8s)
                .map(|(a, b)| (a - f32::from(*b)).abs())
                .fold(0.0, f32::max),
        );
        let mut t = vec![0f32; pre.tensor_len()];
        normalize_into(&pre, &u8s, &mut t);
        tensors.extend(t);
        pixels.extend(u8s);
    }
    let n = images.len();
    let (p, labels) = classify(
        &mut sess,
        "image",
        &[n as i64, h as i64, w as i64, 3],
        &pixels,
    );
    let k = head.n_classes();
    check_labels(&p, &labels, k);
    let feats = net.run(&tensors, n).unwrap().swap_remove(0);
    let want = head.predict_proba(&feats, n);
    let d = common::max_abs_diff(&p, &want);
    eprintln!(
        "fused --with-preprocessing: {n} images, max abs diff vs backbone + head on the same uint8 pixels {d:e} (rounding moved pixels by up to {rounding})"
    );
    assert!(d < TOL, "max abs diff {d}");
}

/// `--head-only`: features -> probabilities as `predict_proba`, for every head
/// kind and normalisation, including an all-zero feature row.
#[test]
fn head_only_equals_predict_proba() {
    let f = fixture();
    let x: Vec<f32> = cached_features(&f.cache).into_values().flatten().collect();
    for (kind, _) in HEADS {
        let head = Head::load(f.head(kind)).unwrap();
        let d = head.dim();
        let mut rows = x.clone();
        rows.extend(std::iter::repeat_n(0.0, d));
        let n = rows.len() / d;
        let model = export(kind, &format!("head-{kind}.onnx"), &["--head-only"]);
        let mut sess = session(&model);
        assert_eq!(class_names_of(&sess), head.class_names());
        let (p, labels) = classify(&mut sess, "features", &[n as i64, d as i64], &rows);
        check_labels(&p, &labels, head.n_classes());
        let want = head.predict_proba(&rows, n);
        let diff = common::max_abs_diff(&p, &want);
        eprintln!(
            "head-only {kind} ({}): {n} rows, max abs diff {diff:e}",
            head.meta().normalization
        );
        assert!(diff < TOL, "{kind}: max abs diff {diff}");
    }
}

/// Export refuses a backbone whose fingerprint differs from the head's and
/// names both.
#[test]
fn export_refuses_another_backbone() {
    let f = fixture();
    let dir = f.root.join("head-other");
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["head.safetensors", "head.json"] {
        std::fs::copy(f.head("softmax").join(file), dir.join(file)).unwrap();
    }
    let path = dir.join("head.json");
    let mut meta: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let real = meta["model_fingerprint"].as_str().unwrap().to_string();
    meta["model_fingerprint"] = "0123456789abcdef0123456789abcdef".into();
    std::fs::write(&path, meta.to_string()).unwrap();
    let out_file = f.root.join("never.onnx");
    let out = common::run(&["-q", "export", s(&dir), "--out", s(&out_file)]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("0123456789abcdef0123456789abcdef") && err.contains(&real),
        "{err}"
    );
    assert!(!out_file.exists());
    // --head-only needs no backbone.
    common::run_ok(&[
        "-q",
        "export",
        s(&dir),
        "--out",
        s(&out_file),
        "--head-only",
    ]);
}

fn predict(args: &[&str]) -> Output {
    let mut a = vec!["-q", "predict"];
    a.extend(args);
    common::run(&a)
}

fn json_rows(out: &Output) -> Vec<Value> {
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap_or_else(|e| panic!("predict JSON: {e}\n{}", describe(out)))
        .as_array()
        .cloned()
        .expect("a JSON array")
}

/// Probabilities of a JSON row by label.
fn probs(row: &Value) -> BTreeMap<String, f32> {
    row["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["label"].as_str().unwrap().to_string(),
                p["probability"].as_f64().unwrap() as f32,
            )
        })
        .collect()
}

/// `predict` on files: top-1 equals the fused model's label; a corrupt file and
/// a missing one give error rows and exit 3; the other formats work.
#[test]
fn predict_agrees_with_the_fused_model_and_reports_bad_files() {
    let f = fixture();
    let head = f.head("softmax");
    let heads = Head::load(head).unwrap();
    let pre = preprocess(&f.cache);
    let images: Vec<PathBuf> = f
        .images()
        .into_iter()
        .map(|(a, _, _)| a)
        .step_by(5)
        .collect();
    let corrupt = f.root.join("corrupt.jpg");
    let mut bytes = std::fs::read(&images[0]).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&corrupt, b"\xFF\xD8\xFF\xE0 not really a jpeg").unwrap();
    let truncated = f.root.join("truncated.png");
    std::fs::write(&truncated, &bytes).unwrap();
    let missing = f.root.join("missing.png");

    let mut args: Vec<&str> = vec![s(head)];
    args.extend(images.iter().map(|p| s(p)));
    args.extend([
        s(&corrupt),
        s(&truncated),
        s(&missing),
        "--format",
        "json",
        "--top-k",
        "2",
    ]);
    let out = predict(&args);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let rows = json_rows(&out);
    assert_eq!(rows.len(), images.len() + 3);

    // The fused model on the same files.
    let model = export("softmax", "fused-predict.onnx", &[]);
    let mut sess = session(&model);
    let mut prep = Preprocessor::new(pre.clone());
    let mut tensors = Vec::new();
    for p in &images {
        let img = decode_rgb8(&std::fs::read(p).unwrap()).unwrap();
        let mut t = vec![0f32; pre.tensor_len()];
        prep.tensor_into(&img, &mut t).unwrap();
        tensors.extend(t);
    }
    let (p, labels) = classify(
        &mut sess,
        &pre.input_name,
        &pre.shape(images.len()),
        &tensors,
    );
    let k = heads.n_classes();
    for (i, row) in rows.iter().take(images.len()).enumerate() {
        assert_eq!(row["path"], s(&images[i]), "{row}");
        assert!(row["error"].is_null(), "{row}");
        let preds = row["predictions"].as_array().unwrap();
        assert_eq!(preds.len(), 2);
        let top = preds[0]["label"].as_str().unwrap();
        assert_eq!(top, heads.class_names()[labels[i] as usize], "{row}");
        let prob = preds[0]["probability"].as_f64().unwrap() as f32;
        assert!((prob - p[i * k + labels[i] as usize]).abs() < TOL, "{row}");
    }
    let errors: Vec<(&str, &str)> = rows[images.len()..]
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap(),
                r["error"]["stage"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            (s(&corrupt), "decode"),
            (s(&truncated), "decode"),
            (s(&missing), "read")
        ]
    );

    // A CSV manifest: paths relative to it, listed in path order.
    let manifest = f.root.join("manifest.csv");
    let rel = images[1].strip_prefix(&f.root).unwrap().to_str().unwrap();
    std::fs::write(
        &manifest,
        format!("path,label\nzz-not-there.png,x\n{rel},y\n"),
    )
    .unwrap();
    let out = predict(&[s(head), s(&manifest), "--format", "json", "--top-k", "1"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let rows = json_rows(&out);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["path"], rel);
    assert_eq!(
        rows[0]["predictions"][0]["label"],
        heads.class_names()[labels[1] as usize].as_str()
    );
    assert_eq!(rows[1]["path"], "zz-not-there.png");
    assert_eq!(rows[1]["error"]["stage"], "read");

    // Table and CSV carry the same rows; Parquet needs --output.
    let out = predict(&[s(head), s(&images[0]), s(&corrupt)]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains(&heads.class_names()[labels[0] as usize]),
        "{table}"
    );
    assert!(table.contains("error (decode)"), "{table}");
    let out = predict(&[s(head), s(&images[0]), "--format", "csv", "--top-k", "3"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let csv = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "path,label_1,probability_1,label_2,probability_2,label_3,probability_3,error"
    );
    assert!(lines[1].starts_with(&format!(
        "{},{},",
        s(&images[0]),
        heads.class_names()[labels[0] as usize]
    )));
    let out = predict(&[s(head), s(&images[0]), "--format", "parquet"]);
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--output"));
    let pq = f.root.join("predictions.parquet");
    let out = predict(&[
        s(head),
        s(&images[0]),
        s(&corrupt),
        "--format",
        "parquet",
        "--output",
        s(&pq),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let reader =
        parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&pq).unwrap())
            .unwrap();
    use parquet::file::reader::FileReader;
    assert_eq!(reader.metadata().file_metadata().num_rows(), 2);
}

/// A folder run with `--cache` takes every feature from the cache and gives
/// exactly the probabilities of recomputing them.
#[test]
fn predict_with_cached_features_equals_recomputation() {
    let f = fixture();
    let head = f.head("mlp");
    let k = Head::load(head).unwrap().n_classes().to_string();
    let input = s(&f.input);
    let cached = predict(&[
        s(head),
        input,
        "--cache",
        s(&f.cache),
        "--format",
        "json",
        "--top-k",
        &k,
    ]);
    assert_eq!(cached.status.code(), Some(0), "{}", describe(&cached));
    let fresh = predict(&[
        s(head),
        input,
        "--format",
        "json",
        "--top-k",
        &k,
        "--batch-size",
        "7",
    ]);
    assert_eq!(fresh.status.code(), Some(0), "{}", describe(&fresh));
    let (a, b) = (json_rows(&cached), json_rows(&fresh));
    assert_eq!(a.len(), common::walk(&f.input).len());
    assert_eq!(a.len(), b.len());
    let mut worst = 0f32;
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x["path"], y["path"]);
        assert_eq!(x["source"], "cache", "{x}");
        assert_eq!(y["source"], "model", "{y}");
        let (px, py) = (probs(x), probs(y));
        assert_eq!(px.len(), py.len());
        for (label, v) in &px {
            worst = worst.max((v - py[label]).abs());
        }
    }
    eprintln!("predict: cached vs recomputed features, max abs diff {worst:e}");
    assert!(worst <= 1e-6, "max abs diff {worst}");
    // Regression: a bad --device went unnoticed when every file was cached.
    // It is a usage error (exit 2).
    let out = predict(&[s(head), input, "--cache", s(&f.cache), "--device", "cuda:x"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cuda:x"),
        "{}",
        describe(&out)
    );
    // A cache of another model is refused, naming both fingerprints.
    let other = f.root.join("other-cache");
    std::fs::create_dir_all(&other).unwrap();
    let mut info: Value =
        serde_json::from_str(&std::fs::read_to_string(f.cache.join("cache.json")).unwrap())
            .unwrap();
    let real = info["model_fingerprint"].as_str().unwrap().to_string();
    info["model_fingerprint"] = "fedcba9876543210fedcba9876543210".into();
    std::fs::write(other.join("cache.json"), info.to_string()).unwrap();
    let out = predict(&[s(head), input, "--cache", s(&other)]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fedcba9876543210fedcba9876543210") && err.contains(&real),
        "{err}"
    );
}

/// The same checks through Python's onnxruntime (the version headstart
/// provisions) and `onnx.checker` with `full_check`, in a venv the test makes
/// (or `HEADSTART_TEST_PYTHON`).
#[test]
#[ignore = "slow tier: `just test-all`"]
fn python_onnxruntime_agrees() {
    let ort = format!("onnxruntime=={}", headstart_runtime::ORT_VERSION);
    let python = common::python_with(&[&ort, "numpy", "onnx"]);
    let python = python.to_str().expect("utf-8 path");
    let f = fixture();
    let pre = preprocess(&f.cache);
    let head = Head::load(f.head("softmax")).unwrap();
    let fused = export("softmax", "py-fused.onnx", &["--with-preprocessing"]);
    let head_only = export("softmax", "py-head.onnx", &["--head-only"]);
    let features = cached_features(&f.cache);
    let x: Vec<f32> = features.values().flatten().copied().collect();
    let n = features.len();
    let dir = f.root.join("python");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("features.f32"),
        x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
    )
    .unwrap();
    // The same rounded pixels for both runtimes.
    let mut prep = Preprocessor::new(pre.clone());
    let images = f.images();
    let mut pixels = Vec::new();
    for (abs, _, _) in &images {
        let img = decode_rgb8(&std::fs::read(abs).unwrap()).unwrap();
        pixels.extend(
            prep.resize(&img)
                .unwrap()
                .iter()
                .map(|v| v.round().clamp(0.0, 255.0) as u8),
        );
    }
    std::fs::write(dir.join("pixels.u8"), &pixels).unwrap();
    let script = format!(
        r#"
import json, sys, numpy as np, onnxruntime as ort
try:
    import onnx
    for p in [{fused:?}, {head:?}]:
        onnx.checker.check_model(onnx.load(p), full_check=True)
    print("onnx.checker full_check passed")
except ImportError:
    print("note: no onnx package; checker skipped")
d = {dir:?}
x = np.fromfile(d + "/features.f32", dtype=np.float32).reshape({n}, -1)
s = ort.InferenceSession({head:?}, providers=["CPUExecutionProvider"])
p, _ = s.run(None, {{"features": x}})
p.astype(np.float32).tofile(d + "/head.out")
img = np.fromfile(d + "/pixels.u8", dtype=np.uint8).reshape({m}, {h}, {w}, 3)
s = ort.InferenceSession({fused:?}, providers=["CPUExecutionProvider"])
names = json.loads(s.get_modelmeta().custom_metadata_map["headstart.class_names"])
p, l = s.run(None, {{"image": img}})
p.astype(np.float32).tofile(d + "/fused.out")
print(json.dumps(names))
"#,
        fused = s(&fused),
        head = s(&head_only),
        dir = s(&dir),
        m = images.len(),
        h = pre.height,
        w = pre.width,
    );
    let out = Command::new(python).args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("python: {}", stdout.lines().next().unwrap_or(""));
    let names: Vec<String> = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(names, head.class_names());
    let read = |p: &str| -> Vec<f32> {
        std::fs::read(dir.join(p))
            .unwrap()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    let d = common::max_abs_diff(&read("head.out"), &head.predict_proba(&x, n));
    eprintln!("python onnxruntime head-only: max abs diff vs predict_proba {d:e}");
    assert!(d < TOL);
    // Against the Rust runtime on the same pixels.
    let mut sess = session(&fused);
    let (p, _) = classify(
        &mut sess,
        "image",
        &[
            images.len() as i64,
            i64::from(pre.height),
            i64::from(pre.width),
            3,
        ],
        &pixels,
    );
    let d = common::max_abs_diff(&read("fused.out"), &p);
    eprintln!("python onnxruntime fused --with-preprocessing: max abs diff vs Rust {d:e}");
    assert!(d < TOL);
}
