//! A head as one ONNX classifier, alone or fused with its backbone, and the
//! metadata contract of the exported model.

use std::path::Path;

use headstart_fit::{Head, HeadWeights, Normalize};
use headstart_models::ResolvedBackbone;
use headstart_models::preprocess::{ChannelOrder, Layout, Preprocess};
use headstart_onnx::export::{
    self as onnx_export, Dense, HeadSpec, InGraphPreprocess, Normalization,
};
use headstart_onnx::proto::ModelProto;

use crate::metadata::{
    FEATURE_DIM_KEY, HEAD_KEY, IMAGE_PREPROCESS_KEY, INPUT_KIND_KEY, NORMALIZATION_KEY,
    PREPROCESS_KEY,
};
use crate::{ModelId, ServeError};

/// What the exported model takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportInput {
    /// Feature vectors `[N, D]`: the head alone.
    Features,
    /// Preprocessed float tensors, as `headstart extract` feeds the backbone.
    Tensor,
    /// RGB uint8 images `[N, H, W, 3]`, already cropped and resized: the
    /// normalisation and layout are in the graph.
    ImageUint8,
}

impl ExportInput {
    /// The value of [`INPUT_KIND_KEY`].
    pub fn name(self) -> &'static str {
        match self {
            ExportInput::Features => "features",
            ExportInput::Tensor => "tensor",
            ExportInput::ImageUint8 => "image-uint8",
        }
    }
}

/// An exported classifier.
pub struct Exported {
    /// The ONNX model.
    pub model: ModelProto,
    /// Its encoding.
    pub bytes: Vec<u8>,
    /// What it is, for people: "the head alone" or "fused with NAME (...)".
    pub description: String,
}

/// Checks that an exported model may be written to `out`, before any work:
/// never into a head folder (a head is replaced as a whole, and its own
/// `head.safetensors` must not be overwritten), never over a folder, and over
/// an existing file only with `force`.
pub fn check_out(out: &Path, force: bool) -> Result<(), ServeError> {
    let refuse = |message: String| ServeError::Param {
        name: "out",
        value: out.display().to_string(),
        message,
    };
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if parent.join(headstart_fit::META_FILE).is_file() {
        return Err(refuse(format!(
            "{} is a head folder; a head folder holds only what `fit` writes: export to a file outside it",
            parent.display()
        )));
    }
    match std::fs::metadata(out) {
        Ok(m) if m.is_dir() => Err(refuse("is a folder; name the .onnx file to write".into())),
        Ok(_) if !force => Err(refuse(
            "exists; pass --force to replace it, or choose another file".into(),
        )),
        _ => Ok(()),
    }
}

impl Exported {
    /// Writes the model to `out` atomically (a reader sees the old file or the
    /// new one), after [`check_out`].
    pub fn save(&self, out: &Path, force: bool) -> Result<(), ServeError> {
        check_out(out, force)?;
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| headstart_files::FilesError::Io {
                path: dir.to_path_buf(),
                source: e,
            })?;
        }
        Ok(headstart_files::write_atomic(out, &self.bytes)?)
    }

    /// What was written to `path`: size, opset, inputs, outputs and classes, and
    /// for an [`ExportInput::ImageUint8`] model what the caller still does.
    pub fn describe(&self, path: &Path) -> String {
        use std::fmt::Write as _;
        let s = headstart_onnx::inspect::summarize(&self.model, self.bytes.len() as u64);
        let mut o = format!(
            "wrote {} ({:.1} MB, opset {}): {}\n",
            path.display(),
            self.bytes.len() as f64 / 1e6,
            onnx_export::default_opset(&self.model).unwrap_or(0),
            self.description
        );
        let dims = |d: &Option<Vec<headstart_onnx::inspect::DimInfo>>| match d {
            Some(d) => format!(
                "[{}]",
                d.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => "[?]".into(),
        };
        for i in &s.inputs {
            let _ = writeln!(o, "  input   {} {} {}", i.name, i.elem_type, dims(&i.dims));
        }
        for out in &s.outputs {
            let _ = writeln!(
                o,
                "  output  {} {} {}",
                out.name,
                out.elem_type,
                dims(&out.dims)
            );
        }
        let classes = self
            .model
            .metadata_props
            .iter()
            .find(|e| e.key == crate::metadata::CLASS_NAMES_KEY)
            .and_then(|e| serde_json::from_str::<Vec<String>>(&e.value).ok())
            .unwrap_or_default()
            .iter()
            .map(|c| headstart_files::escape(c).into_owned())
            .collect::<Vec<_>>();
        let _ = writeln!(
            o,
            "  classes {} (metadata `{}`)",
            classes.join(", "),
            crate::metadata::CLASS_NAMES_KEY
        );
        if self
            .model
            .metadata_props
            .iter()
            .any(|e| e.key == IMAGE_PREPROCESS_KEY)
        {
            let _ = writeln!(o, "  feed    {}", image_preprocess_note(&self.model));
        }
        o
    }
}

