//! Label audit: which labels are probably wrong, and which images sit in two
//! classes at once.
//!
//! 1. **Out-of-fold probabilities.** The labelled original-view rows are split
//!    into K stratified folds (duplicates of one image stay in one fold); a head
//!    is fitted on K-1 folds with the usual [`fit`](crate::fit) (its own
//!    validation split and C sweep) and predicts the held-out fold.
//! 2. **Confident learning** (Northcutt, Jiang and Chuang, JAIR 2021). Per class
//!    j, the threshold `t_j` is the mean out-of-fold probability of j over the
//!    rows labelled j. A row labelled i is confidently of class j when
//!    `p_j >= t_j`, taking the most probable such j; rows whose confident class
//!    is not their label are label issues. They are ranked by self-confidence
//!    (the probability of the given label, lowest first), and their score is
//!    `1 - p(given label)`.
//! 3. **Duplicates across classes**: pairs with the same content hash, or centred
//!    features with cosine at least the near-duplicate threshold, whose labels
//!    differ (the same search as the leak check).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use headstart_cache::FeatureTable;
use rayon::prelude::*;
use serde::Serialize;

use crate::leak::{self, LeakKind};
use crate::params::{CheckedFitParams, FitParams};
use crate::rng::Rng;
use crate::{FitError, is_original};

/// Parameters of [`audit`]; [`AuditParams::check`] validates them once.
#[derive(Debug, Clone)]
pub struct AuditParams {
    /// Number of folds (at least 2).
    pub folds: usize,
    /// Seed of the fold assignment.
    pub seed: u64,
    /// How each fold's head is fitted (its seed is used for the fold split too
    /// unless [`AuditParams::seed`] is set apart).
    pub fit: FitParams,
}

impl Default for AuditParams {
    fn default() -> Self {
        AuditParams {
            folds: 5,
            seed: 0,
            fit: FitParams::new(),
        }
    }
}

/// Validated [`AuditParams`].
#[derive(Debug, Clone)]
pub struct CheckedAuditParams {
    folds: usize,
    seed: u64,
    fit: CheckedFitParams,
}

/// Most folds [`AuditParams::check`] accepts (each fold fits a head).
pub const MAX_FOLDS: usize = 50;

impl AuditParams {
    /// Five folds, seed 0, the default fit.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates every value once.
    pub fn check(self) -> Result<CheckedAuditParams, FitError> {
        if !(2..=MAX_FOLDS).contains(&self.folds) {
            return Err(FitError::param(
                "folds",
                format!("{} is out of range; use 2 to {MAX_FOLDS}", self.folds),
            ));
        }
        Ok(CheckedAuditParams {
            folds: self.folds,
            seed: self.seed,
            fit: self.fit.check()?,
        })
    }
}

/// One probably mislabelled image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelIssue {
    /// Image path (as in the cache).
    pub path: String,
    /// Its content hash (for finding the very image; not in the outputs).
    #[serde(skip)]
    pub content_hash: String,
    /// The label the data gives.
    pub given: String,
    /// The class confident learning assigns.
    pub suggested: String,
    /// `1 - p(given)`: higher is more likely wrong.
    pub score: f64,
    /// Out-of-fold probability of the given label.
    pub p_given: f64,
    /// Out-of-fold probability of the suggested class.
    pub p_suggested: f64,
}

/// Two images with different labels that are the same image or nearly.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CrossClassDuplicate {
    /// One image.
    pub path: String,
    /// Its content hash (not in the outputs).
    #[serde(skip)]
    pub content_hash: String,
    /// Its label.
    pub label: String,
    /// The other image.
    pub other_path: String,
    /// Its content hash (not in the outputs).
    #[serde(skip)]
    pub other_content_hash: String,
    /// Its label.
    pub other_label: String,
    /// Same bytes, or near-identical features.
    pub kind: LeakKind,
    /// Cosine of the centred features (1 for exact duplicates).
    pub cosine: f32,
}

