//! End-to-end tests of `fit`, `evaluate` and the head artifact on small
//! synthetic tables (fast in the debug profile).

use headstart_cache::FeatureTable;

use crate::rng::Rng;
use crate::*;

/// Gaussian blobs: `counts[c]` rows of class `c`, centres `sep` apart-ish.
pub(crate) fn blobs(counts: &[usize], d: usize, sep: f64, seed: u64) -> FeatureTable {
    let mut rng = Rng::new(seed);
    let centers: Vec<f64> = (0..counts.len() * d).map(|_| rng.normal() * sep).collect();
    let mut t = FeatureTable {
        dim: d,
        model_fingerprint: Some("fp-test".into()),
        model_name: Some("test-model".into()),
        ..Default::default()
    };
    for (c, &n) in counts.iter().enumerate() {
        for i in 0..n {
            t.paths.push(format!("c{c}/img{i}.jpg"));
            t.labels.push(Some(format!("class{c}")));
            t.splits.push(None);
            t.content_hashes.push(format!("{seed}-{c}-{i}"));
            t.views.push("original".into());
            for j in 0..d {
                // Per-feature offset and scale so normalisation matters.
                let v = centers[c * d + j] + rng.normal();
                t.features
                    .push((v * (1.0 + j as f64 / d as f64) + 3.0) as f32);
            }
        }
    }
    t
}

fn exact_params() -> FitParams {
    // Run L-BFGS to a tight tolerance, no validation early stopping.
    FitParams::new().lbfgs_patience(0).tol(1e-6).max_iter(500)
}

#[test]
fn lbfgs_matches_linfa_on_the_same_objective() {
    let t = blobs(&[150, 150, 150], 12, 0.6, 1);
    for c in [0.1, 1.0] {
        let ours = fit(&t, &exact_params().c([c]).check().unwrap()).unwrap();
        let theirs = fit(
            &t,
            &exact_params().c([c]).solver(Solver::Linfa).check().unwrap(),
        )
        .unwrap();
        let (a, b) = (&ours.sweep[0], &theirs.sweep[0]);
        let (fa, fb) = (a.train_objective.unwrap(), b.train_objective.unwrap());
        assert!(fa <= fb * 1.01, "C={c}: ours {fa} vs linfa {fb}");
        assert!(fb <= fa * 1.01, "C={c}: linfa {fb} vs ours {fa}");
        let (aa, ab) = (
            ours.val_metrics.summary.accuracy,
            theirs.val_metrics.summary.accuracy,
        );
        eprintln!(
            "C={c}: objective ours {fa:.6} linfa {fb:.6}; val accuracy ours {aa:.4} linfa {ab:.4}"
        );
        assert!(
            (aa - ab).abs() <= 0.005 + 1e-12,
            "C={c}: accuracy {aa} vs {ab}"
        );
        assert!(a.iterations > 0);
    }
}

#[test]
fn default_fit_is_accurate_and_reports_everything() {
    let t = blobs(&[120, 120, 120, 120, 120, 120, 120], 16, 0.8, 2);
    let out = fit(&t, &FitParams::new().c([0.01, 1.0, 100.0]).check().unwrap()).unwrap();
    assert_eq!(out.sweep.len(), 3);
    assert_eq!(out.sweep.iter().filter(|r| r.selected).count(), 1);
    let best = out.sweep.iter().find(|r| r.selected).unwrap();
    assert!(
        out.sweep
            .iter()
            .all(|r| r.val_log_loss >= best.val_log_loss)
    );
    let m = &out.val_metrics;
    assert!(m.summary.accuracy > 0.9, "{}", m.to_text());
    assert!(m.summary.top5_accuracy.is_some());
    assert_eq!(m.confusion.as_ref().map(Vec::len), Some(7));
    let cells: usize = m.confusion_cells.iter().map(|c| c[2]).sum();
    assert_eq!(cells, m.summary.n);
    assert_eq!(out.split.val_rows, m.summary.n);
    assert!(out.test_metrics.is_none());
    let text = out.to_text();
    assert!(
        text.contains("sweep") && text.contains("leak check"),
        "{text}"
    );
    let json = serde_json::to_value(&out).unwrap();
    assert!(json.get("val_metrics").is_some() && json.get("head").is_none());
}

