//! What every call shares: where headstart keeps its runtime and models, which
//! ONNX Runtime library to load, and where progress lines go.

use std::path::PathBuf;
use std::sync::Arc;

use headstart_extract::{ExtractError, FeatureModel, OrtFeatures, Summary};
use headstart_fit::Head;
use headstart_models::preprocess::{Filter, Layout};
use headstart_models::{FeatureSel, PreprocessOverrides, ResolvedBackbone};
use headstart_provision::Home;
use headstart_runtime::{Device, LibSource, Runtime, SessionConfig};
use headstart_serve::ServeError;

use crate::Error;
use crate::options::{Backbone, DeviceOptions, Recipe};

/// A log line sink (progress lines, notes); they are already one line each.
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// Where headstart keeps things and says what it does; cheap to clone.
#[derive(Clone)]
pub struct Env {
    /// The cache of runtimes, models and wheels (`HEADSTART_HOME`).
    pub home: Home,
    /// An ONNX Runtime library to load instead of the cached one.
    pub ort_lib: Option<PathBuf>,
    log: Log,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("home", &self.home.root())
            .field("ort_lib", &self.ort_lib)
            .finish_non_exhaustive()
    }
}

impl Env {
    /// The cache at `home` (else `HEADSTART_HOME`, else `~/.cache/headstart`),
    /// the runtime library `ort_lib` (else `ORT_DYLIB_PATH`, else the cached
    /// one), and log lines to stderr prefixed `headstart: ` with control
    /// characters escaped.
    pub fn new(home: Option<PathBuf>, ort_lib: Option<PathBuf>) -> Result<Env, Error> {
        let home = match home {
            Some(h) => Home::at(h),
            None => Home::from_env()?,
        };
        let ort_lib = ort_lib
            .or_else(|| std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from))
            .filter(|p| !p.as_os_str().is_empty());
        Ok(Env {
            home,
            ort_lib,
            log: Arc::new(|m| eprintln!("headstart: {}", headstart_files::escape(m))),
        })
    }

    /// The same, with log lines going to `log` (a no-op for quiet).
    pub fn with_log(mut self, log: Log) -> Env {
        self.log = log;
        self
    }

    /// Says `msg` (one line) through the log sink.
    pub fn log(&self, msg: &str) {
        (self.log)(msg);
    }

    /// Locates (provisioning if needed) and loads ONNX Runtime.
    pub fn runtime(&self) -> Result<&'static Runtime, Error> {
        self.runtime_for(Device::Cpu)
    }

    /// Like [`Env::runtime`], for sessions on `device`: a GPU device loads the
    /// GPU build from the cache (`runtime install --gpu`) when it is there and
    /// no library is given, and says which build it loads.
    pub fn runtime_for(&self, device: Device) -> Result<&'static Runtime, Error> {
        let gpu = !matches!(device, Device::Cpu);
        let lib = headstart_runtime::locate_for(&self.home, self.ort_lib.as_deref(), gpu, &|m| {
            self.log(m)
        })?;
        match lib.source {
            LibSource::GpuCache => self.log(&format!(
                "using the GPU build of ONNX Runtime at {} (--ort-lib overrides)",
                lib.path.display()
            )),
            LibSource::Cache | LibSource::Installed if gpu => self.log(
                "no GPU build of ONNX Runtime in the cache (`headstart runtime install --gpu` installs it); loading the CPU build",
            ),
            _ => {}
        }
        Ok(headstart_runtime::init(&lib.path)?)
    }

    /// Resolves the backbone `spec` (a built-in name or an .onnx file) with
    /// `recipe`, after checking the recipe's values.
    pub fn resolve(&self, spec: &str, recipe: &Recipe) -> Result<ResolvedBackbone, Error> {
        let features: FeatureSel = recipe.features.parse()?;
        let overrides = overrides(recipe)?;
        Ok(headstart_models::resolve(
            &self.home,
            spec,
            &features,
            &overrides,
            &|s| self.log(s),
        )?)
    }

    /// [`Env::resolve`] of `backbone.model`, or of `default` when none is given.
    pub fn resolve_backbone(
        &self,
        backbone: &Backbone,
        default: &str,
    ) -> Result<ResolvedBackbone, Error> {
        self.resolve(
            backbone.model.as_deref().unwrap_or(default),
            &backbone.recipe,
        )
    }

    /// The backbone `head` was trained on: `backbone.model` if given, else the
    /// built-in model the head records; checked against the head.
    pub fn resolve_for_head(
        &self,
        head: &Head,
        backbone: &Backbone,
    ) -> Result<ResolvedBackbone, Error> {
        let spec = headstart_serve::export::backbone_spec(head, backbone.model.as_deref())?;
        let rb = self.resolve_backbone(backbone, &spec)?;
        headstart_serve::export::check_backbone(head, &rb, &spec)?;
        Ok(rb)
    }

    /// Opens `model` in an ONNX Runtime session on `cfg`'s device, saying so
    /// (also when quiet) when the device fell back to CPU.
    pub fn open_features(
        &self,
        model: &ResolvedBackbone,
        cfg: &SessionConfig,
    ) -> Result<OrtFeatures, Error> {
        let rt = self.runtime_for(cfg.device)?;
        let net = OrtFeatures::open(rt, model, cfg)?;
        if let Some((provider, why)) = net.cpu_fallback() {
            eprintln!(
                "headstart: {}",
                headstart_files::escape(&format!(
                    "{provider} unavailable ({why}); running on CPU (--allow-cpu-fallback)"
                ))
            );
        }
        Ok(net)
    }

    /// Opens the backbone of `head` (see [`Env::resolve_for_head`]).
    pub(crate) fn open_for_head(
        &self,
        head: &Head,
        backbone: &Backbone,
        cfg: &SessionConfig,
    ) -> Result<Box<dyn FeatureModel>, ServeError> {
        let wrap = |e: Error| match e {
            Error::Serve(e) => e,
            Error::Extract(e) => ServeError::from(e),
            Error::Model(e) => ServeError::Model(e),
            Error::Runtime(e) => ServeError::from(ExtractError::from(e)),
            other => ServeError::NoBackbone(other.to_string()),
        };
        let rb = self.resolve_for_head(head, backbone).map_err(wrap)?;
        Ok(Box::new(self.open_features(&rb, cfg).map_err(wrap)?))
    }

    /// Session settings from the device options, checked; the TensorRT
    /// engine cache lives in the headstart cache.
    pub fn session_config(&self, d: &DeviceOptions) -> Result<SessionConfig, Error> {
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
            cfg.trt_cache = Some(self.home.dir("tensorrt-engines")?);
        }
        Ok(cfg)
    }

    /// Remembers a built-in backbone's CPU extract speed for `models list`
    /// (runs of a few hundred images or more, unsharded; a failure to record
    /// is only logged).
    pub(crate) fn record_speed(&self, model: &ResolvedBackbone, summary: &Summary) {
        if summary.shard.is_some() || headstart_models::zoo::builtin(&model.name).is_none() {
            return;
        }
        let speed = headstart_models::zoo::Speed {
            images_per_second: summary.images_per_second,
            images: summary.extracted as u64,
            provider: summary.execution_provider.clone(),
        };
        if let Err(e) = headstart_models::zoo::record_speed(&self.home, &model.name, &speed) {
            self.log(&format!("could not record the extract speed: {e}"));
        }
    }
}

