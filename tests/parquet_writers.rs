//! Issue #15: feature files and manifests from real writers (pyarrow, pandas,
//! Polars, DuckDB) in every codec. `fit` on any of them gives the same head as on
//! the zstd reference with the same rows; the manifest reader takes pandas'
//! snappy files. Fixtures: tests/data/parquet/, made by scripts/parquet_fixtures.py.

use std::path::{Path, PathBuf};

use headstart_cache::{FeatureTable, read_features};
use headstart_extract::input::{InputKind, list};
use headstart_fit::{FitOutcome, FitParams, HeadWeights, fit};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/parquet")
        .join(name)
}

/// The feature files that hold the reference rows: every writer, every codec
/// (pyarrow with and without the stored Arrow schema), float64, large_list and
/// fixed_size_list features, dictionary-encoded and ClassLabel labels; listed in
/// tests/data/parquet/same_rows.txt.
fn writers() -> Vec<String> {
    let text = std::fs::read_to_string(fixture("same_rows.txt")).expect("same_rows.txt");
    let ours = |l: &&str| !l.starts_with('#') && *l != REFERENCE;
    text.lines().filter(ours).map(String::from).collect()
}

const REFERENCE: &str = "pyarrow_zstd.parquet";

fn read(name: &str) -> FeatureTable {
    read_features(&[fixture(name)]).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn fitted(t: &FeatureTable) -> FitOutcome {
    fit(t, &FitParams::new().check().unwrap()).unwrap()
}

/// What must agree between two fits: class names, normaliser, weights (bit for
/// bit), iterations, and the validation metrics.
fn head_of(o: &FitOutcome) -> (Vec<String>, String, Vec<u32>, usize, String) {
    let h = &o.head;
    let weights: Vec<u32> = match h.weights() {
        HeadWeights::Linear { w, b } => w.iter().chain(b).map(|v| v.to_bits()).collect(),
        HeadWeights::Mlp { .. } => panic!("the default head is softmax"),
    };
    let iterations = h.meta().training.as_ref().map_or(0, |t| t.iterations);
    (
        h.class_names().to_vec(),
        format!("{:?}", h.normalizer()),
        weights,
        iterations,
        format!(
            "{:?} {:?}",
            o.val_metrics.summary.accuracy.to_bits(),
            o.val_metrics.summary.log_loss.to_bits()
        ),
    )
}

/// Acceptance (#15): `fit` on feature files from pyarrow, pandas, Polars and
/// DuckDB, in every codec, gives the same head as on the zstd file.
#[test]
fn fit_gives_the_same_head_whichever_tool_and_codec_wrote_the_features() {
    let reference = read(REFERENCE);
    assert_eq!((reference.len(), reference.dim), (12, 4));
    let want = head_of(&fitted(&reference));
    assert_eq!(want.0, ["cat", "dog", "fox"]);
    // Fitting the same table twice is deterministic, so equal heads below mean
    // equal inputs, not luck.
    assert_eq!(head_of(&fitted(&reference)), want, "refit of the reference");
    assert!(want.3 > 0, "L-BFGS ran no iteration");
    // And the comparison sees a changed input: one value off by 1/8.
    let mut changed = reference.clone();
    changed.features[5] += 0.125;
    assert_ne!(head_of(&fitted(&changed)).2, want.2, "a changed feature");
    for name in &writers() {
        assert_eq!(head_of(&fitted(&read(name))), want, "{name}");
    }
}

/// Integer labels without ClassLabel names fit a head over the classes "0",
/// "1", "2" with the same weights.
#[test]
fn integer_labels_fit_the_same_weights() {
    let (_, norm, w, it, metrics) = head_of(&fitted(&read(REFERENCE)));
    let got = head_of(&fitted(&read("pyarrow_int_labels.parquet")));
    assert_eq!(got.0, ["0", "1", "2"]);
    assert_eq!((got.1, got.2, got.3, got.4), (norm, w, it, metrics));
}

/// The manifest reader takes pandas' default Parquet (snappy, large_string), and
/// pandas categoricals (dictionary-encoded) for labels.
#[test]
fn the_manifest_reader_takes_pandas_snappy_files() {
    let reference = read(REFERENCE);
    for name in ["manifest_pandas.parquet", "pandas_category.parquet"] {
        let l = list(&fixture(name), InputKind::Manifest).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(l.errors.is_empty(), "{name}: {:?}", l.errors);
        let rows: Vec<(String, Option<String>, Option<String>)> = l
            .items
            .iter()
            .map(|i| (i.rel.clone(), i.label.clone(), i.split.clone()))
            .collect();
        let want: Vec<_> = (0..reference.len())
            .map(|i| {
                (
                    reference.paths[i].clone(),
                    reference.labels[i].clone(),
                    reference.splits[i].clone(),
                )
            })
            .collect();
        assert_eq!(rows, want, "{name}");
        assert_eq!(
            l.items[0].abs.as_path(),
            Some(
                fixture(name)
                    .parent()
                    .unwrap()
                    .join("img/00_cat.jpg")
                    .as_path()
            )
        );
    }
}
