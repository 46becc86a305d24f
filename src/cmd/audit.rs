//! `headstart audit`: probable label errors and duplicates across classes.

use std::process::ExitCode;

use anyhow::{Context, Result};
use headstart_fit::{AUDIT_HTML, AUDIT_SET, AuditParams, AuditReport, ISSUES_CSV};

use super::{Ctx, report};
use crate::cli::AuditArgs;

pub fn run(ctx: &Ctx, a: AuditArgs) -> Result<ExitCode> {
    let params = AuditParams {
        folds: a.folds,
        seed: a.head.seed,
        fit: super::fit::head_params(&a.head, &[0.01, 0.1, 1.0])?,
    }
    .check()?;
    report::check_args(&a.report)?;
    AUDIT_SET.check(&a.out, a.force.force)?;
    let table = headstart_cache::read_features(&a.caches)?;
    ctx.log(&format!(
        "read {} rows; auditing the labelled ones ({} folds)",
        table.len(),
        a.folds
    ));
    let audit = headstart_fit::audit(&table, &params)?;
    let title = format!("headstart audit: {}", a.out.display());
    let page = report::audit_report(
        &a.report,
        &a.caches,
        &report::context(&title, &a.caches, &table),
        &audit,
    );
    let dir = audit
        .save(&a.out, a.force.force, page.as_deref())
        .with_context(|| format!("saving the audit to {}", a.out.display()))?;
    print!("{}", summary(&audit, a.top));
    println!("label issues: {}", dir.join(ISSUES_CSV).display());
    if page.is_some() {
        println!("report: {}", dir.join(AUDIT_HTML).display());
    }
    Ok(ExitCode::SUCCESS)
}

fn summary(a: &AuditReport, top: usize) -> String {
    use headstart_files::escape as esc;
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
            esc(&a.small_classes.join(", ")),
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
            i.score,
            esc(&i.given),
            esc(&i.suggested),
            esc(&i.path)
        );
    }
    if a.issues.len() > top {
        let _ = writeln!(o, "  ... {} more in {ISSUES_CSV}", a.issues.len() - top);
    }
    for d in a.duplicates.iter().take(top) {
        let _ = writeln!(
            o,
            "  duplicate ({:?}, cos {:.3}): {} [{}] ~ {} [{}]",
            d.kind,
            d.cosine,
            esc(&d.path),
            esc(&d.label),
            esc(&d.other_path),
            esc(&d.other_label)
        );
    }
    o
}
