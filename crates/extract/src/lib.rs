//! Stage one of headstart: images -> tensors -> ONNX Runtime -> features -> Parquet.

pub mod backbone;
pub mod container;
pub mod decode;
pub mod error;
pub mod input;
pub mod model;
pub mod pipeline;
pub mod runtime;
pub mod tensor;

pub use error::ExtractError;

pub use backbone::{Backbone, Device, SessionConfig};
pub use model::{FeatureSel, PreprocessOverrides, ResolvedBackbone, resolve};
pub use pipeline::{Extractor, ExtractorBuilder, NoProgress, Progress, Shard, Summary, View};
