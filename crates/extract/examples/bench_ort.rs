//! ONNX Runtime alone: the ceiling for `headstart extract` throughput.
//!
//! Opens a backbone exactly as `headstart extract` does (provisioned runtime,
//! `resolve`, `Backbone::open` with `SessionConfig::default()`: intra-op threads
//! = cores, spinning off), then runs pre-made random tensors through it in
//! batches and prints JSON with `images_per_second`. No decoding, no
//! preprocessing, no Parquet: what is left is the model's own cost.
//!
//! cargo run --release -p headstart-extract --example bench_ort -- \
//!     [--images 2000] [--batch-size 32] [--warmup 1] [--model efficientnet-lite0] \
//!     [--intra-threads N] [--home DIR] [--ort-lib PATH]
//!
//! The cache directory is `--home`, else `$HEADSTART_HOME`, else ~/.cache/headstart.
//!
//! `--preprocess DIR` instead times, on one thread, what `headstart extract` does
//! to every file before inference (read, content hash, decode, crop+resize,
//! normalise) over the images under DIR with the library's own functions, and
//! prints milliseconds per image per stage, split by file type. That is the CPU
//! the pipeline spends on top of ONNX Runtime.

use std::path::PathBuf;
use std::time::Instant;

use headstart_models::{FeatureSel, PreprocessOverrides};
use headstart_provision::Home;
use headstart_runtime::{Backbone, SessionConfig};

struct Args {
    images: usize,
    batch: usize,
    warmup: usize,
    model: String,
    intra: Option<usize>,
    home: Option<PathBuf>,
    ort_lib: Option<PathBuf>,
    preprocess: Option<PathBuf>,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        images: 2000,
        batch: 32,
        warmup: 1,
        model: headstart_models::zoo::DEFAULT_MODEL.to_string(),
        intra: None,
        home: None,
        ort_lib: std::env::var_os("ORT_DYLIB_PATH")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from),
        preprocess: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut v = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |s: String| s.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--images" | "-n" => a.images = num(v()?)?,
            "--batch-size" => a.batch = num(v()?)?,
            "--warmup" => a.warmup = num(v()?)?,
            "--model" => a.model = v()?,
            "--intra-threads" => a.intra = Some(num(v()?)?),
            "--home" => a.home = Some(v()?.into()),
            "--ort-lib" => a.ort_lib = Some(v()?.into()),
            "--preprocess" => a.preprocess = Some(v()?.into()),
            "-h" | "--help" => {
                println!(
                    "bench_ort [--images N] [--batch-size B] [--warmup BATCHES] [--model NAME|PATH] [--intra-threads N] [--home DIR] [--ort-lib PATH] [--preprocess IMAGE_DIR]"
                );
                std::process::exit(0);
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.batch == 0 || a.images == 0 {
        return Err("--images and --batch-size must be at least 1".into());
    }
    Ok(a)
}

/// Peak resident memory of this process (Linux), MiB.
fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// xorshift64*: uniform in [-2, 2), roughly the range of normalised pixels.
fn fill_random(buf: &mut [f32], seed: u64) {
    let mut s = seed | 1;
    for v in buf {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        let r = s.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40;
        *v = (r as f32 / (1u64 << 24) as f32) * 4.0 - 2.0;
    }
}

fn run(a: &Args) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let home = match &a.home {
        Some(h) => Home::at(h.clone()),
        None => Home::from_env()?,
    };
    let log = |m: &str| eprintln!("bench_ort: {m}");
    let lib = headstart_runtime::locate(&home, a.ort_lib.as_deref(), &log)?;
    let rt = headstart_runtime::init(&lib.path)?;
    let model = headstart_models::resolve(
        &home,
        &a.model,
        &FeatureSel::Auto,
        &PreprocessOverrides::default(),
        &log,
    )?;
    if let Some(dir) = &a.preprocess {
        return preprocess_costs(dir, model.preprocess.clone(), a.images);
    }
    let mut cfg = SessionConfig::default();
    if let Some(n) = a.intra {
        cfg.intra_threads = n;
    }
    let t_open = Instant::now();
    let mut net = Backbone::open_features(rt, &model, &cfg)?;
    let open_seconds = t_open.elapsed().as_secs_f64();

    let len = model.preprocess.tensor_len();
    // Two distinct pre-made batches, alternated, so the input is not one
    // buffer that stays hot in cache.
    let mut batches = [vec![0f32; a.batch * len], vec![0f32; a.batch * len]];
    for (i, b) in batches.iter_mut().enumerate() {
        fill_random(b, 0x9e37_79b9 + i as u64);
    }

    for w in 0..a.warmup {
        net.run(&batches[w % 2], a.batch)?;
    }
    let mut dim = 0;
    let mut done = 0usize;
    let mut k = 0usize;
    let t0 = Instant::now();
    while done < a.images {
        let n = a.batch.min(a.images - done);
        let out = net.run(&batches[k % 2][..n * len], n)?;
        dim = out[0].len() / n;
        done += n;
        k += 1;
    }
    let secs = t0.elapsed().as_secs_f64();
    Ok(serde_json::json!({
        "model": model.name,
        "feature_dim": dim,
        "execution_provider": net.provider(),
        "ort_version": rt.version,
        "intra_threads": cfg.intra_threads,
        "spinning": cfg.spinning,
        "batch_size": a.batch,
        "images": done,
        "batches": k,
        "warmup_batches": a.warmup,
        "seconds": secs,
        "open_seconds": open_seconds,
        "images_per_second": done as f64 / secs,
        "peak_rss_mib": peak_rss_mib(),
    }))
}

