//! The seam between the pipeline and the network: [`FeatureModel`].

use headstart_models::{Preprocess, ResolvedBackbone};
use headstart_runtime::{Backbone, Runtime, SessionConfig};

use crate::ExtractError;

/// A backbone as the pipeline sees it: batches of preprocessed images in, one
/// feature vector per image out.
///
/// [`OrtFeatures`] runs an ONNX model through ONNX Runtime;
/// [`TestModel`](crate::testing::TestModel) is a tiny pure-Rust model for tests.
pub trait FeatureModel: Send {
    /// Name recorded in the cache (a built-in name or the file stem).
    fn name(&self) -> &str;
    /// Identifies weights, feature tensor and preprocessing; a cache holds one.
    fn fingerprint(&self) -> &str;
    /// How images become the tensors that [`run`](FeatureModel::run) takes.
    fn preprocess(&self) -> &Preprocess;
    /// The feature dimension, when known without running the model.
    fn dim(&self) -> Option<usize>;
    /// The output the features come from (a graph tensor's name), for messages.
    fn feature_tensor(&self) -> &str {
        "features"
    }
    /// Where the model runs (e.g. `CPUExecutionProvider`), recorded per cache part.
    fn provider(&self) -> &str;
    /// The runtime's version, recorded per cache part.
    fn runtime_version(&self) -> &str;
    /// The batch size runs use when `requested` is asked for (a model may fix it).
    fn batch_size(&self, requested: usize) -> usize {
        requested
    }
    /// A line for the user when [`batch_size`](FeatureModel::batch_size) is not
    /// the requested one.
    fn batch_note(&self, _requested: usize) -> Option<String> {
        None
    }
    /// Features of the `n` images in `batch` (`n * preprocess().tensor_len()`
    /// floats), row-major `[n, dim]`.
    fn run(&mut self, batch: &[f32], n: usize) -> Result<Vec<f32>, ExtractError>;
}

/// A resolved backbone in an ONNX Runtime session, with its feature tensor as
/// the one output.
pub struct OrtFeatures {
    net: Backbone,
    name: String,
    fingerprint: String,
    dim: Option<usize>,
    tensor: String,
    version: String,
}

impl OrtFeatures {
    /// Opens `model` on the loaded runtime.
    pub fn open(
        rt: &Runtime,
        model: &ResolvedBackbone,
        cfg: &SessionConfig,
    ) -> Result<OrtFeatures, ExtractError> {
        Ok(OrtFeatures {
            net: Backbone::open_features(rt, model, cfg)?,
            name: model.name.clone(),
            fingerprint: model.fingerprint.clone(),
            dim: model.feature_dim,
            tensor: model.feature_tensor.clone(),
            version: rt.version.clone(),
        })
    }

    /// When the session runs on CPU because the requested provider did not
    /// register: that provider and why (see [`Backbone::cpu_fallback`]).
    pub fn cpu_fallback(&self) -> Option<(&str, &str)> {
        self.net.cpu_fallback()
    }
}

impl FeatureModel for OrtFeatures {
    fn name(&self) -> &str {
        &self.name
    }
    fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
    fn preprocess(&self) -> &Preprocess {
        self.net.preprocess()
    }
    fn dim(&self) -> Option<usize> {
        self.dim
    }
    fn feature_tensor(&self) -> &str {
        &self.tensor
    }
    fn provider(&self) -> &str {
        self.net.provider()
    }
    fn runtime_version(&self) -> &str {
        &self.version
    }
    fn batch_size(&self, requested: usize) -> usize {
        self.net.batch_size(requested)
    }
    fn batch_note(&self, requested: usize) -> Option<String> {
        self.net.batch_note(requested)
    }
    fn run(&mut self, batch: &[f32], n: usize) -> Result<Vec<f32>, ExtractError> {
        Ok(self.net.run(batch, n)?.swap_remove(0))
    }
}
