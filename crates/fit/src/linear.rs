//! Softmax regression: the linear model and its full-batch L-BFGS objective.
//!
//! The objective keeps the logits `Z = X W + b` of the current point and, for
//! each search direction `p`, `X p`. Every line-search trial is then O(n K)
//! with no pass over the features, so each L-BFGS iteration costs exactly
//! two GEMM passes (`X p` and the gradient `X^T G`) however many trials the
//! strong-Wolfe search needs.

use std::ops::Range;

use rayon::prelude::*;

use crate::engine::{
    CHUNK, Design, GEMM_ROWS, Model, Scratch, add_bias, add_colsum, add_into, add_penalty_grad,
    avx512_dispatch, blocks, dot, dot_f32, ensure, exp_le0, fold_blocks, gemm, max_f32, pass_rows,
    penalty_sq, softmax_ce_grad, sum_f32,
};
use crate::lbfgs::LineObjective;
use crate::precond::Precond;

/// Multinomial logistic regression: parameters `[W (d x K) row-major, b (K)]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Linear {
    pub d: usize,
    pub k: usize,
}

impl Linear {
    pub fn w_len(&self) -> usize {
        self.d * self.k
    }

    /// Zero weights, biases at the log class priors.
    pub fn init(&self, priors: &[f64]) -> Vec<f32> {
        let mut theta = vec![0.0f32; self.n_params()];
        for (b, p) in theta[self.w_len()..].iter_mut().zip(priors) {
            *b = p.max(1e-12).ln() as f32;
        }
        theta
    }
}

impl Model for Linear {
    fn n_params(&self) -> usize {
        self.d * self.k + self.k
    }

    fn n_classes(&self) -> usize {
        self.k
    }

    #[allow(clippy::single_range_in_vec_init)]
    fn penalized(&self) -> Vec<Range<usize>> {
        vec![0..self.w_len()]
    }

    fn logits(&self, theta: &[f32], x: &[f32], m: usize, out: &mut [f32], _s: &mut Scratch) {
        let (d, k) = (self.d, self.k);
        gemm(x, (m, d), false, &theta[..d * k], (d, k), false, 0.0, out);
        add_bias(out, &theta[d * k..]);
    }

    fn loss_grad(
        &self,
        theta: &[f32],
        x: &[f32],
        m: usize,
        y: &[u32],
        coef: &[f32],
        g: &mut [f32],
        s: &mut Scratch,
    ) -> f64 {
        let (d, k) = (self.d, self.k);
        let mut z = std::mem::take(&mut s.z);
        let zz = ensure(&mut z, m * k);
        self.logits(theta, x, m, zz, s);
        let loss = softmax_ce_grad(zz, k, y, coef);
        let (gw, gb) = g.split_at_mut(d * k);
        gemm(x, (m, d), true, zz, (m, k), false, 1.0, gw);
        add_colsum(gb, zz);
        s.z = z;
        loss
    }
}

/// Weighted class priors (sum to 1).
pub(crate) fn priors(design: &Design, k: usize) -> Vec<f64> {
    let mut p = vec![0.0f64; k];
    for (&y, &w) in design.y.iter().zip(&design.w) {
        p[y as usize] += f64::from(w);
    }
    let s: f64 = p.iter().sum();
    p.iter_mut().for_each(|v| *v /= s);
    p
}

/// Weighted per-class sums of the normalised rows (K x d, row-major).
pub(crate) fn class_sums(design: &Design, k: usize) -> Vec<f64> {
    let d = design.dim();
    let block = |range: Range<usize>| {
        let (mut acc, mut x) = (vec![0.0f64; k * d], Vec::new());
        for start in range.clone().step_by(CHUNK) {
            let end = (start + CHUNK).min(range.end);
            let rows = design.rows_at(start..end, &mut x);
            for (i, row) in rows.chunks_exact(d).enumerate() {
                let c = design.y[start + i] as usize;
                let w = f64::from(design.w[start + i]);
                acc[c * d..(c + 1) * d]
                    .iter_mut()
                    .zip(row)
                    .for_each(|(s, &v)| *s += w * f64::from(v));
            }
        }
        acc
    };
    fold_blocks(design.n(), 2 * k * d, block, |a, b| add_into(a, &b))
}

