//! The extract pipeline: list -> (read, hash, decode, preprocess) in parallel ->
//! batches through a bounded queue -> inference -> Parquet writer, each stage on
//! its own threads. Memory is bounded by the queue depth, whatever the input size.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use headstart_cache::{Cache, CacheInfo, ErrorRow, LiveIndex, LockKind, PartWriter, Row, RunInfo};
use rayon::prelude::*;
use serde::Serialize;

use headstart_models::Preprocess;

use std::sync::Arc;

use crate::ExtractError;
use crate::container::{self, Fetch, LabelFrom};
use crate::features::FeatureModel;
use crate::input::{self, Item};
use crate::isolate;
use crate::remote::Access;
use crate::tensor::{Preprocessor, normalize_into};

/// An augmented view stored as its own row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum View {
    /// The image as preprocessed.
    Original,
    /// Mirrored left-right.
    Hflip,
}

impl View {
    /// The name stored in the `view` column.
    pub fn name(self) -> &'static str {
        match self {
            View::Original => headstart_cache::ORIGINAL_VIEW,
            View::Hflip => headstart_cache::HFLIP_VIEW,
        }
    }
}

impl std::str::FromStr for View {
    type Err = ExtractError;
    fn from_str(s: &str) -> Result<View, ExtractError> {
        match s.trim() {
            headstart_cache::ORIGINAL_VIEW => Ok(View::Original),
            headstart_cache::HFLIP_VIEW => Ok(View::Hflip),
            other => Err(ExtractError::Param {
                name: "views",
                value: other.to_string(),
                message: "unknown view; views: original, hflip".into(),
            }),
        }
    }
}

/// Shard `index` of `count`: the images whose path hash falls in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0-based shard index.
    pub index: u32,
    /// Number of shards.
    pub count: u32,
}

impl Shard {
    /// Whether `rel_path` belongs to this shard (stable across machines and runs).
    /// Samples of a tar shard or rows of a Parquet file (`x.tar/key`,
    /// `x.parquet/17`) go with their file, so each process reads only its files.
    pub fn owns(&self, rel_path: &str) -> bool {
        let unit = [".tar/", ".parquet/"]
            .iter()
            .find_map(|c| rel_path.find(c).map(|at| &rel_path[..at + c.len() - 1]))
            .unwrap_or(rel_path);
        let h = blake3::hash(unit.as_bytes());
        let v = u64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap_or_default());
        v % u64::from(self.count) == u64::from(self.index)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = ExtractError;
    /// `I/N` with `0 <= I < N`.
    fn from_str(s: &str) -> Result<Shard, ExtractError> {
        let bad = |message: String| ExtractError::Param {
            name: "shard",
            value: s.to_string(),
            message,
        };
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| bad("must look like I/N, e.g. 0/4".into()))?;
        let index: u32 = i
            .trim()
            .parse()
            .map_err(|_| bad(format!("shard index `{i}` is not a number")))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| bad(format!("shard count `{n}` is not a number")))?;
        if count == 0 || index >= count {
            return Err(bad("need 0 <= I < N".into()));
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// The shard of an array job: Kubernetes Indexed Jobs (`JOB_COMPLETION_INDEX`
    /// with `HEADSTART_SHARD_COUNT`), Slurm arrays or AWS Batch arrays; `None`
    /// outside one. `var` reads an environment variable.
    pub fn from_env(var: &dyn Fn(&str) -> Option<String>) -> Result<Option<Shard>, ExtractError> {
        let bad = |message: String| ExtractError::ShardEnv { message };
        let num = |k: &str| -> Result<Option<u32>, ExtractError> {
            var(k)
                .map(|v| {
                    v.trim()
                        .parse::<u32>()
                        .map_err(|e| bad(format!("{k}=`{v}` is not a number: {e}")))
                })
                .transpose()
        };
        let pair = |i: u32, n: u32, how: &str| {
            if n > 0 && i < n {
                Ok(Some(Shard { index: i, count: n }))
            } else {
                Err(bad(format!(
                    "{how}: shard index {i} is not below the shard count {n}"
                )))
            }
        };
        if let Some(i) = num("JOB_COMPLETION_INDEX")? {
            let n = num("HEADSTART_SHARD_COUNT")?.ok_or_else(|| bad(
                "JOB_COMPLETION_INDEX is set (Kubernetes Indexed Job) but the shard count is not: set HEADSTART_SHARD_COUNT to the Job's completions".into(),
            ))?;
            return pair(i, n, "JOB_COMPLETION_INDEX/HEADSTART_SHARD_COUNT");
        }
        if let (Some(id), Some(n)) = (num("SLURM_ARRAY_TASK_ID")?, num("SLURM_ARRAY_TASK_COUNT")?) {
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            return pair(id.saturating_sub(min), n, "SLURM_ARRAY_TASK_ID/COUNT");
        }
        if let (Some(i), Some(n)) = (
            num("AWS_BATCH_JOB_ARRAY_INDEX")?,
            num("AWS_BATCH_JOB_ARRAY_SIZE")?,
        ) {
            return pair(i, n, "AWS_BATCH_JOB_ARRAY_INDEX/SIZE");
        }
        Ok(None)
    }
}