/// Single-threaded cost of the pre-inference stages over the files under `dir`.
fn preprocess_costs(
    dir: &std::path::Path,
    pre: headstart_models::preprocess::Preprocess,
    limit: usize,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    use headstart_extract::tensor::{Preprocessor, normalize_into};
    let mut files: Vec<PathBuf> = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(
                p.extension()
                    .and_then(|x| x.to_str())
                    .map(|x| x.to_ascii_lowercase())
                    .as_deref(),
                Some("jpg" | "jpeg" | "png")
            ) {
                files.push(p);
            }
        }
    }
    files.sort();
    files.truncate(limit);
    let mut pp = Preprocessor::new(pre.clone());
    let mut tensor = vec![0f32; pre.tensor_len()];
    let mut buf = Vec::new();
    // [read, hash, decode, resize, normalise] seconds and count, per extension.
    let mut acc: std::collections::BTreeMap<String, ([f64; 5], usize, u64)> = Default::default();
    for f in &files {
        let ext = f
            .extension()
            .and_then(|x| x.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let t = Instant::now();
        let bytes = std::fs::read(f)?;
        let t_read = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let hash = headstart_extract::pipeline::content_hash(&bytes);
        let t_hash = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let img = headstart_extract::decode::decode_for(&bytes, &mut buf, &pre)?;
        let t_decode = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let resized = pp.resize(&img)?.to_vec();
        let t_resize = t.elapsed().as_secs_f64();
        let t = Instant::now();
        normalize_into(&pre, &resized, &mut tensor);
        let t_norm = t.elapsed().as_secs_f64();
        std::hint::black_box((&hash, &tensor));
        let e = acc.entry(ext).or_default();
        for (s, v) in
            e.0.iter_mut()
                .zip([t_read, t_hash, t_decode, t_resize, t_norm])
        {
            *s += v;
        }
        e.1 += 1;
        e.2 += u64::from(img.width()) * u64::from(img.height());
    }
    let mut by_type = serde_json::Map::new();
    let mut total = [0f64; 5];
    for (ext, (s, n, px)) in &acc {
        for (t, v) in total.iter_mut().zip(s) {
            *t += v;
        }
        let ms = |v: f64| 1000.0 * v / *n as f64;
        by_type.insert(
            ext.clone(),
            serde_json::json!({
                "images": n, "mean_kpx": *px as f64 / *n as f64 / 1000.0,
                "read_ms": ms(s[0]), "hash_ms": ms(s[1]), "decode_ms": ms(s[2]),
                "resize_ms": ms(s[3]), "normalize_ms": ms(s[4]),
                "total_ms": ms(s.iter().sum()),
            }),
        );
    }
    let n = files.len().max(1) as f64;
    Ok(serde_json::json!({
        "mode": "preprocess", "dir": dir, "images": files.len(), "threads": 1,
        "read_ms": 1000.0 * total[0] / n, "hash_ms": 1000.0 * total[1] / n,
        "decode_ms": 1000.0 * total[2] / n, "resize_ms": 1000.0 * total[3] / n,
        "normalize_ms": 1000.0 * total[4] / n,
        "total_ms": 1000.0 * total.iter().sum::<f64>() / n,
        "by_type": by_type,
    }))
}

fn main() {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_ort: {e}");
            std::process::exit(2);
        }
    };
    match run(&a) {
        Ok(j) => println!("{j}"),
        Err(e) => {
            eprintln!("bench_ort: {e}");
            std::process::exit(1);
        }
    }
}
