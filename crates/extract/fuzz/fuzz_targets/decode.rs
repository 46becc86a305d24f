//! `decode_for` in reduced and exact mode on arbitrary bytes: never a panic,
//! and one verdict for both modes.
#![no_main]

use headstart_extract::decode::decode_for;
use headstart_models::preprocess::{JpegDecode, Preprocess};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let reduced = Preprocess {
        height: 12,
        width: 12,
        crop_fraction: 1.0,
        ..Preprocess::tf_lite("input")
    };
    let exact = Preprocess {
        jpeg_decode: JpegDecode::Exact,
        ..reduced.clone()
    };
    // One verdict: both decode, or both fail with the same error.
    let verdict = |recipe| {
        decode_for(data, &mut Vec::new(), recipe)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    assert_eq!(verdict(&reduced), verdict(&exact), "verdicts differ");
});
