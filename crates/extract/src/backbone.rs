//! One ONNX Runtime session over a backbone, fed batches of preprocessed tensors.

use std::path::PathBuf;

use headstart_models::preprocess::Preprocess;
use ort::ep::ExecutionProvider as _;
use ort::session::{Session, builder::GraphOptimizationLevel};

use crate::ExtractError;
use crate::model::ResolvedBackbone;
use crate::runtime::Runtime;

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// ONNX Runtime's CPU provider.
    #[default]
    Cpu,
    /// CUDA on the given GPU.
    Cuda(i32),
    /// TensorRT on the given GPU.
    TensorRt(i32),
}

impl std::str::FromStr for Device {
    type Err = ExtractError;
    /// `cpu`, `cuda`, `cuda:1`, `tensorrt`, `tensorrt:0`.
    fn from_str(s: &str) -> Result<Device, ExtractError> {
        let bad = |message: String| ExtractError::Param {
            name: "--device",
            value: s.to_string(),
            message,
        };
        let (kind, id) = match s.split_once(':') {
            Some((k, id)) => (
                k,
                id.parse::<i32>().ok().filter(|i| *i >= 0).ok_or_else(|| {
                    bad(format!("device id `{id}` must be a non-negative integer"))
                })?,
            ),
            None => (s, 0),
        };
        match kind.to_ascii_lowercase().as_str() {
            "cpu" if !s.contains(':') => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(id)),
            "tensorrt" | "trt" => Ok(Device::TensorRt(id)),
            _ => Err(bad(
                "unknown device; use cpu, cuda[:ID] or tensorrt[:ID]".into()
            )),
        }
    }
}

/// Name ONNX Runtime uses for the CPU provider.
pub const CPU_PROVIDER: &str = "CPUExecutionProvider";

/// Session settings.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Intra-op threads of this session (0 = ONNX Runtime's default).
    pub intra_threads: usize,
    /// Whether idle intra-op threads spin (off by default: it costs throughput on busy machines).
    pub spinning: bool,
    /// Execution provider to use.
    pub device: Device,
    /// Run on CPU when the requested GPU provider cannot be registered.
    pub allow_cpu_fallback: bool,
    /// TensorRT: build fp16 engines.
    pub fp16: bool,
    /// TensorRT: engine cache folder.
    pub trt_cache: Option<PathBuf>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            intra_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            spinning: false,
            device: Device::Cpu,
            allow_cpu_fallback: false,
            fp16: false,
            trt_cache: None,
        }
    }
}

const GPU_FIX: &str = "run `headstart runtime install --gpu` (add --tensorrt for TensorRT): `extract --device cuda` then loads that GPU build of ONNX Runtime by itself, other commands with the --ort-lib PATH it prints; check `headstart doctor`, or add --allow-cpu-fallback to run on CPU";

/// A loaded backbone that maps input tensors to named float outputs.
pub struct Backbone {
    session: Session,
    pre: Preprocess,
    outputs: Vec<String>,
    provider: String,
}

fn builder_err(
    ctx: &str,
) -> impl Fn(ort::Error<ort::session::builder::SessionBuilder>) -> ExtractError + '_ {
    move |e| ExtractError::Ort {
        context: ctx.to_string(),
        message: e.to_string(),
    }
}

impl Backbone {
    /// Opens a resolved model with its feature tensor as the one output.
    pub fn open_features(
        rt: &Runtime,
        model: &ResolvedBackbone,
        cfg: &SessionConfig,
    ) -> Result<Backbone, ExtractError> {
        Backbone::open(
            rt,
            &model.name,
            &model.onnx,
            model.preprocess.clone(),
            &[model.feature_tensor.as_str()],
            cfg,
        )
    }

