//! Choosing the backbone: a built-in name or an .onnx file, the feature tensor
//! (`auto` or a name), and the preprocessing (sidecar, model metadata, preset or flags).

use std::path::Path;

use crate::preprocess::{Filter, JpegDecode, Layout, Preprocess};
use crate::zoo;
use headstart_onnx::inspect::DimInfo;
use headstart_provision::Home;

use crate::ModelError;

/// Metadata key under which a model may carry its preprocessing as JSON.
pub use headstart_onnx::export::PREPROCESS_KEY as PREPROCESS_METADATA_KEY;

/// Which tensor to take as the feature vector.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FeatureSel {
    /// The model's declared features (built-in) or the penultimate vector of a classifier.
    #[default]
    Auto,
    /// Any tensor of the graph by name.
    Tensor(String),
}

impl std::str::FromStr for FeatureSel {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<FeatureSel, ModelError> {
        match s {
            "" => Err(ModelError::Param {
                name: "features",
                value: String::new(),
                message: "needs `auto` or a tensor name".into(),
            }),
            "auto" => Ok(FeatureSel::Auto),
            name => Ok(FeatureSel::Tensor(name.to_string())),
        }
    }
}

/// Preprocessing settings given on the command line; each overrides the model's.
#[derive(Debug, Clone, Default)]
pub struct PreprocessOverrides {
    /// A named preset ([`Preprocess::PRESETS`]) as the starting point.
    pub preset: Option<String>,
    /// Square input size.
    pub size: Option<u32>,
    /// Centre crop fraction.
    pub crop: Option<f32>,
    /// Mean per channel (0..=255 scale, RGB).
    pub mean: Option<[f32; 3]>,
    /// Std per channel (0..=255 scale, RGB).
    pub std: Option<[f32; 3]>,
    /// Resize filter.
    pub filter: Option<Filter>,
    /// Input layout.
    pub layout: Option<Layout>,
    /// Decode JPEGs at full size, never at a reduced DCT scale.
    pub exact_decode: bool,
}

impl PreprocessOverrides {
    fn is_empty(&self) -> bool {
        self.preset.is_none()
            && self.size.is_none()
            && self.crop.is_none()
            && self.mean.is_none()
            && self.std.is_none()
            && self.filter.is_none()
            && self.layout.is_none()
    }

    fn apply(&self, mut p: Preprocess) -> Preprocess {
        p.jpeg_decode = if self.exact_decode {
            JpegDecode::Exact
        } else {
            JpegDecode::Reduced
        };
        if let Some(s) = self.size {
            p.height = s;
            p.width = s;
        }
        if let Some(c) = self.crop {
            p.crop_fraction = c;
        }
        if let Some(m) = self.mean {
            p.mean = m;
        }
        if let Some(s) = self.std {
            p.std = s;
        }
        if let Some(f) = self.filter {
            p.filter = f;
        }
        if let Some(l) = self.layout {
            p.layout = l;
        }
        p
    }
}

/// A backbone ready to open: ONNX bytes (edited to expose the feature tensor
/// when needed), the feature tensor, preprocessing and fingerprint.
#[derive(Debug, Clone)]
pub struct ResolvedBackbone {
    /// Model name (built-in name or file stem).
    pub name: String,
    /// ONNX bytes to load.
    pub onnx: Vec<u8>,
    /// Graph output with the features.
    pub feature_tensor: String,
    /// Feature dimension, when the graph declares it.
    pub feature_dim: Option<usize>,
    /// Graph output with ImageNet logits (built-in models).
    pub logits_tensor: Option<String>,
    /// How images become tensors.
    pub preprocess: Preprocess,
    /// Hash of the original ONNX bytes + feature tensor + preprocessing.
    pub fingerprint: String,
}

