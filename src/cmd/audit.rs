//! `headstart audit`: probable label errors and duplicates across classes.

use std::process::ExitCode;

use anyhow::Result;
use headstart_fit::{AuditReport, ISSUES_CSV};

use super::Ctx;
use crate::cli::AuditArgs;

pub fn run(ctx: &Ctx, a: AuditArgs) -> Result<ExitCode> {
    let r = headstart_api::audit(&ctx.env, &a.caches, &a.out, &a.options)?;
    print!("{}", summary(&r.audit, a.top));
    println!("label issues: {}", r.dir.join(ISSUES_CSV).display());
    if let Some(p) = r.report {
        println!("report: {}", p.display());
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
