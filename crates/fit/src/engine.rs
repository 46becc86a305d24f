//! Shared numeric machinery: the design matrix (rows normalised once into a
//! contiguous copy, or chunk by chunk past a budget), the model trait, GEMM
//! helpers, fixed-block reductions and the parallel passes (full batch, mini
//! batch, prediction).

use std::ops::Range;

use headstart_cache::FeatureTable;
use rayon::prelude::*;

use crate::normalize::Normalizer;

/// Rows per gathered chunk.
pub(crate) const CHUNK: usize = 256;
/// Most rows per GEMM call in the full passes: on 4,096 rows the kernel runs
/// a quarter to a half faster than on 256 (it repacks its operands per call).
pub(crate) const GEMM_ROWS: usize = 16 * CHUNK;

/// Rows per GEMM call for a pass over `n` rows: up to [`GEMM_ROWS`], but
/// at least four calls a thread so that the pool stays balanced.
pub(crate) fn pass_rows(n: usize) -> usize {
    let per_call = n.div_ceil(4 * rayon::current_num_threads().max(1));
    per_call.next_multiple_of(CHUNK).clamp(CHUNK, GEMM_ROWS)
}

/// Largest normalised copy a [`Design`] keeps (bytes); bigger designs are
/// normalised chunk by chunk on every pass instead.
const DENSE_BUDGET: usize = 2 << 30;

/// A set of table rows with class indices and sample weights. The rows are
/// normalised once into one contiguous copy that every pass reads in place
/// (up to [`DENSE_BUDGET`]); beyond it they are read from the table and
/// normalised on the fly into small per-chunk buffers.
pub(crate) struct Design<'a> {
    table: &'a FeatureTable,
    norm: &'a Normalizer,
    pub rows: Vec<usize>,
    pub y: Vec<u32>,
    pub w: Vec<f32>,
    /// The normalised rows, n x dim, when they fit the budget.
    dense: Option<Vec<f32>>,
}

impl<'a> Design<'a> {
    pub fn new(
        table: &'a FeatureTable,
        norm: &'a Normalizer,
        rows: Vec<usize>,
        y: Vec<u32>,
        w: Vec<f32>,
    ) -> Self {
        Self::with_budget(table, norm, rows, y, w, DENSE_BUDGET)
    }

