//! Shared numeric machinery: the design matrix (rows gathered and normalised
//! chunk by chunk, never copied whole), the model trait, GEMM helpers and the
//! parallel passes (full batch, mini batch, prediction).

use std::ops::Range;

use headstart_cache::FeatureTable;
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

use crate::normalize::Normalizer;

/// Rows per gathered chunk.
pub(crate) const CHUNK: usize = 256;

/// A set of table rows with class indices and sample weights. Rows are read
/// from the table and normalised on the fly into small per-chunk buffers.
pub(crate) struct Design<'a> {
    table: &'a FeatureTable,
    norm: &'a Normalizer,
    pub rows: Vec<usize>,
    pub y: Vec<u32>,
    pub w: Vec<f32>,
}

impl<'a> Design<'a> {
    pub fn new(
        table: &'a FeatureTable,
        norm: &'a Normalizer,
        rows: Vec<usize>,
        y: Vec<u32>,
        w: Vec<f32>,
    ) -> Self {
        debug_assert_eq!(rows.len(), y.len());
        debug_assert_eq!(rows.len(), w.len());
        Design {
            table,
            norm,
            rows,
            y,
            w,
        }
    }

    pub fn n(&self) -> usize {
        self.rows.len()
    }

    pub fn dim(&self) -> usize {
        self.table.dim
    }

    /// Sum of sample weights.
    pub fn weight_sum(&self) -> f64 {
        self.w.iter().map(|&w| f64::from(w)).sum()
    }

    /// Normalised rows at positions `pos` into `out` (len(pos) x dim).
    pub fn gather(&self, pos: Range<usize>, out: &mut [f32]) {
        let d = self.dim();
        for (i, p) in pos.enumerate() {
            self.norm
                .apply(self.table.row(self.rows[p]), &mut out[i * d..(i + 1) * d]);
        }
    }

    /// Normalised rows at listed positions into `out`.
    pub fn gather_list(&self, pos: &[u32], out: &mut [f32]) {
        let d = self.dim();
        for (i, &p) in pos.iter().enumerate() {
            self.norm.apply(
                self.table.row(self.rows[p as usize]),
                &mut out[i * d..(i + 1) * d],
            );
        }
    }
}

/// Per-worker buffers, grown on demand and reused.
#[derive(Default)]
pub(crate) struct Scratch {
    pub x: Vec<f32>,
    pub z: Vec<f32>,
    pub h: Vec<f32>,
    pub dh: Vec<f32>,
    pub coef: Vec<f32>,
}

pub(crate) fn ensure(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if v.len() < len {
        v.resize(len, 0.0);
    }
    &mut v[..len]
}

/// A classifier whose parameters live in one flat `f32` vector.
pub(crate) trait Model: Sync {
    fn n_params(&self) -> usize;
    fn n_classes(&self) -> usize;
    /// Parameter ranges under the L2 penalty (weights, not biases).
    fn penalized(&self) -> Vec<Range<usize>>;
    /// Logits of `m` normalised rows `x` (m x dim) into `out` (m x K).
    fn logits(&self, theta: &[f32], x: &[f32], m: usize, out: &mut [f32], s: &mut Scratch);
    /// Returns sum_i coef_i * CE_i and adds sum_i coef_i * grad CE_i to `g`.
    #[allow(clippy::too_many_arguments)]
    fn loss_grad(
        &self,
        theta: &[f32],
        x: &[f32],
        m: usize,
        y: &[u32],
        coef: &[f32],
        g: &mut [f32],
        s: &mut Scratch,
    ) -> f64;
}

/// `c = alpha * a . b + beta * c` on row-major slices; `ta`/`tb` transpose.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
    a: &[f32],
    (ar, ac): (usize, usize),
    ta: bool,
    b: &[f32],
    (br, bc): (usize, usize),
    tb: bool,
    beta: f32,
    c: &mut [f32],
) {
    let a = ArrayView2::from_shape((ar, ac), &a[..ar * ac]).expect("gemm a shape");
    let b = ArrayView2::from_shape((br, bc), &b[..br * bc]).expect("gemm b shape");
    let a = if ta { a.reversed_axes() } else { a };
    let b = if tb { b.reversed_axes() } else { b };
    let (m, n) = (a.nrows(), b.ncols());
    let mut c = ArrayViewMut2::from_shape((m, n), &mut c[..m * n]).expect("gemm c shape");
    general_mat_mul(1.0, &a, &b, beta, &mut c);
}

/// Adds bias `b` (len K) to each row of `z` (m x K).
pub(crate) fn add_bias(z: &mut [f32], b: &[f32]) {
    for row in z.chunks_exact_mut(b.len()) {
        row.iter_mut().zip(b).for_each(|(v, bb)| *v += bb);
    }
}

/// Adds the column sums of `z` (m x K) to `g` (len K).
pub(crate) fn add_colsum(g: &mut [f32], z: &[f32]) {
    for row in z.chunks_exact(g.len()) {
        g.iter_mut().zip(row).for_each(|(a, v)| *a += v);
    }
}

