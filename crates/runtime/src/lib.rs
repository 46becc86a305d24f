//! ONNX Runtime for headstart: where the shared library comes from, how it is
//! loaded, and sessions over backbones.
//!
//! - [`locate`] / [`locate_for`] find the library: an explicit path, else the copy in
//!   the headstart cache, else the pinned `onnxruntime` wheel fetched through pip
//!   ([`install`]). The GPU build ([`gpu`]) is installed the same way and its NVIDIA
//!   libraries are preloaded by [`init`]. Every `unsafe` that loads a library is here.
//! - [`init`] loads it once per process and returns the [`Runtime`].
//! - [`Backbone`] is one session over a model: batches of preprocessed tensors in,
//!   named float outputs out, on the [`Device`] of its [`SessionConfig`].
//!
//! Choosing where a backbone runs needs no library:
//!
//! ```
//! use headstart_runtime::{Device, SessionConfig};
//! # fn main() -> Result<(), headstart_runtime::RuntimeError> {
//! assert_eq!("cuda:1".parse::<Device>()?, Device::Cuda(1));
//! assert_eq!("tensorrt".parse::<Device>()?, Device::TensorRt(0));
//! assert!("gpu".parse::<Device>().is_err());
//!
//! let config = SessionConfig { device: "cpu".parse()?, ..SessionConfig::default() };
//! assert_eq!(config.device, Device::Cpu);
//! assert!(config.intra_threads >= 1 && !config.spinning && !config.allow_cpu_fallback);
//! # Ok(()) }
//! ```
//!
//! Opening one needs ONNX Runtime, found (and fetched through pip when missing)
//! by [`locate`]:
//!
//! ```no_run
//! use headstart_models::{FeatureSel, PreprocessOverrides, resolve, zoo};
//! use headstart_runtime::{Backbone, SessionConfig, init, locate};
//! # fn main() -> Result<(), headstart_runtime::RuntimeError> {
//! let home = headstart_provision::Home::from_env()?;
//! let log = |line: &str| eprintln!("{line}");
//! let runtime = init(&locate(&home, None, &log)?.path)?;
//! let resolved = resolve(&home, zoo::DEFAULT_MODEL, &FeatureSel::Auto, &PreprocessOverrides::default(), &log)?;
//! let backbone = Backbone::open_features(runtime, &resolved, &SessionConfig::default())?;
//! println!("{} on {}", resolved.name, backbone.provider());
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod error;
pub mod gpu;
mod load;
mod probe;
mod session;

pub use error::{DeviceFix, RuntimeError};
pub use load::{
    LibSource, ORT_VERSION, Runtime, RuntimeLib, cached_path, cpu_wheel, init, install, locate,
    locate_for, providers,
};
pub use probe::Probe;
pub use session::{
    Backbone, CPU_PROVIDER, Device, SessionConfig, check_threads, max_threads, probe_device,
};
