//! The error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while fitting, evaluating or loading a head.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    /// A parameter failed validation in [`crate::FitParams::check`].
    #[error("invalid parameter {name}: {reason}")]
    InvalidParam {
        /// Parameter name as on the command line (`c`, `val-fraction`, ...).
        name: &'static str,
        /// What is wrong with the value.
        reason: String,
    },
    /// A combination of parameters this crate does not support.
    #[error("unsupported: {} `{}` with {} `{}` ({reason})", .params[0].0, .params[0].1, .params[1].0, .params[1].1)]
    Unsupported {
        /// The two parameters that do not go together, as (field, value),
        /// e.g. `("solver", "linfa")`.
        params: [(&'static str, &'static str); 2],
        /// Why they do not.
        reason: &'static str,
    },
    /// A text value (head kind, solver, ...) could not be parsed.
    #[error("cannot parse {what} from {value:?}; expected one of {expected}")]
    Parse {
        /// What was being parsed.
        what: &'static str,
        /// The offending text.
        value: String,
        /// The accepted values.
        expected: &'static str,
    },
    /// The feature table's columns disagree in length.
    #[error("feature table is inconsistent: {0}")]
    InconsistentTable(String),
    /// Two tables (or a table and a head) have different feature dimensions.
    #[error("mixed feature dimensions: {first_source} has {first_dim}, {source_name} has {dim}")]
    MixedDims {
        /// Where the first dimension came from.
        first_source: String,
        /// The first dimension seen.
        first_dim: usize,
        /// Where the conflicting dimension came from.
        source_name: String,
        /// The conflicting dimension.
        dim: usize,
    },
    /// Two tables come from different models.
    #[error(
        "mixed models: {first_source} has features of fingerprint {first}, {source_name} of fingerprint {second}; features of one model only can be combined"
    )]
    MixedModels {
        /// Where the first fingerprint came from.
        first_source: String,
        /// The first fingerprint seen.
        first: String,
        /// Where the conflicting fingerprint came from.
        source_name: String,
        /// The conflicting fingerprint.
        second: String,
    },
    /// Features contain NaN or infinite values: drop those rows, or extract
    /// the images again (extraction records such images as errors).
    #[error(
        "{count} row(s) have NaN or infinite features, e.g. {}",
        .paths.join(", ")
    )]
    NonFinite {
        /// Number of offending rows.
        count: usize,
        /// Paths of the first offending rows (at most 10).
        paths: Vec<String>,
    },
    /// A `split` value that is none of train / val / valid / validation / test.
    #[error("unknown split {value:?} for {path} (expected train, val, valid, validation or test)")]
    UnknownSplit {
        /// The split value found.
        value: String,
        /// Row path that carries it.
        path: String,
    },
    /// Fewer than two classes among the labeled rows.
    #[error("need at least two classes to fit a classifier, found {found}: {classes:?}")]
    TooFewClasses {
        /// Number of distinct labels.
        found: usize,
        /// The labels found.
        classes: Vec<String>,
    },
    /// A class that appears in the data but has no training row.
    #[error(
        "class {class:?} has no training rows ({held_out} held-out row(s), e.g. {example_path})"
    )]
    EmptyClass {
        /// The class label.
        class: String,
        /// Number of its rows in validation/test.
        held_out: usize,
        /// One of its rows.
        example_path: String,
    },
    /// No labeled training rows at all.
    #[error("no labeled training rows (after split and view filtering)")]
    NoTrainingRows,
    /// The validation set is empty but the run needs it: a larger validation
    /// fraction, or rows with `split=val`, give it rows.
    #[error("no validation rows: {0}")]
    NoValidationRows(String),
    /// `evaluate` was given rows without a label.
    #[error("{count} row(s) have no label, e.g. {example_path}; evaluation needs labels")]
    MissingLabels {
        /// Number of unlabeled rows.
        count: usize,
        /// One of them.
        example_path: String,
    },
    /// `evaluate` found labels the head was not trained on.
    #[error(
        "labels not known to the head: {labels:?} ({count} row(s), e.g. {example_path}); head classes: {known:?}"
    )]
    UnknownLabels {
        /// The unknown labels.
        labels: Vec<String>,
        /// Rows carrying them.
        count: usize,
        /// One of those rows.
        example_path: String,
        /// The head's classes.
        known: Vec<String>,
    },
    /// No row has the `original` view, which validation and evaluation use:
    /// the images need extracting again with it.
    #[error(
        "no row has view `original` (the features have: {}); validation and evaluation use the `original` view of each image",
        .views.join(", ")
    )]
    NoOriginalView {
        /// The views the rows have (at most 20).
        views: Vec<String>,
    },
    /// Nothing to evaluate.
    #[error("no rows to evaluate (evaluation uses rows whose view is `original`)")]
    NoEvalRows,
    /// Head and features come from different models: extract the images with
    /// the head's model, or fit a head on these features.
    #[error(
        "model fingerprint mismatch: the head was trained on features of {head}, these features come from {cache}"
    )]
    FingerprintMismatch {
        /// Fingerprint stored with the head.
        head: String,
        /// Fingerprint of the cache.
        cache: String,
    },
    /// Head and features have different feature dimensions.
    #[error("feature dimension mismatch: head expects {head}, features have {features}")]
    DimMismatch {
        /// Dimension the head expects.
        head: usize,
        /// Dimension given.
        features: usize,
    },
    /// A head directory written by an unsupported format version.
    #[error("{path}: head format_version {found} is not supported (this build reads {supported})")]
    FormatVersion {
        /// The head.json path.
        path: PathBuf,
        /// Version found.
        found: u32,
        /// Version supported.
        supported: u32,
    },
    /// A head artifact is malformed.
    #[error("{path}: invalid head artifact: {reason}")]
    BadArtifact {
        /// File at fault.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The output folder may not be written (not headstart's, or not a folder).
    #[error(transparent)]
    Files(#[from] headstart_files::FilesError),
    /// File system error with the path involved.
    #[error("{path}: {source}")]
    Io {
        /// The path being read or written.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// JSON (de)serialization failure.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },
    /// The optimizer produced non-finite values (diverged).
    #[error("optimization diverged ({0}); try standard normalization or a smaller C")]
    Diverged(String),
    /// Error reported by linfa-logistic (`--solver linfa`).
    #[error("linfa-logistic: {0}")]
    Linfa(String),
}

impl FitError {
    pub(crate) fn param(name: &'static str, reason: impl Into<String>) -> Self {
        FitError::InvalidParam {
            name,
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FitError::Io {
            path: path.into(),
            source,
        }
    }
}