/// Receives progress while a run goes on.
pub trait Progress: Sync {
    /// The number of images this run looks at.
    fn start(&self, _total: u64) {}
    /// `n` more images are done (extracted, cached or failed).
    fn advance(&self, _n: u64) {}
    /// A one-line message (what was provisioned, what was skipped).
    fn message(&self, _msg: &str) {}
}

/// A [`Progress`] that ignores everything.
pub struct NoProgress;
impl Progress for NoProgress {}

/// Settings of an extract run, checked by [`ExtractorBuilder::build`].
#[derive(Debug, Clone)]
pub struct ExtractorBuilder {
    input: PathBuf,
    out: PathBuf,
    unlabeled: bool,
    batch_size: usize,
    threads: Option<usize>,
    views: Vec<View>,
    strict: bool,
    prune: bool,
    shard: Option<Shard>,
    flush_rows: usize,
    flush_interval: Duration,
    label_from: LabelFrom,
    max_file_size: u64,
    access: Access,
}

/// A validated extract run; see [`Extractor::run`].
#[derive(Debug, Clone)]
pub struct Extractor {
    cfg: ExtractorBuilder,
}

impl Extractor {
    /// Starts configuring a run that extracts `input` into the cache `out`.
    pub fn builder(input: impl Into<PathBuf>, out: impl Into<PathBuf>) -> ExtractorBuilder {
        ExtractorBuilder {
            input: input.into(),
            out: out.into(),
            unlabeled: false,
            batch_size: 32,
            threads: None,
            views: vec![View::Original],
            strict: false,
            prune: false,
            shard: None,
            flush_rows: 2048,
            flush_interval: Duration::from_secs(60),
            label_from: LabelFrom::default(),
            max_file_size: headstart_files::DEFAULT_MAX_FILE_SIZE,
            access: Access::default(),
        }
    }
}

impl ExtractorBuilder {
    /// Treat a folder as unlabeled images (no class folders).
    pub fn unlabeled(mut self, v: bool) -> Self {
        self.unlabeled = v;
        self
    }
    /// Images per inference batch (default 32).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    /// Decode threads (default: the number of cores).
    pub fn threads(mut self, n: Option<usize>) -> Self {
        self.threads = n;
        self
    }
    /// Views stored per image (default: original).
    pub fn views(mut self, v: Vec<View>) -> Self {
        self.views = v;
        self
    }
    /// Stop at the first failing file.
    pub fn strict(mut self, v: bool) -> Self {
        self.strict = v;
        self
    }
    /// Allow a run to remove every image the cache holds (in this shard) when
    /// none of them is in the input; without it such a run is refused, as it
    /// usually means another dataset was pointed at the same cache.
    pub fn prune(mut self, v: bool) -> Self {
        self.prune = v;
        self
    }
    /// Only extract this shard of the input.
    pub fn shard(mut self, s: Option<Shard>) -> Self {
        self.shard = s;
        self
    }
    /// Write a part at least every `rows` rows and every `interval`.
    pub fn flush_every(mut self, rows: usize, interval: Duration) -> Self {
        self.flush_rows = rows;
        self.flush_interval = interval;
        self
    }
    /// Where tar samples' labels come from (default: the `.cls` member).
    pub fn label_from(mut self, l: LabelFrom) -> Self {
        self.label_from = l;
        self
    }
    /// Largest file, tar member or Parquet cell read, in bytes (default
    /// [`headstart_files::DEFAULT_MAX_FILE_SIZE`]); larger ones are error rows.
    pub fn max_file_size(mut self, bytes: u64) -> Self {
        self.max_file_size = bytes;
        self
    }
    /// How object stores are reached and read (INPUT in `s3://`, `gs://`,
    /// `az://`, `https://`).
    pub fn access(mut self, a: Access) -> Self {
        self.access = a;
        self
    }
    /// Validates the settings once; an INPUT in object storage is looked at
    /// (one small request), so that refused credentials or a missing bucket
    /// stop the run before any work.
    pub fn build(mut self) -> Result<Extractor, ExtractError> {
        // The output first: a folder that is not a cache is refused before any work.
        Cache::check_dir(&self.out)?;
        self.access.check()?;
        if let Some(url) = input::remote_url(&self.input, &self.access)? {
            let name = url.file_name().to_ascii_lowercase();
            let object = [".tar", ".csv", ".parquet"]
                .iter()
                .any(|e| name.ends_with(e));
            url.check_access(object)?;
        }
        let param = |name, value: String, message: &str| ExtractError::Param {
            name,
            value,
            message: message.to_string(),
        };
        if self.batch_size == 0 || self.batch_size > MAX_BATCH {
            return Err(param(
                "batch_size",
                self.batch_size.to_string(),
                &format!("must be between 1 and {MAX_BATCH}"),
            ));
        }
        if let Some(n) = self.threads {
            headstart_runtime::check_threads("threads", n)?;
        }
        if self.views.is_empty() {
            return Err(param("views", String::new(), "name at least one view"));
        }
        self.views.dedup();
        if self.flush_rows == 0 {
            return Err(param("flush_every", "0".into(), "must be at least 1"));
        }
        if self.max_file_size == 0 {
            return Err(param(
                "max_file_size",
                "0".into(),
                "must be at least 1 byte",
            ));
        }
        Ok(Extractor { cfg: self })
    }
}

