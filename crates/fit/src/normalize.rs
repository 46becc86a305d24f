//! Feature normalisation fitted on training rows and stored with the head.

use headstart_cache::FeatureTable;

use crate::FitError;
use crate::engine::{add_into, avx512_dispatch, fold_blocks};
use crate::params::Normalize;

/// A fitted normaliser: `standard` holds per-feature mean and std.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalizer {
    kind: Normalize,
    mean: Vec<f32>,
    std: Vec<f32>,
    inv_std: Vec<f32>,
}

impl Normalizer {
    /// Identity.
    pub fn none() -> Self {
        Self::bare(Normalize::None)
    }

    /// Row-wise L2 normalisation.
    pub fn l2() -> Self {
        Self::bare(Normalize::L2)
    }

    fn bare(kind: Normalize) -> Self {
        Normalizer {
            kind,
            mean: Vec::new(),
            std: Vec::new(),
            inv_std: Vec::new(),
        }
    }

    /// Standardisation with given statistics (std must be finite and > 0).
    pub fn standard(mean: Vec<f32>, std: Vec<f32>) -> Result<Self, FitError> {
        if mean.len() != std.len() {
            return Err(FitError::InconsistentTable(format!(
                "normalisation mean has {} values, std {}",
                mean.len(),
                std.len()
            )));
        }
        if let Some(s) = std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(FitError::InconsistentTable(format!(
                "normalisation std {s} is not finite and > 0"
            )));
        }
        if mean.iter().any(|m| !m.is_finite()) {
            return Err(FitError::InconsistentTable(
                "normalisation mean is not finite".into(),
            ));
        }
        let inv_std = std.iter().map(|s| 1.0 / s).collect();
        Ok(Normalizer {
            kind: Normalize::Standard,
            mean,
            std,
            inv_std,
        })
    }

    /// Which normalisation.
    pub fn kind(&self) -> Normalize {
        self.kind
    }

    /// Per-feature mean (standard only).
    pub fn mean(&self) -> Option<&[f32]> {
        (self.kind == Normalize::Standard).then_some(self.mean.as_slice())
    }

    /// Per-feature standard deviation (standard only; zero-variance features get 1).
    pub fn std(&self) -> Option<&[f32]> {
        (self.kind == Normalize::Standard).then_some(self.std.as_slice())
    }

    /// Normalises one row `x` into `out` (same length).
    #[inline]
    pub fn apply(&self, x: &[f32], out: &mut [f32]) {
        match self.kind {
            Normalize::None => out.copy_from_slice(x),
            Normalize::Standard => {
                for (((o, &v), &m), &s) in out.iter_mut().zip(x).zip(&self.mean).zip(&self.inv_std)
                {
                    *o = (v - m) * s;
                }
            }
            Normalize::L2 => {
                let ss: f32 = x.iter().map(|v| v * v).sum();
                let inv = if ss > 0.0 { 1.0 / ss.sqrt() } else { 1.0 };
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = v * inv;
                }
            }
        }
    }

    /// Fits the normaliser on table rows `rows` (training rows).
    pub(crate) fn fit(kind: Normalize, t: &FeatureTable, rows: &[usize]) -> Result<Self, FitError> {
        match kind {
            Normalize::None => Ok(Self::none()),
            Normalize::L2 => Ok(Self::l2()),
            Normalize::Standard => {
                let d = t.dim;
                let Some(&first) = rows.first() else {
                    return Err(FitError::NoTrainingRows);
                };
                // Shifted sums in f64 (shift by the first row) to avoid cancellation.
                let shift: Vec<f64> = t.row(first).iter().map(|&v| f64::from(v)).collect();
                let block = |range: std::ops::Range<usize>| {
                    let mut s1 = vec![0.0f64; d];
                    let mut s2 = vec![0.0f64; d];
                    for &r in &rows[range] {
                        add_moments(t.row(r), &shift, &mut s1, &mut s2);
                    }
                    (s1, s2)
                };
                let (s1, s2) = fold_blocks(rows.len(), 4 * d, block, |(a1, a2), (b1, b2)| {
                    add_into(a1, &b1);
                    add_into(a2, &b2);
                });
                let n = rows.len() as f64;
                let mut mean = Vec::with_capacity(d);
                let mut std = Vec::with_capacity(d);
                for j in 0..d {
                    let m = s1[j] / n;
                    let var = (s2[j] / n - m * m).max(0.0);
                    let mu = shift[j] + m;
                    let sd = var.sqrt();
                    mean.push(mu as f32);
                    // Constant features keep scale 1 (as scikit-learn's StandardScaler).
                    std.push(if sd > 1e-7 * (1.0 + mu.abs()) {
                        sd as f32
                    } else {
                        1.0
                    });
                }
                Self::standard(mean, std)
            }
        }
    }
}

avx512_dispatch! {
    /// Adds `row - shift` and its square, elementwise, into `s1` and `s2`.
    fn add_moments(row: &[f32], shift: &[f64], s1: &mut [f64], s2: &mut [f64]) -> () {
        for (((&v, &sh), a), b) in row.iter().zip(shift).zip(s1.iter_mut()).zip(s2.iter_mut()) {
            let x = f64::from(v) - sh;
            *a += x;
            *b += x * x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_stats_and_apply() {
        let t = FeatureTable {
            paths: vec!["a".into(), "b".into(), "c".into()],
            dim: 2,
            features: vec![1.0, 5.0, 3.0, 5.0, 5.0, 5.0],
            ..Default::default()
        };
        let n = Normalizer::fit(Normalize::Standard, &t, &[0, 1, 2]).unwrap();
        let m = n.mean().unwrap();
        assert!((m[0] - 3.0).abs() < 1e-6 && (m[1] - 5.0).abs() < 1e-6);
        let s = n.std().unwrap();
        assert!((s[0] - (8.0f32 / 3.0).sqrt()).abs() < 1e-5);
        assert_eq!(s[1], 1.0, "constant feature keeps scale 1");
        let mut out = [0.0; 2];
        n.apply(&[5.0, 6.0], &mut out);
        assert!((out[0] - 2.0 / s[0]).abs() < 1e-6 && (out[1] - 1.0).abs() < 1e-6);
        let mut out = [0.0; 2];
        Normalizer::l2().apply(&[3.0, 4.0], &mut out);
        assert_eq!(out, [0.6, 0.8]);
        assert!(Normalizer::standard(vec![0.0], vec![0.0]).is_err());
    }
}
