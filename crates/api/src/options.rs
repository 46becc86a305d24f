//! The options of the library calls, one struct per group, each field defined
//! once: the CLI flattens these structs into its commands (feature `cli`, the
//! doc comments are its `--help`), Python fills them from keyword arguments of
//! the same names, and [`Default`] gives the same defaults to both. Values are
//! checked by the call that takes them, before any work.

#[cfg(feature = "cli")]
use clap::Args;
use serde::{Deserialize, Serialize};

/// The default backbone.
pub const DEFAULT_MODEL: &str = headstart_models::zoo::DEFAULT_MODEL;

/// Which tensor of a backbone is the feature vector, and how images are
/// preprocessed for it (built-in backbones carry their own; these override).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "cli", derive(Args))]
pub struct Recipe {
    /// Feature tensor: `auto` (the model's features, the input of a classifier's final
    /// fully connected layer, or a headless model's one-vector-per-image output) or any
    /// tensor name (see `headstart models inspect`).
    #[cfg_attr(
        feature = "cli",
        arg(long, default_value = "auto", value_name = "auto|TENSOR")
    )]
    pub features: String,
    /// Preprocessing preset: `imagenet` (crop 0.875, bilinear, ImageNet mean/std),
    /// `tf-lite` (crop 0.875, bicubic, (x-127)/128), `clip` (crop 1, bicubic, CLIP's
    /// mean/std) or `dinov2` (crop 0.875, bicubic, ImageNet mean/std). Built-in models
    /// carry their own.
    #[cfg_attr(feature = "cli", arg(long, value_name = "NAME"))]
    pub preset: Option<String>,
    /// Square input size in pixels (overrides the preset).
    #[cfg_attr(feature = "cli", arg(long, value_name = "PX"))]
    pub size: Option<u32>,
    /// Centre crop as a fraction of the shorter side, e.g. 0.875 (1 = no crop).
    #[cfg_attr(feature = "cli", arg(long, value_name = "FRACTION"))]
    pub crop: Option<f32>,
    /// Per-channel mean on the 0-255 scale, R,G,B.
    #[cfg_attr(feature = "cli", arg(long, value_name = "R,G,B", value_parser = parse_triple))]
    pub mean: Option<[f32; 3]>,
    /// Per-channel std on the 0-255 scale, R,G,B.
    #[cfg_attr(feature = "cli", arg(long, value_name = "R,G,B", value_parser = parse_triple))]
    pub std: Option<[f32; 3]>,
    /// Resize filter: nearest, bilinear, bicubic or lanczos3.
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILTER"))]
    pub filter: Option<String>,
    /// Input layout: nchw or nhwc.
    #[cfg_attr(feature = "cli", arg(long, value_name = "LAYOUT"))]
    pub layout: Option<String>,
    /// Decode JPEGs at full size. By default a JPEG whose crop is at least four times the
    /// model's input size is decoded at a reduced DCT scale (1/4 or 1/8, as Pillow's
    /// draft() does, with the same pixels): big photos decode several times faster. The
    /// choice is part of the model fingerprint.
    #[cfg_attr(feature = "cli", arg(long))]
    pub exact_decode: bool,
}

impl Default for Recipe {
    fn default() -> Self {
        Recipe {
            features: "auto".into(),
            preset: None,
            size: None,
            crop: None,
            mean: None,
            std: None,
            filter: None,
            layout: None,
            exact_decode: false,
        }
    }
}

/// Which backbone, and its recipe.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "cli", derive(Args))]
pub struct Backbone {
    /// Built-in backbone name or path to an .onnx file [default: efficientnet-lite0; for
    /// predict and export: the model the head was trained on, when it is built in].
    #[cfg_attr(feature = "cli", arg(long, value_name = "NAME|PATH"))]
    pub model: Option<String>,
    /// The preprocessing recipe.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub recipe: Recipe,
}

