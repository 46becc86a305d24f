//! Stage 2 of headstart: fit classifier heads (softmax regression, a small
//! MLP, nearest class mean) on cached CNN feature vectors, evaluate them, and
//! save them as `head.safetensors` + `head.json`.
//!
//! ```
//! use headstart_cache::FeatureTable;
//! use headstart_fit::{FitParams, Head, fit};
//! # fn main() -> Result<(), headstart_fit::FitError> {
//! // Two classes of 3-d features around (1, 0, 0) and (0, 1, 0); every fifth
//! // image is marked `test`, validation rows are held out by content hash.
//! let mut table = FeatureTable { dim: 3, ..Default::default() };
//! for i in 0..40 {
//!     let (class, x) = if i % 2 == 0 { ("cat", [1.0, 0.0, 0.0]) } else { ("dog", [0.0, 1.0, 0.0]) };
//!     let wobble = (i as f32 * 0.37).sin() * 0.2;
//!     table.paths.push(format!("{class}/{i}.png"));
//!     table.labels.push(Some(class.to_string()));
//!     table.splits.push((i % 5 == 0).then(|| "test".to_string()));
//!     table.content_hashes.push(format!("hash-{i}"));
//!     table.views.push("original".into());
//!     table.features.extend(x.map(|v| v + wobble));
//! }
//!
//! let params = FitParams::new().c([0.1, 1.0, 10.0]).check()?;
//! let outcome = fit(&table, &params)?;
//! print!("{}", outcome.to_text());
//! let test = outcome.test_metrics.as_ref().expect("rows marked test");
//! assert_eq!(test.summary.accuracy, 1.0);
//!
//! let dir = tempfile::tempdir().unwrap();
//! outcome.save(dir.path(), false, &[])?;
//! let head = Head::load(dir.path())?;
//! assert_eq!(head.class_names(), ["cat", "dog"]);
//! let probs = head.predict_proba(&[0.9, 0.1, 0.0], 1); // one row, K probabilities
//! assert!(probs[0] > probs[1]);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod adam;
mod audit;
mod data;
mod engine;
mod error;
mod head;
mod lbfgs;
mod leak;
mod linear;
mod metrics;
mod mlp;
mod ncm;
mod normalize;
mod params;
mod precond;
mod reference;
mod rng;
mod save;
mod split;
mod svg;
mod sweep;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use headstart_cache::FeatureTable;
use serde::Serialize;

pub use audit::{
    AUDIT_HTML, AUDIT_JSON, AUDIT_SET, AuditParams, AuditReport, CheckedAuditParams,
    CrossClassDuplicate, ISSUES_CSV, LabelIssue, MAX_FOLDS, audit,
};
pub use data::{ORIGINAL_VIEW, check_table, is_original, merge_tables};
pub use error::FitError;
pub use head::{
    FORMAT_VERSION, Head, HeadMeta, HeadMetrics, HeadWeights, META_FILE, TENSORS_FILE, TrainingInfo,
};
pub use leak::{LeakKind, LeakPair, LeakReport};
pub use metrics::{
    CALIBRATION_BINS, Calibration, CalibrationBin, ClassMetrics, DENSE_CONFUSION_MAX_CLASSES,
    Metrics, MetricsSummary, Mistake, Prediction, TEXT_CLASS_ROWS, TEXT_CONFUSION_MAX_CLASSES,
};
pub use normalize::Normalizer;
pub use params::{
    CheckedFitParams, ClassWeight, FitParams, HeadKind, Normalize, SelectBy, Solver, parse_list,
};
pub use save::{HEAD_SET, add_head_files};
pub use split::{ClassCounts, Role, SplitSummary, ValSource};
pub use sweep::SweepRow;

use engine::Design;

