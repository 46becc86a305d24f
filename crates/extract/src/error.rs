//! The error type of `headstart-extract`.

use std::path::PathBuf;

/// Errors of the extract stage; each names the file, model or setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The input folder or manifest cannot be used.
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    /// A parameter is out of range.
    #[error("invalid {name} `{value}`: {message}")]
    Param {
        name: &'static str,
        value: String,
        message: String,
    },
    /// The array job's environment names no valid shard.
    #[error("{message}")]
    ShardEnv { message: String },
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
    /// ONNX Runtime could not load or run the model.
    #[error(transparent)]
    Runtime(#[from] headstart_runtime::RuntimeError),
    /// A stage's thread panicked (a bug: please report it).
    #[error("the {stage} stage panicked")]
    Panicked { stage: &'static str },
    /// The model could not be resolved or read.
    #[error(transparent)]
    Model(#[from] headstart_models::ModelError),
}
