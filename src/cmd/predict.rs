//! `headstart predict`: classify image files, folders or manifests with a saved
//! head, reusing cached features when a file's content hash is in a cache.
//!
//! Files are handled in batches: read and hash (all threads), take features
//! from the caches where the hash is there, decode and preprocess the rest
//! (all threads), run the backbone on them, then the head on the whole batch.
//! The backbone is only resolved and opened when some file is not cached.
//! A file that cannot be listed, read, decoded or preprocessed gives a row with
//! the error; the command then exits with [`super::EXIT_PARTIAL`].

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arrow_array::builder::{Float32Builder, ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, Float32Array, RecordBatch, StringArray};
use headstart_extract::decode::decode_rgb8;
use headstart_extract::input::{self, InputKind};
use headstart_extract::pipeline::content_hash;
use headstart_extract::tensor::Preprocessor;
use headstart_extract::{Backbone, ResolvedBackbone, SessionConfig};
use headstart_fit::Head;
use serde::Serialize;

use super::Ctx;
use crate::cli::{PredictArgs, PredictFormat};

/// One file to classify, or a listing failure, in output order.
struct Entry {
    /// As shown in the output.
    path: String,
    /// Where to read it; `None` for listing failures.
    abs: Option<PathBuf>,
    outcome: Option<Outcome>,
}

enum Outcome {
    Done {
        probabilities: Vec<f32>,
        cached: bool,
    },
    Failed {
        stage: String,
        message: String,
    },
}

fn failed(stage: &str, message: impl Into<String>) -> Outcome {
    Outcome::Failed {
        stage: stage.into(),
        message: message.into(),
    }
}

