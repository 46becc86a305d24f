//! Command-line definitions. Every flag is defined once, here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    /// Image files, a folder of images, or a CSV/Parquet manifest with a `path` column.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Reuse features from this cache when a file's content hash is in it.
    #[arg(long, value_name = "CACHE_DIR")]
    pub cache: Vec<PathBuf>,
    /// Labels to print per image.
    #[arg(long, default_value_t = 5, value_name = "K")]
    pub top_k: usize,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: PredictFormat,
    /// Output file (required for parquet; stdout otherwise).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The backbone the head was trained on, when it is not a built-in model (path to .onnx);
    /// its preprocessing flags go with it.
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Images per inference batch.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub batch_size: usize,
    #[command(flatten)]
    pub limits: LimitArgs,
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
    pub force: ForceArgs,
    /// Take uint8 NHWC images at the model's input size and do cast, normalisation and
    /// transpose inside the graph (resize and crop stay outside).
    #[arg(long, conflicts_with = "head_only")]
    pub with_preprocessing: bool,
    /// Export only the head: features -> probabilities.
    #[arg(long)]
    pub head_only: bool,
    /// The backbone the head was trained on, when it is not a built-in model.
    #[command(flatten)]
    pub model: ModelArgs,
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
    pub force: ForceArgs,
    #[command(flatten)]
    pub head: HeadArgs,
    /// Views used for training (default: all stored views); evaluation uses `original`.
    #[arg(long, value_delimiter = ',', value_name = "VIEWS")]
    pub views: Vec<String>,
    /// Drop held-out images that duplicate a training image (same bytes or near-identical features).
    #[arg(long)]
    pub dedupe: bool,
    #[command(flatten)]
    pub report: ReportArgs,
    /// Print the outcome as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// How a head is fitted (shared by fit, audit and compare).
#[derive(Debug, Args, Clone)]
pub struct HeadArgs {
    /// Head: softmax (logistic regression), mlp (one hidden layer) or ncm (nearest class mean).
    #[arg(long, default_value = "softmax", value_name = "KIND")]
    pub head: String,
    /// Hidden units of the mlp head; a comma list sweeps them.
    #[arg(long, value_delimiter = ',', value_name = "N")]
    pub hidden: Vec<usize>,
    /// Solver: auto (L-BFGS for softmax, Adam for mlp), lbfgs, adam, linfa (linfa-logistic reference).
    #[arg(long, default_value = "auto", value_name = "SOLVER")]
    pub solver: String,
    /// Inverse L2 strength with scikit-learn's meaning; a comma list sweeps it (picked on
    /// validation) [default: 1 for fit; 0.01,0.1,1 for audit, whose out-of-fold probabilities
    /// must be calibrated; 0.01,0.1,1,10 for compare].
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "C",
        allow_negative_numbers = true,
        value_parser = parse_c
    )]
    pub c: Vec<f64>,
    /// Class weights: none or balanced (n / (k * n_class)).
    #[arg(long, default_value = "none", value_name = "MODE")]
    pub class_weight: String,
    /// Feature normalisation: standard, l2 or none.
    #[arg(long, default_value = "standard", value_name = "MODE")]
    pub normalize: String,
    /// Fraction held out for validation when the cache gives no val split.
    #[arg(long, default_value_t = 0.2, value_name = "F")]
    pub val_fraction: f64,
    /// Seed of the hash split, the folds and the solvers.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// The HTML report written next to the results.
#[derive(Debug, Args, Clone, Default)]
pub struct ReportArgs {
    /// Do not write the HTML report.
    #[arg(long)]
    pub no_report: bool,
    /// Where the images are, for the report's thumbnails [default: the INPUT that
    /// `extract` recorded in the cache].
    #[arg(long, value_name = "DIR")]
    pub images: Option<PathBuf>,
}

/// Limits on what is read from untrusted inputs.
#[derive(Debug, Args, Clone, Copy)]
pub struct LimitArgs {
    /// Largest image file, tar member or Parquet cell read; larger ones become error rows
    /// ("too large"). Bytes, or with a unit: 512MiB, 2GiB, 100M.
    #[arg(long, default_value = "512MiB", value_name = "SIZE", value_parser = parse_bytes)]
    pub max_file_size: u64,
}

/// Replacing what headstart wrote before.
#[derive(Debug, Args, Clone, Copy, Default)]
pub struct ForceArgs {
    /// Replace headstart's artifacts where it cannot tell that it wrote them: a folder of
    /// head or audit file names without their marker (head.json, audit.json), an existing
    /// --out file of `export`, an installed model name. Files headstart did not write are
    /// never replaced or deleted: a folder holding any is refused, with or without --force.
    #[arg(long)]
    pub force: bool,
}

