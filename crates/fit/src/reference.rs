//! `--solver linfa`: linfa-logistic's `MultiLogisticRegression` as a
//! reference solver. Its loss is `sum_i CE_i + alpha/2 ||W||^2` (a sum over
//! rows, bias unpenalised; see `multi_logistic_loss` in its lib.rs), i.e.
//! scikit-learn's objective divided by C, so `alpha = 1 / C`. It has no
//! sample weights and needs an owned f64 copy of the normalised training rows.

use linfa::Dataset;
use linfa::traits::Fit;
use linfa_logistic::MultiLogisticRegression;
use ndarray::{Array1, Array2};

use crate::FitError;
use crate::engine::Design;

/// Fits softmax parameters `[W (d x K), b]`; `warm` starts from given parameters.
pub(crate) fn fit_linfa(
    design: &Design,
    k: usize,
    c: f64,
    max_iter: usize,
    warm: Option<&[f32]>,
) -> Result<Vec<f32>, FitError> {
    let (n, d) = (design.n(), design.dim());
    let mut buf = Vec::new();
    let rows = design.rows_at(0..n, &mut buf);
    let x = Array2::from_shape_vec((n, d), rows.iter().map(|&v| f64::from(v)).collect())
        .map_err(|e| FitError::Linfa(e.to_string()))?;
    let y: Array1<usize> = design.y.iter().map(|&v| v as usize).collect();
    let ds = Dataset::new(x, y);
    let mut params = MultiLogisticRegression::default()
        .alpha(1.0 / c)
        .max_iterations(max_iter as u64);
    if let Some(w) = warm {
        // linfa's layout: (d + 1) x K, intercept in the last row.
        let init = Array2::from_shape_fn((d + 1, k), |(j, cc)| f64::from(w[j * k + cc]));
        params = params.initial_params(init);
    }
    let model = params
        .fit(&ds)
        .map_err(|e| FitError::Linfa(e.to_string()))?;
    let classes = model.classes();
    let (pw, pb) = (model.params(), model.intercept());
    let mut theta = vec![0.0f32; d * k + k];
    for (col, &cls) in classes.iter().enumerate() {
        for j in 0..d {
            theta[j * k + cls] = pw[[j, col]] as f32;
        }
        theta[d * k + cls] = pb[col] as f32;
    }
    Ok(theta)
}
