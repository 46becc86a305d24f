//! Limited-memory BFGS with a strong-Wolfe line search (Nocedal & Wright,
//! algorithms 7.4, 3.5 and 3.6), over objectives that can evaluate along a line.

use crate::FitError;
use crate::engine::{Design, FullPass, Model, add_penalty_grad, dot, penalty_sq};

/// An objective seen along search lines.
pub(crate) trait LineObjective {
    /// Makes `theta` the current point; returns f and writes the gradient.
    fn start(&mut self, theta: &[f32], g: &mut [f32]) -> f64;
    /// Prepares the line `theta + alpha p` from the current point.
    fn set_direction(&mut self, theta: &[f32], p: &[f32]);
    /// `phi(alpha)` and `phi'(alpha)` along the current line.
    fn line(&mut self, alpha: f64) -> (f64, f64);
    /// Moves to `theta_new = theta + alpha p`; returns f and writes the gradient.
    fn accept(&mut self, alpha: f64, theta_new: &[f32], g: &mut [f32]) -> f64;
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct LbfgsConfig {
    pub max_iter: usize,
    pub memory: usize,
    /// Stop when ||g|| <= tol * g_ref.
    pub tol: f64,
    /// Reference gradient norm (the null model's); `None`: the initial gradient.
    pub g_ref: Option<f64>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct LbfgsReport {
    pub iterations: usize,
    pub f: f64,
    pub converged: bool,
}

const C1: f64 = 1e-4;
const C2: f64 = 0.9;
const MAX_LINE_EVALS: usize = 30;
/// Objective changes within this fraction of `|f(0)|` are taken as rounding
/// (the objectives sum per-row losses computed in f32). A step whose
/// predicted decrease is smaller than that, as on nearly separable data where
/// the gradient is tiny, cannot be judged on `f`: within this band the search
/// judges steps on the derivative alone (the approximate Wolfe conditions of
/// Hager and Zhang), instead of shrinking the step towards 0 and giving up.
const F_NOISE: f64 = 1e-6;

/// `f` is within rounding of `f0`: see [`F_NOISE`].
fn flat(f: f64, f0: f64) -> bool {
    (f - f0).abs() <= F_NOISE * f0.abs()
}

/// Minimises from `theta` in place. `precond` applies a fixed symmetric
/// positive definite `M` (the initial inverse-Hessian shape, scaled each
/// iteration; a no-op for plain L-BFGS). `monitor` sees each new iterate and
/// returns true to stop (validation early stopping).
pub(crate) fn minimize<O: LineObjective, P: Fn(&mut [f32]), F: FnMut(&[f32]) -> bool>(
    obj: &mut O,
    theta: &mut [f32],
    cfg: LbfgsConfig,
    precond: P,
    mut monitor: F,
) -> Result<LbfgsReport, FitError> {
    let n = theta.len();
    let mut g = vec![0.0f32; n];
    let mut f = obj.start(theta, &mut g);
    if !f.is_finite() {
        return Err(FitError::Diverged(format!("initial objective is {f}")));
    }
    let mut gnorm = dot(&g, &g).sqrt();
    let g_ref = cfg.g_ref.unwrap_or(gnorm).max(f64::MIN_POSITIVE);
    let m = cfg.memory;
    let mut s_hist: Vec<Vec<f32>> = Vec::with_capacity(m);
    let mut y_hist: Vec<Vec<f32>> = Vec::with_capacity(m);
    let mut rho: Vec<f64> = Vec::with_capacity(m);
    let mut head = 0usize; // index of the oldest pair once full
    let mut p = vec![0.0f32; n];
    let mut g_new = vec![0.0f32; n];
    let mut theta_new = vec![0.0f32; n];
    let mut s_new = vec![0.0f32; n];
    let mut y_new = vec![0.0f32; n];
    let mut alpha_hist = vec![0.0f64; m];
    let mut my = vec![0.0f32; n];
    let mut iterations = 0;
    let mut converged = gnorm <= cfg.tol * g_ref;
    while !converged && iterations < cfg.max_iter {
        // Two-loop recursion: p = -H g.
        let len = s_hist.len();
        p.iter_mut().zip(&g).for_each(|(pv, gv)| *pv = -gv);
        let order: Vec<usize> = (0..len).map(|i| (head + i) % len.max(1)).collect();
        for &i in order.iter().rev() {
            let a = rho[i] * dot(&s_hist[i], &p);
            alpha_hist[i] = a;
            let af = a as f32;
            p.iter_mut()
                .zip(&y_hist[i])
                .for_each(|(pv, yv)| *pv -= af * yv);
        }
        precond(&mut p);
        if let Some(&last) = order.last() {
            my.copy_from_slice(&y_hist[last]);
            precond(&mut my);
            let ymy = dot(&y_hist[last], &my);
            let gamma = (1.0 / (rho[last] * ymy)) as f32;
            p.iter_mut().for_each(|v| *v *= gamma);
        }
        for &i in &order {
            let b = rho[i] * dot(&y_hist[i], &p);
            let c = (alpha_hist[i] - b) as f32;
            p.iter_mut()
                .zip(&s_hist[i])
                .for_each(|(pv, sv)| *pv += c * sv);
        }
        let mut dphi0 = dot(&g, &p);
        if dphi0.is_nan() || dphi0 >= 0.0 {
            // Not a descent direction: restart from steepest descent.
            s_hist.clear();
            y_hist.clear();
            rho.clear();
            head = 0;
            p.iter_mut().zip(&g).for_each(|(pv, gv)| *pv = -gv);
            precond(&mut p);
            dphi0 = dot(&g, &p);
            if dphi0.is_nan() || dphi0 >= 0.0 {
                // `precond` is not positive definite along g (it should
                // be): plain steepest descent rather than a search uphill.
                p.iter_mut().zip(&g).for_each(|(pv, gv)| *pv = -gv);
                dphi0 = -dot(&g, &g);
                if dphi0.is_nan() || dphi0 >= 0.0 {
                    break;
                }
            }
        }
        let alpha0 = if s_hist.is_empty() {
            (1.0 / dot(&p, &p).sqrt()).min(1.0)
        } else {
            1.0
        };
        obj.set_direction(theta, &p);
        let (alpha, _evals) = wolfe(obj, f, dphi0, alpha0);
        let Some(alpha) = alpha else {
            if s_hist.is_empty() {
                break; // no progress possible even along -g
            }
            s_hist.clear();
            y_hist.clear();
            rho.clear();
            head = 0;
            continue;
        };
        let af = alpha as f32;
        theta_new
            .iter_mut()
            .zip(theta.iter())
            .zip(&p)
            .for_each(|((tn, t), pv)| *tn = t + af * pv);
        let f_new = obj.accept(alpha, &theta_new, &mut g_new);
        if !f_new.is_finite() {
            return Err(FitError::Diverged(format!("objective became {f_new}")));
        }
        iterations += 1;
        // Curvature pair (skipped when the curvature condition fails).
        s_new.iter_mut().zip(&p).for_each(|(s, pv)| *s = af * pv);
        y_new
            .iter_mut()
            .zip(&g_new)
            .zip(&g)
            .for_each(|((y, a), b)| *y = a - b);
        let sy = dot(&s_new, &y_new);
        let yy = dot(&y_new, &y_new);
        if sy > 1e-10 * yy && sy > 0.0 {
            if s_hist.len() < m {
                s_hist.push(s_new.clone());
                y_hist.push(y_new.clone());
                rho.push(1.0 / sy);
            } else {
                std::mem::swap(&mut s_hist[head], &mut s_new);
                std::mem::swap(&mut y_hist[head], &mut y_new);
                rho[head] = 1.0 / sy;
                head = (head + 1) % m;
            }
        }
        theta.copy_from_slice(&theta_new);
        std::mem::swap(&mut g, &mut g_new);
        let df = f - f_new;
        f = f_new;
        gnorm = dot(&g, &g).sqrt();
        converged = gnorm <= cfg.tol * g_ref;
        if monitor(theta) {
            break;
        }
        if df.abs() <= 1e-9 * f.abs() {
            // Objective no longer moves. Relative, not floored at an absolute
            // 1e-9: on nearly separable data the objective is ~1e-3 and one
            // short step stopped the solver well short of the optimum.
            break;
        }
    }
    Ok(LbfgsReport {
        iterations,
        f,
        converged,
    })
}

/// Strong-Wolfe line search; returns the step (or None) and the evaluations used.
fn wolfe<O: LineObjective>(obj: &mut O, f0: f64, d0: f64, alpha_init: f64) -> (Option<f64>, usize) {
    let mut evals = 0;
    let (mut a_prev, mut f_prev, mut d_prev) = (0.0, f0, d0);
    let mut a = alpha_init;
    for i in 0..MAX_LINE_EVALS {
        let (f, d) = obj.line(a);
        evals += 1;
        if !f.is_finite() || (!flat(f, f0) && (f > f0 + C1 * a * d0 || (i > 0 && f >= f_prev))) {
            let r = zoom(obj, f0, d0, (a_prev, f_prev, d_prev), (a, f, d), &mut evals);
            return (r, evals);
        }
        if d.abs() <= -C2 * d0 {
            return (Some(a), evals);
        }
        if d >= 0.0 {
            let r = zoom(obj, f0, d0, (a, f, d), (a_prev, f_prev, d_prev), &mut evals);
            return (r, evals);
        }
        (a_prev, f_prev, d_prev) = (a, f, d);
        a *= 2.0;
    }
    (Some(a_prev).filter(|&a| a > 0.0), evals)
}

fn zoom<O: LineObjective>(
    obj: &mut O,
    f0: f64,
    d0: f64,
    mut lo: (f64, f64, f64),
    mut hi: (f64, f64, f64),
    evals: &mut usize,
) -> Option<f64> {
    while *evals < MAX_LINE_EVALS {
        let (a_lo, a_hi) = (lo.0, hi.0);
        let width = (a_hi - a_lo).abs();
        if width <= 1e-12 * a_lo.abs().max(a_hi.abs()).max(1e-30) {
            break;
        }
        let (lo_b, hi_b) = (a_lo.min(a_hi), a_lo.max(a_hi));
        let mut a = if hi.1.is_finite() {
            cubic_min(lo, hi).unwrap_or(0.5 * (a_lo + a_hi))
        } else {
            0.5 * (a_lo + a_hi)
        };
        // Safeguard: stay inside the middle 80% of the bracket.
        let margin = 0.1 * (hi_b - lo_b);
        if !(a > lo_b + margin && a < hi_b - margin) {
            a = 0.5 * (a_lo + a_hi);
        }
        let (f, d) = obj.line(a);
        *evals += 1;
        if !f.is_finite() || (!flat(f, f0) && (f > f0 + C1 * a * d0 || f >= lo.1)) {
            hi = (a, f, d);
        } else {
            if d.abs() <= -C2 * d0 {
                return Some(a);
            }
            if d * (hi.0 - lo.0) >= 0.0 {
                hi = lo;
            }
            lo = (a, f, d);
        }
    }
    // Best point with sufficient decrease, if any.
    (lo.0 > 0.0).then_some(lo.0)
}

/// Minimiser of the cubic interpolating two points with derivatives.
fn cubic_min((a, fa, da): (f64, f64, f64), (b, fb, db): (f64, f64, f64)) -> Option<f64> {
    let d1 = da + db - 3.0 * (fa - fb) / (a - b);
    let disc = d1 * d1 - da * db;
    if disc.is_nan() || disc < 0.0 {
        return None;
    }
    let d2 = (b - a).signum() * disc.sqrt();
    let denom = db - da + 2.0 * d2;
    if denom == 0.0 {
        return None;
    }
    let x = b - (b - a) * (db + d2 - d1) / denom;
    x.is_finite().then_some(x)
}

/// Validation early stopping: remembers the best iterate by validation log-loss.
pub(crate) struct EarlyStop {
    patience: usize,
    best: Option<(f64, Vec<f32>)>,
    bad: usize,
    /// Iterates observed when the best one was seen.
    pub best_at: usize,
    seen: usize,
}

impl EarlyStop {
    /// `patience` 0 disables stopping (the last iterate is kept).
    pub fn new(patience: usize) -> Self {
        EarlyStop {
            patience,
            best: None,
            bad: 0,
            best_at: 0,
            seen: 0,
        }
    }

    /// Records validation loss `ll` of `theta`; true when patience ran out.
    pub fn observe(&mut self, ll: f64, theta: &[f32]) -> bool {
        self.seen += 1;
        if self.patience == 0 {
            return false;
        }
        match &mut self.best {
            Some((b, saved)) if ll < *b - 1e-6 * b.abs() => {
                *b = ll;
                saved.copy_from_slice(theta);
                self.bad = 0;
                self.best_at = self.seen;
            }
            Some(_) => {
                self.bad += 1;
            }
            None => {
                self.best = Some((ll, theta.to_vec()));
                self.best_at = self.seen;
            }
        }
        self.bad >= self.patience
    }

    /// Whether stopping is on (patience above 0).
    pub fn enabled(&self) -> bool {
        self.patience > 0
    }

    /// Puts the best iterate into `theta` (when stopping is enabled).
    pub fn restore(self, theta: &mut [f32]) {
        if let Some((_, saved)) = self.best {
            theta.copy_from_slice(&saved);
        }
    }
}

/// Generic full-batch objective over any [`Model`]: each line point is a full pass.
pub(crate) struct FullBatchLine<'a, M: Model> {
    model: &'a M,
    design: &'a Design<'a>,
    scale: f64,
    lambda: f64,
    pass: FullPass,
    base: Vec<f32>,
    p: Vec<f32>,
    trial: Vec<f32>,
    g_trial: Vec<f32>,
    last: Option<(f64, f64)>,
}

impl<'a, M: Model> FullBatchLine<'a, M> {
    pub fn new(model: &'a M, design: &'a Design<'a>, scale: f64, lambda: f64) -> Self {
        let np = model.n_params();
        FullBatchLine {
            model,
            design,
            scale,
            lambda,
            pass: FullPass::new(design.n(), np),
            base: vec![0.0; np],
            p: vec![0.0; np],
            trial: vec![0.0; np],
            g_trial: vec![0.0; np],
            last: None,
        }
    }