/// Norm of the gradient at the null model (W = 0, b = log priors), from
/// per-class feature sums: a scale-free reference for the stopping rule.
pub(crate) fn null_grad_norm(design: &Design, k: usize, scale: f64, sums: &[f64]) -> f64 {
    let d = design.dim();
    let p = priors(design, k);
    let mut total = vec![0.0f64; d];
    for c in 0..k {
        total
            .iter_mut()
            .zip(&sums[c * d..(c + 1) * d])
            .for_each(|(t, s)| *t += s);
    }
    let mut sq = 0.0;
    for c in 0..k {
        for j in 0..d {
            let g = scale * (p[c] * total[j] - sums[c * d + j]);
            sq += g * g;
        }
    }
    sq.sqrt()
}

/// The discriminant direction from the null model: `W[:, c] = M m_c`,
/// `b_c = -m_c^T M m_c / 2` with `m_c` the class mean minus the overall mean
/// and `M` the preconditioner (an inverse second moment on its top
/// directions). Along it the logits are those of a shared-covariance Gaussian
/// model (LDA); scaled by the best step it starts L-BFGS far closer to the
/// optimum than the null model, from which the first iterations creep.
pub(crate) fn class_mean_direction(
    lin: Linear,
    design: &Design,
    sums: &[f64],
    m: &Precond,
) -> Vec<f32> {
    let (d, k) = (lin.d, lin.k);
    let mut wsum = vec![0.0f64; k];
    for (&y, &w) in design.y.iter().zip(&design.w) {
        wsum[y as usize] += f64::from(w);
    }
    let total_w: f64 = wsum.iter().sum();
    let mut mean = vec![0.0f64; d];
    for c in 0..k {
        mean.iter_mut()
            .zip(&sums[c * d..(c + 1) * d])
            .for_each(|(m, s)| *m += s / total_w);
    }
    let mut p = vec![0.0f32; lin.n_params()];
    for c in (0..k).filter(|&c| wsum[c] > 0.0) {
        for j in 0..d {
            p[j * k + c] = (sums[c * d + j] / wsum[c] - mean[j]) as f32;
        }
    }
    let centred = p[..d * k].to_vec();
    m.apply(&mut p, k);
    for c in 0..k {
        let q: f64 = (0..d)
            .map(|j| f64::from(centred[j * k + c]) * f64::from(p[j * k + c]))
            .sum();
        p[d * k + c] = (-0.5 * q) as f32;
    }
    p
}

/// Full-batch objective `scale * sum_i w_i CE_i + lambda/2 ||W||^2` with cached logits.
pub(crate) struct SoftmaxLine<'a> {
    lin: Linear,
    design: &'a Design<'a>,
    scale: f64,
    lambda: f64,
    z: Vec<f32>,
    xp: Vec<f32>,
    ww: f64,
    wp: f64,
    pp: f64,
    blocks: Vec<Range<usize>>,
    acc: Vec<Vec<f32>>,
    scratch: Vec<Scratch>,
    /// `z` already holds the logits of the point `start` will be called with.
    primed: bool,
}

impl<'a> SoftmaxLine<'a> {
    pub fn new(lin: Linear, design: &'a Design<'a>, scale: f64, lambda: f64) -> Self {
        let n = design.n();
        let blocks = blocks(n, lin.n_params());
        let nb = blocks.len();
        SoftmaxLine {
            lin,
            design,
            scale,
            lambda,
            z: vec![0.0; n * lin.k],
            xp: vec![0.0; n * lin.k],
            ww: 0.0,
            wp: 0.0,
            pp: 0.0,
            blocks,
            acc: (0..nb).map(|_| vec![0.0; lin.n_params()]).collect(),
            scratch: (0..nb).map(|_| Scratch::default()).collect(),
            primed: false,
        }
    }

