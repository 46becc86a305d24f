//! `headstart extract`.

use std::process::ExitCode;

use anyhow::Result;
use headstart_extract::{Extractor, View};

use super::Ctx;
use super::config::{open_features, resolve_model, session_config, shard};
use crate::cli::ExtractArgs;
use crate::progress::Bar;

pub fn run(ctx: &Ctx, a: ExtractArgs) -> Result<ExitCode> {
    let views = a
        .views
        .iter()
        .map(|v| v.parse::<View>())
        .collect::<Result<Vec<_>, _>>()?;
    let extractor = Extractor::builder(&a.input, &a.out)
        .unlabeled(a.unlabeled)
        .label_from(a.label_from.parse()?)
        .batch_size(a.batch_size)
        .threads(a.threads)
        .views(views)
        .strict(a.strict)
        .prune(a.prune)
        .shard(shard(a.shard.as_deref())?)
        .flush_every(a.flush_every, std::time::Duration::from_secs(60))
        .max_file_size(a.limits.max_file_size)
        .build()?;
    let session = session_config(ctx, &a.device)?;
    // The model before the runtime: a wrong name is refused before anything is fetched.
    let mut model = resolve_model(ctx, &a.model, headstart_models::zoo::DEFAULT_MODEL)?;
    let rt = ctx.runtime_for(session.device)?;
    if a.precision == "int8" {
        let name = super::quantize::auto_name(&model, &a.input);
        // Shards of one run start together: one calibrates, the others wait and
        // reuse its model (two calibrations could differ in the last bit, and
        // the cache takes features of one fingerprint only).
        // The lock outside the models folder: a failed calibration leaves nothing there.
        let locks = ctx.home.dir("locks")?;
        let _calibrating =
            headstart_provision::Lock::acquire(&locks.join(format!("calibrate-{name}.lock")))?;
        if headstart_models::zoo::installed(&ctx.home, &name).is_none() {
            let plan = super::quantize::Plan {
                images: &a.input,
                samples: a.calibration.samples,
                percentile: a.calibration.percentile,
                keep_float: a.calibration.keep_float.clone(),
            };
            let (_, cal) = super::quantize::quantize_as(ctx, &model, &plan, &name, false)?;
            ctx.log(&format!(
                "installed {name}: int8 copy of {} calibrated on {} images of the input",
                model.name, cal.images
            ));
        }
        model = super::config::resolve_recipe(ctx, &name, &a.model.recipe)?;
    }
    let mut net = open_features(rt, &model, &session)?;
    let bar = Bar::new(ctx.quiet);
    let summary = extractor.run(&mut net, &bar)?;
    bar.finish();
    super::config::record_speed(ctx, &model, &summary);
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
