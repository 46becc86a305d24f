//! `headstart predict`: classify image files, folders or manifests with a saved
//! head, reusing cached features when a file's content hash is in a cache. A
//! file that cannot be classified gives a row with the error; the command then
//! exits with [`super::EXIT_PARTIAL`].

use std::process::ExitCode;

use anyhow::{Context, Result};
use headstart_extract::MAX_BATCH;
use headstart_serve::{Classifier, Record, records};

use super::Ctx;
use super::config::{open_for_head, session_config};
use crate::cli::{PredictArgs, PredictFormat};
use crate::progress::Bar;

pub fn run(ctx: &Ctx, a: PredictArgs) -> Result<ExitCode> {
    use super::require;
    require(a.top_k >= 1, || "--top-k must be at least 1".into())?;
    require((1..=MAX_BATCH).contains(&a.batch_size), || {
        format!("--batch-size must be between 1 and {MAX_BATCH}")
    })?;
    require(
        !matches!(a.format, PredictFormat::Parquet) || a.output.is_some(),
        || "--format parquet writes a file: pass --output FILE".into(),
    )?;
    // Checked here, although the backbone only opens when some file is not cached.
    let session = session_config(ctx, &a.device)?;
    let mut classifier =
        Classifier::open(&a.head, |head| open_for_head(ctx, head, &a.model, &session))?
            .with_caches(&a.cache)?
            .with_max_file_size(a.limits.max_file_size)?;
    let bar = Bar::new(ctx.quiet);
    let predictions = classifier.predict(&a.inputs, a.batch_size, &bar)?;
    bar.finish();

    let classes = classifier.head().class_names();
    let rows: Vec<Record> = predictions
        .iter()
        .map(|p| Record::new(p, classes, a.top_k))
        .collect();
    let failures = rows.iter().filter(|r| r.error.is_some()).count();
    let from_cache = rows.iter().filter(|r| r.source == Some("cache")).count();
    match a.format {
        PredictFormat::Parquet => {
            let path = a.output.as_deref().context("--output")?;
            super::write_file(path, &records::parquet(&rows)?)?;
            ctx.log(&format!("wrote {} rows to {}", rows.len(), path.display()));
        }
        f => {
            let text = match f {
                // Paths and labels on a terminal: escaped by the table itself.
                PredictFormat::Table => records::table(&rows),
                PredictFormat::Csv => records::csv(&rows, a.top_k.min(classes.len())),
                _ => serde_json::to_string_pretty(&rows)? + "\n",
            };
            match &a.output {
                Some(path) => super::write_file(path, text.as_bytes())?,
                None => print!("{text}"),
            }
        }
    }
    ctx.log(&format!(
        "{} images: {} classified ({} from cached features), {} failed",
        rows.len(),
        rows.len() - failures,
        from_cache,
        failures
    ));
    Ok(if failures > 0 {
        ExitCode::from(super::EXIT_PARTIAL)
    } else {
        ExitCode::SUCCESS
    })
}