#[test]
fn balanced_weights_raise_minority_recall() {
    // Overlapping classes, 20:1 imbalance in train, a balanced validation set.
    let mut t = blobs(&[600, 600], 8, 0.35, 3);
    let mut keep = Vec::new();
    for r in 0..t.len() {
        let (c, i) = (r / 600, r % 600);
        let split = if i < 200 {
            Some("val")
        } else if c == 0 || i < 220 {
            Some("train")
        } else {
            None
        };
        if let Some(s) = split {
            t.splits[r] = Some(s.into());
            keep.push(r);
        }
    }
    let t = subset(&t, &keep);
    let recall = |cw: ClassWeight| {
        let p = FitParams::new()
            .class_weight(cw)
            .lbfgs_patience(0)
            .check()
            .unwrap();
        let out = fit(&t, &p).unwrap();
        out.val_metrics.per_class[1].recall
    };
    let (none, balanced) = (recall(ClassWeight::None), recall(ClassWeight::Balanced));
    assert!(
        balanced > none + 0.1,
        "minority recall: none {none}, balanced {balanced}"
    );
}

fn subset(t: &FeatureTable, rows: &[usize]) -> FeatureTable {
    let mut s = FeatureTable {
        dim: t.dim,
        model_fingerprint: t.model_fingerprint.clone(),
        model_name: t.model_name.clone(),
        ..Default::default()
    };
    for &r in rows {
        s.paths.push(t.paths[r].clone());
        s.labels.push(t.labels[r].clone());
        s.splits.push(t.splits[r].clone());
        s.content_hashes.push(t.content_hashes[r].clone());
        s.views.push(t.views[r].clone());
        s.features.extend_from_slice(t.row(r));
    }
    s
}

#[test]
fn other_heads_and_solvers_fit() {
    let t = blobs(&[100, 100, 100], 10, 1.0, 4);
    for p in [
        FitParams::new()
            .head(HeadKind::Mlp)
            .hidden([16, 32])
            .c([1.0, 10.0]),
        FitParams::new()
            .head(HeadKind::Mlp)
            .hidden([16])
            .solver(Solver::Lbfgs)
            .max_iter(50),
        FitParams::new().solver(Solver::Adam),
        FitParams::new().head(HeadKind::Ncm),
        FitParams::new().normalize(Normalize::L2).warmup_epochs(2),
        FitParams::new()
            .normalize(Normalize::None)
            .class_weight(ClassWeight::Balanced),
    ] {
        let out = fit(&t, &p.clone().check().unwrap()).unwrap();
        let acc = out.val_metrics.summary.accuracy;
        assert!(acc > 0.85, "{p:?}: {acc}");
        let probs = out.head.predict_proba(t.row(0), 1);
        assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        if p.head == HeadKind::Mlp && p.hidden.len() == 2 {
            assert_eq!(out.sweep.len(), 4);
        }
    }
}

#[test]
fn artifact_round_trip_and_evaluate() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = blobs(&[80, 80, 80], 6, 1.0, 5);
    for r in (0..t.len()).step_by(4) {
        t.splits[r] = Some("test".into());
    }
    for (i, p) in [
        FitParams::new(),
        FitParams::new().head(HeadKind::Mlp).hidden([8]),
        FitParams::new()
            .head(HeadKind::Ncm)
            .normalize(Normalize::L2),
    ]
    .into_iter()
    .enumerate()
    {
        let out = fit(&t, &p.check().unwrap()).unwrap();
        assert!(out.test_metrics.is_some());
        let d = dir.path().join(format!("h{i}"));
        out.save(&d, false, &[]).unwrap();
        for f in [
            TENSORS_FILE,
            META_FILE,
            METRICS_FILE,
            "confusion_val.svg",
            "confusion_test.svg",
        ] {
            assert!(d.join(f).exists(), "{f}");
        }
        let back = Head::load(&d).unwrap();
        // Tensors and metadata survive exactly (floats in JSON up to printing).
        assert_eq!(back.normalizer(), out.head.normalizer());
        assert_eq!(back.kind(), out.head.kind());
        assert_eq!(back.meta().tensors, out.head.meta().tensors);
        assert_eq!(
            back.meta().training.as_ref().map(|t| &t.config),
            out.head.meta().training.as_ref().map(|t| &t.config)
        );
        let x = &t.features[..10 * t.dim];
        assert_eq!(back.predict_proba(x, 10), out.head.predict_proba(x, 10));
        let meta = back.meta();
        assert_eq!(meta.class_names, vec!["class0", "class1", "class2"]);
        assert_eq!(meta.model_fingerprint.as_deref(), Some("fp-test"));
        assert!(meta.metrics.test.is_some() && meta.training.is_some());
        let m = evaluate_with(
            &back,
            &t,
            &EvalOptions {
                split: Some(Role::Test),
                n_mistakes: 5,
            },
        )
        .unwrap();
        assert_eq!(m.summary.n, 60);
        assert_eq!(
            m.summary.accuracy,
            out.test_metrics.as_ref().unwrap().summary.accuracy
        );
        if let HeadWeights::Linear { w, b } = back.weights() {
            assert_eq!((w.len(), b.len()), (18, 3));
        }
    }
    // Format version check.
    let d = dir.path().join("h0");
    let meta_path = d.join(META_FILE);
    let text = std::fs::read_to_string(&meta_path).unwrap();
    std::fs::write(
        &meta_path,
        text.replace("\"format_version\": 1", "\"format_version\": 99"),
    )
    .unwrap();
    match Head::load(&d).unwrap_err() {
        FitError::FormatVersion {
            found: 99,
            supported: 1,
            ..
        } => {}
        e => panic!("{e}"),
    }
}

