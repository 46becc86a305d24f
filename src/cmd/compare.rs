//! `headstart compare`: the same data and head sweep on several backbones.

use std::process::ExitCode;

use anyhow::Result;

use super::Ctx;
use crate::cli::CompareArgs;

pub fn run(ctx: &Ctx, a: CompareArgs) -> Result<ExitCode> {
    let bar = ctx.bar();
    let r = headstart_api::compare(&ctx.env, &a.input, &a.out, &a.options, &bar)?;
    bar.finish();
    print!("{}", r.to_text());
    println!(
        "saved {} and {}",
        r.dir.join("compare.csv").display(),
        r.dir.join("compare.svg").display()
    );
    Ok(ExitCode::SUCCESS)
}
