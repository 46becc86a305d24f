//! `headstart fit` and `headstart eval`.

use std::process::ExitCode;

use anyhow::Result;

use super::Ctx;
use crate::cli::{EvalArgs, FitArgs};

pub fn run(ctx: &Ctx, a: FitArgs) -> Result<ExitCode> {
    let r = headstart_api::fit(&ctx.env, &a.caches, &a.out, &a.options)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r.outcome)?);
    } else {
        print!("{}", r.outcome.to_text());
        println!("saved head to {}", r.dir.display());
        if let Some(p) = r.report {
            println!("report: {}", p.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn eval(ctx: &Ctx, a: EvalArgs) -> Result<ExitCode> {
    let r = headstart_api::eval(&ctx.env, &a.head, &a.caches, &a.options)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r.metrics)?);
    } else {
        // Thousands of classes: the table shows the worst ones; --json has all.
        let all = "`headstart eval --json`";
        print!(
            "{}",
            r.metrics.to_text_with(headstart_fit::TEXT_CLASS_ROWS, all)
        );
        if let Some(p) = r.report {
            println!("report: {}", p.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
