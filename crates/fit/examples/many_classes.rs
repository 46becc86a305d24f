//! Writes a synthetic feature file with many classes, to measure `fit` at
//! scale (issue #12: 10,000 classes x 2 rows of 8-d features).
//!
//! ```sh
//! cargo run --release -p headstart-fit --example many_classes -- 10000 2 8 /tmp/f10k.parquet
//! /usr/bin/time -v target/release/headstart fit /tmp/f10k.parquet --out /tmp/h10k
//! ```
//!
//! Arguments: classes, rows per class, feature dimension, output file. The
//! rows go through the cache's part writer into a scratch cache next to the
//! output, whose one part is then moved to the output path (a plain Parquet
//! file with `path`, `label`, `split`, `content_hash`, `view`, `feature`).

use std::path::PathBuf;

use headstart_cache::{Cache, CacheInfo, PartWriter, Row, RunInfo};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [classes, per_class, dim, out] = args.as_slice() else {
        return Err("usage: many_classes CLASSES ROWS_PER_CLASS DIM OUT.parquet".into());
    };
    let (classes, per_class, dim): (usize, usize, usize) =
        (classes.parse()?, per_class.parse()?, dim.parse()?);
    let out = PathBuf::from(out);
    let scratch = out.with_extension("cache.tmp");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)?;
    }
    let info = CacheInfo {
        format_version: headstart_cache::FORMAT_VERSION,
        model_name: "synthetic".into(),
        model_fingerprint: format!("synthetic-{dim}"),
        feature_dim: dim,
        preprocessing: serde_json::Value::Null,
        created_by: "many_classes example".into(),
    };
    let cache = Cache::open_or_create(&scratch, &info)?;
    let mut w = PartWriter::new(&cache, RunInfo::default());
    // A small xorshift generator: class centres plus noise, reproducible.
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut unif = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f32 / (1u64 << 53) as f32 - 0.5
    };
    let mut feature = vec![0.0f32; dim];
    for c in 0..classes {
        let centre: Vec<f32> = (0..dim).map(|_| 4.0 * unif()).collect();
        for i in 0..per_class {
            for (f, m) in feature.iter_mut().zip(&centre) {
                *f = m + 0.5 * unif();
            }
            let (path, hash) = (format!("c{c}/img{i}.jpg"), format!("h{c}-{i}"));
            let label = format!("class{c:05}");
            w.push(Row {
                path: &path,
                label: Some(&label),
                split: None,
                content_hash: &hash,
                source_version: None,
                view: "original",
                feature: &feature,
            })?;
        }
    }
    let part = w.flush()?.ok_or("no rows")?;
    std::fs::rename(&part, &out)?;
    std::fs::remove_dir_all(&scratch)?;
    println!(
        "wrote {} rows ({classes} classes x {per_class}, {dim}-d) to {}",
        classes * per_class,
        out.display()
    );
    Ok(())
}
