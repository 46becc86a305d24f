//! Classification metrics, a terminal table and the metrics.json structs.

use std::fmt::Write as _;

use headstart_files::escape as esc;

use serde::{Deserialize, Serialize};

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Class label.
    pub class: String,
    /// TP / (TP + FP); 0 when the class is never predicted.
    pub precision: f64,
    /// TP / (TP + FN); 0 when the class has no rows.
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
    /// Rows whose true class this is.
    pub support: usize,
}

/// A wrong prediction made with high confidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mistake {
    /// Image path.
    pub path: String,
    /// True class.
    pub true_class: String,
    /// Predicted class.
    pub predicted: String,
    /// Probability of the predicted class.
    pub confidence: f64,
    /// Probability given to the true class.
    pub p_true: f64,
}

/// One row's outcome, kept in memory for reports (not in metrics.json).
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Image path (as in the cache).
    pub path: String,
    /// Content hash of the image (as in the cache), which tells apart two
    /// inputs' images at the same relative path.
    pub content_hash: String,
    /// True class index.
    pub true_class: u32,
    /// Predicted class index.
    pub predicted: u32,
    /// Probability of the predicted class.
    pub confidence: f32,
}

/// One bin of a reliability diagram: rows whose top probability lies in
/// `[lower, upper)` (the last bin includes 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// Lower edge of the bin.
    pub lower: f64,
    /// Upper edge of the bin.
    pub upper: f64,
    /// Rows in the bin.
    pub count: usize,
    /// Mean top probability of those rows (NaN-free: 0 when empty).
    pub mean_confidence: f64,
    /// Fraction of those rows predicted correctly (0 when empty).
    pub accuracy: f64,
}

/// Calibration of the top probability: a reliability diagram's bins and the
/// expected calibration error (count-weighted mean |accuracy - confidence|).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Expected calibration error over [`CALIBRATION_BINS`] equal-width bins.
    pub ece: f64,
    /// The bins, lowest confidence first.
    pub bins: Vec<CalibrationBin>,
}

/// Bins of [`Calibration`].
pub const CALIBRATION_BINS: usize = 10;

impl Calibration {
    fn from_predictions(rows: &[Prediction]) -> Calibration {
        let b = CALIBRATION_BINS;
        let (mut count, mut conf, mut correct) = (vec![0usize; b], vec![0f64; b], vec![0usize; b]);
        for r in rows {
            let i = ((f64::from(r.confidence) * b as f64) as usize).min(b - 1);
            count[i] += 1;
            conf[i] += f64::from(r.confidence);
            correct[i] += usize::from(r.true_class == r.predicted);
        }
        let n = rows.len().max(1) as f64;
        let mut ece = 0.0;
        let bins = (0..b)
            .map(|i| {
                let c = count[i].max(1) as f64;
                let (mean_confidence, accuracy) = (conf[i] / c, correct[i] as f64 / c);
                ece += count[i] as f64 / n * (accuracy - mean_confidence).abs();
                CalibrationBin {
                    lower: i as f64 / b as f64,
                    upper: (i + 1) as f64 / b as f64,
                    count: count[i],
                    mean_confidence,
                    accuracy,
                }
            })
            .collect();
        Calibration { ece, bins }
    }
}

/// Headline numbers (stored in head.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsSummary {
    /// Rows evaluated.
    pub n: usize,
    /// Fraction correct.
    pub accuracy: f64,
    /// Mean recall over classes with support.
    pub balanced_accuracy: f64,
    /// Unweighted mean F1 over classes that occur in truth or predictions.
    pub macro_f1: f64,
    /// Mean negative log-probability of the true class (probabilities clipped at 1e-15).
    pub log_loss: f64,
    /// Fraction with the true class among the five most probable (only when K > 5).
    pub top5_accuracy: Option<f64>,
}

/// Classes up to which [`Metrics::confusion`] is stored densely and
/// `confusion_<set>.svg` draws the whole matrix; beyond, only the non-zero
/// cells are kept and the SVG charts the most confused pairs.
pub const DENSE_CONFUSION_MAX_CLASSES: usize = 100;

/// Per-class rows that [`Metrics::to_text`] prints; with more classes it
/// prints this many of the lowest F1 and points to the full table.
pub const TEXT_CLASS_ROWS: usize = 50;

