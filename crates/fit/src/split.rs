//! Train / validation / test assignment.
//!
//! The `split` column wins when present. Rows without one (and, when no row
//! is marked `val`, the `train` rows too) are split by a stable hash:
//! `u = hash(seed, content_hash)` mapped to [0, 1), validation when
//! `u < val_fraction`. So adding images never moves existing ones, identical
//! files land together, and every class is held out at the same rate
//! (stratified in expectation). One exception keeps fits possible: a class
//! whose every hash-split image falls into validation keeps its highest-`u`
//! image in train. Augmented views of held-out images are never trained on.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use headstart_cache::FeatureTable;
use serde::{Deserialize, Serialize};

use crate::FitError;
use crate::data::is_original;
use crate::rng::{stable_hash, unit_interval};

/// The split a row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Training.
    Train,
    /// Validation (early stopping, sweep selection, reported metrics).
    Val,
    /// Test (reported metrics only).
    Test,
}

impl Role {
    /// Parses a `split` value (`val`, `valid` and `validation` mean validation).
    pub fn parse(s: &str) -> Option<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "train" | "training" => Some(Role::Train),
            "val" | "valid" | "validation" => Some(Role::Val),
            "test" => Some(Role::Test),
            _ => None,
        }
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Train => "train",
            Role::Val => "val",
            Role::Test => "test",
        }
    }
}

/// Where validation rows came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValSource {
    /// Rows marked `val` in the cache.
    Given,
    /// Held out by the content-hash split.
    Hash,
}

/// Row counts of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassCounts {
    /// Class label.
    pub class: String,
    /// Training rows (all training views).
    pub train: usize,
    /// Validation rows (original view).
    pub val: usize,
    /// Test rows (original view).
    pub test: usize,
}

/// What the split did, for printing and metrics.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitSummary {
    /// Rows used for training (all selected views).
    pub train_rows: usize,
    /// Distinct images (content hashes) among training rows.
    pub train_images: usize,
    /// Validation rows (original view).
    pub val_rows: usize,
    /// Test rows (original view).
    pub test_rows: usize,
    /// Where validation came from.
    pub val_source: ValSource,
    /// Unlabeled rows, ignored by fit.
    pub unlabeled_skipped: usize,
    /// Augmented rows not used: filtered by `--views`, held-out views, or views of held-out images.
    pub views_excluded: usize,
    /// Held-out rows dropped as duplicates of training images (`--dedupe`).
    pub deduped: usize,
    /// Per-class counts, in class index order.
    pub per_class: Vec<ClassCounts>,
}

/// The resolved split: table row indices per role and the class index.
#[derive(Debug, Clone)]
pub(crate) struct SplitPlan {
    /// Sorted class names.
    pub classes: Vec<String>,
    /// Class index of each table row (None: unlabeled).
    pub class_of: Vec<Option<u32>>,
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
    pub summary: SplitSummary,
}

impl SplitPlan {
    /// The class index of each of `rows` (0 for an unlabeled row; no split
    /// holds one).
    pub fn labels(&self, rows: &[usize]) -> Vec<u32> {
        rows.iter()
            .map(|&r| self.class_of[r].unwrap_or(0))
            .collect()
    }
}

/// Grouping key of a row: its content hash, or its path when the hash is missing.
pub(crate) fn group_key(t: &FeatureTable, r: usize) -> &str {
    let h = t.content_hashes[r].as_str();
    if h.is_empty() { t.paths[r].as_str() } else { h }
}

/// The hash-split coordinate of a group key.
pub(crate) fn split_coordinate(seed: u64, key: &str) -> f64 {
    unit_interval(stable_hash(seed, key))
}

