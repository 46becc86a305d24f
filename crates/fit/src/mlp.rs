//! One-hidden-layer ReLU network with a softmax output.
//!
//! Parameters `[W1 (d x H), b1 (H), W2 (H x K), b2 (K)]`, row-major.

use std::ops::Range;

use crate::engine::{Model, Scratch, add_bias, add_colsum, ensure, gemm, softmax_ce_grad};
use crate::rng::Rng;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Mlp {
    pub d: usize,
    pub h: usize,
    pub k: usize,
}

impl Mlp {
    fn offsets(&self) -> (usize, usize, usize, usize) {
        let w1 = self.d * self.h;
        let b1 = w1 + self.h;
        let w2 = b1 + self.h * self.k;
        (w1, b1, w2, w2 + self.k)
    }

    /// Glorot-uniform weights, zero hidden biases, output biases at log priors.
    pub fn init(&self, priors: &[f64], seed: u64) -> Vec<f32> {
        let (o1, o2, o3, _) = self.offsets();
        let mut theta = vec![0.0f32; self.n_params()];
        let mut rng = Rng::new(seed ^ 0x0000_1a7e_u64);
        let l1 = (6.0 / (self.d + self.h) as f64).sqrt();
        for v in &mut theta[..o1] {
            *v = ((2.0 * rng.uniform() - 1.0) * l1) as f32;
        }
        let l2 = (6.0 / (self.h + self.k) as f64).sqrt();
        for v in &mut theta[o2..o3] {
            *v = ((2.0 * rng.uniform() - 1.0) * l2) as f32;
        }
        for (b, p) in theta[o3..].iter_mut().zip(priors) {
            *b = p.max(1e-12).ln() as f32;
        }
        theta
    }

    /// Splits `theta` into (W1, b1, W2, b2).
    pub fn parts<'t>(&self, theta: &'t [f32]) -> (&'t [f32], &'t [f32], &'t [f32], &'t [f32]) {
        let (o1, o2, o3, o4) = self.offsets();
        (&theta[..o1], &theta[o1..o2], &theta[o2..o3], &theta[o3..o4])
    }

    fn hidden(&self, theta: &[f32], x: &[f32], m: usize, hbuf: &mut [f32]) {
        let (w1, b1, _, _) = self.parts(theta);
        gemm(
            x,
            (m, self.d),
            false,
            w1,
            (self.d, self.h),
            false,
            0.0,
            hbuf,
        );
        add_bias(hbuf, b1);
        hbuf.iter_mut().for_each(|v| *v = v.max(0.0));
    }
}

impl Model for Mlp {
    fn n_params(&self) -> usize {
        self.offsets().3
    }

    fn n_classes(&self) -> usize {
        self.k
    }

    fn penalized(&self) -> Vec<Range<usize>> {
        let (o1, o2, o3, _) = self.offsets();
        vec![0..o1, o2..o3]
    }

    fn logits(&self, theta: &[f32], x: &[f32], m: usize, out: &mut [f32], s: &mut Scratch) {
        let (_, _, w2, b2) = self.parts(theta);
        let hb = ensure(&mut s.h, m * self.h);
        self.hidden(theta, x, m, hb);
        gemm(
            hb,
            (m, self.h),
            false,
            w2,
            (self.h, self.k),
            false,
            0.0,
            out,
        );
        add_bias(out, b2);
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
        let (d, h, k) = (self.d, self.h, self.k);
        let (o1, o2, o3, _) = self.offsets();
        let mut z = std::mem::take(&mut s.z);
        let zz = ensure(&mut z, m * k);
        self.logits(theta, x, m, zz, s);
        let loss = softmax_ce_grad(zz, k, y, coef);
        let (_, _, w2, _) = self.parts(theta);
        let hb = &s.h[..m * h];
        let (gw1, rest) = g.split_at_mut(o1);
        let (gb1, rest) = rest.split_at_mut(o2 - o1);
        let (gw2, gb2) = rest.split_at_mut(o3 - o2);
        gemm(hb, (m, h), true, zz, (m, k), false, 1.0, gw2);
        add_colsum(gb2, zz);
        let dh = ensure(&mut s.dh, m * h);
        gemm(zz, (m, k), false, w2, (h, k), true, 0.0, dh);
        dh.iter_mut().zip(hb).for_each(|(g, &hv)| {
            if hv <= 0.0 {
                *g = 0.0
            }
        });
        gemm(x, (m, d), true, dh, (m, h), false, 1.0, gw1);
        add_colsum(gb1, dh);
        s.z = z;
        loss
    }
}