/// Full metrics of one evaluation set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Which set (`val`, `test`, `eval`).
    pub set: String,
    /// Headline numbers.
    #[serde(flatten)]
    pub summary: MetricsSummary,
    /// Per-class precision/recall/F1/support, in class index order.
    pub per_class: Vec<ClassMetrics>,
    /// Class names, index order (rows and columns of `confusion`).
    pub class_names: Vec<String>,
    /// `confusion[true][predicted]` counts, only up to
    /// [`DENSE_CONFUSION_MAX_CLASSES`] classes (a dense K x K matrix grows
    /// with the square of K); `confusion_cells` holds the same counts always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confusion: Option<Vec<Vec<usize>>>,
    /// The non-zero cells of the confusion matrix as `[true, predicted, count]`
    /// (class indices), sorted by true then predicted class.
    #[serde(default)]
    pub confusion_cells: Vec<[usize; 3]>,
    /// The most confident mistakes, most confident first.
    pub confident_mistakes: Vec<Mistake>,
    /// Reliability of the top probability.
    #[serde(default)]
    pub calibration: Calibration,
    /// Every row's outcome, in input order (for reports; not serialised).
    #[serde(skip)]
    pub predictions: Vec<Prediction>,
}

impl Metrics {
    /// Computes metrics from probabilities `probs` (n x K, row-major), true
    /// class indices `y` and each row's `(path, content hash)`.
    pub fn compute(
        set: &str,
        class_names: &[String],
        y: &[u32],
        probs: &[f32],
        rows: &[(&str, &str)],
        n_mistakes: usize,
    ) -> Metrics {
        let k = class_names.len();
        let n = y.len();
        debug_assert_eq!(probs.len(), n * k);
        // (true, predicted) per row; counted sparsely, so memory grows with
        // the rows and the classes, never with classes squared.
        let mut pairs: Vec<(u32, u32)> = Vec::with_capacity(n);
        let mut log_loss = 0.0f64;
        let mut top5 = 0usize;
        let mut mistakes: Vec<(f64, usize, usize)> = Vec::new();
        let mut predictions = Vec::with_capacity(n);
        for (i, (row, &yi)) in probs.chunks_exact(k.max(1)).zip(y).enumerate() {
            let yi = yi as usize;
            let (mut arg, mut best) = (0usize, f32::NEG_INFINITY);
            for (j, &p) in row.iter().enumerate() {
                if p > best {
                    best = p;
                    arg = j;
                }
            }
            pairs.push((yi as u32, arg as u32));
            predictions.push(Prediction {
                path: rows[i].0.to_string(),
                content_hash: rows[i].1.to_string(),
                true_class: yi as u32,
                predicted: arg as u32,
                confidence: best,
            });
            let pt = f64::from(row[yi]);
            log_loss -= pt.clamp(1e-15, 1.0).ln();
            if k > 5 {
                let higher = row.iter().filter(|&&p| p > row[yi]).count();
                top5 += usize::from(higher < 5);
            }
            if arg != yi {
                mistakes.push((f64::from(best), i, arg));
            }
        }
        mistakes.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let confident_mistakes = mistakes
            .iter()
            .take(n_mistakes)
            .map(|&(conf, i, arg)| Mistake {
                path: rows[i].0.to_string(),
                true_class: class_names[y[i] as usize].clone(),
                predicted: class_names[arg].clone(),
                confidence: conf,
                p_true: f64::from(probs[i * k + y[i] as usize]),
            })
            .collect();
        pairs.sort_unstable();
        let mut cells: Vec<[usize; 3]> = Vec::new();
        for &(t, p) in &pairs {
            match cells.last_mut() {
                Some(c) if c[0] == t as usize && c[1] == p as usize => c[2] += 1,
                _ => cells.push([t as usize, p as usize, 1]),
            }
        }
        drop(pairs);
        let (mut tp, mut support, mut predicted) =
            (vec![0usize; k], vec![0usize; k], vec![0usize; k]);
        for &[t, p, c] in &cells {
            support[t] += c;
            predicted[p] += c;
            if t == p {
                tp[t] += c;
            }
        }
        let mut per_class = Vec::with_capacity(k);
        let (mut recall_sum, mut with_support) = (0.0, 0usize);
        let (mut f1_sum, mut f1_count) = (0.0, 0usize);
        let mut correct = 0usize;
        for c in 0..k {
            let (tp, support, predicted) = (tp[c], support[c], predicted[c]);
            correct += tp;
            let precision = if predicted > 0 {
                tp as f64 / predicted as f64
            } else {
                0.0
            };
            let recall = if support > 0 {
                tp as f64 / support as f64
            } else {
                0.0
            };
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            if support > 0 {
                recall_sum += recall;
                with_support += 1;
            }
            if support > 0 || predicted > 0 {
                f1_sum += f1;
                f1_count += 1;
            }
            per_class.push(ClassMetrics {
                class: class_names[c].clone(),
                precision,
                recall,
                f1,
                support,
            });
        }
        let frac = |a: usize| if n > 0 { a as f64 / n as f64 } else { f64::NAN };
        Metrics {
            set: set.to_string(),
            summary: MetricsSummary {
                n,
                accuracy: frac(correct),
                balanced_accuracy: if with_support > 0 {
                    recall_sum / with_support as f64
                } else {
                    f64::NAN
                },
                macro_f1: if f1_count > 0 {
                    f1_sum / f1_count as f64
                } else {
                    f64::NAN
                },
                log_loss: if n > 0 { log_loss / n as f64 } else { f64::NAN },
                top5_accuracy: (k > 5).then(|| frac(top5)),
            },
            per_class,
            class_names: class_names.to_vec(),
            confusion: (k <= DENSE_CONFUSION_MAX_CLASSES).then(|| dense(k, &cells)),
            confusion_cells: cells,
            confident_mistakes,
            calibration: Calibration::from_predictions(&predictions),
            predictions,
        }
    }

