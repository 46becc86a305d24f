//! `headstart extract`.

use std::process::ExitCode;

use anyhow::Result;

use super::Ctx;
use crate::cli::ExtractArgs;

pub fn run(ctx: &Ctx, a: ExtractArgs) -> Result<ExitCode> {
    let bar = ctx.bar();
    let summary = headstart_api::extract(&ctx.env, &a.input, &a.out, &a.options, &bar)?;
    bar.finish();
    if a.json {
        // One line, one write: shards sharing a stdout (scripts/shards.sh, array jobs
        // logging to one file) must not interleave their summaries.
        let mut line = serde_json::to_string(&summary)?;
        line.push('\n');
        std::io::Write::write_all(&mut std::io::stdout().lock(), line.as_bytes())?;
    } else {
        print!("{summary}");
    }
    Ok(if summary.failed > 0 {
        ExitCode::from(super::EXIT_PARTIAL)
    } else {
        ExitCode::SUCCESS
    })
}