#[allow(clippy::needless_range_loop)] // parallel per-row columns
pub(crate) fn plan(
    t: &FeatureTable,
    val_fraction: f64,
    seed: u64,
    views: Option<&[String]>,
) -> Result<SplitPlan, FitError> {
    let n = t.len();
    // A misspelt view would silently train without augmentation.
    if let Some(vs) = views {
        let stored: BTreeSet<&str> = t.views.iter().map(String::as_str).collect();
        if let Some(v) = vs.iter().find(|v| !stored.contains(v.as_str())) {
            return Err(FitError::param(
                "views",
                format!(
                    "no row has view `{v}`; the features have: {}",
                    stored.into_iter().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    // Held-out rows are `original` views: without any, validation would be
    // empty for a reason that --val-fraction cannot fix.
    if n > 0 && !t.views.iter().any(|v| is_original(v)) {
        return Err(crate::data::no_original_view(t));
    }
    // 1. Given splits of labeled rows.
    let mut given: Vec<Option<Role>> = vec![None; n];
    let mut unlabeled = 0usize;
    for r in 0..n {
        if t.labels[r].is_none() {
            unlabeled += 1;
            continue;
        }
        if let Some(s) = t.splits[r].as_deref().filter(|s| !s.trim().is_empty()) {
            given[r] = Some(Role::parse(s).ok_or_else(|| FitError::UnknownSplit {
                value: s.to_string(),
                path: t.paths[r].clone(),
            })?);
        }
    }
    let any_given_val = given.contains(&Some(Role::Val));
    let val_source = if any_given_val {
        ValSource::Given
    } else {
        ValSource::Hash
    };

    // 2. Hash assignment.
    let mut role: Vec<Option<Role>> = given.clone();
    let mut assignable = vec![false; n];
    let mut coord: Vec<f64> = vec![0.0; n];
    for r in 0..n {
        if t.labels[r].is_none() {
            continue;
        }
        let can = match given[r] {
            None => true,
            Some(Role::Train) => !any_given_val,
            Some(_) => false,
        };
        if can {
            assignable[r] = true;
            coord[r] = split_coordinate(seed, group_key(t, r));
            role[r] = Some(if coord[r] < val_fraction {
                Role::Val
            } else {
                Role::Train
            });
        }
    }

    // 3. Keep at least one image of every class in train when the hash split
    // alone would hold all of them out.
    let mut class_has_train: HashMap<&str, bool> = HashMap::new();
    let mut best_group: HashMap<&str, (f64, &str)> = HashMap::new();
    for r in 0..n {
        let Some(label) = t.labels[r].as_deref() else {
            continue;
        };
        let e = class_has_train.entry(label).or_insert(false);
        *e |= role[r] == Some(Role::Train);
        if assignable[r] {
            let key = group_key(t, r);
            let b = best_group.entry(label).or_insert((coord[r], key));
            if coord[r] > b.0 {
                *b = (coord[r], key);
            }
        }
    }
    let rescue: HashSet<&str> = best_group
        .iter()
        .filter(|(label, _)| !class_has_train[*label])
        .map(|(_, (_, key))| *key)
        .collect();
    if !rescue.is_empty() {
        for r in 0..n {
            if assignable[r] && rescue.contains(group_key(t, r)) {
                role[r] = Some(Role::Train);
            }
        }
    }

    // 4. Views: held-out images' augmented views are never trained on.
    let held_out_keys: HashSet<&str> = (0..n)
        .filter(|&r| matches!(role[r], Some(Role::Val | Role::Test)) && is_original(&t.views[r]))
        .map(|r| group_key(t, r))
        .collect();
    let view_ok = |v: &str| views.is_none_or(|vs| vs.iter().any(|x| x == v));
    let (mut train, mut val, mut test) = (Vec::new(), Vec::new(), Vec::new());
    let mut views_excluded = 0usize;
    for r in 0..n {
        let Some(ro) = role[r] else { continue };
        let orig = is_original(&t.views[r]);
        match ro {
            Role::Train => {
                if view_ok(&t.views[r]) && (orig || !held_out_keys.contains(group_key(t, r))) {
                    train.push(r);
                } else {
                    views_excluded += 1;
                }
            }
            Role::Val if orig => val.push(r),
            Role::Test if orig => test.push(r),
            _ => views_excluded += 1,
        }
    }

    // 5. Classes.
    let labels: BTreeSet<&str> = train
        .iter()
        .chain(&val)
        .chain(&test)
        .filter_map(|&r| t.labels[r].as_deref())
        .collect();
    let classes: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
    if classes.len() < 2 {
        return Err(FitError::TooFewClasses {
            found: classes.len(),
            classes,
        });
    }
    if train.is_empty() {
        return Err(FitError::NoTrainingRows);
    }
    let index: BTreeMap<&str, u32> = labels
        .iter()
        .enumerate()
        .map(|(i, s)| (*s, i as u32))
        .collect();
    let class_of: Vec<Option<u32>> = t
        .labels
        .iter()
        .map(|l| l.as_deref().and_then(|l| index.get(l).copied()))
        .collect();
    let mut per_class: Vec<ClassCounts> = classes
        .iter()
        .map(|c| ClassCounts {
            class: c.clone(),
            train: 0,
            val: 0,
            test: 0,
        })
        .collect();
    for (rows, f) in [(&train, 0usize), (&val, 1), (&test, 2)] {
        for &r in rows.iter() {
            if let Some(c) = class_of[r] {
                let cc = &mut per_class[c as usize];
                *[&mut cc.train, &mut cc.val, &mut cc.test][f] += 1;
            }
        }
    }
    if let Some(cc) = per_class.iter().find(|c| c.train == 0) {
        let example = val
            .iter()
            .chain(&test)
            .find(|&&r| t.labels[r].as_deref() == Some(cc.class.as_str()))
            .map(|&r| t.paths[r].clone())
            .unwrap_or_default();
        return Err(FitError::EmptyClass {
            class: cc.class.clone(),
            held_out: cc.val + cc.test,
            example_path: example,
        });
    }
    let train_images = train
        .iter()
        .map(|&r| group_key(t, r))
        .collect::<HashSet<_>>()
        .len();
    let summary = SplitSummary {
        train_rows: train.len(),
        train_images,
        val_rows: val.len(),
        test_rows: test.len(),
        val_source,
        unlabeled_skipped: unlabeled,
        views_excluded,
        deduped: 0,
        per_class,
    };
    Ok(SplitPlan {
        classes,
        class_of,
        train,
        val,
        test,
        summary,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A table of `per_class` images for each class, one row each, no features.
    pub(crate) fn images(classes: &[&str], per_class: usize, prefix: &str) -> FeatureTable {
        let mut t = FeatureTable {
            dim: 1,
            ..Default::default()
        };
        for c in classes {
            for i in 0..per_class {
                t.paths.push(format!("{c}/{prefix}{i}.jpg"));
                t.labels.push(Some(c.to_string()));
                t.splits.push(None);
                t.content_hashes.push(format!("{prefix}-{c}-{i}"));
                t.views.push("original".into());
                t.features.push(0.0);
            }
        }
        t
    }

    fn push(
        t: &mut FeatureTable,
        path: &str,
        label: &str,
        split: Option<&str>,
        hash: &str,
        view: &str,
    ) {
        t.paths.push(path.into());
        t.labels.push(Some(label.into()));
        t.splits.push(split.map(String::from));
        t.content_hashes.push(hash.into());
        t.views.push(view.into());
        t.features.push(0.0);
    }

    fn roles(t: &FeatureTable, p: &SplitPlan) -> HashMap<String, &'static str> {
        let mut m = HashMap::new();
        for (rows, name) in [(&p.train, "train"), (&p.val, "val"), (&p.test, "test")] {
            for &r in rows.iter() {
                m.insert(t.paths[r].clone(), name);
            }
        }
        m
    }

    #[test]
    fn adding_files_never_moves_existing_ones() {
        let a = images(&["cat", "dog", "eel"], 200, "a");
        let pa = plan(&a, 0.2, 7, None).unwrap();
        let mut b = images(&["cat", "dog", "eel", "fox"], 150, "b");
        // b = new images + all of a, in another order.
        for r in (0..a.len()).rev() {
            push(
                &mut b,
                &a.paths[r],
                a.labels[r].as_deref().unwrap(),
                None,
                &a.content_hashes[r],
                "original",
            );
        }
        let pb = plan(&b, 0.2, 7, None).unwrap();
        let (ra, rb) = (roles(&a, &pa), roles(&b, &pb));
        for (path, role) in &ra {
            assert_eq!(rb[path], *role, "{path} moved");
        }
        // Another seed gives another split.
        let pc = plan(&a, 0.2, 8, None).unwrap();
        assert_ne!(pa.val, pc.val);
    }

    #[test]
    fn split_is_stratified() {
        let t = images(&["a", "b", "c", "d"], 500, "x");
        let p = plan(&t, 0.2, 0, None).unwrap();
        for cc in &p.summary.per_class {
            let frac = cc.val as f64 / (cc.train + cc.val) as f64;
            assert!((frac - 0.2).abs() < 0.05, "{}: {frac}", cc.class);
        }
        assert_eq!(p.summary.val_source, ValSource::Hash);
    }

    #[test]
    fn duplicates_and_views_stay_together() {
        let mut t = images(&["a", "b"], 100, "x");
        // Each image gets a duplicate file (same hash, other path) and an hflip view.
        for r in 0..t.len() {
            let (p, l, h) = (
                t.paths[r].clone(),
                t.labels[r].clone().unwrap(),
                t.content_hashes[r].clone(),
            );
            push(&mut t, &format!("{p}.copy"), &l, None, &h, "original");
            push(&mut t, &p, &l, None, &h, "hflip");
        }
        let p = plan(&t, 0.3, 1, None).unwrap();
        let train: HashSet<&str> = p
            .train
            .iter()
            .map(|&r| t.content_hashes[r].as_str())
            .collect();
        for &r in p.val.iter().chain(&p.test) {
            assert!(!train.contains(t.content_hashes[r].as_str()));
        }
        // Both copies of every validation image are in validation.
        assert_eq!(p.val.len() % 2, 0);
        // Training uses the hflip views of train images only.
        assert!(p.train.iter().any(|&r| t.views[r] == "hflip"));
        assert_eq!(p.summary.views_excluded, p.val.len() / 2);
        // --views original drops the hflip rows from training.
        let only = vec!["original".to_string()];
        let p2 = plan(&t, 0.3, 1, Some(&only)).unwrap();
        assert!(p2.train.iter().all(|&r| t.views[r] == "original"));
        assert_eq!(p2.val, p.val);
        // Regression: a misspelt view silently trained without augmentation.
        let typo = vec!["original".to_string(), "hlfip".to_string()];
        let e = plan(&t, 0.3, 1, Some(&typo)).unwrap_err().to_string();
        assert!(
            e.contains("no row has view `hlfip`; the features have: hflip, original"),
            "{e}"
        );
    }

    #[test]
    fn given_split_wins_and_views_of_test_images_are_not_trained() {
        let mut t = FeatureTable {
            dim: 1,
            ..Default::default()
        };
        for i in 0..20 {
            let c = if i % 2 == 0 { "a" } else { "b" };
            let s = match i % 5 {
                0 => "test",
                1 => "Validation",
                _ => "train",
            };
            push(
                &mut t,
                &format!("{i}"),
                c,
                Some(s),
                &format!("h{i}"),
                "original",
            );
            // The augmented view was (wrongly) marked train.
            push(
                &mut t,
                &format!("{i}"),
                c,
                Some("train"),
                &format!("h{i}"),
                "hflip",
            );
        }
        let p = plan(&t, 0.2, 0, None).unwrap();
        assert_eq!(p.summary.val_source, ValSource::Given);
        assert_eq!(p.test.len(), 4);
        assert_eq!(p.val.len(), 4);
        assert_eq!(p.train.len(), 24);
        let held: HashSet<&str> = p
            .val
            .iter()
            .chain(&p.test)
            .map(|&r| t.content_hashes[r].as_str())
            .collect();
        assert!(
            p.train
                .iter()
                .all(|&r| !held.contains(t.content_hashes[r].as_str()))
        );
    }

    #[test]
    fn train_test_only_gets_hash_validation() {
        let mut t = images(&["a", "b"], 100, "x");
        for r in 0..t.len() {
            t.splits[r] = Some(if r % 10 == 0 { "test" } else { "train" }.into());
        }
        let p = plan(&t, 0.25, 0, None).unwrap();
        assert_eq!(p.test.len(), 20);
        assert!(p.val.len() > 20 && p.val.len() < 70, "{}", p.val.len());
        assert!(p.val.iter().all(|r| r % 10 != 0));
    }

    #[test]
    fn tiny_class_keeps_a_training_image() {
        let mut t = images(&["a", "b"], 50, "x");
        // Find a hash that falls into validation and make it the only "c" image.
        let key = (0..)
            .map(|i| format!("c{i}"))
            .find(|k| split_coordinate(0, k) < 0.2)
            .unwrap();
        push(&mut t, "c.jpg", "c", None, &key, "original");
        let p = plan(&t, 0.2, 0, None).unwrap();
        let r = t.len() - 1;
        assert!(p.train.contains(&r));
    }

    #[test]
    fn split_errors() {
        let mut t = images(&["a", "b"], 10, "x");
        t.splits[3] = Some("holdout".into());
        match plan(&t, 0.2, 0, None).unwrap_err() {
            FitError::UnknownSplit { value, path } => {
                assert_eq!(value, "holdout");
                assert_eq!(path, t.paths[3]);
            }
            e => panic!("{e}"),
        }
        let t = images(&["only"], 10, "x");
        assert!(matches!(
            plan(&t, 0.2, 0, None),
            Err(FitError::TooFewClasses { found: 1, .. })
        ));
        let mut t = images(&["a", "b"], 10, "x");
        push(&mut t, "z.jpg", "zebra", Some("test"), "hz", "original");
        match plan(&t, 0.2, 0, None).unwrap_err() {
            FitError::EmptyClass {
                class,
                held_out,
                example_path,
            } => {
                assert_eq!(
                    (class.as_str(), held_out, example_path.as_str()),
                    ("zebra", 1, "z.jpg")
                );
            }
            e => panic!("{e}"),
        }
        let mut t = images(&["a", "b"], 10, "x");
        t.labels[0] = None;
        let p = plan(&t, 0.2, 0, None).unwrap();
        assert_eq!(p.summary.unlabeled_skipped, 1);
    }
}