/// What [`audit`] found.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// Labelled original-view rows audited.
    pub rows: usize,
    /// Folds used.
    pub folds: usize,
    /// Rows whose fold's head never saw their class (too few images of it):
    /// neither flagged nor counted in the thresholds.
    pub unjudged: usize,
    /// Classes some fold's head never saw (fewer images than folds, or all in
    /// one fold): they are not suggested for rows of those folds.
    pub small_classes: Vec<String>,
    /// Class names, index order.
    pub classes: Vec<String>,
    /// Accuracy of the out-of-fold predictions against the given labels.
    pub oof_accuracy: f64,
    /// Per-class confidence thresholds `t_j`.
    pub thresholds: Vec<f64>,
    /// `confident_joint[given][confident class]` counts (rows with no
    /// confident class are not counted).
    pub confident_joint: Vec<Vec<usize>>,
    /// Probable label errors, most likely first.
    pub issues: Vec<LabelIssue>,
    /// Near-duplicate cosine threshold used.
    pub near_dup_threshold: f32,
    /// Duplicates whose labels differ, exact ones first.
    pub duplicates: Vec<CrossClassDuplicate>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// File names an audit writes into its folder.
pub const ISSUES_CSV: &str = "label_issues.csv";
/// The whole audit as JSON (the folder's marker).
pub const AUDIT_JSON: &str = "audit.json";
/// The audit page.
pub const AUDIT_HTML: &str = "audit.html";

/// An audit folder: `audit.json` marks it; the CSV, JSON and page are its artifacts.
pub const AUDIT_SET: headstart_files::SetKind = headstart_files::SetKind {
    what: "audit",
    marker: AUDIT_JSON,
    is_artifact: |n| [ISSUES_CSV, AUDIT_JSON, AUDIT_HTML].contains(&n),
    is_marker: |b| {
        serde_json::from_slice::<serde_json::Value>(b)
            .is_ok_and(|v| v.get("confident_joint").is_some() && v.get("thresholds").is_some())
    },
};

impl AuditReport {
    /// Saves `label_issues.csv`, `audit.json` and `html` (as `audit.html`)
    /// into `dir` as one artifact set ([`AUDIT_SET`]): a kill at any instant
    /// leaves the previous audit or this one, never a mix. Refuses a folder
    /// that is not an audit as [`crate::FitOutcome::save`] refuses one that
    /// is not a head. Returns the folder written.
    pub fn save(&self, dir: &Path, force: bool, html: Option<&str>) -> Result<PathBuf, FitError> {
        AUDIT_SET.publish(dir, force, false, |tmp| {
            let write = |name: &str, bytes: &[u8]| {
                let p = tmp.join(name);
                std::fs::write(&p, bytes).map_err(|e| FitError::io(&p, e))
            };
            write(ISSUES_CSV, &self.issues_csv())?;
            let json = serde_json::to_vec_pretty(self).map_err(|e| FitError::Json {
                path: tmp.join(AUDIT_JSON),
                source: e,
            })?;
            write(AUDIT_JSON, &json)?;
            html.map_or(Ok(()), |h| write(AUDIT_HTML, h.as_bytes()))
        })
    }

    /// `label_issues.csv`: path, given_label, suggested_label, score.
    pub fn issues_csv(&self) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut rows = vec![["path", "given_label", "suggested_label", "score"].map(String::from)];
        rows.extend(self.issues.iter().map(|i| {
            [
                i.path.clone(),
                i.given.clone(),
                i.suggested.clone(),
                format!("{:.6}", i.score),
            ]
        }));
        for r in rows {
            // Writing into a Vec cannot fail.
            let _ = w.write_record(&r);
        }
        w.into_inner().unwrap_or_default()
    }
}

