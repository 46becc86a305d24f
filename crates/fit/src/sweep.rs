//! Candidate grid (C values x hidden sizes), fitted with warm starts along
//! increasing C (strongest regularisation first) and in parallel across
//! hidden sizes; the best candidate is chosen on validation.

use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::FitError;
use crate::adam::{self, AdamConfig};
use crate::engine::{Design, Model, logits_all, score};
use crate::lbfgs::{self, EarlyStop, FullBatchLine, LbfgsConfig, LbfgsReport};
use crate::linear::{
    Linear, SoftmaxLine, class_mean_direction, class_sums, null_grad_norm, priors,
};
use crate::precond::Precond;

/// Directions in the softmax L-BFGS preconditioner.
const PRECOND_RANK: usize = 32;
use crate::mlp::Mlp;
use crate::ncm;
use crate::params::{CheckedFitParams, HeadKind, SelectBy, Solver};
use crate::reference::fit_linfa;

/// One fitted candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepRow {
    /// Inverse regularisation strength (None for NCM).
    pub c: Option<f64>,
    /// Hidden units (MLP).
    pub hidden: Option<usize>,
    /// Solver used.
    pub solver: Solver,
    /// Mean validation log-loss.
    pub val_log_loss: f64,
    /// Validation accuracy.
    pub val_accuracy: f64,
    /// Final training objective (mean form: sum w_i CE_i / sum w_i + ||W||^2 / (2 C sum w_i)), for L-BFGS.
    pub train_objective: Option<f64>,
    /// L-BFGS iterations run.
    pub iterations: usize,
    /// Iteration whose parameters were kept (L-BFGS with validation early stopping).
    pub best_iteration: Option<usize>,
    /// Adam epochs (including warm-up).
    pub epochs: usize,
    /// Whether L-BFGS met its gradient tolerance.
    pub converged: Option<bool>,
    /// Wall-clock seconds for this candidate.
    pub seconds: f64,
    /// Whether this candidate was selected.
    pub selected: bool,
}

/// The selected candidate's parameters.
pub(crate) struct Best {
    pub theta: Vec<f32>,
    pub hidden: Option<usize>,
    pub temperature: Option<f64>,
}

/// True when `a` beats `b` under the criterion (NaN loses).
pub(crate) fn better(a: &SweepRow, b: &SweepRow, by: SelectBy) -> bool {
    let ll = |r: &SweepRow| {
        if r.val_log_loss.is_nan() {
            f64::INFINITY
        } else {
            r.val_log_loss
        }
    };
    let acc = |r: &SweepRow| {
        if r.val_accuracy.is_nan() {
            f64::NEG_INFINITY
        } else {
            r.val_accuracy
        }
    };
    match by {
        SelectBy::LogLoss => ll(a) < ll(b) || (ll(a) == ll(b) && acc(a) > acc(b)),
        SelectBy::Accuracy => acc(a) > acc(b) || (acc(a) == acc(b) && ll(a) < ll(b)),
    }
}

fn sorted_cs(p: &CheckedFitParams) -> Vec<f64> {
    let mut cs = p.c.clone();
    cs.sort_by(f64::total_cmp);
    cs.dedup();
    cs
}

/// Runs the sweep; returns all rows (selected one marked) and the best parameters.
pub(crate) fn run(
    p: &CheckedFitParams,
    train: &Design,
    val: &Design,
    k: usize,
) -> Result<(Vec<SweepRow>, Best), FitError> {
    let d = train.dim();
    let chains: Vec<(Vec<SweepRow>, Best)> = match p.head {
        HeadKind::Ncm => vec![ncm_candidate(train, val, k)],
        HeadKind::Softmax => vec![softmax_chain(p, train, val, Linear { d, k })?],
        HeadKind::Mlp => p
            .hidden
            .par_iter()
            .map(|&h| mlp_chain(p, train, val, Mlp { d, h, k }))
            .collect::<Result<Vec<_>, FitError>>()?,
    };
    let mut rows: Vec<SweepRow> = Vec::new();
    let mut best: Option<(usize, Best)> = None;
    for (chain_rows, chain_best) in chains {
        let idx = chain_rows.iter().position(|r| r.selected).unwrap_or(0);
        let wins = best
            .as_ref()
            .is_none_or(|(bi, _)| better(&chain_rows[idx], &rows[*bi], p.select_by));
        let gi = rows.len() + idx;
        rows.extend(chain_rows.into_iter().map(|mut r| {
            r.selected = false;
            r
        }));
        if wins {
            best = Some((gi, chain_best));
        }
    }
    let Some((bi, best)) = best else {
        return Err(FitError::NoTrainingRows);
    };
    rows[bi].selected = true;
    Ok((rows, best))
}

