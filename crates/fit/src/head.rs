//! The fitted head and its artifact: `head.safetensors` (tensors) and
//! `head.json` (metadata) in one directory.
//!
//! Tensors, all f32, row-major: linear heads (`softmax`, `ncm`) store
//! `W [dim, K]` and `b [K]` (logits = x . W + b); MLP heads store
//! `W1 [dim, H]`, `b1 [H]`, `W2 [H, K]`, `b2 [K]`
//! (logits = relu(x . W1 + b1) . W2 + b2). Standard normalisation adds
//! `norm_mean [dim]` and `norm_std [dim]` (x' = (x - mean) / std), applied first;
//! `l2` divides each row by its L2 norm. Probabilities are softmax(logits).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use headstart_cache::FeatureTable;
use rayon::prelude::*;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};

use crate::FitError;
use crate::engine::{CHUNK, Model, Scratch, ensure, softmax_rows};
use crate::linear::Linear;
use crate::metrics::MetricsSummary;
use crate::mlp::Mlp;
use crate::normalize::Normalizer;
use crate::params::{FitParams, HeadKind, Normalize, Solver};

/// The head.json format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Tensor file name inside a head directory.
pub const TENSORS_FILE: &str = "head.safetensors";
/// Metadata file name inside a head directory.
pub const META_FILE: &str = "head.json";

/// How the head was trained (stored in head.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    /// The parameters given to fit.
    pub config: FitParams,
    /// Solver actually used (`auto` resolved).
    pub solver: Solver,
    /// Selected C (softmax, MLP).
    pub c: Option<f64>,
    /// Selected hidden size (MLP).
    pub hidden: Option<usize>,
    /// Fitted temperature (NCM).
    pub temperature: Option<f64>,
    /// L-BFGS iterations of the selected fit.
    pub iterations: usize,
    /// Adam epochs of the selected fit (including warm-up).
    pub epochs: usize,
    /// Training rows (all views).
    pub train_rows: usize,
    /// Validation rows.
    pub val_rows: usize,
    /// Test rows.
    pub test_rows: usize,
    /// Training rows per class, in `class_names` order (what a majority
    /// baseline predicts); empty in heads saved before it was recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub train_class_counts: Vec<usize>,
    /// Seconds for the whole fit call.
    pub fit_seconds: f64,
}

/// Validation and test headline metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeadMetrics {
    /// On the validation set.
    pub val: Option<MetricsSummary>,
    /// On the test set.
    pub test: Option<MetricsSummary>,
}

/// Contents of head.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadMeta {
    /// Artifact format version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Head kind.
    pub head: HeadKind,
    /// Class names in index order (sorted).
    pub class_names: Vec<String>,
    /// Input feature dimension.
    pub feature_dim: usize,
    /// Hidden units (MLP).
    pub hidden: Option<usize>,
    /// Normalisation applied to features before the head.
    pub normalization: Normalize,
    /// Fingerprint of the model whose features the head was trained on.
    pub model_fingerprint: Option<String>,
    /// Name of that model.
    pub model_name: Option<String>,
    /// Tensor names and shapes in head.safetensors.
    pub tensors: BTreeMap<String, Vec<usize>>,
    /// Training configuration and outcome.
    pub training: Option<TrainingInfo>,
    /// Headline metrics.
    pub metrics: HeadMetrics,
}

/// Borrowed head weights, for export (e.g. to ONNX).
#[derive(Debug, Clone, Copy)]
pub enum HeadWeights<'a> {
    /// logits = x . w + b, `w` is `[dim, K]` row-major.
    Linear {
        /// `[dim, K]`.
        w: &'a [f32],
        /// `[K]`.
        b: &'a [f32],
    },
    /// logits = relu(x . w1 + b1) . w2 + b2.
    Mlp {
        /// Hidden units H.
        hidden: usize,
        /// `[dim, H]`.
        w1: &'a [f32],
        /// `[H]`.
        b1: &'a [f32],
        /// `[H, K]`.
        w2: &'a [f32],
        /// `[K]`.
        b2: &'a [f32],
    },
}

