//! `scripts/shards.sh` (the body of `just shards`): N local shard processes into one
//! cache give the same live rows as one process.

use crate::common;

use common::rows;

use std::path::Path;
use std::process::{Command, Output};

/// Images per class of the input: 20 images in all.
const PER_CLASS: usize = 2;
const TOL: f32 = 1e-5;

use common::describe;

fn shards_sh(input: &Path, cache: &Path, n: &str, extra: &[&str]) -> Output {
    Command::new("bash")
        .arg(common::repo().join("scripts/shards.sh"))
        .arg(input)
        .arg(cache)
        .arg(n)
        .args(extra)
        .env("HEADSTART", common::bin())
        .env("HEADSTART_HOME", common::home())
        .env_remove("ORT_DYLIB_PATH")
        // A scheduler's array variables must not override the script's --shard.
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("AWS_BATCH_JOB_ARRAY_INDEX")
        .output()
        .expect("run bash scripts/shards.sh")
}

#[test]
#[ignore = "slow tier: `just test-all`"]
fn shards_script_matches_a_single_process_run() {
    let tmp = tempfile::Builder::new()
        .prefix("shards-recipe-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir");
    let input = tmp.path().join("input");
    common::sample_subset(&input, PER_CLASS);
    let n_images = std::fs::read_dir(&input)
        .unwrap()
        .map(|c| std::fs::read_dir(c.unwrap().path()).unwrap().count())
        .sum::<usize>();
    assert_eq!(n_images, 10 * PER_CLASS);

    let single = tmp.path().join("single");
    common::run_ok(&[
        "-q",
        "extract",
        input.to_str().unwrap(),
        "--out",
        single.to_str().unwrap(),
        "--batch-size",
        "4",
    ]);
    let want = rows(&single);
    assert_eq!(want.len(), n_images);

    let sharded = tmp.path().join("sharded");
    let out = shards_sh(
        &input,
        &sharded,
        "3",
        &["--batch-size", "4", "--threads", "1"],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let got = rows(&sharded);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "different rows"
    );
    for (k, (l, s, h, f)) in &got {
        let (wl, ws, wh, wf) = &want[k];
        assert_eq!((l, s, h), (wl, ws, wh), "{k:?}");
        let d = f
            .iter()
            .zip(wf)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(d < TOL, "{k:?}: max abs diff {d}");
    }
    // Every shard wrote its own part(s): the union came from several processes.
    let parts = std::fs::read_dir(sharded.join("parts"))
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name();
            let n = n.to_string_lossy();
            !n.starts_with('.') && n.ends_with(".parquet")
        })
        .count();
    assert!(parts >= 2, "only {parts} part(s) from 3 shard processes");

    // A rerun finds everything cached; extra arguments reach every process.
    let out = shards_sh(&input, &sharded, "3", &["--json"]);
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summaries: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}\n{}", describe(&out)));
    assert_eq!(summaries.len(), 3, "{stdout}");
    for s in &summaries {
        assert_eq!(s["extracted"].as_u64(), Some(0), "{s}");
    }
    let cached: u64 = summaries
        .iter()
        .map(|s| s["cached"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(cached, n_images as u64, "{stdout}");
    assert_eq!(rows(&sharded).len(), n_images);

    // A failing shard makes the script fail; bad usage is refused.
    let out = shards_sh(&input, &tmp.path().join("bad"), "2", &["--device", "tpu"]);
    assert!(!out.status.success(), "{}", describe(&out));
    let out = shards_sh(&input, &sharded, "0", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
}