/// Where inference runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "cli", derive(Args))]
pub struct DeviceOptions {
    /// Execution provider: `cpu`, `cuda[:ID]` or `tensorrt[:ID]`.
    #[cfg_attr(
        feature = "cli",
        arg(long, default_value = "cpu", value_name = "DEVICE")
    )]
    pub device: String,
    /// If the requested GPU provider cannot be used, run on CPU instead of failing.
    #[cfg_attr(feature = "cli", arg(long))]
    pub allow_cpu_fallback: bool,
    /// TensorRT: build fp16 engines (the first run builds and caches the engine; this takes minutes).
    #[cfg_attr(feature = "cli", arg(long))]
    pub fp16: bool,
    /// ONNX Runtime intra-op threads [default: number of cores; at most 4 per core, or 16].
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub intra_threads: Option<usize>,
}

impl Default for DeviceOptions {
    fn default() -> Self {
        DeviceOptions {
            device: "cpu".into(),
            allow_cpu_fallback: false,
            fp16: false,
            intra_threads: None,
        }
    }
}

/// How a head is fitted (fit, audit and compare).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "cli", derive(Args))]
pub struct HeadOptions {
    /// Head: softmax (logistic regression), mlp (one hidden layer) or ncm (nearest class mean).
    #[cfg_attr(
        feature = "cli",
        arg(long, default_value = "softmax", value_name = "KIND")
    )]
    pub head: String,
    /// Hidden units of the mlp head; a comma list sweeps them.
    #[cfg_attr(feature = "cli", arg(long, value_delimiter = ',', value_name = "N"))]
    pub hidden: Vec<usize>,
    /// Solver: auto (L-BFGS for softmax, Adam for mlp), lbfgs, adam, linfa (linfa-logistic reference).
    #[cfg_attr(
        feature = "cli",
        arg(long, default_value = "auto", value_name = "SOLVER")
    )]
    pub solver: String,
    /// Inverse L2 strength with scikit-learn's meaning; a comma list sweeps it (picked on
    /// validation) [default: 1 for fit; 0.01,0.1,1 for audit, whose out-of-fold probabilities
    /// must be calibrated; 0.01,0.1,1,10 for compare].
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_delimiter = ',',
            value_name = "C",
            allow_negative_numbers = true
        )
    )]
    pub c: Vec<f64>,
    /// Class weights: none or balanced (n / (k * n_class)).
    #[cfg_attr(
        feature = "cli",
        arg(long, default_value = "none", value_name = "MODE")
    )]
    pub class_weight: String,
    /// Feature normalisation: standard, l2 or none.
    #[cfg_attr(
        feature = "cli",
        arg(long, default_value = "standard", value_name = "MODE")
    )]
    pub normalize: String,
    /// Fraction held out for validation when the cache gives no val split.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.2, value_name = "F"))]
    pub val_fraction: f64,
    /// Seed of the hash split, the folds and the solvers.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
}

impl Default for HeadOptions {
    fn default() -> Self {
        HeadOptions {
            head: "softmax".into(),
            hidden: Vec::new(),
            solver: "auto".into(),
            c: Vec::new(),
            class_weight: "none".into(),
            normalize: "standard".into(),
            val_fraction: 0.2,
            seed: 0,
        }
    }
}

/// The HTML report written next to the results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "cli", derive(Args))]
pub struct ReportOptions {
    /// Do not write the HTML report.
    #[cfg_attr(feature = "cli", arg(long))]
    pub no_report: bool,
    /// Where the images are, for the report's thumbnails: a folder, manifest or container
    /// input, or its URL in object storage [default: the INPUT (and endpoint) that `extract`
    /// recorded in the cache].
    #[cfg_attr(feature = "cli", arg(long, value_name = "DIR"))]
    pub images: Option<std::path::PathBuf>,
}

/// Calibration of an int8 copy (models quantize, extract with precision int8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "cli", derive(Args))]
pub struct Calibration {
    /// Calibration images to use, spread evenly over the listing.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 128, value_name = "N"))]
    pub samples: usize,
    /// Activation ranges cut at this percentile of the calibration values (outliers saturate).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 99.99, value_name = "P"))]
    pub percentile: f64,
    /// Conv nodes to keep in float, comma-separated node names (see `models inspect`).
    #[cfg_attr(
        feature = "cli",
        arg(long, value_delimiter = ',', value_name = "NODES")
    )]
    pub keep_float: Vec<String>,
}

