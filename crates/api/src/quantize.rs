//! `models quantize` and extract's int8 precision: an int8 QDQ copy of a float
//! backbone, calibrated on the user's images, installed in the cache under a
//! name.

use std::path::Path;

use headstart_extract::input;
use headstart_extract::quantize::{self, Calibration};
use headstart_models::ResolvedBackbone;
use headstart_models::zoo::{self, CARD_VERSION, InstalledModel, ModelCard, Provenance};
use headstart_onnx::quantize::QuantizeOptions as GraphOptions;

use crate::options::{Calibration as CalibrationOptions, QuantizeOptions};
use crate::{Env, Error};

/// Fewer calibration images than this get a warning.
const MIN_CALIBRATION: usize = 32;

/// What `models quantize` installed.
#[derive(Debug)]
pub struct Quantized {
    /// The installed model (its name is the `out` asked for).
    pub model: InstalledModel,
    /// How it was calibrated.
    pub calibration: Calibration,
}

/// Quantises the float backbone `model` (a built-in name or an .onnx file),
/// calibrated on `o.calibrate`, and installs it as `o.out`.
pub fn quantize(env: &Env, model: &str, o: &QuantizeOptions) -> Result<Quantized, Error> {
    // The name first: a bad one must not cost a calibration.
    zoo::check_install_name(&env.home, "out", &o.out, o.force.force)?;
    check(&o.calibration)?;
    let float = env.resolve(model, &o.recipe)?;
    let (model, calibration) = quantize_as(
        env,
        &float,
        &o.calibrate,
        &o.calibration,
        &o.store.access(),
        &o.out,
        o.force.force,
    )?;
    Ok(Quantized { model, calibration })
}

/// Checks the calibration options.
pub(crate) fn check(c: &CalibrationOptions) -> Result<(), Error> {
    if c.samples == 0 {
        return Err(Error::param("samples", 0, "use at least 1"));
    }
    if !(50.0..=100.0).contains(&c.percentile) {
        return Err(Error::param(
            "percentile",
            c.percentile,
            "use 50 to 100, e.g. 99.99",
        ));
    }
    Ok(())
}

/// The name extract's int8 precision gives the int8 copy of `float`
/// calibrated on `input`: the same float model and input give the same name,
/// so a rerun reuses it.
pub(crate) fn auto_name(float: &ResolvedBackbone, input: &Path) -> String {
    let abs = input::absolute(input);
    let mut h = headstart_provision::sha256_hex(format!("{}\0{abs}", float.fingerprint).as_bytes());
    h.truncate(8);
    format!("{}-int8-{h}", float.name)
}

/// Quantises `float`, calibrated on `images`, and installs it as `name` (an
/// installed model of that name is replaced only with `force`).
pub(crate) fn quantize_as(
    env: &Env,
    float: &ResolvedBackbone,
    images: &Path,
    options: &CalibrationOptions,
    access: &headstart_extract::remote::Access,
    name: &str,
    force: bool,
) -> Result<(InstalledModel, Calibration), Error> {
    zoo::check_install_name(&env.home, "out", name, force)?;
    check(options)?;
    let dim = float.feature_dim.ok_or_else(|| {
        Error::param(
            "features",
            &float.feature_tensor,
            format!(
                "the feature dimension of this tensor of {} is not known from the graph; name a tensor with a fixed size",
                float.name
            ),
        )
    })?;
    let listed = input::ListOptions {
        access: access.clone(),
        ..input::ListOptions::default()
    };
    let kind = input::detect_with(images, true, &listed)?;
    let listing = input::list_with(images, kind, &listed)?;
    let picked = quantize::spread(&listing.items, options.samples);
    if picked.len() < MIN_CALIBRATION {
        env.log(&format!(
            "warning: calibrating on {} image(s): activation ranges from so few images may clip others; {MIN_CALIBRATION} or more is typical (--samples)",
            picked.len()
        ));
    }
    env.log(&format!(
        "calibrating {} on {} of {} images in {}",
        float.name,
        picked.len(),
        listing.items.len(),
        input::shown(images)
    ));
    let rt = env.runtime()?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let graph = GraphOptions {
        keep_float: options.keep_float.clone(),
    };
    let (bytes, cal) =
        quantize::quantize_backbone(rt, float, &picked, options.percentile, threads, &graph)?;
    let source = input::absolute(images);
    let kept = if options.keep_float.is_empty() {
        String::new()
    } else {
        format!("; kept in float: {}", options.keep_float.join(", "))
    };
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
                "Quantised by headstart: per-channel symmetric int8 Conv weights, uint8 activations; ranges at the {} percentile over {} calibration images from {}{kept}.",
                cal.percentile, cal.images, source,
            ),
        },
    };
    let installed = zoo::install_local(&env.home, name, &bytes, &card)?;
    Ok((installed, cal))
}