    /// Moves `theta` (with `W = 0`) to the minimum of the objective along `p`
    /// (exactly, not just a Wolfe point), for one GEMM pass: the logits along
    /// `p` are computed once, every trial step after that is O(n K). Leaves
    /// the logits primed so the following `start` skips its forward pass.
    pub fn step_to_min(&mut self, theta: &mut [f32], p: &[f32]) {
        let k = self.lin.k;
        let bias = &theta[self.lin.w_len()..];
        self.z
            .par_chunks_mut(CHUNK * k)
            .for_each(|z| z.chunks_exact_mut(k).for_each(|r| r.copy_from_slice(bias)));
        self.set_direction(theta, p);
        let (_, d0) = self.line(0.0);
        if d0.is_nan() || d0 >= 0.0 {
            return;
        }
        // Bracket the root of the (increasing) directional derivative.
        let (mut lo, mut hi, mut d_lo) = (0.0f64, 1.0f64, d0);
        let mut d_hi = self.line(hi).1;
        while d_hi < 0.0 && hi < 1e6 {
            (lo, d_lo) = (hi, d_hi);
            hi *= 4.0;
            d_hi = self.line(hi).1;
        }
        if d_hi.is_nan() {
            return;
        }
        // Safeguarded secant (Illinois) on the derivative.
        let mut alpha = hi;
        for _ in 0..12 {
            if d_hi < 0.0 {
                break;
            }
            alpha = hi - d_hi * (hi - lo) / (d_hi - d_lo);
            if !(alpha > lo && alpha < hi) {
                alpha = 0.5 * (lo + hi);
            }
            let d = self.line(alpha).1;
            if d.abs() <= 1e-3 * d0.abs() {
                break;
            }
            if d < 0.0 {
                (lo, d_lo) = (alpha, d);
                d_hi *= 0.5;
            } else {
                (hi, d_hi) = (alpha, d);
                d_lo *= 0.5;
            }
        }
        let a = alpha as f32;
        theta.iter_mut().zip(p).for_each(|(t, pv)| *t += a * pv);
        self.z
            .par_chunks_mut(CHUNK * k)
            .zip(self.xp.par_chunks(CHUNK * k))
            .for_each(|(z, p)| z.iter_mut().zip(p).for_each(|(zv, pv)| *zv += a * pv));
        self.primed = true;
    }

    /// `out = X theta_W + theta_b` for all rows.
    fn forward(lin: Linear, design: &Design, theta: &[f32], out: &mut [f32]) {
        let (d, k) = (lin.d, lin.k);
        let span = pass_rows(design.n());
        out.par_chunks_mut(span * k)
            .enumerate()
            .for_each_init(Vec::<f32>::new, |x, (ci, o)| {
                let start = ci * span;
                let m = o.len() / k;
                let rows = design.rows_at(start..start + m, x);
                gemm(rows, (m, d), false, &theta[..d * k], (d, k), false, 0.0, o);
                add_bias(o, &theta[d * k..]);
            });
    }

    /// Gradient at the point whose logits are `self.z`; returns the objective.
    fn grad_pass(&mut self, theta: &[f32], g: &mut [f32]) -> f64 {
        let (d, k) = (self.lin.d, self.lin.k);
        let design = self.design;
        let scale = self.scale;
        let z = &self.z;
        let losses: Vec<f64> = self
            .blocks
            .par_iter()
            .zip(self.acc.par_iter_mut())
            .zip(self.scratch.par_iter_mut())
            .map(|((range, acc), s)| {
                acc.iter_mut().for_each(|v| *v = 0.0);
                let (gw, gb) = acc.split_at_mut(d * k);
                let mut loss = 0.0;
                let mut start = range.start;
                while start < range.end {
                    let end = (start + GEMM_ROWS).min(range.end);
                    let m = end - start;
                    let gz = ensure(&mut s.z, m * k);
                    gz.copy_from_slice(&z[start * k..end * k]);
                    let c = ensure(&mut s.coef, m);
                    for (ci, &w) in c.iter_mut().zip(&design.w[start..end]) {
                        *ci = (f64::from(w) * scale) as f32;
                    }
                    loss += softmax_ce_grad(gz, k, &design.y[start..end], c);
                    let x = design.rows_at(start..end, &mut s.x);
                    gemm(x, (m, d), true, &s.z[..m * k], (m, k), false, 1.0, gw);
                    add_colsum(gb, &s.z[..m * k]);
                    start = end;
                }
                loss
            })
            .collect();
        g.iter_mut().for_each(|v| *v = 0.0);
        for acc in &self.acc {
            g.iter_mut().zip(acc).for_each(|(a, b)| *a += b);
        }
        let pen = self.lin.penalized();
        add_penalty_grad(g, theta, &pen, self.lambda);
        losses.iter().sum::<f64>() + 0.5 * self.lambda * penalty_sq(theta, &pen)
    }
}

