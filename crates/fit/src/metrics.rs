//! Classification metrics, a terminal table and the metrics.json structs.

use std::fmt::Write as _;

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
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
    /// The most confident mistakes, most confident first.
    pub confident_mistakes: Vec<Mistake>,
}

impl Metrics {
    /// Computes metrics from probabilities `probs` (n x K, row-major), true
    /// class indices `y` and row paths.
    pub fn compute(
        set: &str,
        class_names: &[String],
        y: &[u32],
        probs: &[f32],
        paths: &[&str],
        n_mistakes: usize,
    ) -> Metrics {
        let k = class_names.len();
        let n = y.len();
        debug_assert_eq!(probs.len(), n * k);
        let mut confusion = vec![vec![0usize; k]; k];
        let mut log_loss = 0.0f64;
        let mut top5 = 0usize;
        let mut mistakes: Vec<(f64, usize, usize)> = Vec::new();
        for (i, (row, &yi)) in probs.chunks_exact(k.max(1)).zip(y).enumerate() {
            let yi = yi as usize;
            let (mut arg, mut best) = (0usize, f32::NEG_INFINITY);
            for (j, &p) in row.iter().enumerate() {
                if p > best {
                    best = p;
                    arg = j;
                }
            }
            confusion[yi][arg] += 1;
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
                path: paths[i].to_string(),
                true_class: class_names[y[i] as usize].clone(),
                predicted: class_names[arg].clone(),
                confidence: conf,
                p_true: f64::from(probs[i * k + y[i] as usize]),
            })
            .collect();
        let mut per_class = Vec::with_capacity(k);
        let (mut recall_sum, mut with_support) = (0.0, 0usize);
        let (mut f1_sum, mut f1_count) = (0.0, 0usize);
        let mut correct = 0usize;
        for c in 0..k {
            let tp = confusion[c][c];
            correct += tp;
            let support: usize = confusion[c].iter().sum();
            let predicted: usize = confusion.iter().map(|r| r[c]).sum();
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
            confusion,
            confident_mistakes,
        }
    }

    /// The confusion matrix as a text table (rows: true class, columns: predicted).
    pub fn confusion_text(&self) -> String {
        let short: Vec<String> = self
            .class_names
            .iter()
            .map(|n| n.chars().take(6).collect())
            .collect();
        let w = self
            .class_names
            .iter()
            .map(|n| n.len())
            .max()
            .unwrap_or(0)
            .max(11);
        let mut out = String::new();
        let _ = write!(out, "{:>w$}", "true \\ pred");
        for s in &short {
            let _ = write!(out, " {s:>6}");
        }
        out.push('\n');
        for (name, row) in self.class_names.iter().zip(&self.confusion) {
            let _ = write!(out, "{name:>w$}");
            for v in row {
                let _ = write!(out, " {v:>6}");
            }
            out.push('\n');
        }
        out
    }

    /// A readable table for the terminal.
    pub fn to_text(&self) -> String {
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
        let w = self
            .per_class
            .iter()
            .map(|c| c.class.chars().count())
            .max()
            .unwrap_or(5)
            .clamp(5, 40);
        let _ = writeln!(
            out,
            "  {:<w$}  {:>9}  {:>7}  {:>7}  {:>7}",
            "class", "precision", "recall", "f1", "support"
        );
        for c in &self.per_class {
            let name: String = c.class.chars().take(w).collect();
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
                    m.confidence, m.true_class, m.predicted, m.path
                );
            }
        }
        out
    }

    /// The confusion matrix as a standalone SVG document.
    pub fn confusion_svg(&self) -> String {
        crate::svg::confusion_svg(
            &format!("Confusion matrix ({}, {} images)", self.set, self.summary.n),
            &self.class_names,
            &self.confusion,
        )
    }
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
        let paths = ["p0", "p1", "p2", "p3", "p4", "p5"];
        let m = Metrics::compute("val", &names(&["a", "b", "c"]), &y, &probs, &paths, 10);
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
            vec![vec![2, 1, 0], vec![0, 1, 1], vec![0, 0, 1]]
        );
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
    }

    #[test]
    fn top5_counts_rank() {
        let k = 7;
        let names: Vec<String> = (0..k).map(|i| format!("c{i}")).collect();
        // True class 6 has the 6th-highest probability -> not top-5; row 2 true class 0 rank 1.
        let p1: Vec<f32> = vec![0.3, 0.2, 0.15, 0.12, 0.1, 0.08, 0.05];
        let p2: Vec<f32> = vec![0.5, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05];
        let probs: Vec<f32> = p1.into_iter().chain(p2).collect();
        let m = Metrics::compute("t", &names, &[6, 5], &probs, &["a", "b"], 5);
        // Row 2: true class 5 (0.05) has 5 higher -> not top-5 either.
        assert_eq!(m.summary.top5_accuracy, Some(0.0));
        let m = Metrics::compute("t", &names, &[4, 0], &probs, &["a", "b"], 5);
        assert_eq!(m.summary.top5_accuracy, Some(1.0));
    }
}
