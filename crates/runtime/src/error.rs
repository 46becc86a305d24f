//! The error type of `headstart-runtime`.

use std::path::PathBuf;

/// Errors while finding, loading or running ONNX Runtime; each names the library,
/// provider or model at fault.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The ONNX Runtime shared library could not be loaded: another library
    /// (version 1.31 or newer), or the pinned one installed, is needed.
    #[error("cannot load ONNX Runtime from {path}: {message}")]
    RuntimeLoad {
        /// The library file.
        path: PathBuf,
        /// Why it could not be loaded.
        message: String,
    },
    /// No pinned ONNX Runtime wheel exists for this platform: install
    /// onnxruntime yourself and load its library by path.
    #[error("no pinned ONNX Runtime build for {platform}")]
    UnsupportedPlatform {
        /// The platform, `<os>-<arch>` (with " (GPU build)" for the GPU runtime).
        platform: String,
    },
    /// A requested execution provider could not be registered.
    #[error("{provider} is not usable: {message}")]
    Device {
        /// The execution provider, e.g. `CUDAExecutionProvider`.
        provider: String,
        /// ONNX Runtime's error, with any GPU libraries that failed to preload.
        message: String,
        /// What is missing, and so what to do about it.
        fix: DeviceFix,
    },
    /// A parameter is out of range (`name` is the field, e.g. `device`).
    #[error("invalid {name} `{value}`: {message}")]
    Param {
        /// The parameter, e.g. `device`.
        name: &'static str,
        /// Its value, as given.
        value: String,
        /// What is accepted.
        message: String,
    },
    /// An ONNX Runtime call failed.
    #[error("{context}: {message}")]
    Ort {
        /// What was being done.
        context: String,
        /// ONNX Runtime's error message.
        message: String,
    },
    /// Provisioning failed.
    #[error(transparent)]
    Provision(#[from] headstart_provision::ProvisionError),
    /// The model cannot be used.
    #[error(transparent)]
    Model(#[from] headstart_models::ModelError),
    /// An ONNX graph could not be read or edited.
    #[error(transparent)]
    Onnx(#[from] headstart_onnx::OnnxError),
}

/// Why a GPU execution provider did not register, which decides the fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceFix {
    /// No NVIDIA driver (`libcuda.so.1`) was found: run on a machine with an
    /// NVIDIA GPU and driver, or on CPU.
    NoDriver,
    /// The GPU build of ONNX Runtime is loaded but the provider did not
    /// register: check its libraries, or run on CPU.
    GpuBuild,
    /// The loaded ONNX Runtime is not the GPU build: install and load the GPU
    /// build, or run on CPU.
    CpuBuild,
}

impl RuntimeError {
    /// Wraps an `ort` error with what was being done.
    pub fn ort(context: impl Into<String>) -> impl FnOnce(ort::Error) -> RuntimeError {
        let context = context.into();
        move |e| RuntimeError::Ort {
            context,
            message: e.to_string(),
        }
    }
}