/// What a run did, for people (`Display`) and pipelines (`--json`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// The cache directory.
    pub cache: PathBuf,
    /// The cache's model name.
    pub model: String,
    /// The cache's model fingerprint.
    pub model_fingerprint: String,
    /// Feature dimension D.
    pub feature_dim: usize,
    /// Execution provider that ran the model (e.g. `CPUExecutionProvider`).
    pub execution_provider: String,
    /// Shard `I/N` of the run, if sharded.
    pub shard: Option<String>,
    /// Images listed (in this shard), with the entries that failed listing:
    /// `extracted + cached + failed`.
    pub images: usize,
    /// Images whose features were already cached.
    pub cached: usize,
    /// Images extracted now.
    pub extracted: usize,
    /// Images (or listing entries) that failed.
    pub failed: usize,
    /// Rows written (images x views).
    pub rows_written: usize,
    /// Paths no longer in the input, removed from the cache.
    pub deleted: usize,
    /// Feature parts written.
    pub parts_written: usize,
    /// The `errors/<seq>.parquet` listing this run's failures, if any failed.
    pub errors_file: Option<PathBuf>,
    /// Seconds for the whole run.
    pub wall_seconds: f64,
    /// Of those, the serial start: listing the input, opening the cache, finding
    /// deleted files (before the first image is decoded).
    pub setup_seconds: f64,
    /// Busy time summed over decode threads.
    pub decode_seconds: f64,
    /// Time spent running batches through the model.
    pub inference_seconds: f64,
    /// Busy time of the writer thread.
    pub write_seconds: f64,
    /// Extracted images per wall-clock second.
    pub images_per_second: f64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use headstart_files::escape as esc;
        writeln!(f, "cache        {}", esc(&self.cache.display().to_string()))?;
        writeln!(
            f,
            "model        {} ({}-d, fingerprint {}) on {}",
            esc(&self.model),
            self.feature_dim,
            self.model_fingerprint,
            self.execution_provider
        )?;
        if let Some(s) = &self.shard {
            writeln!(f, "shard        {s}")?;
        }
        writeln!(
            f,
            "images       {} listed: {} extracted, {} already cached, {} failed; {} removed from the cache",
            self.images, self.extracted, self.cached, self.failed, self.deleted
        )?;
        writeln!(
            f,
            "rows         {} written in {} part(s)",
            self.rows_written, self.parts_written
        )?;
        // A rerun that only finds cached files has no extraction rate to show.
        let rate = if self.extracted > 0 {
            format!(" ({:.1} images/s)", self.images_per_second)
        } else {
            String::new()
        };
        writeln!(
            f,
            "time         {:.2} s wall{rate}: decode {:.2} s (summed over threads), inference {:.2} s, write {:.2} s",
            self.wall_seconds, self.decode_seconds, self.inference_seconds, self.write_seconds
        )?;
        if let Some(e) = &self.errors_file {
            let e = e.display().to_string();
            writeln!(f, "errors       {} (path, stage, message)", esc(&e))?;
        }
        Ok(())
    }
}

/// One preprocessed view on its way to inference.
struct Job {
    item: usize,
    view: View,
    hash: std::sync::Arc<str>,
    /// What the store reports of the item's content (see `Item::source_version`).
    version: Option<Arc<str>>,
    /// How many views of this item were queued.
    queued: usize,
    /// The view's model input, normalised by the decode thread.
    tensor: Vec<f32>,
}

/// A full batch on its way to inference: `keys.len()` tensors at the start of `data`.
struct Batch {
    keys: Vec<Key>,
    data: Vec<f32>,
}

/// (item, view, content hash, views queued for the item, source version).
type Key = (usize, View, std::sync::Arc<str>, usize, Option<Arc<str>>);

/// Features of a batch on their way to the writer.
struct Done {
    jobs: Vec<Key>,
    features: Vec<f32>,
}

/// Content hash of file bytes: 128-bit BLAKE3, hex.
pub fn content_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..32].to_string()
}

