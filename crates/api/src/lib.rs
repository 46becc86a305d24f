//! headstart's library API: one call per command, used by the `headstart` CLI
//! and the Python package alike, which only convert arguments, results and
//! errors.
//!
//! | command | call |
//! |---|---|
//! | `extract INPUT --out CACHE` | [`extract()`] |
//! | `fit CACHE... --out HEAD` | [`fit()`] |
//! | `eval HEAD CACHE...` | [`eval()`] |
//! | `audit CACHE... --out DIR` | [`audit()`] |
//! | `compare INPUT --out DIR` | [`compare()`] |
//! | `predict HEAD INPUT...` | [`predict()`] |
//! | `export HEAD --out FILE` | [`export()`] |
//! | `models quantize MODEL` | [`quantize()`] |
//! | `models list` | [`models_list()`] |
//!
//! Every call takes an [`Env`] (where the runtime and models live, where log
//! lines go) and an options struct ([`options`]) whose defaults are the CLI's;
//! each checks its options before any work and fails with one [`Error`],
//! whose [`Error::kind`] says usage, data or runtime and [`Error::fix`] the
//! line that says what to do.

#![warn(missing_docs)]

mod audit;
mod batch;
mod compare;
mod env;
mod error;
mod extract;
mod fit;
mod models;
pub mod options;
mod predict;
pub mod progress;
mod quantize;
mod report;

pub use audit::{AuditResult, audit};
pub use batch::{ExtractorOptions, FeatureExtractor, ImageFeatures};
pub use compare::{CompareResult, CompareRow, compare};
pub use env::{Env, Log};
pub use error::{Error, ErrorKind, fix_of, kind_of};
pub use extract::extract;
pub use fit::{EvalResult, FitResult, eval, fit};
pub use models::{ModelRow, inspect, models_list, models_table};
pub use predict::{Predictions, export, head_classes, predict, predict_bytes};
pub use quantize::{Quantized, quantize};

pub use headstart_extract::{NoProgress, Progress, Summary};
