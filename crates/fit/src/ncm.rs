//! Nearest class mean as a linear head: `logit_c = (x . m_c - |m_c|^2 / 2) / T`
//! (the squared-distance rule up to a per-row constant), with the temperature
//! `T` fitted on validation log-loss (a 1-D convex problem in 1/T).

use crate::engine::{CHUNK, Design, add_into, fold_blocks};

/// Per-class sums of normalised training rows (K x d) and row counts.
pub(crate) fn class_means(design: &Design, k: usize) -> Vec<f32> {
    let d = design.dim();
    let block = |range: std::ops::Range<usize>| {
        let (mut acc, mut cnt, mut x) = (vec![0.0f64; k * d], vec![0usize; k], Vec::new());
        for start in range.clone().step_by(CHUNK) {
            let end = (start + CHUNK).min(range.end);
            let rows = design.rows_at(start..end, &mut x);
            for (i, row) in rows.chunks_exact(d).enumerate() {
                let c = design.y[start + i] as usize;
                cnt[c] += 1;
                acc[c * d..(c + 1) * d]
                    .iter_mut()
                    .zip(row)
                    .for_each(|(s, &v)| *s += f64::from(v));
            }
        }
        (acc, cnt)
    };
    let (sums, counts) = fold_blocks(design.n(), 2 * k * d, block, |(a, c), (b, e)| {
        add_into(a, &b);
        c.iter_mut().zip(&e).for_each(|(x, y)| *x += y);
    });
    let mut means = vec![0.0f32; k * d];
    for c in 0..k {
        let inv = 1.0 / counts[c].max(1) as f64;
        for j in 0..d {
            means[c * d + j] = (sums[c * d + j] * inv) as f32;
        }
    }
    means
}

/// Linear parameters `[W (d x K), b]` of the NCM rule at temperature 1.
pub(crate) fn linear_params(means: &[f32], d: usize, k: usize) -> Vec<f32> {
    let mut theta = vec![0.0f32; d * k + k];
    for c in 0..k {
        let m = &means[c * d..(c + 1) * d];
        for j in 0..d {
            theta[j * k + c] = m[j];
        }
        theta[d * k + c] = -0.5 * m.iter().map(|v| v * v).sum::<f32>();
    }
    theta
}

/// Inverse temperature minimising mean log-loss of `logits` (n x K) for labels `y`.
pub(crate) fn fit_inverse_temperature(logits: &[f32], y: &[u32], k: usize) -> f64 {
    let ll = |s: f64| -> f64 {
        let block = |range: std::ops::Range<usize>| {
            logits[range.start * k..range.end * k]
                .chunks_exact(k)
                .zip(&y[range])
                .map(|(row, &yi)| {
                    let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let lse = row
                        .iter()
                        .map(|&v| (s * f64::from(v - mx)).exp())
                        .sum::<f64>()
                        .ln();
                    lse - s * f64::from(row[yi as usize] - mx)
                })
                .sum::<f64>()
        };
        fold_blocks(y.len(), 1, block, |a, b| *a += b)
    };
    if y.is_empty() {
        return 1.0;
    }
    // Bracket: grow the upper end until the loss rises.
    let mut hi = 1e-6;
    let mut prev = ll(0.0);
    loop {
        let v = ll(hi);
        if v > prev || hi > 1e6 {
            break;
        }
        prev = v;
        hi *= 4.0;
    }
    // Golden-section search on [0, hi] (convex).
    let (mut a, mut b) = (0.0f64, hi);
    let g = 0.5 * (5f64.sqrt() - 1.0);
    let mut x1 = b - g * (b - a);
    let mut x2 = a + g * (b - a);
    let (mut f1, mut f2) = (ll(x1), ll(x2));
    for _ in 0..60 {
        if f1 <= f2 {
            b = x2;
            x2 = x1;
            f2 = f1;
            x1 = b - g * (b - a);
            f1 = ll(x1);
        } else {
            a = x1;
            x1 = x2;
            f1 = f2;
            x2 = a + g * (b - a);
            f2 = ll(x2);
        }
    }
    let s = 0.5 * (a + b);
    if s > 0.0 { s } else { 1e-6 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperature_recovers_scale() {
        // Logits whose ideal scale is known: two classes, margin-based.
        let logits = vec![1.0f32, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0];
        let y = [0u32, 0, 1, 1];
        let s = fit_inverse_temperature(&logits, &y, 2);
        // 3 of 4 correct with margin 1: optimum p = 0.75 -> s = ln 3.
        assert!((s - 3f64.ln()).abs() < 1e-3, "{s}");
    }
}