impl Extractor {
    /// Runs the extraction with `model`.
    pub fn run(
        &self,
        model: &mut dyn FeatureModel,
        progress: &dyn Progress,
    ) -> Result<Summary, ExtractError> {
        let cfg = &self.cfg;
        let started = Instant::now();
        // A shard reads only its own tar or Parquet files.
        let keep = |file: &str| cfg.shard.is_none_or(|s| s.owns(&format!("{file}/")));
        let options = input::ListOptions {
            label: cfg.label_from.clone(),
            keep: &keep,
            access: cfg.access.clone(),
            stored: Some(cfg.out.join(headstart_cache::LISTINGS_DIR)),
        };
        let kind = input::detect_with(&cfg.input, cfg.unlabeled, &options)?;
        let mut listing = input::list_with(&cfg.input, kind, &options)?;
        if let Some(shard) = cfg.shard {
            listing.items.retain(|it| shard.owns(&it.rel));
            listing.errors.retain(|e| shard.owns(&e.path));
        }
        let items = std::mem::take(&mut listing.items);

        // A model with a fixed batch size runs in batches of that size.
        if let Some(note) = model.batch_note(cfg.batch_size) {
            progress.message(&note);
        }
        let batch_size = model.batch_size(cfg.batch_size);
        let preprocess = model.preprocess().clone();
        let dim = match model.dim() {
            Some(d) => d,
            None => {
                // Learn the dimension from one blank image.
                let probe = vec![0f32; preprocess.tensor_len()];
                model.run(&probe, 1)?.len()
            }
        };
        let info = CacheInfo {
            format_version: headstart_cache::FORMAT_VERSION,
            model_name: model.name().to_string(),
            model_fingerprint: model.fingerprint().to_string(),
            feature_dim: dim,
            preprocessing: serde_json::to_value(&preprocess).unwrap_or_default(),
            created_by: format!("headstart {}", env!("CARGO_PKG_VERSION")),
        };
        let cache = Cache::open_or_create(&cfg.out, &info)?;
        // One unsharded writer at a time (a second one waits, then finds the work
        // done); shards of one run write side by side; compaction waits for all.
        let kind = if cfg.shard.is_some() {
            LockKind::Shared
        } else {
            LockKind::Exclusive
        };
        let _lock = cache.lock(kind, &|m| progress.message(m))?;
        cache.clean_temp();
        let index = cache.live_index()?;

        // Paths gone from the input (in this shard) stop being live; paths under
        // a folder that could not be listed are kept.
        let listed: std::collections::HashSet<&str> =
            items.iter().map(|i| i.rel.as_str()).collect();
        let owned: Vec<&str> = index
            .paths()
            .filter(|p| cfg.shard.is_none_or(|s| s.owns(p)))
            .collect();
        let mut gone: Vec<String> = owned
            .iter()
            .filter(|p| !listed.contains(*p) && !listing.maybe_unlisted(p))
            .map(|p| p.to_string())
            .collect();
        if !cfg.prune && !items.is_empty() && !gone.is_empty() && gone.len() == owned.len() {
            return Err(ExtractError::DifferentInput {
                cache: cfg.out.clone(),
                input: cfg.input.clone(),
                live: owned.len(),
            });
        }
        gone.sort();
        cache.write_tombstones(&gone)?;
        match input::remote_url(&cfg.input, &cfg.access)? {
            Some(url) => cache.record_remote_input(&url.shown(), url.endpoint())?,
            None => cache.record_input(&cfg.input)?,
        }
        for stored in std::mem::take(&mut listing.fresh) {
            let name = container::Stored::file_name(&stored.url, &stored.label_from);
            cache.write_listing(&name, &stored.to_json())?;
        }

        let run = RunInfo {
            ort_version: model.runtime_version().to_string(),
            execution_provider: model.provider().to_string(),
            shard: cfg.shard.map(|s| s.to_string()),
        };
        progress.start(items.len() as u64);
        // Entries that failed while listing count as listed (and failed), so the
        // summary's counts add up.
        let listed_count = items.len() + listing.errors.len();
        let errors = Mutex::new(std::mem::take(&mut listing.errors));
        let stats = Stats::default();
        let abort = AtomicBool::new(false);
        let strict_err: Mutex<Option<ExtractError>> = Mutex::new(None);
        let fail = |rel: &str, stage: &str, message: String| {
            if cfg.strict && !abort.swap(true, Ordering::SeqCst) {
                *strict_err.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(ExtractError::Strict {
                        path: rel.to_string(),
                        stage: stage.to_string(),
                        message: message.clone(),
                    });
            }
            errors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(ErrorRow {
                    path: rel.to_string(),
                    stage: stage.to_string(),
                    message,
                });
        };
        if cfg.strict
            && let Some(e) = errors.lock().unwrap_or_else(|e| e.into_inner()).first()
        {
            return Err(ExtractError::Strict {
                path: e.path.clone(),
                stage: e.stage.clone(),
                message: e.message.clone(),
            });
        }

        let setup_seconds = started.elapsed().as_secs_f64();
        let threads = cfg
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("headstart-decode-{i}"))
            .build()
            .map_err(|e| ExtractError::Threads {
                threads,
                message: e.to_string(),
            })?;
        let depth = batch_size * 2;
        let (job_tx, job_rx) = bounded::<Job>(depth);
        // One batch waits while one runs; their buffers go back to the assembler.
        let (batch_tx, batch_rx) = bounded::<Batch>(1);
        let (free_tx, free_rx) = bounded::<Vec<f32>>(2);
        // Unbounded: writing (Parquet encoding, fsync) never holds up inference;
        // features are small next to the queued tensors.
        let (done_tx, done_rx) = unbounded::<Done>();
        let stale: Mutex<Vec<String>> = Mutex::new(Vec::new());
        let tensor_len = preprocess.tensor_len();

