//! `headstart models quantize` and `extract --precision int8`: an int8 QDQ
//! copy of a float backbone, calibrated on the user's images, installed in the
//! cache under a name.

use std::path::Path;

use anyhow::{Context, Result};
use headstart_extract::input;
use headstart_extract::quantize::{self, Calibration};
use headstart_models::ResolvedBackbone;
use headstart_models::zoo::{self, CARD_VERSION, InstalledModel, ModelCard, Provenance};
use headstart_onnx::quantize::QuantizeOptions;

use super::Ctx;

/// How to quantise (validated flags).
pub struct Plan<'a> {
    /// Images to calibrate on (any INPUT extract takes; labels are ignored).
    pub images: &'a Path,
    /// Calibration images, spread over the listing.
    pub samples: usize,
    /// Percentile of the activation ranges.
    pub percentile: f64,
    /// Conv nodes kept in float.
    pub keep_float: Vec<String>,
}

/// Fewer calibration images than this get a warning.
const MIN_CALIBRATION: usize = 32;

/// Quantises `float` and installs it as `name` (an installed model of that
/// name is replaced only with `force`).
pub fn quantize_as(
    ctx: &Ctx,
    float: &ResolvedBackbone,
    plan: &Plan,
    name: &str,
    force: bool,
) -> Result<(InstalledModel, Calibration)> {
    zoo::check_install_name(&ctx.home, "out", name, force)?;
    super::require(plan.samples > 0, || "--samples must be at least 1".into())?;
    super::require((50.0..=100.0).contains(&plan.percentile), || {
        format!(
            "--percentile {} is out of range; use 50 to 100, e.g. 99.99",
            plan.percentile
        )
    })?;
    let dim = float.feature_dim.with_context(|| {
        format!(
            "{}: the feature dimension of `{}` is not known from the graph; give --features a tensor with a fixed size",
            float.name, float.feature_tensor
        )
    })?;
    let kind = input::detect(plan.images, true)?;
    let listing = input::list(plan.images, kind)?;
    let picked = quantize::spread(&listing.items, plan.samples);
    if picked.len() < MIN_CALIBRATION {
        ctx.log(&format!(
            "warning: calibrating on {} image(s): activation ranges from so few images may clip others; {MIN_CALIBRATION} or more is typical (--samples)",
            picked.len()
        ));
    }
    ctx.log(&format!(
        "calibrating {} on {} of {} images in {}",
        float.name,
        picked.len(),
        listing.items.len(),
        plan.images.display()
    ));
    let rt = ctx.runtime()?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let opts = QuantizeOptions {
        keep_float: plan.keep_float.clone(),
    };
    let (bytes, cal) =
        quantize::quantize_backbone(rt, float, &picked, plan.percentile, threads, &opts)?;
    let source = std::path::absolute(plan.images).unwrap_or_else(|_| plan.images.to_path_buf());
    let card = ModelCard {
        format_version: CARD_VERSION,
        name: name.to_string(),
        feature_tensor: float.feature_tensor.clone(),
        feature_dim: dim,
        logits_tensor: float.logits_tensor.clone(),
        num_classes: None,
        preprocess: float.preprocess.clone(),
        provenance: Provenance {
            source: format!(
                "int8 QDQ copy of {} (fingerprint {})",
                float.name, float.fingerprint
            ),
            sha256: headstart_provision::sha256_hex(&bytes),
            licence: format!("that of {}", float.name),
            notes: format!(
                "Quantised by headstart: per-channel symmetric int8 Conv weights, uint8 activations; ranges at the {} percentile over {} calibration images from {}{}.",
                cal.percentile,
                cal.images,
                source.display(),
                if plan.keep_float.is_empty() {
                    String::new()
                } else {
                    format!("; kept in float: {}", plan.keep_float.join(", "))
                }
            ),
        },
    };
    let installed = zoo::install_local(&ctx.home, name, &bytes, &card)?;
    Ok((installed, cal))
}

/// The name `extract --precision int8` gives the int8 copy of `float` calibrated on
/// `input`: the same float model and input give the same name, so a rerun reuses it.
pub fn auto_name(float: &ResolvedBackbone, input: &Path) -> String {
    let abs = std::path::absolute(input).unwrap_or_else(|_| input.to_path_buf());
    let mut h = headstart_provision::sha256_hex(
        format!("{}\0{}", float.fingerprint, abs.display()).as_bytes(),
    );
    h.truncate(8);
    format!("{}-int8-{h}", float.name)
}
