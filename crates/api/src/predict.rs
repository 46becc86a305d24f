//! `predict` and `export`: a saved head on new images, or as ONNX.

use std::path::{Path, PathBuf};

use headstart_extract::{MAX_BATCH, Progress};
use headstart_fit::Head;
use headstart_serve::export::{ExportInput, Exported, check_out};
use headstart_serve::{Classifier, Record, ServeError};

use crate::options::{ExportOptions, PredictOptions};
use crate::{Env, Error};

/// What `predict` gives: one record per input (its top-k labels, or its
/// error), in input order.
#[derive(Debug)]
pub struct Predictions {
    /// One row per image, files inside folders in listing order.
    pub rows: Vec<Record>,
    /// The head's class names, in its order.
    pub classes: Vec<String>,
}

impl Predictions {
    /// Rows that failed (read, decode, ...).
    pub fn failed(&self) -> usize {
        self.rows.iter().filter(|r| r.error.is_some()).count()
    }
}

/// Classifies `inputs` (image files, folders, manifests) with the head in
/// `head`, taking features from `o.cache` where a file's content is there
/// and opening the backbone only when some file is not.
pub fn predict(
    env: &Env,
    head: &Path,
    inputs: &[PathBuf],
    o: &PredictOptions,
    progress: &dyn Progress,
) -> Result<Predictions, Error> {
    classify(env, head, o, |c| c.predict(inputs, o.batch_size, progress))
}

/// [`predict`] for images held in memory: `(name, bytes)` each, the name
/// only shown in the rows.
pub fn predict_bytes(
    env: &Env,
    head: &Path,
    images: Vec<(String, Vec<u8>)>,
    o: &PredictOptions,
    progress: &dyn Progress,
) -> Result<Predictions, Error> {
    classify(env, head, o, |c| {
        c.predict_bytes(images, o.batch_size, progress)
    })
}

/// Opens the head's classifier with `o` (checked first) and runs `run` on it.
fn classify(
    env: &Env,
    head: &Path,
    o: &PredictOptions,
    run: impl FnOnce(&mut Classifier<'_>) -> Result<Vec<headstart_serve::Prediction>, ServeError>,
) -> Result<Predictions, Error> {
    if o.top_k == 0 {
        return Err(Error::param("top_k", 0, "use at least 1"));
    }
    if !(1..=MAX_BATCH).contains(&o.batch_size) {
        return Err(Error::param(
            "batch_size",
            o.batch_size,
            format!("must be between 1 and {MAX_BATCH}"),
        ));
    }
    // Checked here, although the backbone only opens when some file is not cached.
    let session = env.session_config(&o.device)?;
    let backbone = o.backbone.clone();
    let mut classifier =
        Classifier::open(head, move |h| env.open_for_head(h, &backbone, &session))?
            .with_caches(&o.cache)?
            .with_max_file_size(o.limits.max_file_size)?
            .with_access(o.store.access())?;
    let predictions = run(&mut classifier)?;
    let classes = classifier.head().class_names().to_vec();
    let rows = predictions
        .iter()
        .map(|p| Record::new(p, &classes, o.top_k))
        .collect();
    Ok(Predictions { rows, classes })
}

/// The class names of the head in `head`, in its order (loading it checks it).
pub fn head_classes(head: &Path) -> Result<Vec<String>, Error> {
    Ok(Head::load(head)?.class_names().to_vec())
}

/// Exports the head in `head`, fused with its backbone (the float tensor as
/// input, or uint8 images with `with_preprocessing`) or alone (`head_only`),
/// as one ONNX classifier written atomically to `out`.
pub fn export(env: &Env, head: &Path, out: &Path, o: &ExportOptions) -> Result<Exported, Error> {
    check_out(out, o.force.force)?;
    if o.with_preprocessing && o.head_only {
        return Err(Error::param(
            "head_only",
            true,
            "exports no backbone, so no preprocessing either: drop one of with_preprocessing and head_only",
        ));
    }
    let loaded = Head::load(head)?;
    let (backbone, input) = if o.head_only {
        if o.backbone.model.is_some() || o.backbone.recipe.exact_decode {
            env.log("--head-only exports no backbone; --model and its flags are not used");
        }
        (None, ExportInput::Features)
    } else if o.with_preprocessing {
        let rb = env.resolve_for_head(&loaded, &o.backbone)?;
        (Some(rb), ExportInput::ImageUint8)
    } else {
        let rb = env.resolve_for_head(&loaded, &o.backbone)?;
        (Some(rb), ExportInput::Tensor)
    };
    let exported = headstart_serve::export::export(&loaded, backbone.as_ref(), input)?;
    exported.save(out, o.force.force)?;
    Ok(exported)
}
