//! A model-based randomised test of the cache, as storage engines are tested.
//!
//! Random sequences of what extract and compaction do to a cache (write a part
//! of added, changed or relabelled files; delete files; a writer killed
//! mid-part; compaction, crashed at any step or with a writer beside it) run
//! against a real cache directory and against a plain in-memory model of what
//! the live rows must be. After every operation the two must agree. A failing
//! sequence is shrunk to a minimal one and printed with its seed.
//!
//! `HEADSTART_MODEL_CASES=N` runs N sequences instead of the fast tier's few hundred.

use std::collections::BTreeMap;

use crate::read::Step;
use crate::{Cache, CacheInfo, PartWriter, Row, RunInfo};

/// One row to write, as small indices into fixed vocabularies.
#[derive(Debug, Clone, Copy)]
struct R {
    path: u8,
    view: u8,
    hash: u8,
    label: u8,
    split: u8,
    value: u8,
}

/// What happens beside a running compaction.
#[derive(Debug, Clone)]
enum Beside {
    Write(Vec<R>),
    Delete(Vec<u8>),
}

#[derive(Debug, Clone)]
enum Op {
    /// One part: new, changed or relabelled files.
    Write(Vec<R>),
    /// Files removed from the input (a tombstone).
    Delete(Vec<u8>),
    /// A writer killed before its rename: a temporary file stays behind.
    CrashedWrite,
    /// Compaction writing parts of `part_rows` rows, crashing before step
    /// number `crash` (if any), with `beside` run before step number `at`.
    Compact {
        part_rows: usize,
        crash: Option<usize>,
        beside: Option<(usize, Beside)>,
    },
}

/// The live rows: path -> (content hash, view -> (label, split, value)).
type Model = BTreeMap<
    String,
    (
        String,
        BTreeMap<String, (Option<String>, Option<String>, f32)>,
    ),
>;

fn path(i: u8) -> String {
    format!("class{}/img{i}.png", i % 2)
}
fn view(i: u8) -> &'static str {
    ["original", "hflip"][usize::from(i) % 2]
}
fn hash(i: u8) -> String {
    format!("h{i}")
}
fn label(i: u8) -> Option<&'static str> {
    [Some("cat"), Some("dog"), None][usize::from(i) % 3]
}
fn split(i: u8) -> Option<&'static str> {
    [None, Some("test")][usize::from(i) % 2]
}

fn model_write(m: &mut Model, rows: &[R]) {
    for r in rows {
        let e = m
            .entry(path(r.path))
            .or_insert_with(|| (hash(r.hash), BTreeMap::new()));
        if e.0 != hash(r.hash) {
            // A changed file: its other views are stale.
            *e = (hash(r.hash), BTreeMap::new());
        }
        e.1.insert(
            view(r.view).to_string(),
            (
                label(r.label).map(str::to_string),
                split(r.split).map(str::to_string),
                f32::from(r.value),
            ),
        );
    }
}

fn model_delete(m: &mut Model, paths: &[u8]) {
    for p in paths {
        m.remove(&path(*p));
    }
}

fn cache_write(cache: &Cache, rows: &[R]) -> Result<(), String> {
    let mut w = PartWriter::new(cache, RunInfo::default());
    for r in rows {
        let (p, h) = (path(r.path), hash(r.hash));
        let v = f32::from(r.value);
        w.push(Row {
            path: &p,
            label: label(r.label),
            split: split(r.split),
            content_hash: &h,
            source_version: None,
            view: view(r.view),
            feature: &[v, -v],
        })
        .map_err(|e| e.to_string())?;
    }
    w.flush().map(|_| ()).map_err(|e| e.to_string())
}

fn cache_delete(cache: &Cache, paths: &[u8]) -> Result<(), String> {
    let paths: Vec<String> = paths.iter().map(|p| path(*p)).collect();
    cache.write_tombstones(&paths).map_err(|e| e.to_string())
}

/// The live rows as the cache reports them, in the model's shape.
fn observed(cache: &Cache) -> Result<Model, String> {
    let t = cache.read().map_err(|e| e.to_string())?;
    let mut m = Model::new();
    for i in 0..t.len() {
        let e = m
            .entry(t.paths[i].clone())
            .or_insert_with(|| (t.content_hashes[i].clone(), BTreeMap::new()));
        if e.0 != t.content_hashes[i] {
            return Err(format!(
                "{} is live with two hashes, {} and {}",
                t.paths[i], e.0, t.content_hashes[i]
            ));
        }
        let row = t.row(i);
        if row != [row[0], -row[0]] {
            return Err(format!("{}: feature {row:?} was mangled", t.paths[i]));
        }
        let old = e.1.insert(
            t.views[i].clone(),
            (t.labels[i].clone(), t.splits[i].clone(), row[0]),
        );
        if old.is_some() {
            return Err(format!("{} {} is live twice", t.paths[i], t.views[i]));
        }
    }
    Ok(m)
}

