//! `extract`: images into a feature cache, with an int8 copy of the backbone
//! made on first use when asked for.

use std::path::Path;
use std::time::Duration;

use headstart_extract::{Extractor, Progress, Shard, Summary, View};

use crate::options::{DEFAULT_MODEL, ExtractOptions};
use crate::quantize::{auto_name, quantize_as};
use crate::{Env, Error};

/// Extracts the images of `input` (class folders, a manifest, tar shards or
/// image Parquet) into the cache `out`: every option is checked first, then
/// the backbone is resolved (a wrong name costs nothing), then the run. Files
/// that fail are error rows of the summary, not errors of the call.
pub fn extract(
    env: &Env,
    input: &Path,
    out: &Path,
    o: &ExtractOptions,
    progress: &dyn Progress,
) -> Result<Summary, Error> {
    let extractor = extractor(input, out, o)?;
    let int8 = match o.precision.as_str() {
        "fp32" => false,
        "int8" => true,
        p => return Err(Error::param("precision", p, "use fp32 or int8")),
    };
    if int8 {
        crate::quantize::check(&o.calibration)?;
    }
    let session = env.session_config(&o.device)?;
    let mut model = env.resolve_backbone(&o.backbone, DEFAULT_MODEL)?;
    if int8 {
        let name = auto_name(&model, input);
        // Shards of one run start together: one calibrates, the others wait and
        // reuse its model (two calibrations could differ in the last bit, and
        // the cache takes features of one fingerprint only). The lock lives
        // outside the models folder: a failed calibration leaves nothing there.
        let locks = env.home.dir("locks")?;
        let _calibrating =
            headstart_provision::Lock::acquire(&locks.join(format!("calibrate-{name}.lock")))?;
        if headstart_models::zoo::installed(&env.home, &name).is_none() {
            let (_, cal) = quantize_as(
                env,
                &model,
                input,
                &o.calibration,
                &o.store.access(),
                &name,
                false,
            )?;
            env.log(&format!(
                "installed {name}: int8 copy of {} calibrated on {} images of the input",
                model.name, cal.images
            ));
        }
        model = env.resolve(&name, &o.backbone.recipe)?;
    }
    let mut net = env.open_features(&model, &session)?;
    let summary = extractor.run(&mut net, progress)?;
    env.record_speed(&model, &summary);
    Ok(summary)
}

/// The checked extract run of `o` (shard from the option, else from a
/// scheduler's array variables).
fn extractor(input: &Path, out: &Path, o: &ExtractOptions) -> Result<Extractor, Error> {
    let views = o
        .views
        .iter()
        .map(|v| v.parse::<View>())
        .collect::<Result<Vec<_>, _>>()?;
    let shard = match o.shard.as_deref() {
        Some(s) => Some(s.parse::<Shard>()?),
        None => Shard::from_env(&|k| std::env::var(k).ok())?,
    };
    Ok(Extractor::builder(input, out)
        .unlabeled(o.unlabeled)
        .label_from(o.label_from.parse()?)
        .batch_size(o.batch_size)
        .threads(o.threads)
        .views(views)
        .strict(o.strict)
        .prune(o.prune)
        .shard(shard)
        .flush_every(o.flush_every, Duration::from_secs(60))
        .max_file_size(o.limits.max_file_size)
        .access(o.store.access())
        .build()?)
}