        let outcome: Result<(usize, usize, Option<PathBuf>), ExtractError> =
            std::thread::scope(|s| {
                let abort = &abort;
                let assemble = s.spawn(move || {
                    assemble_stage(job_rx, batch_tx, free_rx, batch_size, tensor_len, abort)
                });
                let infer =
                    s.spawn(|| infer_stage(model, batch_rx, free_tx, done_tx, &stats, abort));
                let write = s.spawn(|| {
                    write_stage(
                        &cache,
                        &run,
                        &items,
                        done_rx,
                        cfg.flush_rows,
                        cfg.flush_interval,
                        &stats,
                        progress,
                        &fail,
                        &stale,
                    )
                });
                // One item's bytes (or why not) through hash, cache check,
                // decode and preprocessing; false once inference has stopped.
                let handle = |i: usize, got: Fetch, pre: &mut Preprocessor, buf: &mut Vec<u8>| {
                    let item = &items[i];
                    let t0 = Instant::now();
                    let (bytes, version) = match got {
                        Fetch::Unchanged => {
                            stats.cached.fetch_add(1, Ordering::Relaxed);
                            progress.advance(1);
                            return true;
                        }
                        Fetch::Bytes(b, v) => (Ok(b), item.source_version().or(v)),
                        Fetch::Failed(e) => (
                            Err(match item.abs.as_object() {
                                Some(obj) => format!("{}: {e}", obj.url()),
                                None => e,
                            }),
                            None,
                        ),
                    };
                    let r = prepare(
                        i,
                        item,
                        bytes,
                        version.map(Arc::from),
                        &index,
                        &cfg.views,
                        &preprocess,
                        pre,
                        buf,
                    );
                    if buf.len() > KEEP_DECODE_BUFFER {
                        *buf = Vec::new(); // a rare huge image: not kept per thread
                    }
                    stats
                        .decode_ns
                        .fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    match r {
                        Prepared::Cached => {
                            stats.cached.fetch_add(1, Ordering::Relaxed);
                            progress.advance(1);
                        }
                        Prepared::Queued(jobs) => {
                            for job in jobs {
                                if job_tx.send(job).is_err() {
                                    return false; // inference stopped; its error is reported
                                }
                            }
                        }
                        Prepared::Failed { stage, message } => {
                            if index.contains_path(&item.rel) {
                                stale
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .push(item.rel.clone());
                            }
                            fail(&item.rel, stage, message);
                            progress.advance(1);
                        }
                    }
                    true
                };
                let init = || (Preprocessor::new(preprocess.clone()), Vec::new());
                if !items.iter().any(|it| it.abs.is_remote()) {
                    // Read units: one file or tar member, or one Parquet row group.
                    let units = container::units(&items);
                    pool.install(|| {
                        units.par_iter().for_each_init(init, |(pre, buf), unit| {
                            if abort.load(Ordering::Relaxed) {
                                return;
                            }
                            let t0 = Instant::now();
                            let loaded = container::load(&items, unit, cfg.max_file_size);
                            stats
                                .decode_ns
                                .fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
                            for (&i, bytes) in unit.iter().zip(loaded) {
                                let got = match bytes {
                                    Ok(b) => Fetch::Bytes(b, None),
                                    Err(e) => Fetch::Failed(e),
                                };
                                if abort.load(Ordering::Relaxed) || !handle(i, got, pre, buf) {
                                    return;
                                }
                            }
                        });
                    });
                } else {
                    let todo = remote_todo(&items, &index, &cfg.views, &stats, progress);
                    let units = container::units_of(&items, todo);
                    // A cached object listed without a version (a manifest's
                    // URL) is fetched only if its ETag changed.
                    let unless = |i: usize| {
                        let it = &items[i];
                        if it.source_version().is_some() {
                            return None;
                        }
                        let v = index.version_of(&it.rel)?;
                        let (label, split) = (it.label.as_deref(), it.split.as_deref());
                        cfg.views
                            .iter()
                            .all(|view| index.has_version(&it.rel, v, view.name(), label, split))
                            .then(|| crate::remote::etag_of(v).map(str::to_string))
                            .flatten()
                    };
                    let fetcher = crate::remote::fetch::Fetcher::new(
                        cfg.max_file_size,
                        Some(crate::remote::DEFAULT_IO_BUFFER),
                    );
                    let (unit_tx, unit_rx) = bounded(cfg.access.io_concurrency);
                    let items = &items;
                    // The requests run on this scope's thread; the decode pool
                    // takes each unit as it arrives.
                    std::thread::scope(|io| {
                        io.spawn(|| {
                            crate::remote::block_on(feed(
                                &units,
                                items,
                                &fetcher,
                                &unless,
                                cfg.access.io_concurrency,
                                unit_tx,
                                abort,
                            ))
                        });
                        pool.install(|| {
                            unit_rx.into_iter().par_bridge().for_each_init(
                                init,
                                |(pre, buf), (u, fetched): (usize, crate::remote::fetch::Fetched)| {
                                    if abort.load(Ordering::Relaxed) {
                                        return;
                                    }
                                    let unit = &units[u];
                                    let got = fetched.finish(items, unit, cfg.max_file_size);
                                    for (&i, got) in unit.iter().zip(got) {
                                        if abort.load(Ordering::Relaxed)
                                            || !handle(i, got, pre, buf)
                                        {
                                            return;
                                        }
                                    }
                                },
                            );
                        });
                    });
                }
                drop(job_tx);
                if assemble.join().is_err() {
                    abort.store(true, Ordering::SeqCst);
                }
                let infer_result = infer.join().unwrap_or_else(|_| Err(panic_err("inference")));
                let write_result = write.join().unwrap_or_else(|_| Err(panic_err("writer")));
                infer_result?;
                let (rows, parts) = write_result?;
                Ok((rows, parts, None))
            });
        // Files that changed and now fail must not keep serving their old features,
        // also when --strict or a failed stage ends the run.
        let stale = stale.into_inner().unwrap_or_default();
        cache.write_tombstones(&stale)?;
        if let Some(e) = strict_err.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return Err(e);
        }
        let (rows_written, parts_written, _) = outcome?;
        let errors = errors.into_inner().unwrap_or_default();
        let errors_file = cache.write_errors(&errors)?;

        let wall = started.elapsed().as_secs_f64();
        let extracted = stats.extracted.load(Ordering::Relaxed) as usize;
        Ok(Summary {
            cache: cfg.out.clone(),
            model: info.model_name.clone(),
            model_fingerprint: info.model_fingerprint.clone(),
            feature_dim: dim,
            execution_provider: run.execution_provider.clone(),
            shard: run.shard.clone(),
            images: listed_count,
            cached: stats.cached.load(Ordering::Relaxed) as usize,
            extracted,
            failed: errors.len(),
            rows_written,
            deleted: gone.len(),
            parts_written,
            errors_file,
            wall_seconds: wall,
            setup_seconds,
            decode_seconds: ns(&stats.decode_ns),
            inference_seconds: ns(&stats.infer_ns),
            write_seconds: ns(&stats.write_ns),
            images_per_second: if wall > 0.0 {
                extracted as f64 / wall
            } else {
                0.0
            },
        })
    }
}

