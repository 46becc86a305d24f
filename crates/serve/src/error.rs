//! The error type of `headstart-serve`.

use std::path::PathBuf;

/// A backbone by name and fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelId {
    /// Model name.
    pub name: String,
    /// Model fingerprint.
    pub fingerprint: String,
}

impl ModelId {
    /// The backbone `head` was trained on, with its recorded `fingerprint`.
    pub(crate) fn trained_on(head: &headstart_fit::Head, fingerprint: &str) -> Box<ModelId> {
        Box::new(ModelId {
            name: head
                .meta()
                .model_name
                .clone()
                .unwrap_or_else(|| "an unnamed model".into()),
            fingerprint: fingerprint.to_string(),
        })
    }
}

/// Errors while classifying with or exporting a head; each names the head,
/// cache, model or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The head could not be loaded or run.
    #[error("loading the head from {dir}: {source}")]
    Head {
        /// The head directory.
        dir: PathBuf,
        /// Why it could not be loaded.
        #[source]
        source: headstart_fit::FitError,
    },
    /// The head could not be run.
    #[error(transparent)]
    Fit(#[from] headstart_fit::FitError),
    /// A cache was made with another backbone than the head's.
    #[error(
        "the cache {cache} holds features of `{}` (fingerprint {}), but the head was trained on features of `{}` (fingerprint {}); pass a cache made with the head's model",
        .found.name, .found.fingerprint, .head.name, .head.fingerprint
    )]
    CacheModel {
        /// The cache directory.
        cache: PathBuf,
        /// The backbone the cache holds features of.
        found: Box<ModelId>,
        /// The backbone the head was trained on.
        head: Box<ModelId>,
    },
    /// A cache holds features of another size than the head takes.
    #[error("the cache {cache} holds {dim}-d features, but the head takes {head_dim}-d features")]
    CacheDim {
        /// The cache directory.
        cache: PathBuf,
        /// The cache's feature dimension.
        dim: usize,
        /// The head's feature dimension.
        head_dim: usize,
    },
    /// The backbone gives features of another size than the head takes.
    #[error(
        "the backbone `{model}` gives {dim}-d features from `{tensor}`, but the head takes {head_dim}-d features"
    )]
    BackboneDim {
        /// The backbone's name.
        model: String,
        /// Its feature tensor (a name, or a description when none is known).
        tensor: String,
        /// The dimension of that tensor.
        dim: usize,
        /// The head's feature dimension.
        head_dim: usize,
    },
    /// No backbone is open or given where one is needed.
    #[error("{0}")]
    NoBackbone(String),
    /// The head records no built-in backbone and none was given: the model,
    /// feature tensor and preprocessing used to extract its features are needed.
    #[error("{}", match .model {
        Some(name) => format!("the head was trained on features of `{name}`, which is not a built-in model"),
        None => "the head does not record the model it was trained on".to_string(),
    })]
    UnknownBackbone {
        /// The model the head records, when it records one.
        model: Option<String>,
    },
    /// The given backbone is not the one the head was trained on: the model,
    /// feature tensor and preprocessing used to extract its features are needed.
    #[error(
        "the head was trained on features of `{}` (model fingerprint {}), but the backbone `{}` resolved from `{spec}` has fingerprint {}",
        .head.name, .head.fingerprint, .found.name, .found.fingerprint
    )]
    WrongBackbone {
        /// The backbone the head was trained on.
        head: Box<ModelId>,
        /// The backbone resolved from `spec`.
        found: Box<ModelId>,
        /// The model as given (built-in name or path).
        spec: String,
    },
    /// A manifest given as input could not be read.
    #[error("reading the manifest {path}: {source}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: Box<headstart_extract::ExtractError>,
    },
    /// A parameter is out of range (`name` is the field, e.g. `batch_size`).
    #[error("invalid {name} `{value}`: {message}")]
    Param {
        /// The parameter, e.g. `batch_size`.
        name: &'static str,
        /// Its value, as given.
        value: String,
        /// What is accepted.
        message: String,
    },
    /// Fusing the head with a backbone failed.
    #[error("fusing the head with {model}: {source}")]
    Fuse {
        /// The backbone's name.
        model: String,
        /// Why fusing failed.
        #[source]
        source: headstart_onnx::OnnxError,
    },
    /// An ONNX graph could not be built or encoded.
    #[error(transparent)]
    Onnx(#[from] headstart_onnx::OnnxError),
    /// The cache could not be read.
    #[error(transparent)]
    Cache(#[from] headstart_cache::CacheError),
    /// The backbone could not be opened or run.
    #[error(transparent)]
    Extract(Box<headstart_extract::ExtractError>),
    /// The backbone could not be resolved.
    #[error(transparent)]
    Model(#[from] headstart_models::ModelError),
    /// An output could not be written.
    #[error(transparent)]
    Files(#[from] headstart_files::FilesError),
    /// Predictions could not be encoded as Parquet.
    #[error("encoding predictions as Parquet: {0}")]
    Parquet(String),
}

impl From<headstart_extract::ExtractError> for ServeError {
    fn from(e: headstart_extract::ExtractError) -> ServeError {
        ServeError::Extract(Box::new(e))
    }
}
