//! The Python package on real engines (slow tier): the wheel is built from
//! this checkout the way the README says (`pip install ./crates/python`, through
//! maturin), each engine gets a venv of its own under the target folder, and the
//! README's examples run verbatim. The features must equal the CLI's exactly.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use crate::common::{self, describe, run_ok};

/// The headstart wheel, built once per test run with pip (which fetches
/// maturin, as `pip install ./crates/python` does).
fn wheel() -> &'static Path {
    static WHEEL: OnceLock<PathBuf> = OnceLock::new();
    WHEEL.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wheels");
        let _ = std::fs::remove_dir_all(&dir);
        let python = common::python_with(&["wheel"]);
        let out = Command::new(&python)
            .args(["-m", "pip", "wheel", "--no-deps", "--quiet", "-w"])
            .arg(&dir)
            .arg(common::repo().join("crates/python"))
            .output()
            .expect("run pip");
        assert!(
            out.status.success(),
            "building the wheel: {}",
            describe(&out)
        );
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "whl"))
            .expect("a wheel")
    })
}

/// The venv `target/tmp/venv-<name>` with `packages` and the wheel installed
/// (the venv made once; the wheel always anew).
fn venv(name: &str, packages: &[&str]) -> PathBuf {
    let python = common::venv(&format!("venv-{name}"), packages);
    common::pip_install(
        &python,
        &["--force-reinstall", "--no-deps", wheel().to_str().unwrap()],
    );
    python
}

/// The README's code block that starts with `# example: <name>`.
fn example(name: &str) -> String {
    let readme = std::fs::read_to_string(common::repo().join("README.md")).unwrap();
    let start = readme
        .find(&format!("```python\n# example: {name}\n"))
        .unwrap_or_else(|| panic!("README has no `# example: {name}` block"));
    let code = &readme[start + "```python\n".len()..];
    code[..code.find("```").unwrap()].to_string()
}

