//! Shared helpers for the end-to-end tests: the real `headstart` binary and one
//! provisioned runtime + default model for all tests, installed through the
//! project's own code path (`runtime install`, `models fetch`) into a cache under
//! the target directory. The code's locks make concurrent test binaries safe.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The shared headstart cache for tests.
pub fn home() -> PathBuf {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    HOME.get_or_init(|| {
        let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("headstart-home");
        for args in [&["runtime", "install"][..], &["models", "fetch"][..]] {
            let out = Command::new(bin())
                .args(args)
                .env("HEADSTART_HOME", &home)
                .env_remove("ORT_DYLIB_PATH")
                .output()
                .expect("run headstart");
            assert!(
                out.status.success(),
                "provisioning `headstart {}` failed:\n{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        home
    })
    .clone()
}

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_headstart")
}

/// A command for the binary with the shared test cache.
pub fn headstart() -> Command {
    let mut c = Command::new(bin());
    c.env("HEADSTART_HOME", home()).env_remove("ORT_DYLIB_PATH");
    c
}

/// Runs `headstart ARGS` and asserts it succeeded; returns stdout.
pub fn run_ok(args: &[&str]) -> String {
    let out = headstart().args(args).output().expect("run headstart");
    assert!(
        out.status.success(),
        "headstart {} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `headstart ARGS` and returns the whole output.
pub fn run(args: &[&str]) -> Output {
    headstart().args(args).output().expect("run headstart")
}

/// The repository root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The installed default model's ONNX file.
pub fn default_model() -> PathBuf {
    home().join("models/efficientnet-lite0/model.onnx")
}

/// The installed runtime library.
pub fn runtime_lib() -> PathBuf {
    home().join("runtime/onnxruntime-1.32.0/libonnxruntime.so.1.32.0")
}

/// Copies the first `per_class` images of each class of the sample train split to `dst/<class>/`.
pub fn sample_subset(dst: &Path, per_class: usize) {
    let src = repo().join("data/fashion-mnist-mini/train");
    let mut classes: Vec<_> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    classes.sort();
    for class in classes {
        let name = class.file_name().unwrap();
        let mut files: Vec<_> = std::fs::read_dir(&class)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        std::fs::create_dir_all(dst.join(name)).unwrap();
        for f in files.into_iter().take(per_class) {
            std::fs::copy(&f, dst.join(name).join(f.file_name().unwrap())).unwrap();
        }
    }
}

/// A fresh folder `target/tmp/<prefix>-<pid>` for this test binary; folders left
/// by earlier, finished runs (their process is gone) are removed.
pub fn scratch(prefix: &str) -> PathBuf {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    for e in std::fs::read_dir(base).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // Only `<prefix>-<pid>`: `py-ray` must not take `py-ray-kill-<pid>`
        // of a test running beside it.
        if let Some(pid) = name.strip_prefix(&format!("{prefix}-"))
            && !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && !Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    let root = base.join(format!("{prefix}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    root
}

/// (label, split, content hash, feature) by (path, view); panics on a repeated key.
pub type Rows = BTreeMap<(String, String), (Option<String>, Option<String>, String, Vec<f32>)>;

/// The live rows of a cache keyed by (path, view).
pub fn rows(cache: &Path) -> Rows {
    let t = headstart_cache::read_features(&[cache.to_path_buf()]).expect("read cache");
    let mut m = Rows::new();
    for i in 0..t.len() {
        let key = (t.paths[i].clone(), t.views[i].clone());
        let v = (
            t.labels[i].clone(),
            t.splits[i].clone(),
            t.content_hashes[i].clone(),
            t.row(i).to_vec(),
        );
        assert!(m.insert(key.clone(), v).is_none(), "{key:?} is live twice");
    }
    m
}

/// Status, stdout and stderr of a finished command, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A Python interpreter with `packages` (pip requirement strings) installed: the
/// one in `HEADSTART_TEST_PYTHON` when set, else the venv `target/tmp/py-venv`.
pub fn python_with(packages: &[&str]) -> PathBuf {
    if let Ok(p) = std::env::var("HEADSTART_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    venv("py-venv", packages)
}

/// The venv `target/tmp/<name>` with `packages` installed, made on first use and
/// locked against other test processes; returns its python.
pub fn venv(name: &str, packages: &[&str]) -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let python = venv.join("bin/python");
    let lock = std::fs::File::create(venv.with_extension("lock")).expect("venv lock file");
    lock.lock().expect("lock the venv");
    let done = venv.join(format!(
        "installed-{}",
        packages.join("+").replace(['/', '=', '[', ']'], "_")
    ));
    if !done.exists() {
        if !python.exists() {
            run_checked(Command::new("python3").args(["-m", "venv"]).arg(&venv));
        }
        pip_install(&python, packages);
        std::fs::write(&done, b"").expect("venv marker");
    }
    python
}

/// `python -m pip install --quiet ARGS`, asserting it succeeds.
pub fn pip_install(python: &Path, args: &[&str]) {
    run_checked(
        Command::new(python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(args),
    );
}

fn run_checked(cmd: &mut Command) {
    let out = cmd.output().expect("run python");
    assert!(out.status.success(), "{cmd:?} failed:\n{}", describe(&out));
}

/// Every file below `dir`, recursively, sorted.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The largest absolute difference between two equally long vectors.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
