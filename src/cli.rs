//! Command-line definitions. Every flag is defined once, here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use headstart_api::options::{
    AuditOptions, CompareOptions, EvalOptions, ExportOptions, ExtractOptions, FitOptions,
    PredictOptions, QuantizeOptions,
};

/// Transfer learning on images: extract CNN features once into Parquet, fit
/// classifier heads on them in seconds, export one ONNX classifier.
///
/// Exit status: 0 success, 1 error, 2 usage error, 3 some input files failed
/// (the run finished; `extract` records them in the cache's `errors` Parquet,
/// `predict` prints a row with the error for each).
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
    /// Train a classifier head on cached features, evaluate it and save it to HEAD_DIR.
    Fit(FitArgs),
    /// Evaluate a saved head on other labelled features (writes HEAD_DIR/report_eval.html).
    Eval(EvalArgs),
    /// Find probable label errors and duplicates across classes in labelled features.
    ///
    /// Fits the head K times on K-1 folds for out-of-fold probabilities, then ranks images
    /// by confident learning (Northcutt et al., 2021): an image is flagged when another
    /// class's probability reaches that class's mean self-confidence. Writes
    /// label_issues.csv (path, given label, suggested label, score), audit.json and
    /// audit.html (thumbnails) into --out, and prints the top of the list.
    Audit(AuditArgs),
    /// Which backbone suits this data: extract with each, fit the same head sweep, compare.
    ///
    /// Each backbone gets its own cache (reused on reruns) and head under --out; prints and
    /// saves (compare.csv, compare.svg) test accuracy, macro-F1, extract images/s and
    /// feature dimension.
    Compare(CompareArgs),
    /// Classify images with a saved head (backbone + head), reusing cached features when possible.
    ///
    /// Prints each file's path and its top-k labels with probabilities. The backbone is the
    /// built-in model the head was trained on unless --model says otherwise, and must have the
    /// head's fingerprint; it is only loaded when some file's content hash is not in a --cache
    /// (live `original` rows). A file that cannot be read or decoded gets a row with its error
    /// and the command exits with status 3.
    Predict(PredictArgs),
    /// Export a head, alone or fused with its backbone, as one ONNX classifier.
    ///
    /// Outputs: `probabilities` (float [N, K]) and `label` (int64 [N], the most probable class).
    /// Inputs: the backbone's float tensor (default), `image` (uint8 RGB [N, H, W, 3] at the
    /// model's size, already cropped and resized) with --with-preprocessing, or `features`
    /// (float [N, D]) with --head-only. Class names are in the metadata key
    /// `headstart.class_names` (a JSON list), next to the model name and fingerprint.
    Export(ExportArgs),
}

/// Output formats of `predict`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PredictFormat {
    Table,
    Csv,
    Json,
    Parquet,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// A head saved by `headstart fit`.
    #[arg(value_name = "HEAD_DIR")]
    pub head: PathBuf,
    /// Image files, a folder of images, or a CSV/Parquet manifest with a `path` column; on disk
    /// or in object storage (s3://bucket/x.jpg, a prefix s3://bucket/photos/, a manifest; also
    /// gs://, az://, https://).
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub options: PredictOptions,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: PredictFormat,
    /// Output file (required for parquet; stdout otherwise).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A head saved by `headstart fit`.
    #[arg(value_name = "HEAD_DIR")]
    pub head: PathBuf,
    /// Output .onnx file.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    #[command(flatten)]
    pub options: ExportOptions,
}

