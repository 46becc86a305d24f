//! A low-rank preconditioner for softmax L-BFGS.
//!
//! The Hessian of the softmax loss in `W` (d x K) is roughly
//! `E[x x^T] (x) S`, so its conditioning is that of the features' second
//! moment. CNN features (and the benchmark's synthetic ones) share a few
//! dominant directions even after standardisation; along them plain L-BFGS
//! creeps for many iterations. [`Precond`] estimates the top eigenpairs of
//! `E[x x^T]` on a row sample (randomised subspace iteration: a few passes of
//! two thin GEMMs) and applies `M = I + U diag(base / lambda - 1) U^T`, the
//! inverse second moment on the top directions and the identity elsewhere.

use crate::engine::{CHUNK, Design, dot, ensure, fold_blocks, gemm};
use crate::rng::Rng;

/// Rows sampled for the estimate.
const SAMPLE_ROWS: usize = 4096;
/// Extra subspace columns beyond the rank kept (oversampling).
const OVERSAMPLE: usize = 16;
/// Subspace (power) iterations.
const POWER_ITERS: usize = 2;
/// Floor of `base / lambda_max`: the smallest eigenvalue `M` takes. When the
/// sampled rows have (numerically) no variance outside the kept directions,
/// `base` is 0 and without the floor `M` would be singular on the only
/// directions the data vary along.
const MIN_RATIO: f64 = 1e-4;
/// A subspace vector left with less than this fraction of its norm after
/// orthogonalisation against the earlier ones is numerically dependent.
const DEPENDENT: f64 = 1e-6;

/// `M = I + U diag(shrink) U^T` on the weight rows (feature space).
#[derive(Debug, Clone)]
pub(crate) struct Precond {
    d: usize,
    /// Orthonormal directions, r x d row-major.
    u: Vec<f32>,
    /// `base / lambda_i - 1` per direction (in (-1, 0]).
    shrink: Vec<f32>,
}

impl Precond {
    /// No preconditioning.
    pub fn identity(d: usize) -> Self {
        Precond {
            d,
            u: Vec::new(),
            shrink: Vec::new(),
        }
    }

    /// Number of directions kept.
    pub fn rank(&self) -> usize {
        self.shrink.len()
    }

    /// Estimates the top `rank` (at most a quarter of the dimension)
    /// directions of the second moment of the normalised design rows (a
    /// strided sample of at most 4,096 rows).
    pub fn estimate(design: &Design, rank: usize, seed: u64) -> Self {
        let (n, d) = (design.n(), design.dim());
        let rank = rank.min(d / 4);
        let l = (rank + OVERSAMPLE).min(d);
        let m = n.min(SAMPLE_ROWS);
        if rank == 0 || m < 2 * l {
            return Self::identity(d);
        }
        let pos: Vec<u32> = (0..m).map(|i| (i * n / m) as u32).collect();
        let mut rng = Rng::new(seed ^ 0x9c0d);
        let mut q: Vec<f32> = (0..l * d).map(|_| rng.normal() as f32).collect();
        orthonormalize(&mut q, d);
        let mut trace = 0.0;
        for _ in 0..POWER_ITERS {
            let (z, t) = second_moment_times(design, &pos, &q, q.len() / d);
            trace = t;
            q = z;
            // Drops the columns beyond the sample's numerical rank.
            orthonormalize(&mut q, d);
        }
        let l = q.len() / d;
        if l == 0 {
            return Self::identity(d);
        }
        // Rayleigh-Ritz: B = Q C Q^T (l x l), eigenpairs -> Ritz vectors.
        let (cq, _) = second_moment_times(design, &pos, &q, l);
        let mut b = vec![0.0f64; l * l];
        for i in 0..l {
            for j in 0..l {
                b[i * l + j] = dot(&q[i * d..(i + 1) * d], &cq[j * d..(j + 1) * d]);
            }
        }
        let (vals, vecs) = jacobi_eigen(&mut b, l);
        let mut order: Vec<usize> = (0..l).collect();
        order.sort_by(|&a, &b| vals[b].total_cmp(&vals[a]));
        let r = rank.min(l);
        let top: f64 = order[..r].iter().map(|&i| vals[i].max(0.0)).sum();
        // The mean eigenvalue of the rest of the spectrum, floored so that
        // `M` stays positive definite however degenerate the sample.
        let base = ((trace - top) / (d - r) as f64)
            .max(MIN_RATIO * vals[order[0]])
            .max(f64::MIN_POSITIVE);
        let mut u = vec![0.0f32; r * d];
        let mut shrink = Vec::with_capacity(r);
        for (row, &i) in order[..r].iter().enumerate() {
            let lam = vals[i];
            if lam.is_nan() || lam <= base {
                break;
            }
            shrink.push((base / lam - 1.0) as f32);
            let out = &mut u[row * d..(row + 1) * d];
            for (jj, qrow) in q.chunks_exact(d).enumerate() {
                let c = vecs[jj * l + i] as f32;
                out.iter_mut().zip(qrow).for_each(|(o, v)| *o += c * v);
            }
        }
        u.truncate(shrink.len() * d);
        Precond { d, u, shrink }
    }