    /// Opens the ONNX model in `onnx` (bytes; the runtime must be initialised) and
    /// checks that `outputs` and the preprocessing input exist in the graph.
    /// `name` only labels errors.
    pub fn open(
        rt: &Runtime,
        name: &str,
        onnx: &[u8],
        pre: Preprocess,
        outputs: &[&str],
        cfg: &SessionConfig,
    ) -> Result<Backbone, ExtractError> {
        let ctx = format!("opening {name}");
        let mut builder = Session::builder(&rt.env)
            .map_err(ExtractError::ort(&ctx))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(builder_err(&ctx))?
            .with_intra_threads(cfg.intra_threads)
            .map_err(builder_err(&ctx))?
            .with_intra_op_spinning(cfg.spinning)
            .map_err(builder_err(&ctx))?
            .with_inter_op_spinning(false)
            .map_err(builder_err(&ctx))?;
        let provider = match register_device(&mut builder, cfg) {
            Ok(p) => p,
            Err((provider, message)) if cfg.allow_cpu_fallback => {
                let message = with_preload_failures(rt, message);
                tracing_fallback(&provider, &message);
                CPU_PROVIDER.to_string()
            }
            Err((provider, message)) => {
                return Err(ExtractError::Device {
                    provider,
                    fix: gpu_fix(rt, &message).into(),
                    message: with_preload_failures(rt, message),
                });
            }
        };
        let session = builder
            .commit_from_memory(onnx)
            .map_err(ExtractError::ort(&ctx))?;
        let has = |list: &[ort::value::Outlet], n: &str| list.iter().any(|o| o.name() == n);
        if !has(session.inputs(), &pre.input_name) {
            return Err(ExtractError::Backbone {
                model: name.to_string(),
                message: format!(
                    "the model has no input `{}` (inputs: {})",
                    pre.input_name,
                    names(session.inputs())
                ),
            });
        }
        for o in outputs {
            if !has(session.outputs(), o) {
                return Err(ExtractError::Backbone {
                    model: name.to_string(),
                    message: format!(
                        "the model has no output `{o}` (outputs: {}); choose one with --features",
                        names(session.outputs())
                    ),
                });
            }
        }
        Ok(Backbone {
            session,
            pre,
            outputs: outputs.iter().map(|s| s.to_string()).collect(),
            provider,
        })
    }

    /// The preprocessing recipe the session expects.
    pub fn preprocess(&self) -> &Preprocess {
        &self.pre
    }

    /// The execution provider the session runs on.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// Runs a batch of `n` tensors (`n * 3*H*W` values) and returns each requested
    /// output as `n * dim` row-major values.
    pub fn run(&mut self, batch: &[f32], n: usize) -> Result<Vec<Vec<f32>>, ExtractError> {
        let shape = self.pre.shape(n);
        let input = ort::value::TensorRef::from_array_view((shape, batch))
            .map_err(ExtractError::ort("building the input tensor"))?;
        let outputs = self
            .session
            .run(ort::inputs![self.pre.input_name.as_str() => input])
            .map_err(ExtractError::ort("running the model"))?;
        let mut result = Vec::with_capacity(self.outputs.len());
        for name in &self.outputs {
            let (shape, data) = outputs[name.as_str()]
                .try_extract_tensor::<f32>()
                .map_err(ExtractError::ort(format!("reading output `{name}`")))?;
            let rows = shape.first().copied().unwrap_or(0);
            if rows != n as i64 || n == 0 || data.len() % n != 0 {
                return Err(ExtractError::Ort {
                    context: format!("reading output `{name}`"),
                    message: format!("expected {n} rows, got shape {shape:?}"),
                });
            }
            result.push(data.to_vec());
        }
        Ok(result)
    }
}