impl Default for Calibration {
    fn default() -> Self {
        Calibration {
            samples: 128,
            percentile: 99.99,
            keep_float: Vec::new(),
        }
    }
}

/// Limits on what is read from untrusted inputs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "cli", derive(Args))]
pub struct Limits {
    /// Largest image file, tar member or Parquet cell read; larger ones become error rows
    /// ("too large"). Bytes, or with a unit: 512MiB, 2GiB, 100M.
    #[cfg_attr(
        feature = "cli",
        arg(long, default_value = "512MiB", value_name = "SIZE", value_parser = parse_bytes)
    )]
    pub max_file_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_size: headstart_files::DEFAULT_MAX_FILE_SIZE,
        }
    }
}

/// Reading INPUT in object storage (`s3://`, `gs://`, `az://`, `https://`).
/// Credentials come from the provider's standard chain (environment, profile
/// files, instance metadata), never from a flag.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "cli", derive(Args))]
pub struct StoreOptions {
    /// S3-compatible endpoint (MinIO, Ceph, ...; or an Azure endpoint) for INPUT URLs:
    /// requests go there, path-style; http:// is allowed when given [default:
    /// AWS_ENDPOINT_URL, the profile's endpoint_url, else the provider's own].
    #[cfg_attr(feature = "cli", arg(long, value_name = "URL"))]
    pub endpoint: Option<String>,
    /// Object-store requests in flight at once [default: 16 per core, 16 to 64].
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub io_concurrency: Option<usize>,
}

impl StoreOptions {
    /// The extract crate's settings of these options (defaults filled in).
    pub fn access(&self) -> headstart_extract::remote::Access {
        let default = headstart_extract::remote::Access::default();
        headstart_extract::remote::Access {
            endpoint: self.endpoint.clone(),
            io_concurrency: self.io_concurrency.unwrap_or(default.io_concurrency),
        }
    }
}

/// Replacing what headstart wrote before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "cli", derive(Args))]
pub struct Force {
    /// Replace headstart's artifacts where it cannot tell that it wrote them: a folder of
    /// head or audit file names without their marker (head.json, audit.json), an existing
    /// export file, an installed model name. Files headstart did not write are never
    /// replaced or deleted: a folder holding any is refused, with or without force.
    #[cfg_attr(feature = "cli", arg(long))]
    pub force: bool,
}

