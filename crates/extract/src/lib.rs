//! Stage one of headstart: images -> tensors -> features -> Parquet.
//!
//! An [`Extractor`] lists an input (class folders, a manifest, WebDataset tar
//! shards or image Parquet), reads, hashes, decodes and preprocesses images on a
//! thread pool, runs batches through a [`FeatureModel`] and writes one row per
//! image and view into a `headstart-cache`. Images whose content is already in the
//! cache are skipped; rows of vanished or changed files become dead.
//!
//! The model is a seam: [`OrtFeatures`] runs an ONNX backbone through ONNX Runtime
//! (`headstart-runtime`); [`testing::TestModel`] is a pure-Rust stand-in.
//!
//! ```
//! use headstart_extract::{Extractor, NoProgress, testing::TestModel};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let cat = dir.path().join("images/cat");
//! std::fs::create_dir_all(&cat)?;
//! image::RgbImage::from_pixel(8, 8, image::Rgb([200, 40, 40])).save(cat.join("a.png"))?;
//!
//! let extractor = Extractor::builder(dir.path().join("images"), dir.path().join("cache")).build()?;
//! let mut model = TestModel::new(16, 4);
//! let summary = extractor.run(&mut model, &NoProgress)?;
//! assert_eq!((summary.extracted, summary.feature_dim), (1, 4));
//! // A rerun finds the image in the cache.
//! assert_eq!(extractor.run(&mut model, &NoProgress)?.cached, 1);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod baseline;
pub mod container;
pub mod decode;
pub mod error;
pub mod features;
pub mod input;
pub mod isolate;
mod jpeg_pixels;
mod jpeg_reduced;
pub mod listing;
pub mod pipeline;
pub mod quantize;
pub mod remote;
pub mod tensor;
pub mod testing;

#[cfg(test)]
mod remote_test;
#[cfg(test)]
mod rules_test;

pub use error::ExtractError;

pub use features::{FeatureModel, OrtFeatures};
pub use pipeline::{
    Extractor, ExtractorBuilder, MAX_BATCH, NoProgress, Progress, Shard, Summary, View,
};
