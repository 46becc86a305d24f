//! Decode time of every JPEG under DIR (recursively) with the default recipe
//! (EfficientNet-Lite0's: a reduced DCT scale where it applies) and with
//! exact decoding: ROUNDS rounds, each decoding every file in both modes;
//! prints the times summed over the files, the median round of each mode,
//! and how many files the reduced decoder handed to the full decode (damaged
//! data, or a layout it does not read). Build it from two trees and run the
//! binaries in turn to compare decoders.
//!
//! ```sh
//! cargo run --release -p headstart-extract --example decode_times -- DIR [ROUNDS]
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use headstart_extract::decode::decode_for;
use headstart_models::preprocess::{JpegDecode, Preprocess};

fn jpegs(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("DIR") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            jpegs(&p, out);
        } else if p
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"))
        {
            out.push(p);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(args.get(1).expect("usage: decode_times DIR [ROUNDS]"));
    let rounds: usize = args.get(2).map_or(3, |r| r.parse().expect("ROUNDS"));
    let mut paths = Vec::new();
    jpegs(dir, &mut paths);
    paths.sort();
    let files: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect();
    let reduced = Preprocess::tf_lite("input");
    let exact = Preprocess {
        jpeg_decode: JpegDecode::Exact,
        ..reduced.clone()
    };
    let mut buf = Vec::new();
    let mut full_size = 0;
    for bytes in &files {
        if let Ok(img) = decode_for(bytes, &mut buf, &reduced) {
            let (w, h) = img.dimensions();
            // The larger side is the same either way round (EXIF orientation).
            let r = reduced.jpeg_scale(w.max(h), w.min(h));
            full_size += usize::from(r > 1);
        }
    }
    let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..rounds {
        for (mode, recipe) in [&reduced, &exact].into_iter().enumerate() {
            let start = Instant::now();
            for (path, bytes) in paths.iter().zip(&files) {
                if let Err(e) = decode_for(bytes, &mut buf, recipe) {
                    println!("{}: {e}", path.display());
                }
            }
            times[mode].push(start.elapsed());
        }
    }
    let median = |t: &mut Vec<Duration>| {
        t.sort();
        t[t.len() / 2].as_secs_f64() * 1000.0
    };
    let (r, e) = (median(&mut times[0]), median(&mut times[1]));
    println!(
        "{} files ({full_size} decoded at full size where a reduced scale applies), median of {rounds} rounds: \
         reduced {r:.0} ms ({:.1} ms/file), exact {e:.0} ms ({:.1} ms/file)",
        paths.len(),
        r / paths.len() as f64,
        e / paths.len() as f64
    );
}
