//! End-to-end tests of extract at scale (issue "extract at scale"): SIGKILL at
//! several points and resume, concurrent shards into one cache, and the device
//! flags with the CPU-only runtime.

use crate::common;

use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

const TOL: f32 = 1e-5;
/// Images per class of the input: 30 images in all.
const PER_CLASS: usize = 3;
const IMAGES: u64 = 10 * PER_CLASS as u64;
/// Small batches and a part every two images, so a run writes many parts.
const SMALL_PARTS: [&str; 4] = ["--batch-size", "2", "--flush-every", "2"];

fn args<'a>(input: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "-q",
        "extract",
        input.to_str().expect("utf-8 path"),
        "--out",
        out.to_str().expect("utf-8 path"),
        "--json",
    ];
    v.extend(extra);
    v
}

use common::describe;

fn summary_of(out: &Output) -> Value {
    assert!(out.status.success(), "{}", describe(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{}", describe(out)))
}

fn n(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no `{key}` in {v}"))
}

use common::{Rows, rows};

/// Same keys, labels, splits and hashes; features within [`TOL`].
fn assert_same(got: &Rows, want: &Rows, what: &str) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: different rows"
    );
    for (k, (l, s, h, f)) in got {
        let (wl, ws, wh, wf) = &want[k];
        assert_eq!((l, s, h), (wl, ws, wh), "{what}: {k:?}");
        let d = f
            .iter()
            .zip(wf)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(d < TOL, "{what}: {k:?} max abs diff {d}");
    }
}

fn files_in(dir: &Path, pred: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| pred(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

fn parts(cache: &Path) -> Vec<PathBuf> {
    files_in(&cache.join("parts"), |n| {
        !n.starts_with('.') && n.ends_with(".parquet")
    })
}

fn temps(cache: &Path) -> Vec<PathBuf> {
    [
        cache.to_path_buf(),
        cache.join("parts"),
        cache.join("errors"),
    ]
    .iter()
    .flat_map(|d| files_in(d, |n| n.starts_with('.') && n.ends_with(".tmp")))
    .collect()
}

struct Reference {
    input: PathBuf,
    /// An uninterrupted single-process run over `input`.
    cache: PathBuf,
    rows: Rows,
}

/// The input and an uninterrupted run, built once per test binary under a folder
/// named after this process (folders of finished earlier runs are removed).
fn reference() -> &'static Reference {
    static R: OnceLock<Reference> = OnceLock::new();
    R.get_or_init(|| {
        let root = common::scratch("scale-reference");
        let input = root.join("input");
        common::sample_subset(&input, PER_CLASS);
        let cache = root.join("cache");
        let t0 = Instant::now();
        let s = summary_of(&common::run(&args(&input, &cache, &SMALL_PARTS)));
        eprintln!(
            "uninterrupted run: {:.2} s wall ({:.2} s in the pipeline), {} parts",
            t0.elapsed().as_secs_f64(),
            s["wall_seconds"].as_f64().unwrap_or(0.0),
            n(&s, "parts_written")
        );
        assert_eq!(n(&s, "extracted"), IMAGES, "{s}");
        let rows = rows(&cache);
        assert_eq!(rows.len() as u64, IMAGES);
        Reference { input, cache, rows }
    })
}

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("scale-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir")
}

/// When to send SIGKILL.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// This long after the start.
    After(Duration),
    /// When this many new parts have appeared.
    NewParts(usize),
    /// As soon as a new temporary file of a writer shows up (a part being written).
    TempFile,
}

