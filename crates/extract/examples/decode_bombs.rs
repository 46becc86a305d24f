//! Decodes 16 hostile JPEGs at once, one per thread, in reduced and exact
//! mode: progressive files of a few hundred bytes whose headers declare
//! 13377 x 13377 (issue 26: 1.08 GB each in jpeg-decoder, 1.58 GB through
//! zune-jpeg). Measure the peak with
//!
//! ```sh
//! /usr/bin/time -v target/release/examples/decode_bombs
//! ```

use headstart_extract::decode::decode_for;
use headstart_models::preprocess::{JpegDecode, Preprocess};

fn main() {
    let mut bomb = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut bomb, 50);
    enc.set_progressive(true);
    enc.encode(&[128; 8 * 8 * 3], 8, 8, jpeg_encoder::ColorType::Rgb)
        .expect("encode");
    let sof = bomb
        .windows(2)
        .position(|m| m == [0xFF, 0xC2])
        .expect("SOF2");
    bomb[sof + 5..sof + 9].copy_from_slice(&[0x34, 0x41, 0x34, 0x41]); // 13377
    let reduced = Preprocess::tf_lite("input");
    let exact = Preprocess {
        jpeg_decode: JpegDecode::Exact,
        ..reduced.clone()
    };
    std::thread::scope(|s| {
        for t in 0..16 {
            let (bomb, recipe) = (&bomb, if t % 2 == 0 { &reduced } else { &exact });
            s.spawn(move || {
                let r = decode_for(bomb, &mut Vec::new(), recipe).map(|v| v.dimensions());
                println!("thread {t:2} ({} bytes): {r:?}", bomb.len());
            });
        }
    });
}
