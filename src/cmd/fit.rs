//! `headstart fit` and `headstart eval`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use headstart_fit::{EvalOptions, FitParams, HEAD_SET, Head, Role};

use super::Ctx;
use super::report;
use crate::cli::{EvalArgs, FitArgs, HeadArgs};

/// Fit parameters from the head flags (unchecked: callers add their own);
/// `default_c` when `--c` is not given.
pub fn head_params(a: &HeadArgs, default_c: &[f64]) -> Result<FitParams> {
    let mut p = FitParams::new();
    p.head = a.head.parse()?;
    if !a.hidden.is_empty() {
        super::require(p.head == headstart_fit::HeadKind::Mlp, || {
            "--hidden sizes the hidden layer of an MLP head: add --head mlp, or drop --hidden"
                .into()
        })?;
        p.hidden = a.hidden.clone();
    }
    p.solver = a.solver.parse()?;
    p.c = match (a.c.is_empty(), p.head) {
        // nearest class mean has no C to sweep
        (true, headstart_fit::HeadKind::Ncm) => FitParams::new().c,
        (true, _) => default_c.to_vec(),
        (false, _) => a.c.clone(),
    };
    p.class_weight = a.class_weight.parse()?;
    p.normalize = a.normalize.parse()?;
    p.val_fraction = a.val_fraction;
    p.seed = a.seed;
    Ok(p)
}

/// Builds checked fit parameters from the flags.
pub fn params(a: &FitArgs) -> Result<headstart_fit::CheckedFitParams> {
    let mut p = head_params(&a.head, &[1.0])?;
    p.views = (!a.views.is_empty()).then(|| a.views.clone());
    p.dedupe = a.dedupe;
    Ok(p.check()?)
}

pub fn run(ctx: &Ctx, a: FitArgs) -> Result<ExitCode> {
    let params = params(&a)?;
    report::check_args(&a.report)?;
    HEAD_SET.check(&a.out, a.force.force)?;
    let table = headstart_cache::read_features(&a.caches)?;
    ctx.log(&format!(
        "loaded {} rows of {}-d features from {}",
        table.len(),
        table.dim,
        a.caches
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let outcome = headstart_fit::fit(&table, &params)?;
    let title = format!("headstart fit: {}", a.out.display());
    let shown = outcome
        .test_metrics
        .as_ref()
        .unwrap_or(&outcome.val_metrics);
    let html = report::head_report(
        &a.report,
        &a.caches,
        &report::context(&title, &a.caches, &table),
        Some(&outcome),
        shown,
    );
    let extra: Vec<(&str, &[u8])> = html
        .iter()
        .map(|h| (report::FIT_REPORT, h.as_bytes()))
        .collect();
    let dir = outcome
        .save(&a.out, a.force.force, &extra)
        .with_context(|| format!("saving the head to {}", a.out.display()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        print!("{}", outcome.to_text());
        println!("saved head to {}", dir.display());
        if html.is_some() {
            println!("report: {}", dir.join(report::FIT_REPORT).display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn eval(a: EvalArgs) -> Result<ExitCode> {
    let split = match &a.split {
        None => None,
        Some(s) => Some(Role::parse(s).ok_or_else(|| {
            super::Usage(format!("unknown --split `{s}`; use train, val or test"))
        })?),
    };
    report::check_args(&a.report)?;
    let head = Head::load(&a.head)?;
    let table = headstart_cache::read_features(&a.caches)?;
    let metrics = headstart_fit::evaluate_with(
        &head,
        &table,
        &EvalOptions {
            split,
            ..EvalOptions::default()
        },
    )
    .with_context(|| {
        let caches: Vec<String> = a.caches.iter().map(|c| c.display().to_string()).collect();
        format!(
            "evaluating the head {} on {}",
            a.head.display(),
            caches.join(", ")
        )
    })?;
    let title = format!("headstart eval: {}", a.head.display());
    let mut context = report::context(&title, &a.caches, &table);
    // The majority baseline predicts the head's most frequent training class.
    if let Some(t) = &head.meta().training {
        context.train_class_counts = t.train_class_counts.clone();
    }
    let mut written = None;
    if let Some(html) = report::head_report(&a.report, &a.caches, &context, None, &metrics) {
        // The head is republished with its report: readers never see a part.
        match headstart_fit::add_head_files(&a.head, &[(report::EVAL_REPORT, html.as_bytes())]) {
            Ok(dir) => written = Some(dir.join(report::EVAL_REPORT)),
            Err(e) => eprintln!(
                "headstart: warning: no report: {} (--no-report skips it)",
                crate::term::escape(&e.to_string())
            ),
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&metrics)?);
    } else {
        // Thousands of classes: the table shows the worst ones; --json has all.
        let all = "`headstart eval --json`";
        let text = metrics.to_text_with(headstart_fit::TEXT_CLASS_ROWS, all);
        print!("{text}");
        if let Some(p) = written {
            println!("report: {}", p.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn fit_args(flags: &[&str]) -> FitArgs {
        let argv = ["headstart", "fit", "cache", "--out", "head"];
        match Cli::try_parse_from(argv.iter().chain(flags))
            .unwrap()
            .command
        {
            Command::Fit(a) => a,
            _ => unreachable!("parsed a fit command"),
        }
    }

    /// Regression: `--hidden` with a softmax head was silently ignored.
    #[test]
    fn hidden_needs_an_mlp_head() {
        let e = params(&fit_args(&["--hidden", "512"])).unwrap_err();
        assert!(e.to_string().contains("add --head mlp"), "{e}");
        assert!(params(&fit_args(&["--head", "mlp", "--hidden", "512"])).is_ok());
        assert!(params(&fit_args(&[])).is_ok());
    }
}
