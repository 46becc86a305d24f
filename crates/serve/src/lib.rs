//! Serving headstart heads.
//!
//! - [`Classifier`] classifies image files, folders and manifests with a saved
//!   head. It reuses the extract stages (read, hash, decode, preprocess, and a
//!   [`FeatureModel`](headstart_extract::FeatureModel) for inference) and takes
//!   features from caches where an image's content is already there.
//! - [`export`](export::export) writes the head alone or fused with its backbone
//!   as one ONNX classifier; [`metadata`] is the contract such a model carries.
//! - [`Record`] is one output row, written as a table, CSV, JSON or Parquet.
//!
//! Extract features of generated images with the pure-Rust
//! [`TestModel`](headstart_extract::testing::TestModel), fit a head, then
//! classify and export it:
//!
//! ```
//! use headstart_extract::{Extractor, NoProgress, testing::TestModel};
//! use headstart_fit::{FitParams, fit};
//! use headstart_serve::export::{ExportInput, export};
//! use headstart_serve::{Classifier, Record};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let images = dir.path().join("images");
//! // Reddish and bluish 8x8 squares with a faint pattern of their own, in
//! // train/ and test/ class folders.
//! for (split, images_in) in [("train", 0..12), ("test", 12..15)] {
//!     for (class, rgb) in [("red", [220, 40, 40]), ("blue", [40, 40, 220])] {
//!         let folder = images.join(split).join(class);
//!         std::fs::create_dir_all(&folder)?;
//!         for i in images_in.clone() {
//!             let square = image::RgbImage::from_fn(8, 8, |x, y| {
//!                 image::Rgb(rgb.map(|v: u8| v - ((x * 7 + y * 13 + i * 5) % 32) as u8))
//!             });
//!             square.save(folder.join(format!("{i}.png")))?;
//!         }
//!     }
//! }
//! let cache = dir.path().join("cache");
//! Extractor::builder(&images, &cache).build()?.run(&mut TestModel::new(16, 4), &NoProgress)?;
//!
//! let table = headstart_cache::read_features(std::slice::from_ref(&cache))?;
//! let outcome = fit(&table, &FitParams::new().check()?)?;
//! assert_eq!(outcome.test_metrics.as_ref().map(|m| m.summary.accuracy), Some(1.0));
//! let head_dir = dir.path().join("head");
//! outcome.save(&head_dir, false, &[])?;
//!
//! // Features of cached images come from the cache; the backbone opens for the others.
//! let new = dir.path().join("new.png");
//! image::RgbImage::from_pixel(8, 8, image::Rgb([30, 30, 200])).save(&new)?;
//! let mut classifier = Classifier::open(&head_dir, |_| Ok(Box::new(TestModel::new(16, 4))))?
//!     .with_caches(std::slice::from_ref(&cache))?;
//! let predictions = classifier.predict(&[images.join("test/red/12.png"), new], 32, &NoProgress)?;
//! let classes = classifier.head().class_names();
//! let rows: Vec<Record> = predictions.iter().map(|p| Record::new(p, classes, 2)).collect();
//! assert_eq!((rows[0].predictions[0].label.as_str(), rows[0].source), ("red", Some("cache")));
//! assert_eq!((rows[1].predictions[0].label.as_str(), rows[1].source), ("blue", Some("model")));
//! print!("{}", headstart_serve::records::table(&rows));
//!
//! // The head alone as ONNX: features [N, 4] in, probabilities and label out.
//! let exported = export(&outcome.head, None, ExportInput::Features)?;
//! assert_eq!(exported.model.graph.input[0].name, "features");
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod classify;
mod error;
pub mod export;
pub mod records;

pub use classify::{Classifier, Outcome, Prediction};
pub use error::{ModelId, ServeError};
pub use records::Record;

/// The metadata an exported classifier carries (ONNX `metadata_props` keys).
pub mod metadata {
    pub use headstart_onnx::export::{
        CLASS_NAMES_KEY, FEATURE_DIM_KEY, HEAD_KEY, IMAGE_PREPROCESS_KEY, INPUT_KIND_KEY,
        MODEL_FINGERPRINT_KEY, MODEL_NAME_KEY, NORMALIZATION_KEY, PREPROCESS_KEY,
    };
}