fn ns(a: &AtomicU64) -> f64 {
    a.load(Ordering::Relaxed) as f64 / 1e9
}

fn panic_err(stage: &'static str) -> ExtractError {
    ExtractError::Panicked { stage }
}

#[derive(Default)]
struct Stats {
    cached: AtomicU64,
    extracted: AtomicU64,
    decode_ns: AtomicU64,
    infer_ns: AtomicU64,
    write_ns: AtomicU64,
}

enum Prepared {
    Cached,
    Queued(Vec<Job>),
    Failed {
        stage: &'static str,
        message: String,
    },
}

/// The largest batch a run accepts.
pub const MAX_BATCH: usize = 4096;

/// Largest decode buffer (bytes) a decode thread keeps between files: a
/// 4096x4096 RGB image.
const KEEP_DECODE_BUFFER: usize = 4096 * 4096 * 3;

/// The items of an input in object storage that must be read: those whose
/// version (size and ETag, as listed) is not the one of their cached rows.
/// The others count as cached without a byte read.
fn remote_todo(
    items: &[Item],
    index: &LiveIndex,
    views: &[View],
    stats: &Stats,
    progress: &dyn Progress,
) -> Vec<usize> {
    let mut todo = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let (label, split) = (it.label.as_deref(), it.split.as_deref());
        let cached = it.source_version().is_some_and(|v| {
            views
                .iter()
                .all(|view| index.has_version(&it.rel, &v, view.name(), label, split))
        });
        if cached {
            stats.cached.fetch_add(1, Ordering::Relaxed);
            progress.advance(1);
        } else {
            todo.push(i);
        }
    }
    todo
}

