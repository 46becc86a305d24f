//! Flags to library configuration, shared by the commands that open a backbone.

use anyhow::Result;
use headstart_extract::{ExtractError, FeatureModel, OrtFeatures, Shard};
use headstart_fit::Head;
use headstart_models::preprocess::{Filter, Layout};
use headstart_models::{FeatureSel, PreprocessOverrides, ResolvedBackbone};
use headstart_runtime::{Device, Runtime, SessionConfig};
use headstart_serve::ServeError;

use super::Ctx;
use crate::cli::{DeviceArgs, FilterArg, LayoutArg, ModelArgs, RecipeArgs};

/// Resolves `--model` (or `default` when not given), `--features` and the preprocessing flags.
pub fn resolve_model(
    ctx: &Ctx,
    m: &ModelArgs,
    default: &str,
) -> Result<ResolvedBackbone, headstart_models::ModelError> {
    resolve_recipe(ctx, m.model.as_deref().unwrap_or(default), &m.recipe)
}

/// Resolves the backbone `spec` with the recipe flags.
pub fn resolve_recipe(
    ctx: &Ctx,
    spec: &str,
    m: &RecipeArgs,
) -> Result<ResolvedBackbone, headstart_models::ModelError> {
    let features: FeatureSel = m.features.parse()?;
    let overrides = PreprocessOverrides {
        preset: m.preset.clone(),
        size: m.size,
        crop: m.crop,
        mean: m.mean,
        std: m.std,
        filter: m.filter.map(|f| match f {
            FilterArg::Nearest => Filter::Nearest,
            FilterArg::Bilinear => Filter::Bilinear,
            FilterArg::Bicubic => Filter::Bicubic,
            FilterArg::Lanczos3 => Filter::Lanczos3,
        }),
        layout: m.layout.map(|l| match l {
            LayoutArg::Nchw => Layout::Nchw,
            LayoutArg::Nhwc => Layout::Nhwc,
        }),
        exact_decode: m.exact_decode,
    };
    headstart_models::resolve(&ctx.home, spec, &features, &overrides, &|s| ctx.log(s))
}

/// The backbone `head` was trained on: `--model` if given, else the built-in
/// model the head records; checked against the head.
pub fn resolve_for_head(
    ctx: &Ctx,
    head: &Head,
    m: &ModelArgs,
) -> Result<ResolvedBackbone, ServeError> {
    let spec = headstart_serve::export::backbone_spec(head, m.model.as_deref())?;
    let rb = resolve_model(ctx, m, &spec)?;
    headstart_serve::export::check_backbone(head, &rb, &spec)?;
    Ok(rb)
}

/// Opens the backbone of `head` in an ONNX Runtime session.
pub fn open_for_head(
    ctx: &Ctx,
    head: &Head,
    m: &ModelArgs,
    cfg: &SessionConfig,
) -> Result<Box<dyn FeatureModel>, ServeError> {
    let rb = resolve_for_head(ctx, head, m)?;
    let rt = ctx
        .runtime_for(cfg.device)
        .map_err(headstart_extract::ExtractError::from)?;
    Ok(Box::new(open_features(rt, &rb, cfg)?))
}

/// Opens `model` in an ONNX Runtime session, saying so on stderr (with
/// `--quiet` too) when the device fell back to CPU.
pub fn open_features(
    rt: &Runtime,
    model: &ResolvedBackbone,
    cfg: &SessionConfig,
) -> Result<OrtFeatures, ExtractError> {
    let net = OrtFeatures::open(rt, model, cfg)?;
    if let Some((provider, why)) = net.cpu_fallback() {
        let line = format!("{provider} unavailable ({why}); running on CPU (--allow-cpu-fallback)");
        eprintln!("headstart: {}", crate::term::escape(&line));
    }
    Ok(net)
}

/// Session settings from `--device` and friends; the TensorRT engine cache lives in the headstart cache.
pub fn session_config(ctx: &Ctx, d: &DeviceArgs) -> Result<SessionConfig> {
    let device: Device = d.device.parse()?;
    let mut cfg = SessionConfig {
        device,
        allow_cpu_fallback: d.allow_cpu_fallback,
        fp16: d.fp16,
        ..SessionConfig::default()
    };
    if let Some(n) = d.intra_threads {
        cfg.intra_threads = n;
    }
    cfg.check()?;
    if matches!(device, Device::TensorRt(_)) {
        cfg.trt_cache = Some(ctx.home.dir("tensorrt-engines")?);
    }
    Ok(cfg)
}

/// `--shard`, else the array index of a known scheduler.
pub fn shard(flag: Option<&str>) -> Result<Option<Shard>> {
    Ok(match flag {
        Some(s) => Some(s.parse::<Shard>()?),
        None => Shard::from_env(&|k| std::env::var(k).ok())?,
    })
}

/// Remembers a built-in backbone's CPU extract speed for `models list` (runs of a
/// few hundred images or more, unsharded; a failure to record is only logged).
pub fn record_speed(ctx: &Ctx, model: &ResolvedBackbone, summary: &headstart_extract::Summary) {
    if summary.shard.is_some() || headstart_models::zoo::builtin(&model.name).is_none() {
        return;
    }
    let speed = headstart_models::zoo::Speed {
        images_per_second: summary.images_per_second,
        images: summary.extracted as u64,
        provider: summary.execution_provider.clone(),
    };
    if let Err(e) = headstart_models::zoo::record_speed(&ctx.home, &model.name, &speed) {
        ctx.log(&format!("could not record the extract speed: {e}"));
    }
}