pub fn run(ctx: &Ctx, a: PredictArgs) -> Result<ExitCode> {
    use super::require;
    require(a.top_k >= 1, || "--top-k must be at least 1".into())?;
    require((1..=4096).contains(&a.batch_size), || {
        "--batch-size must be between 1 and 4096".into()
    })?;
    require(
        !matches!(a.format, PredictFormat::Parquet) || a.output.is_some(),
        || "--format parquet writes a file: pass --output FILE".into(),
    )?;
    // Checked here, although the backbone only opens when some file is not cached.
    let session = super::extract::session_config(ctx, &a.device)?;
    let head = Head::load(&a.head)
        .with_context(|| format!("loading the head from {}", a.head.display()))?;
    let cached = load_caches(&head, &a.cache)?;
    let mut entries = list_inputs(&a.inputs)?;

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut live: Option<Live> = None;
    let bar = progress(ctx.quiet, entries.len() as u64);
    let todo: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].outcome.is_none())
        .collect();
    for batch in todo.chunks(a.batch_size) {
        // Read and hash; cached features need nothing more.
        let read: Vec<Read> = par_map(
            batch,
            threads,
            || (),
            |_, &i| read_one(entries[i].abs.as_deref(), &cached),
        );
        let mut features: Vec<Option<Vec<f32>>> = vec![None; batch.len()];
        let mut from_cache = vec![false; batch.len()];
        let mut to_decode = Vec::new();
        for (j, r) in read.into_iter().enumerate() {
            match r {
                Read::Cached(f) => {
                    features[j] = Some(f);
                    from_cache[j] = true;
                }
                Read::Bytes(b) => to_decode.push((j, b)),
                Read::Failed(o) => entries[batch[j]].outcome = Some(o),
            }
        }
        if !to_decode.is_empty() {
            if live.is_none() {
                live = Some(Live::open(ctx, &head, &a, &session)?);
            }
            let net = live.as_mut().context("the backbone is open")?;
            let pre = net.backbone.preprocess().clone();
            let tensors: Vec<Result<Vec<f32>, Outcome>> = par_map(
                &to_decode,
                threads,
                || Preprocessor::new(pre.clone()),
                |prep, (_, bytes)| {
                    let img = decode_rgb8(bytes).map_err(|e| failed("decode", e.to_string()))?;
                    let mut t = vec![0f32; pre.tensor_len()];
                    prep.tensor_into(&img, &mut t)
                        .map_err(|e| failed("preprocess", e.to_string()))?;
                    Ok(t)
                },
            );
            let mut input = Vec::new();
            let mut rows = Vec::new();
            for ((j, _), t) in to_decode.iter().zip(tensors) {
                match t {
                    Ok(t) => {
                        input.extend_from_slice(&t);
                        rows.push(*j);
                    }
                    Err(o) => entries[batch[*j]].outcome = Some(o),
                }
            }
            if !rows.is_empty() {
                let out = net.backbone.run(&input, rows.len())?.swap_remove(0);
                let dim = out.len() / rows.len();
                if dim != head.dim() {
                    bail!(
                        "the backbone `{}` gives {dim}-d features from `{}`, but the head takes {}-d features",
                        net.model.name,
                        net.model.feature_tensor,
                        head.dim()
                    );
                }
                for (r, j) in rows.iter().enumerate() {
                    features[*j] = Some(out[r * dim..(r + 1) * dim].to_vec());
                }
            }
        }
        // The head, on every row with features.
        let mut x = Vec::new();
        let mut rows = Vec::new();
        for (j, f) in features.iter().enumerate() {
            let Some(f) = f else { continue };
            if f.iter().any(|v| !v.is_finite()) {
                entries[batch[j]].outcome = Some(failed(
                    "infer",
                    "the model produced NaN or infinite features",
                ));
                continue;
            }
            x.extend_from_slice(f);
            rows.push(j);
        }
        let probs = head.try_predict_proba(&x, rows.len())?;
        let k = head.n_classes();
        for (r, j) in rows.iter().enumerate() {
            entries[batch[*j]].outcome = Some(Outcome::Done {
                probabilities: probs[r * k..(r + 1) * k].to_vec(),
                cached: from_cache[*j],
            });
        }
        bar.inc(batch.len() as u64);
    }
    bar.finish_and_clear();

    let results: Vec<Record> = entries
        .iter()
        .map(|e| Record::new(e, head.class_names(), a.top_k))
        .collect();
    let failures = results.iter().filter(|r| r.error.is_some()).count();
    let from_cache = results.iter().filter(|r| r.source == Some("cache")).count();
    match a.format {
        PredictFormat::Parquet => {
            let path = a.output.as_deref().context("--output")?;
            write_file(path, &parquet(&results)?)?;
            ctx.log(&format!(
                "wrote {} rows to {}",
                results.len(),
                path.display()
            ));
        }
        f => {
            let text = match f {
                // Paths on a terminal: control characters escaped.
                PredictFormat::Table => crate::term::escape_lines(&table(&results)),
                PredictFormat::Csv => csv(&results, a.top_k.min(head.n_classes())),
                _ => serde_json::to_string_pretty(&results)? + "\n",
            };
            match &a.output {
                Some(path) => write_file(path, text.as_bytes())?,
                None => print!("{text}"),
            }
        }
    }
    ctx.log(&format!(
        "{} images: {} classified ({} from cached features), {} failed",
        results.len(),
        results.len() - failures,
        from_cache,
        failures
    ));
    Ok(if failures > 0 {
        ExitCode::from(super::EXIT_PARTIAL)
    } else {
        ExitCode::SUCCESS
    })
}

/// The backbone, opened on first need.
struct Live {
    model: ResolvedBackbone,
    backbone: Backbone,
}

impl Live {
    fn open(ctx: &Ctx, head: &Head, a: &PredictArgs, cfg: &SessionConfig) -> Result<Live> {
        let model = super::export::resolve_for_head(ctx, head, &a.model)?;
        let rt = ctx.runtime_for(cfg.device)?;
        let backbone = Backbone::open_features(rt, &model, cfg)?;
        // `run` splits each batch into the model's fixed batch size; say so.
        if let Some(note) = backbone.batch_note(a.batch_size) {
            ctx.log(&note);
        }
        Ok(Live { model, backbone })
    }
}