fn info() -> CacheInfo {
    CacheInfo {
        format_version: crate::FORMAT_VERSION,
        model_name: "m".into(),
        model_fingerprint: "fp".into(),
        feature_dim: 2,
        preprocessing: serde_json::Value::Null,
        created_by: "test".into(),
    }
}

/// Runs `ops` on a fresh cache; the first disagreement with the model, if any.
fn check(ops: &[Op]) -> Result<(), String> {
    // In memory where the machine has it: every part is fsynced, and what is
    // tested here is the naming and ordering of files, not the disk.
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .map_err(|e| e.to_string())?;
    let cache = Cache::open_or_create(dir.path(), &info()).map_err(|e| e.to_string())?;
    let mut model = Model::new();
    for (n, op) in ops.iter().enumerate() {
        match op {
            Op::Write(rows) => {
                cache_write(&cache, rows)?;
                model_write(&mut model, rows);
            }
            Op::Delete(paths) => {
                cache_delete(&cache, paths)?;
                model_delete(&mut model, paths);
            }
            Op::CrashedWrite => {
                let tmp = crate::write::temp_path(&cache.parts_dir().join("x.parquet"));
                std::fs::write(tmp, b"PAR1 half a part").map_err(|e| e.to_string())?;
            }
            Op::Compact {
                part_rows,
                crash,
                beside,
            } => {
                let mut k = 0;
                let mut failed = None;
                let r = cache.compact_with(RunInfo::default(), *part_rows, &mut |s: Step| {
                    if let Some((at, b)) = beside
                        && *at == k
                    {
                        let r = match b {
                            Beside::Write(rows) => {
                                model_write(&mut model, rows);
                                cache_write(&cache, rows)
                            }
                            Beside::Delete(paths) => {
                                model_delete(&mut model, paths);
                                cache_delete(&cache, paths)
                            }
                        };
                        if let Err(e) = r {
                            failed = Some(format!("writer beside compaction at {s:?}: {e}"));
                        }
                    }
                    let go_on = *crash != Some(k);
                    k += 1;
                    go_on
                });
                if let Some(e) = failed {
                    return Err(e);
                }
                match (r, crash) {
                    (Err(e), None) => return Err(format!("op {n}: compaction failed: {e}")),
                    (Err(e), Some(_)) if !e.to_string().contains("simulated crash") => {
                        return Err(format!("op {n}: compaction failed: {e}"));
                    }
                    (Ok(_), _) if crash.is_none() && beside.is_none() => {
                        let idx = cache.live_index().map_err(|e| e.to_string())?;
                        if idx.dead_rows != 0 {
                            return Err(format!(
                                "op {n}: {} dead rows after compaction",
                                idx.dead_rows
                            ));
                        }
                    }
                    _ => {}
                }
            }
        }
        let seen = observed(&cache)?;
        if seen != model {
            return Err(format!(
                "after op {n} ({op:?}):\n  cache: {seen:?}\n  model: {model:?}"
            ));
        }
    }
    Ok(())
}

/// xorshift64*: a seeded generator with no dependencies.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u8 {
        (self.next() % n) as u8
    }
    fn rows(&mut self) -> Vec<R> {
        (0..1 + self.below(4))
            .map(|_| R {
                path: self.below(6),
                view: self.below(2),
                hash: self.below(3),
                label: self.below(3),
                split: self.below(2),
                value: self.below(100),
            })
            .collect()
    }
    fn paths(&mut self) -> Vec<u8> {
        (0..1 + self.below(3)).map(|_| self.below(6)).collect()
    }
    fn op(&mut self) -> Op {
        match self.below(20) {
            0..=7 => Op::Write(self.rows()),
            8..=10 => Op::Delete(self.paths()),
            11 => Op::CrashedWrite,
            _ => Op::Compact {
                part_rows: 1 + usize::from(self.below(3)),
                crash: (self.below(2) == 0).then(|| usize::from(self.below(12))),
                beside: (self.below(3) == 0).then(|| {
                    let at = usize::from(self.below(8));
                    if self.below(2) == 0 {
                        (at, Beside::Write(self.rows()))
                    } else {
                        (at, Beside::Delete(self.paths()))
                    }
                }),
            },
        }
    }
}

/// Drops operations while the sequence still fails.
fn shrink(mut ops: Vec<Op>) -> Vec<Op> {
    let mut i = 0;
    while i < ops.len() {
        let mut fewer = ops.clone();
        fewer.remove(i);
        if check(&fewer).is_err() {
            ops = fewer;
        } else {
            i += 1;
        }
    }
    ops
}

#[test]
fn random_operation_sequences_keep_exactly_the_live_rows() {
    let cases: u64 = std::env::var("HEADSTART_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    for seed in 1..=cases {
        let mut g = Gen(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let ops: Vec<Op> = (0..4 + g.below(9)).map(|_| g.op()).collect();
        if let Err(first) = check(&ops) {
            let small = shrink(ops);
            let why = check(&small).err().unwrap_or(first);
            panic!(
                "seed {seed} fails; shrunk to {} op(s):\n{small:#?}\n{why}",
                small.len()
            );
        }
    }
}