    /// `W <- M W` for the weight block (d x k, row-major) of `theta`; the
    /// `k` biases after it are left alone.
    pub fn apply(&self, theta: &mut [f32], k: usize) {
        let r = self.rank();
        if r == 0 {
            return;
        }
        let w = &mut theta[..self.d * k];
        let mut t = vec![0.0f32; r * k];
        gemm(
            &self.u,
            (r, self.d),
            false,
            w,
            (self.d, k),
            false,
            0.0,
            &mut t,
        );
        for (row, &s) in t.chunks_exact_mut(k).zip(&self.shrink) {
            row.iter_mut().for_each(|v| *v *= s);
        }
        gemm(&self.u, (r, self.d), true, &t, (r, k), false, 1.0, w);
    }
}

/// `(C Q^T)^T` for `C` the second moment of the sampled rows and `Q` (l x d,
/// row-major); also returns `trace(C)`.
fn second_moment_times(design: &Design, pos: &[u32], q: &[f32], l: usize) -> (Vec<f32>, f64) {
    let d = design.dim();
    let m = pos.len();
    let block = |range: std::ops::Range<usize>| {
        let (mut acc, mut tr) = (vec![0.0f32; d * l], 0.0f64);
        let (mut x, mut abuf) = (Vec::new(), Vec::new());
        for part in pos[range].chunks(CHUNK) {
            let rows = part.len();
            let xs = ensure(&mut x, rows * d);
            design.gather_list(part, xs);
            tr += dot(xs, xs);
            let a = ensure(&mut abuf, rows * l);
            // A = X Q^T (rows x l); acc += X^T A (d x l).
            gemm(xs, (rows, d), false, q, (l, d), true, 0.0, a);
            gemm(xs, (rows, d), true, a, (rows, l), false, 1.0, &mut acc);
        }
        (acc, tr)
    };
    let (acc, tr) = fold_blocks(m, d * l, block, |(a, ta), (b, tb)| {
        a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
        *ta += tb;
    });
    // acc is d x l; return its transpose (l x d), divided by m.
    let inv = 1.0 / m as f32;
    let mut out = vec![0.0f32; l * d];
    for j in 0..d {
        for i in 0..l {
            out[i * d + j] = acc[j * l + i] * inv;
        }
    }
    (out, tr / m as f64)
}

