//! Command-line definitions. Every flag is defined once, here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Transfer learning on images: extract CNN features once into Parquet, fit
/// classifier heads on them in seconds, export one ONNX classifier.
///
/// Exit status: 0 success, 1 error, 2 usage error, 3 some input files failed
/// (the run finished; see the `errors` Parquet in the cache).
#[derive(Debug, Parser)]
#[command(name = "headstart", version, about, long_about)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command understands.
#[derive(Debug, Args)]
pub struct Global {
    /// ONNX Runtime shared library to load (libonnxruntime.so, version 1.31 or newer).
    /// Without it, headstart uses its cached copy, fetching the pinned CPU build through pip on first need.
    #[arg(long, global = true, env = "ORT_DYLIB_PATH", value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
    /// Cache for the runtime, models and wheels [default: ~/.cache/headstart].
    #[arg(long, global = true, env = "HEADSTART_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Print only results and errors.
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

// Parsed once per process: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole workflow on the bundled sample data (provisions everything on first run).
    Demo(DemoArgs),
    /// Check the runtime, execution providers, default model and cache; print fixes for what is missing.
    Doctor,
    /// Manage the ONNX Runtime library.
    #[command(subcommand)]
    Runtime(RuntimeCommand),
    /// Fetch, list and inspect backbones.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Extract one feature vector per image (and view) into a Parquet cache; reruns only do new work.
    Extract(ExtractArgs),
    /// Maintain a feature cache.
    #[command(subcommand)]
    Cache(CacheCommand),
}

/// Which backbone and how images are preprocessed for it.
#[derive(Debug, Args, Clone)]
pub struct ModelArgs {
    /// Built-in backbone name or path to an .onnx file.
    #[arg(long, default_value = "efficientnet-lite0", value_name = "NAME|PATH")]
    pub model: String,
    /// Feature tensor: `auto` (the model's features, or the input of a classifier's final
    /// fully connected layer) or any tensor name (see `headstart models inspect`).
    #[arg(long, default_value = "auto", value_name = "auto|TENSOR")]
    pub features: String,
    /// Preprocessing preset: `imagenet` (crop 0.875, bilinear, ImageNet mean/std) or
    /// `tf-lite` (crop 0.875, bicubic, (x-127)/128). Built-in models carry their own.
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,
    /// Square input size in pixels (overrides the preset).
    #[arg(long, value_name = "PX")]
    pub size: Option<u32>,
    /// Centre crop as a fraction of the shorter side, e.g. 0.875 (1 = no crop).
    #[arg(long, value_name = "FRACTION")]
    pub crop: Option<f32>,
    /// Per-channel mean on the 0-255 scale, R,G,B.
    #[arg(long, value_name = "R,G,B", value_parser = parse_triple)]
    pub mean: Option<[f32; 3]>,
    /// Per-channel std on the 0-255 scale, R,G,B.
    #[arg(long, value_name = "R,G,B", value_parser = parse_triple)]
    pub std: Option<[f32; 3]>,
    /// Resize filter.
    #[arg(long, value_enum)]
    pub filter: Option<FilterArg>,
    /// Input layout.
    #[arg(long, value_enum)]
    pub layout: Option<LayoutArg>,
}

/// Resize filters.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FilterArg {
    Nearest,
    Bilinear,
    Bicubic,
    Lanczos3,
}

/// Tensor layouts.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LayoutArg {
    Nchw,
    Nhwc,
}

fn parse_triple(s: &str) -> Result<[f32; 3], String> {
    let v: Vec<f32> = s
        .split(',')
        .map(|x| {
            x.trim()
                .parse::<f32>()
                .map_err(|_| format!("`{x}` is not a number"))
        })
        .collect::<Result<_, _>>()?;
    <[f32; 3]>::try_from(v).map_err(|_| format!("`{s}` needs three comma-separated numbers"))
}

/// Where inference runs.
#[derive(Debug, Args, Clone)]
pub struct DeviceArgs {
    /// Execution provider: cpu, cuda[:ID] or tensorrt[:ID].
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    pub device: String,
    /// If the requested GPU provider cannot be used, run on CPU instead of failing.
    #[arg(long)]
    pub allow_cpu_fallback: bool,
    /// TensorRT: build fp16 engines (the first run builds and caches the engine; this takes minutes).
    #[arg(long)]
    pub fp16: bool,
    /// ONNX Runtime intra-op threads [default: number of cores].
    #[arg(long, value_name = "N")]
    pub intra_threads: Option<usize>,
}

#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// A class-folder tree (INPUT/<class>/**/img, optionally under train/ val/ test/),
    /// a CSV or Parquet manifest (columns path, optional label, optional split), or with
    /// --unlabeled a plain folder of images.
    pub input: PathBuf,
    /// Cache directory to create or update.
    #[arg(long, value_name = "CACHE_DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Images per inference batch.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub batch_size: usize,
    /// Decode threads [default: number of cores].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Views stored per image, comma-separated: original, hflip.
    #[arg(
        long,
        default_value = "original",
        value_delimiter = ',',
        value_name = "VIEWS"
    )]
    pub views: Vec<String>,
    /// INPUT is a plain folder of images without class folders.
    #[arg(long)]
    pub unlabeled: bool,
    /// Stop at the first file that cannot be read or decoded (default: record it and go on).
    #[arg(long)]
    pub strict: bool,
    /// Only extract shard I of N (0-based), chosen by a stable hash of each path.
    /// Defaults from JOB_COMPLETION_INDEX (+ HEADSTART_SHARD_COUNT), SLURM_ARRAY_TASK_ID/COUNT
    /// or AWS_BATCH_JOB_ARRAY_INDEX/SIZE when set.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Write a part at least every N images (crash safety: a kill loses at most this much work).
    #[arg(long, default_value_t = 2048, value_name = "N")]
    pub flush_every: usize,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Rewrite the cache's parts without superseded or deleted rows.
    Compact {
        /// Cache directory.
        cache: PathBuf,
    },
    /// Show what a cache holds.
    Info {
        /// Cache directory.
        cache: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Sample data folder (class-folder layout with train/ and test/).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum RuntimeCommand {
    /// Fetch the pinned ONNX Runtime (CPU) wheel through pip, verify it and install the library into the cache.
    Install,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Fetch and convert a built-in backbone (default: efficientnet-lite0).
    Fetch {
        /// Built-in model name.
        #[arg(default_value = "efficientnet-lite0")]
        name: String,
    },
    /// List built-in backbones and whether they are installed.
    List,
    /// Show a model's inputs, outputs, opset, size and the tensor it would use as features.
    Inspect {
        /// An .onnx file or a built-in model name.
        model: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}