/// Calibration of an int8 copy (shared by `models quantize` and `extract --precision int8`).
#[derive(Debug, Args, Clone)]
pub struct CalibrationArgs {
    /// Calibration images to use, spread evenly over the listing.
    #[arg(long, default_value_t = 128, value_name = "N")]
    pub samples: usize,
    /// Activation ranges cut at this percentile of the calibration values (outliers saturate).
    #[arg(long, default_value_t = 99.99, value_name = "P")]
    pub percentile: f64,
    /// Conv nodes to keep in float, comma-separated node names (see `models inspect`).
    #[arg(long, value_delimiter = ',', value_name = "NODES")]
    pub keep_float: Vec<String>,
}

#[derive(Debug, Args)]
pub struct QuantizeArgs {
    /// The float backbone: a built-in name or an .onnx file.
    #[arg(value_name = "MODEL")]
    pub model: String,
    /// Images to calibrate on: a folder (any layout), a manifest, tar shards or image Parquet.
    #[arg(long, value_name = "IMAGES")]
    pub calibrate: PathBuf,
    /// Name to install the int8 model under (then `--model NAME`).
    #[arg(long, value_name = "NAME")]
    pub out: String,
    #[command(flatten)]
    pub force: ForceArgs,
    #[command(flatten)]
    pub calibration: CalibrationArgs,
    #[command(flatten)]
    pub recipe: RecipeArgs,
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
    pub force: ForceArgs,
    /// Folds of the out-of-fold probabilities (each fits one head).
    #[arg(long, default_value_t = 5, value_name = "K")]
    pub folds: usize,
    /// Label issues to print (all of them go to label_issues.csv).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub top: usize,
    #[command(flatten)]
    pub head: HeadArgs,
    #[command(flatten)]
    pub report: ReportArgs,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Labelled images: class folders, a manifest, tar shards or image Parquet.
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,
    /// Backbones to compare, comma-separated (built-in names or .onnx paths).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "efficientnet-lite0,efficientnet-lite1,efficientnet-lite2",
        value_name = "A,B,..",
        value_parser = parse_model_spec
    )]
    pub models: Vec<String>,
    /// Folder for one cache and one head per backbone, compare.csv and compare.svg;
    /// caches are reused on reruns.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub force: ForceArgs,
    /// Preprocessing of the backbones given as .onnx files (built-in ones carry their own).
    #[command(flatten)]
    pub recipe: RecipeArgs,
    #[command(flatten)]
    pub head: HeadArgs,
    /// Written as report.html in each backbone's head folder.
    #[command(flatten)]
    pub report: ReportArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A head saved by `headstart fit`.
    #[arg(value_name = "HEAD_DIR")]
    pub head: PathBuf,
    /// Labelled feature caches made with the same model.
    #[arg(required = true, value_name = "CACHE_DIR")]
    pub caches: Vec<PathBuf>,
    /// Only rows of this split (train, val, test).
    #[arg(long, value_name = "SPLIT")]
    pub split: Option<String>,
    /// Written as report_eval.html in HEAD_DIR.
    #[command(flatten)]
    pub report: ReportArgs,
    /// Print the metrics as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Which backbone and how images are preprocessed for it.
#[derive(Debug, Args, Clone)]
pub struct ModelArgs {
    /// Built-in backbone name or path to an .onnx file [default: efficientnet-lite0; for
    /// predict and export: the model the head was trained on, when it is built in].
    #[arg(long, value_name = "NAME|PATH")]
    pub model: Option<String>,
    #[command(flatten)]
    pub recipe: RecipeArgs,
}