/// Orthonormalises the rows of `q` (each of length `d`) in place: modified
/// Gram-Schmidt with a second pass ("twice is enough"), dropping rows that
/// are numerically dependent on the earlier ones (the rest move up and `q` is
/// truncated). A single pass loses orthogonality when the rows are nearly
/// dependent, as the power-iterated block is when the second moment's rank is
/// below the block size (collinear or constant features, or `d` close to the
/// block size): normalising the leftover roundoff gives "unit" rows that
/// overlap the others, the Ritz vectors built from them are longer than 1 and
/// `M = I + U diag(shrink) U^T` has negative eigenvalues along them.
fn orthonormalize(q: &mut Vec<f32>, d: usize) {
    let l = q.len() / d;
    let mut kept = 0;
    for i in 0..l {
        if i != kept {
            q.copy_within(i * d..(i + 1) * d, kept * d);
        }
        let (done, rest) = q.split_at_mut(kept * d);
        let qi = &mut rest[..d];
        let norm0 = dot(qi, qi).sqrt();
        for _pass in 0..2 {
            for qj in done.chunks_exact(d) {
                let c = dot(qi, qj) as f32;
                qi.iter_mut().zip(qj).for_each(|(a, b)| *a -= c * b);
            }
        }
        let norm = dot(qi, qi).sqrt();
        if norm.is_finite() && norm > 0.0 && norm > DEPENDENT * norm0 {
            let inv = (1.0 / norm) as f32;
            qi.iter_mut().for_each(|v| *v *= inv);
            kept += 1;
        }
    }
    q.truncate(kept * d);
}