    fn eval(&mut self, theta: &[f32], g: &mut [f32]) -> f64 {
        let pen = self.model.penalized();
        let loss = self.pass.run(self.model, theta, self.design, self.scale, g);
        add_penalty_grad(g, theta, &pen, self.lambda);
        loss + 0.5 * self.lambda * penalty_sq(theta, &pen)
    }
}

impl<M: Model> LineObjective for FullBatchLine<'_, M> {
    fn start(&mut self, theta: &[f32], g: &mut [f32]) -> f64 {
        self.last = None;
        self.eval(theta, g)
    }

    fn set_direction(&mut self, theta: &[f32], p: &[f32]) {
        self.base.copy_from_slice(theta);
        self.p.copy_from_slice(p);
        self.last = None;
    }

    fn line(&mut self, alpha: f64) -> (f64, f64) {
        let a = alpha as f32;
        let mut trial = std::mem::take(&mut self.trial);
        let mut gt = std::mem::take(&mut self.g_trial);
        trial
            .iter_mut()
            .zip(&self.base)
            .zip(&self.p)
            .for_each(|((t, b), p)| *t = b + a * p);
        let f = self.eval(&trial, &mut gt);
        let df = dot(&gt, &self.p);
        self.trial = trial;
        self.g_trial = gt;
        self.last = Some((alpha, f));
        (f, df)
    }

