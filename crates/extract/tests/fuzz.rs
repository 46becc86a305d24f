//! Seeded mutation fuzzing of the per-image path: `decode_for` in reduced and
//! exact mode, then (when decoded) the resize and normalisation of
//! `tensor::Preprocessor`, under a time and an allocation budget per input.
//!
//! - `fuzz_campaign` (slow tier, `just test-all`): mutates the seeds in
//!   `tests/fuzz/seeds/` (`HEADSTART_FUZZ_N` inputs, 50,000 by default, from
//!   seed `HEADSTART_FUZZ_SEED`, printed) on two threads. A panic, a verdict
//!   that differs between the modes, or a budget breach is written to
//!   `target/fuzz-found/` and fails the test: keep it in
//!   `tests/fuzz/regressions/`.
//! - `fuzz_regressions_replay` (fast tier): every kept input passes the same
//!   checks.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use headstart_extract::decode::{MAX_ALLOC, decode_for};
use headstart_extract::tensor::{Preprocessor, normalize_into};
use headstart_models::preprocess::{JpegDecode, Preprocess};

/// Counts each thread's live and peak heap bytes.
struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

/// Counts `grown` more live bytes (and `shrunk` fewer) on this thread.
fn count(grown: usize, shrunk: usize) {
    let _ = LIVE.try_with(|l| {
        let v = (l.get() + grown).saturating_sub(shrunk);
        l.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}

// Every method is forwarded, so that zeroed allocations stay as cheap as the
// system makes them (untouched pages), as outside the tests.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), 0);
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), 0);
        // SAFETY: forwarded as is.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size, layout.size());
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(0, layout.size());
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Time one input may take (both modes and preprocessing; release build).
const TIME_BUDGET: Duration = Duration::from_millis(500);
/// Heap one input may use at its peak, on top of what its thread held before.
const ALLOC_BUDGET: usize = MAX_ALLOC as usize + (64 << 20);

/// Recipes whose input sizes make the seeds (136 x 104) decode at 1/8, 1/4
/// and full size (1/2 is never chosen), and the exact one.
fn recipes() -> [Preprocess; 4] {
    let at = |side: u32| Preprocess {
        height: side,
        width: side,
        crop_fraction: 1.0,
        ..Preprocess::tf_lite("input")
    };
    let exact = Preprocess {
        jpeg_decode: JpegDecode::Exact,
        ..at(12)
    };
    [at(12), at(24), at(48), exact]
}

/// What is wrong with one input, if anything. An input over the time budget
/// is timed again: a slow file is slow twice, a busy machine is not.
fn check(bytes: &[u8], recipes: &[Preprocess; 4], reduced: usize) -> Option<String> {
    let first = check_once(bytes, recipes, reduced)?;
    if first.starts_with("took") {
        return check_once(bytes, recipes, reduced).map(|again| format!("{first}, then {again}"));
    }
    Some(first)
}

fn check_once(bytes: &[u8], recipes: &[Preprocess; 4], reduced: usize) -> Option<String> {
    let start = Instant::now();
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let run = std::panic::catch_unwind(|| {
        let mut buf = Vec::new();
        let ours = decode_for(bytes, &mut buf, &recipes[reduced]).map(|v| {
            let mut p = Preprocessor::new(recipes[reduced].clone());
            let mut t = vec![0f32; recipes[reduced].tensor_len()];
            let resized = p.resize_u8(&v).map(|r| r.to_vec());
            resized.map(|r| normalize_into(&recipes[reduced], &r, &mut t))
        });
        let full = decode_for(bytes, &mut Vec::new(), &recipes[3]).map(|_| ());
        (
            ours.map(|_| ()).map_err(|e| e.to_string()),
            full.map_err(|e| e.to_string()),
        )
    });
    let elapsed = start.elapsed();
    let peak = PEAK.with(Cell::get) - base;
    match run {
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Some(format!("panic: {msg}"))
        }
        // One verdict: both decode, or both fail with the same error.
        Ok((a, b)) if a != b => Some(format!(
            "verdicts differ: reduced (recipe {reduced}) {a:?}, exact {b:?}"
        )),
        Ok(_) if elapsed > TIME_BUDGET => Some(format!("took {elapsed:?}")),
        Ok(_) if peak > ALLOC_BUDGET => Some(format!("allocated {} MiB", peak >> 20)),
        Ok(_) => None,
    }
}

fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    v.sort();
    v
}

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz")
        .join(name)
}

/// xorshift64*: deterministic from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to four mutations of `seed`: bit flips, interesting bytes, 16-bit
/// fields at extremes (sizes, lengths), insertions, deletions, marker
/// surgery, truncation, splices from `other`.
fn mutate(seed: &[u8], other: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        if b.len() < 4 {
            break;
        }
        let at = rng.below(b.len());
        match rng.below(9) {
            0 => b[at] ^= 1 << rng.below(8),
            1 => b[at] = [0x00, 0xFF, 0xD9, 0xDA, 0xC4, 0xD0, 0x7F, 0x80][rng.below(8)],
            2 => b[at] = rng.next() as u8,
            3 => {
                let v: u16 = [0, 1, 0xFF, 0xFFFF, 13377, 16384, 65535 / 2][rng.below(7)];
                let at = at.min(b.len() - 2);
                b[at..at + 2].copy_from_slice(&v.to_be_bytes());
            }
            4 => {
                let n = 1 + rng.below(8);
                let fill = [0x00, 0xFF, rng.next() as u8][rng.below(3)];
                b.splice(at..at, std::iter::repeat_n(fill, n));
            }
            5 => {
                let end = (at + 1 + rng.below(64)).min(b.len());
                b.drain(at..end);
            }
            6 => {
                let m = [0xD9, 0xDA, 0xD0, 0xD3, 0xC4, 0xDB, 0xDD, 0xFF, 0x00][rng.below(9)];
                b.splice(at..at, [0xFF, m]);
            }
            7 => b.truncate(at.max(2)),
            _ => {
                let from = rng.below(other.len());
                let n = rng.below(256).min(other.len() - from);
                let end = (at + n).min(b.len());
                b.splice(at..end, other[from..from + n].iter().copied());
            }
        }
    }
    b
}

/// Every input that ever failed a check (tests/fuzz/regressions/) passes it
/// now: no panic, the time and allocation budgets, and one verdict in both
/// modes at every scale.
#[test]
fn fuzz_regressions_replay() {
    let recipes = recipes();
    let mut failures = Vec::new();
    for (path, bytes) in files(&dir("regressions")) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for reduced in 0..3 {
            if let Some(why) = check(&bytes, &recipes, reduced) {
                failures.push(format!("{name}: {why}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The seeds themselves decode in both modes, at every scale.
#[test]
fn fuzz_seeds_decode() {
    let recipes = recipes();
    for (path, bytes) in files(&dir("seeds")) {
        for r in &recipes {
            let got = decode_for(&bytes, &mut Vec::new(), r).map(|v| v.dimensions());
            assert!(got.is_ok(), "{}: {:?}", path.display(), got.err());
        }
    }
}

#[test]
#[ignore = "slow tier: `just test-all`"]
fn fuzz_campaign() {
    let seed: u64 = std::env::var("HEADSTART_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(26);
    let n: usize = std::env::var("HEADSTART_FUZZ_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50_000);
    println!("fuzz: {n} inputs from seed {seed} (HEADSTART_FUZZ_SEED, HEADSTART_FUZZ_N)");
    let seeds = files(&dir("seeds"));
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-found");
    let recipes = recipes();
    let threads = 2;
    let found: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (seeds, out, recipes) = (&seeds, &out, &recipes);
                s.spawn(move || {
                    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (t as u64 + 1));
                    let mut found = Vec::new();
                    for i in (t..n).step_by(threads) {
                        let (_, a) = &seeds[rng.below(seeds.len())];
                        let (_, b) = &seeds[rng.below(seeds.len())];
                        let input = mutate(a, b, &mut rng);
                        if let Some(why) = check(&input, recipes, rng.below(3)) {
                            std::fs::create_dir_all(out).unwrap();
                            let name = format!("{seed}-{i}.bin");
                            std::fs::write(out.join(&name), &input).unwrap();
                            found.push(format!("{name}: {why}"));
                        }
                    }
                    found
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    println!("fuzz: {} of {n} inputs failed a check", found.len());
    assert!(found.is_empty(), "kept in {}: {found:#?}", out.display());
}