    /// The off-diagonal cells with the largest counts, as `[true, predicted,
    /// count]`, at most `n`, largest first (ties by class index).
    pub fn most_confused(&self, n: usize) -> Vec<[usize; 3]> {
        let mut off: Vec<[usize; 3]> = self
            .confusion_cells
            .iter()
            .copied()
            .filter(|c| c[0] != c[1])
            .collect();
        off.sort_by(|a, b| b[2].cmp(&a[2]).then(a[0].cmp(&b[0])).then(a[1].cmp(&b[1])));
        off.truncate(n);
        off
    }

    /// The confusion matrix as a text table (rows: true class, columns:
    /// predicted); beyond [`TEXT_CONFUSION_MAX_CLASSES`] classes, the most
    /// confused pairs instead.
    pub fn confusion_text(&self) -> String {
        let k = self.class_names.len();
        let mut out = String::new();
        if k > TEXT_CONFUSION_MAX_CLASSES {
            let top = self.most_confused(TEXT_CLASS_ROWS);
            let _ = writeln!(
                out,
                "{k} classes: the {} most confused pairs (true -> predicted: rows)",
                top.len()
            );
            for [t, p, c] in top {
                let _ = writeln!(
                    out,
                    "  {} -> {}: {c}",
                    esc(&self.class_names[t]),
                    esc(&self.class_names[p])
                );
            }
            return out;
        }
        let m = dense(k, &self.confusion_cells);
        let names: Vec<String> = self
            .class_names
            .iter()
            .map(|n| esc(n).into_owned())
            .collect();
        let short: Vec<String> = names.iter().map(|n| n.chars().take(6).collect()).collect();
        let w = names
            .iter()
            .map(|n| n.chars().count())
            .max()
            .unwrap_or(0)
            .max(11);
        let _ = write!(out, "{:>w$}", "true \\ pred");
        for s in &short {
            let _ = write!(out, " {s:>6}");
        }
        out.push('\n');
        for (name, row) in names.iter().zip(&m) {
            let _ = write!(out, "{name:>w$}");
            for v in row {
                let _ = write!(out, " {v:>6}");
            }
            out.push('\n');
        }
        out
    }

    /// A readable table for the terminal: headline numbers, the per-class
    /// table (at most [`TEXT_CLASS_ROWS`] rows; see [`Metrics::to_text_with`])
    /// and the most confident mistakes.
    pub fn to_text(&self) -> String {
        self.to_text_with(TEXT_CLASS_ROWS, "the JSON form (`per_class`)")
    }