/// Everything `fit` produces. Serialises (without the head) as metrics.json.
#[derive(Debug, Clone, Serialize)]
pub struct FitOutcome {
    /// The selected head, ready to save.
    #[serde(skip)]
    pub head: Head,
    /// How rows were split.
    pub split: SplitSummary,
    /// Every candidate fitted, the selected one marked.
    pub sweep: Vec<SweepRow>,
    /// Criterion used to pick the candidate.
    pub select_by: SelectBy,
    /// Metrics of the selected head on validation rows.
    pub val_metrics: Metrics,
    /// Metrics on test rows, when the cache marks some.
    pub test_metrics: Option<Metrics>,
    /// Duplicates between training and held-out images.
    pub leak: LeakReport,
    /// Seconds for the whole call.
    pub fit_seconds: f64,
    /// Seconds per phase.
    pub timings: Timings,
}

/// Wall-clock seconds of the phases of [`fit`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Timings {
    /// Table checks, split, NaN check.
    pub split: f64,
    /// Leak check.
    pub leak: f64,
    /// Normalisation statistics.
    pub normalize: f64,
    /// All sweep candidates.
    pub sweep: f64,
    /// Final metrics.
    pub metrics: f64,
}

/// File names written by [`FitOutcome::save`] besides the head files.
pub const METRICS_FILE: &str = "metrics.json";
/// The HTML report that `headstart fit` writes into the head folder (a head
/// artifact: a new save removes a stale one).
pub const REPORT_FILE: &str = "report.html";
/// The HTML report that `headstart eval` writes into the head folder.
pub const EVAL_REPORT_FILE: &str = "report_eval.html";

impl FitOutcome {
    /// A readable summary: split, sweep table, leak check, metrics.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let s = &self.split;
        let _ = writeln!(
            o,
            "split: {} train rows ({} images), {} val ({}), {} test; {} unlabeled skipped, {} augmented rows unused",
            s.train_rows,
            s.train_images,
            s.val_rows,
            match s.val_source {
                ValSource::Given => "given",
                ValSource::Hash => "hash split",
            },
            s.test_rows,
            s.unlabeled_skipped,
            s.views_excluded
        );
        let _ = writeln!(o, "sweep (selected by validation {}):", self.select_by);
        let _ = writeln!(
            o,
            "  {:>10}  {:>6}  {:>12}  {:>8}  {:>5}  {:>6}  {:>8}",
            "C", "hidden", "val log-loss", "val acc", "iters", "epochs", "seconds"
        );
        for r in &self.sweep {
            let _ = writeln!(
                o,
                "  {:>10}  {:>6}  {:>12.4}  {:>7.2}%  {:>5}  {:>6}  {:>8.2}{}",
                r.c.map_or("-".into(), |c| format!("{c}")),
                r.hidden.map_or("-".into(), |h| h.to_string()),
                r.val_log_loss,
                100.0 * r.val_accuracy,
                r.iterations,
                r.epochs,
                r.seconds,
                if r.selected { "  *" } else { "" }
            );
        }
        let l = &self.leak;
        let _ = writeln!(
            o,
            "leak check ({}, cosine >= {}): {} exact and {} near duplicates of training images among held-out rows{}",
            l.method,
            l.threshold,
            l.exact_duplicates,
            l.near_duplicates,
            if l.dropped > 0 {
                format!(", {} dropped", l.dropped)
            } else if l.pairs.is_empty() {
                String::new()
            } else {
                " (kept; `headstart fit --dedupe` drops them)".into()
            }
        );
        for pair in l.pairs.iter().take(10) {
            let _ = writeln!(
                o,
                "  {} {} ~ {} (cos {:.3})",
                pair.heldout_split.as_str(),
                headstart_files::escape(&pair.heldout_path),
                headstart_files::escape(&pair.train_path),
                pair.cosine
            );
        }
        let all = format!("`{METRICS_FILE}` in the head folder");
        o.push_str(&self.val_metrics.to_text_with(TEXT_CLASS_ROWS, &all));
        if let Some(t) = &self.test_metrics {
            o.push_str(&t.to_text_with(TEXT_CLASS_ROWS, &all));
        }
        let _ = writeln!(o, "fit took {:.2} s", self.fit_seconds);
        o
    }

    /// Saves the head files, `metrics.json`, `confusion_val.svg`
    /// (`confusion_test.svg` too when there is a test set) and `extra` files
    /// (`(name, bytes)`, e.g. the report) into `dir` as one artifact set
    /// ([`HEAD_SET`]): all are written into a new folder that then takes
    /// `dir`'s place in one atomic step. A failed or killed save leaves the
    /// previous head intact; no artifact of an earlier fit survives beside
    /// the new head. A folder that is not a head is refused: one holding
    /// other files always, one holding only head file names without
    /// `head.json` unless `force`. Returns the folder written.
    pub fn save(
        &self,
        dir: &Path,
        force: bool,
        extra: &[(&str, &[u8])],
    ) -> Result<PathBuf, FitError> {
        HEAD_SET.publish(dir, force, false, |tmp| {
            self.write_files(tmp)?;
            save::write_extra(tmp, extra)
        })
    }

    fn write_files(&self, dir: &Path) -> Result<(), FitError> {
        self.head.save(dir)?;
        let path = dir.join(METRICS_FILE);
        let file = std::fs::File::create(&path).map_err(|e| FitError::io(&path, e))?;
        let mut w = std::io::BufWriter::new(file);
        serde_json::to_writer_pretty(&mut w, self).map_err(|e| FitError::Json {
            path: path.clone(),
            source: e,
        })?;
        use std::io::Write as _;
        w.write_all(b"\n")
            .and_then(|()| w.flush())
            .map_err(|e| FitError::io(&path, e))?;
        for m in std::iter::once(&self.val_metrics).chain(&self.test_metrics) {
            let p = dir.join(format!("confusion_{}.svg", m.set));
            std::fs::write(&p, m.confusion_svg()).map_err(|e| FitError::io(&p, e))?;
        }
        Ok(())
    }
}

