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
//! ```no_run
//! use headstart_serve::{Classifier, Record};
//! use headstart_extract::{NoProgress, testing::TestModel};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A head fitted on TestModel features (see headstart-fit).
//! let mut classifier = Classifier::open("head".as_ref(), |_| Ok(Box::new(TestModel::new(16, 4))))?;
//! let predictions = classifier.predict(&["photos".into()], 32, &NoProgress)?;
//! let classes = classifier.head().class_names();
//! let rows: Vec<Record> = predictions.iter().map(|p| Record::new(p, classes, 3)).collect();
//! print!("{}", headstart_serve::records::table(&rows));
//! # Ok(()) }
//! ```

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