/// Fetches `units`, `concurrency` requests at a time, and hands each to the
/// decode threads through `tx` (bounded: fetching waits for decoding).
async fn feed(
    units: &[Vec<usize>],
    items: &[Item],
    fetcher: &crate::remote::fetch::Fetcher,
    unless: &(dyn Fn(usize) -> Option<String> + Sync),
    concurrency: usize,
    tx: Sender<(usize, crate::remote::fetch::Fetched)>,
    abort: &AtomicBool,
) {
    use futures::StreamExt;
    let mut fetched = futures::stream::iter(0..units.len())
        .map(|u| async move { (u, fetcher.fetch(items, &units[u], Some(unless)).await) })
        .buffer_unordered(concurrency);
    while let Some(mut next) = fetched.next().await {
        if abort.load(Ordering::Relaxed) {
            return;
        }
        // Without blocking the requests in flight.
        loop {
            match tx.try_send(next) {
                Ok(()) => break,
                Err(crossbeam_channel::TrySendError::Full(back)) => {
                    next = back;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(crossbeam_channel::TrySendError::Disconnected(_)) => return,
            }
        }
    }
}

/// Hashes and (when not cached) decodes one image's bytes and queues its views.
#[allow(clippy::too_many_arguments)]
fn prepare(
    i: usize,
    item: &Item,
    bytes: Result<Vec<u8>, String>,
    version: Option<Arc<str>>,
    index: &LiveIndex,
    views: &[View],
    recipe: &Preprocess,
    pre: &mut Preprocessor,
    buf: &mut Vec<u8>,
) -> Prepared {
    let bytes = match bytes {
        Ok(b) => b,
        Err(message) => {
            return Prepared::Failed {
                stage: "read",
                message,
            };
        }
    };
    let hash: std::sync::Arc<str> = content_hash(&bytes).into();
    let missing: Vec<View> = views
        .iter()
        .copied()
        .filter(|v| {
            let (label, split) = (item.label.as_deref(), item.split.as_deref());
            !index.has(&item.rel, &hash, v.name(), label, split)
        })
        .collect();
    if missing.is_empty() {
        return Prepared::Cached;
    }
    let img = match isolate::decode(&bytes, buf, recipe) {
        Ok(img) => img,
        Err(e) => {
            return Prepared::Failed {
                stage: "decode",
                message: e.to_string(),
            };
        }
    };
    drop(bytes);
    let out_w = pre.preprocess().width as usize;
    let img = &img;
    let resized = match isolate::guarded(move || pre.resize(img)) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return Prepared::Failed {
                stage: "preprocess",
                message: e.to_string(),
            };
        }
        Err(panic) => {
            return Prepared::Failed {
                stage: "preprocess",
                message: format!("preprocessing panicked: {panic}"),
            };
        }
    };
    let queued = missing.len();
    let mut jobs = Vec::with_capacity(queued);
    let mut flipped = Vec::new();
    for view in missing {
        let pixels = if view == View::Hflip {
            flipped.clear();
            flipped.extend_from_slice(resized);
            for row in flipped.chunks_exact_mut(out_w * 3) {
                row.as_chunks_mut::<3>().0.reverse();
            }
            &flipped[..]
        } else {
            resized
        };
        // Normalised here, on the decode threads: the inference thread only
        // hands batches to the model.
        let mut tensor = vec![0f32; recipe.tensor_len()];
        normalize_into(recipe, pixels, &mut tensor);
        jobs.push(Job {
            item: i,
            view,
            hash: hash.clone(),
            version: version.clone(),
            queued,
            tensor,
        });
    }
    Prepared::Queued(jobs)
}

/// Copies queued tensors into batch buffers (recycled from inference) and
/// hands full batches on; runs beside inference, so filling the next batch
/// overlaps the current one.
fn assemble_stage(
    rx: Receiver<Job>,
    tx: Sender<Batch>,
    free: Receiver<Vec<f32>>,
    batch_size: usize,
    len: usize,
    abort: &AtomicBool,
) {
    let mut spare = 2; // buffers that may still be made
    let mut buffer = |free: &Receiver<Vec<f32>>| match free.try_recv() {
        Ok(b) => b,
        Err(_) if spare > 0 => {
            spare -= 1;
            vec![0f32; batch_size * len]
        }
        Err(_) => free.recv().unwrap_or_else(|_| vec![0f32; batch_size * len]),
    };
    let mut data = buffer(&free);
    let mut keys = Vec::with_capacity(batch_size);
    for job in rx.iter() {
        if abort.load(Ordering::Relaxed) {
            return;
        }
        let slot = keys.len() * len;
        data[slot..slot + len].copy_from_slice(&job.tensor);
        keys.push((job.item, job.view, job.hash, job.queued, job.version));
        if keys.len() == batch_size {
            let full = std::mem::replace(&mut keys, Vec::with_capacity(batch_size));
            if tx.send(Batch { keys: full, data }).is_err() {
                return; // inference stopped; its error is reported
            }
            data = buffer(&free);
        }
    }
    if !keys.is_empty() {
        let _ = tx.send(Batch { keys, data });
    }
}

