//! Fit parameters in linfa's checked style: [`FitParams`] holds plain values,
//! [`FitParams::check`] validates them once and returns [`CheckedFitParams`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::FitError;

macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident, $what:literal, $expected:literal, { $($(#[$vm:meta])* $var:ident => [$($txt:literal),+]),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum $name { $($(#[$vm])* $var),+ }

        impl $name {
            /// The canonical name (as accepted on the command line).
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => [$($txt),+][0]),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = FitError;
            fn from_str(s: &str) -> Result<Self, FitError> {
                let t = s.trim().to_ascii_lowercase();
                $( if [$($txt),+].contains(&t.as_str()) { return Ok($name::$var); } )+
                Err(FitError::Parse { what: $what, value: s.to_string(), expected: $expected })
            }
        }
    };
}

text_enum!(
    /// Which classifier head to fit.
    HeadKind, "head kind", "softmax, mlp, ncm", {
        /// Multinomial logistic regression.
        Softmax => ["softmax", "logistic", "linear"],
        /// One hidden ReLU layer, then softmax.
        Mlp => ["mlp"],
        /// Nearest class mean (a free baseline; a linear head with a fitted temperature).
        Ncm => ["ncm"],
    }
);

text_enum!(
    /// Which optimizer to use.
    Solver, "solver", "auto, lbfgs, adam, linfa", {
        /// L-BFGS for softmax, Adam for MLP.
        Auto => ["auto"],
        /// Full-batch L-BFGS (multi-threaded over row chunks).
        Lbfgs => ["lbfgs", "l-bfgs"],
        /// Mini-batch Adam with early stopping on validation log-loss.
        Adam => ["adam"],
        /// linfa-logistic's `MultiLogisticRegression` (reference; softmax only, no weights).
        Linfa => ["linfa"],
    }
);

text_enum!(
    /// Per-class sample weights.
    ClassWeight, "class weight", "none, balanced", {
        /// All rows weigh 1.
        None => ["none"],
        /// Rows of class c weigh n / (k * n_c).
        Balanced => ["balanced"],
    }
);

text_enum!(
    /// Feature normalisation, fitted on training rows and stored with the head.
    Normalize, "normalization", "standard, l2, none", {
        /// Per-feature (x - mean) / std.
        Standard => ["standard", "std"],
        /// Each row divided by its L2 norm.
        L2 => ["l2"],
        /// Features used as they are.
        None => ["none"],
    }
);

text_enum!(
    /// Criterion that picks the best sweep candidate on validation.
    SelectBy, "selection criterion", "log-loss, accuracy", {
        /// Lowest validation log-loss (ties: higher accuracy).
        LogLoss => ["log-loss", "logloss", "log_loss"],
        /// Highest validation accuracy (ties: lower log-loss).
        Accuracy => ["accuracy", "acc"],
    }
);

/// Plain fit parameters with a builder. Validate with [`FitParams::check`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitParams {
    /// Head kind.
    pub head: HeadKind,
    /// Hidden sizes to sweep (MLP only).
    pub hidden: Vec<usize>,
    /// Optimizer.
    pub solver: Solver,
    /// Inverse L2 strengths to sweep, scikit-learn meaning:
    /// objective = C * sum_i w_i CE_i + 0.5 ||W||^2 (biases unpenalized).
    pub c: Vec<f64>,
    /// Class weighting.
    pub class_weight: ClassWeight,
    /// Feature normalisation.
    pub normalize: Normalize,
    /// Fraction of images held out for validation when the cache gives no `val` split.
    pub val_fraction: f64,
    /// Seed of the hash split and of the stochastic solvers.
    pub seed: u64,
    /// Views used for training (`None`: all). Evaluation always uses `original`.
    pub views: Option<Vec<String>>,
    /// Drop held-out rows that duplicate (exactly or nearly) a training image.
    pub dedupe: bool,
    /// Cosine above which two images count as near-duplicates.
    pub near_dup_threshold: f32,
    /// Sweep selection criterion.
    pub select_by: SelectBy,
    /// L-BFGS: maximum iterations.
    pub max_iter: usize,
    /// L-BFGS: stop when ||grad|| <= tol * ||grad of the null model||.
    pub tol: f64,
    /// L-BFGS history size.
    pub lbfgs_memory: usize,
    /// L-BFGS: stop after this many iterations without validation log-loss
    /// improvement and keep the best iterate (0: off, run to `tol`/`max_iter`).
    pub lbfgs_patience: usize,
    /// Adam epochs run before L-BFGS for softmax (0: start from the class priors).
    pub warmup_epochs: usize,
    /// Adam: maximum epochs.
    pub max_epochs: usize,
    /// Adam: mini-batch size.
    pub batch_size: usize,
    /// Adam: learning rate.
    pub learning_rate: f64,
    /// Adam: epochs without validation improvement before stopping.
    pub patience: usize,
    /// How many most-confident mistakes the metrics list.
    pub n_mistakes: usize,
}