/// Runs `code` with `python` in `cwd`, with the shared headstart cache: in a
/// network namespace of its own whose only interface is loopback (the engines'
/// servers, which bind every interface, are then reachable on loopback only),
/// and in a process group of its own, killed with everything it started when
/// it ends.
fn run_python(python: &Path, cwd: &Path, code: &str) -> String {
    use std::os::unix::process::CommandExt;
    let script = cwd.join(format!("script-{}.py", std::process::id()));
    std::fs::write(&script, code).unwrap();
    // A hung engine fails the test after 20 minutes instead of hanging it.
    let child = Command::new("timeout")
        .args(["--kill-after=10", "1200", "unshare", "--net", "sh", "-c"])
        .arg("ip link set lo up && exec \"$0\" \"$@\"")
        .arg(python)
        .arg(&script)
        .current_dir(cwd)
        .env("HEADSTART_HOME", common::home())
        .env("PYSPARK_PYTHON", python)
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .env("RAY_USAGE_STATS_ENABLED", "0")
        .env("RAY_AUTH_MODE", "disabled")
        .env_remove("ORT_DYLIB_PATH")
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python");
    let group = child.id() as i32;
    let out = child.wait_with_output().unwrap();
    // Whatever the script left running (Ray's workers, Spark's JVM) goes too.
    let _ = Command::new("kill")
        .args(["-9", "--", &format!("-{group}")])
        .output();
    assert!(out.status.success(), "{code}\n{}", describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `dir/images.parquet` with columns id, label, image (binary): `per_class`
/// sample images of each class, then one corrupt image.
fn images_parquet(dir: &Path, per_class: usize) -> usize {
    use arrow_array::{ArrayRef, BinaryArray, Int64Array, RecordBatch, StringArray};
    let images = dir.join("loose");
    common::sample_subset(&images, per_class);
    let mut files: Vec<PathBuf> = common::walk(&images);
    files.sort();
    let mut bytes: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let mut labels: Vec<String> = files
        .iter()
        .map(|f| {
            f.parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    bytes.push(b"\x89PNG\r\n\x1a\n not really".to_vec());
    labels.push("bag".into());
    let n = bytes.len();
    let batch = RecordBatch::try_from_iter([
        (
            "id",
            Arc::new(Int64Array::from_iter_values(0..n as i64)) as ArrayRef,
        ),
        ("label", Arc::new(StringArray::from(labels))),
        (
            "image",
            Arc::new(BinaryArray::from_iter_values(bytes.iter().map(|b| &b[..]))),
        ),
    ])
    .unwrap();
    let file = std::fs::File::create(dir.join("images.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    n
}

/// Checks, with the engine's Python, that the engine's output (Parquet under
/// `out`) has one row per image of `dir/images.parquet`, features equal to the
/// CLI's cache of the same file (max abs difference 0) and an error in the
/// corrupt image's row.
fn check_engine_output(python: &Path, dir: &Path, out: &str, images: usize) {
    let cache = dir.join("cli-cache");
    // Exit 3: the corrupt image is an error row.
    let parquet = dir.join("images.parquet");
    let cli = common::run(&[
        "extract",
        parquet.to_str().unwrap(),
        "--out",
        cache.to_str().unwrap(),
    ]);
    assert_eq!(cli.status.code(), Some(3), "{}", describe(&cli));
    let code = format!(
        r#"
import glob, headstart, numpy as np, pyarrow.parquet as pq, pyarrow as pa
cli = headstart.read_features("cli-cache")
by_path = {{p: i for i, p in enumerate(cli["path"].to_pylist())}}
X = headstart.feature_matrix(cli)
got = pa.concat_tables([pq.read_table(f) for f in sorted(glob.glob("{out}/*.parquet"))])
assert got.num_rows == {images}, got.num_rows
worst, errors = 0.0, 0
for row in got.to_pylist():
    if row["error"] is not None:
        assert row["feature"] is None and row["id"] == {images} - 1, row
        errors += 1
        continue
    ref = X[by_path["images.parquet/%d" % row["id"]]]
    worst = max(worst, float(np.abs(np.asarray(row["feature"], dtype=np.float32) - ref).max()))
assert errors == 1, errors
print("max abs difference", worst)
assert worst == 0.0, worst
"#
    );
    let printed = run_python(python, dir, &code);
    assert!(printed.contains("max abs difference 0.0"), "{printed}");
}

/// The README's notebook example, then the same steps through the CLI: the
/// features, and the predictions of heads fitted on them, are equal.
#[test]
#[ignore = "slow tier: `just test-all`"]
fn the_notebook_example_equals_the_cli() {
    let dir = common::scratch("py-notebook");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::os::unix::fs::symlink(
        common::repo().join("data/fashion-mnist-mini"),
        dir.join("data/fashion-mnist-mini"),
    )
    .unwrap();
    let python = venv("notebook", &["pyarrow", "pandas", "numpy"]);
    let printed = run_python(&python, &dir, &example("notebook"));
    assert!(printed.contains("1300 extracted, 0 failed"), "{printed}");
    let s = |p: PathBuf| p.to_str().unwrap().to_string();
    let (cache, head) = (s(dir.join("cli-cache")), s(dir.join("cli-head")));
    let data = s(dir.join("data/fashion-mnist-mini"));
    run_ok(&["extract", &data, "--out", &cache]);
    run_ok(&["fit", &cache, "--out", &head, "--c", "0.1,1,10"]);
    let bag = format!("{data}/test/bag");
    run_ok(&[
        "predict",
        &head,
        &bag,
        "--cache",
        &cache,
        "--format",
        "json",
        "-o",
        &s(dir.join("cli.json")),
    ]);
    let check = r#"
import json, headstart, numpy as np
a, b = headstart.read_features("cache"), headstart.read_features("cli-cache")
assert a["path"].to_pylist() == b["path"].to_pylist()
assert np.array_equal(headstart.feature_matrix(a), headstart.feature_matrix(b))
cli = json.load(open("cli.json"))
py = headstart.Classifier.open("head", cache=["cache"]).predict(["data/fashion-mnist-mini/test/bag"])
assert len(cli) == py.num_rows == 30, (len(cli), py.num_rows)
for c, p in zip(cli, py.to_pylist()):
    assert c["predictions"][0]["label"] == p["label"], (c, p)
    # JSON carries the f32 in its shortest form: equal as f32.
    assert np.float32(c["predictions"][0]["probability"]) == np.float32(p["probability"]), (c, p)
print("same predictions")
"#;
    assert!(run_python(&python, &dir, check).contains("same predictions"));
}

/// The README's Ray Data example over image Parquet: one row per image,
/// the CLI's features exactly, an error for the corrupt image, job succeeds.
#[test]
#[ignore = "slow tier: `just test-all`"]
fn the_ray_example_gives_the_clis_features() {
    let dir = common::scratch("py-ray");
    std::fs::create_dir_all(&dir).unwrap();
    let n = images_parquet(&dir, 6);
    let python = venv("ray", &["ray[data]", "pyarrow", "pandas", "numpy"]);
    run_python(&python, &dir, &example("ray"));
    check_engine_output(&python, &dir, "ray-features", n);
}

/// The README's Spark example (`mapInArrow`, local[2], Java from Debian when
/// missing): the CLI's features exactly, an error for the corrupt image.
#[test]
#[ignore = "slow tier: `just test-all`"]
fn the_spark_example_gives_the_clis_features() {
    let java = Command::new("java").arg("-version").output();
    if !java.is_ok_and(|o| o.status.success()) {
        let out = Command::new("apt-get")
            .args([
                "install",
                "-y",
                "--no-install-recommends",
                "default-jre-headless",
            ])
            .output()
            .expect("apt-get");
        assert!(out.status.success(), "installing Java: {}", describe(&out));
    }
    let dir = common::scratch("py-spark");
    std::fs::create_dir_all(&dir).unwrap();
    let n = images_parquet(&dir, 6);
    let python = venv("spark", &["pyspark", "pyarrow", "pandas", "numpy"]);
    run_python(&python, &dir, &example("spark"));
    check_engine_output(&python, &dir, "spark-features", n);
}

/// A Ray worker killed mid-job (SIGKILL, as the kernel's OOM killer or a lost
/// node does) has its batch retried by Ray on a new actor: the job succeeds
/// with one row per image and the CLI's features exactly.
#[test]
#[ignore = "slow tier: `just test-all`"]
fn a_killed_ray_worker_is_retried_with_the_same_features() {
    let dir = common::scratch("py-ray-kill");
    std::fs::create_dir_all(&dir).unwrap();
    let n = images_parquet(&dir, 12);
    let python = venv("ray", &["ray[data]", "pyarrow", "pandas", "numpy"]);
    let code = r#"
import os, signal, subprocess, threading, time
import headstart, ray

ray.init(num_cpus=2, include_dashboard=False)
killed = []

def kill_one_worker():
    # The first MapWorker that has started: killed once, mid-job.
    for _ in range(600):
        ps = subprocess.run(["pgrep", "-f", "MapWorker"], capture_output=True, text=True).stdout.split()
        if ps:
            time.sleep(1.0)
            os.kill(int(ps[0]), signal.SIGKILL)
            killed.append(int(ps[0]))
            return
        time.sleep(0.1)

threading.Thread(target=kill_one_worker, daemon=True).start()
ds = ray.data.read_parquet("images.parquet").map_batches(
    headstart.FeatureExtractor,
    fn_constructor_kwargs={"model": "efficientnet-lite0", "intra_threads": 1},
    batch_format="pyarrow", batch_size=8, concurrency=2, num_cpus=0.5,
)
ds.drop_columns(["image"]).write_parquet("killed-features")
print("killed", killed)
assert killed, "no worker was killed"
"#;
    let printed = run_python(&python, &dir, code);
    assert!(printed.contains("killed ["), "{printed}");
    check_engine_output(&python, &dir, "killed-features", n);
}