    /// [`Metrics::to_text`] printing at most `max_class_rows` per-class rows:
    /// all classes in index order when they fit, otherwise the lowest-F1
    /// classes and a line saying that `full_table_at` holds every class.
    pub fn to_text_with(&self, max_class_rows: usize, full_table_at: &str) -> String {
        let s = &self.summary;
        let mut out = String::new();
        let _ = write!(
            out,
            "{}: {} images  accuracy {:.2}%  balanced {:.2}%  macro-F1 {:.4}  log-loss {:.4}",
            self.set,
            s.n,
            100.0 * s.accuracy,
            100.0 * s.balanced_accuracy,
            s.macro_f1,
            s.log_loss
        );
        if let Some(t) = s.top5_accuracy {
            let _ = write!(out, "  top-5 {:.2}%", 100.0 * t);
        }
        out.push('\n');
        let k = self.per_class.len();
        let shown: Vec<&ClassMetrics> = if k <= max_class_rows {
            self.per_class.iter().collect()
        } else {
            // The classes that need attention: lowest F1, larger support first
            // (a class with no images here has no F1 to speak of).
            let mut order: Vec<&ClassMetrics> =
                self.per_class.iter().filter(|c| c.support > 0).collect();
            order.sort_by(|a, b| a.f1.total_cmp(&b.f1).then(b.support.cmp(&a.support)));
            order.truncate(max_class_rows);
            let _ = writeln!(
                out,
                "  the {} classes of lowest F1 of {k} (all of them: {full_table_at}):",
                order.len()
            );
            order
        };
        let w = shown
            .iter()
            .map(|c| esc(&c.class).chars().count())
            .max()
            .unwrap_or(5)
            .clamp(5, 40);
        let _ = writeln!(
            out,
            "  {:<w$}  {:>9}  {:>7}  {:>7}  {:>7}",
            "class", "precision", "recall", "f1", "support"
        );
        for c in shown {
            let name: String = esc(&c.class).chars().take(w).collect();
            let _ = writeln!(
                out,
                "  {:<w$}  {:>9.4}  {:>7.4}  {:>7.4}  {:>7}",
                name, c.precision, c.recall, c.f1, c.support
            );
        }
        if !self.confident_mistakes.is_empty() {
            let _ = writeln!(
                out,
                "  most confident mistakes (confidence  true -> predicted  path):"
            );
            for m in &self.confident_mistakes {
                let _ = writeln!(
                    out,
                    "    {:.3}  {} -> {}  {}",
                    m.confidence,
                    esc(&m.true_class),
                    esc(&m.predicted),
                    esc(&m.path)
                );
            }
        }
        out
    }

    /// The confusion matrix as a standalone SVG document: the whole matrix up
    /// to [`DENSE_CONFUSION_MAX_CLASSES`] classes, otherwise a bar chart of
    /// the most confused pairs (its size does not grow with the class count).
    pub fn confusion_svg(&self) -> String {
        let k = self.class_names.len();
        let title = format!("Confusion matrix ({}, {} images)", self.set, self.summary.n);
        if k <= DENSE_CONFUSION_MAX_CLASSES {
            return crate::svg::confusion_svg(
                &title,
                &self.class_names,
                &dense(k, &self.confusion_cells),
            );
        }
        let support: Vec<usize> = self.per_class.iter().map(|c| c.support).collect();
        crate::svg::confused_pairs_svg(
            &format!(
                "Most confused pairs ({}, {} images, {k} classes)",
                self.set, self.summary.n
            ),
            &self.class_names,
            &support,
            &self.most_confused(SVG_PAIRS),
        )
    }
}

/// Classes up to which [`Metrics::confusion_text`] prints the matrix.
pub const TEXT_CONFUSION_MAX_CLASSES: usize = 30;

/// Pairs charted in the SVG of a large confusion matrix.
const SVG_PAIRS: usize = 50;

