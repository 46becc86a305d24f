//! `headstart predict` (classify image files, folders or manifests with a
//! saved head; a file that cannot be classified gives a row with the error,
//! and the command exits with [`super::EXIT_PARTIAL`]) and `headstart export`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use headstart_serve::records;

use super::Ctx;
use crate::cli::{ExportArgs, PredictArgs, PredictFormat};

pub fn run(ctx: &Ctx, a: PredictArgs) -> Result<ExitCode> {
    if matches!(a.format, PredictFormat::Parquet) && a.output.is_none() {
        anyhow::bail!(headstart_api::Error::Param {
            name: "output",
            value: String::new(),
            message: "--format parquet writes a file: pass --output FILE".into(),
        });
    }
    let bar = ctx.bar();
    let p = headstart_api::predict(&ctx.env, &a.head, &a.inputs, &a.options, &bar)?;
    bar.finish();
    let rows = &p.rows;
    match a.format {
        PredictFormat::Parquet => {
            let path = a.output.as_deref().context("--output")?;
            super::write_file(path, &records::parquet(rows)?)?;
            ctx.log(&format!("wrote {} rows to {}", rows.len(), path.display()));
        }
        f => {
            let text = match f {
                // Paths and labels on a terminal: escaped by the table itself.
                PredictFormat::Table => records::table(rows),
                PredictFormat::Csv => records::csv(rows, a.options.top_k.min(p.classes.len())),
                _ => serde_json::to_string_pretty(rows)? + "\n",
            };
            match &a.output {
                Some(path) => super::write_file(path, text.as_bytes())?,
                None => print!("{text}"),
            }
        }
    }
    let from_cache = rows.iter().filter(|r| r.source == Some("cache")).count();
    ctx.log(&format!(
        "{} images: {} classified ({} from cached features), {} failed",
        rows.len(),
        rows.len() - p.failed(),
        from_cache,
        p.failed()
    ));
    Ok(if p.failed() > 0 {
        ExitCode::from(super::EXIT_PARTIAL)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn export(ctx: &Ctx, a: ExportArgs) -> Result<ExitCode> {
    let exported = headstart_api::export(&ctx.env, &a.head, &a.out, &a.options)?;
    print!("{}", exported.describe(&a.out));
    Ok(ExitCode::SUCCESS)
}