/// Audits the labels of `table` (see the module docs).
pub fn audit(table: &FeatureTable, params: &CheckedAuditParams) -> Result<AuditReport, FitError> {
    let t0 = Instant::now();
    crate::check_table(table)?;
    let rows: Vec<usize> = (0..table.len())
        .filter(|&r| table.labels[r].is_some() && is_original(&table.views[r]))
        .collect();
    crate::data::check_finite(table, &rows)?;
    let mut classes: Vec<String> = rows
        .iter()
        .filter_map(|&r| table.labels[r].clone())
        .collect();
    classes.sort();
    classes.dedup();
    if classes.len() < 2 {
        return Err(FitError::TooFewClasses {
            found: classes.len(),
            classes,
        });
    }
    let index: HashMap<&str, u32> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i as u32))
        .collect();
    let y: Vec<u32> = rows
        .iter()
        .map(|&r| index[table.labels[r].as_deref().unwrap_or_default()])
        .collect();
    let k = classes.len();
    let fold = assign_folds(table, &rows, &y, k, params.folds, params.seed);

    // Out-of-fold probabilities, in `rows` order; which classes each fold's head knows
    // (a class whose images all sit in one fold is unknown to that fold's head).
    let mut probs = vec![0f32; rows.len() * k];
    let mut knows = vec![vec![false; k]; params.folds];
    for (f, knows_f) in knows.iter_mut().enumerate() {
        let (inside, outside): (Vec<usize>, Vec<usize>) =
            (0..rows.len()).partition(|&i| fold[i] == f);
        if inside.is_empty() {
            continue;
        }
        let sub = subtable(table, outside.iter().map(|&i| rows[i]));
        let outcome = crate::fit(&sub, &params.fit)?;
        let head = &outcome.head;
        // The fold's head may not know a class that only the held-out fold has.
        let map: Vec<Option<usize>> = head
            .class_names()
            .iter()
            .map(|c| index.get(c.as_str()).map(|&i| i as usize))
            .collect();
        for &m in map.iter().flatten() {
            knows_f[m] = true;
        }
        let d = table.dim;
        let mut x = Vec::with_capacity(inside.len() * d);
        for &i in &inside {
            x.extend_from_slice(table.row(rows[i]));
        }
        let p = head.try_predict_proba(&x, inside.len())?;
        let hk = head.n_classes();
        for (j, &i) in inside.iter().enumerate() {
            for (c, m) in map.iter().enumerate() {
                if let Some(m) = m {
                    probs[i * k + m] = p[j * hk + c];
                }
            }
        }
    }

    let known = |i: usize, c: usize| knows[fold[i]][c];
    let (thresholds, confident_joint, mut issues, correct) =
        confident_learning(&probs, &y, k, &known);
    let unjudged = (0..rows.len())
        .filter(|&i| !known(i, y[i] as usize))
        .count();
    let mut small_classes: Vec<String> = (0..k)
        .filter(|&c| (0..params.folds).any(|f| !knows[f][c]))
        .map(|c| classes[c].clone())
        .collect();
    small_classes.sort();
    issues.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let issues = issues
        .into_iter()
        .map(|(i, score, suggested)| LabelIssue {
            path: table.paths[rows[i]].clone(),
            content_hash: table.content_hashes[rows[i]].clone(),
            given: classes[y[i] as usize].clone(),
            suggested: classes[suggested].clone(),
            score,
            p_given: f64::from(probs[i * k + y[i] as usize]),
            p_suggested: f64::from(probs[i * k + suggested]),
        })
        .collect();
    let threshold = params.fit.params().near_dup_threshold;
    let duplicates = cross_class_duplicates(table, &rows, &y, &classes, threshold);
    Ok(AuditReport {
        rows: rows.len(),
        folds: params.folds,
        unjudged,
        small_classes,
        classes,
        oof_accuracy: correct as f64 / rows.len().max(1) as f64,
        thresholds,
        confident_joint,
        issues,
        near_dup_threshold: threshold,
        duplicates,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Stratified folds: each class's rows shuffled (seeded) and dealt round-robin;
/// rows with the same content hash follow the first of them.
fn assign_folds(
    table: &FeatureTable,
    rows: &[usize],
    y: &[u32],
    k: usize,
    folds: usize,
    seed: u64,
) -> Vec<usize> {
    let mut rng = Rng::new(seed ^ 0xa0d1_7f01d);
    let mut per_class: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (i, &c) in y.iter().enumerate() {
        per_class[c as usize].push(i);
    }
    let mut fold = vec![0usize; rows.len()];
    let mut next = 0usize;
    for members in &mut per_class {
        for i in (1..members.len()).rev() {
            members.swap(i, rng.below(i + 1));
        }
        for &i in members.iter() {
            fold[i] = next % folds;
            next += 1;
        }
    }
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (i, &r) in rows.iter().enumerate() {
        let h = table.content_hashes[r].as_str();
        if h.is_empty() {
            continue;
        }
        let f = *first.entry(h).or_insert(fold[i]);
        fold[i] = f;
    }
    fold
}

/// A table of the given rows, without splits (the fit makes its own).
fn subtable(t: &FeatureTable, rows: impl Iterator<Item = usize>) -> FeatureTable {
    let mut s = FeatureTable {
        dim: t.dim,
        model_fingerprint: t.model_fingerprint.clone(),
        model_name: t.model_name.clone(),
        ..FeatureTable::default()
    };
    for r in rows {
        s.paths.push(t.paths[r].clone());
        s.labels.push(t.labels[r].clone());
        s.splits.push(None);
        s.content_hashes.push(t.content_hashes[r].clone());
        s.views.push(t.views[r].clone());
        s.features.extend_from_slice(t.row(r));
    }
    s
}

/// Thresholds, confident joint, issues as `(row, score, confident class)`
/// (unsorted) and the number of rows whose argmax is their label.
#[allow(clippy::type_complexity)]
fn confident_learning(
    probs: &[f32],
    y: &[u32],
    k: usize,
    known: &dyn Fn(usize, usize) -> bool,
) -> (Vec<f64>, Vec<Vec<usize>>, Vec<(usize, f64, usize)>, usize) {
    let (mut sum, mut count) = (vec![0f64; k], vec![0usize; k]);
    for (i, (row, &c)) in probs.chunks_exact(k).zip(y).enumerate() {
        if known(i, c as usize) {
            sum[c as usize] += f64::from(row[c as usize]);
            count[c as usize] += 1;
        }
    }
    let thresholds: Vec<f64> = sum
        .iter()
        .zip(&count)
        .map(|(s, &n)| if n > 0 { s / n as f64 } else { f64::INFINITY })
        .collect();
    let mut joint = vec![vec![0usize; k]; k];
    let mut issues = Vec::new();
    let mut correct = 0usize;
    for (i, (row, &c)) in probs.chunks_exact(k).zip(y).enumerate() {
        let argmax = (0..k)
            .max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
            .unwrap_or(0);
        correct += usize::from(argmax == c as usize);
        if !known(i, c as usize) {
            continue;
        }
        let confident = (0..k)
            .filter(|&j| known(i, j) && f64::from(row[j]) >= thresholds[j])
            .max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)));
        if let Some(j) = confident {
            joint[c as usize][j] += 1;
            if j != c as usize {
                issues.push((i, 1.0 - f64::from(row[c as usize]), j));
            }
        }
    }
    (thresholds, joint, issues, correct)
}