/// A fitted classifier head: normaliser, weights and metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    meta: HeadMeta,
    normalizer: Normalizer,
    /// Flat parameters in the layout of [`Linear`] or [`Mlp`].
    theta: Vec<f32>,
}

impl Head {
    pub(crate) fn new(meta: HeadMeta, normalizer: Normalizer, theta: Vec<f32>) -> Self {
        let mut h = Head {
            meta,
            normalizer,
            theta,
        };
        h.meta.tensors = h.tensor_shapes();
        h
    }

    /// Metadata (head.json).
    pub fn meta(&self) -> &HeadMeta {
        &self.meta
    }

    pub(crate) fn meta_mut(&mut self) -> &mut HeadMeta {
        &mut self.meta
    }

    /// Head kind.
    pub fn kind(&self) -> HeadKind {
        self.meta.head
    }

    /// Class names in index order.
    pub fn class_names(&self) -> &[String] {
        &self.meta.class_names
    }

    /// Number of classes K.
    pub fn n_classes(&self) -> usize {
        self.meta.class_names.len()
    }

    /// Feature dimension.
    pub fn dim(&self) -> usize {
        self.meta.feature_dim
    }

    /// The normaliser (kind, mean, std).
    pub fn normalizer(&self) -> &Normalizer {
        &self.normalizer
    }