/// Eigen-decomposition of the symmetric `n x n` matrix `a` (destroyed) by
/// cyclic Jacobi rotations: eigenvalues, and eigenvectors as columns.
fn jacobi_eigen(a: &mut [f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0f64; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    for _sweep in 0..50 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j] * a[i * n + j])
            .sum();
        let diag: f64 = (0..n).map(|i| a[i * n + i] * a[i * n + i]).sum();
        if off <= 1e-24 * diag.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let akp = a[k * n + p];
                    let akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let apk = a[p * n + k];
                    let aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::Normalizer;
    use headstart_cache::FeatureTable;

    #[test]
    fn finds_a_dominant_shared_direction_and_shrinks_it() {
        // Rows = unit noise + 6 * z * e with e a fixed unit vector: the
        // second moment is I + 36 e e^T, so the top direction is e with
        // eigenvalue ~37 and the rest ~1.
        let (n, d) = (2000, 32);
        let mut rng = Rng::new(7);
        let e: Vec<f32> = {
            let v: Vec<f32> = (0..d).map(|_| rng.normal() as f32).collect();
            let norm = dot(&v, &v).sqrt() as f32;
            v.iter().map(|x| x / norm).collect()
        };
        let mut t = FeatureTable {
            dim: d,
            ..Default::default()
        };
        for _ in 0..n {
            let z = 6.0 * rng.normal() as f32;
            t.features
                .extend(e.iter().map(|&ej| z * ej + rng.normal() as f32));
        }
        let norm = Normalizer::none();
        let design = Design::new(&t, &norm, (0..n).collect(), vec![0; n], vec![1.0; n]);
        let pc = Precond::estimate(&design, 4, 0);
        assert!(pc.rank() >= 1);
        let cos = dot(&pc.u[..d], &e).abs();
        assert!(cos > 0.99, "top direction off by cos {cos}");
        // M e ~ e / 37: shrinks the dominant direction, leaves others alone.
        let mut w = e.clone();
        pc.apply(&mut w, 1);
        let along = dot(&w, &e);
        assert!((0.015..0.04).contains(&along), "M e . e = {along}");
        let mut other: Vec<f32> = (0..d).map(|_| rng.normal() as f32).collect();
        let c = dot(&other, &e) as f32;
        other.iter_mut().zip(&e).for_each(|(o, ej)| *o -= c * ej);
        let before = dot(&other, &other);
        pc.apply(&mut other, 1);
        let after = dot(&other, &other);
        assert!(after > 0.5 * before, "{after} vs {before}");
    }

    /// `M` as a dense `d x d` matrix.
    fn dense(pc: &Precond, d: usize) -> Vec<f64> {
        let mut m = vec![0.0f64; d * d];
        for j in 0..d {
            let mut e = vec![0.0f32; d];
            e[j] = 1.0;
            pc.apply(&mut e, 1);
            for i in 0..d {
                m[i * d + j] = f64::from(e[i]);
            }
        }
        m
    }

    #[test]
    fn rank_deficient_samples_keep_the_preconditioner_positive_definite() {
        // Rows on an `r`-dimensional subspace of R^d: the power-iterated
        // block (of up to rank + 16 columns) has rank `r` at most. The
        // reviewer's data (d = 4, r = 2 once standardised) made `M` indefinite.
        for (d, r, n) in [
            (4, 2, 24),
            (4, 1, 24),
            (8, 2, 40),
            (64, 3, 400),
            (64, 1, 400),
        ] {
            let mut rng = Rng::new((d * 10 + r) as u64);
            let basis: Vec<f64> = (0..r * d).map(|_| rng.normal()).collect();
            let mut t = FeatureTable {
                dim: d,
                ..Default::default()
            };
            for _ in 0..n {
                let z: Vec<f64> = (0..r).map(|_| 3.0 * rng.normal()).collect();
                t.features.extend(
                    (0..d).map(|j| (0..r).map(|k| z[k] * basis[k * d + j]).sum::<f64>() as f32),
                );
            }
            let norm = Normalizer::none();
            let design = Design::new(&t, &norm, (0..n).collect(), vec![0; n], vec![1.0; n]);
            let pc = Precond::estimate(&design, 32, 0);
            assert!(pc.rank() >= 1, "d {d}, r {r}");
            for i in 0..pc.rank() {
                for j in 0..pc.rank() {
                    let uu = dot(&pc.u[i * d..(i + 1) * d], &pc.u[j * d..(j + 1) * d]);
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!((uu - want).abs() < 1e-4, "d {d}, r {r}: u{i}.u{j} = {uu}");
                }
            }
            let mut m = dense(&pc, d);
            let (vals, _) = jacobi_eigen(&mut m, d);
            let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert!(
                lo >= 0.5 * MIN_RATIO && hi <= 1.0 + 1e-4,
                "d {d}, r {r}: eigenvalues of M in [{lo}, {hi}]"
            );
        }
    }

    #[test]
    fn tiny_dimensions_get_the_identity() {
        let t = FeatureTable {
            dim: 3,
            features: vec![1.0; 300],
            ..Default::default()
        };
        let norm = Normalizer::none();
        let design = Design::new(&t, &norm, (0..100).collect(), vec![0; 100], vec![1.0; 100]);
        assert_eq!(Precond::estimate(&design, 32, 0).rank(), 0);
    }

    #[test]
    fn jacobi_recovers_known_eigenvalues() {
        // [[2,1],[1,2]] has eigenvalues 1 and 3.
        let mut a = vec![2.0, 1.0, 1.0, 2.0];
        let (mut vals, v) = jacobi_eigen(&mut a, 2);
        vals.sort_by(f64::total_cmp);
        assert!((vals[0] - 1.0).abs() < 1e-12 && (vals[1] - 3.0).abs() < 1e-12);
        // Columns are orthonormal.
        let c0 = [v[0], v[2]];
        let c1 = [v[1], v[3]];
        assert!((c0[0] * c1[0] + c0[1] * c1[1]).abs() < 1e-12);
    }

    #[test]
    fn orthonormalize_drops_dependent_rows() {
        let eps = 1e-9;
        let mut q = vec![
            1.0,
            1.0,
            0.0,
            2.0,
            2.0 + eps,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            1.0,
            1.0,
        ];
        orthonormalize(&mut q, 3);
        assert_eq!(q.len(), 6, "{q:?}");
        assert!((dot(&q[..3], &q[..3]) - 1.0).abs() < 1e-6);
        assert!((dot(&q[3..], &q[3..]) - 1.0).abs() < 1e-6);
        assert!(dot(&q[..3], &q[3..]).abs() < 1e-6);
    }

    #[test]
    fn orthonormalize_gives_orthonormal_rows() {
        let mut q = vec![1.0, 1.0, 0.0, 1.0, 0.0, 1.0];
        orthonormalize(&mut q, 3);
        assert!((dot(&q[..3], &q[..3]) - 1.0).abs() < 1e-6);
        assert!((dot(&q[3..], &q[3..]) - 1.0).abs() < 1e-6);
        assert!(dot(&q[..3], &q[3..]).abs() < 1e-6);
    }
}