/// Resolves `spec` (a built-in name or a path to .onnx). Built-ins are fetched on
/// first use; `log` gets one line per step that does work.
pub fn resolve(
    home: &Home,
    spec: &str,
    features: &FeatureSel,
    overrides: &PreprocessOverrides,
    log: &dyn Fn(&str),
) -> Result<ResolvedBackbone, ModelError> {
    let bad = |message: String| ModelError::Backbone {
        model: spec.to_string(),
        message,
    };
    // A built-in (fetched on first use), or a model headstart installed under a
    // name (`models quantize`), unless a file of that name is there.
    let installed = if zoo::BUILTIN.contains(&spec) {
        Some(zoo::ensure(home, spec, log)?.0)
    } else if !Path::new(spec).is_file() {
        zoo::installed(home, spec)
    } else {
        None
    };
    let (name, bytes, default_pre, declared, logits) = if let Some(m) = installed {
        let bytes =
            std::fs::read(&m.onnx).map_err(|e| bad(format!("{}: {e}", m.onnx.display())))?;
        let pre = match &overrides.preset {
            Some(p) => preset(p, &m.card.preprocess.input_name)?,
            None => m.card.preprocess.clone(),
        };
        (
            spec.to_string(),
            bytes,
            Some(pre),
            Some((m.card.feature_tensor.clone(), m.card.feature_dim)),
            m.card.logits_tensor.clone(),
        )
    } else {
        let path = Path::new(spec);
        if !path.is_file() {
            return Err(ModelError::UnknownModel {
                name: spec.to_string(),
                known: zoo::BUILTIN.join(", "),
            });
        }
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| spec.to_string());
        (name, bytes, None, None, None)
    };
    let mut model = headstart_onnx::decode_model(&bytes, Path::new(spec))?;
    if let Some((tensor, location)) = external_weights(&model) {
        return Err(bad(format!(
            "the model keeps weights outside the .onnx file (initializer `{tensor}` points at `{location}`); headstart reads single-file models: save it with its weights inside, e.g. in Python `onnx.save_model(onnx.load(PATH), OUT, save_as_external_data=False)` (possible under 2 GB)"
        )));
    }
    let summary = headstart_onnx::inspect::summarize(&model, bytes.len() as u64);

    // The feature tensor.
    let (feature_tensor, feature_dim) = match (features, &declared) {
        (FeatureSel::Auto, Some((t, d))) => (t.clone(), Some(*d)),
        (FeatureSel::Auto, None) => {
            let f = headstart_onnx::features::find_penultimate(&model)?;
            (f.name, f.dim)
        }
        (FeatureSel::Tensor(t), Some((dt, d))) if t == dt => (t.clone(), Some(*d)),
        (FeatureSel::Tensor(t), _) => (t.clone(), None),
    };
    match headstart_onnx::features::check_feature_tensor(&model, &feature_tensor) {
        Ok(()) => {}
        Err(headstart_onnx::OnnxError::FeatureShape {
            tensor,
            shape,
            pooled,
        }) => {
            return Err(ModelError::FeatureShape {
                model: spec.to_string(),
                tensor,
                shape,
                pooled,
            });
        }
        Err(e) => return Err(e.into()),
    }

    // The preprocessing.
    let input = summary
        .inputs
        .first()
        .ok_or_else(|| bad("the model has no image input".into()))?;
    let pre = match default_pre {
        // A preset replaces a built-in's recipe but not its fixed input size
        // (`--preset tf-lite` on the 240 px Lite1 stays at 240 px).
        Some(p) if overrides.preset.is_some() => overrides.apply(infer_from_input(input, p)),
        Some(p) => overrides.apply(p),
        None => {
            let from_meta = model
                .metadata_props
                .iter()
                .find(|e| e.key == PREPROCESS_METADATA_KEY)
                .map(|e| serde_json::from_str::<Preprocess>(&e.value));
            let base = match (&overrides.preset, from_meta) {
                (Some(p), _) => preset(p, &input.name)?,
                (None, Some(Ok(p))) => p,
                (None, Some(Err(e))) => {
                    return Err(bad(format!(
                        "metadata `{PREPROCESS_METADATA_KEY}` is not valid preprocessing JSON: {e}"
                    )));
                }
                (None, None) if !overrides.is_empty() => {
                    infer_from_input(input, Preprocess::imagenet(&input.name))
                }
                (None, None) => {
                    return Err(ModelError::NoPreprocess {
                        model: spec.to_string(),
                    });
                }
            };
            overrides.apply(infer_from_input(input, base))
        }
    };
    pre.validate().map_err(|e| bad(e.to_string()))?;

    let fingerprint = {
        let mut h = blake3::Hasher::new();
        h.update(&bytes);
        h.update(b"\0feature=");
        h.update(feature_tensor.as_bytes());
        h.update(b"\0preprocess=");
        h.update(serde_json::to_string(&pre).unwrap_or_default().as_bytes());
        h.finalize().to_hex()[..32].to_string()
    };

    let is_output = model.graph.output.iter().any(|o| o.name == feature_tensor);
    let onnx = if is_output {
        bytes
    } else {
        headstart_onnx::features::expose_output(&mut model, &feature_tensor, feature_dim)?;
        headstart_onnx::encode_model(&model)?
    };
    Ok(ResolvedBackbone {
        name,
        onnx,
        feature_tensor,
        feature_dim,
        logits_tensor: logits,
        preprocess: pre,
        fingerprint,
    })
}

