//! ONNX graph tools for headstart: the protobuf types (from the `onnx-protobuf`
//! crate), small builders for tensors, nodes and value infos, and model-level
//! helpers shared by the backbone importer, `models inspect` and `export`;
//! [`inspect`] summarizes a model, [`features`] finds (or exposes) the
//! feature tensor of a user's backbone and [`export`] builds classifier models
//! from a head, alone or fused with its backbone.
//!
//! This crate never runs a model; it only reads, edits and writes ONNX graphs.

pub mod build;
pub mod export;
pub mod features;
pub mod inspect;

pub use onnx_protobuf as proto;
pub use onnx_protobuf::Message;

use std::path::{Path, PathBuf};

/// Errors of this crate; each names the file or tensor at fault.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not an ONNX protobuf.
    #[error("{path}: not a valid ONNX model ({message}); is this an .onnx file?")]
    Decode { path: PathBuf, message: String },
    /// The graph lacks something an operation needs.
    #[error("{0}")]
    Graph(String),
    /// No feature tensor could be picked; the message says what was found
    /// and which tensors `--features` could name.
    #[error("cannot pick the feature tensor: {0}")]
    Features(String),
    /// The tensor named for features is not `[batch, features]` (e.g. a 4-D
    /// feature map); `pooled` lists the graph's 2-D pooled tensors, as
    /// `` `name` (Op) ``.
    #[error(
        "the feature tensor `{tensor}` has shape {shape}, not [batch, features]: headstart stores one vector per image and does not flatten feature maps; {}",
        feature_shape_fix(pooled, "MODEL")
    )]
    FeatureShape {
        tensor: String,
        shape: String,
        pooled: Vec<String>,
    },
    /// A named tensor is not in the graph; `suggestions` is empty or starts
    /// with "; ".
    #[error("no tensor `{name}` to use: {reason}{suggestions}")]
    UnknownTensor {
        name: String,
        reason: String,
        suggestions: String,
    },
}

/// What to do about a feature tensor that is not `[batch, features]`: pick a
/// pooled tensor (one of `pooled`, when the graph has some) and where to see
/// the tensors of `model`.
pub fn feature_shape_fix(pooled: &[String], model: &str) -> String {
    const KEEP: usize = 6;
    let examples = match pooled {
        [] => String::new(),
        list if list.len() <= KEEP => format!(" (pooled tensors: {})", list.join(", ")),
        list => format!(
            " (pooled tensors: ..., {})",
            list[list.len() - KEEP..].join(", ")
        ),
    };
    format!(
        "pass --features TENSOR naming a pooled [batch, features] tensor{examples}, or --features auto; `headstart models inspect {model}` shows the model's outputs and the feature tensor auto picks"
    )
}

/// Reads and decodes an ONNX model file.
pub fn load_model(path: &Path) -> Result<proto::ModelProto, OnnxError> {
    let bytes = std::fs::read(path).map_err(|source| OnnxError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_model(&bytes, path)
}

/// Decodes ONNX bytes; `path` only names the source in errors.
pub fn decode_model(bytes: &[u8], path: &Path) -> Result<proto::ModelProto, OnnxError> {
    let model = proto::ModelProto::parse_from_bytes(bytes).map_err(|e| OnnxError::Decode {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if model.graph.is_none() {
        return Err(OnnxError::Decode {
            path: path.to_path_buf(),
            message: "the model has no graph".into(),
        });
    }
    Ok(model)
}

/// Encodes a model to protobuf bytes.
pub fn encode_model(model: &proto::ModelProto) -> Result<Vec<u8>, OnnxError> {
    model
        .write_to_bytes()
        .map_err(|e| OnnxError::Graph(format!("cannot encode the ONNX model: {e}")))
}