/// Features of `original` views of the live rows of `caches`, by content hash.
fn load_caches(head: &Head, caches: &[PathBuf]) -> Result<HashMap<String, Vec<f32>>> {
    let mut map = HashMap::new();
    for dir in caches {
        let cache = headstart_cache::Cache::open(dir)?;
        let info = cache.info();
        if let Some(fp) = head.meta().model_fingerprint.as_deref()
            && fp != info.model_fingerprint
        {
            bail!(
                "the cache {} holds features of `{}` (fingerprint {}), but the head was trained on features of `{}` (fingerprint {fp}); pass a cache made with the head's model",
                dir.display(),
                info.model_name,
                info.model_fingerprint,
                head.meta()
                    .model_name
                    .as_deref()
                    .unwrap_or("an unnamed model"),
            );
        }
        if info.feature_dim != head.dim() {
            bail!(
                "the cache {} holds {}-d features, but the head takes {}-d features",
                dir.display(),
                info.feature_dim,
                head.dim()
            );
        }
        let t = cache.read()?;
        for i in 0..t.len() {
            if headstart_fit::is_original(&t.views[i]) {
                map.insert(t.content_hashes[i].clone(), t.row(i).to_vec());
            }
        }
    }
    Ok(map)
}

/// Image files, folders (every image below, recursively) and manifests, in the
/// order given; folders and manifests in path order.
fn list_inputs(inputs: &[PathBuf]) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for input in inputs {
        let shown = input.display().to_string();
        let meta = match std::fs::metadata(input) {
            Ok(m) => m,
            Err(e) => {
                out.push(Entry {
                    path: shown,
                    abs: None,
                    outcome: Some(failed("read", e.to_string())),
                });
                continue;
            }
        };
        let ext = input
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let (kind, under) = if meta.is_dir() {
            (InputKind::Unlabeled, Some(input))
        } else if matches!(ext.as_deref(), Some("csv" | "parquet")) {
            (InputKind::Manifest, None)
        } else {
            out.push(Entry {
                path: shown,
                abs: Some(input.clone()),
                outcome: None,
            });
            continue;
        };
        let listing = match input::list(input, kind) {
            Ok(l) => l,
            Err(e) if kind == InputKind::Unlabeled => {
                out.push(Entry {
                    path: shown,
                    abs: None,
                    outcome: Some(failed("list", e.to_string())),
                });
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("reading the manifest {shown}")),
        };
        let show = |rel: &str| match under {
            Some(dir) => dir.join(rel).display().to_string(),
            None => rel.to_string(),
        };
        for e in listing.errors {
            out.push(Entry {
                path: show(&e.path),
                abs: None,
                outcome: Some(failed(&e.stage, e.message)),
            });
        }
        for it in listing.items {
            out.push(Entry {
                path: show(&it.rel),
                abs: Some(it.abs),
                outcome: None,
            });
        }
    }
    Ok(out)
}

enum Read {
    Cached(Vec<f32>),
    Bytes(Vec<u8>),
    Failed(Outcome),
}

fn read_one(abs: Option<&Path>, cached: &HashMap<String, Vec<f32>>) -> Read {
    let Some(abs) = abs else {
        return Read::Failed(failed("list", "nothing to read"));
    };
    match std::fs::read(abs) {
        Err(e) => Read::Failed(failed("read", e.to_string())),
        Ok(bytes) => match cached.get(&content_hash(&bytes)) {
            Some(f) => Read::Cached(f.clone()),
            None => Read::Bytes(bytes),
        },
    }
}

