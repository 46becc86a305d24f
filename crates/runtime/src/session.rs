//! One ONNX Runtime session over a backbone, fed batches of preprocessed tensors.

use std::path::PathBuf;

use headstart_models::preprocess::Preprocess;
use ort::ep::ExecutionProvider as _;
use ort::session::{Session, builder::GraphOptimizationLevel};
use ort::value::TensorElementType;

use crate::Runtime;
use crate::{DeviceFix, RuntimeError};
use headstart_models::ResolvedBackbone;

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
    type Err = RuntimeError;
    /// `cpu`, `cuda`, `cuda:1`, `tensorrt`, `tensorrt:0`.
    fn from_str(s: &str) -> Result<Device, RuntimeError> {
        let bad = |message: String| RuntimeError::Param {
            name: "device",
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
    /// Intra-op threads of this session (1 to [`max_threads`]).
    pub intra_threads: usize,
    /// Whether idle intra-op threads spin (off by default: it costs throughput on busy machines).
    pub spinning: bool,
    /// Execution provider to use.
    pub device: Device,
    /// Run on CPU when the requested GPU provider cannot be registered
    /// ([`Backbone::cpu_fallback`] then says why).
    pub allow_cpu_fallback: bool,
    /// TensorRT: build fp16 engines.
    pub fp16: bool,
    /// TensorRT: engine cache folder.
    pub trt_cache: Option<PathBuf>,
}

/// The most threads a thread setting accepts (decode threads, intra-op
/// threads): 4 per core, at least 16. More only adds memory and contention;
/// 100,000 threads took gigabytes and never made progress.
pub fn max_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_mul(4)
        .max(16)
}

/// Checks a thread count named `name` (1 to [`max_threads`]).
pub fn check_threads(name: &'static str, n: usize) -> Result<(), RuntimeError> {
    let max = max_threads();
    if (1..=max).contains(&n) {
        return Ok(());
    }
    Err(RuntimeError::Param {
        name,
        value: n.to_string(),
        message: format!("use 1 to {max} (4 per core on this machine, or 16, whichever is more)"),
    })
}

impl SessionConfig {
    /// Checks the settings before anything is opened.
    pub fn check(&self) -> Result<(), RuntimeError> {
        check_threads("intra_threads", self.intra_threads)
    }
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

/// A loaded backbone that maps input tensors to named float outputs.
pub struct Backbone {
    session: Session,
    name: String,
    pre: Preprocess,
    outputs: Vec<String>,
    provider: String,
    /// The batch size the model's input fixes (`torch.onnx.export` fixes 1
    /// unless told otherwise); `None` when it is dynamic.
    fixed_batch: Option<usize>,
    /// The requested provider and why it did not register, when the session
    /// fell back to CPU.
    fallback: Option<(String, String)>,
}

pub(crate) fn builder_err(
    ctx: &str,
) -> impl Fn(ort::Error<ort::session::builder::SessionBuilder>) -> RuntimeError + '_ {
    move |e| RuntimeError::Ort {
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
    ) -> Result<Backbone, RuntimeError> {
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
    ) -> Result<Backbone, RuntimeError> {
        let ctx = format!("opening {name}");
        let mut builder = Session::builder(&rt.env)
            .map_err(RuntimeError::ort(&ctx))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(builder_err(&ctx))?
            .with_intra_threads(cfg.intra_threads)
            .map_err(builder_err(&ctx))?
            .with_intra_op_spinning(cfg.spinning)
            .map_err(builder_err(&ctx))?
            .with_inter_op_spinning(false)
            .map_err(builder_err(&ctx))?;
        let (provider, fallback) = match register_device(&mut builder, cfg) {
            Ok(p) => (p, None),
            Err((provider, message)) if cfg.allow_cpu_fallback => (
                CPU_PROVIDER.to_string(),
                Some((provider, with_preload_failures(rt, message))),
            ),
            Err((provider, message)) => {
                return Err(RuntimeError::Device {
                    provider,
                    fix: gpu_fix(rt, &message),
                    message: with_preload_failures(rt, message),
                });
            }
        };
        let session = builder
            .commit_from_memory(onnx)
            .map_err(RuntimeError::ort(&ctx))?;
        let fixed_batch = check_input(name, &session, &pre)?;
        for o in outputs {
            let Some(outlet) = session.outputs().iter().find(|x| x.name() == *o) else {
                return Err(headstart_models::ModelError::Backbone {
                    model: name.to_string(),
                    message: format!(
                        "the model has no output `{o}` (outputs: {}); choose one of them as the feature tensor",
                        names(session.outputs())
                    ),
                }
                .into());
            };
            // Rank 0: ONNX Runtime does not know the shape; `run` checks it.
            if let Some(shape) = outlet.dtype().tensor_shape()
                && !matches!(shape.len(), 0 | 2)
            {
                return Err(feature_shape(name, o, &dims_text(shape)));
            }
        }
        Ok(Backbone {
            session,
            name: name.to_string(),
            pre,
            outputs: outputs.iter().map(|s| s.to_string()).collect(),
            provider,
            fixed_batch,
            fallback,
        })
    }