#[test]
fn compatibility_and_evaluation_errors() {
    let t = blobs(&[60, 60], 5, 1.0, 6);
    let head = fit(&t, &FitParams::new().check().unwrap()).unwrap().head;
    let e = head.check_compatible(Some("other-fp"), 5).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("fp-test") && msg.contains("other-fp"), "{msg}");
    assert!(matches!(
        head.check_compatible(None, 7),
        Err(FitError::DimMismatch {
            head: 5,
            features: 7
        })
    ));
    assert!(head.try_predict_proba(&[0.0; 7], 1).is_err());

    let mut u = t.clone();
    u.labels[3] = None;
    assert!(matches!(
        evaluate(&head, &u),
        Err(FitError::MissingLabels { count: 1, .. })
    ));
    let mut u = t.clone();
    u.labels[3] = Some("zebra".into());
    match evaluate(&head, &u).unwrap_err() {
        FitError::UnknownLabels {
            labels,
            count,
            example_path,
            ..
        } => {
            assert_eq!((labels, count), (vec!["zebra".to_string()], 1));
            assert_eq!(example_path, t.paths[3]);
        }
        e => panic!("{e}"),
    }
    let mut u = t.clone();
    u.model_fingerprint = Some("other".into());
    let e = evaluate(&head, &u).unwrap_err();
    assert!(matches!(e, FitError::FingerprintMismatch { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("these features come from fingerprint other"),
        "{msg}"
    );
    // No `original` rows: the error names the views there are (see
    // hflip_only_cache_names_the_missing_original_view).
    let mut u = t.clone();
    u.views = vec!["hflip".into(); u.len()];
    assert!(matches!(
        evaluate(&head, &u),
        Err(FitError::NoOriginalView { .. })
    ));
    // Rows there are, but none of the asked split.
    let u = blobs(&[3, 3], t.dim, 1.0, 1);
    let opts = EvalOptions {
        split: Some(Role::Test),
        n_mistakes: 5,
    };
    assert!(matches!(
        evaluate_with(&head, &u, &opts),
        Err(FitError::NoEvalRows)
    ));
}

#[test]
fn fit_errors_name_the_culprit() {
    let p = FitParams::new().check().unwrap();
    let mut t = blobs(&[30, 30], 4, 1.0, 7);
    t.features[5 * 4 + 2] = f32::NAN;
    match fit(&t, &p).unwrap_err() {
        FitError::NonFinite { count: 1, paths } => assert_eq!(paths, vec![t.paths[5].clone()]),
        e => panic!("{e}"),
    }
    let t = blobs(&[30], 4, 1.0, 7);
    assert!(matches!(fit(&t, &p), Err(FitError::TooFewClasses { .. })));
    let mut t = blobs(&[30, 30, 5], 4, 1.0, 7);
    for r in 60..65 {
        t.splits[r] = Some("test".into());
    }
    match fit(&t, &p).unwrap_err() {
        FitError::EmptyClass { class, .. } => assert_eq!(class, "class2"),
        e => panic!("{e}"),
    }
    let mut t = blobs(&[30, 30], 4, 1.0, 7);
    t.features.pop();
    assert!(matches!(fit(&t, &p), Err(FitError::InconsistentTable(_))));
    let e = merge_tables(vec![
        ("a".into(), blobs(&[3, 3], 4, 1.0, 1)),
        ("b".into(), blobs(&[3, 3], 5, 1.0, 1)),
    ])
    .unwrap_err();
    assert!(
        matches!(
            e,
            FitError::MixedDims {
                first_dim: 4,
                dim: 5,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn leaks_are_reported_and_deduped() {
    let mut t = blobs(&[100, 100], 8, 1.0, 8);
    for r in 0..t.len() {
        t.splits[r] = Some(if r % 10 == 0 { "test" } else { "train" }.into());
    }
    // Test row 0 is a copy of train row 1's file; test row 10 a near copy of train row 11.
    t.content_hashes[0] = t.content_hashes[1].clone();
    let near: Vec<f32> = t.row(11).iter().map(|v| v + 0.001).collect();
    t.features[10 * 8..11 * 8].copy_from_slice(&near);
    let out = fit(&t, &FitParams::new().check().unwrap()).unwrap();
    assert_eq!(
        (out.leak.exact_duplicates, out.leak.near_duplicates),
        (1, 1),
        "{:?}",
        out.leak
    );
    assert_eq!(out.split.test_rows, 20);
    // The summary says how to drop them.
    assert!(
        out.to_text()
            .contains("kept; `headstart fit --dedupe` drops them")
    );
    let out = fit(&t, &FitParams::new().dedupe(true).check().unwrap()).unwrap();
    assert_eq!(out.leak.dropped, 2);
    assert!(out.to_text().contains("2 dropped"));
    assert_eq!(out.split.test_rows, 18);
    assert_eq!(out.test_metrics.unwrap().summary.n, 18);
}

#[test]
fn augmented_views_train_but_never_evaluate() {
    let mut t = blobs(&[60, 60], 6, 1.0, 9);
    let n = t.len();
    for r in 0..n {
        let row = t.row(r).to_vec();
        t.paths.push(t.paths[r].clone());
        t.labels.push(t.labels[r].clone());
        t.splits.push(None);
        t.content_hashes.push(t.content_hashes[r].clone());
        t.views.push("hflip".into());
        t.features.extend(row.iter().map(|v| v + 0.01));
    }
    let out = fit(&t, &FitParams::new().check().unwrap()).unwrap();
    assert_eq!(out.split.train_rows, 2 * (n - out.split.val_rows));
    let only = FitParams::new()
        .views(Some(vec!["original".into()]))
        .check()
        .unwrap();
    let out2 = fit(&t, &only).unwrap();
    assert_eq!(out2.split.train_rows, n - out2.split.val_rows);
    assert_eq!(out.val_metrics.summary.n, out2.val_metrics.summary.n);
}

#[test]
fn rng_hash_is_pinned() {
    // Changing this value would move images between splits in existing projects.
    assert_eq!(
        crate::rng::stable_hash(0, "abc"),
        crate::rng::stable_hash(0, "abc")
    );
    let u = crate::split::split_coordinate(0, "abc");
    assert!((0.0..1.0).contains(&u));
}

/// Regression (#12): 10,000 classes x 2 rows of 8-d features took 1 min 49 s
/// and 14.4 GB, writing a 13.96 GB confusion SVG, a 1.1 GB metrics.json and
/// a 10,000-row per-class table on the terminal (1,000 classes: a 136 MB
/// SVG). At 3,000 classes (to stay fast; the CLI was measured at 10,000)
/// the SVG and the text have a size that does not depend on K, and the
/// folder grows linearly with K.
#[test]
fn fit_on_thousands_of_classes_writes_small_artifacts() {
    let k = 3_000;
    let t = blobs(&vec![2; k], 8, 1.0, 3);
    let out = fit(&t, &FitParams::new().check().unwrap()).unwrap();
    let m = &out.val_metrics;
    assert_eq!(m.class_names.len(), k);
    assert_eq!(m.per_class.len(), k);
    // No dense K x K matrix; the non-zero cells hold every count.
    assert!(m.confusion.is_none());
    assert!(m.confusion_cells.len() <= m.summary.n);
    assert_eq!(
        m.confusion_cells.iter().map(|c| c[2]).sum::<usize>(),
        m.summary.n
    );
    let text = out.to_text();
    let lines = text.lines().count();
    assert!(lines < 150, "{lines} lines of text");
    assert!(
        text.contains(&format!(
            "the {TEXT_CLASS_ROWS} classes of lowest F1 of {k}"
        )) && text.contains("`metrics.json` in the head folder"),
        "{text}"
    );
    assert!(m.confusion_text().lines().count() <= TEXT_CLASS_ROWS + 1);

    let dir = tempfile::tempdir().unwrap();
    let head_dir = dir.path().join("head");
    out.save(&head_dir, false, &[]).unwrap();
    let mut total = 0u64;
    for e in std::fs::read_dir(&head_dir).unwrap() {
        let e = e.unwrap();
        let len = e.metadata().unwrap().len();
        total += len;
        let name = e.file_name().into_string().unwrap();
        if name.ends_with(".svg") {
            // A chart of the most confused pairs: its size does not grow with K.
            assert!(len < 100_000, "{name}: {len} bytes");
        }
    }
    // About 400 bytes a class (names, per-class rows); no K^2 term.
    assert!(
        total < 1_000 * k as u64 + 1_000_000,
        "head folder holds {total} bytes"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(head_dir.join(METRICS_FILE)).unwrap()).unwrap();
    let vm = &json["val_metrics"];
    assert!(vm.get("confusion").is_none());
    assert_eq!(
        vm["confusion_cells"].as_array().map(Vec::len),
        Some(m.confusion_cells.len())
    );
    assert_eq!(vm["per_class"].as_array().map(Vec::len), Some(k));
}

/// Regression (#12): a fit into a HEAD_DIR that held an earlier head with a
/// test split kept the old `confusion_test.svg` beside the new head.
#[test]
fn a_new_fit_leaves_no_stale_artifacts() {
    let p = FitParams::new().check().unwrap();
    let mut with_test = blobs(&[40, 40], 4, 1.0, 11);
    for r in (0..with_test.len()).step_by(5) {
        with_test.splits[r] = Some("test".into());
    }
    let first = fit(&with_test, &p).unwrap();
    let second = fit(&blobs(&[40, 40], 4, 1.0, 12), &p).unwrap();
    assert!(first.test_metrics.is_some() && second.test_metrics.is_none());
    let names = |d: &std::path::Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    let new_head = vec!["confusion_val.svg", META_FILE, TENSORS_FILE, METRICS_FILE];
    let dir = tempfile::tempdir().unwrap();
    // A folder of head artifacts only: replaced whole.
    let h = dir.path().join("head");
    first.save(&h, false, &[]).unwrap();
    assert!(h.join("confusion_test.svg").exists());
    second.save(&h, false, &[]).unwrap();
    assert_eq!(names(&h), new_head);
    assert_eq!(
        Head::load(&h).unwrap().meta().metrics.test,
        None,
        "head.json is the new one"
    );
    // Nothing of the swap is left beside it.
    assert_eq!(names(dir.path()), vec!["head"]);
    // A folder with the user's own files too: refused, and left alone
    // (regression #22 item 1: the user's files were replaced or deleted).
    let mixed = dir.path().join("mixed");
    first.save(&mixed, false, &[]).unwrap();
    std::fs::write(mixed.join("notes.txt"), "mine").unwrap();
    let e = second.save(&mixed, false, &[]).unwrap_err();
    assert!(e.to_string().contains("notes.txt"), "{e}");
    assert!(
        mixed.join("confusion_test.svg").exists(),
        "the old head is kept"
    );
    assert_eq!(names(dir.path()), vec!["head", "mixed"]);
    // A file where the folder should be is refused, and left alone.
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    assert!(matches!(
        second.save(&file, false, &[]),
        Err(FitError::Files(
            headstart_files::FilesError::NotAFolder { .. }
        ))
    ));
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

/// Regression (#9): features with only `hflip` rows said "raise
/// --val-fraction"; validation and evaluation use `original` rows, so the
/// error names the views there are (callers say how to get `original` ones).
#[test]
fn hflip_only_cache_names_the_missing_original_view() {
    let mut t = blobs(&[30, 30], 4, 1.0, 13);
    t.views = vec!["hflip".into(); t.len()];
    let e = fit(&t, &FitParams::new().check().unwrap()).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(&e, FitError::NoOriginalView { views } if views == &["hflip"]),
        "{msg}"
    );
    assert!(
        msg.contains("no row has view `original` (the features have: hflip)")
            && !msg.contains("val-fraction"),
        "{msg}"
    );
    let head = fit(
        &blobs(&[30, 30], 4, 1.0, 13),
        &FitParams::new().check().unwrap(),
    )
    .unwrap()
    .head;
    let e = evaluate(&head, &t).unwrap_err();
    assert!(matches!(e, FitError::NoOriginalView { .. }), "{e}");
}

/// The reviewer's points: two (or, with `green`, three) parallel lines of
/// 15 points, `base_c + i * step`, separable by feature 0 (whose sign is the
/// class for blue and red), so nearly collinear that the second moment of the
/// standardised rows has rank 2.
const COLLINEAR_STEP: [f64; 4] = [0.0000975, 0.000698, 0.000496, 0.000259];
const COLLINEAR_BASES: [(&str, [f64; 4]); 3] = [
    ("blue", [-0.024055, 0.012386, 0.012539, 0.010830]),
    ("red", [0.023186, -0.003787, 0.006017, 0.002452]),
    ("green", [0.07, 0.004, -0.01, 0.006]),
];

/// `per_class` points on each of the first `k` lines (spread over the same
/// stretch as the reviewer's 15), mapped to features by `map` (4 values in,
/// the row out); the last fifth of each line is `test`.
fn collinear_table(
    k: usize,
    per_class: usize,
    map: &dyn Fn(&[f64; 4]) -> Vec<f32>,
) -> FeatureTable {
    let mut t = FeatureTable::default();
    for (name, base) in &COLLINEAR_BASES[..k] {
        for i in 0..per_class {
            let at = i as f64 * 15.0 / per_class as f64;
            let x: [f64; 4] = std::array::from_fn(|j| base[j] + at * COLLINEAR_STEP[j]);
            let row = map(&x);
            t.dim = row.len();
            t.features.extend(row);
            t.paths.push(format!("{name}/{i}.jpg"));
            t.labels.push(Some((*name).into()));
            t.splits
                .push((i >= per_class * 4 / 5).then(|| "test".into()));
            t.content_hashes.push(format!("{name}-{i}"));
            t.views.push("original".into());
        }
    }
    t
}

#[test]
fn lbfgs_left_collinear_separable_data_at_the_starting_point() {
    // The reviewer's reproduction: 15 rows per class, rows 12.. are `test`.
    // The rank-1 preconditioner estimated on these rows (rank-2 second
    // moment, subspace block of 4) came out indefinite, so neither the LDA
    // step nor L-BFGS found a descent direction: 1 iteration, log-loss ln 2,
    // 50 % accuracy.
    let t = collinear_table(2, 15, &|x| x.iter().map(|&v| v as f32).collect());
    let run = |p: FitParams| {
        let out = fit(&t, &p.check().unwrap()).unwrap();
        let row = out.sweep.iter().find(|r| r.selected).unwrap().clone();
        (out.test_metrics.unwrap().summary.accuracy, row)
    };
    let (linfa_acc, linfa) = run(FitParams::new().solver(Solver::Linfa));
    let (adam_acc, _) = run(FitParams::new().solver(Solver::Adam));
    assert_eq!((linfa_acc, adam_acc), (1.0, 1.0), "reference solvers");
    let (acc, row) = run(FitParams::new());
    assert_eq!(acc, 1.0, "default solver, test accuracy: {row:?}");
    assert_eq!(row.val_accuracy, 1.0, "{row:?}");
    assert!(row.iterations > 1, "{row:?}");
    assert!(
        row.val_log_loss < 0.1 * std::f64::consts::LN_2,
        "validation log-loss {} (ln 2 = 0.693)",
        row.val_log_loss
    );
    assert!(
        row.val_log_loss <= 2.0 * linfa.val_log_loss + 0.01,
        "{row:?} vs linfa {linfa:?}"
    );
}

#[test]
fn lbfgs_matches_linfa_on_collinear_variants() {
    let mut rng = Rng::new(11);
    let mix = |rng: &mut Rng, d: usize| -> Vec<f64> { (0..d * 4).map(|_| rng.normal()).collect() };
    let wide = mix(&mut rng, 256);
    let mid = mix(&mut rng, 64);
    let f = |v: f64| v as f32;
    // (name, table, normalisation, C)
    let cases: Vec<(&str, FeatureTable, Normalize, f64)> = vec![
        (
            "3 classes",
            collinear_table(3, 15, &|x| x.map(f).to_vec()),
            Normalize::Standard,
            1.0,
        ),
        (
            "features twice",
            collinear_table(2, 15, &|x| x.iter().chain(x).map(|&v| f(v)).collect()),
            Normalize::Standard,
            1.0,
        ),
        (
            "4 constant features",
            collinear_table(2, 15, &|x| {
                x.iter().map(|&v| f(v)).chain([0.5; 4]).collect()
            }),
            Normalize::Standard,
            1.0,
        ),
        (
            "64 mixtures of the 4, 3 classes",
            collinear_table(3, 200, &|x| {
                mid.chunks(4)
                    .map(|a| f((0..4).map(|j| a[j] * x[j]).sum()))
                    .collect()
            }),
            Normalize::Standard,
            1.0,
        ),
        (
            // The objective's changes along the first steps from the LDA
            // start are below f32 rounding: the line search gave up at once,
            // or one short step tripped the absolute stall test.
            "256 mixtures of the 4, raw, C=100",
            collinear_table(2, 400, &|x| {
                wide.chunks(4)
                    .map(|a| f((0..4).map(|j| a[j] * x[j]).sum()))
                    .collect()
            }),
            Normalize::None,
            100.0,
        ),
    ];
    for (name, t, norm, c) in cases {
        // Seeds give different train/validation splits and preconditioner
        // samples.
        for seed in 0..8 {
            let run = |s: Solver| {
                let p = exact_params().normalize(norm).c([c]).solver(s).seed(seed);
                let out = fit(&t, &p.check().unwrap()).unwrap();
                let acc = out.test_metrics.unwrap().summary.accuracy;
                (acc, out.sweep[0].clone())
            };
            let (la, lr) = run(Solver::Linfa);
            let (oa, or) = run(Solver::Auto);
            let (fo, fl) = (or.train_objective.unwrap(), lr.train_objective.unwrap());
            eprintln!(
                "{name}, seed {seed}: objective ours {fo:.6} ({} it) linfa {fl:.6}; \
                 test accuracy ours {oa} linfa {la}",
                or.iterations
            );
            assert!(
                oa >= la,
                "{name}, seed {seed}: test accuracy {oa} vs linfa {la}: {or:?}"
            );
            assert!(
                fo <= fl * 1.01 + 1e-5,
                "{name}, seed {seed}: objective {fo} vs linfa {fl}: {or:?}"
            );
        }
    }
}

/// Regression: with the leak check running beside the training (no
/// `--dedupe`), rayon's `fold`/`reduce` summed the class sums, the
/// normaliser's moments and the leak check's mean in orders that followed
/// work stealing, and the head changed in its last bits from run to run.
/// Every reduction now goes through fixed blocks: a fit gives the same bits
/// alone, beside the check, and again.
#[test]
fn a_fit_gives_the_same_bits_whether_the_leak_check_runs_beside_it_or_not() {
    // Enough rows for several blocks and chunks on any pool.
    let t = blobs(&[900, 900, 900], 24, 0.5, 9);
    let bits = |dedupe: bool| {
        let out = fit(&t, &FitParams::new().dedupe(dedupe).check().unwrap()).unwrap();
        assert_eq!(out.leak.dropped, 0);
        let HeadWeights::Linear { w, b } = out.head.weights() else {
            panic!("a softmax head");
        };
        let n = out.head.normalizer();
        (
            w.iter().chain(b).map(|v| v.to_bits()).collect::<Vec<_>>(),
            format!("{n:?}"),
            out.val_metrics.summary.log_loss.to_bits(),
        )
    };
    let beside = bits(false);
    assert_eq!(bits(true), beside, "check first (--dedupe) vs beside");
    assert_eq!(bits(false), beside, "beside, again");
}