/// Pairs of audited rows with different labels that are exact or near duplicates.
fn cross_class_duplicates(
    t: &FeatureTable,
    rows: &[usize],
    y: &[u32],
    classes: &[String],
    threshold: f32,
) -> Vec<CrossClassDuplicate> {
    let class_of: HashMap<usize, u32> = rows.iter().copied().zip(y.iter().copied()).collect();
    let mut seen: std::collections::HashSet<(usize, usize)> = std::collections::HashSet::new();
    let mut out = Vec::new();
    let mut push = |a: usize, b: usize, kind: LeakKind, cosine: f32| {
        let key = (a.min(b), a.max(b));
        if seen.insert(key) {
            out.push(CrossClassDuplicate {
                path: t.paths[key.0].clone(),
                content_hash: t.content_hashes[key.0].clone(),
                label: classes[class_of[&key.0] as usize].clone(),
                other_path: t.paths[key.1].clone(),
                other_content_hash: t.content_hashes[key.1].clone(),
                other_label: classes[class_of[&key.1] as usize].clone(),
                kind,
                cosine,
            });
        }
    };
    let mut by_hash: HashMap<&str, Vec<usize>> = HashMap::new();
    for &r in rows {
        let h = t.content_hashes[r].as_str();
        if !h.is_empty() {
            by_hash.entry(h).or_default().push(r);
        }
    }
    let mut exact_rows = std::collections::HashSet::new();
    let mut groups: Vec<&Vec<usize>> = by_hash.values().collect();
    groups.sort();
    for g in groups {
        for (i, &a) in g.iter().enumerate() {
            for &b in &g[i + 1..] {
                if class_of[&a] != class_of[&b] {
                    push(a, b, LeakKind::Exact, 1.0);
                    exact_rows.extend([a, b]);
                }
            }
        }
    }
    if t.dim > 0 && rows.len() > 1 {
        let center = leak::mean(t, rows);
        let skip = |q: usize, r: usize| class_of[&q] == class_of[&r];
        let work = rows.len() as f64 * rows.len() as f64 * t.dim as f64;
        let best = match leak::bands_for(threshold) {
            Some(l) if work > leak::EXACT_BUDGET => {
                leak::near_lsh(t, rows, rows, &center, threshold, l, skip)
            }
            _ => leak::near_exact(t, rows, rows, &center, skip),
        };
        let mut near: Vec<(usize, usize, f32)> = rows
            .par_iter()
            .zip(best)
            .filter(|(q, (cos, r))| {
                *cos >= threshold && !(exact_rows.contains(*q) && exact_rows.contains(r))
            })
            .map(|(&q, (cos, r))| (q, r, cos))
            .collect();
        near.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
        for (q, r, cos) in near {
            push(q, r, LeakKind::Near, cos);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three well-separated classes with `flip` labels swapped to another class.
    fn noisy(n_per: usize, flips: &[usize]) -> FeatureTable {
        let mut rng = Rng::new(7);
        let mut t = FeatureTable {
            dim: 32,
            ..FeatureTable::default()
        };
        for i in 0..3 * n_per {
            let c = i % 3;
            let mut x = [0f32; 32];
            x[c] = 4.0;
            x.iter_mut().for_each(|v| *v += rng.normal() as f32 * 0.5);
            let label = if flips.contains(&i) { (c + 1) % 3 } else { c };
            t.paths.push(format!("img{i}"));
            t.labels.push(Some(format!("class{label}")));
            t.splits.push(None);
            t.content_hashes.push(format!("h{i}"));
            t.views.push("original".into());
            t.features.extend_from_slice(&x);
        }
        t
    }

    #[test]
    fn flipped_labels_rank_first() {
        let flips = [3, 17, 40, 58, 101, 150];
        let t = noisy(60, &flips);
        let p = AuditParams::new().check().unwrap();
        let r = audit(&t, &p).unwrap();
        assert_eq!(r.rows, 180);
        let top: Vec<&str> = r
            .issues
            .iter()
            .take(flips.len())
            .map(|i| i.path.as_str())
            .collect();
        for f in flips {
            assert!(top.contains(&format!("img{f}").as_str()), "{top:?}");
        }
        // The suggestion is the class the features say.
        let i = r.issues.iter().find(|i| i.path == "img3").unwrap();
        assert_eq!(
            (i.given.as_str(), i.suggested.as_str()),
            ("class1", "class0")
        );
        assert!(r.oof_accuracy > 0.9, "{}", r.oof_accuracy);
        assert!(r.duplicates.is_empty(), "{:?}", r.duplicates);
    }

    #[test]
    fn duplicates_across_classes_are_found_once() {
        let mut t = noisy(20, &[]);
        // Row 1 (class1) gets row 0's bytes; row 2 (class2) is row 0's features.
        t.content_hashes[1] = t.content_hashes[0].clone();
        let x0 = t.row(0).to_vec();
        t.features[2 * 32..3 * 32].copy_from_slice(&x0);
        // Same label, same bytes: not a cross-class duplicate.
        t.content_hashes[6] = t.content_hashes[3].clone();
        let p = AuditParams::new().check().unwrap();
        let r = audit(&t, &p).unwrap();
        let pairs: Vec<(&str, &str, LeakKind)> = r
            .duplicates
            .iter()
            .map(|d| (d.path.as_str(), d.other_path.as_str(), d.kind))
            .collect();
        assert!(
            pairs.contains(&("img0", "img1", LeakKind::Exact)),
            "{pairs:?}"
        );
        assert!(
            pairs.contains(&("img0", "img2", LeakKind::Near)),
            "{pairs:?}"
        );
        assert!(
            !pairs
                .iter()
                .any(|p| p.0 == "img3" || p.1 == "img3" || p.1 == "img6"),
            "{pairs:?}"
        );
    }

    /// Regression: a class with one image is unknown to its fold's head, so its
    /// threshold was 0 and every other row was "confidently" of that class.
    #[test]
    fn a_class_with_one_image_does_not_flood_the_issues() {
        let mut t = noisy(30, &[4]);
        t.labels[0] = Some("lonely".into());
        let r = audit(&t, &AuditParams::new().check().unwrap()).unwrap();
        assert!(
            r.issues.iter().all(|i| i.suggested != "lonely"),
            "{:?}",
            r.issues
        );
        assert!(r.issues.len() <= 3, "{:?}", r.issues);
        assert_eq!(r.small_classes, ["lonely"]);
        assert_eq!(r.unjudged, 1);
    }

    #[test]
    fn folds_are_checked_once() {
        let e = AuditParams {
            folds: 1,
            ..AuditParams::new()
        }
        .check()
        .unwrap_err();
        assert!(e.to_string().contains("folds"), "{e}");
    }
}
