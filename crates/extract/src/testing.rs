//! A tiny deterministic [`FeatureModel`] in pure Rust, so that the pipeline's
//! rules (caching, tombstones, shards, NaN features, strict mode) run in-process
//! in milliseconds, without ONNX Runtime or downloaded weights.

use headstart_models::Preprocess;

use crate::ExtractError;
use crate::features::FeatureModel;

/// Decides which images get NaN features: called with one image's tensor.
pub type Poison = Box<dyn Fn(&[f32]) -> bool + Send>;

/// A fixed random projection of the normalised pixels: feature `k` of an image
/// is `sum_i x_i * w_k(i) / len` with weights in `[-0.5, 0.5)` from a hash of
/// `(k, i)`. Different images give different features; a horizontal flip
/// changes them.
pub struct TestModel {
    pre: Preprocess,
    dim: usize,
    fingerprint: String,
    poison: Option<Poison>,
    /// Images run so far.
    pub images_run: usize,
}

impl TestModel {
    /// A model over `size` x `size` NCHW input (ImageNet normalisation) giving
    /// `dim`-d features.
    pub fn new(size: u32, dim: usize) -> TestModel {
        let mut pre = Preprocess::imagenet("input");
        (pre.height, pre.width) = (size, size);
        TestModel {
            fingerprint: format!("test-projection-{size}px-{dim}d"),
            pre,
            dim: dim.max(1),
            poison: None,
            images_run: 0,
        }
    }

    /// Gives NaN features to the images for which `poison` says so.
    pub fn nan_when(mut self, poison: impl Fn(&[f32]) -> bool + Send + 'static) -> TestModel {
        self.poison = Some(Box::new(poison));
        self
    }

    /// The feature vector of one image tensor.
    pub fn features_of(&self, tensor: &[f32]) -> Vec<f32> {
        if self.poison.as_ref().is_some_and(|p| p(tensor)) {
            return vec![f32::NAN; self.dim];
        }
        let scale = 1.0 / tensor.len().max(1) as f32;
        (0..self.dim)
            .map(|k| {
                tensor
                    .iter()
                    .enumerate()
                    .map(|(i, x)| x * weight(k, i))
                    .sum::<f32>()
                    * scale
            })
            .collect()
    }
}

/// A weight in `[-0.5, 0.5)` from a 64-bit mix of `(k, i)` (splitmix64).
fn weight(k: usize, i: usize) -> f32 {
    let mut z = ((k as u64) << 32 ^ i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 40) as f32 / (1u64 << 24) as f32 - 0.5
}

impl FeatureModel for TestModel {
    fn name(&self) -> &str {
        "test-projection"
    }
    fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
    fn preprocess(&self) -> &Preprocess {
        &self.pre
    }
    fn dim(&self) -> Option<usize> {
        Some(self.dim)
    }
    fn provider(&self) -> &str {
        "pure-rust"
    }
    fn runtime_version(&self) -> &str {
        "none"
    }
    fn run(&mut self, batch: &[f32], n: usize) -> Result<Vec<f32>, ExtractError> {
        let len = self.pre.tensor_len();
        if batch.len() != n * len {
            return Err(ExtractError::Param {
                name: "batch",
                value: batch.len().to_string(),
                message: format!("{n} images of {len} floats expected"),
            });
        }
        self.images_run += n;
        Ok(batch
            .chunks_exact(len)
            .flat_map(|t| self.features_of(t))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_depend_on_the_pixels_and_poison_gives_nan() {
        let mut m = TestModel::new(4, 3).nan_when(|t| t[0] > 100.0);
        let len = m.preprocess().tensor_len();
        let a = vec![1.0; len];
        let mut b = a.clone();
        b[5] = -1.0;
        let mut c = a.clone();
        c[0] = 1000.0;
        let out = m.run(&[a.clone(), b, c].concat(), 3).unwrap();
        assert_eq!(out.len(), 9);
        assert_ne!(out[0..3], out[3..6]);
        assert!(out[6..9].iter().all(|v| v.is_nan()));
        assert_eq!(m.run(&a, 1).unwrap(), out[0..3]);
        assert!(m.run(&a, 2).is_err());
    }
}