/// Exports `head`: alone when `input` is [`ExportInput::Features`], else fused
/// with `backbone` (which must be the head's; see [`check_backbone`]).
pub fn export(
    head: &Head,
    backbone: Option<&ResolvedBackbone>,
    input: ExportInput,
) -> Result<Exported, ServeError> {
    let mut spec = head_spec(head);
    spec.metadata
        .push((INPUT_KIND_KEY.into(), input.name().into()));
    let (model, description) = match (input, backbone) {
        (ExportInput::Features, _) => (
            onnx_export::head_model(&spec)?,
            "the head alone".to_string(),
        ),
        (_, None) => {
            return Err(ServeError::NoBackbone(
                "exporting a fused classifier needs the head's backbone".into(),
            ));
        }
        (_, Some(rb)) => {
            let net = headstart_onnx::decode_model(&rb.onnx, Path::new(&rb.name))?;
            let pre = &rb.preprocess;
            let in_graph = if input == ExportInput::ImageUint8 {
                spec.metadata.push((
                    IMAGE_PREPROCESS_KEY.into(),
                    serde_json::json!({
                        "height": pre.height,
                        "width": pre.width,
                        "crop_fraction": pre.crop_fraction,
                        "filter": pre.filter,
                        "layout": "nhwc",
                        "channel_order": "rgb",
                        "dtype": "uint8",
                        "jpeg_decode": pre.jpeg_decode,
                    })
                    .to_string(),
                ));
                Some(in_graph_preprocess(pre))
            } else {
                spec.metadata.push((
                    PREPROCESS_KEY.into(),
                    serde_json::to_string(pre).unwrap_or_default(),
                ));
                None
            };
            let model = onnx_export::fuse(net, &rb.feature_tensor, &spec, in_graph.as_ref())
                .map_err(|source| ServeError::Fuse {
                    model: rb.name.clone(),
                    source,
                })?;
            let how = if in_graph.is_some() {
                "preprocessing in the graph"
            } else {
                "float input tensor"
            };
            (model, format!("fused with {} ({how})", rb.name))
        }
    };
    let bytes = headstart_onnx::encode_model(&model)?;
    Ok(Exported {
        model,
        bytes,
        description,
    })
}

/// What a caller must still do before feeding an [`ExportInput::ImageUint8`]
/// model, read from its metadata.
pub fn image_preprocess_note(model: &ModelProto) -> String {
    let v = model
        .metadata_props
        .iter()
        .find(|e| e.key == IMAGE_PREPROCESS_KEY)
        .and_then(|e| serde_json::from_str::<serde_json::Value>(&e.value).ok())
        .unwrap_or_default();
    format!(
        "RGB uint8 images: centre square crop of {} x the shorter side, {} resize to {}x{} (metadata `{IMAGE_PREPROCESS_KEY}`)",
        v["crop_fraction"],
        v["filter"].as_str().unwrap_or("?"),
        v["height"],
        v["width"]
    )
}

/// The backbone to resolve for `head`: `given`, else the built-in model the
/// head records.
pub fn backbone_spec(head: &Head, given: Option<&str>) -> Result<String, ServeError> {
    match (given, head.meta().model_name.as_deref()) {
        (Some(s), _) => Ok(s.to_string()),
        (None, Some(name)) if headstart_models::zoo::BUILTIN.contains(&name) => {
            Ok(name.to_string())
        }
        (None, model) => Err(ServeError::UnknownBackbone {
            model: model.map(str::to_string),
        }),
    }
}

/// Refuses a backbone whose fingerprint (model bytes, feature tensor,
/// preprocessing) or feature size differs from the head's; `spec` is what it
/// was resolved from.
pub fn check_backbone(head: &Head, rb: &ResolvedBackbone, spec: &str) -> Result<(), ServeError> {
    let meta = head.meta();
    if let Some(fp) = meta.model_fingerprint.as_deref()
        && fp != rb.fingerprint
    {
        return Err(ServeError::WrongBackbone {
            head: ModelId::trained_on(head, fp),
            found: Box::new(ModelId {
                name: rb.name.clone(),
                fingerprint: rb.fingerprint.clone(),
            }),
            spec: spec.to_string(),
        });
    }
    if let Some(d) = rb.feature_dim
        && d != head.dim()
    {
        return Err(ServeError::BackboneDim {
            model: rb.name.clone(),
            tensor: rb.feature_tensor.clone(),
            dim: d,
            head_dim: head.dim(),
        });
    }
    Ok(())
}

/// The export form of a head.
pub fn head_spec(head: &Head) -> HeadSpec {
    let (d, k) = (head.dim(), head.n_classes());
    let layers = match head.weights() {
        HeadWeights::Linear { w, b } => vec![Dense {
            inputs: d,
            outputs: k,
            weights: w.to_vec(),
            bias: b.to_vec(),
        }],
        HeadWeights::Mlp {
            hidden,
            w1,
            b1,
            w2,
            b2,
        } => vec![
            Dense {
                inputs: d,
                outputs: hidden,
                weights: w1.to_vec(),
                bias: b1.to_vec(),
            },
            Dense {
                inputs: hidden,
                outputs: k,
                weights: w2.to_vec(),
                bias: b2.to_vec(),
            },
        ],
    };
    let n = head.normalizer();
    let normalization = match (n.kind(), n.mean(), n.std()) {
        (Normalize::Standard, Some(mean), Some(std)) => Normalization::Standard {
            mean: mean.to_vec(),
            std: std.to_vec(),
        },
        (Normalize::L2, ..) => Normalization::L2,
        _ => Normalization::None,
    };
    let meta = head.meta();
    HeadSpec {
        normalization,
        layers,
        class_names: head.class_names().to_vec(),
        model_name: meta.model_name.clone(),
        model_fingerprint: meta.model_fingerprint.clone(),
        metadata: vec![
            (HEAD_KEY.into(), meta.head.to_string()),
            (NORMALIZATION_KEY.into(), meta.normalization.to_string()),
            (FEATURE_DIM_KEY.into(), d.to_string()),
        ],
    }
}

/// In-graph form of a backbone's preprocessing (resize and crop excluded).
pub fn in_graph_preprocess(p: &Preprocess) -> InGraphPreprocess {
    InGraphPreprocess {
        input_name: p.input_name.clone(),
        height: p.height,
        width: p.width,
        mean: p.mean,
        std: p.std,
        bgr: p.channel_order == ChannelOrder::Bgr,
        nchw: p.layout == Layout::Nchw,
    }
}