/// Runs each batch through the model and sends its features to the writer.
fn infer_stage(
    net: &mut dyn FeatureModel,
    rx: Receiver<Batch>,
    free: Sender<Vec<f32>>,
    tx: Sender<Done>,
    stats: &Stats,
    abort: &AtomicBool,
) -> Result<(), ExtractError> {
    let len = net.preprocess().tensor_len();
    for batch in rx.iter() {
        if abort.load(Ordering::Relaxed) {
            break;
        }
        let n = batch.keys.len();
        let t0 = Instant::now();
        let features = match net.run(&batch.data[..n * len], n) {
            Ok(f) => f,
            Err(e) => {
                abort.store(true, Ordering::SeqCst);
                return Err(e);
            }
        };
        stats
            .infer_ns
            .fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
        let _ = free.try_send(batch.data);
        let _ = tx.send(Done {
            jobs: batch.keys,
            features,
        });
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn write_stage(
    cache: &Cache,
    run: &RunInfo,
    items: &[Item],
    rx: Receiver<Done>,
    flush_rows: usize,
    flush_interval: Duration,
    stats: &Stats,
    progress: &dyn Progress,
    fail: &(dyn Fn(&str, &str, String) + Sync),
    stale: &Mutex<Vec<String>>,
) -> Result<(usize, usize), ExtractError> {
    let mut w = PartWriter::new(cache, run.clone());
    let (mut rows, mut parts) = (0usize, 0usize);
    let mut last_flush = Instant::now();
    // Count an image as done when its last view is written.
    let mut views_left: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    // Images with a non-finite feature in some view: failed, not written.
    let mut non_finite = std::collections::HashSet::new();
    for done in rx.iter() {
        let t0 = Instant::now();
        let dim = done.features.len() / done.jobs.len().max(1);
        for (k, (item, view, hash, queued, version)) in done.jobs.iter().enumerate() {
            let it = &items[*item];
            let feature = &done.features[k * dim..(k + 1) * dim];
            if feature.iter().any(|v| !v.is_finite()) {
                if non_finite.insert(*item) {
                    fail(
                        &it.rel,
                        "infer",
                        format!(
                            "the model produced NaN or infinite features (view `{}`); check that the model and its preprocessing suit this image",
                            view.name()
                        ),
                    );
                    // Its other views, and rows from earlier runs, must not stay live.
                    stale
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(it.rel.clone());
                }
            } else if !non_finite.contains(item) {
                w.push(Row {
                    path: &it.rel,
                    label: it.label.as_deref(),
                    split: it.split.as_deref(),
                    content_hash: hash,
                    source_version: version.as_deref(),
                    view: view.name(),
                    feature,
                })?;
                rows += 1;
            }
            let left = views_left.entry(*item).or_insert(*queued);
            *left = left.saturating_sub(1);
            if *left == 0 {
                views_left.remove(item);
                if !non_finite.contains(item) {
                    stats.extracted.fetch_add(1, Ordering::Relaxed);
                }
                progress.advance(1);
            }
        }
        if w.len() >= flush_rows || last_flush.elapsed() >= flush_interval {
            parts += usize::from(w.flush()?.is_some());
            last_flush = Instant::now();
        }
        stats
            .write_ns
            .fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
    let t0 = Instant::now();
    parts += usize::from(w.flush()?.is_some());
    stats
        .write_ns
        .fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
    Ok((rows, parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_comes_from_scheduler_environments() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(Shard::from_env(&env(&[])).unwrap(), None);
        let s = Shard::from_env(&env(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
        ]))
        .unwrap();
        assert_eq!(s, Some(Shard { index: 2, count: 4 }));
        let s = Shard::from_env(&env(&[
            ("AWS_BATCH_JOB_ARRAY_INDEX", "0"),
            ("AWS_BATCH_JOB_ARRAY_SIZE", "2"),
        ]))
        .unwrap();
        assert_eq!(s, Some(Shard { index: 0, count: 2 }));
        let e = Shard::from_env(&env(&[("JOB_COMPLETION_INDEX", "1")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("HEADSTART_SHARD_COUNT"), "{e}");
        let s = Shard::from_env(&env(&[
            ("JOB_COMPLETION_INDEX", "1"),
            ("HEADSTART_SHARD_COUNT", "3"),
        ]))
        .unwrap();
        assert_eq!(s, Some(Shard { index: 1, count: 3 }));
    }

    #[test]
    fn the_summary_shows_a_rate_only_when_something_was_extracted() {
        let rerun = Summary {
            images: 3,
            cached: 3,
            wall_seconds: 0.05,
            ..Summary::default()
        };
        let text = rerun.to_string();
        assert!(text.contains("time         0.05 s wall: decode"), "{text}");
        assert!(!text.contains("images/s"), "{text}");
        let run = Summary {
            images: 3,
            extracted: 3,
            wall_seconds: 2.0,
            images_per_second: 1.5,
            ..Summary::default()
        };
        assert!(run.to_string().contains("2.00 s wall (1.5 images/s)"));
    }
}