impl Default for FitParams {
    fn default() -> Self {
        FitParams {
            head: HeadKind::Softmax,
            hidden: vec![256],
            solver: Solver::Auto,
            c: vec![1.0],
            class_weight: ClassWeight::None,
            normalize: Normalize::Standard,
            val_fraction: 0.2,
            seed: 0,
            views: None,
            dedupe: false,
            near_dup_threshold: 0.98,
            select_by: SelectBy::LogLoss,
            max_iter: 100,
            tol: 1e-3,
            lbfgs_memory: 10,
            lbfgs_patience: 3,
            warmup_epochs: 0,
            max_epochs: 30,
            batch_size: 256,
            learning_rate: 1e-3,
            patience: 3,
            n_mistakes: 20,
        }
    }
}

macro_rules! setter {
    ($(#[$m:meta])* $name:ident: $ty:ty) => {
        $(#[$m])*
        pub fn $name(mut self, v: $ty) -> Self {
            self.$name = v;
            self
        }
    };
}

/// Largest hidden layer of an MLP head: its weights are D x H floats, and a size
/// beyond this is a typo, not a head (a billion units asked for 48 GB).
pub const MAX_HIDDEN: usize = 65_536;

impl FitParams {
    /// Defaults: softmax, auto solver, C = 1, standard normalisation, val 0.2, seed 0.
    pub fn new() -> Self {
        Self::default()
    }

    setter!(/// Head kind.
        head: HeadKind);
    setter!(/// Solver.
        solver: Solver);
    setter!(/// Class weighting.
        class_weight: ClassWeight);
    setter!(/// Normalisation.
        normalize: Normalize);
    setter!(/// Validation fraction in (0, 1).
        val_fraction: f64);
    setter!(/// Seed.
        seed: u64);
    setter!(/// Drop leaked held-out rows.
        dedupe: bool);
    setter!(/// Near-duplicate cosine threshold in (0, 1].
        near_dup_threshold: f32);
    setter!(/// Sweep selection criterion.
        select_by: SelectBy);
    setter!(/// L-BFGS iteration cap.
        max_iter: usize);
    setter!(/// L-BFGS relative gradient tolerance.
        tol: f64);
    setter!(/// L-BFGS history size.
        lbfgs_memory: usize);
    setter!(/// L-BFGS validation patience (0: off).
        lbfgs_patience: usize);
    setter!(/// Adam warm-up epochs before softmax L-BFGS.
        warmup_epochs: usize);
    setter!(/// Adam epoch cap.
        max_epochs: usize);
    setter!(/// Adam batch size.
        batch_size: usize);
    setter!(/// Adam learning rate.
        learning_rate: f64);
    setter!(/// Adam early-stopping patience (epochs).
        patience: usize);
    setter!(/// Number of confident mistakes to list.
        n_mistakes: usize);

    /// C values to sweep.
    pub fn c(mut self, c: impl IntoIterator<Item = f64>) -> Self {
        self.c = c.into_iter().collect();
        self
    }

    /// Hidden sizes to sweep (MLP).
    pub fn hidden(mut self, h: impl IntoIterator<Item = usize>) -> Self {
        self.hidden = h.into_iter().collect();
        self
    }

    /// Views used for training (`None`: all).
    pub fn views(mut self, views: Option<Vec<String>>) -> Self {
        self.views = views;
        self
    }

    /// The solver `auto` resolves to for this head.
    pub fn effective_solver(&self) -> Solver {
        match (self.solver, self.head) {
            (Solver::Auto, HeadKind::Mlp) => Solver::Adam,
            (Solver::Auto, _) => Solver::Lbfgs,
            (s, _) => s,
        }
    }

    /// Validates every value once.
    pub fn check(self) -> Result<CheckedFitParams, FitError> {
        if self.c.is_empty() {
            return Err(FitError::param("c", "give at least one value"));
        }
        for &c in &self.c {
            if !(c.is_finite() && c > 0.0) {
                return Err(FitError::param("c", format!("{c} is not finite and > 0")));
            }
        }
        if !(self.val_fraction > 0.0 && self.val_fraction < 1.0) {
            return Err(FitError::param(
                "val-fraction",
                format!("{} is not in (0, 1)", self.val_fraction),
            ));
        }
        if self.head == HeadKind::Mlp {
            if self.hidden.is_empty() {
                return Err(FitError::param("hidden", "give at least one size"));
            }
            if let Some(h) = self.hidden.iter().find(|&&h| h == 0 || h > MAX_HIDDEN) {
                return Err(FitError::param(
                    "hidden",
                    format!("{h} must be between 1 and {MAX_HIDDEN}"),
                ));
            }
        }
        if !(self.near_dup_threshold > 0.0 && self.near_dup_threshold <= 1.0) {
            return Err(FitError::param(
                "near-dup-threshold",
                format!("{} is not in (0, 1]", self.near_dup_threshold),
            ));
        }
        if self.max_iter == 0 {
            return Err(FitError::param("max-iter", "must be > 0"));
        }
        if !(self.tol.is_finite() && self.tol >= 0.0) {
            return Err(FitError::param("tol", format!("{} must be >= 0", self.tol)));
        }
        if self.lbfgs_memory == 0 {
            return Err(FitError::param("lbfgs-memory", "must be > 0"));
        }
        if self.max_epochs == 0 {
            return Err(FitError::param("max-epochs", "must be > 0"));
        }
        if self.batch_size == 0 {
            return Err(FitError::param("batch-size", "must be > 0"));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(FitError::param(
                "learning-rate",
                format!("{} is not finite and > 0", self.learning_rate),
            ));
        }
        if let Some(v) = &self.views
            && v.is_empty()
        {
            return Err(FitError::param("views", "give at least one view"));
        }
        let unsupported = |a: (&'static str, &'static str), b, reason| {
            Err(FitError::Unsupported {
                params: [a, b],
                reason,
            })
        };
        let solver = ("solver", self.solver.as_str());
        let head = ("head", self.head.as_str());
        // Regression (#22 item 17): ncm ignored C without a word.
        if self.head == HeadKind::Ncm && self.c != FitParams::new().c {
            return unsupported(
                ("c", "given"),
                head,
                "nearest class mean has no regularisation; drop --c",
            );
        }
        match (self.head, self.solver) {
            (HeadKind::Ncm, Solver::Auto) => {}
            (HeadKind::Ncm, _) => {
                return unsupported(solver, head, "nearest class mean has no solver");
            }
            (HeadKind::Mlp, Solver::Linfa) => {
                return unsupported(solver, head, "linfa fits softmax heads only");
            }
            (_, Solver::Linfa) if self.class_weight == ClassWeight::Balanced => {
                return unsupported(
                    ("class_weight", ClassWeight::Balanced.as_str()),
                    solver,
                    "linfa-logistic has no sample weights",
                );
            }
            _ => {}
        }
        Ok(CheckedFitParams(self))
    }
}

/// Parameters that passed [`FitParams::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedFitParams(FitParams);

impl CheckedFitParams {
    /// The validated values.
    pub fn params(&self) -> &FitParams {
        &self.0
    }
}

impl std::ops::Deref for CheckedFitParams {
    type Target = FitParams;
    fn deref(&self) -> &FitParams {
        &self.0
    }
}

/// Parses a comma-separated list such as `0.01,0.1,1,10`.
pub fn parse_list<T: FromStr>(what: &'static str, text: &str) -> Result<Vec<T>, FitError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<T>().map_err(|_| FitError::Parse {
                what,
                value: s.to_string(),
                expected: "a comma-separated list of numbers",
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_check() {
        let p = FitParams::new().check().unwrap();
        assert_eq!(p.effective_solver(), Solver::Lbfgs);
        assert_eq!(
            FitParams::new().head(HeadKind::Mlp).effective_solver(),
            Solver::Adam
        );
    }

    #[test]
    fn bad_values_are_rejected() {
        let bad = [
            FitParams::new().c([0.0]),
            FitParams::new().c([f64::NAN]),
            FitParams::new().c([1.0, -1.0]),
            FitParams::new().c([]),
            FitParams::new().val_fraction(0.0),
            FitParams::new().val_fraction(1.0),
            FitParams::new().head(HeadKind::Mlp).hidden([0]),
            FitParams::new().near_dup_threshold(1.5),
            FitParams::new().batch_size(0),
            FitParams::new().learning_rate(-1.0),
            FitParams::new().views(Some(vec![])),
        ];
        for p in bad {
            assert!(
                matches!(p.clone().check(), Err(FitError::InvalidParam { .. })),
                "{p:?}"
            );
        }
        assert!(matches!(
            FitParams::new()
                .head(HeadKind::Mlp)
                .solver(Solver::Linfa)
                .check(),
            Err(FitError::Unsupported { .. })
        ));
        assert!(matches!(
            FitParams::new()
                .solver(Solver::Linfa)
                .class_weight(ClassWeight::Balanced)
                .check(),
            Err(FitError::Unsupported { .. })
        ));
    }

    #[test]
    fn parsing() {
        assert_eq!("MLP".parse::<HeadKind>().unwrap(), HeadKind::Mlp);
        assert_eq!("l-bfgs".parse::<Solver>().unwrap(), Solver::Lbfgs);
        assert!("bogus".parse::<Normalize>().is_err());
        assert_eq!(
            parse_list::<f64>("c", "0.01, 0.1,1,10").unwrap(),
            vec![0.01, 0.1, 1.0, 10.0]
        );
        assert!(parse_list::<f64>("c", "1,x").is_err());
        assert_eq!(SelectBy::LogLoss.to_string(), "log-loss");
    }
}
