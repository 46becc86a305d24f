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

    /// The table as one Arrow record batch with a part's columns up to `feature` (`feature`
    /// a FixedSizeList<Float32, D>), the model's name, fingerprint and
    /// dimension in the schema's metadata. The features move into the batch
    /// without a copy.
    pub fn into_record_batch(self) -> Result<arrow_array::RecordBatch, crate::CacheError> {
        use arrow_array::{ArrayRef, FixedSizeListArray, Float32Array, StringArray};
        use std::sync::Arc;
        let format = |e: arrow_schema::ArrowError| crate::CacheError::Format {
            path: std::path::PathBuf::from("<features>"),
            message: e.to_string(),
        };
        let mut meta = std::collections::HashMap::new();
        meta.insert(
            crate::meta_keys::FEATURE_DIM.to_string(),
            self.dim.to_string(),
        );
        for (k, v) in [
            (crate::meta_keys::MODEL_NAME, &self.model_name),
            (crate::meta_keys::MODEL_FINGERPRINT, &self.model_fingerprint),
        ] {
            if let Some(v) = v {
                meta.insert(k.to_string(), v.clone());
            }
        }
        // A part's columns up to `feature`: the table keeps no source versions.
        let fields: Vec<_> = crate::write::part_schema(self.dim)
            .fields()
            .iter()
            .filter(|f| f.name() != crate::columns::SOURCE_VERSION)
            .cloned()
            .collect();
        let schema = arrow_schema::Schema::new(fields).with_metadata(meta);
        let feature = FixedSizeListArray::try_new(
            crate::write::item_field(),
            self.dim as i32,
            Arc::new(Float32Array::from(self.features)),
            None,
        )
        .map_err(format)?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(self.paths)),
            Arc::new(StringArray::from(self.labels)),
            Arc::new(StringArray::from(self.splits)),
            Arc::new(StringArray::from(self.content_hashes)),
            Arc::new(StringArray::from(self.views)),
            Arc::new(feature),
        ];
        arrow_array::RecordBatch::try_new(Arc::new(schema), columns).map_err(format)
    }
}

#[cfg(test)]
mod tests {
    use super::FeatureTable;

    /// Regression: parts gained a `source_version` column (object-store
    /// inputs) and the table's batch took the part schema whole: seven fields
    /// for six columns, so `headstart.read_features` failed on every cache.
    #[test]
    fn record_batch_has_the_tables_columns_after_parts_gained_source_version() {
        let t = FeatureTable {
            paths: vec!["a/1.png".into(), "b/2.png".into()],
            labels: vec![Some("a".into()), None],
            splits: vec![None, Some("test".into())],
            content_hashes: vec!["h1".into(), "h2".into()],
            views: vec!["original".into(), "original".into()],
            dim: 3,
            features: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            model_fingerprint: Some("fp".into()),
            model_name: None,
        };
        let batch = t.into_record_batch().unwrap();
        let names: Vec<_> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(
            names,
            ["path", "label", "split", "content_hash", "view", "feature"]
        );
        assert_eq!(batch.num_rows(), 2);
    }
}
