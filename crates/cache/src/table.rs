//! The in-memory table of features that `fit` consumes.

/// Features and row keys loaded from one or more caches, row-major.
///
/// This is what `fit` consumes; it is produced by the cache reader (or by tests).
#[derive(Debug, Clone, Default)]
pub struct FeatureTable {
    /// Image path relative to the extract INPUT (or as stored by a foreign tool).
    pub paths: Vec<String>,
    /// Class label; `None` when unlabeled.
    pub labels: Vec<Option<String>>,
    /// Given split (`train`, `val`, `test`); `None` when not given.
    pub splits: Vec<Option<String>>,
    /// Hash of the image file's bytes (hex). Identical files share it.
    pub content_hashes: Vec<String>,
    /// Augmented view name (`original`, `hflip`, ...).
    pub views: Vec<String>,
    /// Feature dimension D.
    pub dim: usize,
    /// `rows * dim` values, row-major.
    pub features: Vec<f32>,
    /// Model fingerprint recorded in the cache, when present.
    pub model_fingerprint: Option<String>,
    /// Model name recorded in the cache, when present.
    pub model_name: Option<String>,
}

impl FeatureTable {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// True when the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Row `i`'s image: its path and content hash.
    pub fn row_id(&self, i: usize) -> (&str, &str) {
        (&self.paths[i], &self.content_hashes[i])
    }

    /// The feature vector of row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.features[i * self.dim..(i + 1) * self.dim]
    }
}