    /// The weights.
    pub fn weights(&self) -> HeadWeights<'_> {
        let (d, k) = (self.dim(), self.n_classes());
        match self.meta.hidden {
            Some(h) if self.meta.head == HeadKind::Mlp => {
                let (w1, b1, w2, b2) = Mlp { d, h, k }.parts(&self.theta);
                HeadWeights::Mlp {
                    hidden: h,
                    w1,
                    b1,
                    w2,
                    b2,
                }
            }
            _ => HeadWeights::Linear {
                w: &self.theta[..d * k],
                b: &self.theta[d * k..],
            },
        }
    }

    fn model(&self) -> ModelRef {
        let (d, k) = (self.dim(), self.n_classes());
        match (self.meta.head, self.meta.hidden) {
            (HeadKind::Mlp, Some(h)) => ModelRef::Mlp(Mlp { d, h, k }),
            _ => ModelRef::Linear(Linear { d, k }),
        }
    }

    /// Errors unless features of dimension `dim` from a model with `fingerprint`
    /// fit this head. A missing fingerprint on either side is not checked.
    pub fn check_compatible(&self, fingerprint: Option<&str>, dim: usize) -> Result<(), FitError> {
        if let (Some(head), Some(cache)) = (self.meta.model_fingerprint.as_deref(), fingerprint)
            && head != cache
        {
            return Err(FitError::FingerprintMismatch {
                head: match &self.meta.model_name {
                    Some(name) => format!("{name} (fingerprint {head})"),
                    None => format!("fingerprint {head}"),
                },
                cache: format!("fingerprint {cache}"),
            });
        }
        if dim != self.dim() {
            return Err(FitError::DimMismatch {
                head: self.dim(),
                features: dim,
            });
        }
        Ok(())
    }

    /// Class probabilities (n x K, row-major) of `n` raw feature rows.
    ///
    /// # Panics
    /// When `features.len() != n * dim`; see [`Head::try_predict_proba`].
    pub fn predict_proba(&self, features: &[f32], n: usize) -> Vec<f32> {
        match self.try_predict_proba(features, n) {
            Ok(p) => p,
            Err(e) => panic!("predict_proba: {e}"),
        }
    }

    /// Like [`Head::predict_proba`], with an error for a wrong input length.
    pub fn try_predict_proba(&self, features: &[f32], n: usize) -> Result<Vec<f32>, FitError> {
        let d = self.dim();
        if features.len() != n * d {
            return Err(FitError::DimMismatch {
                head: d,
                features: features.len().checked_div(n).unwrap_or(features.len()),
            });
        }
        Ok(self.predict_with(n, |i, out| {
            self.normalizer.apply(&features[i * d..(i + 1) * d], out)
        }))
    }

    /// Probabilities of table rows `rows`.
    pub(crate) fn predict_rows(&self, t: &FeatureTable, rows: &[usize]) -> Vec<f32> {
        self.predict_with(rows.len(), |i, out| {
            self.normalizer.apply(t.row(rows[i]), out)
        })
    }

    fn predict_with<F: Fn(usize, &mut [f32]) + Sync>(&self, n: usize, load: F) -> Vec<f32> {
        let (d, k) = (self.dim(), self.n_classes());
        let model = self.model();
        let mut out = vec![0.0f32; n * k];
        out.par_chunks_mut(CHUNK * k)
            .enumerate()
            .for_each_init(Scratch::default, |s, (ci, o)| {
                let m = o.len() / k;
                let mut x = std::mem::take(&mut s.x);
                let xb = ensure(&mut x, m * d);
                for i in 0..m {
                    load(ci * CHUNK + i, &mut xb[i * d..(i + 1) * d]);
                }
                match &model {
                    ModelRef::Linear(l) => l.logits(&self.theta, xb, m, o, s),
                    ModelRef::Mlp(mm) => mm.logits(&self.theta, xb, m, o, s),
                }
                softmax_rows(o, k);
                s.x = x;
            });
        out
    }

    fn tensor_shapes(&self) -> BTreeMap<String, Vec<usize>> {
        let (d, k) = (self.dim(), self.n_classes());
        let mut m = BTreeMap::new();
        match self.weights() {
            HeadWeights::Linear { .. } => {
                m.insert("W".into(), vec![d, k]);
                m.insert("b".into(), vec![k]);
            }
            HeadWeights::Mlp { hidden, .. } => {
                m.insert("W1".into(), vec![d, hidden]);
                m.insert("b1".into(), vec![hidden]);
                m.insert("W2".into(), vec![hidden, k]);
                m.insert("b2".into(), vec![k]);
            }
        }
        if self.normalizer.kind() == Normalize::Standard {
            m.insert("norm_mean".into(), vec![d]);
            m.insert("norm_std".into(), vec![d]);
        }
        m
    }

    /// Writes `head.safetensors` and `head.json` into `dir` (created if needed).
    pub fn save(&self, dir: &Path) -> Result<(), FitError> {
        std::fs::create_dir_all(dir).map_err(|e| FitError::io(dir, e))?;
        let mut named: Vec<(&str, &[f32])> = match self.weights() {
            HeadWeights::Linear { w, b } => vec![("W", w), ("b", b)],
            HeadWeights::Mlp { w1, b1, w2, b2, .. } => {
                vec![("W1", w1), ("b1", b1), ("W2", w2), ("b2", b2)]
            }
        };
        if let (Some(m), Some(s)) = (self.normalizer.mean(), self.normalizer.std()) {
            named.push(("norm_mean", m));
            named.push(("norm_std", s));
        }
        let shapes = self.tensor_shapes();
        let bytes: Vec<(String, Vec<u8>)> = named
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    v.iter().flat_map(|f| f.to_le_bytes()).collect(),
                )
            })
            .collect();
        let path = dir.join(TENSORS_FILE);
        let bad = |e: safetensors::SafeTensorError| FitError::BadArtifact {
            path: path.clone(),
            reason: e.to_string(),
        };
        let views = bytes
            .iter()
            .map(|(n, b)| {
                Ok((
                    n.clone(),
                    TensorView::new(Dtype::F32, shapes[n].clone(), b).map_err(bad)?,
                ))
            })
            .collect::<Result<Vec<_>, FitError>>()?;
        let info = HashMap::from([("format".to_string(), "headstart-head".to_string())]);
        let data = safetensors::serialize(views, Some(info)).map_err(bad)?;
        std::fs::write(&path, data).map_err(|e| FitError::io(&path, e))?;
        let meta_path = dir.join(META_FILE);
        let json = serde_json::to_string_pretty(&self.meta).map_err(|e| FitError::Json {
            path: meta_path.clone(),
            source: e,
        })?;
        std::fs::write(&meta_path, json + "\n").map_err(|e| FitError::io(&meta_path, e))
    }

    /// Loads a head directory, checking the format version and tensor shapes.
    pub fn load(dir: &Path) -> Result<Head, FitError> {
        let meta_path = dir.join(META_FILE);
        let text = std::fs::read_to_string(&meta_path).map_err(|e| FitError::io(&meta_path, e))?;
        let json_err = |e| FitError::Json {
            path: meta_path.clone(),
            source: e,
        };
        let value: serde_json::Value = serde_json::from_str(&text).map_err(json_err)?;
        let version = value.get("format_version").and_then(|v| v.as_u64());
        match version {
            Some(v) if v == u64::from(FORMAT_VERSION) => {}
            Some(v) => {
                return Err(FitError::FormatVersion {
                    path: meta_path,
                    found: u32::try_from(v).unwrap_or(u32::MAX),
                    supported: FORMAT_VERSION,
                });
            }
            None => {
                return Err(FitError::BadArtifact {
                    path: meta_path,
                    reason: "no format_version".into(),
                });
            }
        }
        let meta: HeadMeta = serde_json::from_value(value).map_err(json_err)?;
        let path = dir.join(TENSORS_FILE);
        let bytes = std::fs::read(&path).map_err(|e| FitError::io(&path, e))?;
        let bad = |reason: String| FitError::BadArtifact {
            path: path.clone(),
            reason,
        };
        let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
        let (d, k) = (meta.feature_dim, meta.class_names.len());
        if d == 0 || k < 2 {
            return Err(FitError::BadArtifact {
                path: meta_path,
                reason: format!("feature_dim {d} and {k} classes"),
            });
        }
        let get = |name: &str, shape: &[usize]| -> Result<Vec<f32>, FitError> {
            let t = st
                .tensor(name)
                .map_err(|e| bad(format!("tensor {name}: {e}")))?;
            if t.dtype() != Dtype::F32 || t.shape() != shape {
                return Err(bad(format!(
                    "tensor {name} is {:?} {:?}, expected F32 {shape:?}",
                    t.dtype(),
                    t.shape()
                )));
            }
            let v: Vec<f32> = t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            if v.iter().any(|x| !x.is_finite()) {
                return Err(bad(format!("tensor {name} has non-finite values")));
            }
            Ok(v)
        };
        let theta = match (meta.head, meta.hidden) {
            (HeadKind::Mlp, Some(h)) if h > 0 => {
                let mut t = get("W1", &[d, h])?;
                t.extend(get("b1", &[h])?);
                t.extend(get("W2", &[h, k])?);
                t.extend(get("b2", &[k])?);
                t
            }
            (HeadKind::Mlp, _) => return Err(bad("MLP head without hidden size".into())),
            _ => {
                let mut t = get("W", &[d, k])?;
                t.extend(get("b", &[k])?);
                t
            }
        };
        let normalizer = match meta.normalization {
            Normalize::None => Normalizer::none(),
            Normalize::L2 => Normalizer::l2(),
            Normalize::Standard => {
                Normalizer::standard(get("norm_mean", &[d])?, get("norm_std", &[d])?)
                    .map_err(|e| bad(e.to_string()))?
            }
        };
        Ok(Head::new(meta, normalizer, theta))
    }
}

enum ModelRef {
    Linear(Linear),
    Mlp(Mlp),
}
