//! The error type of `headstart-extract`.

use std::path::PathBuf;

use crate::listing::{IMAGE_EXTENSIONS, InputKind};

/// Errors of the extract stage; each names the file, model or setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The input folder or manifest cannot be used.
    #[error("{path}: {message}")]
    Input {
        /// The input (folder, manifest, tar or Parquet file) at fault.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// An object store refused or failed a request that the run needs (a
    /// listing, the INPUT itself); the message never holds credentials.
    #[error("{url}: {message}")]
    Remote {
        /// The object or prefix, as a URL without query or user info.
        url: String,
        /// What went wrong, and what to check.
        message: String,
    },
    /// The input holds no images to extract.
    #[error("{path}: {}", no_images(.kind))]
    NoImages {
        /// The input (folder, manifest, tar or Parquet file).
        path: PathBuf,
        /// How it was read.
        kind: InputKind,
    },
    /// A parameter is out of range.
    #[error("invalid {name} `{value}`: {message}")]
    Param {
        /// The setting, e.g. `batch_size` or `views`.
        name: &'static str,
        /// Its value, as given.
        value: String,
        /// What is accepted.
        message: String,
    },
    /// The array job's environment names no valid shard (a shard chosen
    /// explicitly is not read from the environment).
    #[error("{message}")]
    ShardEnv {
        /// Which variables were read and what is wrong with them.
        message: String,
    },
    /// The decode threads could not be started.
    #[error("cannot start {threads} decode threads: {message}")]
    Threads {
        /// The number of threads asked for.
        threads: usize,
        /// The thread pool's error.
        message: String,
    },
    /// The cache could not be read or written.
    #[error(transparent)]
    Cache(#[from] headstart_cache::CacheError),
    /// None of the cache's images are in this input: extracting it would remove
    /// them all. Another cache directory, or pruning, is what the caller can choose.
    #[error(
        "{cache} holds features of {live} image(s), none of which are in {input}: is this another dataset? Extracting it here would remove them from the cache."
    )]
    DifferentInput {
        /// The cache directory.
        cache: PathBuf,
        /// The input being extracted.
        input: PathBuf,
        /// Live images in the cache (in this shard).
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
    NoPixels {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// An image whose pixels would need more memory than allowed (a decompression bomb).
    #[error(
        "memory limit exceeded: a {width}x{height} {what} needs {mib} MiB to decode, over the {limit_mib} MiB limit"
    )]
    ImageTooLarge {
        /// Width in pixels, as the header declares it.
        width: u32,
        /// Height in pixels, as the header declares it.
        height: u32,
        /// What the file is: `image`, `JPEG`, `progressive JPEG`.
        what: &'static str,
        /// MiB the decode would take at its peak.
        mib: u64,
        /// The decode limit in MiB.
        limit_mib: u64,
    },
    /// A JPEG's entropy-coded data is damaged (both decoding modes refuse it).
    #[error("corrupt JPEG data: {0}")]
    CorruptJpeg(String),
    /// The decoder rejected the image data.
    #[error("{0}")]
    Decode(String),
    /// A decoder panicked on this image (a bug in the decoder, reached by
    /// this file): the image fails, the run goes on.
    #[error(
        "decoder panicked: {0} (a decoder bug reached by this file; the rest of the run is unaffected)"
    )]
    DecoderPanicked(String),
    /// Resampling to the model's input size failed.
    #[error("resize of a {width}x{height} image: {message}")]
    Resize {
        /// Width of the image in pixels.
        width: u32,
        /// Height of the image in pixels.
        height: u32,
        /// What went wrong.
        message: String,
    },
    /// Strict mode: the first failing file stops the run.
    #[error("{path}: {stage} failed: {message} (strict mode stops at the first failure)")]
    Strict {
        /// The failing image's path relative to the input.
        path: String,
        /// The stage that failed: `list`, `read`, `decode`, `preprocess` or `infer`.
        stage: String,
        /// What went wrong.
        message: String,
    },
    /// ONNX Runtime could not load or run the model.
    #[error(transparent)]
    Runtime(#[from] headstart_runtime::RuntimeError),
    /// A stage's thread panicked (a bug: please report it).
    #[error("the {stage} stage panicked")]
    Panicked {
        /// The stage: `inference` or `writer`.
        stage: &'static str,
    },
    /// The model could not be resolved or read.
    #[error(transparent)]
    Model(#[from] headstart_models::ModelError),
    /// None of the calibration images could be read and decoded.
    #[error(
        "none of the {tried} calibration images could be read and decoded; calibrate on a folder of readable images"
    )]
    NoCalibrationImages {
        /// Images tried.
        tried: usize,
    },
}

/// Why an input of `kind` gave no images.
fn no_images(kind: &InputKind) -> String {
    match kind {
        InputKind::ClassFolders => format!(
            "no images found (extensions: {}); class folders look like INPUT/<class>/image.jpg",
            IMAGE_EXTENSIONS.join(", ")
        ),
        InputKind::Unlabeled => format!(
            "no images found (extensions: {})",
            IMAGE_EXTENSIONS.join(", ")
        ),
        InputKind::Manifest => "the manifest lists no images".into(),
        InputKind::Tar => "no tar shards, or no samples in them".into(),
        InputKind::ImageParquet => "no Parquet files, or no rows in them".into(),
    }
}
