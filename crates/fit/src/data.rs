//! Table checks and helpers shared by fit and evaluate.

use headstart_cache::FeatureTable;

use crate::FitError;

pub use headstart_cache::{ORIGINAL_VIEW, is_original};

/// The error for a table without `original` rows, naming the views it has.
pub(crate) fn no_original_view(t: &FeatureTable) -> FitError {
    let views: std::collections::BTreeSet<&str> = t.views.iter().map(String::as_str).collect();
    FitError::NoOriginalView {
        views: views.into_iter().take(20).map(String::from).collect(),
    }
}

/// Checks that the table's columns agree in length and the dimension is sane.
pub fn check_table(t: &FeatureTable) -> Result<(), FitError> {
    let n = t.paths.len();
    let cols = [
        ("labels", t.labels.len()),
        ("splits", t.splits.len()),
        ("content_hashes", t.content_hashes.len()),
        ("views", t.views.len()),
    ];
    for (name, len) in cols {
        if len != n {
            return Err(FitError::InconsistentTable(format!(
                "{n} paths but {len} {name}"
            )));
        }
    }
    if n > 0 && t.dim == 0 {
        return Err(FitError::InconsistentTable("feature dimension is 0".into()));
    }
    if t.features.len() != n * t.dim {
        return Err(FitError::InconsistentTable(format!(
            "{} feature values for {n} rows of dimension {} (expected {})",
            t.features.len(),
            t.dim,
            n * t.dim
        )));
    }
    Ok(())
}

/// Errors when any of `rows` has a NaN or infinite feature; names the paths.
pub fn check_finite(t: &FeatureTable, rows: &[usize]) -> Result<(), FitError> {
    use rayon::prelude::*;
    let bad: Vec<usize> = rows
        .par_iter()
        .copied()
        // A fold, not `any`: without the early exit the check vectorises.
        .filter(|&r| !t.row(r).iter().fold(true, |ok, v| ok & v.is_finite()))
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    Err(FitError::NonFinite {
        count: bad.len(),
        paths: bad.iter().take(10).map(|&r| t.paths[r].clone()).collect(),
    })
}

/// Concatenates tables loaded from several caches, checking that feature
/// dimensions agree (and model fingerprints, when both are recorded).
/// `sources` names each table (e.g. its cache directory) for error messages.
pub fn merge_tables(tables: Vec<(String, FeatureTable)>) -> Result<FeatureTable, FitError> {
    let mut out = FeatureTable::default();
    let mut first: Option<(String, usize)> = None;
    let mut fp_source: Option<String> = None;
    for (source, t) in tables {
        check_table(&t)?;
        match &first {
            None => {
                out.dim = t.dim;
                first = Some((source.clone(), t.dim));
            }
            Some((fs, fd)) if *fd != t.dim => {
                return Err(FitError::MixedDims {
                    first_source: fs.clone(),
                    first_dim: *fd,
                    source_name: source,
                    dim: t.dim,
                });
            }
            _ => {}
        }
        if let Some(fp) = &t.model_fingerprint {
            match &out.model_fingerprint {
                None => {
                    out.model_fingerprint = Some(fp.clone());
                    out.model_name = t.model_name.clone();
                    fp_source = Some(source.clone());
                }
                Some(have) if have != fp => {
                    return Err(FitError::MixedModels {
                        first_source: fp_source
                            .clone()
                            .unwrap_or_else(|| "the first table".into()),
                        first: have.clone(),
                        source_name: source.clone(),
                        second: fp.clone(),
                    });
                }
                _ => {}
            }
        }
        out.paths.extend(t.paths);
        out.labels.extend(t.labels);
        out.splits.extend(t.splits);
        out.content_hashes.extend(t.content_hashes);
        out.views.extend(t.views);
        out.features.extend(t.features);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(dim: usize, n: usize) -> FeatureTable {
        FeatureTable {
            paths: (0..n).map(|i| format!("p{i}")).collect(),
            labels: vec![Some("a".into()); n],
            splits: vec![None; n],
            content_hashes: (0..n).map(|i| format!("h{i}")).collect(),
            views: vec!["original".into(); n],
            dim,
            features: vec![0.0; n * dim],
            model_fingerprint: None,
            model_name: None,
        }
    }

    #[test]
    fn merge_rejects_mixed_dims() {
        let err =
            merge_tables(vec![("a".into(), table(4, 2)), ("b".into(), table(5, 2))]).unwrap_err();
        match err {
            FitError::MixedDims {
                first_source,
                first_dim,
                source_name,
                dim,
            } => {
                assert_eq!((first_source.as_str(), first_dim), ("a", 4));
                assert_eq!((source_name.as_str(), dim), ("b", 5));
            }
            e => panic!("{e}"),
        }
        let m = merge_tables(vec![("a".into(), table(4, 2)), ("b".into(), table(4, 3))]).unwrap();
        assert_eq!(m.len(), 5);
        assert_eq!(m.features.len(), 20);
    }

    #[test]
    fn merge_rejects_mixed_fingerprints() {
        let mut a = table(4, 1);
        a.model_fingerprint = Some("fa".into());
        let mut b = table(4, 1);
        b.model_fingerprint = Some("fb".into());
        let e = merge_tables(vec![("a".into(), a), ("b".into(), b)]).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("fa") && msg.contains("fb"), "{msg}");
    }

    #[test]
    fn inconsistent_and_nonfinite() {
        let mut t = table(3, 2);
        t.features.pop();
        assert!(matches!(
            check_table(&t),
            Err(FitError::InconsistentTable(_))
        ));
        let mut t = table(3, 3);
        t.features[4] = f32::NAN;
        t.features[8] = f32::INFINITY;
        match check_finite(&t, &[0, 1, 2]).unwrap_err() {
            FitError::NonFinite { count, paths } => {
                assert_eq!(count, 2);
                assert_eq!(paths, vec!["p1".to_string(), "p2".to_string()]);
            }
            e => panic!("{e}"),
        }
    }
}