fn adam_cfg(p: &CheckedFitParams, max_epochs: usize, patience: usize) -> AdamConfig {
    AdamConfig {
        lr: p.learning_rate,
        batch: p.batch_size,
        max_epochs,
        patience,
        seed: p.seed,
    }
}

fn lbfgs_cfg(p: &CheckedFitParams, g_ref: Option<f64>) -> LbfgsConfig {
    LbfgsConfig {
        max_iter: p.max_iter,
        memory: p.lbfgs_memory,
        tol: p.tol,
        g_ref,
    }
}

/// What one candidate's solver run reports, for its sweep row.
#[derive(Default)]
struct Run {
    iterations: usize,
    best_iteration: Option<usize>,
    epochs: usize,
    objective: Option<f64>,
    converged: Option<bool>,
}

impl Run {
    /// Takes an L-BFGS report and puts the early-stopping choice into `theta`.
    fn lbfgs(&mut self, r: LbfgsReport, es: EarlyStop, theta: &mut [f32]) {
        self.iterations = r.iterations;
        self.best_iteration = es.enabled().then_some(es.best_at);
        // The objective is known for the last iterate only.
        self.objective = (self.best_iteration.is_none_or(|b| b == r.iterations)).then_some(r.f);
        self.converged = Some(r.converged);
        es.restore(theta);
    }

    /// The sweep row, from the validation `(log-loss, accuracy)`.
    fn row(
        self,
        c: f64,
        hidden: Option<usize>,
        solver: Solver,
        (ll, acc): (f64, f64),
        t0: Instant,
    ) -> SweepRow {
        SweepRow {
            c: Some(c),
            hidden,
            solver,
            val_log_loss: ll,
            val_accuracy: acc,
            train_objective: self.objective,
            iterations: self.iterations,
            best_iteration: self.best_iteration,
            epochs: self.epochs,
            converged: self.converged,
            seconds: t0.elapsed().as_secs_f64(),
            selected: false,
        }
    }
}

/// Keeps the best of a chain: marks rows and stores parameters.
struct ChainBest {
    idx: Option<usize>,
    theta: Vec<f32>,
}

impl ChainBest {
    fn offer(&mut self, rows: &mut [SweepRow], i: usize, theta: &[f32], by: SelectBy) {
        if self.idx.is_none_or(|b| better(&rows[i], &rows[b], by)) {
            if let Some(b) = self.idx {
                rows[b].selected = false;
            }
            rows[i].selected = true;
            self.idx = Some(i);
            self.theta = theta.to_vec();
        }
    }
}

fn softmax_chain(
    p: &CheckedFitParams,
    train: &Design,
    val: &Design,
    lin: Linear,
) -> Result<(Vec<SweepRow>, Best), FitError> {
    let solver = p.effective_solver();
    let s_total = train.weight_sum();
    let scale = 1.0 / s_total;
    let pri = priors(train, lin.k);
    let mut theta = lin.init(&pri);
    let mut g_ref: Option<f64> = None;
    let mut precond: Option<Precond> = None;
    let mut rows: Vec<SweepRow> = Vec::new();
    let mut best = ChainBest {
        idx: None,
        theta: Vec::new(),
    };
    for (i, c) in sorted_cs(p).into_iter().enumerate() {
        let t0 = Instant::now();
        let lambda = 1.0 / (c * s_total);
        let mut run = Run::default();
        match solver {
            Solver::Lbfgs | Solver::Auto => {
                if i == 0 && p.warmup_epochs > 0 {
                    let r = adam::train(
                        &lin,
                        &mut theta,
                        train,
                        None,
                        lambda,
                        adam_cfg(p, p.warmup_epochs, 0),
                    )?;
                    run.epochs = r.epochs;
                }
                let mut obj = SoftmaxLine::new(lin, train, scale, lambda);
                let pc =
                    precond.get_or_insert_with(|| Precond::estimate(train, PRECOND_RANK, p.seed));
                let gr = match g_ref {
                    Some(gr) => gr,
                    None => {
                        let sums = class_sums(train, lin.k);
                        let gr = null_grad_norm(train, lin.k, scale, &sums);
                        if run.epochs == 0 {
                            let dir = class_mean_direction(lin, train, &sums, pc);
                            obj.step_to_min(&mut theta, &dir);
                        }
                        *g_ref.insert(gr)
                    }
                };
                let mut es = EarlyStop::new(p.lbfgs_patience);
                let r = lbfgs::minimize(
                    &mut obj,
                    &mut theta,
                    lbfgs_cfg(p, Some(gr)),
                    |q: &mut [f32]| pc.apply(q, lin.k),
                    |th| es.observe(score(&lin, th, val).0, th),
                )?;
                run.lbfgs(r, es, &mut theta);
            }
            Solver::Adam => {
                let r = adam::train(
                    &lin,
                    &mut theta,
                    train,
                    Some(val),
                    lambda,
                    adam_cfg(p, p.max_epochs, p.patience),
                )?;
                run.epochs = r.epochs;
            }
            Solver::Linfa => {
                let warm = (i > 0).then_some(theta.as_slice());
                theta = fit_linfa(train, lin.k, c, p.max_iter, warm)?;
                run.objective = Some(softmax_objective(lin, &theta, train, lambda));
            }
        }
        rows.push(run.row(c, None, solver, score(&lin, &theta, val), t0));
        best.offer(&mut rows, i, &theta, p.select_by);
    }
    Ok((
        rows,
        Best {
            theta: best.theta,
            hidden: None,
            temperature: None,
        },
    ))
}

