//! Features of images held in memory, a batch at a time, with one backbone
//! session: what a data engine (Ray Data, Spark, Beam, Daft) calls on each
//! batch of image bytes. The same decoding, preprocessing and inference as
//! `extract`, so the features are the same numbers.

use headstart_extract::FeatureModel;
use headstart_extract::isolate;
use headstart_extract::tensor::Preprocessor;
use headstart_models::Preprocess;
use rayon::prelude::*;

use crate::options::{Backbone, DEFAULT_MODEL, DeviceOptions, Limits};
use crate::{Env, Error};

/// The options of a [`FeatureExtractor`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ExtractorOptions {
    /// The backbone and its recipe.
    #[serde(flatten)]
    pub backbone: Backbone,
    /// Where inference runs.
    #[serde(flatten)]
    pub device: DeviceOptions,
    /// Images per inference batch.
    pub batch_size: usize,
    /// Limits on what is read.
    #[serde(flatten)]
    pub limits: Limits,
}

impl Default for ExtractorOptions {
    fn default() -> Self {
        ExtractorOptions {
            backbone: Backbone::default(),
            device: DeviceOptions::default(),
            batch_size: 32,
            limits: Limits::default(),
        }
    }
}

/// A backbone session that turns image bytes into feature vectors.
pub struct FeatureExtractor {
    net: Box<dyn FeatureModel>,
    pre: Preprocess,
    batch_size: usize,
    limit: u64,
    dim: usize,
}

/// What one image gave: its feature vector's values, or why there are none.
pub type ImageFeatures = Result<Vec<f32>, String>;

impl FeatureExtractor {
    /// Opens the backbone (options checked first).
    pub fn open(env: &Env, o: &ExtractorOptions) -> Result<FeatureExtractor, Error> {
        if !(1..=headstart_extract::MAX_BATCH).contains(&o.batch_size) {
            return Err(Error::param(
                "batch_size",
                o.batch_size,
                format!("must be between 1 and {}", headstart_extract::MAX_BATCH),
            ));
        }
        let session = env.session_config(&o.device)?;
        let model = env.resolve_backbone(&o.backbone, DEFAULT_MODEL)?;
        let net = env.open_features(&model, &session)?;
        FeatureExtractor::with_model(Box::new(net), o.batch_size, o.limits.max_file_size)
    }

    /// A feature extractor over any [`FeatureModel`] (tests use a pure-Rust one).
    pub fn with_model(
        mut net: Box<dyn FeatureModel>,
        batch_size: usize,
        limit: u64,
    ) -> Result<FeatureExtractor, Error> {
        let pre = net.preprocess().clone();
        let dim = match net.dim() {
            Some(d) => d,
            None => net.run(&vec![0f32; pre.tensor_len()], 1)?.len(),
        };
        Ok(FeatureExtractor {
            batch_size: net.batch_size(batch_size),
            net,
            pre,
            limit,
            dim,
        })
    }

    /// The feature dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The backbone's name and fingerprint.
    pub fn model(&self) -> (&str, &str) {
        (self.net.name(), self.net.fingerprint())
    }

    /// The features of each image (`None`: no image in that row), decoded and
    /// preprocessed on all cores, then run in batches. A row that cannot be
    /// decoded (or has no bytes, or more than the limit, or gives non-finite
    /// features) gets the reason instead; the call fails only when the
    /// backbone does.
    pub fn features(&mut self, images: &[Option<&[u8]>]) -> Result<Vec<ImageFeatures>, Error> {
        let len = self.pre.tensor_len();
        let (pre, limit) = (&self.pre, self.limit);
        let tensors: Vec<Result<Vec<f32>, String>> = images
            .par_iter()
            .map_init(
                || (Preprocessor::new(pre.clone()), Vec::new()),
                |(prep, buf), bytes| {
                    let bytes = bytes.ok_or("no image bytes")?;
                    if bytes.len() as u64 > limit {
                        let size = headstart_files::describe_size(bytes.len() as u64);
                        let max = headstart_files::describe_size(limit);
                        return Err(format!("too large: {size} is over the {max} limit"));
                    }
                    let img = isolate::decode(bytes, buf, pre).map_err(|e| e.to_string())?;
                    let mut t = vec![0f32; len];
                    let (img, slot) = (&img, &mut t);
                    match isolate::guarded(|| prep.tensor_into(img, slot)) {
                        Ok(Ok(())) => Ok(t),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(p) => Err(format!("preprocessing panicked: {p}")),
                    }
                },
            )
            .collect();
        let ok: Vec<usize> = (0..tensors.len()).filter(|&i| tensors[i].is_ok()).collect();
        let mut out: Vec<ImageFeatures> = tensors
            .iter()
            .map(|t| match t {
                Ok(_) => Ok(Vec::new()),
                Err(e) => Err(e.clone()),
            })
            .collect();
        let mut input = Vec::with_capacity(self.batch_size * len);
        for rows in ok.chunks(self.batch_size) {
            input.clear();
            for &i in rows {
                if let Ok(t) = &tensors[i] {
                    input.extend_from_slice(t);
                }
            }
            let features = self.net.run(&input, rows.len())?;
            for (&i, f) in rows.iter().zip(features.chunks_exact(self.dim)) {
                out[i] = if f.iter().all(|v| v.is_finite()) {
                    Ok(f.to_vec())
                } else {
                    Err("the model produced NaN or infinite features; check that the model and its preprocessing suit this image".into())
                };
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use headstart_extract::testing::TestModel;

    fn png(v: u8) -> Vec<u8> {
        let img = image::RgbImage::from_fn(20, 14, |x, y| {
            image::Rgb([v, (x * 9) as u8, (y * 13) as u8])
        });
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    /// The same numbers as `extract` for the same images, one error per bad
    /// row, whatever the batch size.
    #[test]
    fn batches_give_extracts_features_and_one_error_per_bad_row() {
        let dir = tempfile::tempdir().unwrap();
        let images: Vec<Vec<u8>> = (0..5u8).map(|i| png(40 * i)).collect();
        std::fs::create_dir_all(dir.path().join("in/c")).unwrap();
        for (i, b) in images.iter().enumerate() {
            std::fs::write(dir.path().join(format!("in/c/{i}.png")), b).unwrap();
        }
        let cache = dir.path().join("cache");
        headstart_extract::Extractor::builder(dir.path().join("in"), &cache)
            .build()
            .unwrap()
            .run(&mut TestModel::new(16, 4), &headstart_extract::NoProgress)
            .unwrap();
        let t = headstart_cache::read_features(&[cache]).unwrap();
        let mut fx =
            FeatureExtractor::with_model(Box::new(TestModel::new(16, 4)), 2, 1 << 20).unwrap();
        let mut rows: Vec<Option<&[u8]>> = images.iter().map(|b| Some(&b[..])).collect();
        rows.insert(2, Some(b"not an image"));
        rows.insert(4, None);
        let got = fx.features(&rows).unwrap();
        assert_eq!(got.len(), 7);
        assert!(
            got[2]
                .as_ref()
                .unwrap_err()
                .contains("not a recognised image"),
            "{:?}",
            got[2]
        );
        assert_eq!(got[4], Err("no image bytes".into()));
        let good: Vec<&Vec<f32>> = got.iter().filter_map(|r| r.as_ref().ok()).collect();
        for (i, f) in good.iter().enumerate() {
            assert_eq!(f.as_slice(), t.row(i), "image {i}");
        }
    }
}
