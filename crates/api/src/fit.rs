//! `fit` and `eval`: heads on cached features, saved with their report.

use std::path::{Path, PathBuf};

use headstart_cache::FeatureTable;
use headstart_fit::{
    CheckedFitParams, EVAL_REPORT_FILE, FitOutcome, FitParams, HEAD_SET, Head, HeadKind, Metrics,
    REPORT_FILE, Role,
};

use crate::options::{EvalOptions, FitOptions, HeadOptions};
use crate::report;
use crate::{Env, Error};

/// What `fit` made.
#[derive(Debug)]
pub struct FitResult {
    /// The fitted head, its sweep and its metrics.
    pub outcome: FitOutcome,
    /// The head folder written.
    pub dir: PathBuf,
    /// Its report, unless `no_report`.
    pub report: Option<PathBuf>,
    /// Rows read from the caches.
    pub rows: usize,
}

/// What `eval` measured.
#[derive(Debug)]
pub struct EvalResult {
    /// The metrics.
    pub metrics: Metrics,
    /// The report written into the head folder, when there is one.
    pub report: Option<PathBuf>,
}

/// Fit parameters from the head options; `default_c` when `c` is empty (the
/// command's own sweep: nearest class mean has none).
pub(crate) fn head_params(h: &HeadOptions, default_c: &[f64]) -> Result<FitParams, Error> {
    let mut p = FitParams::new();
    p.head = h.head.parse()?;
    if !h.hidden.is_empty() {
        if p.head != HeadKind::Mlp {
            return Err(Error::param(
                "hidden",
                format!("{:?}", h.hidden),
                "sizes the hidden layer of an MLP head: add --head mlp, or drop --hidden",
            ));
        }
        p.hidden = h.hidden.clone();
    }
    p.solver = h.solver.parse()?;
    p.c = match (h.c.is_empty(), p.head) {
        (true, HeadKind::Ncm) => FitParams::new().c,
        (true, _) => default_c.to_vec(),
        (false, _) => h.c.clone(),
    };
    p.class_weight = h.class_weight.parse()?;
    p.normalize = h.normalize.parse()?;
    p.val_fraction = h.val_fraction;
    p.seed = h.seed;
    Ok(p)
}

/// The checked fit parameters of `o`.
pub(crate) fn fit_params(o: &FitOptions) -> Result<CheckedFitParams, Error> {
    let mut p = head_params(&o.head, &[1.0])?;
    p.views = (!o.views.is_empty()).then(|| o.views.clone());
    p.dedupe = o.dedupe;
    Ok(p.check()?)
}

/// Fits a head on `caches` (feature caches, or Parquet files with a
/// `feature` column) and saves it, with its report, into `out` as one
/// artifact set. Options and `out` are checked before anything is read.
pub fn fit(env: &Env, caches: &[PathBuf], out: &Path, o: &FitOptions) -> Result<FitResult, Error> {
    let params = fit_params(o)?;
    report::check(&o.report)?;
    HEAD_SET.check(out, o.force.force)?;
    let table = headstart_cache::read_features(caches)?;
    env.log(&format!(
        "loaded {} rows of {}-d features from {}",
        table.len(),
        table.dim,
        joined(caches)
    ));
    let outcome = headstart_fit::fit(&table, &params)?;
    save(
        outcome,
        &table,
        caches,
        out,
        o,
        &format!("headstart fit: {}", out.display()),
    )
}

/// Saves `outcome` (fitted on `table` from `caches`) into `out` with the
/// report titled `title`.
pub(crate) fn save(
    outcome: FitOutcome,
    table: &FeatureTable,
    caches: &[PathBuf],
    out: &Path,
    o: &FitOptions,
    title: &str,
) -> Result<FitResult, Error> {
    let shown = outcome
        .test_metrics
        .as_ref()
        .unwrap_or(&outcome.val_metrics);
    let html = report::head_report(
        &o.report,
        caches,
        &report::context(title, caches, table),
        Some(&outcome),
        shown,
    );
    let extra: Vec<(&str, &[u8])> = html.iter().map(|h| (REPORT_FILE, h.as_bytes())).collect();
    let dir = outcome.save(out, o.force.force, &extra)?;
    Ok(FitResult {
        report: html.map(|_| dir.join(REPORT_FILE)),
        outcome,
        dir,
        rows: table.len(),
    })
}

/// Evaluates the head in `head` on other labelled features, and adds its
/// report to the head folder (republished as a set). A report that cannot
/// be written is logged, not an error: the metrics are the result.
pub fn eval(
    env: &Env,
    head: &Path,
    caches: &[PathBuf],
    o: &EvalOptions,
) -> Result<EvalResult, Error> {
    let split = match &o.split {
        None => None,
        Some(s) => {
            Some(Role::parse(s).ok_or_else(|| Error::param("split", s, "use train, val or test"))?)
        }
    };
    report::check(&o.report)?;
    let loaded = Head::load(head)?;
    let table = headstart_cache::read_features(caches)?;
    let metrics = headstart_fit::evaluate_with(
        &loaded,
        &table,
        &headstart_fit::EvalOptions {
            split,
            ..headstart_fit::EvalOptions::default()
        },
    )?;
    let title = format!("headstart eval: {}", head.display());
    let mut context = report::context(&title, caches, &table);
    // The majority baseline predicts the head's most frequent training class.
    if let Some(t) = &loaded.meta().training {
        context.train_class_counts = t.train_class_counts.clone();
    }
    let mut written = None;
    if let Some(html) = report::head_report(&o.report, caches, &context, None, &metrics) {
        match headstart_fit::add_head_files(head, &[(EVAL_REPORT_FILE, html.as_bytes())]) {
            Ok(dir) => written = Some(dir.join(EVAL_REPORT_FILE)),
            Err(e) => env.log(&format!("warning: no report: {e} (--no-report skips it)")),
        }
    }
    Ok(EvalResult {
        metrics,
        report: written,
    })
}

/// Paths joined with `, `, for messages.
pub(crate) fn joined(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|c| c.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: `--hidden` with a softmax head was silently ignored.
    #[test]
    fn hidden_needs_an_mlp_head() {
        let mut o = FitOptions::default();
        o.head.hidden = vec![512];
        let e = fit_params(&o).unwrap_err();
        assert!(e.to_string().contains("add --head mlp"), "{e}");
        o.head.head = "mlp".into();
        assert!(fit_params(&o).is_ok());
        assert!(fit_params(&FitOptions::default()).is_ok());
    }
}
