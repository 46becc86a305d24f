//! Synthetic benchmark of `headstart_fit::fit`.
//!
//! Generates Gaussian class clusters (with a shared low-rank component and
//! per-feature scale/offset, so normalisation and conditioning matter), marks
//! every 5th row `val`, fits, and prints JSON. `--save-npy DIR` also dumps the
//! data as raw little-endian files for `scripts/bench_fit_sklearn.py`:
//! `X.f32` (rows x dim), `y.i32`, `split.u8` (0 train, 1 val), `meta.json`;
//! `--save-cache DIR` writes it as a headstart cache, for `headstart fit` and
//! `scripts/bench_fashion_sklearn.py` process to process.
//!
//! cargo run --release -p headstart-fit --example bench_fit -- \
//!     --rows 10000 --dim 1280 --classes 10 [--c 1] [--solver auto] [--head softmax] \
//!     [--sep 0.06] [--seed 0] [--save-npy DIR]

use std::time::Instant;

use headstart_cache::FeatureTable;
use headstart_fit::{FitParams, HeadKind, Solver, fit, parse_list};
use rayon::prelude::*;

struct Args {
    rows: usize,
    dim: usize,
    classes: usize,
    seed: u64,
    sep: f64,
    c: Vec<f64>,
    solver: Solver,
    head: HeadKind,
    hidden: Vec<usize>,
    max_iter: usize,
    tol: f64,
    warmup: usize,
    max_epochs: usize,
    lr: f64,
    batch: usize,
    memory: usize,
    lbfgs_patience: usize,
    save: Option<String>,
    save_cache: Option<String>,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        rows: 10_000,
        dim: 1280,
        classes: 10,
        seed: 0,
        sep: 0.06,
        c: vec![1.0],
        solver: Solver::Auto,
        head: HeadKind::Softmax,
        hidden: vec![256],
        max_iter: FitParams::new().max_iter,
        tol: FitParams::new().tol,
        warmup: FitParams::new().warmup_epochs,
        max_epochs: FitParams::new().max_epochs,
        lr: FitParams::new().learning_rate,
        batch: FitParams::new().batch_size,
        memory: FitParams::new().lbfgs_memory,
        lbfgs_patience: FitParams::new().lbfgs_patience,
        save: None,
        save_cache: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut v = || it.next().ok_or(format!("{flag} needs a value"));
        let e = |x: &dyn std::fmt::Display| x.to_string();
        match flag.as_str() {
            "--rows" => a.rows = v()?.parse().map_err(|x| e(&x))?,
            "--dim" => a.dim = v()?.parse().map_err(|x| e(&x))?,
            "--classes" => a.classes = v()?.parse().map_err(|x| e(&x))?,
            "--seed" => a.seed = v()?.parse().map_err(|x| e(&x))?,
            "--sep" => a.sep = v()?.parse().map_err(|x| e(&x))?,
            "--c" => a.c = parse_list("c", &v()?).map_err(|x| e(&x))?,
            "--hidden" => a.hidden = parse_list("hidden", &v()?).map_err(|x| e(&x))?,
            "--solver" => a.solver = v()?.parse().map_err(|x| e(&x))?,
            "--head" => a.head = v()?.parse().map_err(|x| e(&x))?,
            "--max-iter" => a.max_iter = v()?.parse().map_err(|x| e(&x))?,
            "--tol" => a.tol = v()?.parse().map_err(|x| e(&x))?,
            "--warmup" => a.warmup = v()?.parse().map_err(|x| e(&x))?,
            "--max-epochs" => a.max_epochs = v()?.parse().map_err(|x| e(&x))?,
            "--lr" => a.lr = v()?.parse().map_err(|x| e(&x))?,
            "--batch" => a.batch = v()?.parse().map_err(|x| e(&x))?,
            "--memory" => a.memory = v()?.parse().map_err(|x| e(&x))?,
            "--lbfgs-patience" => a.lbfgs_patience = v()?.parse().map_err(|x| e(&x))?,
            "--save-npy" => a.save = Some(v()?),
            "--save-cache" => a.save_cache = Some(v()?),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(a)
}

/// SplitMix64-based normal generator (examples keep to std + rayon).
struct Gen(u64);
impl Gen {
    fn u(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn n(&mut self) -> f64 {
        let (u1, u2) = (1.0 - self.u(), self.u());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

fn synth(a: &Args) -> FeatureTable {
    let (n, d, k) = (a.rows, a.dim, a.classes);
    let rank = 32.min(d);
    let mut g = Gen(a.seed.wrapping_mul(7919).wrapping_add(1));
    let centers: Vec<f32> = (0..k * d).map(|_| (g.n() * a.sep * 10.0) as f32).collect();
    let mix: Vec<f32> = (0..rank * d).map(|_| (g.n() * 0.5) as f32).collect();
    let scale: Vec<f32> = (0..d).map(|_| (0.5 + 1.5 * g.u()) as f32).collect();
    let offset: Vec<f32> = (0..d).map(|_| (2.0 * g.u()) as f32).collect();
    let mut features = vec![0.0f32; n * d];
    features.par_chunks_mut(d).enumerate().for_each(|(i, row)| {
        let mut g = Gen((a.seed << 32) ^ (i as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
        let c = i % k;
        let z: Vec<f32> = (0..rank).map(|_| g.n() as f32).collect();
        for (j, x) in row.iter_mut().enumerate() {
            let mut v = centers[c * d + j] + g.n() as f32;
            for (r, zr) in z.iter().enumerate() {
                v += mix[r * d + j] * zr;
            }
            *x = scale[j] * v + offset[j];
        }
    });
    FeatureTable {
        paths: (0..n).map(|i| format!("img{i}.jpg")).collect(),
        labels: (0..n).map(|i| Some(format!("class{:03}", i % k))).collect(),
        splits: (0..n)
            .map(|i| Some(if (i / k) % 5 == 0 { "val" } else { "train" }.to_string()))
            .collect(),
        content_hashes: (0..n).map(|i| format!("{i:016x}")).collect(),
        views: vec!["original".into(); n],
        dim: d,
        features,
        model_fingerprint: Some("synthetic".into()),
        model_name: Some("synthetic".into()),
    }
}

fn save(t: &FeatureTable, k: usize, dir: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let p = std::path::Path::new(dir);
    let bytes: Vec<u8> = t.features.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(p.join("X.f32"), bytes)?;
    let y: Vec<u8> = t
        .labels
        .iter()
        .flat_map(|l| {
            let c: i32 = l.as_deref().and_then(|s| s[5..].parse().ok()).unwrap_or(-1);
            c.to_le_bytes()
        })
        .collect();
    std::fs::write(p.join("y.i32"), y)?;
    let s: Vec<u8> = t
        .splits
        .iter()
        .map(|s| u8::from(s.as_deref() == Some("val")))
        .collect();
    std::fs::write(p.join("split.u8"), s)?;
    std::fs::write(
        p.join("meta.json"),
        format!(
            "{{\"rows\": {}, \"dim\": {}, \"classes\": {k}}}\n",
            t.len(),
            t.dim
        ),
    )
}

/// The table as a headstart cache in `dir` (one part per 20,000 rows).
fn save_cache(t: &FeatureTable, dir: &str) -> Result<(), headstart_cache::CacheError> {
    use headstart_cache::{Cache, CacheInfo, PartWriter, Row, RunInfo};
    let info = CacheInfo {
        format_version: headstart_cache::FORMAT_VERSION,
        model_name: "synthetic".into(),
        model_fingerprint: "synthetic".into(),
        feature_dim: t.dim,
        preprocessing: serde_json::json!({}),
        created_by: "bench_fit".into(),
    };
    let cache = Cache::open_or_create(std::path::Path::new(dir), &info)?;
    let mut w = PartWriter::new(&cache, RunInfo::default());
    for i in 0..t.len() {
        w.push(Row {
            path: &t.paths[i],
            label: t.labels[i].as_deref(),
            split: t.splits[i].as_deref(),
            content_hash: &t.content_hashes[i],
            source_version: None,
            view: &t.views[i],
            feature: t.row(i),
        })?;
        if w.len() == 20_000 {
            w.flush()?;
        }
    }
    w.flush()?;
    Ok(())
}

/// Peak resident memory of this process (Linux), MiB.
fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_fit: {e}");
            std::process::exit(2);
        }
    };
    let t0 = Instant::now();
    let table = synth(&a);
    let gen_seconds = t0.elapsed().as_secs_f64();
    if let Some(dir) = &a.save
        && let Err(e) = save(&table, a.classes, dir)
    {
        eprintln!("bench_fit: saving {dir}: {e}");
        std::process::exit(1);
    }
    if let Some(dir) = &a.save_cache
        && let Err(e) = save_cache(&table, dir)
    {
        eprintln!("bench_fit: saving the cache {dir}: {e}");
        std::process::exit(1);
    }
    let params = FitParams::new()
        .head(a.head)
        .solver(a.solver)
        .c(a.c.clone())
        .hidden(a.hidden.clone())
        .max_iter(a.max_iter)
        .tol(a.tol)
        .warmup_epochs(a.warmup)
        .max_epochs(a.max_epochs)
        .learning_rate(a.lr)
        .batch_size(a.batch)
        .lbfgs_memory(a.memory)
        .lbfgs_patience(a.lbfgs_patience)
        .seed(a.seed);
    let params = match params.check() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bench_fit: {e}");
            std::process::exit(2);
        }
    };
    let out = match fit(&table, &params) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench_fit: {e}");
            std::process::exit(1);
        }
    };
    let sel = out.sweep.iter().find(|r| r.selected);
    let json = serde_json::json!({
        "rows": a.rows, "dim": a.dim, "classes": a.classes, "threads": rayon::current_num_threads(),
        "head": a.head.to_string(), "solver": params.effective_solver().to_string(),
        "c": sel.and_then(|r| r.c),
        "fit_seconds": out.fit_seconds,
        "sweep_seconds": out.sweep.iter().map(|r| r.seconds).sum::<f64>(),
        "generate_seconds": gen_seconds,
        "val_accuracy": out.val_metrics.summary.accuracy,
        "val_log_loss": out.val_metrics.summary.log_loss,
        "train_objective": sel.and_then(|r| r.train_objective),
        "iterations": sel.map(|r| r.iterations),
        "epochs": sel.map(|r| r.epochs),
        "converged": sel.and_then(|r| r.converged),
        "leak_method": out.leak.method,
        "near_duplicates": out.leak.near_duplicates,
        "timings": out.timings,
        "feature_matrix_mib": (table.features.len() * 4) as f64 / 1048576.0,
        "peak_rss_mib": peak_rss_mib(),
    });
    println!("{json}");
}
