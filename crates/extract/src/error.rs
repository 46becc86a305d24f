//! The error type of `headstart-extract`.

use std::path::PathBuf;

/// Errors of the extract stage; each names the file, model or setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The ONNX Runtime shared library could not be loaded.
    #[error(
        "cannot load ONNX Runtime from {path}: {message}\nfix: point --ort-lib (or ORT_DYLIB_PATH) at a libonnxruntime.so of version 1.31 or newer, or unset it and run `headstart runtime install`"
    )]
    RuntimeLoad { path: PathBuf, message: String },
    /// No pinned ONNX Runtime wheel exists for this platform.
    #[error(
        "no pinned ONNX Runtime build for {platform}; install onnxruntime yourself and pass --ort-lib PATH (or set ORT_DYLIB_PATH)"
    )]
    UnsupportedPlatform { platform: String },
    /// The input folder or manifest cannot be used.
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
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
    /// A parameter is out of range.
    #[error("invalid {name} `{value}`: {message}")]
    Param {
        name: &'static str,
        value: String,
        message: String,
    },
    /// The decode threads could not be started.
    #[error("cannot start {threads} decode threads: {message}")]
    Threads { threads: usize, message: String },
    /// The cache could not be read or written.
    #[error(transparent)]
    Cache(#[from] headstart_cache::CacheError),
    /// None of the cache's images are in this input: extracting it would remove them all.
    #[error(
        "{cache} holds features of {live} image(s), none of which are in {input}: is this another dataset? Extracting it here would remove them from the cache.\nfix: use another --out directory, or pass --prune to replace them"
    )]
    DifferentInput {
        cache: PathBuf,
        input: PathBuf,
        live: usize,
    },
    /// An image file is empty.
    #[error("empty file")]
    EmptyImage,
    /// The bytes are no image format this build reads.
    #[error("not a recognised image format")]
    UnknownImageFormat,
    /// A JPEG ends before its end-of-image marker.
    #[error("truncated JPEG: the data ends before the end-of-image marker")]
    TruncatedJpeg,
    /// An image with a zero side.
    #[error("image has no pixels ({width}x{height})")]
    NoPixels { width: u32, height: u32 },
    /// An image whose pixels would need more memory than allowed (a decompression bomb).
    #[error(
        "Memory limit exceeded: a {width}x{height} image needs {mib} MiB to decode, over the {limit_mib} MiB limit"
    )]
    ImageTooLarge {
        width: u32,
        height: u32,
        mib: u64,
        limit_mib: u64,
    },
    /// The decoder rejected the image data.
    #[error("{0}")]
    Decode(String),
    /// Resampling to the model's input size failed.
    #[error("resize of a {width}x{height} image: {message}")]
    Resize {
        width: u32,
        height: u32,
        message: String,
    },
    /// `--strict`: the first failing file stops the run.
    #[error("{path}: {stage} failed: {message} (--strict stops at the first failure)")]
    Strict {
        path: String,
        stage: String,
        message: String,
    },
    /// A requested execution provider could not be registered.
    #[error("{provider} is not usable: {message}\nfix: {fix}")]
    Device {
        provider: String,
        message: String,
        fix: String,
    },
    /// An ONNX Runtime call failed.
    #[error("{context}: {message}")]
    Ort { context: String, message: String },
    /// Provisioning failed.
    #[error(transparent)]
    Provision(#[from] headstart_provision::ProvisionError),
    /// A model could not be built or read.
    #[error(transparent)]
    Model(#[from] headstart_models::ModelError),
    /// An ONNX graph could not be read or edited.
    #[error(transparent)]
    Onnx(#[from] headstart_onnx::OnnxError),
}

impl ExtractError {
    /// Wraps an `ort` error with what was being done.
    pub fn ort(context: impl Into<String>) -> impl FnOnce(ort::Error) -> ExtractError {
        let context = context.into();
        move |e| ExtractError::Ort {
            context,
            message: e.to_string(),
        }
    }
}