/// What to do about a provider that did not register.
fn gpu_fix(rt: &Runtime, message: &str) -> &'static str {
    if message.contains("libcuda.so.1") {
        "no NVIDIA driver was found (libcuda.so.1 comes with the driver; CUDA 13 needs r580 or newer): run on a machine with an NVIDIA GPU and driver (in a container: the NVIDIA container toolkit, e.g. `--gpus all`), or add --allow-cpu-fallback to run on CPU"
    } else if rt.preload.is_some() {
        "check `headstart doctor` (it lists the GPU runtime's libraries and whether each provider registers), or add --allow-cpu-fallback to run on CPU"
    } else {
        GPU_FIX
    }
}

/// Adds the NVIDIA libraries that could not be preloaded to a registration error.
fn with_preload_failures(rt: &Runtime, message: String) -> String {
    let message = message.trim_end().to_string();
    match &rt.preload {
        Some(p) if !p.failed.is_empty() => format!(
            "{message}\n(libraries of the GPU runtime that could not be loaded: {})",
            p.failed.join("; ")
        ),
        _ => message,
    }
}

/// Registers `device`'s provider on a throwaway session builder: `Ok(provider name)`
/// when it registers (its libraries load and it accepts the device id), else the reason.
/// `headstart doctor` uses this; a model is not needed.
pub fn probe_device(rt: &Runtime, device: Device) -> Result<String, String> {
    let mut builder = Session::builder(&rt.env).map_err(|e| e.to_string())?;
    let cfg = SessionConfig {
        device,
        intra_threads: 1,
        ..SessionConfig::default()
    };
    register_device(&mut builder, &cfg).map_err(|(_, message)| with_preload_failures(rt, message))
}

fn tracing_fallback(provider: &str, message: &str) {
    eprintln!(
        "headstart: {provider} unavailable ({message}); running on CPU (--allow-cpu-fallback)"
    );
}

/// Registers the requested provider; `Err((provider, reason))` when it cannot be.
fn register_device(
    builder: &mut ort::session::builder::SessionBuilder,
    cfg: &SessionConfig,
) -> Result<String, (String, String)> {
    let dispatch = match cfg.device {
        Device::Cpu => return Ok(CPU_PROVIDER.to_string()),
        Device::Cuda(id) => {
            if !ort::ep::CUDA::is_available().unwrap_or(false) {
                return Err((
                    "CUDAExecutionProvider".into(),
                    "the loaded ONNX Runtime library was built without CUDA support (CPU-only build)".into(),
                ));
            }
            ort::ep::CUDA::default()
                .with_device_id(id)
                .build()
                .error_on_failure()
        }
        Device::TensorRt(id) => {
            if !ort::ep::TensorRT::is_available().unwrap_or(false) {
                return Err((
                    "TensorrtExecutionProvider".into(),
                    "the loaded ONNX Runtime library was built without TensorRT support (CPU-only build)".into(),
                ));
            }
            let mut trt = ort::ep::TensorRT::default()
                .with_device_id(id)
                .with_fp16(cfg.fp16)
                .with_engine_cache(cfg.trt_cache.is_some());
            if let Some(dir) = &cfg.trt_cache {
                trt = trt.with_engine_cache_path(dir.display());
            }
            trt.build().error_on_failure()
        }
    };
    let name = dispatch.name().to_string();
    dispatch
        .register(builder)
        .map(|()| name.clone())
        .map_err(|e| (name, e.to_string()))
}

fn names(list: &[ort::value::Outlet]) -> String {
    list.iter()
        .map(|o| o.name().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse() {
        assert_eq!("cpu".parse::<Device>().unwrap(), Device::Cpu);
        assert_eq!("cuda".parse::<Device>().unwrap(), Device::Cuda(0));
        assert_eq!("cuda:2".parse::<Device>().unwrap(), Device::Cuda(2));
        assert_eq!("tensorrt:1".parse::<Device>().unwrap(), Device::TensorRt(1));
        assert!("cuda:-1".parse::<Device>().is_err());
        let e = "tpu".parse::<Device>().unwrap_err().to_string();
        assert!(
            e.contains("invalid --device `tpu`") && e.contains("cuda[:ID]"),
            "{e}"
        );
    }
}
