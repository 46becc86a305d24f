//! Predictions as output rows: a terminal table, CSV, JSON (via serde) or Parquet.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow_array::builder::{Float32Builder, ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, Float32Array, RecordBatch, StringArray};
use serde::Serialize;

use crate::ServeError;
use crate::classify::{Outcome, Prediction};

/// One output row.
#[derive(Debug, Serialize)]
pub struct Record {
    /// The path as given.
    pub path: String,
    /// Best first.
    pub predictions: Vec<LabelProbability>,
    /// `cache` or `model`; absent for failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'static str>,
    /// Why there are no predictions.
    pub error: Option<ErrorInfo>,
}

/// A class and its probability.
#[derive(Debug, Serialize)]
pub struct LabelProbability {
    /// Class name.
    pub label: String,
    /// Its probability.
    pub probability: f32,
}

/// The stage that failed and why.
#[derive(Debug, Serialize)]
pub struct ErrorInfo {
    /// `list`, `read`, `decode`, `preprocess`, `infer`.
    pub stage: String,
    /// What went wrong.
    pub message: String,
}

impl Record {
    /// The row of `p` with its `top_k` best classes of `classes`.
    pub fn new(p: &Prediction, classes: &[String], top_k: usize) -> Record {
        match &p.outcome {
            Outcome::Done {
                probabilities,
                cached,
            } => {
                let mut order: Vec<usize> = (0..probabilities.len()).collect();
                // Stable: ties keep the lower class index first, as ArgMax does.
                order.sort_by(|&x, &y| probabilities[y].total_cmp(&probabilities[x]));
                Record {
                    path: p.path.clone(),
                    predictions: order
                        .into_iter()
                        .take(top_k)
                        .map(|c| LabelProbability {
                            label: classes.get(c).cloned().unwrap_or_default(),
                            probability: probabilities[c],
                        })
                        .collect(),
                    source: Some(if *cached { "cache" } else { "model" }),
                    error: None,
                }
            }
            Outcome::Failed { stage, message } => Record {
                path: p.path.clone(),
                predictions: Vec::new(),
                source: None,
                error: Some(ErrorInfo {
                    stage: stage.clone(),
                    message: message.clone(),
                }),
            },
        }
    }
}

/// An aligned text table: path, then `label probability` cells, best first.
pub fn table(rows: &[Record]) -> String {
    use headstart_files::escape as esc;
    let width = rows
        .iter()
        .map(|r| esc(&r.path).chars().count())
        .max()
        .unwrap_or(0)
        .clamp(4, 80);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<width$}  predictions (label probability, best first)",
        "path"
    );
    for r in rows {
        let _ = write!(o, "{:<width$}  ", esc(&r.path));
        match &r.error {
            Some(e) => {
                let _ = writeln!(o, "error ({}): {}", e.stage, esc(&e.message));
            }
            None => {
                let cells: Vec<String> = r
                    .predictions
                    .iter()
                    .map(|p| format!("{} {:.4}", esc(&p.label), p.probability))
                    .collect();
                let _ = writeln!(o, "{}", cells.join("  "));
            }
        }
    }
    o
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// CSV with columns path, label_i and probability_i for i in 1..=k, error.
pub fn csv(rows: &[Record], k: usize) -> String {
    let mut o = String::from("path");
    for i in 1..=k {
        let _ = write!(o, ",label_{i},probability_{i}");
    }
    o.push_str(",error\n");
    for r in rows {
        o.push_str(&csv_field(&r.path));
        for i in 0..k {
            match r.predictions.get(i) {
                Some(p) => {
                    let _ = write!(o, ",{},{}", csv_field(&p.label), p.probability);
                }
                None => o.push_str(",,"),
            }
        }
        o.push(',');
        if let Some(e) = &r.error {
            o.push_str(&csv_field(&format!("{}: {}", e.stage, e.message)));
        }
        o.push('\n');
    }
    o
}

/// Parquet with columns path, label and probability (top 1), labels and
/// probabilities (top k, best first), error_stage, error.
pub fn parquet(rows: &[Record]) -> Result<Vec<u8>, ServeError> {
    let strings = |f: &dyn Fn(&Record) -> Option<String>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let mut labels = ListBuilder::new(StringBuilder::new());
    let mut probs = ListBuilder::new(Float32Builder::new());
    for r in rows {
        for p in &r.predictions {
            labels.values().append_value(&p.label);
            probs.values().append_value(p.probability);
        }
        labels.append(r.error.is_none());
        probs.append(r.error.is_none());
    }
    let err = |e: &dyn std::fmt::Display| ServeError::Parquet(e.to_string());
    let batch = RecordBatch::try_from_iter([
        ("path", strings(&|r| Some(r.path.clone()))),
        (
            "label",
            strings(&|r| r.predictions.first().map(|p| p.label.clone())),
        ),
        (
            "probability",
            Arc::new(
                rows.iter()
                    .map(|r| r.predictions.first().map(|p| p.probability))
                    .collect::<Float32Array>(),
            ) as ArrayRef,
        ),
        ("labels", Arc::new(labels.finish()) as ArrayRef),
        ("probabilities", Arc::new(probs.finish()) as ArrayRef),
        (
            "error_stage",
            strings(&|r| r.error.as_ref().map(|e| e.stage.clone())),
        ),
        (
            "error",
            strings(&|r| r.error.as_ref().map(|e| e.message.clone())),
        ),
    ])
    .map_err(|e| err(&e))?;
    let mut buf = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None)
        .map_err(|e| err(&e))?;
    w.write(&batch).map_err(|e| err(&e))?;
    w.close().map_err(|e| err(&e))?;
    Ok(buf)
}