fn preset(name: &str, input: &str) -> Result<Preprocess, ModelError> {
    Preprocess::preset(name, input).ok_or_else(|| ModelError::Param {
        name: "preset",
        value: name.to_string(),
        message: format!("known presets: {}", Preprocess::PRESETS.join(", ")),
    })
}

/// Takes the input name, layout and fixed size from the graph input.
fn infer_from_input(input: &headstart_onnx::inspect::TensorInfo, mut p: Preprocess) -> Preprocess {
    p.input_name = input.name.clone();
    if let Some(dims) = &input.dims {
        let fixed = |i: usize| match dims.get(i) {
            Some(DimInfo::Fixed(v)) if *v > 0 => u32::try_from(*v).ok(),
            _ => None,
        };
        if dims.len() == 4 {
            if fixed(1) == Some(3) {
                p.layout = Layout::Nchw;
                if let (Some(h), Some(w)) = (fixed(2), fixed(3)) {
                    (p.height, p.width) = (h, w);
                }
            } else if fixed(3) == Some(3) {
                p.layout = Layout::Nhwc;
                if let (Some(h), Some(w)) = (fixed(1), fixed(2)) {
                    (p.height, p.width) = (h, w);
                }
            }
        }
    }
    p
}

/// The first initializer whose data lives in an external file, and that file.
fn external_weights(model: &headstart_onnx::proto::ModelProto) -> Option<(String, String)> {
    use headstart_onnx::proto::tensor_proto::DataLocation;
    model
        .graph
        .as_ref()?
        .initializer
        .iter()
        .find(|t| t.data_location.enum_value() == Ok(DataLocation::EXTERNAL))
        .map(|t| {
            let location = t
                .external_data
                .iter()
                .find(|e| e.key == "location")
                .map_or_else(|| "?".to_string(), |e| e.value.clone());
            (t.name.clone(), location)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use headstart_onnx::build::{Dim, model, node, tensor_f32, value_info};
    use headstart_onnx::proto::tensor_proto::{DataLocation, DataType};
    use headstart_onnx::proto::{GraphProto, StringStringEntryProto};

    fn test_model(file: &str) -> String {
        format!(
            "{}/../../tests/data/models/{file}",
            env!("CARGO_MANIFEST_DIR")
        )
    }

    fn imagenet() -> PreprocessOverrides {
        PreprocessOverrides {
            preset: Some("imagenet".into()),
            ..PreprocessOverrides::default()
        }
    }

    /// Issue #12: `--features` naming a 4-D tensor was accepted and its map
    /// flattened into the cache.
    #[test]
    fn four_d_feature_tensor_is_refused_at_resolve() {
        let home = tempfile::tempdir().unwrap();
        let spec = test_model("e_no_head.onnx");
        let sel = FeatureSel::Tensor("pooled".into());
        match resolve(&Home::at(home.path()), &spec, &sel, &imagenet(), &|_| {}) {
            Err(e @ ModelError::FeatureShape { .. }) => {
                let text = e.to_string();
                assert!(
                    text.contains("`pooled` has shape [N, 16, 1, 1], not [batch, features]"),
                    "{text}"
                );
                assert!(
                    matches!(&e, ModelError::FeatureShape { model, .. } if model == &spec),
                    "{text}"
                );
            }
            Err(e) => panic!("expected FeatureShape, got {e}"),
            Ok(r) => panic!("a 4-D tensor was accepted: {}", r.feature_tensor),
        }
        // Its flattened neighbour in a classifier is fine.
        let spec = test_model("a_torchvision.onnx");
        let sel = FeatureSel::Tensor("/Flatten_output_0".into());
        let r = resolve(&Home::at(home.path()), &spec, &sel, &imagenet(), &|_| {});
        assert!(r.is_ok(), "{:?}", r.err().map(|e| e.to_string()));
    }

    /// Issue #12: `--features auto` failed on a headless model whose only
    /// output is `features [N, D]`.
    #[test]
    fn auto_features_accepts_a_headless_features_output() {
        let mut g = GraphProto::new();
        let n = || Dim::Named("N".into());
        g.input.push(value_info(
            "image",
            DataType::FLOAT,
            &[n(), Dim::Fixed(3), Dim::Fixed(8), Dim::Fixed(8)],
        ));
        g.node = vec![
            node("GlobalAveragePool", "pool", &["image"], &["pooled"], vec![]),
            node("Flatten", "flat", &["pooled"], &["features"], vec![]),
        ];
        g.output.push(value_info(
            "features",
            DataType::FLOAT,
            &[n(), Dim::Fixed(3)],
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("headless.onnx");
        std::fs::write(&path, headstart_onnx::encode_model(&model(g, &[])).unwrap()).unwrap();
        let spec = path.to_string_lossy();
        let r = resolve(
            &Home::at(dir.path()),
            &spec,
            &FeatureSel::Auto,
            &imagenet(),
            &|_| {},
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.feature_tensor, "features");
        assert_eq!(r.feature_dim, Some(3));
        assert_eq!((r.preprocess.height, r.preprocess.width), (8, 8));
    }

    /// A preset on a built-in keeps the model's input size (its graph input), so
    /// `--preset tf-lite` on Lite1 gives 240 px with the preset's crop.
    #[test]
    fn a_preset_on_a_builtin_keeps_its_input_size() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let name = "efficientnet-lite1";
        let mdir = zoo::model_dir(&home, name);
        std::fs::create_dir_all(&mdir).unwrap();
        let n = || Dim::Named("N".into());
        let mut g = GraphProto::new();
        g.input.push(value_info(
            "input",
            DataType::FLOAT,
            &[n(), Dim::Fixed(3), Dim::Fixed(240), Dim::Fixed(240)],
        ));
        g.node = vec![
            node("GlobalAveragePool", "pool", &["input"], &["pooled"], vec![]),
            node("Flatten", "flat", &["pooled"], &["features"], vec![]),
        ];
        g.output.push(value_info(
            "features",
            DataType::FLOAT,
            &[n(), Dim::Fixed(3)],
        ));
        let bytes = headstart_onnx::encode_model(&model(g, &[])).unwrap();
        std::fs::write(mdir.join("model.onnx"), bytes).unwrap();
        let card = zoo::ModelCard {
            format_version: zoo::CARD_VERSION,
            name: name.into(),
            feature_tensor: "features".into(),
            feature_dim: 3,
            logits_tensor: None,
            num_classes: None,
            preprocess: Preprocess::tf_lite_sized("input", 240),
            provenance: zoo::Provenance {
                source: "test".into(),
                sha256: String::new(),
                licence: String::new(),
                notes: String::new(),
            },
        };
        std::fs::write(mdir.join("model.json"), serde_json::to_vec(&card).unwrap()).unwrap();
        let resolve_with = |preset: Option<&str>| {
            let o = PreprocessOverrides {
                preset: preset.map(str::to_string),
                ..Default::default()
            };
            resolve(&home, name, &FeatureSel::Auto, &o, &|_| {})
                .unwrap_or_else(|e| panic!("{e}"))
                .preprocess
        };
        let own = resolve_with(None);
        assert_eq!((own.height, own.crop_fraction), (240, 240.0 / 272.0));
        let tf = resolve_with(Some("tf-lite"));
        assert_eq!((tf.height, tf.width, tf.crop_fraction), (240, 240, 0.875));
        let imagenet = resolve_with(Some("imagenet"));
        assert_eq!(
            (imagenet.height, imagenet.mean),
            (240, Preprocess::imagenet("input").mean)
        );
    }

    #[test]
    fn weights_in_an_external_file_are_found() {
        let mut g = GraphProto::new();
        g.initializer.push(tensor_f32("w", &[1], &[1.0]));
        let mut m = model(g, &[]);
        assert_eq!(external_weights(&m), None);
        let graph = m.graph.as_mut().unwrap();
        let mut ext = tensor_f32("big", &[0], &[]);
        ext.data_location = DataLocation::EXTERNAL.into();
        let mut e = StringStringEntryProto::new();
        e.key = "location".into();
        e.value = "model.onnx.data".into();
        ext.external_data.push(e);
        graph.initializer.push(ext);
        assert_eq!(
            external_weights(&m),
            Some(("big".into(), "model.onnx.data".into()))
        );
    }
}