/// Mean-form softmax objective at `theta` (for reporting and tests).
pub(crate) fn softmax_objective(lin: Linear, theta: &[f32], train: &Design, lambda: f64) -> f64 {
    let scale = 1.0 / train.weight_sum();
    let mut g = vec![0.0f32; lin.n_params()];
    let mut pass = crate::engine::FullPass::new(train.n(), lin.n_params());
    let loss = pass.run(&lin, theta, train, scale, &mut g);
    loss + 0.5 * lambda * crate::engine::penalty_sq(theta, &lin.penalized())
}

fn mlp_chain(
    p: &CheckedFitParams,
    train: &Design,
    val: &Design,
    mlp: Mlp,
) -> Result<(Vec<SweepRow>, Best), FitError> {
    let solver = p.effective_solver();
    let s_total = train.weight_sum();
    let scale = 1.0 / s_total;
    let mut theta = mlp.init(&priors(train, mlp.k), p.seed);
    let mut rows = Vec::new();
    let mut best = ChainBest {
        idx: None,
        theta: Vec::new(),
    };
    for (i, c) in sorted_cs(p).into_iter().enumerate() {
        let t0 = Instant::now();
        let lambda = 1.0 / (c * s_total);
        let mut run = Run::default();
        if solver == Solver::Lbfgs {
            let mut obj = FullBatchLine::new(&mlp, train, scale, lambda);
            let mut es = EarlyStop::new(p.lbfgs_patience);
            let r = lbfgs::minimize(
                &mut obj,
                &mut theta,
                lbfgs_cfg(p, None),
                |_: &mut [f32]| {},
                |th| es.observe(score(&mlp, th, val).0, th),
            )?;
            run.lbfgs(r, es, &mut theta);
        } else {
            let r = adam::train(
                &mlp,
                &mut theta,
                train,
                Some(val),
                lambda,
                adam_cfg(p, p.max_epochs, p.patience),
            )?;
            run.epochs = r.epochs;
        }
        rows.push(run.row(c, Some(mlp.h), solver, score(&mlp, &theta, val), t0));
        best.offer(&mut rows, i, &theta, p.select_by);
    }
    Ok((
        rows,
        Best {
            theta: best.theta,
            hidden: Some(mlp.h),
            temperature: None,
        },
    ))
}

fn ncm_candidate(train: &Design, val: &Design, k: usize) -> (Vec<SweepRow>, Best) {
    let t0 = Instant::now();
    let d = train.dim();
    let lin = Linear { d, k };
    let means = ncm::class_means(train, k);
    let mut theta = ncm::linear_params(&means, d, k);
    let logits = logits_all(&lin, &theta, val);
    let s = ncm::fit_inverse_temperature(&logits, &val.y, k);
    theta.iter_mut().for_each(|v| *v *= s as f32);
    let (ll, acc) = score(&lin, &theta, val);
    let row = SweepRow {
        c: None,
        hidden: None,
        solver: Solver::Auto,
        val_log_loss: ll,
        val_accuracy: acc,
        train_objective: None,
        iterations: 0,
        best_iteration: None,
        epochs: 0,
        converged: None,
        seconds: t0.elapsed().as_secs_f64(),
        selected: true,
    };
    (
        vec![row],
        Best {
            theta,
            hidden: None,
            temperature: Some(1.0 / s),
        },
    )
}