/// Starts an extract and kills it with SIGKILL at `at`; returns whether it was
/// killed while running (false: it finished first).
fn kill_at(input: &Path, cache: &Path, at: KillAt) -> bool {
    let mut child: Child = common::headstart()
        .args(args(input, cache, &SMALL_PARTS))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start headstart");
    let start = Instant::now();
    let parts_before = parts(cache).len();
    // Temporary files of earlier killed runs do not count.
    let temps_before = temps(cache);
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        let now = match at {
            KillAt::After(d) => start.elapsed() >= d,
            KillAt::NewParts(k) => parts(cache).len() >= parts_before + k,
            KillAt::TempFile => temps(cache).iter().any(|t| !temps_before.contains(t)),
        };
        if now {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{at:?} never came"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = child.kill(); // SIGKILL on Unix
    let status = child.wait().expect("wait");
    let killed = status.signal() == Some(9);
    let left: Vec<String> = temps(cache)
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    eprintln!(
        "kill at {at:?}: {} after {:.2} s; {} parts, temporary files left: {left:?}",
        if killed { "killed" } else { "had finished" },
        start.elapsed().as_secs_f64(),
        parts(cache).len(),
    );
    if !killed {
        assert!(status.success(), "extract failed on its own: {status}");
    }
    killed
}

/// SIGKILL at several points, then a rerun: the cache equals an uninterrupted run's.
#[test]
#[ignore = "slow tier: `just test-all`"]
fn killed_runs_resume_to_the_same_cache() {
    let r = reference();
    let dir = scratch();
    let cache = dir.path().join("cache");
    let points = [
        KillAt::After(Duration::from_millis(150)),
        KillAt::NewParts(1),
        KillAt::TempFile,
        KillAt::After(Duration::from_millis(500)),
        KillAt::NewParts(2),
        KillAt::TempFile,
    ];
    let mut killed = 0;
    for at in points {
        killed += usize::from(kill_at(&r.input, &cache, at));
        // Whatever a kill leaves is readable: complete parts only, no row twice.
        if cache.join("cache.json").exists() {
            let partial = rows(&cache);
            for (k, v) in &partial {
                assert_eq!(v.3.len(), r.rows[k].3.len());
            }
        }
    }
    assert!(killed >= 3, "only {killed} runs were interrupted");
    let progress_before = rows(&cache).len() as u64;

    let s = summary_of(&common::run(&args(&r.input, &cache, &SMALL_PARTS)));
    assert_eq!(n(&s, "failed"), 0, "{s}");
    assert_eq!(n(&s, "cached"), progress_before, "{s}");
    assert_eq!(n(&s, "extracted") + n(&s, "cached"), IMAGES, "{s}");
    assert!(progress_before > 0, "the killed runs kept no work");
    assert_same(&rows(&cache), &r.rows, "resumed cache");
    assert!(
        temps(&cache).is_empty(),
        "temporary files of killed runs remain: {:?}",
        temps(&cache)
    );
    // A further rerun has nothing to do.
    let s = summary_of(&common::run(&args(&r.input, &cache, &[])));
    assert_eq!((n(&s, "extracted"), n(&s, "cached")), (0, IMAGES), "{s}");
}

/// Three shards as three concurrent processes into one cache equal one process.
#[test]
#[ignore = "slow tier: `just test-all`"]
fn concurrent_shards_equal_a_single_run() {
    let r = reference();
    let dir = scratch();
    let cache = dir.path().join("cache");
    let children: Vec<Child> = (0..3)
        .map(|i| {
            let shard = format!("{i}/3");
            common::headstart()
                .args(args(
                    &r.input,
                    &cache,
                    &["--shard", &shard, "--flush-every", "4"],
                ))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start headstart")
        })
        .collect();
    let summaries: Vec<Value> = children
        .into_iter()
        .map(|c| summary_of(&c.wait_with_output().expect("wait")))
        .collect();
    let total = |k: &str| summaries.iter().map(|s| n(s, k)).sum::<u64>();
    assert_eq!(total("images"), IMAGES, "{summaries:?}");
    assert_eq!(total("extracted"), IMAGES, "{summaries:?}");
    assert_eq!(total("deleted"), 0, "{summaries:?}");
    for (i, s) in summaries.iter().enumerate() {
        assert_eq!(s["shard"], format!("{i}/3"));
    }
    assert_same(&rows(&cache), &r.rows, "union of shards");
    // No row stored twice: every stored row is live.
    let info = common::run_ok(&["cache", "info", cache.to_str().unwrap()]);
    assert!(
        info.contains(&format!("rows         {IMAGES} live, 0 dead")),
        "{info}"
    );

    // Rerunning one shard neither redoes nor deletes the other shards' work.
    let s = summary_of(&common::run(&args(&r.input, &cache, &["--shard", "1/3"])));
    assert_eq!((n(&s, "extracted"), n(&s, "deleted")), (0, 0), "{s}");
    let s = summary_of(&common::run(&args(&r.input, &cache, &[])));
    assert_eq!((n(&s, "extracted"), n(&s, "cached")), (0, IMAGES), "{s}");
    assert_same(&rows(&cache), &r.rows, "after reruns");
}

/// `--device cuda` with the CPU-only runtime fails clearly; with
/// `--allow-cpu-fallback` it runs on CPU and the parts record it.
#[test]
fn cuda_without_gpu_runtime_fails_or_falls_back() {
    let r = reference();
    let dir = scratch();
    let input = dir.path().join("input");
    std::fs::create_dir_all(input.join("a")).unwrap();
    let first = rows(&r.cache).keys().next().unwrap().0.clone();
    std::fs::copy(r.input.join(&first), input.join("a/x.png")).unwrap();

    let cache = dir.path().join("cache");
    let out = common::run(&args(&input, &cache, &["--device", "cuda"]));
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("CUDAExecutionProvider is not usable")
            && err.contains("CPU-only build")
            && err.contains("--allow-cpu-fallback"),
        "{err}"
    );
    assert!(
        !cache.join("cache.json").exists(),
        "a failed run created the cache"
    );

    let out = common::run(&args(
        &input,
        &cache,
        &["--device", "cuda", "--allow-cpu-fallback"],
    ));
    let s = summary_of(&out);
    assert_eq!(s["execution_provider"], "CPUExecutionProvider", "{s}");
    assert_eq!(n(&s, "extracted"), 1, "{s}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("running on CPU"),
        "the fallback is silent: {err}"
    );
    let ps = parts(&cache);
    assert!(!ps.is_empty());
    for p in &ps {
        let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            File::open(p).unwrap(),
        )
        .unwrap();
        let kv = b.metadata().file_metadata().key_value_metadata().unwrap();
        let ep = kv
            .iter()
            .find(|e| e.key == "headstart.execution_provider")
            .and_then(|e| e.value.clone());
        assert_eq!(
            ep.as_deref(),
            Some("CPUExecutionProvider"),
            "{}",
            p.display()
        );
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(p.with_extension("json")).unwrap()).unwrap();
        assert_eq!(
            manifest["run"]["execution_provider"],
            "CPUExecutionProvider"
        );
    }
}