/// What training gives back to [`fit`].
struct Trained {
    norm: Normalizer,
    sweep: Vec<SweepRow>,
    best: sweep::Best,
    normalize_secs: f64,
    sweep_secs: f64,
}

/// Normalisation and the sweep on `plan`'s training rows, selected on its
/// validation rows (there must be some).
fn train(
    table: &FeatureTable,
    p: &CheckedFitParams,
    plan: &split::SplitPlan,
) -> Result<Trained, FitError> {
    if plan.val.is_empty() {
        return Err(FitError::NoValidationRows(format!(
            "{} training rows and none held out",
            plan.train.len()
        )));
    }
    let k = plan.classes.len();
    let lap = Instant::now();
    let norm = Normalizer::fit(p.normalize, table, &plan.train)?;
    let normalize_secs = lap.elapsed().as_secs_f64();
    let y_train = plan.labels(&plan.train);
    let weights: Vec<f32> = match p.class_weight {
        ClassWeight::None => vec![1.0; y_train.len()],
        ClassWeight::Balanced => {
            let mut counts = vec![0usize; k];
            y_train.iter().for_each(|&c| counts[c as usize] += 1);
            let n = y_train.len() as f64;
            y_train
                .iter()
                .map(|&c| (n / (k as f64 * counts[c as usize] as f64)) as f32)
                .collect()
        }
    };
    let train = Design::new(table, &norm, plan.train.clone(), y_train, weights);
    let val = Design::new(
        table,
        &norm,
        plan.val.clone(),
        plan.labels(&plan.val),
        vec![1.0; plan.val.len()],
    );
    let lap = Instant::now();
    let (sweep, best) = sweep::run(p, &train, &val, k)?;
    let sweep_secs = lap.elapsed().as_secs_f64();
    drop((train, val));
    Ok(Trained {
        norm,
        sweep,
        best,
        normalize_secs,
        sweep_secs,
    })
}

/// Drops the `flagged` rows of `heldout` from `plan` (`--dedupe`) and
/// recounts its summary; returns how many were dropped.
fn dedupe(plan: &mut split::SplitPlan, heldout: &[(usize, Role)], flagged: &[bool]) -> usize {
    let drop: std::collections::HashSet<usize> = heldout
        .iter()
        .zip(flagged)
        .filter(|(_, f)| **f)
        .map(|((r, _), _)| *r)
        .collect();
    plan.val.retain(|r| !drop.contains(r));
    plan.test.retain(|r| !drop.contains(r));
    let s = &mut plan.summary;
    s.deduped = drop.len();
    s.val_rows = plan.val.len();
    s.test_rows = plan.test.len();
    for cc in &mut s.per_class {
        cc.val = 0;
        cc.test = 0;
    }
    for (rows, is_val) in [(&plan.val, true), (&plan.test, false)] {
        for &r in rows.iter() {
            if let Some(c) = plan.class_of[r] {
                let cc = &mut s.per_class[c as usize];
                if is_val { cc.val += 1 } else { cc.test += 1 }
            }
        }
    }
    drop.len()
}

