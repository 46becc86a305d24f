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

mod error;
pub mod gpu;
mod load;
mod session;

pub use error::RuntimeError;
pub use load::{
    LibSource, ORT_VERSION, Runtime, RuntimeLib, cached_path, cpu_wheel, init, install, locate,
    locate_for, providers,
};
pub use session::{Backbone, CPU_PROVIDER, Device, SessionConfig, probe_device};