    /// [`Design::new`] with a dense copy of at most `budget` bytes.
    fn with_budget(
        table: &'a FeatureTable,
        norm: &'a Normalizer,
        rows: Vec<usize>,
        y: Vec<u32>,
        w: Vec<f32>,
        budget: usize,
    ) -> Self {
        debug_assert_eq!(rows.len(), y.len());
        debug_assert_eq!(rows.len(), w.len());
        let mut design = Design {
            table,
            norm,
            rows,
            y,
            w,
            dense: None,
        };
        let d = table.dim;
        let len = design.n() * d;
        if d > 0 && len.saturating_mul(std::mem::size_of::<f32>()) <= budget {
            // Built once (on the pool), this saves a normalising copy of
            // every row on every GEMM pass: a quarter of a pass's time.
            let mut dense = vec![0.0f32; len];
            dense
                .par_chunks_mut(CHUNK * d)
                .enumerate()
                .for_each(|(ci, out)| {
                    let start = ci * CHUNK;
                    design.normalize_into(start..start + out.len() / d, out);
                });
            design.dense = Some(dense);
        }
        design
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

    /// The normalised rows at positions `pos` (len(pos) x dim): borrowed
    /// from the dense copy, or normalised into `buf`.
    pub fn rows_at<'s>(&'s self, pos: Range<usize>, buf: &'s mut Vec<f32>) -> &'s [f32] {
        let d = self.dim();
        match &self.dense {
            Some(dense) => &dense[pos.start * d..pos.end * d],
            None => {
                let out = ensure(buf, pos.len() * d);
                self.normalize_into(pos, out);
                out
            }
        }
    }

    /// Normalises the table rows at positions `pos` into `out`.
    fn normalize_into(&self, pos: Range<usize>, out: &mut [f32]) {
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
            let o = &mut out[i * d..(i + 1) * d];
            match &self.dense {
                Some(dense) => o.copy_from_slice(&dense[p as usize * d..(p as usize + 1) * d]),
                None => self.norm.apply(self.table.row(self.rows[p as usize]), o),
            }
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

/// `c = a . b + beta * c` on row-major slices; `ta`/`tb` transpose. One
/// thread: the passes parallelise over row blocks themselves.
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
    // (rows, cols, row stride, column stride) of each operand as used.
    let view = |r: usize, c: usize, t: bool| -> (usize, usize, isize, isize) {
        if t {
            (c, r, 1, c as isize)
        } else {
            (r, c, c as isize, 1)
        }
    };
    let (m, k, a_rs, a_cs) = view(ar, ac, ta);
    let (kb, n, b_rs, b_cs) = view(br, bc, tb);
    assert!(
        k == kb && a.len() >= ar * ac && b.len() >= br * bc && c.len() >= m * n,
        "gemm shapes: {ar}x{ac} (t {ta}) . {br}x{bc} (t {tb}) into {} values",
        c.len()
    );
    if m == 0 || n == 0 {
        return;
    }
    // `a` transposed is column-major, as the kernel reads its left operand;
    // otherwise `c^T = b^T a^T`, written through `c`'s transposed strides: a
    // row-major `a` on the right is not repacked row by row, which makes the
    // passes' `X W` a third faster, with the same sums in the same order.
    let (rows, cols, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs) = if ta {
        (m, n, 1, n as isize, a, a_cs, a_rs, b, b_cs, b_rs)
    } else {
        (n, m, n as isize, 1, b, b_rs, b_cs, a, a_rs, a_cs)
    };
    // SAFETY: the assertion above keeps every index the strides reach inside
    // the slices (a: ar x ac, b: br x bc, c: m x n, all row-major), and `c`
    // is borrowed mutably, so it aliases neither input.
    unsafe {
        gemm_f32::gemm::f32::get_gemm_fn()(
            rows,
            cols,
            k,
            c.as_mut_ptr(),
            dst_cs,
            dst_rs,
            beta != 0.0,
            lhs.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.as_ptr(),
            rhs_cs,
            rhs_rs,
            beta,
            1.0,
            false,
            false,
            false,
            gemm_common::Parallelism::None,
        );
    }
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

/// `e^x` for the softmax's `x <= 0` (logits minus the row maximum), within
/// 2 ulp of `f32::exp` and 0 below -87: Cephes' `expf`, without branches so
/// that the loops over a row vectorise (libm's `expf` is a call per value).
/// Training only; the head's predictions keep `f32::exp`.
#[inline(always)]
pub(crate) fn exp_le0(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let xc = x.clamp(-87.0, 0.0);
    let n = (xc * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = (p * r * r + r + 1.0) * f32::from_bits(((n as i32 + 127) as u32) << 23);
    if x < -87.0 {
        0.0
    } else if x.is_nan() {
        x
    } else {
        e
    }
}

/// Whether this CPU runs the AVX-512 builds of `avx512_dispatch!` functions.
pub(crate) fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512bw")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Defines the function it is given so that it runs compiled for AVX-512
/// when the CPU has it, and as built otherwise. The softmax loops over rows
/// of ~100 classes run about twice as fast on AVX-512 as on the baseline's
/// SSE2, with the same bits: their sums have a fixed order ([`LANES`]
/// partial sums) and Rust neither reassociates nor contracts floating-point
/// operations.
macro_rules! avx512_dispatch {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) -> $ret {
            #[inline(always)]
            fn generic($($arg: $ty),*) -> $ret $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw")]
                fn wide($($arg: $ty),*) -> $ret {
                    generic($($arg),*)
                }
                if $crate::engine::has_avx512() {
                    // SAFETY: the CPU has every feature `wide` is built for.
                    return unsafe { wide($($arg),*) };
                }
            }
            generic($($arg),*)
        }
    };
}
pub(crate) use avx512_dispatch;

/// Lanes of the reductions below: one AVX-512 register of f32.
const LANES: usize = 16;

/// Sum of `x` in [`LANES`] interleaved partial sums (vectorised, unlike a
/// sequential sum). Every softmax sum of the training passes goes through
/// it, so the line search's `phi(0)` equals the gradient pass's objective.
#[inline(always)]
pub(crate) fn sum_f32(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        acc.iter_mut().zip(c).for_each(|(a, v)| *a += v);
    }
    acc.iter_mut().zip(rest).for_each(|(a, v)| *a += v);
    acc.iter().sum()
}