/// Fits a head on `table` as described by `params` (see the crate docs and
/// [`FitParams`]): split, leak check, normalisation, sweep, metrics.
pub fn fit(table: &FeatureTable, params: &CheckedFitParams) -> Result<FitOutcome, FitError> {
    let t0 = Instant::now();
    let p = params;
    check_table(table)?;
    let mut plan = split::plan(table, p.val_fraction, p.seed, p.views.as_deref())?;
    let used: Vec<usize> = plan
        .train
        .iter()
        .chain(&plan.val)
        .chain(&plan.test)
        .copied()
        .collect();
    data::check_finite(table, &used)?;
    drop(used);
    let mut timings = Timings {
        split: t0.elapsed().as_secs_f64(),
        ..Default::default()
    };
    // Leak check: original training images against every held-out row.
    let train_orig: Vec<usize> = plan
        .train
        .iter()
        .copied()
        .filter(|&r| is_original(&table.views[r]))
        .collect();
    let heldout: Vec<(usize, Role)> = plan
        .val
        .iter()
        .map(|&r| (r, Role::Val))
        .chain(plan.test.iter().map(|&r| (r, Role::Test)))
        .collect();
    let check = || {
        let lap = Instant::now();
        let found = leak::check(table, &train_orig, &heldout, p.near_dup_threshold);
        (found, lap.elapsed().as_secs_f64())
    };
    let (leak, trained) = if p.dedupe {
        let ((mut leak, flagged), secs) = check();
        timings.leak = secs;
        leak.dropped = dedupe(&mut plan, &heldout, &flagged);
        if plan.val.is_empty() && leak.dropped > 0 {
            return Err(FitError::NoValidationRows(
                "every validation row was dropped as a duplicate".into(),
            ));
        }
        (leak, train(table, p, &plan)?)
    } else {
        // The check changes no rows, so it runs beside the training on the
        // pool: each fills the other's single-threaded stretches.
        let (((leak, _), secs), trained) = rayon::join(check, || train(table, p, &plan));
        timings.leak = secs;
        (leak, trained?)
    };
    (timings.normalize, timings.sweep) = (trained.normalize_secs, trained.sweep_secs);
    let Trained {
        norm, sweep, best, ..
    } = trained;
    let y_val = plan.labels(&plan.val);
    let lap = Instant::now();
    let selected = sweep.iter().find(|r| r.selected).cloned();

    let meta = HeadMeta {
        format_version: FORMAT_VERSION,
        head: p.head,
        class_names: plan.classes.clone(),
        feature_dim: table.dim,
        hidden: best.hidden,
        normalization: p.normalize,
        model_fingerprint: table.model_fingerprint.clone(),
        model_name: table.model_name.clone(),
        tensors: Default::default(),
        training: None,
        metrics: HeadMetrics::default(),
    };
    let mut head = Head::new(meta, norm, best.theta);
    let ids =
        |rows: &[usize]| -> Vec<(&str, &str)> { rows.iter().map(|&r| table.row_id(r)).collect() };
    let probs = head.predict_rows(table, &plan.val);
    let val_metrics = Metrics::compute(
        "val",
        &plan.classes,
        &y_val,
        &probs,
        &ids(&plan.val),
        p.n_mistakes,
    );
    let test_metrics = (!plan.test.is_empty()).then(|| {
        let probs = head.predict_rows(table, &plan.test);
        Metrics::compute(
            "test",
            &plan.classes,
            &plan.labels(&plan.test),
            &probs,
            &ids(&plan.test),
            p.n_mistakes,
        )
    });
    timings.metrics = lap.elapsed().as_secs_f64();
    let fit_seconds = t0.elapsed().as_secs_f64();
    let m = head.meta_mut();
    m.metrics = HeadMetrics {
        val: Some(val_metrics.summary.clone()),
        test: test_metrics.as_ref().map(|t| t.summary.clone()),
    };
    m.training = Some(TrainingInfo {
        config: p.params().clone(),
        solver: if p.head == HeadKind::Ncm {
            Solver::Auto
        } else {
            p.effective_solver()
        },
        c: selected.as_ref().and_then(|r| r.c),
        hidden: best.hidden,
        temperature: best.temperature,
        iterations: selected.as_ref().map_or(0, |r| r.iterations),
        epochs: selected.as_ref().map_or(0, |r| r.epochs),
        train_rows: plan.summary.train_rows,
        val_rows: plan.summary.val_rows,
        test_rows: plan.summary.test_rows,
        train_class_counts: plan.summary.per_class.iter().map(|c| c.train).collect(),
        fit_seconds,
    });
    Ok(FitOutcome {
        head,
        split: plan.summary,
        sweep,
        select_by: p.select_by,
        val_metrics,
        test_metrics,
        leak,
        fit_seconds,
        timings,
    })
}

