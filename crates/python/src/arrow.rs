//! Arrow data in and out: image bytes from a batch's column, a batch with
//! feature and error columns added, predictions as a batch, and batches as a
//! pyarrow.Table.

use std::sync::Arc;

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder, ListBuilder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, Float32Array, RecordBatch, StringArray};
use arrow_pyarrow::IntoPyArrow;
use arrow_schema::{ArrowError, DataType, Field, Schema};
use headstart_api::ImageFeatures;
use headstart_serve::Record;
use pyo3::prelude::*;

/// The columns a [`crate::FeatureExtractor`] reads and writes.
pub struct Columns {
    /// The image bytes (binary, or a struct with a `bytes` field).
    pub image: String,
    /// The feature column written.
    pub feature: String,
    /// The error column written.
    pub error: String,
    /// Write `feature` as list<float32> instead of FixedSizeList.
    pub list: bool,
}

/// Batches as one pyarrow.Table (their schema is the first's).
pub fn table(py: Python<'_>, batches: Vec<RecordBatch>) -> PyResult<Bound<'_, PyAny>> {
    let schema = batches
        .first()
        .map(|b| b.schema())
        .unwrap_or_else(|| Arc::new(Schema::empty()));
    let t = arrow_pyarrow::Table::try_new(batches, schema)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    t.into_pyarrow(py)
}

/// The bytes of each row's image in column `name` (`None` for a null).
pub fn image_bytes<'b>(
    batch: &'b RecordBatch,
    name: &str,
) -> Result<Vec<Option<&'b [u8]>>, String> {
    let col = batch.column_by_name(name).ok_or_else(|| {
        let names: Vec<String> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        format!("no such column; the batch has {}", names.join(", "))
    })?;
    let bytes: &ArrayRef = match col.as_struct_opt() {
        Some(s) => s
            .column_by_name("bytes")
            .ok_or("a struct column needs a `bytes` field (as Hugging Face datasets write)")?,
        None => col,
    };
    let get = |i: usize| -> Option<&'b [u8]> {
        if bytes.is_null(i) {
            return None;
        }
        if let Some(b) = bytes.as_binary_opt::<i32>() {
            return Some(b.value(i));
        }
        if let Some(b) = bytes.as_binary_opt::<i64>() {
            return Some(b.value(i));
        }
        bytes.as_binary_view_opt().map(|b| b.value(i))
    };
    match bytes.data_type() {
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            Ok((0..bytes.len()).map(get).collect())
        }
        other => Err(format!(
            "has type {other}; images are binary, or a struct {{bytes, path}}"
        )),
    }
}

/// `batch` with `c.feature` (null for rows that failed) and `c.error` (null
/// for rows that did not) added, replacing columns of those names.
pub fn with_features(
    batch: &RecordBatch,
    features: &[ImageFeatures],
    dim: usize,
    c: &Columns,
) -> Result<RecordBatch, ArrowError> {
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let mut errors = StringBuilder::new();
    let feature: ArrayRef = if c.list {
        let mut b = ListBuilder::new(Float32Builder::new()).with_field(item.clone());
        for f in features {
            match f {
                Ok(v) => {
                    b.values().append_slice(v);
                    b.append(true);
                }
                Err(_) => b.append(false),
            }
        }
        Arc::new(b.finish())
    } else {
        let mut b = FixedSizeListBuilder::with_capacity(
            Float32Builder::with_capacity(features.len() * dim),
            dim as i32,
            features.len(),
        )
        .with_field(item.clone());
        for f in features {
            match f {
                Ok(v) => {
                    b.values().append_slice(v);
                    b.append(true);
                }
                Err(_) => {
                    b.values().append_slice(&vec![0.0; dim]);
                    b.append(false);
                }
            }
        }
        Arc::new(b.finish())
    };
    for f in features {
        errors.append_option(f.as_ref().err());
    }
    let mut fields: Vec<Arc<Field>> = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (f, col) in batch.schema().fields().iter().zip(batch.columns()) {
        if f.name() != &c.feature && f.name() != &c.error {
            fields.push(f.clone());
            columns.push(col.clone());
        }
    }
    fields.push(Arc::new(Field::new(
        &c.feature,
        feature.data_type().clone(),
        true,
    )));
    columns.push(feature);
    fields.push(Arc::new(Field::new(&c.error, DataType::Utf8, true)));
    columns.push(Arc::new(errors.finish()));
    let schema = Schema::new_with_metadata(fields, batch.schema().metadata().clone());
    RecordBatch::try_new(Arc::new(schema), columns)
}

/// Predictions as a batch: path, label, probability, top_labels,
/// top_probabilities, source, error.
pub fn predictions(rows: &[Record]) -> Result<RecordBatch, ArrowError> {
    let mut top_labels = ListBuilder::new(StringBuilder::new());
    let mut top_probs = ListBuilder::new(Float32Builder::new());
    for r in rows {
        for p in &r.predictions {
            top_labels.values().append_value(&p.label);
            top_probs.values().append_value(p.probability);
        }
        top_labels.append(r.error.is_none());
        top_probs.append(r.error.is_none());
    }
    fn first(r: &Record) -> Option<&headstart_serve::records::LabelProbability> {
        r.predictions.first()
    }
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "path",
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.path))),
        ),
        (
            "label",
            Arc::new(StringArray::from_iter(
                rows.iter().map(|r| first(r).map(|p| &p.label)),
            )),
        ),
        (
            "probability",
            Arc::new(Float32Array::from_iter(
                rows.iter().map(|r| first(r).map(|p| p.probability)),
            )),
        ),
        ("top_labels", Arc::new(top_labels.finish())),
        ("top_probabilities", Arc::new(top_probs.finish())),
        (
            "source",
            Arc::new(StringArray::from_iter(rows.iter().map(|r| r.source))),
        ),
        (
            "error",
            Arc::new(StringArray::from_iter(rows.iter().map(|r| {
                r.error
                    .as_ref()
                    .map(|e| format!("{}: {}", e.stage, e.message))
            }))),
        ),
    ];
    RecordBatch::try_from_iter(columns)
}