    /// When the session runs on CPU because the requested provider did not
    /// register ([`SessionConfig::allow_cpu_fallback`]): that provider and why.
    pub fn cpu_fallback(&self) -> Option<(&str, &str)> {
        self.fallback
            .as_ref()
            .map(|(provider, why)| (provider.as_str(), why.as_str()))
    }

    /// The batch size the model's input fixes, when it is not dynamic. [`Backbone::run`]
    /// takes any number of rows either way.
    pub fn fixed_batch(&self) -> Option<usize> {
        self.fixed_batch
    }

    /// Rows per batch to use when `requested` were asked for: the model's fixed
    /// batch when it has one.
    pub fn batch_size(&self, requested: usize) -> usize {
        self.fixed_batch.unwrap_or(requested)
    }

    /// A line for the log when the model's fixed batch replaces `requested`.
    pub fn batch_note(&self, requested: usize) -> Option<String> {
        match self.fixed_batch {
            Some(n) if n != requested => Some(format!(
                "{} takes a fixed batch of {n}, so batches of {n} are used (not the requested {requested}); export it with a dynamic batch axis for other sizes",
                self.name
            )),
            _ => None,
        }
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
    /// output as `n * dim` row-major values. A model with a fixed batch runs in
    /// batches of that size, the last one padded with zeros.
    pub fn run(&mut self, batch: &[f32], n: usize) -> Result<Vec<Vec<f32>>, RuntimeError> {
        let len = self.pre.tensor_len();
        if n == 0 || batch.len() != n * len {
            return Err(RuntimeError::Ort {
                context: format!("running {}", self.name),
                message: format!(
                    "a batch of {n} images needs {} input values, got {}",
                    n * len,
                    batch.len()
                ),
            });
        }
        let fixed = match self.fixed_batch {
            Some(f) if f != n => f,
            _ => return self.run_exact(batch, n),
        };
        let mut result = vec![Vec::new(); self.outputs.len()];
        let mut padded = Vec::new();
        for chunk in batch.chunks(fixed * len) {
            let rows = chunk.len() / len;
            let input = if rows == fixed {
                chunk
            } else {
                padded.clear();
                padded.extend_from_slice(chunk);
                padded.resize(fixed * len, 0.0);
                &padded[..]
            };
            for (all, out) in result.iter_mut().zip(self.run_exact(input, fixed)?) {
                let dim = out.len() / fixed;
                all.extend_from_slice(&out[..rows * dim]);
            }
        }
        Ok(result)
    }

    /// Runs exactly `n` rows in one call; each output must be `[n, dim]`.
    fn run_exact(&mut self, batch: &[f32], n: usize) -> Result<Vec<Vec<f32>>, RuntimeError> {
        let mut result = Vec::with_capacity(self.outputs.len());
        let name = self.name.clone();
        run_outputs(
            &mut self.session,
            &self.pre,
            &self.name,
            &self.outputs,
            batch,
            n,
            &mut |output, shape, data| {
                if shape.len() != 2 {
                    return Err(feature_shape(&name, output, &dims_text(shape)));
                }
                if shape[0] != n as i64 || data.len() % n != 0 {
                    return Err(RuntimeError::Ort {
                        context: format!("reading output `{output}`"),
                        message: format!("expected {n} rows, got shape {}", dims_text(shape)),
                    });
                }
                result.push(data.to_vec());
                Ok(())
            },
        )?;
        Ok(result)
    }
}

/// What [`run_outputs`] hands each output to: its name, shape and values.
pub(crate) type OutputFn<'a> = dyn FnMut(&str, &[i64], &[f32]) -> Result<(), RuntimeError> + 'a;

/// Runs `n` rows of `batch` through `session` (input named as `pre` says) and
/// hands each of `outputs` to `each`, in order.
pub(crate) fn run_outputs(
    session: &mut Session,
    pre: &Preprocess,
    model: &str,
    outputs: &[String],
    batch: &[f32],
    n: usize,
    each: &mut OutputFn<'_>,
) -> Result<(), RuntimeError> {
    let input = ort::value::TensorRef::from_array_view((pre.shape(n), batch))
        .map_err(RuntimeError::ort("building the input tensor"))?;
    let values = session
        .run(ort::inputs![pre.input_name.as_str() => input])
        .map_err(RuntimeError::ort(format!("running {model}")))?;
    for name in outputs {
        let (shape, data) = values[name.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(RuntimeError::ort(format!("reading output `{name}`")))?;
        each(name, shape, data)?;
    }
    Ok(())
}

/// Checks that the session takes one float32 image input named as `pre` says;
/// returns its fixed batch size, if any.
pub(crate) fn check_input(
    name: &str,
    session: &Session,
    pre: &Preprocess,
) -> Result<Option<usize>, RuntimeError> {
    let inputs = session.inputs();
    if inputs.len() != 1 {
        return Err(headstart_models::ModelError::ModelInputs {
            model: name.to_string(),
            count: inputs.len(),
            names: if inputs.is_empty() {
                "none".into()
            } else {
                names(inputs)
            },
        }
        .into());
    }
    let input = &inputs[0];
    if input.name() != pre.input_name {
        return Err(headstart_models::ModelError::Backbone {
            model: name.to_string(),
            message: format!(
                "the model has no input `{}` (its input is `{}`)",
                pre.input_name,
                input.name()
            ),
        }
        .into());
    }
    let elem = input.dtype().tensor_type();
    if elem != Some(TensorElementType::Float32) {
        return Err(headstart_models::ModelError::InputType {
            model: name.to_string(),
            input: input.name().to_string(),
            elem_type: elem.map_or_else(|| "not a tensor".to_string(), elem_name),
        }
        .into());
    }
    Ok(input
        .dtype()
        .tensor_shape()
        .and_then(|s| s.first().copied())
        .filter(|&b| b > 0)
        .and_then(|b| usize::try_from(b).ok()))
}

/// numpy-style name of a tensor element type, as `models inspect` shows it.
fn elem_name(t: TensorElementType) -> String {
    match t {
        TensorElementType::Float32 => "float32",
        TensorElementType::Float16 => "float16",
        TensorElementType::Bfloat16 => "bfloat16",
        TensorElementType::Float64 => "float64",
        TensorElementType::Uint8 => "uint8",
        TensorElementType::Int8 => "int8",
        TensorElementType::Uint16 => "uint16",
        TensorElementType::Int16 => "int16",
        TensorElementType::Uint32 => "uint32",
        TensorElementType::Int32 => "int32",
        TensorElementType::Uint64 => "uint64",
        TensorElementType::Int64 => "int64",
        TensorElementType::Bool => "bool",
        TensorElementType::String => "string",
        other => return other.to_string(),
    }
    .to_string()
}

/// `[1, 16, 7, 7]`, with `?` for dimensions ONNX Runtime does not know.
fn dims_text(dims: &[i64]) -> String {
    let dims: Vec<String> = dims
        .iter()
        .map(|&d| {
            if d < 0 {
                "?".to_string()
            } else {
                d.to_string()
            }
        })
        .collect();
    format!("[{}]", dims.join(", "))
}

fn feature_shape(model: &str, tensor: &str, shape: &str) -> RuntimeError {
    headstart_models::ModelError::FeatureShape {
        model: model.to_string(),
        tensor: tensor.to_string(),
        shape: shape.to_string(),
        pooled: Vec::new(),
    }
    .into()
}

/// What is missing when a provider did not register.
fn gpu_fix(rt: &Runtime, message: &str) -> DeviceFix {
    if message.contains("libcuda.so.1") {
        DeviceFix::NoDriver
    } else if rt.preload.is_some() {
        DeviceFix::GpuBuild
    } else {
        DeviceFix::CpuBuild
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
    use headstart_onnx::build::{Attr, Dim, model, node, value_info};
    use headstart_onnx::proto::{GraphProto, tensor_proto::DataType};
    use headstart_provision::Home;
    use std::path::Path;

    /// ONNX Runtime, provisioned through headstart's own installer into the cache
    /// the end-to-end tests use (`target/tmp/headstart-home`).
    fn runtime() -> &'static Runtime {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .nth(2)
            .unwrap_or_else(|| panic!("no workspace root above {}", env!("CARGO_MANIFEST_DIR")))
            .join("target/tmp/headstart-home");
        let (lib, _) = crate::install(&Home::at(root), &|m| eprintln!("{m}"))
            .unwrap_or_else(|e| panic!("provisioning ONNX Runtime for the tests: {e}"));
        crate::init(&lib).unwrap_or_else(|e| panic!("{e}"))
    }

    fn test_model(file: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../tests/data/models/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// 8x8 NCHW input named `input`.
    fn pre8(input: &str) -> Preprocess {
        let mut p = Preprocess::imagenet(input);
        (p.height, p.width) = (8, 8);
        p
    }

    fn nchw(batch: Dim) -> Vec<Dim> {
        vec![batch, Dim::Fixed(3), Dim::Fixed(8), Dim::Fixed(8)]
    }

    /// `inputs` -> `body` -> GlobalAveragePool -> Flatten -> `y` [batch, 3].
    fn pooling_model(
        inputs: &[(&str, DataType)],
        batch: Dim,
        body: Vec<headstart_onnx::proto::NodeProto>,
        last: &str,
    ) -> Vec<u8> {
        let mut g = GraphProto::new();
        for (name, ty) in inputs {
            g.input.push(value_info(name, *ty, &nchw(batch.clone())));
        }
        g.node = body;
        g.node
            .push(node("GlobalAveragePool", "pool", &[last], &["p"], vec![]));
        g.node.push(node("Flatten", "flat", &["p"], &["y"], vec![]));
        g.output
            .push(value_info("y", DataType::FLOAT, &[batch, Dim::Fixed(3)]));
        headstart_onnx::encode_model(&model(g, &[])).unwrap_or_else(|e| panic!("{e}"))
    }

    fn open(
        name: &str,
        onnx: &[u8],
        pre: Preprocess,
        outputs: &[&str],
    ) -> Result<Backbone, String> {
        let cfg = SessionConfig {
            intra_threads: 1,
            ..SessionConfig::default()
        };
        Backbone::open(runtime(), name, onnx, pre, outputs, &cfg).map_err(|e| e.to_string())
    }

    /// Image `i` of a batch: every value `i + 1`, channel c scaled by c + 1.
    fn batch_of(pre: &Preprocess, n: usize) -> Vec<f32> {
        let plane = pre.tensor_len() / 3;
        (0..n)
            .flat_map(|i| {
                (0..3)
                    .flat_map(move |c| std::iter::repeat_n((i + 1) as f32 * (c + 1) as f32, plane))
            })
            .collect()
    }

    /// Issue #12: a model exported with a fixed batch of 1 (torch.onnx.export's
    /// default) failed with ONNX Runtime's dimension error unless --batch-size 1.
    #[test]
    fn fixed_batch_model_adapts_the_batch() {
        let pre = pre8("input");
        let mut net = open(
            "b_fixed_batch",
            &test_model("b_fixed_batch.onnx"),
            pre.clone(),
            &["logits"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(net.fixed_batch(), Some(1));
        assert_eq!(net.batch_size(32), 1);
        let note = net.batch_note(32).unwrap_or_default();
        assert!(
            note.contains("b_fixed_batch takes a fixed batch of 1, so batches of 1 are used"),
            "{note}"
        );
        assert_eq!(net.batch_note(1), None);
        let input = batch_of(&pre, 3);
        let all = net
            .run(&input, 3)
            .unwrap_or_else(|e| panic!("{e}"))
            .swap_remove(0);
        assert_eq!(all.len(), 3 * 5);
        let len = pre.tensor_len();
        for i in 0..3 {
            let one = net
                .run(&input[i * len..(i + 1) * len], 1)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(one[0], all[i * 5..(i + 1) * 5], "row {i}");
        }

        // A fixed batch of 2: three rows run as 2 + 1 padded.
        let onnx = pooling_model(
            &[("input", DataType::FLOAT)],
            Dim::Fixed(2),
            vec![],
            "input",
        );
        let mut net = open("pairs", &onnx, pre.clone(), &["y"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(net.fixed_batch(), Some(2));
        let out = net
            .run(&batch_of(&pre, 3), 3)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out[0], [1.0, 2.0, 3.0, 2.0, 4.0, 6.0, 3.0, 6.0, 9.0]);
        let out = net
            .run(&batch_of(&pre, 1), 1)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out[0], [1.0, 2.0, 3.0]);
        // A dynamic batch is left alone.
        let onnx = pooling_model(
            &[("input", DataType::FLOAT)],
            Dim::Named("N".into()),
            vec![],
            "input",
        );
        let net = open("dynamic", &onnx, pre, &["y"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((net.fixed_batch(), net.batch_note(32)), (None, None));
    }

    /// Issue #12: a model with two inputs failed with ONNX Runtime's error at
    /// the first batch instead of saying what headstart feeds.
    #[test]
    fn two_input_model_is_refused_at_open() {
        let onnx = pooling_model(
            &[("a", DataType::FLOAT), ("b", DataType::FLOAT)],
            Dim::Named("N".into()),
            vec![node("Add", "sum", &["a", "b"], &["s"], vec![])],
            "s",
        );
        let e = match open("model.onnx", &onnx, pre8("a"), &["y"]) {
            Ok(_) => panic!("a model with two inputs was opened"),
            Err(e) => e,
        };
        assert!(
            e.contains("model.onnx has 2 inputs (a, b); headstart feeds one float image tensor [N,3,H,W] or [N,H,W,3]"),
            "{e}"
        );
    }

    /// Issue #12: a model with a uint8 input failed with ONNX Runtime's type
    /// error at the first batch.
    #[test]
    fn uint8_input_model_is_refused_at_open() {
        let cast = node(
            "Cast",
            "cast",
            &["x"],
            &["xf"],
            vec![("to", Attr::Int(DataType::FLOAT as i64))],
        );
        let onnx = pooling_model(
            &[("x", DataType::UINT8)],
            Dim::Named("N".into()),
            vec![cast],
            "xf",
        );
        let e = match open("model.onnx", &onnx, pre8("x"), &["y"]) {
            Ok(_) => panic!("a model with a uint8 input was opened"),
            Err(e) => e,
        };
        assert!(
            e.contains("model.onnx: input `x` is uint8; headstart feeds float32"),
            "{e}"
        );
        assert!(
            e.contains("fix: export the model with a float32 input"),
            "{e}"
        );
    }

    /// Issue #12: a 4-D feature tensor was flattened into one row per image.
    #[test]
    fn four_d_feature_output_is_refused() {
        let pre = pre8("image");
        // Declared [N, 16, 1, 1]: refused when the session opens.
        let e = match open(
            "e_no_head",
            &test_model("e_no_head.onnx"),
            pre.clone(),
            &["pooled"],
        ) {
            Ok(_) => panic!("a 4-D output was accepted"),
            Err(e) => e,
        };
        assert!(
            e.contains("e_no_head: the feature tensor `pooled` has shape [?, 16, 1, 1], not [batch, features]"),
            "{e}"
        );
        // Shape not declared: refused at the first batch at the latest.
        let mut g = GraphProto::new();
        g.input.push(value_info(
            "image",
            DataType::FLOAT,
            &nchw(Dim::Named("N".into())),
        ));
        g.node.push(node(
            "GlobalAveragePool",
            "pool",
            &["image"],
            &["map"],
            vec![],
        ));
        let mut out = headstart_onnx::proto::ValueInfoProto::new();
        out.name = "map".into();
        g.output.push(out);
        let onnx = headstart_onnx::encode_model(&model(g, &[])).unwrap_or_else(|e| panic!("{e}"));
        let e = open("maps", &onnx, pre.clone(), &["map"])
            .and_then(|mut net| net.run(&batch_of(&pre, 2), 2).map_err(|e| e.to_string()));
        match e {
            Ok(v) => panic!("a 4-D output was flattened into {} values", v[0].len()),
            Err(e) => assert!(
                e.contains(
                    "the feature tensor `map` has shape [2, 3, 1, 1], not [batch, features]"
                ) || e.contains("the feature tensor `map` has shape [?, 3, 1, 1]"),
                "{e}"
            ),
        }
    }

    #[test]
    fn devices_parse() {
        assert_eq!("cpu".parse::<Device>().unwrap(), Device::Cpu);
        assert_eq!("cuda".parse::<Device>().unwrap(), Device::Cuda(0));
        assert_eq!("cuda:2".parse::<Device>().unwrap(), Device::Cuda(2));
        assert_eq!("tensorrt:1".parse::<Device>().unwrap(), Device::TensorRt(1));
        assert!("cuda:-1".parse::<Device>().is_err());
        let e = "tpu".parse::<Device>().unwrap_err().to_string();
        assert!(
            e.contains("invalid device `tpu`") && e.contains("cuda[:ID]"),
            "{e}"
        );
    }
}