#[derive(Debug, Args)]
pub struct FitArgs {
    /// Feature caches (from `headstart extract`) or Parquet files with a `feature` column.
    #[arg(required = true, value_name = "CACHE_DIR")]
    pub caches: Vec<PathBuf>,
    /// Where to save the head (head.safetensors, head.json, metrics.json, confusion matrix
    /// SVG, report.html).
    #[arg(long, value_name = "HEAD_DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub options: FitOptions,
    /// Print the outcome as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct QuantizeArgs {
    /// The float backbone: a built-in name or an .onnx file.
    #[arg(value_name = "MODEL")]
    pub model: String,
    #[command(flatten)]
    pub options: QuantizeOptions,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Labelled feature caches (from `headstart extract`).
    #[arg(required = true, value_name = "CACHE_DIR")]
    pub caches: Vec<PathBuf>,
    /// Folder for label_issues.csv, audit.json and audit.html.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub options: AuditOptions,
    /// Label issues to print (all of them go to label_issues.csv).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub top: usize,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Labelled images: class folders, a manifest, tar shards or image Parquet, on disk or in
    /// object storage (s3://, gs://, az://, https://).
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,
    /// Folder for one cache and one head per backbone and result/ (compare.csv,
    /// compare.svg); caches are reused on reruns.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub options: CompareOptions,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A head saved by `headstart fit`.
    #[arg(value_name = "HEAD_DIR")]
    pub head: PathBuf,
    /// Labelled feature caches made with the same model.
    #[arg(required = true, value_name = "CACHE_DIR")]
    pub caches: Vec<PathBuf>,
    #[command(flatten)]
    pub options: EvalOptions,
    /// Print the metrics as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// A class-folder tree (INPUT/<class>/**/img, optionally under split folders:
    /// train/ val/ test/, also training/ valid/ validation/ testing/, any case),
    /// a CSV or Parquet manifest (columns path, optional label, optional split), or with
    /// --unlabeled a plain folder of images. Also images inside containers, read in place:
    /// WebDataset tar shards (a .tar, a pattern like 'shards/{00000..00127}.tar', or a
    /// folder of .tar files; cache keys <shard>.tar/<key>) and Parquet files with an image
    /// column (a struct {bytes, path} as Hugging Face datasets write, or binary; optional
    /// label and split columns, else the split from the file name, e.g. train-00000-of-00004;
    /// cache keys <file>.parquet/<row>). Each of these may be in object storage, read where it
    /// is: s3://bucket/prefix/, gs://..., az://container/..., or https:// for one tar or
    /// Parquet file; credentials from the provider's standard chain (AWS_*, GOOGLE_*, AZURE_*
    /// variables, profile files, instance metadata).
    pub input: PathBuf,
    /// Cache directory to create or update.
    #[arg(long, value_name = "CACHE_DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub options: ExtractOptions,
    /// Print the summary as one line of JSON on stdout (JSON Lines when shards share a log).
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
    /// Sample data folder (class-folder layout with train/ and test/) [default: the bundled
    /// Fashion-MNIST subset in data/fashion-mnist-mini].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Where the demo writes its cache, head, classifier.onnx and predictions.
    #[arg(long, default_value = "headstart-demo", value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum RuntimeCommand {
    /// Fetch the pinned ONNX Runtime (CPU) wheel through pip, verify it and install the library into the cache.
    ///
    /// With --gpu: the GPU build instead (onnxruntime-gpu plus the CUDA 13 and cuDNN 9
    /// libraries from NVIDIA's PyPI wheels, about 2 GB to download), all in one folder
    /// of the cache. `--device cuda` / `tensorrt` then use it; it prints the library for --ort-lib.
    Install {
        /// Install the GPU build (CUDA 13, cuDNN 9; needs an NVIDIA driver r580 or newer to run).
        #[arg(long)]
        gpu: bool,
        /// With --gpu: add the TensorRT 10 libraries (wheels from https://pypi.nvidia.com:
        /// set PIP_EXTRA_INDEX_URL=https://pypi.nvidia.com or HEADSTART_WHEELHOUSE).
        #[arg(long, requires = "gpu")]
        tensorrt: bool,
    },
}

// Parsed once per process: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Fetch and convert a built-in backbone (default: efficientnet-lite0).
    Fetch {
        /// Built-in model name: efficientnet-lite0, efficientnet-lite1 or efficientnet-lite2.
        #[arg(default_value = "efficientnet-lite0")]
        name: String,
    },
    /// List built-in backbones and the other models in the cache: input size, feature
    /// dimension, parameters, published ImageNet top-1, measured CPU images/s, installed.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write an int8 copy of a float backbone, calibrated on your images, into the cache.
    ///
    /// Per-channel symmetric int8 convolution weights and uint8 activations (QDQ), with
    /// activation ranges at --percentile over --samples images spread over IMAGES; ONNX
    /// Runtime runs it with integer kernels (VNNI where the CPU has it). Then use it like
    /// any model: `extract --model NAME` (its own fingerprint, so its own cache).
    Quantize(QuantizeArgs),
    /// Show a model's inputs, outputs, opset, size and the tensor it would use as features.
    Inspect {
        /// An .onnx file or a built-in model name.
        model: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}
