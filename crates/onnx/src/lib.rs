//! ONNX graph tools for headstart: the protobuf types (from the `onnx-protobuf`
//! crate), small builders for tensors, nodes and value infos, and model-level
//! helpers shared by the backbone importer, `models inspect` and `export`;
//! [`inspect`] summarizes a model, [`features`] finds (or exposes) the
//! feature tensor of a user's backbone and [`export`] builds classifier models
//! from a head, alone or fused with its backbone.
//!
//! This crate never runs a model; it only reads, edits and writes ONNX graphs.
//!
//! A tiny classifier (ReLU features, a `Gemm` layer, a softmax), encoded, decoded
//! and inspected:
//!
//! ```
//! use headstart_onnx::build::{Attr, Dim, model, node, tensor_f32, value_info};
//! use headstart_onnx::proto::{GraphProto, tensor_proto::DataType};
//! # fn main() -> Result<(), headstart_onnx::OnnxError> {
//! let batch = || Dim::Named("N".into());
//! let mut graph = GraphProto::new();
//! graph.name = "tiny".into();
//! graph.input.push(value_info("x", DataType::FLOAT, &[batch(), Dim::Fixed(4)]));
//! graph.output.push(value_info("probs", DataType::FLOAT, &[batch(), Dim::Fixed(3)]));
//! // Three classes over four features: weight [3, 4] (transB = 1), bias [3].
//! graph.initializer.push(tensor_f32("w", &[3, 4], &[0.1; 12]));
//! graph.initializer.push(tensor_f32("b", &[3], &[0.0; 3]));
//! graph.node.push(node("Relu", "relu", &["x"], &["feat"], vec![]));
//! graph.node.push(node("Gemm", "fc", &["feat", "w", "b"], &["logits"], vec![("transB", Attr::Int(1))]));
//! graph.node.push(node("Softmax", "softmax", &["logits"], &["probs"], vec![("axis", Attr::Int(1))]));
//! let tiny = model(graph, &[("author", "doc")]);
//!
//! let bytes = headstart_onnx::encode_model(&tiny)?;
//! let decoded = headstart_onnx::decode_model(&bytes, "tiny.onnx".as_ref())?;
//! assert_eq!(decoded, tiny);
//!
//! // The features headstart would extract: the input of the last fully connected layer.
//! let features = headstart_onnx::features::find_penultimate(&decoded)?;
//! assert_eq!((features.name.as_str(), features.dim), ("feat", Some(4)));
//!
//! let summary = headstart_onnx::inspect::summarize(&decoded, bytes.len() as u64);
//! assert_eq!((summary.node_count, summary.parameter_count), (3, 15));
//! println!("{summary}");
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod build;
pub mod export;
pub mod features;
pub mod inspect;
pub mod quantize;

pub use onnx_protobuf as proto;
pub use onnx_protobuf::Message;

use std::path::{Path, PathBuf};

/// Errors of this crate; each names the file or tensor at fault.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The model file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not an ONNX protobuf.
    #[error("{path}: not a valid ONNX model ({message}); is this an .onnx file?")]
    Decode {
        /// The file (or the name given to [`decode_model`]).
        path: PathBuf,
        /// The protobuf decoder's message, or "the model has no graph".
        message: String,
    },
    /// The graph lacks something an operation needs.
    #[error("{0}")]
    Graph(String),
    /// No feature tensor could be picked; `why` says what was found, and
    /// `pooled` lists the tensors that could be named instead.
    #[error("cannot pick the feature tensor: {why}")]
    Features {
        /// What was found instead of a fully connected head.
        why: String,
        /// The graph's pooled tensors that may be `[batch, features]`, as
        /// `` `name` (Op) ``, in graph order.
        pooled: Vec<String>,
    },
    /// The tensor named for features is not `[batch, features]` (e.g. a 4-D
    /// feature map); `pooled` lists the graph's 2-D pooled tensors, as
    /// `` `name` (Op) ``.
    #[error(
        "the feature tensor `{tensor}` has shape {shape}, not [batch, features]: headstart stores one vector per image and does not flatten feature maps"
    )]
    FeatureShape {
        /// The tensor named for features.
        tensor: String,
        /// Its shape as the graph declares or implies it, e.g. `[N, 1280, 7, 7]`.
        shape: String,
        /// The graph's 2-D pooled tensors, as `` `name` (Op) ``.
        pooled: Vec<String>,
    },
    /// A named tensor is not in the graph; `suggestions` is empty or starts
    /// with "; ".
    #[error("no tensor `{name}` to use: {reason}{suggestions}")]
    UnknownTensor {
        /// The tensor name asked for.
        name: String,
        /// Why it cannot be used (e.g. it is an initializer, or nothing produces it).
        reason: String,
        /// Similar tensor names, empty or starting with "; ".
        suggestions: String,
    },
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

/// Decodes every model file in `dir` (a test helper); returns how many there were.
#[cfg(test)]
pub(crate) fn read_back_models(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = e.unwrap_or_else(|e| panic!("{e}")).path();
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        decode_model(&bytes, &path).unwrap_or_else(|e| panic!("{e}"));
        n += 1;
    }
    n
}