/// `extract`: everything but the input and the cache folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "cli", derive(Args))]
pub struct ExtractOptions {
    /// The backbone and its recipe.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub backbone: Backbone,
    /// Where inference runs.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub device: DeviceOptions,
    /// Images per inference batch.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 32, value_name = "N"))]
    pub batch_size: usize,
    /// Decode threads [default: number of cores; at most 4 per core, or 16].
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub threads: Option<usize>,
    /// Views stored per image, comma-separated: original, hflip.
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            default_value = "original",
            value_delimiter = ',',
            value_name = "VIEWS"
        )
    )]
    pub views: Vec<String>,
    /// INPUT is a plain folder of images without class folders.
    #[cfg_attr(feature = "cli", arg(long))]
    pub unlabeled: bool,
    /// Tar shards: where a sample's label comes from: its .cls member, its .txt member,
    /// or a field of its .json member.
    #[cfg_attr(
        feature = "cli",
        arg(long, default_value = "cls", value_name = "cls|txt|json:FIELD")
    )]
    pub label_from: String,
    /// Stop at the first file that cannot be read or decoded (default: record it and go on).
    #[cfg_attr(feature = "cli", arg(long))]
    pub strict: bool,
    /// Let this run remove every image the cache holds when none of them is in INPUT
    /// (without it, such a run is refused: it usually means another dataset was pointed
    /// at the same --out). Files deleted from INPUT are always removed from the cache.
    #[cfg_attr(feature = "cli", arg(long))]
    pub prune: bool,
    /// Only extract shard I of N (0-based), chosen by a stable hash of each path.
    /// Defaults from JOB_COMPLETION_INDEX (+ HEADSTART_SHARD_COUNT), SLURM_ARRAY_TASK_ID/COUNT
    /// or AWS_BATCH_JOB_ARRAY_INDEX/SIZE when set.
    #[cfg_attr(feature = "cli", arg(long, value_name = "I/N"))]
    pub shard: Option<String>,
    /// Write a part at least every N images (crash safety: a kill loses at most this much work).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 2048, value_name = "N"))]
    pub flush_every: usize,
    /// Inference precision: fp32, or int8 (an int8 copy of the model calibrated on a
    /// sample of INPUT the first time, installed as `<model>-int8-<hash>` and reused;
    /// its features have their own fingerprint, so they go to their own cache).
    #[cfg_attr(
        feature = "cli",
        arg(long, default_value = "fp32", value_name = "fp32|int8")
    )]
    pub precision: String,
    /// Calibration of an int8 copy.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub calibration: Calibration,
    /// Limits on what is read.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub limits: Limits,
    /// Reading INPUT in object storage.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub store: StoreOptions,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            backbone: Backbone::default(),
            device: DeviceOptions::default(),
            batch_size: 32,
            threads: None,
            views: vec!["original".into()],
            unlabeled: false,
            label_from: "cls".into(),
            strict: false,
            prune: false,
            shard: None,
            flush_every: 2048,
            precision: "fp32".into(),
            calibration: Calibration::default(),
            limits: Limits::default(),
            store: StoreOptions::default(),
        }
    }
}

/// `fit`: everything but the caches and the head folder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "cli", derive(Args))]
pub struct FitOptions {
    /// Replacing what headstart wrote before.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub force: Force,
    /// How the head is fitted.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub head: HeadOptions,
    /// Views used for training (default: all stored views); evaluation uses `original`.
    #[cfg_attr(
        feature = "cli",
        arg(long, value_delimiter = ',', value_name = "VIEWS")
    )]
    pub views: Vec<String>,
    /// Drop held-out images that duplicate a training image (same bytes or near-identical features).
    #[cfg_attr(feature = "cli", arg(long))]
    pub dedupe: bool,
    /// The HTML report.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub report: ReportOptions,
}

/// `eval`: everything but the head and the caches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "cli", derive(Args))]
pub struct EvalOptions {
    /// Only rows of this split (train, val, test).
    #[cfg_attr(feature = "cli", arg(long, value_name = "SPLIT"))]
    pub split: Option<String>,
    /// Written as report_eval.html in HEAD_DIR.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub report: ReportOptions,
}

/// `audit`: everything but the caches and the output folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "cli", derive(Args))]
pub struct AuditOptions {
    /// Replacing what headstart wrote before.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub force: Force,
    /// Folds of the out-of-fold probabilities (each fits one head).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 5, value_name = "K"))]
    pub folds: usize,
    /// How the head is fitted.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub head: HeadOptions,
    /// The HTML report.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub report: ReportOptions,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            force: Force::default(),
            folds: 5,
            head: HeadOptions::default(),
            report: ReportOptions::default(),
        }
    }
}

/// `compare`: everything but the input and the output folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "cli", derive(Args))]
pub struct CompareOptions {
    /// Backbones to compare, comma-separated (built-in names or .onnx paths).
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_delimiter = ',',
            default_value = "efficientnet-lite0,efficientnet-lite1,efficientnet-lite2",
            value_name = "A,B,.."
        )
    )]
    pub models: Vec<String>,
    /// Replacing what headstart wrote before.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub force: Force,
    /// Preprocessing of the backbones given as .onnx files (built-in ones carry their own).
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub recipe: Recipe,
    /// How the head is fitted.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub head: HeadOptions,
    /// Written as report.html in each backbone's head folder.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub report: ReportOptions,
    /// Where inference runs.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub device: DeviceOptions,
    /// Reading INPUT in object storage.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub store: StoreOptions,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            models: headstart_models::zoo::BUILTIN
                .iter()
                .map(|s| s.to_string())
                .collect(),
            force: Force::default(),
            recipe: Recipe::default(),
            head: HeadOptions::default(),
            report: ReportOptions::default(),
            device: DeviceOptions::default(),
            store: StoreOptions::default(),
        }
    }
}