/// `f` over `items` on up to `threads` scoped threads (one `init` state each), in order.
fn par_map<T: Sync, S, R: Send>(
    items: &[T],
    threads: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, &T) -> R + Sync,
) -> Vec<R> {
    if items.is_empty() {
        return Vec::new();
    }
    let per = items.len().div_ceil(threads.max(1));
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(per)
            .map(|chunk| {
                let (init, f) = (&init, &f);
                s.spawn(move || {
                    let mut state = init();
                    chunk.iter().map(|t| f(&mut state, t)).collect::<Vec<R>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

fn progress(quiet: bool, total: u64) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} images  {per_sec}  ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    pb
}

/// One output row.
#[derive(Debug, Serialize)]
struct Record {
    path: String,
    /// Best first.
    predictions: Vec<Prediction>,
    /// `cache` or `model`; absent for failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'static str>,
    error: Option<ErrorInfo>,
}

#[derive(Debug, Serialize)]
struct Prediction {
    label: String,
    probability: f32,
}

#[derive(Debug, Serialize)]
struct ErrorInfo {
    stage: String,
    message: String,
}

impl Record {
    fn new(e: &Entry, classes: &[String], top_k: usize) -> Record {
        match &e.outcome {
            Some(Outcome::Done {
                probabilities,
                cached,
            }) => {
                let mut order: Vec<usize> = (0..probabilities.len()).collect();
                // Stable: ties keep the lower class index first, as ArgMax does.
                order.sort_by(|&x, &y| probabilities[y].total_cmp(&probabilities[x]));
                Record {
                    path: e.path.clone(),
                    predictions: order
                        .into_iter()
                        .take(top_k)
                        .map(|c| Prediction {
                            label: classes[c].clone(),
                            probability: probabilities[c],
                        })
                        .collect(),
                    source: Some(if *cached { "cache" } else { "model" }),
                    error: None,
                }
            }
            Some(Outcome::Failed { stage, message }) => Record {
                path: e.path.clone(),
                predictions: Vec::new(),
                source: None,
                error: Some(ErrorInfo {
                    stage: stage.clone(),
                    message: message.clone(),
                }),
            },
            None => Record {
                path: e.path.clone(),
                predictions: Vec::new(),
                source: None,
                error: Some(ErrorInfo {
                    stage: "predict".into(),
                    message: "not processed".into(),
                }),
            },
        }
    }
}

fn table(rows: &[Record]) -> String {
    let width = rows
        .iter()
        .map(|r| r.path.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(4, 80);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<width$}  predictions (label probability, best first)",
        "path"
    );
    for r in rows {
        let _ = write!(o, "{:<width$}  ", r.path);
        match &r.error {
            Some(e) => {
                let _ = writeln!(o, "error ({}): {}", e.stage, e.message);
            }
            None => {
                let cells: Vec<String> = r
                    .predictions
                    .iter()
                    .map(|p| format!("{} {:.4}", p.label, p.probability))
                    .collect();
                let _ = writeln!(o, "{}", cells.join("  "));
            }
        }
    }
    o
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv(rows: &[Record], k: usize) -> String {
    let mut o = String::from("path");
    for i in 1..=k {
        let _ = write!(o, ",label_{i},probability_{i}");
    }
    o.push_str(",error\n");
    for r in rows {
        o.push_str(&csv_field(&r.path));
        for i in 0..k {
            match r.predictions.get(i) {
                Some(p) => {
                    let _ = write!(o, ",{},{}", csv_field(&p.label), p.probability);
                }
                None => o.push_str(",,"),
            }
        }
        o.push(',');
        if let Some(e) = &r.error {
            o.push_str(&csv_field(&format!("{}: {}", e.stage, e.message)));
        }
        o.push('\n');
    }
    o
}

/// Columns: path, label and probability (top 1), labels and probabilities
/// (top k, best first), error_stage, error.
fn parquet(rows: &[Record]) -> Result<Vec<u8>> {
    let strings = |f: &dyn Fn(&Record) -> Option<String>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let mut labels = ListBuilder::new(StringBuilder::new());
    let mut probs = ListBuilder::new(Float32Builder::new());
    for r in rows {
        for p in &r.predictions {
            labels.values().append_value(&p.label);
            probs.values().append_value(p.probability);
        }
        labels.append(r.error.is_none());
        probs.append(r.error.is_none());
    }
    let batch = RecordBatch::try_from_iter([
        ("path", strings(&|r| Some(r.path.clone()))),
        (
            "label",
            strings(&|r| r.predictions.first().map(|p| p.label.clone())),
        ),
        (
            "probability",
            Arc::new(
                rows.iter()
                    .map(|r| r.predictions.first().map(|p| p.probability))
                    .collect::<Float32Array>(),
            ) as ArrayRef,
        ),
        ("labels", Arc::new(labels.finish()) as ArrayRef),
        ("probabilities", Arc::new(probs.finish()) as ArrayRef),
        (
            "error_stage",
            strings(&|r| r.error.as_ref().map(|e| e.stage.clone())),
        ),
        (
            "error",
            strings(&|r| r.error.as_ref().map(|e| e.message.clone())),
        ),
    ])?;
    let mut buf = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None)?;
    w.write(&batch)?;
    w.close()?;
    Ok(buf)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    headstart_provision::write_atomic(path, bytes)
        .with_context(|| format!("writing {}", path.display()))
}
