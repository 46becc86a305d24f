//! Writes a cache of random features, for measuring compaction and readers at
//! scale: `cargo run --release -p headstart-cache --example synth_cache -- DIR
//! ROWS DIM PART_ROWS [DEAD]` writes ROWS live rows of DIM floats in parts of
//! PART_ROWS rows, then rewrites the first DEAD rows (so they have dead copies).

use headstart_cache::{Cache, CacheInfo, PartWriter, Row, RunInfo};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, rows, dim, part, rest @ ..] = args.as_slice() else {
        return Err("usage: synth_cache DIR ROWS DIM PART_ROWS [DEAD]".into());
    };
    let (rows, dim, part): (usize, usize, usize) = (rows.parse()?, dim.parse()?, part.parse()?);
    let dead: usize = rest.first().map_or(Ok(0), |d| d.parse())?;
    let info = CacheInfo {
        format_version: headstart_cache::FORMAT_VERSION,
        model_name: "synthetic".into(),
        model_fingerprint: format!("synthetic-{dim}"),
        feature_dim: dim,
        preprocessing: serde_json::json!({}),
        created_by: "synth_cache".into(),
    };
    let cache = Cache::open_or_create(std::path::Path::new(dir), &info)?;
    let mut w = PartWriter::new(&cache, RunInfo::default());
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut feature = vec![0f32; dim];
    for (i, pass) in (0..rows).map(|i| (i, 0)).chain((0..dead).map(|i| (i, 1))) {
        for v in &mut feature {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *v = (x >> 40) as f32 / (1u64 << 24) as f32;
        }
        let (path, hash) = (
            format!("c{}/{i:08}.jpg", i % 100),
            format!("{i:032x}{pass}"),
        );
        w.push(Row {
            path: &path,
            label: Some(&path[..path.find('/').unwrap_or(0)]),
            split: None,
            content_hash: &hash,
            source_version: None,
            view: "original",
            feature: &feature,
        })?;
        if w.len() == part {
            w.flush()?;
        }
    }
    w.flush()?;
    Ok(())
}