    fn accept(&mut self, alpha: f64, theta_new: &[f32], g: &mut [f32]) -> f64 {
        match self.last {
            Some((a, f)) if a == alpha => {
                g.copy_from_slice(&self.g_trial);
                f
            }
            _ => self.eval(theta_new, g),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f(x) = sum_i c_i (x_i - 1)^2 + (x_0 x_1)^2, a small nonlinear test.
    struct Quad {
        c: Vec<f64>,
    }

    impl Quad {
        fn fg(&self, x: &[f32], g: &mut [f32]) -> f64 {
            let mut f = 0.0;
            for i in 0..x.len() {
                let xi = f64::from(x[i]);
                f += self.c[i] * (xi - 1.0).powi(2);
                g[i] = (2.0 * self.c[i] * (xi - 1.0)) as f32;
            }
            let (a, b) = (f64::from(x[0]), f64::from(x[1]));
            f += (a * b).powi(2);
            g[0] += (2.0 * a * b * b) as f32;
            g[1] += (2.0 * a * a * b) as f32;
            f
        }
    }

    /// Any `fg(x, g) -> f` as a line objective, evaluated point by point.
    struct ByPoint<F> {
        fg: F,
        base: Vec<f32>,
        p: Vec<f32>,
    }

    fn by_point<F: FnMut(&[f32], &mut [f32]) -> f64>(fg: F) -> ByPoint<F> {
        ByPoint {
            fg,
            base: vec![],
            p: vec![],
        }
    }

    impl<F: FnMut(&[f32], &mut [f32]) -> f64> LineObjective for ByPoint<F> {
        fn start(&mut self, theta: &[f32], g: &mut [f32]) -> f64 {
            (self.fg)(theta, g)
        }
        fn set_direction(&mut self, theta: &[f32], p: &[f32]) {
            self.base = theta.to_vec();
            self.p = p.to_vec();
        }
        fn line(&mut self, alpha: f64) -> (f64, f64) {
            let x: Vec<f32> = self
                .base
                .iter()
                .zip(&self.p)
                .map(|(b, p)| b + alpha as f32 * p)
                .collect();
            let mut g = vec![0.0; x.len()];
            let f = (self.fg)(&x, &mut g);
            (f, dot(&g, &self.p))
        }
        fn accept(&mut self, _alpha: f64, theta_new: &[f32], g: &mut [f32]) -> f64 {
            (self.fg)(theta_new, g)
        }
    }

    #[test]
    fn minimizes_an_ill_conditioned_function() {
        let c: Vec<f64> = (0..20).map(|i| 10f64.powf(i as f64 / 6.0)).collect();
        let q = Quad { c };
        let mut x = vec![0.0f32; 20];
        let r = minimize(
            &mut by_point(|x: &[f32], g: &mut [f32]| q.fg(x, g)),
            &mut x,
            LbfgsConfig {
                max_iter: 200,
                memory: 10,
                tol: 1e-5,
                g_ref: None,
            },
            |_: &mut [f32]| {},
            |_| false,
        )
        .unwrap();
        assert!(r.converged, "{r:?}");
        let mut g = vec![0.0; 20];
        let f = q.fg(&x, &mut g);
        // Minimum is near (x0 x1 small); f well below the start value.
        assert!(f < 1.5, "{f}");
    }

    #[test]
    fn an_indefinite_preconditioner_falls_back_to_steepest_descent() {
        // M = -I turns every preconditioned direction uphill.
        let q = Quad {
            c: vec![1.0, 2.0, 3.0, 4.0],
        };
        let mut x = vec![0.0f32; 4];
        let r = minimize(
            &mut by_point(|x: &[f32], g: &mut [f32]| q.fg(x, g)),
            &mut x,
            LbfgsConfig {
                max_iter: 200,
                memory: 5,
                tol: 1e-5,
                g_ref: None,
            },
            |p: &mut [f32]| p.iter_mut().for_each(|v| *v = -*v),
            |_| false,
        )
        .unwrap();
        let mut g = vec![0.0; 4];
        let f = q.fg(&x, &mut g);
        assert!(r.iterations > 0 && f < 1.5, "{r:?}, f {f}, x {x:?}");
    }

    /// `1 + 1e-8 sum_i (x_i - 1)^2` plus rounding-like noise of 1e-7: every
    /// change of `f` along a step is below its noise; the gradient is exact.
    fn flat(x: &[f32], g: &mut [f32]) -> f64 {
        let mut f = 1.0f64;
        let mut h = 0.0f64;
        for (gi, &xi) in g.iter_mut().zip(x) {
            let e = f64::from(xi) - 1.0;
            f += 1e-8 * e * e;
            h += 12345.678 * f64::from(xi);
            *gi = (2e-8 * e) as f32;
        }
        f + 1e-7 * h.sin()
    }

    #[test]
    fn steps_below_the_objectives_rounding_are_judged_on_the_slope() {
        let mut obj = by_point(flat);
        let mut x = vec![0.0f32; 3];
        let r = minimize(
            &mut obj,
            &mut x,
            LbfgsConfig {
                max_iter: 50,
                memory: 5,
                tol: 1e-3,
                g_ref: None,
            },
            |_: &mut [f32]| {},
            |_| false,
        )
        .unwrap();
        assert!(r.converged, "{r:?}, x {x:?}");
        assert!(x.iter().all(|&v| (v - 1.0).abs() < 1e-2), "{x:?}");
    }

    #[test]
    fn cubic_interpolation_finds_quadratic_minimum() {
        // f(a) = (a - 2)^2: points at 0 and 3.
        let m = cubic_min((0.0, 4.0, -4.0), (3.0, 1.0, 2.0)).unwrap();
        assert!((m - 2.0).abs() < 1e-9);
    }
}
