//! `headstart audit`: probable label errors and duplicates across classes.

use std::process::ExitCode;

use anyhow::{Context, Result};
use headstart_fit::{AuditParams, AuditReport};

use super::{Ctx, report};
use crate::cli::AuditArgs;

/// File names written into `--out`.
pub const ISSUES_CSV: &str = "label_issues.csv";
/// The whole audit as JSON.
pub const AUDIT_JSON: &str = "audit.json";

pub fn run(ctx: &Ctx, a: AuditArgs) -> Result<ExitCode> {
    let params = AuditParams {
        folds: a.folds,
        seed: a.head.seed,
        fit: super::fit::head_params(&a.head, &[0.01, 0.1, 1.0])?,
    }
    .check()?;
    report::check_args(&a.report)?;
    let table = headstart_cache::read_features(&a.caches)?;
    ctx.log(&format!(
        "read {} rows; auditing the labelled ones ({} folds)",
        table.len(),
        a.folds
    ));
    let audit = headstart_fit::audit(&table, &params)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    super::write_file(&a.out.join(ISSUES_CSV), &issues_csv(&audit)?)?;
    super::write_file(&a.out.join(AUDIT_JSON), &serde_json::to_vec_pretty(&audit)?)?;
    let title = format!("headstart audit: {}", a.out.display());
    let page = report::write_audit_report(
        &a.report,
        &a.caches,
        &report::context(&title, &a.caches, &table),
        &audit,
        &a.out,
    );
    print!("{}", crate::term::escape_lines(&summary(&audit, a.top)));
    println!("label issues: {}", a.out.join(ISSUES_CSV).display());
    if let Some(p) = page {
        println!("report: {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn issues_csv(a: &AuditReport) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["path", "given_label", "suggested_label", "score"])?;
    for i in &a.issues {
        w.write_record([
            i.path.as_str(),
            &i.given,
            &i.suggested,
            &format!("{:.6}", i.score),
        ])?;
    }
    Ok(w.into_inner()?)
}

fn summary(a: &AuditReport, top: usize) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{} images, {} folds: out-of-fold accuracy {:.2}%, {} probable label errors, {} duplicates across classes ({:.1} s)",
        a.rows,
        a.folds,
        100.0 * a.oof_accuracy,
        a.issues.len(),
        a.duplicates.len(),
        a.seconds
    );
    if !a.small_classes.is_empty() {
        let _ = writeln!(
            o,
            "  too few images to audit fully (fewer than the folds, or all in one fold): {}; {} image(s) not judged",
            a.small_classes.join(", "),
            a.unjudged
        );
    }
    if !a.issues.is_empty() {
        let _ = writeln!(o, "  score  given -> suggested  path");
    }
    for i in a.issues.iter().take(top) {
        let _ = writeln!(
            o,
            "  {:.3}  {} -> {}  {}",
            i.score, i.given, i.suggested, i.path
        );
    }
    if a.issues.len() > top {
        let _ = writeln!(o, "  ... {} more in {ISSUES_CSV}", a.issues.len() - top);
    }
    for d in a.duplicates.iter().take(top) {
        let _ = writeln!(
            o,
            "  duplicate ({:?}, cos {:.3}): {} [{}] ~ {} [{}]",
            d.kind, d.cosine, d.path, d.label, d.other_path, d.other_label
        );
    }
    o
}