/// `sum x_i y_i` as [`sum_f32`] adds.
#[inline(always)]
pub(crate) fn dot_f32(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (cx, cy) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    let (rx, ry) = (cx.remainder(), cy.remainder());
    for (a, b) in cx.zip(cy) {
        acc.iter_mut()
            .zip(a.iter().zip(b))
            .for_each(|(s, (p, q))| *s += p * q);
    }
    acc.iter_mut()
        .zip(rx.iter().zip(ry))
        .for_each(|(s, (p, q))| *s += p * q);
    acc.iter().sum()
}

/// Largest value of `x` (NaN if any is NaN, so divergence stays visible;
/// `-inf` when empty).
#[inline(always)]
pub(crate) fn max_f32(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        acc.iter_mut()
            .zip(c)
            .for_each(|(a, &v)| *a = if v > *a || v.is_nan() { v } else { *a });
    }
    acc.iter_mut()
        .zip(rest)
        .for_each(|(a, &v)| *a = if v > *a || v.is_nan() { v } else { *a });
    acc.iter().fold(
        f32::NEG_INFINITY,
        |m, &v| if v > m || v.is_nan() { v } else { m },
    )
}

avx512_dispatch! {
    /// Replaces logits `z` (m x K) by `coef_i * (softmax - onehot)`; returns
    /// sum_i coef_i * CE_i.
    pub(crate) fn softmax_ce_grad(z: &mut [f32], k: usize, y: &[u32], coef: &[f32]) -> f64 {
        let mut loss = 0.0f64;
        for ((row, &yi), &c) in z.chunks_exact_mut(k).zip(y).zip(coef) {
            let mx = max_f32(row);
            let zy = row[yi as usize] - mx;
            row.iter_mut().for_each(|v| *v = exp_le0(*v - mx));
            let s = sum_f32(row);
            let inv = 1.0 / s;
            loss += f64::from(c) * (f64::from(s).ln() - f64::from(zy));
            for v in row.iter_mut() {
                *v *= inv * c;
            }
            row[yi as usize] -= c;
        }
        loss
    }
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

/// Runs `block` on the fixed ranges of `0..n` that [`blocks`] gives (each
/// holding an accumulator of `acc_len` f32s) on the pool, then merges the
/// results in range order: the same input always gives the same bits.
/// (rayon's `fold`, `reduce` and `sum` combine partial results where work
/// stealing happened to split the range, so their float sums vary.)
pub(crate) fn fold_blocks<A: Send>(
    n: usize,
    acc_len: usize,
    block: impl Fn(Range<usize>) -> A + Sync + Send,
    mut merge: impl FnMut(&mut A, A),
) -> A {
    let parts: Vec<A> = blocks(n, acc_len).into_par_iter().map(&block).collect();
    let mut parts = parts.into_iter();
    let mut acc = parts.next().unwrap_or_else(|| block(0..0));
    parts.for_each(|p| merge(&mut acc, p));
    acc
}

/// Adds `b` into `a` elementwise.
pub(crate) fn add_into(a: &mut [f64], b: &[f64]) {
    a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
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

avx512_dispatch! {
    /// `sum a_i b_i` in f64.
    pub(crate) fn dot(a: &[f32], b: &[f32]) -> f64 {
        // [`LANES`] f32 partial sums per 256 elements, summed into f64: fast
        // (it vectorises, where one running f32 sum waits on each add) and
        // accurate.
        a.chunks(256)
            .zip(b.chunks(256))
            .map(|(x, y)| f64::from(dot_f32(x, y)))
            .sum()
    }
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
                    let rows = design.rows_at(start..end, &mut x);
                    let c = ensure(&mut coef, m);
                    for (ci, &w) in c.iter_mut().zip(&design.w[start..end]) {
                        *ci = (f64::from(w) * scale) as f32;
                    }
                    loss += model.loss_grad(theta, rows, m, &design.y[start..end], c, acc, s);
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
    let n = design.n();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let span = pass_rows(n);
    let parts: Vec<(f64, usize)> = (0..n.div_ceil(span))
        .into_par_iter()
        .map_init(Scratch::default, |s, ci| {
            let start = ci * span;
            let m = (n - start).min(span);
            let mut x = std::mem::take(&mut s.x);
            let mut z = std::mem::take(&mut s.z);
            let zz = ensure(&mut z, m * k);
            model.logits(theta, design.rows_at(start..start + m, &mut x), m, zz, s);
            let mut ll = 0.0;
            let mut correct = 0;
            let mut e = vec![0.0f32; k];
            for (row, &y) in zz.chunks_exact(k).zip(&design.y[start..start + m]) {
                let (mut best, mut arg) = (f32::NEG_INFINITY, 0usize);
                for (j, &v) in row.iter().enumerate() {
                    if v > best {
                        best = v;
                        arg = j;
                    }
                }
                e.iter_mut()
                    .zip(row)
                    .for_each(|(e, &v)| *e = exp_le0(v - best));
                let lse = f64::from(best) + f64::from(sum_f32(&e)).ln();
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
    let mut out = vec![0.0f32; design.n() * k];
    out.par_chunks_mut(CHUNK * k)
        .enumerate()
        .for_each_init(Scratch::default, |s, (ci, o)| {
            let m = o.len() / k;
            let mut x = std::mem::take(&mut s.x);
            model.logits(
                theta,
                design.rows_at(ci * CHUNK..ci * CHUNK + m, &mut x),
                m,
                o,
                s,
            );
            s.x = x;
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_le0_is_within_two_ulp_of_exp() {
        let mut worst = 0.0f64;
        for i in 0..=1_000_000 {
            let x = -87.0 * i as f32 / 1_000_000.0;
            let (a, b) = (exp_le0(x), x.exp());
            worst = worst.max((f64::from(a) - f64::from(b)).abs() / f64::from(b));
        }
        assert!(worst < 2.5e-7, "relative error {worst}");
        assert_eq!(exp_le0(0.0), 1.0);
        assert_eq!(exp_le0(-100.0), 0.0);
        assert_eq!(exp_le0(f32::NEG_INFINITY), 0.0);
        assert!(
            exp_le0(f32::NAN).is_nan(),
            "a diverged fit must stay visible"
        );
    }

    /// The dense copy is an optimisation only: every pass over a design
    /// gives the same bits whether its rows are copied once or normalised
    /// chunk by chunk (designs over the budget).
    #[test]
    fn dense_and_streamed_designs_give_the_same_passes() {
        use crate::linear::Linear;
        let (n, d, k) = (3 * CHUNK + 17, 24, 5);
        let mut rng = crate::rng::Rng::new(7);
        let t = FeatureTable {
            dim: d,
            features: (0..(n + 40) * d)
                .map(|_| rng.normal() as f32 * 2.0 + 1.0)
                .collect(),
            ..Default::default()
        };
        let rows: Vec<usize> = (0..n + 40).filter(|r| r % 7 != 3).collect();
        let norm = Normalizer::fit(crate::Normalize::Standard, &t, &rows).unwrap();
        let y: Vec<u32> = rows.iter().map(|r| (r % k) as u32).collect();
        let w = vec![1.0f32; rows.len()];
        let dense = Design::new(&t, &norm, rows.clone(), y.clone(), w.clone());
        let streamed = Design::with_budget(&t, &norm, rows, y, w, 0);
        assert!(dense.dense.is_some() && streamed.dense.is_none());
        let lin = Linear { d, k };
        let theta: Vec<f32> = (0..lin.w_len() + k)
            .map(|_| rng.normal() as f32 * 0.1)
            .collect();
        assert_eq!(score(&lin, &theta, &dense), score(&lin, &theta, &streamed));
        assert_eq!(
            logits_all(&lin, &theta, &dense),
            logits_all(&lin, &theta, &streamed)
        );
        let pass = |design: &Design| {
            let mut g = vec![0.0f32; theta.len()];
            let f = FullPass::new(design.n(), theta.len()).run(&lin, &theta, design, 0.5, &mut g);
            (f, g)
        };
        assert_eq!(pass(&dense), pass(&streamed));
        let pos: Vec<u32> = vec![5, 0, 300, 77];
        let (mut a, mut b) = (vec![0.0; 4 * d], vec![0.0; 4 * d]);
        dense.gather_list(&pos, &mut a);
        streamed.gather_list(&pos, &mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn gemm_matches_the_definition_in_every_layout() {
        let (m, k, n) = (37, 53, 19);
        let val = |i: usize| ((i * 7919) % 23) as f32 - 11.0;
        let a: Vec<f32> = (0..m * k).map(val).collect();
        let b: Vec<f32> = (0..k * n).map(|i| val(i + 5)).collect();
        let at = |i: usize, j: usize| a[i * k + j];
        let bt = |i: usize, j: usize| b[i * n + j];
        let want: Vec<f32> = (0..m * n)
            .map(|ij| (0..k).map(|l| at(ij / n, l) * bt(l, ij % n)).sum())
            .collect();
        // The same products from transposed copies.
        let tr = |x: &[f32], r: usize, c: usize| -> Vec<f32> {
            (0..r * c).map(|i| x[(i % r) * c + i / r]).collect()
        };
        let (a_t, b_t) = (tr(&a, m, k), tr(&b, k, n));
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let (aa, ash) = if ta { (&a_t, (k, m)) } else { (&a, (m, k)) };
            let (bb, bsh) = if tb { (&b_t, (n, k)) } else { (&b, (k, n)) };
            let mut c = vec![f32::NAN; m * n];
            gemm(aa, ash, ta, bb, bsh, tb, 0.0, &mut c);
            assert_eq!(c, want, "ta {ta} tb {tb}");
            gemm(aa, ash, ta, bb, bsh, tb, 1.0, &mut c);
            let twice: Vec<f32> = want.iter().map(|v| 2.0 * v).collect();
            assert_eq!(c, twice, "accumulated, ta {ta} tb {tb}");
        }
    }

    #[test]
    fn lane_reductions_cover_every_value() {
        for n in [0usize, 1, 15, 16, 17, 100] {
            let x: Vec<f32> = (0..n).map(|i| i as f32 - 7.0).collect();
            let y: Vec<f32> = (0..n).map(|i| (i % 3) as f32).collect();
            assert_eq!(sum_f32(&x), x.iter().sum::<f32>(), "n {n}");
            let d: f32 = x.iter().zip(&y).map(|(a, b)| a * b).sum();
            assert_eq!(dot_f32(&x, &y), d, "n {n}");
            let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(max_f32(&x), m, "n {n}");
        }
        let mut x = vec![1.0f32; 40];
        x[33] = f32::NAN;
        assert!(
            max_f32(&x).is_nan(),
            "a NaN logit must not be hidden by the max"
        );
    }
}
