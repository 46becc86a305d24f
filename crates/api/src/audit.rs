//! `audit`: probable label errors and duplicates across classes.

use std::path::{Path, PathBuf};

use headstart_fit::{AUDIT_HTML, AUDIT_SET, AuditParams, AuditReport};

use crate::options::AuditOptions;
use crate::report;
use crate::{Env, Error};

/// What `audit` found and wrote.
#[derive(Debug)]
pub struct AuditResult {
    /// The audit: out-of-fold accuracy, issues ranked, duplicates.
    pub audit: AuditReport,
    /// The folder written (label_issues.csv, audit.json, audit.html).
    pub dir: PathBuf,
    /// The page, unless `no_report`.
    pub report: Option<PathBuf>,
}

/// Audits the labels of `caches` (K folds, confident learning) and saves the
/// result into `out` as one artifact set, options and `out` checked first.
pub fn audit(
    env: &Env,
    caches: &[PathBuf],
    out: &Path,
    o: &AuditOptions,
) -> Result<AuditResult, Error> {
    let params = AuditParams {
        folds: o.folds,
        seed: o.head.seed,
        fit: crate::fit::head_params(&o.head, &[0.01, 0.1, 1.0])?,
    }
    .check()?;
    report::check(&o.report)?;
    AUDIT_SET.check(out, o.force.force)?;
    let table = headstart_cache::read_features(caches)?;
    env.log(&format!(
        "read {} rows; auditing the labelled ones ({} folds)",
        table.len(),
        o.folds
    ));
    let audit = headstart_fit::audit(&table, &params)?;
    let title = format!("headstart audit: {}", out.display());
    let page = report::audit_report(
        &o.report,
        caches,
        &report::context(&title, caches, &table),
        &audit,
    );
    let dir = audit.save(out, o.force.force, page.as_deref())?;
    Ok(AuditResult {
        report: page.map(|_| dir.join(AUDIT_HTML)),
        audit,
        dir,
    })
}