/// Replaces logits `z` (m x K) by `coef_i * (softmax - onehot)`; returns
/// sum_i coef_i * CE_i.
pub(crate) fn softmax_ce_grad(z: &mut [f32], k: usize, y: &[u32], coef: &[f32]) -> f64 {
    let mut loss = 0.0f64;
    for ((row, &yi), &c) in z.chunks_exact_mut(k).zip(y).zip(coef) {
        let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let zy = row[yi as usize] - mx;
        let mut s = 0.0f32;
        for v in row.iter_mut() {
            *v = (*v - mx).exp();
            s += *v;
        }
        let inv = 1.0 / s;
        loss += f64::from(c) * (f64::from(s).ln() - f64::from(zy));
        for v in row.iter_mut() {
            *v *= inv * c;
        }
        row[yi as usize] -= c;
    }
    loss
}

/// In-place softmax of each row of `z` (m x K).
pub(crate) fn softmax_rows(z: &mut [f32], k: usize) {
    for row in z.chunks_exact_mut(k) {
        let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut s = 0.0f32;
        for v in row.iter_mut() {
            *v = (*v - mx).exp();
            s += *v;
        }
        let inv = 1.0 / s;
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

/// Fixed, chunk-aligned blocks for deterministic parallel reductions.
/// `per_block` is the accumulator size, used to cap memory.
pub(crate) fn blocks(n: usize, per_block: usize) -> Vec<Range<usize>> {
    let chunks = n.div_ceil(CHUNK).max(1);
    let by_mem = ((64usize << 20) / (per_block.max(1) * 4)).max(1);
    let nb = (2 * rayon::current_num_threads())
        .min(chunks)
        .min(by_mem)
        .max(1);
    let per = chunks.div_ceil(nb) * CHUNK;
    (0..nb)
        .map(|b| (b * per).min(n)..((b + 1) * per).min(n))
        .filter(|r| !r.is_empty() || n == 0)
        .collect()
}

/// sum of `theta^2` over penalized ranges.
pub(crate) fn penalty_sq(theta: &[f32], pen: &[Range<usize>]) -> f64 {
    pen.iter()
        .flat_map(|r| theta[r.clone()].iter())
        .map(|&v| f64::from(v) * f64::from(v))
        .sum()
}

/// `g += lambda * theta` over penalized ranges.
pub(crate) fn add_penalty_grad(g: &mut [f32], theta: &[f32], pen: &[Range<usize>], lambda: f64) {
    let l = lambda as f32;
    for r in pen {
        g[r.clone()]
            .iter_mut()
            .zip(&theta[r.clone()])
            .for_each(|(a, t)| *a += l * t);
    }
}

pub(crate) fn dot(a: &[f32], b: &[f32]) -> f64 {
    // Four f32 lanes summed into f64 per 256 elements keeps it fast and accurate.
    a.chunks(256)
        .zip(b.chunks(256))
        .map(|(x, y)| f64::from(x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>()))
        .sum()
}

/// Full-batch weighted loss (without penalty) and its gradient, using per-block
/// accumulators for a deterministic reduction.
pub(crate) struct FullPass {
    blocks: Vec<Range<usize>>,
    acc: Vec<Vec<f32>>,
    scratch: Vec<Scratch>,
}

impl FullPass {
    pub fn new(n: usize, n_params: usize) -> Self {
        let blocks = blocks(n, n_params);
        let nb = blocks.len();
        FullPass {
            blocks,
            acc: (0..nb).map(|_| vec![0.0; n_params]).collect(),
            scratch: (0..nb).map(|_| Scratch::default()).collect(),
        }
    }

    /// Returns `scale * sum_i w_i CE_i`, writes its gradient into `g`.
    pub fn run<M: Model>(
        &mut self,
        model: &M,
        theta: &[f32],
        design: &Design,
        scale: f64,
        g: &mut [f32],
    ) -> f64 {
        let d = design.dim();
        let losses: Vec<f64> = self
            .blocks
            .par_iter()
            .zip(self.acc.par_iter_mut())
            .zip(self.scratch.par_iter_mut())
            .map(|((range, acc), s)| {
                acc.iter_mut().for_each(|v| *v = 0.0);
                let mut loss = 0.0;
                let mut start = range.start;
                while start < range.end {
                    let end = (start + CHUNK).min(range.end);
                    let m = end - start;
                    let mut x = std::mem::take(&mut s.x);
                    let mut coef = std::mem::take(&mut s.coef);
                    design.gather(start..end, ensure(&mut x, m * d));
                    let c = ensure(&mut coef, m);
                    for (ci, &w) in c.iter_mut().zip(&design.w[start..end]) {
                        *ci = (f64::from(w) * scale) as f32;
                    }
                    loss += model.loss_grad(theta, &x, m, &design.y[start..end], c, acc, s);
                    s.x = x;
                    s.coef = coef;
                    start = end;
                }
                loss
            })
            .collect();
        g.iter_mut().for_each(|v| *v = 0.0);
        for acc in &self.acc {
            g.iter_mut().zip(acc).for_each(|(a, b)| *a += b);
        }
        losses.iter().sum()
    }
}

/// Mini-batch gradient over fixed parts of the batch (deterministic).
pub(crate) struct BatchPass {
    acc: Vec<Vec<f32>>,
    scratch: Vec<Scratch>,
}

impl BatchPass {
    pub const PARTS: usize = 4;

    pub fn new(n_params: usize) -> Self {
        BatchPass {
            acc: (0..Self::PARTS).map(|_| vec![0.0; n_params]).collect(),
            scratch: (0..Self::PARTS).map(|_| Scratch::default()).collect(),
        }
    }

    /// Returns `sum coef_i CE_i` with `coef_i = w_i * scale` over `pos`; writes the gradient.
    pub fn run<M: Model>(
        &mut self,
        model: &M,
        theta: &[f32],
        design: &Design,
        pos: &[u32],
        scale: f64,
        g: &mut [f32],
    ) -> f64 {
        let d = design.dim();
        let per = pos.len().div_ceil(Self::PARTS).max(1);
        let parts: Vec<&[u32]> = pos.chunks(per).collect();
        let np = parts.len();
        let losses: Vec<f64> = parts
            .par_iter()
            .zip(self.acc[..np].par_iter_mut())
            .zip(self.scratch[..np].par_iter_mut())
            .map(|((part, acc), s)| {
                acc.iter_mut().for_each(|v| *v = 0.0);
                let m = part.len();
                let mut x = std::mem::take(&mut s.x);
                let mut coef = std::mem::take(&mut s.coef);
                design.gather_list(part, ensure(&mut x, m * d));
                let c = ensure(&mut coef, m);
                let mut y = Vec::with_capacity(m);
                for (ci, &p) in c.iter_mut().zip(part.iter()) {
                    *ci = (f64::from(design.w[p as usize]) * scale) as f32;
                    y.push(design.y[p as usize]);
                }
                let loss = model.loss_grad(theta, &x, m, &y, c, acc, s);
                s.x = x;
                s.coef = coef;
                loss
            })
            .collect();
        g.iter_mut().for_each(|v| *v = 0.0);
        for acc in &self.acc[..np] {
            g.iter_mut().zip(acc).for_each(|(a, b)| *a += b);
        }
        losses.iter().sum()
    }
}

/// Mean (unweighted) log-loss and accuracy of the design rows.
pub(crate) fn score<M: Model>(model: &M, theta: &[f32], design: &Design) -> (f64, f64) {
    let k = model.n_classes();
    let d = design.dim();
    let n = design.n();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let parts: Vec<(f64, usize)> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map_init(Scratch::default, |s, ci| {
            let start = ci * CHUNK;
            let m = (n - start).min(CHUNK);
            let mut x = std::mem::take(&mut s.x);
            let mut z = std::mem::take(&mut s.z);
            design.gather(start..start + m, ensure(&mut x, m * d));
            let zz = ensure(&mut z, m * k);
            model.logits(theta, &x, m, zz, s);
            let mut ll = 0.0;
            let mut correct = 0;
            for (row, &y) in zz.chunks_exact(k).zip(&design.y[start..start + m]) {
                let (mut best, mut arg) = (f32::NEG_INFINITY, 0usize);
                for (j, &v) in row.iter().enumerate() {
                    if v > best {
                        best = v;
                        arg = j;
                    }
                }
                let lse = f64::from(best)
                    + row
                        .iter()
                        .map(|&v| f64::from(v - best).exp())
                        .sum::<f64>()
                        .ln();
                ll += (lse - f64::from(row[y as usize])).min(-(1e-15f64).ln());
                correct += usize::from(arg == y as usize);
            }
            s.x = x;
            s.z = z;
            (ll, correct)
        })
        .collect();
    let ll: f64 = parts.iter().map(|p| p.0).sum();
    let c: usize = parts.iter().map(|p| p.1).sum();
    (ll / n as f64, c as f64 / n as f64)
}

/// Raw logits (n x K) of all design rows.
pub(crate) fn logits_all<M: Model>(model: &M, theta: &[f32], design: &Design) -> Vec<f32> {
    let k = model.n_classes();
    let d = design.dim();
    let mut out = vec![0.0f32; design.n() * k];
    out.par_chunks_mut(CHUNK * k)
        .enumerate()
        .for_each_init(Scratch::default, |s, (ci, o)| {
            let m = o.len() / k;
            let mut x = std::mem::take(&mut s.x);
            design.gather(ci * CHUNK..ci * CHUNK + m, ensure(&mut x, m * d));
            model.logits(theta, &x, m, o, s);
            s.x = x;
        });
    out
}