/// Options of [`evaluate_with`].
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Only rows whose `split` column is this (e.g. `Role::Test`); None: all rows.
    pub split: Option<Role>,
    /// How many most-confident mistakes to list.
    pub n_mistakes: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            split: None,
            n_mistakes: 20,
        }
    }
}

/// Evaluates `head` on every `original`-view row of `table` (each needs a
/// label the head knows); lists the 20 most confident mistakes.
pub fn evaluate(head: &Head, table: &FeatureTable) -> Result<Metrics, FitError> {
    evaluate_with(head, table, &EvalOptions::default())
}

/// [`evaluate`] with options (split filter, number of mistakes).
pub fn evaluate_with(
    head: &Head,
    table: &FeatureTable,
    opts: &EvalOptions,
) -> Result<Metrics, FitError> {
    check_table(table)?;
    head.check_compatible(table.model_fingerprint.as_deref(), table.dim)?;
    let mut rows: Vec<usize> = Vec::new();
    for r in 0..table.len() {
        if !is_original(&table.views[r]) {
            continue;
        }
        if let Some(want) = opts.split {
            let given = table.splits[r].as_deref().and_then(Role::parse);
            if given != Some(want) {
                continue;
            }
        }
        rows.push(r);
    }
    if rows.is_empty() {
        if !table.is_empty() && !table.views.iter().any(|v| is_original(v)) {
            return Err(data::no_original_view(table));
        }
        return Err(FitError::NoEvalRows);
    }
    let missing: Vec<usize> = rows
        .iter()
        .copied()
        .filter(|&r| table.labels[r].is_none())
        .collect();
    if let Some(&first) = missing.first() {
        return Err(FitError::MissingLabels {
            count: missing.len(),
            example_path: table.paths[first].clone(),
        });
    }
    let index: std::collections::HashMap<&str, u32> = head
        .class_names()
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i as u32))
        .collect();
    let mut y = Vec::with_capacity(rows.len());
    let mut unknown: std::collections::BTreeSet<&str> = Default::default();
    let (mut n_unknown, mut example) = (0usize, None);
    for &r in &rows {
        let l = table.labels[r].as_deref().unwrap_or_default();
        match index.get(l) {
            Some(&c) => y.push(c),
            None => {
                unknown.insert(l);
                n_unknown += 1;
                example.get_or_insert(r);
            }
        }
    }
    if let Some(ex) = example {
        return Err(FitError::UnknownLabels {
            labels: unknown.into_iter().map(String::from).collect(),
            count: n_unknown,
            example_path: table.paths[ex].clone(),
            known: head.class_names().to_vec(),
        });
    }
    data::check_finite(table, &rows)?;
    let probs = head.predict_rows(table, &rows);
    let ids: Vec<(&str, &str)> = rows.iter().map(|&r| table.row_id(r)).collect();
    let set = opts.split.map_or("eval", Role::as_str);
    Ok(Metrics::compute(
        set,
        head.class_names(),
        &y,
        &probs,
        &ids,
        opts.n_mistakes,
    ))
}

#[cfg(test)]
mod tests;