/// The recipe as the model resolver's overrides, each value checked.
fn overrides(r: &Recipe) -> Result<PreprocessOverrides, Error> {
    if let Some(s) = r.size
        && !(1..=4096).contains(&s)
    {
        return Err(Error::param("size", s, "use 1 to 4096 pixels, e.g. 224"));
    }
    if let Some(c) = r.crop
        && !(c > 0.0 && c <= 1.0)
    {
        return Err(Error::param(
            "crop",
            c,
            "use a fraction of the shorter side above 0 and at most 1, e.g. 0.875",
        ));
    }
    if let Some(m) = r.mean
        && m.iter().any(|v| !v.is_finite())
    {
        return Err(Error::param("mean", format!("{m:?}"), "use finite numbers"));
    }
    if let Some(s) = r.std
        && s.iter().any(|v| !(v.is_finite() && *v > 0.0))
    {
        return Err(Error::param(
            "std",
            format!("{s:?}"),
            "each standard deviation must be above 0, e.g. 58.4,57.1,57.4",
        ));
    }
    let filter = match r.filter.as_deref() {
        None => None,
        Some("nearest") => Some(Filter::Nearest),
        Some("bilinear") => Some(Filter::Bilinear),
        Some("bicubic") => Some(Filter::Bicubic),
        Some("lanczos3") => Some(Filter::Lanczos3),
        Some(f) => {
            return Err(Error::param(
                "filter",
                f,
                "use nearest, bilinear, bicubic or lanczos3",
            ));
        }
    };
    let layout = match r.layout.as_deref() {
        None => None,
        Some("nchw") => Some(Layout::Nchw),
        Some("nhwc") => Some(Layout::Nhwc),
        Some(l) => return Err(Error::param("layout", l, "use nchw or nhwc")),
    };
    Ok(PreprocessOverrides {
        preset: r.preset.clone(),
        size: r.size,
        crop: r.crop,
        mean: r.mean,
        std: r.std,
        filter,
        layout,
        exact_decode: r.exact_decode,
    })
}