avx512_dispatch! {
    /// The objective's data term and its slope along `p` at step `a`, for
    /// rows with logits `z` and logits along `p` `xp` (m x K each), classes
    /// `y` and weights `w` (times `scale`).
    fn line_rows(
        z: &[f32],
        xp: &[f32],
        y: &[u32],
        w: &[f32],
        scale: f64,
        k: usize,
        a: f32,
    ) -> (f64, f64) {
        let mut buf = vec![0.0f32; k];
        let (mut f, mut df) = (0.0f64, 0.0f64);
        for (i, (&yi, &wi)) in y.iter().zip(w).enumerate() {
            let zi = &z[i * k..(i + 1) * k];
            let pi = &xp[i * k..(i + 1) * k];
            for ((b, &zv), &pv) in buf.iter_mut().zip(zi).zip(pi) {
                *b = zv + a * pv;
            }
            let mx = max_f32(&buf);
            let yi = yi as usize;
            let zy = buf[yi] - mx;
            // The exponentials and their sum as `softmax_ce_grad` takes them.
            buf.iter_mut().for_each(|b| *b = exp_le0(*b - mx));
            let s = sum_f32(&buf);
            let sp = dot_f32(&buf, pi);
            // The f32 coefficient of `grad_pass`: phi(0) must be its f to the
            // last bit for the line search's tests.
            let c = f64::from((f64::from(wi) * scale) as f32);
            f += c * (f64::from(s).ln() - f64::from(zy));
            df += c * (f64::from(sp / s) - f64::from(pi[yi]));
        }
        (f, df)
    }
}

impl LineObjective for SoftmaxLine<'_> {
    fn start(&mut self, theta: &[f32], g: &mut [f32]) -> f64 {
        if !std::mem::take(&mut self.primed) {
            let mut z = std::mem::take(&mut self.z);
            Self::forward(self.lin, self.design, theta, &mut z);
            self.z = z;
        }
        self.grad_pass(theta, g)
    }

    fn set_direction(&mut self, theta: &[f32], p: &[f32]) {
        let mut xp = std::mem::take(&mut self.xp);
        Self::forward(self.lin, self.design, p, &mut xp);
        self.xp = xp;
        let wl = self.lin.w_len();
        self.ww = dot(&theta[..wl], &theta[..wl]);
        self.wp = dot(&theta[..wl], &p[..wl]);
        self.pp = dot(&p[..wl], &p[..wl]);
    }

    fn line(&mut self, alpha: f64) -> (f64, f64) {
        let k = self.lin.k;
        let a = alpha as f32;
        let (z, xp, design, scale) = (&self.z, &self.xp, self.design, self.scale);
        let parts: Vec<(f64, f64)> = self
            .blocks
            .par_iter()
            .map(|r| {
                let rows = r.start * k..r.end * k;
                let (y, w) = (&design.y[r.clone()], &design.w[r.clone()]);
                line_rows(&z[rows.clone()], &xp[rows], y, w, scale, k, a)
            })
            .collect();
        let f: f64 = parts.iter().map(|p| p.0).sum();
        let df: f64 = parts.iter().map(|p| p.1).sum();
        let l = self.lambda;
        (
            f + 0.5 * l * (self.ww + 2.0 * alpha * self.wp + alpha * alpha * self.pp),
            df + l * (self.wp + alpha * self.pp),
        )
    }

    fn accept(&mut self, alpha: f64, theta_new: &[f32], g: &mut [f32]) -> f64 {
        let a = alpha as f32;
        let k = self.lin.k;
        self.z
            .par_chunks_mut(CHUNK * k)
            .zip(self.xp.par_chunks(CHUNK * k))
            .for_each(|(z, p)| z.iter_mut().zip(p).for_each(|(zv, pv)| *zv += a * pv));
        self.grad_pass(theta_new, g)
    }
}