/// `predict`: everything but the head, the inputs and how results are shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "cli", derive(Args))]
pub struct PredictOptions {
    /// Reuse features from this cache when a file's content hash is in it.
    #[cfg_attr(feature = "cli", arg(long, value_name = "CACHE_DIR"))]
    pub cache: Vec<std::path::PathBuf>,
    /// Labels kept per image.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 5, value_name = "K"))]
    pub top_k: usize,
    /// The backbone the head was trained on, when it is not a built-in model (path to .onnx);
    /// its preprocessing flags go with it.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub backbone: Backbone,
    /// Where inference runs.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub device: DeviceOptions,
    /// Images per inference batch.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 32, value_name = "N"))]
    pub batch_size: usize,
    /// Limits on what is read.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub limits: Limits,
    /// Reading images in object storage.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub store: StoreOptions,
}

impl Default for PredictOptions {
    fn default() -> Self {
        PredictOptions {
            cache: Vec::new(),
            top_k: 5,
            backbone: Backbone::default(),
            device: DeviceOptions::default(),
            batch_size: 32,
            limits: Limits::default(),
            store: StoreOptions::default(),
        }
    }
}

/// `export`: everything but the head and the output file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "cli", derive(Args))]
pub struct ExportOptions {
    /// Replacing what headstart wrote before.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub force: Force,
    /// Take uint8 NHWC images at the model's input size and do cast, normalisation and
    /// transpose inside the graph (resize and crop stay outside).
    #[cfg_attr(feature = "cli", arg(long, conflicts_with = "head_only"))]
    pub with_preprocessing: bool,
    /// Export only the head: features -> probabilities.
    #[cfg_attr(feature = "cli", arg(long))]
    pub head_only: bool,
    /// The backbone the head was trained on, when it is not a built-in model.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub backbone: Backbone,
}

/// `models quantize`: everything but the float model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "cli", derive(Args))]
pub struct QuantizeOptions {
    /// Images to calibrate on: a folder (any layout), a manifest, tar shards or image Parquet,
    /// on disk or in object storage (s3://, gs://, az://, https://).
    #[cfg_attr(feature = "cli", arg(long, value_name = "IMAGES"))]
    pub calibrate: std::path::PathBuf,
    /// Name to install the int8 model under (then `--model NAME`).
    #[cfg_attr(feature = "cli", arg(long, value_name = "NAME"))]
    pub out: String,
    /// Replacing what headstart wrote before.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub force: Force,
    /// Calibration of an int8 copy.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub calibration: Calibration,
    /// The preprocessing recipe.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub recipe: Recipe,
    /// Reading calibration images in object storage.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub store: StoreOptions,
}

/// Three comma-separated numbers, `R,G,B`.
pub fn parse_triple(s: &str) -> Result<[f32; 3], String> {
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

/// A byte count: a number, optionally with a unit (K, M, G, T, with or without
/// `iB`/`B`; all binary: 1M = 1MiB = 1,048,576 bytes).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => {
            return Err(format!(
                "`{s}`: use bytes or a size like 512MiB, 2GiB, 100M"
            ));
        }
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_shl(shift).filter(|v| v >> shift == n))
        .ok_or_else(|| format!("`{s}` is not a size, e.g. 512MiB"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("2G"), Ok(2 << 30));
        assert_eq!(parse_bytes("100"), Ok(100));
        assert!(parse_bytes("1.5G").is_err());
        assert!(parse_bytes("99999999999999999999T").is_err());
        assert_eq!(parse_triple("1, 2,3"), Ok([1.0, 2.0, 3.0]));
        assert!(parse_triple("1,2").is_err());
    }
}