/// Which tensor of a backbone is the feature vector, and how images are
/// preprocessed for it (built-in backbones carry their own; the flags override).
#[derive(Debug, Args, Clone)]
pub struct RecipeArgs {
    /// Feature tensor: `auto` (the model's features, or the input of a classifier's final
    /// fully connected layer) or any tensor name (see `headstart models inspect`).
    #[arg(long, default_value = "auto", value_name = "auto|TENSOR")]
    pub features: String,
    /// Preprocessing preset: `imagenet` (crop 0.875, bilinear, ImageNet mean/std) or
    /// `tf-lite` (crop 0.875, bicubic, (x-127)/128). Built-in models carry their own.
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,
    /// Square input size in pixels (overrides the preset).
    #[arg(long, value_name = "PX", value_parser = parse_size)]
    pub size: Option<u32>,
    /// Centre crop as a fraction of the shorter side, e.g. 0.875 (1 = no crop).
    #[arg(long, value_name = "FRACTION", value_parser = parse_crop)]
    pub crop: Option<f32>,
    /// Per-channel mean on the 0-255 scale, R,G,B.
    #[arg(long, value_name = "R,G,B", value_parser = parse_mean)]
    pub mean: Option<[f32; 3]>,
    /// Per-channel std on the 0-255 scale, R,G,B.
    #[arg(long, value_name = "R,G,B", value_parser = parse_std)]
    pub std: Option<[f32; 3]>,
    /// Resize filter.
    #[arg(long, value_enum)]
    pub filter: Option<FilterArg>,
    /// Input layout.
    #[arg(long, value_enum)]
    pub layout: Option<LayoutArg>,
    /// Decode JPEGs at full size. By default a JPEG whose crop is at least twice the
    /// model's input size is decoded at a reduced DCT scale (1/2, 1/4 or 1/8, as
    /// Pillow's draft() does): big photos decode several times faster, features
    /// differ slightly. The choice is part of the model fingerprint.
    #[arg(long)]
    pub exact_decode: bool,
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
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("`{x}` is not a number"))
        })
        .collect::<Result<_, _>>()?;
    <[f32; 3]>::try_from(v).map_err(|_| format!("`{s}` needs three comma-separated numbers"))
}

fn parse_mean(s: &str) -> Result<[f32; 3], String> {
    parse_triple(s)
}

fn parse_std(s: &str) -> Result<[f32; 3], String> {
    let v = parse_triple(s)?;
    if v.iter().any(|&x| x <= 0.0) {
        return Err("each standard deviation must be above 0, e.g. 58.4,57.1,57.4".into());
    }
    Ok(v)
}

fn parse_crop(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err("use a fraction of the shorter side above 0 and at most 1, e.g. 0.875".into()),
    }
}

/// The largest square input `--size` accepts.
const MAX_SIZE: u32 = 4096;

fn parse_size(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(v) if (1..=MAX_SIZE).contains(&v) => Ok(v),
        _ => Err(format!("use 1 to {MAX_SIZE} pixels, e.g. 224")),
    }
}

/// A byte count: a number, optionally with a unit (K, M, G, T, with or without
/// `iB`/`B`; all binary: 1M = 1MiB = 1,048,576 bytes).
fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err("use bytes or a size like 512MiB, 2GiB, 100M".into()),
    };
    match num
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_shl(shift).filter(|v| v >> shift == n))
    {
        Some(v) if v > 0 => Ok(v),
        _ => Err("use a size above 0, e.g. 512MiB".into()),
    }
}

fn parse_c(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err("C is an inverse regularisation strength above 0, e.g. 0.01,0.1,1,10".into()),
    }
}

fn parse_model_spec(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err(
            "an empty backbone name; list built-in names or .onnx paths, e.g. efficientnet-lite0,my.onnx"
                .into(),
        );
    }
    Ok(s.to_string())
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
    /// ONNX Runtime intra-op threads [default: number of cores; at most 4 per core, or 16].
    #[arg(long, value_name = "N")]
    pub intra_threads: Option<usize>,
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
    /// cache keys <file>.parquet/<row>).
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
    /// Decode threads [default: number of cores; at most 4 per core, or 16].
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
    /// Tar shards: where a sample's label comes from: its .cls member, its .txt member,
    /// or a field of its .json member.
    #[arg(long, default_value = "cls", value_name = "cls|txt|json:FIELD")]
    pub label_from: String,
    /// Stop at the first file that cannot be read or decoded (default: record it and go on).
    #[arg(long)]
    pub strict: bool,
    /// Let this run remove every image the cache holds when none of them is in INPUT
    /// (without it, such a run is refused: it usually means another dataset was pointed
    /// at the same --out). Files deleted from INPUT are always removed from the cache.
    #[arg(long)]
    pub prune: bool,
    /// Only extract shard I of N (0-based), chosen by a stable hash of each path.
    /// Defaults from JOB_COMPLETION_INDEX (+ HEADSTART_SHARD_COUNT), SLURM_ARRAY_TASK_ID/COUNT
    /// or AWS_BATCH_JOB_ARRAY_INDEX/SIZE when set.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Write a part at least every N images (crash safety: a kill loses at most this much work).
    #[arg(long, default_value_t = 2048, value_name = "N")]
    pub flush_every: usize,
    /// Inference precision: fp32, or int8 (an int8 copy of the model calibrated on a
    /// sample of INPUT the first time, installed as `<model>-int8-<hash>` and reused;
    /// its features have their own fingerprint, so they go to their own cache).
    #[arg(long, default_value = "fp32", value_parser = ["fp32", "int8"], value_name = "fp32|int8")]
    pub precision: String,
    #[command(flatten)]
    pub calibration: CalibrationArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
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
