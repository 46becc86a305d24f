//! Decodes every JPEG in DIR at 1/4 and 1/8 (`decode_for` with a recipe
//! that asks for that scale; 1/2 is never chosen) and at full size, writes the reduced decodes as
//! PNG to OUT (`<stem>-<r>.png`, for scripts/bench_reduced_exactness.py) and
//! prints the decode times summed over the files.
//!
//! ```sh
//! cargo run --release -p headstart-extract --example reduced_scales -- DIR OUT
//! ```

use std::time::{Duration, Instant};

use headstart_extract::decode::decode_for;
use headstart_models::preprocess::{JpegDecode, Preprocess};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (dir, out) = (&args[1], std::path::Path::new(&args[2]));
    std::fs::create_dir_all(out).unwrap();
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg" || e == "jpeg"))
        .collect();
    paths.sort();
    let mut times = [Duration::ZERO; 3];
    let mut buf = Vec::new();
    for path in &paths {
        let bytes = std::fs::read(path).unwrap();
        let exact = Preprocess {
            jpeg_decode: JpegDecode::Exact,
            ..Preprocess::tf_lite("input")
        };
        let t = Instant::now();
        let Ok(full) = decode_for(&bytes, &mut buf, &exact) else {
            println!("{}: not decoded", path.display());
            continue;
        };
        times[0] += t.elapsed();
        let (w, h) = full.dimensions();
        for (i, r) in [4u32, 8].into_iter().enumerate() {
            let side = w.min(h) / r;
            let recipe = Preprocess {
                height: side,
                width: side,
                crop_fraction: 1.0,
                ..Preprocess::tf_lite("input")
            };
            assert_eq!(recipe.jpeg_scale(w, h), r);
            let t = Instant::now();
            let img = decode_for(&bytes, &mut buf, &recipe).unwrap();
            times[i + 1] += t.elapsed();
            let (iw, ih) = img.dimensions();
            let stem = path.file_stem().unwrap().to_string_lossy();
            image::save_buffer(
                out.join(format!("{stem}-{r}.png")),
                img.as_raw(),
                iw,
                ih,
                image::ColorType::Rgb8,
            )
            .unwrap();
        }
    }
    println!(
        "{} files: full {:.2} s, 1/4 {:.2} s, 1/8 {:.2} s",
        paths.len(),
        times[0].as_secs_f64(),
        times[1].as_secs_f64(),
        times[2].as_secs_f64()
    );
}