/// The dense `k` x `k` matrix of sparse `[true, predicted, count]` cells.
fn dense(k: usize, cells: &[[usize; 3]]) -> Vec<Vec<usize>> {
    let mut m = vec![vec![0usize; k]; k];
    for &[t, p, c] in cells {
        m[t][p] += c;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn hand_computed_example() {
        // 3 classes, 6 rows.
        // true: a a a b b c ; predicted: a a b b c c
        let probs: Vec<f32> = vec![
            0.8, 0.1, 0.1, // a -> a
            0.6, 0.3, 0.1, // a -> a
            0.3, 0.6, 0.1, // a -> b (conf 0.6)
            0.1, 0.8, 0.1, // b -> b
            0.1, 0.2, 0.7, // b -> c (conf 0.7)
            0.2, 0.2, 0.6, // c -> c
        ];
        let y = [0, 0, 0, 1, 1, 2];
        let rows = ["p0", "p1", "p2", "p3", "p4", "p5"].map(|p| (p, ""));
        let m = Metrics::compute("val", &names(&["a", "b", "c"]), &y, &probs, &rows, 10);
        let s = &m.summary;
        assert_eq!(s.n, 6);
        assert!((s.accuracy - 4.0 / 6.0).abs() < 1e-12);
        // recalls: a 2/3, b 1/2, c 1
        assert!((s.balanced_accuracy - (2.0 / 3.0 + 0.5 + 1.0) / 3.0).abs() < 1e-12);
        // precisions: a 2/2, b 1/2, c 1/2; f1: a 0.8, b 0.5, c 2/3
        let f1 = [0.8, 0.5, 2.0 / 3.0];
        for (c, f) in m.per_class.iter().zip(f1) {
            assert!((c.f1 - f).abs() < 1e-12, "{c:?}");
        }
        assert!((s.macro_f1 - (0.8 + 0.5 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        let ll =
            -(0.8f64.ln() + 0.6f64.ln() + 0.3f64.ln() + 0.8f64.ln() + 0.2f64.ln() + 0.6f64.ln())
                / 6.0;
        assert!((s.log_loss - ll).abs() < 1e-6);
        assert_eq!(s.top5_accuracy, None);
        assert_eq!(
            m.confusion,
            Some(vec![vec![2, 1, 0], vec![0, 1, 1], vec![0, 0, 1]])
        );
        assert_eq!(
            m.confusion_cells,
            vec![[0, 0, 2], [0, 1, 1], [1, 1, 1], [1, 2, 1], [2, 2, 1]]
        );
        assert_eq!(m.most_confused(1), vec![[0, 1, 1]]);
        assert_eq!(m.per_class[1].support, 2);
        assert_eq!(m.confident_mistakes.len(), 2);
        assert_eq!(m.confident_mistakes[0].path, "p4");
        assert_eq!(m.confident_mistakes[0].predicted, "c");
        assert!((m.confident_mistakes[0].p_true - 0.2).abs() < 1e-6);
        let text = m.to_text();
        assert!(text.contains("accuracy 66.67%"), "{text}");
        let svg = m.confusion_svg();
        assert!(svg.starts_with("<svg") && svg.contains(">a</text>"));
        let json = serde_json::to_string(&m).unwrap();
        let back: Metrics = serde_json::from_str(&json).unwrap();
        assert_eq!(back.confusion, m.confusion);
        assert_eq!(back.confusion_cells, m.confusion_cells);
    }

    /// Regression (#22 item 17): with many classes, those without a single
    /// image in the set were listed as the "lowest F1" ones.
    #[test]
    fn classes_without_images_are_not_the_lowest_f1() {
        let names: Vec<String> = (0..4).map(|i| format!("c{i}")).collect();
        // Rows of classes 0 and 1 only; class 1's row is wrong.
        let probs = [0.7f32, 0.1, 0.1, 0.1, 0.6, 0.2, 0.1, 0.1];
        let m = Metrics::compute("t", &names, &[0, 1], &probs, &[("a", ""), ("b", "")], 5);
        let text = m.to_text_with(2, "x");
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("  c") && !l.contains("precision"))
            .collect();
        assert_eq!(rows.len(), 2, "{text}");
        assert!(
            rows[0].starts_with("  c1") && rows[1].starts_with("  c0"),
            "{text}"
        );
    }

    #[test]
    fn top5_counts_rank() {
        let k = 7;
        let names: Vec<String> = (0..k).map(|i| format!("c{i}")).collect();
        // True class 6 has the 6th-highest probability -> not top-5; row 2 true class 0 rank 1.
        let p1: Vec<f32> = vec![0.3, 0.2, 0.15, 0.12, 0.1, 0.08, 0.05];
        let p2: Vec<f32> = vec![0.5, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05];
        let probs: Vec<f32> = p1.into_iter().chain(p2).collect();
        let m = Metrics::compute("t", &names, &[6, 5], &probs, &[("a", ""), ("b", "")], 5);
        // Row 2: true class 5 (0.05) has 5 higher -> not top-5 either.
        assert_eq!(m.summary.top5_accuracy, Some(0.0));
        let m = Metrics::compute("t", &names, &[4, 0], &probs, &[("a", ""), ("b", "")], 5);
        assert_eq!(m.summary.top5_accuracy, Some(1.0));
    }
}
