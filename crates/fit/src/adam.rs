//! Mini-batch Adam with early stopping on validation log-loss.

use crate::FitError;
use crate::engine::{BatchPass, Design, Model, add_penalty_grad, score};
use crate::rng::Rng;

#[derive(Debug, Clone, Copy)]
pub(crate) struct AdamConfig {
    pub lr: f64,
    pub batch: usize,
    pub max_epochs: usize,
    /// Epochs without validation improvement before stopping (0: never stop early).
    pub patience: usize,
    pub seed: u64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct AdamReport {
    pub epochs: usize,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

/// Trains `theta` in place; with a validation set, returns the best epoch's parameters.
pub(crate) fn train<M: Model>(
    model: &M,
    theta: &mut [f32],
    design: &Design,
    val: Option<&Design>,
    lambda: f64,
    cfg: AdamConfig,
) -> Result<AdamReport, FitError> {
    let np = model.n_params();
    let n = design.n();
    let s_total = design.weight_sum();
    let pen = model.penalized();
    let mut m1 = vec![0.0f32; np];
    let mut m2 = vec![0.0f32; np];
    let mut g = vec![0.0f32; np];
    let mut pass = BatchPass::new(np);
    let mut rng = Rng::new(cfg.seed ^ 0xada_0000);
    let mut order: Vec<u32> = (0..n as u32).collect();
    // Small sets still get several steps per epoch.
    let batch = cfg.batch.min((n / 8).max(16)).max(1);
    let mut step = 0i32;
    let use_val = val.is_some_and(|v| v.n() > 0) && cfg.patience > 0;
    let mut best: Option<(f64, Vec<f32>)> = None;
    let mut bad = 0;
    let mut epochs = 0;
    for epoch in 0..cfg.max_epochs {
        rng.shuffle(&mut order);
        for batch in order.chunks(batch) {
            // Unbiased estimate of the mean-form objective's gradient.
            let scale = n as f64 / (s_total * batch.len() as f64);
            let loss = pass.run(model, theta, design, batch, scale, &mut g);
            if !loss.is_finite() {
                return Err(FitError::Diverged(format!(
                    "Adam mini-batch loss became {loss} in epoch {}",
                    epoch + 1
                )));
            }
            add_penalty_grad(&mut g, theta, &pen, lambda);
            step += 1;
            let bc1 = 1.0 - BETA1.powi(step);
            let bc2 = 1.0 - BETA2.powi(step);
            let lr = (cfg.lr * bc2.sqrt() / bc1) as f32;
            let (b1, b2, eps) = (BETA1 as f32, BETA2 as f32, (EPS * bc2.sqrt()) as f32);
            for (((t, a), b), &gv) in theta.iter_mut().zip(&mut m1).zip(&mut m2).zip(&g) {
                *a = b1 * *a + (1.0 - b1) * gv;
                *b = b2 * *b + (1.0 - b2) * gv * gv;
                *t -= lr * *a / (b.sqrt() + eps);
            }
        }
        epochs = epoch + 1;
        if use_val {
            let Some(v) = val else { break };
            let (ll, _) = score(model, theta, v);
            if !ll.is_finite() {
                return Err(FitError::Diverged(format!(
                    "validation log-loss became {ll} in epoch {epochs}"
                )));
            }
            match &mut best {
                Some((b, _)) if ll >= *b - 1e-6 * b.abs() => {
                    bad += 1;
                    if bad >= cfg.patience {
                        break;
                    }
                }
                Some((b, saved)) => {
                    *b = ll;
                    saved.copy_from_slice(theta);
                    bad = 0;
                }
                None => {
                    best = Some((ll, theta.to_vec()));
                }
            }
        }
    }
    if let Some((_, saved)) = best {
        theta.copy_from_slice(&saved);
    }
    Ok(AdamReport { epochs })
}
