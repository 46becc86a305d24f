//! End-to-end tests of `headstart extract`: the real binary and backbone on
//! small real data, checked against the model run in-process (the golden test),
//! a battery of bad files, fingerprint refusal, manifests, containers and
//! `--features auto`. The pipeline's rules (reruns, tombstones, relabelling,
//! NaN features, strict mode, shards) are tested in-process on the test model
//! in `crates/extract/src/rules_test.rs`.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use headstart_cache::{Cache, read_features};
use headstart_extract::decode::decode_rgb8;
use headstart_extract::pipeline::content_hash;
use headstart_extract::tensor::Preprocessor;
use headstart_models::preprocess::{Layout, Preprocess};
use headstart_runtime::{Backbone, SessionConfig};
use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, LumaA, Rgb, Rgba};
use serde_json::Value;

const TOL: f32 = 1e-5;

// ---------------------------------------------------------------- helpers

/// `headstart -q extract INPUT --out OUT --json EXTRA...`
fn extract(input: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&str> = vec!["-q", "extract"];
    args.push(input.to_str().expect("utf-8 temp path"));
    args.extend(["--out", out.to_str().expect("utf-8 temp path"), "--json"]);
    args.extend(extra);
    common::run(&args)
}

use common::describe;

/// The `--json` summary of a run that exited with `code`.
fn summary(out: &Output, code: i32) -> Value {
    assert_eq!(out.status.code(), Some(code), "{}", describe(out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("summary JSON: {e}\n{}", describe(out)))
}

/// Runs an extract that must succeed (exit 0) and returns its summary.
fn extract_ok(input: &Path, out: &Path, extra: &[&str]) -> Value {
    summary(&extract(input, out, extra), 0)
}

fn n(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("summary has no `{key}`: {v}"))
}

/// One live row as read back through the cache reader.
#[derive(Debug, Clone)]
struct Rec {
    label: Option<String>,
    split: Option<String>,
    hash: String,
    feature: Vec<f32>,
}

/// Live rows by (path, view); panics if a key comes back twice.
fn rows(cache: &Path) -> BTreeMap<(String, String), Rec> {
    let t = read_features(&[cache.to_path_buf()]).expect("read cache");
    let mut m = BTreeMap::new();
    for i in 0..t.len() {
        let key = (t.paths[i].clone(), t.views[i].clone());
        let rec = Rec {
            label: t.labels[i].clone(),
            split: t.splits[i].clone(),
            hash: t.content_hashes[i].clone(),
            feature: t.row(i).to_vec(),
        };
        assert!(
            m.insert(key.clone(), rec).is_none(),
            "{key:?} is live twice"
        );
    }
    m
}

fn assert_close(a: &[f32], b: &[f32], what: &str) {
    let d = common::max_abs_diff(a, b);
    assert!(d < TOL, "{what}: max abs diff {d} >= {TOL}");
}

fn png_bytes(img: &DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .expect("encode png");
    out
}

/// A fresh scratch folder under the target directory (kept small; removed on drop).
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("extract-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir")
}

/// Images of the shared reference input: one per Fashion-MNIST class plus two photos.
struct Reference {
    input: PathBuf,
    /// Cache of `input` with `--views original,hflip`.
    cache: PathBuf,
}

/// Built once per test binary, under a folder named after this process; folders
/// of earlier, finished runs are removed.
fn reference() -> &'static Reference {
    static R: OnceLock<Reference> = OnceLock::new();
    R.get_or_init(|| {
        let root = common::scratch("extract-reference");
        let input = root.join("input");
        common::sample_subset(&input, 1);
        std::fs::create_dir_all(input.join("photo")).unwrap();
        for p in ["chelsea.png", "coffee.png"] {
            std::fs::copy(
                common::repo().join("tests/data").join(p),
                input.join("photo").join(p),
            )
            .unwrap();
        }
        let cache = root.join("cache");
        let s = extract_ok(&input, &cache, &["--views", "original,hflip"]);
        assert_eq!(n(&s, "extracted"), 12, "{s}");
        assert_eq!(n(&s, "rows_written"), 24, "{s}");
        Reference { input, cache }
    })
}

/// Relative paths of the reference images.
fn reference_paths() -> Vec<String> {
    let r = reference();
    let mut v = Vec::new();
    for class in std::fs::read_dir(&r.input).unwrap() {
        let class = class.unwrap();
        for f in std::fs::read_dir(class.path()).unwrap() {
            let f = f.unwrap();
            v.push(format!(
                "{}/{}",
                class.file_name().to_string_lossy(),
                f.file_name().to_string_lossy()
            ));
        }
    }
    v.sort();
    v
}

fn copy_tree(src: &Path, dst: &Path) {
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            copy_tree(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// Mirrors every row of an NCHW tensor left-right.
fn hflip_nchw(pre: &Preprocess, t: &mut [f32]) {
    assert_eq!(pre.layout, Layout::Nchw);
    for row in t.chunks_exact_mut(pre.width as usize) {
        row.reverse();
    }
}

// ---------------------------------------------------------------- tests

/// Features written by `extract` equal the model run in-process on the same
/// preprocessed tensor, batch 1; `--views original,hflip` stores two rows per
/// image and the hflip row equals the model on the mirrored tensor.
#[test]
fn features_equal_direct_inference_for_original_and_hflip() {
    let r = reference();
    let stored = rows(&r.cache);
    let paths = reference_paths();
    let expected: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|p| [(p.clone(), "hflip".into()), (p.clone(), "original".into())])
        .collect();
    assert_eq!(stored.keys().cloned().collect::<BTreeSet<_>>(), expected);

    let rt = headstart_runtime::init(&common::runtime_lib()).expect("load runtime");
    let cache = Cache::open(&r.cache).unwrap();
    let pre: Preprocess = serde_json::from_value(cache.info().preprocessing.clone()).unwrap();
    assert_eq!(
        pre,
        Preprocess::tf_lite("input"),
        "the default model's recipe"
    );
    let onnx = std::fs::read(common::default_model()).unwrap();
    let mut net = Backbone::open(
        rt,
        "efficientnet-lite0",
        &onnx,
        pre.clone(),
        &["features"],
        &SessionConfig::default(),
    )
    .expect("open backbone");
    let mut prep = Preprocessor::new(pre.clone());
    let mut worst = 0f32;
    for p in &paths {
        let img = decode_rgb8(&std::fs::read(r.input.join(p)).unwrap()).unwrap();
        let mut t = vec![0f32; pre.tensor_len()];
        prep.tensor_into(&img, &mut t).unwrap();
        let original = net.run(&t, 1).unwrap().swap_remove(0);
        assert_eq!(original.len(), cache.info().feature_dim);
        hflip_nchw(&pre, &mut t);
        let flipped = net.run(&t, 1).unwrap().swap_remove(0);
        let so = &stored[&(p.clone(), "original".into())];
        let sf = &stored[&(p.clone(), "hflip".into())];
        assert_close(&so.feature, &original, &format!("{p} original"));
        assert_close(&sf.feature, &flipped, &format!("{p} hflip"));
        // The flip must matter, or the check above proves nothing.
        assert!(
            common::max_abs_diff(&original, &flipped) > 1e-3,
            "{p}: hflip equals original"
        );
        let bytes = std::fs::read(r.input.join(p)).unwrap();
        assert_eq!(so.hash, content_hash(&bytes));
        assert_eq!(so.label.as_deref(), p.split('/').next());
        worst = worst
            .max(common::max_abs_diff(&so.feature, &original))
            .max(common::max_abs_diff(&sf.feature, &flipped));
    }
    eprintln!("max abs diff extract vs in-process batch-1 inference: {worst:e}");
}

// ------------------------------------------------------------ bad files

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend(kind);
    out.extend(data);
    let crc = crc32(&out[start..]);
    out.extend(crc.to_be_bytes());
}

/// A well-formed PNG header claiming `w x h` (colour type, bit depth) followed by a
/// few rows of zeros as a valid zlib stream: a decoder without limits allocates the
/// whole claimed image before it notices the data ends.
fn png_claiming(w: u32, h: u32, color_type: u8, depth: u8) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([depth, color_type, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    // zlib: one stored block of 1024 zero bytes.
    let raw = vec![0u8; 1024];
    let mut z = vec![0x78, 0x01, 0x01];
    z.extend((raw.len() as u16).to_le_bytes());
    z.extend((!(raw.len() as u16)).to_le_bytes());
    z.extend(&raw);
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    z.extend(((b << 16) | a).to_be_bytes());
    png_chunk(&mut out, b"IDAT", &z);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// `bytes` (a PNG) with the CRC of its IDAT chunk broken.
fn break_idat_crc(mut bytes: Vec<u8>) -> Vec<u8> {
    let mut at = 8;
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if &bytes[at + 4..at + 8] == b"IDAT" {
            let crc = at + 8 + len;
            bytes[crc + 3] ^= 0x5a;
            return bytes;
        }
        at += 12 + len;
    }
    panic!("no IDAT chunk");
}

/// Number of components in the first SOF marker of a JPEG.
fn jpeg_components(bytes: &[u8]) -> Option<u8> {
    let at = bytes
        .windows(2)
        .position(|w| w[0] == 0xFF && (0xC0..=0xC2).contains(&w[1]))?;
    bytes.get(at + 9).copied()
}

fn pattern(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(ImageBuffer::from_fn(w, h, |x, y| {
        Rgb([
            (x * 7 % 256) as u8,
            (y * 5 % 256) as u8,
            ((x ^ y) * 3 % 256) as u8,
        ])
    }))
}

/// What the battery expects of each file.
struct Battery {
    /// (relative path as the error row names it, expected stage)
    must_fail: Vec<(String, &'static str)>,
    /// Files that must be extracted besides the copied reference images.
    extracted: Vec<String>,
    /// (file, twin) pairs whose features must be equal.
    twins: Vec<(String, String)>,
}

/// Writes the odd and bad files into `root/odd/` and `root/bad/`.
fn write_battery(root: &Path) -> Battery {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;

    let odd = root.join("odd");
    let bad = root.join("bad");
    std::fs::create_dir_all(&odd).unwrap();
    std::fs::create_dir_all(&bad).unwrap();
    let mut b = Battery {
        must_fail: Vec::new(),
        extracted: Vec::new(),
        twins: Vec::new(),
    };

    // Convertible files.
    let grey_path = reference_paths()
        .into_iter()
        .find(|p| !p.starts_with("photo/"))
        .unwrap();
    let grey = image::open(reference().input.join(&grey_path))
        .unwrap()
        .to_luma8();
    let wide = ImageBuffer::from_fn(grey.width(), grey.height(), |x, y| {
        let v = u16::from(grey.get_pixel(x, y).0[0]) * 257;
        Rgb([v, v, v])
    });
    std::fs::write(
        odd.join("wide16.png"),
        png_bytes(&DynamicImage::ImageRgb16(wide)),
    )
    .unwrap();
    b.twins.push(("odd/wide16.png".into(), grey_path.clone()));
    let la = ImageBuffer::from_fn(grey.width(), grey.height(), |x, y| {
        LumaA([grey.get_pixel(x, y).0[0], 255])
    });
    std::fs::write(
        odd.join("grey_alpha.png"),
        png_bytes(&DynamicImage::ImageLumaA8(la)),
    )
    .unwrap();
    b.twins.push(("odd/grey_alpha.png".into(), grey_path));
    let one = DynamicImage::ImageLuma8(ImageBuffer::from_pixel(1, 1, Luma([180])));
    std::fs::write(odd.join("one_pixel.png"), png_bytes(&one)).unwrap();

    let (w, h) = (48u32, 40u32);
    let cmyk: Vec<u8> = (0..w * h)
        .flat_map(|i| {
            let (x, y) = (i % w, i / w);
            [
                (x * 5) as u8,
                (y * 6) as u8,
                40,
                if x < w / 2 { 0 } else { 90 },
            ]
        })
        .collect();
    let mut jpg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpg, 90)
        .encode(&cmyk, w as u16, h as u16, jpeg_encoder::ColorType::Cmyk)
        .unwrap();
    assert_eq!(jpeg_components(&jpg), Some(4), "not a 4-component JPEG");
    assert!(jpg.windows(5).any(|x| x == b"Adobe"), "no Adobe marker");
    std::fs::write(odd.join("cmyk.jpg"), &jpg).unwrap();

    // Two very different frames; the first frame has few colours, so the GIF
    // palette is exact and the first frame equals its PNG twin pixel for pixel.
    let f0 = ImageBuffer::from_fn(40, 40, |x, y| {
        if (x / 5 + y / 5) % 2 == 0 {
            Rgba([220, 30, 30, 255])
        } else {
            Rgba([250, 250, 250, 255])
        }
    });
    let f1 = ImageBuffer::from_pixel(40, 40, Rgba([10, 20, 200, 255]));
    let mut gif = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new(&mut gif);
        enc.set_repeat(image::codecs::gif::Repeat::Infinite)
            .unwrap();
        enc.encode_frames([f0.clone(), f1].map(image::Frame::new))
            .unwrap();
    }
    std::fs::write(odd.join("animated.gif"), &gif).unwrap();
    let f0_rgb = DynamicImage::ImageRgba8(f0).to_rgb8();
    std::fs::write(
        odd.join("animated_frame0.png"),
        png_bytes(&DynamicImage::ImageRgb8(f0_rgb)),
    )
    .unwrap();
    b.twins
        .push(("odd/animated.gif".into(), "odd/animated_frame0.png".into()));
    for f in [
        "wide16.png",
        "grey_alpha.png",
        "one_pixel.png",
        "cmyk.jpg",
        "animated.gif",
        "animated_frame0.png",
    ] {
        b.extracted.push(format!("odd/{f}"));
    }

    // Files that must fail.
    let mut fail = |name: &str, bytes: &[u8], stage: &'static str| {
        std::fs::write(bad.join(name), bytes).unwrap();
        b.must_fail.push((format!("bad/{name}"), stage));
    };
    fail("zero_bytes.jpg", b"", "decode");
    let mut full = Vec::new();
    pattern(160, 120)
        .write_to(&mut Cursor::new(&mut full), ImageFormat::Jpeg)
        .unwrap();
    fail("truncated.jpg", &full[..full.len() / 2], "decode");
    let random: Vec<u8> = (0u32..4096)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fail("random_bytes.jpg", &random, "decode");
    fail(
        "text.png",
        b"this is not an image, just some text\n",
        "decode",
    );
    fail(
        "bad_crc.png",
        &break_idat_crc(png_bytes(&pattern(16, 16))),
        "decode",
    );
    // 30000 x 30000 RGB: over the side limit.
    fail(
        "huge_header.png",
        &png_claiming(30_000, 30_000, 2, 8),
        "decode",
    );
    // 16000 x 16000 RGBA 16-bit: within the side limit, 2 GB decoded.
    fail(
        "bomb_alloc.png",
        &png_claiming(16_000, 16_000, 6, 16),
        "decode",
    );

    std::os::unix::fs::symlink("loop.png", bad.join("loop.png")).unwrap();
    b.must_fail.push(("bad/loop.png".into(), "list"));

    let name = std::ffi::OsStr::from_bytes(b"not-utf8-\xff\xfe.png");
    std::fs::write(bad.join(name), png_bytes(&pattern(8, 8))).unwrap();
    b.must_fail
        .push(("bad/not-utf8-\u{FFFD}\u{FFFD}.png".into(), "list"));

    let locked = bad.join("no_permission.png");
    std::fs::write(&locked, png_bytes(&pattern(12, 12))).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    if File::open(&locked).is_ok() {
        // Root (CAP_DAC_OVERRIDE) reads it anyway; then it is a valid image and
        // must be extracted. No directory permission trick stops root either.
        eprintln!(
            "note: running with permission to read mode-000 files (root?); \
             bad/no_permission.png is readable, so it is expected to be extracted"
        );
        b.extracted.push("bad/no_permission.png".into());
    } else {
        b.must_fail.push(("bad/no_permission.png".into(), "read"));
    }
    b
}

/// (path, stage, message) rows of an errors Parquet file.
fn error_rows(path: &Path) -> Vec<(String, String, String)> {
    let rows = headstart_cache::read_errors(path).expect("errors file");
    rows.into_iter()
        .map(|r| (r.path, r.stage, r.message))
        .collect()
}

/// A folder of good images plus every kind of bad file: the run completes with
/// exit 3, each bad file has an error row, convertible files are extracted and the
/// good images' features are those of a run without the bad files.
#[test]
fn bad_files_are_recorded_and_the_rest_is_extracted() {
    let r = reference();
    let dir = scratch();
    let input = dir.path().join("input");
    std::fs::create_dir_all(&input).unwrap();
    copy_tree(&r.input, &input);
    let battery = write_battery(&input);
    let cache = dir.path().join("cache");

    let out = extract(&input, &cache, &[]);
    let s = summary(&out, 3);
    let good = reference_paths();
    let errors_file = PathBuf::from(s["errors_file"].as_str().expect("errors_file"));
    let errors = error_rows(&errors_file);
    for (p, st, m) in &errors {
        eprintln!("error row: {p} | {st} | {m}");
    }
    assert_eq!(n(&s, "failed"), battery.must_fail.len() as u64, "{s}");
    assert_eq!(
        n(&s, "extracted"),
        (good.len() + battery.extracted.len()) as u64,
        "{s}"
    );
    let by_path: BTreeMap<&str, (&str, &str)> = errors
        .iter()
        .map(|(p, s, m)| (p.as_str(), (s.as_str(), m.as_str())))
        .collect();
    assert_eq!(by_path.len(), errors.len(), "a path has two error rows");
    for (path, stage) in &battery.must_fail {
        let (got, message) = by_path
            .get(path.as_str())
            .unwrap_or_else(|| panic!("no error row for {path}; rows: {errors:?}"));
        assert_eq!(got, stage, "{path}: {message}");
        assert!(!message.is_empty(), "{path}: empty message");
    }
    assert_eq!(errors.len(), battery.must_fail.len(), "{errors:?}");
    // Decompression bombs fail on the limits, before any large allocation.
    for p in ["bad/huge_header.png", "bad/bomb_alloc.png"] {
        let m = by_path[p].1.to_ascii_lowercase();
        assert!(m.contains("limit"), "{p}: {m}");
    }

    let got = rows(&cache);
    let keys: BTreeSet<&str> = got.keys().map(|(p, _)| p.as_str()).collect();
    let want: BTreeSet<&str> = good
        .iter()
        .chain(&battery.extracted)
        .map(String::as_str)
        .collect();
    assert_eq!(keys, want);
    assert!(got.keys().all(|(_, v)| v == "original"));
    for rec in got.values() {
        assert!(rec.feature.iter().all(|v| v.is_finite()));
    }
    // Good images: as in the run without the bad files.
    let reference_rows = rows(&r.cache);
    for p in &good {
        let key = (p.clone(), "original".to_string());
        assert_close(&got[&key].feature, &reference_rows[&key].feature, p);
    }
    // Converted files: 16-bit and grey+alpha equal their 8-bit grey source, and the
    // animated GIF gives its first frame.
    for (a, b) in &battery.twins {
        let fa = &got[&(a.clone(), "original".into())].feature;
        let fb = got
            .get(&(b.clone(), "original".into()))
            .unwrap_or_else(|| &reference_rows[&(b.clone(), "original".into())])
            .feature
            .clone();
        assert_close(fa, &fb, &format!("{a} vs {b}"));
    }
    let cmyk = decode_rgb8(&std::fs::read(input.join("odd/cmyk.jpg")).unwrap()).unwrap();
    assert_eq!(cmyk.dimensions(), (48, 40));

    // --strict: stops at the first failure, non-zero, naming the file.
    let strict_cache = dir.path().join("strict");
    let out = extract(&input, &strict_cache, &["--strict"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stops at the first failure"), "{err}");
    assert!(
        battery
            .must_fail
            .iter()
            .any(|(p, _)| err.contains(p.as_str())),
        "stderr names no failing file: {err}"
    );
    // A file that was extracted, then changed into one that fails: --strict names
    // it, stops, and its old features stop being served.
    let folder = dir.path().join("one_bad");
    std::fs::create_dir_all(folder.join("x")).unwrap();
    std::fs::copy(r.input.join(&good[0]), folder.join("x/good.png")).unwrap();
    std::fs::copy(r.input.join(&good[1]), folder.join("x/later_broken.png")).unwrap();
    let cache = dir.path().join("strict2");
    let s = extract_ok(&folder, &cache, &[]);
    assert_eq!(n(&s, "extracted"), 2, "{s}");
    std::fs::write(folder.join("x/later_broken.png"), b"not a png any more").unwrap();
    let out = extract(&folder, &cache, &["--strict"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("x/later_broken.png") && err.contains("decode"),
        "{err}"
    );
    let live: Vec<String> = rows(&cache).into_keys().map(|(p, _)| p).collect();
    assert_eq!(live, ["x/good.png"], "stale features are still served");
    // Without --strict the same folder is a partial failure.
    let s = summary(&extract(&folder, &cache, &[]), 3);
    assert_eq!(
        (n(&s, "extracted"), n(&s, "cached"), n(&s, "failed")),
        (0, 1, 1),
        "{s}"
    );
}

// ---------------------------------------------------------- incremental

fn info_numbers(cache: &Path) -> (u64, u64, u64) {
    let text = common::run_ok(&["cache", "info", cache.to_str().unwrap()]);
    let field = |name: &str| -> Vec<u64> {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no `{name}` in:\n{text}"));
        line.split_whitespace()
            .filter_map(|w| w.trim_end_matches(',').parse().ok())
            .collect()
    };
    let rows = field("rows");
    (rows[0], rows[1], field("files")[0])
}

/// One cache holds one model and preprocessing: anything else is refused.
#[test]
fn another_model_or_preprocessing_is_refused() {
    let dir = scratch();
    let input = dir.path().join("input");
    std::fs::create_dir_all(input.join("a")).unwrap();
    let r = reference();
    std::fs::copy(r.input.join(&reference_paths()[0]), input.join("a/x.png")).unwrap();
    let cache = dir.path().join("cache");
    let s = extract_ok(&input, &cache, &[]);
    let fingerprint = s["model_fingerprint"].as_str().unwrap().to_string();
    let parts = || std::fs::read_dir(cache.join("parts")).unwrap().count();
    let before = parts();
    for extra in [&["--preset", "imagenet"][..], &["--features", "logits"][..]] {
        let out = extract(&input, &cache, extra);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "holds features of model efficientnet-lite0 (fingerprint {fingerprint}"
            )) && err.contains("use another --out directory"),
            "{extra:?}: {err}"
        );
        assert_eq!(parts(), before, "a refused run wrote to the cache");
    }
}

// ------------------------------------------------------------ manifests

/// CSV and Parquet manifests with relative paths, labels and splits.
#[test]
fn csv_and_parquet_manifests() {
    use arrow_array::{ArrayRef, RecordBatch, StringArray};
    use std::sync::Arc;

    let r = reference();
    let dir = scratch();
    let m = dir.path().join("lists");
    std::fs::create_dir_all(m.join("imgs/sub")).unwrap();
    let good = reference_paths();
    let files = ["imgs/a.png", "imgs/b.png", "imgs/sub/c.png", "imgs/d.png"];
    for (f, src) in files.iter().zip(&good) {
        std::fs::copy(r.input.join(src), m.join(f)).unwrap();
    }
    let labels = [Some("bag"), Some("coat"), Some("bag"), None];
    let splits = [Some("train"), Some("validation"), Some("test"), None];
    let want_splits = [Some("train"), Some("val"), Some("test"), None];

    let mut csv = String::from("path,label,split\n");
    for i in 0..4 {
        csv += &format!(
            "{},{},{}\n",
            files[i],
            labels[i].unwrap_or(""),
            splits[i].unwrap_or("")
        );
    }
    std::fs::write(m.join("manifest.csv"), csv).unwrap();
    let batch = RecordBatch::try_from_iter([
        (
            "path",
            Arc::new(StringArray::from(files.to_vec())) as ArrayRef,
        ),
        (
            "label",
            Arc::new(StringArray::from(labels.to_vec())) as ArrayRef,
        ),
        (
            "split",
            Arc::new(StringArray::from(splits.to_vec())) as ArrayRef,
        ),
    ])
    .unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(
        File::create(m.join("manifest.parquet")).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();

    let reference_rows = rows(&r.cache);
    for name in ["manifest.csv", "manifest.parquet"] {
        let cache = dir.path().join(format!("cache-{name}"));
        // The process runs in the repository root: paths resolve against the manifest's folder.
        let s = extract_ok(&m.join(name), &cache, &[]);
        assert_eq!(n(&s, "extracted"), 4, "{name}: {s}");
        let got = rows(&cache);
        let keys: Vec<&str> = got.keys().map(|(p, _)| p.as_str()).collect();
        let mut want = files.to_vec();
        want.sort();
        assert_eq!(keys, want, "{name}");
        for i in 0..4 {
            let rec = &got[&(files[i].to_string(), "original".into())];
            assert_eq!(rec.label.as_deref(), labels[i], "{name} {}", files[i]);
            assert_eq!(rec.split.as_deref(), want_splits[i], "{name} {}", files[i]);
            let reference_row = &reference_rows[&(good[i].clone(), "original".into())];
            assert_close(&rec.feature, &reference_row.feature, files[i]);
        }
    }
}

// ------------------------------------------------------ --features auto

/// The default backbone saved without its `features` output, run with
/// `--features auto --preset tf-lite`, gives the built-in model's features.
#[test]
fn features_auto_finds_the_builtin_features() {
    let r = reference();
    let dir = scratch();
    let mut model = headstart_onnx::load_model(&common::default_model()).unwrap();
    let graph = model.graph.as_mut().unwrap();
    let outputs_before = graph.output.len();
    graph.output.retain(|o| o.name != "features");
    assert_eq!(
        graph.output.len(),
        outputs_before - 1,
        "no `features` output to remove"
    );
    let onnx = dir.path().join("lite0-logits-only.onnx");
    std::fs::write(&onnx, headstart_onnx::encode_model(&model).unwrap()).unwrap();

    let cache = dir.path().join("cache");
    let s = extract_ok(
        &r.input,
        &cache,
        &[
            "--model",
            onnx.to_str().unwrap(),
            "--features",
            "auto",
            "--preset",
            "tf-lite",
        ],
    );
    assert_eq!(n(&s, "extracted"), 12, "{s}");
    assert_eq!(s["model"], "lite0-logits-only");
    let builtin = rows(&r.cache);
    let auto = rows(&cache);
    assert_eq!(auto.len(), 12);
    let mut worst = 0f32;
    for (k, v) in &auto {
        assert_eq!(k.1, "original");
        let d = common::max_abs_diff(&v.feature, &builtin[k].feature);
        assert!(d < TOL, "{k:?}: {d}");
        worst = worst.max(d);
    }
    eprintln!("--features auto vs built-in: max abs diff {worst:e}");
}

// ------------------------------------------------------------ relabelling

// =====================================================================
// Issue #12 (model checks): runtime loading and `models inspect` messages.
// Appended as one block; other additions go below it, not inside it.
// =====================================================================

/// Issue #12: `--ort-lib NAME` with a bare file name in the current directory
/// failed (the loader searched its library path instead), and the reason was a
/// Debug dump of the loader error.
#[test]
fn relative_ort_lib_path_is_resolved() {
    common::home();
    let lib = common::runtime_lib();
    let dir = lib.parent().expect("runtime folder");
    let name = lib
        .file_name()
        .and_then(|n| n.to_str())
        .expect("library name");
    let out = common::headstart()
        .current_dir(dir)
        .args(["doctor", "--ort-lib", name])
        .output()
        .expect("run headstart");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("runtime:        ONNX Runtime 1.32.0 at {name}")),
        "{}",
        describe(&out)
    );

    // A file that is no library: the loader's reason in words.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("not-a-lib.so"), "not a shared library").unwrap();
    let out = common::headstart()
        .current_dir(tmp.path())
        .args(["doctor", "--ort-lib", "not-a-lib.so"])
        .output()
        .expect("run headstart");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains("cannot load ONNX Runtime from not-a-lib.so: failed to load from"),
        "{all}"
    );
    // e.g. "dlopen failed: /tmp/.../not-a-lib.so: file too short"
    assert!(
        all.split_once("dlopen failed: ")
            .is_some_and(|(_, reason)| reason.contains("not-a-lib.so: ")),
        "the loader's reason is missing: {all}"
    );
    assert!(
        !all.contains("Dlopen {") && !all.contains("DlOpen {"),
        "Debug dump in: {all}"
    );
}

/// Issue #12: `models inspect` text output ended without a newline.
#[test]
fn models_inspect_text_ends_with_a_newline() {
    let home = tempfile::tempdir().unwrap();
    let model = common::repo().join("tests/data/models/a_torchvision.onnx");
    let out = std::process::Command::new(common::bin())
        .env("HEADSTART_HOME", home.path())
        .args(["models", "inspect"])
        .arg(&model)
        .output()
        .expect("run headstart");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(stdout.ends_with("(16 values per image)\n"), "{stdout:?}");
}

// ------------------------------------------------- one writer, compaction

/// Regressions: two unsharded extracts into one cache both did all the work
/// (leaving a dead row per image); a second `cache compact` deleted the whole
/// cache; files rejected while listing were not counted as listed.
#[test]
#[ignore = "slow tier: `just test-all`"]
fn concurrent_unsharded_extracts_share_the_work_and_compaction_is_idempotent() {
    let dir = scratch();
    let input = dir.path().join("input");
    common::sample_subset(&input, 2);
    let cache = dir.path().join("cache");
    let spawn = || {
        common::headstart()
            .args(["-q", "extract"])
            .arg(&input)
            .arg("--out")
            .arg(&cache)
            .arg("--json")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn headstart")
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let (sa, sb) = (summary(&a, 0), summary(&b, 0));
    assert_eq!(n(&sa, "extracted") + n(&sb, "extracted"), 20, "{sa}\n{sb}");
    assert_eq!(n(&sa, "cached") + n(&sb, "cached"), 20, "{sa}\n{sb}");
    assert_eq!(info_numbers(&cache).0, 20);
    assert_eq!(
        info_numbers(&cache).1,
        0,
        "dead rows: both runs did the work"
    );
    let live = rows(&cache);

    for _ in 0..3 {
        common::run_ok(&["cache", "compact", cache.to_str().unwrap()]);
        assert_eq!(info_numbers(&cache), (20, 0, 1));
        let now = rows(&cache);
        assert_eq!(now.len(), live.len());
        for (k, v) in &now {
            assert_eq!(v.feature, live[k].feature, "{k:?}");
        }
    }
    let head = dir.path().join("head");
    let out = common::run_ok(&[
        "fit",
        cache.to_str().unwrap(),
        "--out",
        head.to_str().unwrap(),
    ]);
    assert!(out.contains("saved head"), "{out}");

    // A stray image at the top has no class: listed, and failed.
    std::fs::copy(
        std::fs::read_dir(input.join("bag"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
        input.join("stray.png"),
    )
    .unwrap();
    let s = summary(&extract(&input, &cache, &[]), 3);
    assert_eq!(
        (n(&s, "images"), n(&s, "cached"), n(&s, "failed")),
        (21, 20, 1),
        "{s}"
    );
}

// ------------------------------------------------- tar shards and Parquet

/// Every image file under `root`, as (path relative to root, bytes), sorted.
fn image_files(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for class in std::fs::read_dir(root).unwrap() {
        let class = class.unwrap().path();
        for f in std::fs::read_dir(&class).unwrap() {
            let f = f.unwrap().path();
            let rel = f.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            out.push((rel, std::fs::read(&f).unwrap()));
        }
    }
    out.sort();
    out
}

/// Packs `files` into WebDataset shards of `per_shard` samples under `dir`:
/// key = path without extension, the class name in `.txt`, extra samples after.
fn pack_tars(dir: &Path, files: &[(String, Vec<u8>)], per_shard: usize, extra: &[(&str, &[u8])]) {
    std::fs::create_dir_all(dir).unwrap();
    for (n, chunk) in files.chunks(per_shard).enumerate() {
        let mut b = tar::Builder::new(File::create(dir.join(format!("{n:05}.tar"))).unwrap());
        let mut add = |name: &str, bytes: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, bytes).unwrap();
        };
        for (rel, bytes) in chunk {
            let (key, _) = rel.rsplit_once('.').unwrap();
            add(rel, bytes);
            add(
                &format!("{key}.txt"),
                rel.split('/').next().unwrap().as_bytes(),
            );
        }
        if n == 1 {
            for (name, bytes) in extra {
                add(name, bytes);
            }
        }
        b.finish().unwrap();
    }
}

/// Writes `rows` (label, image bytes) as a Hugging Face style Parquet file:
/// `image: struct<bytes: binary, path: string>`, `label: string`, 4 rows a group.
fn write_image_parquet(path: &Path, rows: &[(Option<&str>, &[u8])]) {
    use arrow_array::{ArrayRef, BinaryArray, RecordBatch, StringArray, StructArray};
    use arrow_schema::{DataType, Field};
    use std::sync::Arc;
    let bytes: ArrayRef = Arc::new(BinaryArray::from_iter_values(rows.iter().map(|r| r.1)));
    let names: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..rows.len()).map(|i| format!("img{i}.png")),
    ));
    let image = StructArray::from(vec![
        (Arc::new(Field::new("bytes", DataType::Binary, true)), bytes),
        (Arc::new(Field::new("path", DataType::Utf8, true)), names),
    ]);
    let labels: ArrayRef = Arc::new(StringArray::from_iter(rows.iter().map(|r| r.0)));
    let batch =
        RecordBatch::try_from_iter([("image", Arc::new(image) as ArrayRef), ("label", labels)])
            .unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(4))
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(
        File::create(path).unwrap(),
        batch.schema(),
        Some(props),
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// Issue #15: the same images as loose files, packed into WebDataset tar shards,
/// and inside Parquet give the same features (max abs diff 0) and labels; a bad
/// member or row gets an error row and the rest is unchanged; reruns extract
/// nothing; three `--shard i/3` processes over the tar shards equal one run.
#[test]
fn tar_shards_and_image_parquet_extract_like_loose_files() {
    let dir = scratch();
    let input = dir.path().join("input");
    common::sample_subset(&input, 2);
    let files = image_files(&input);
    let loose = rows(&{
        let c = dir.path().join("c-loose");
        extract_ok(&input, &c, &[]);
        c
    });
    assert_eq!(loose.len(), 20);

    // Tar shards, with a member that is no image and a sample without one.
    let tars = dir.path().join("tars");
    pack_tars(
        &tars,
        &files,
        7,
        &[
            ("bag/broken.png", b"not a png"),
            ("bag/broken.txt", b"bag"),
            ("coat/lonely.txt", b"coat"),
        ],
    );
    let c_tar = dir.path().join("c-tar");
    let s = summary(&extract(&tars, &c_tar, &["--label-from", "txt"]), 3);
    assert_eq!((n(&s, "extracted"), n(&s, "failed")), (20, 2), "{s}");
    let mut errors: Vec<(String, String)> =
        error_rows(Path::new(s["errors_file"].as_str().unwrap()))
            .into_iter()
            .map(|(p, stage, _)| (p, stage))
            .collect();
    errors.sort();
    assert_eq!(
        errors,
        [
            ("00001.tar/bag/broken".to_string(), "decode".to_string()),
            ("00001.tar/coat/lonely".to_string(), "list".to_string())
        ]
    );
    let from_tar = rows(&c_tar);
    for (n_file, (rel, _)) in files.iter().enumerate() {
        let key = format!("{:05}.tar/{}", n_file / 7, rel.rsplit_once('.').unwrap().0);
        let (a, b) = (
            &loose[&(rel.clone(), "original".into())],
            &from_tar[&(key.clone(), "original".into())],
        );
        assert_eq!(common::max_abs_diff(&a.feature, &b.feature), 0.0, "{key}");
        assert_eq!((&a.label, &a.hash), (&b.label, &b.hash), "{key}");
    }
    // A pattern of shards names the same samples; a rerun does no inference.
    let pattern = format!("{}/{{00000..00002}}.tar", tars.display());
    let s = summary(
        &extract(Path::new(&pattern), &c_tar, &["--label-from", "txt"]),
        3,
    );
    assert_eq!((n(&s, "extracted"), n(&s, "cached")), (0, 20), "{s}");

    // Three shard processes at once over the tar files equal the one run.
    let c_sharded = dir.path().join("c-sharded");
    let procs: Vec<_> = (0..3)
        .map(|i| {
            common::headstart()
                .args(["-q", "extract"])
                .arg(&tars)
                .arg("--out")
                .arg(&c_sharded)
                .args([
                    "--label-from",
                    "txt",
                    "--json",
                    "--shard",
                    &format!("{i}/3"),
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut total = 0;
    for p in procs {
        let out = p.wait_with_output().unwrap();
        assert!(
            matches!(out.status.code(), Some(0 | 3)),
            "{}",
            describe(&out)
        );
        total += n(&serde_json::from_slice(&out.stdout).unwrap(), "extracted");
    }
    assert_eq!(total, 20);
    let sharded = rows(&c_sharded);
    assert_eq!(
        sharded.keys().collect::<Vec<_>>(),
        from_tar.keys().collect::<Vec<_>>()
    );
    for (k, v) in &sharded {
        assert_eq!(v.feature, from_tar[k].feature, "{k:?}");
    }

    // A truncated shard: an error row names it, the samples before the damage
    // are read, and the cached rows of the rest are kept (they may still exist).
    let last = tars.join("00002.tar");
    let bytes = std::fs::read(&last).unwrap();
    std::fs::write(&last, &bytes[..bytes.len() / 2]).unwrap();
    let s = summary(&extract(&tars, &c_tar, &["--label-from", "txt"]), 3);
    let errors = error_rows(Path::new(s["errors_file"].as_str().unwrap()));
    assert!(
        errors
            .iter()
            .any(|(p, stage, m)| p == "00002.tar" && stage == "list" && m.contains("truncated")),
        "{errors:?}"
    );
    assert!(n(&s, "cached") >= 14 && n(&s, "deleted") == 0, "{s}");
    assert_eq!(rows(&c_tar).len(), 20);

    // Parquet: two files of the Hugging Face layout, one row with bytes that
    // are no image.
    let pq = dir.path().join("pq");
    std::fs::create_dir_all(&pq).unwrap();
    let mut pq_rows: Vec<(Option<&str>, &[u8])> = files
        .iter()
        .map(|(rel, b)| (rel.split('/').next(), b.as_slice()))
        .collect();
    pq_rows.insert(13, (Some("bag"), b"garbage"));
    write_image_parquet(&pq.join("images-00000-of-00002.parquet"), &pq_rows[..10]);
    write_image_parquet(&pq.join("images-00001-of-00002.parquet"), &pq_rows[10..]);
    let c_pq = dir.path().join("c-pq");
    let s = summary(&extract(&pq, &c_pq, &[]), 3);
    assert_eq!((n(&s, "extracted"), n(&s, "failed")), (20, 1), "{s}");
    assert_eq!(
        error_rows(Path::new(s["errors_file"].as_str().unwrap()))
            .into_iter()
            .map(|e| (e.0, e.1))
            .collect::<Vec<_>>(),
        [(
            "images-00001-of-00002.parquet/3".to_string(),
            "decode".to_string()
        )]
    );
    let from_pq = rows(&c_pq);
    for (i, (rel, _)) in files.iter().enumerate() {
        let (file, row) = if i < 10 {
            (0, i)
        } else {
            (1, i - 10 + usize::from(i >= 13))
        };
        let key = format!("images-0000{file}-of-00002.parquet/{row}");
        let (a, b) = (
            &loose[&(rel.clone(), "original".into())],
            &from_pq[&(key.clone(), "original".into())],
        );
        assert_eq!(common::max_abs_diff(&a.feature, &b.feature), 0.0, "{key}");
        assert_eq!((&a.label, &a.hash), (&b.label, &b.hash), "{key}");
    }
    let s = summary(&extract(&pq, &c_pq, &[]), 3);
    assert_eq!((n(&s, "extracted"), n(&s, "cached")), (0, 20), "{s}");
    // An added file is extracted alone.
    write_image_parquet(&pq.join("more.parquet"), &pq_rows[..2]);
    let s = summary(&extract(&pq, &c_pq, &[]), 3);
    assert_eq!((n(&s, "extracted"), n(&s, "cached")), (2, 20), "{s}");
}

/// Regression: a compaction that ran out of space named the hidden temporary
/// file it was writing, not the part; and nothing may be lost when it fails.
/// `ulimit -f` makes every write past 1 KiB fail (EFBIG) as a full disk would.
#[test]
fn a_failed_compaction_names_the_part_and_keeps_the_cache() {
    let dir = scratch();
    let input = dir.path().join("input");
    common::sample_subset(&input, 1);
    let cache = dir.path().join("cache");
    extract_ok(&input, &cache, &[]);
    // A changed file: a second part, and a dead row for compaction to drop.
    let bag: Vec<_> = std::fs::read_dir(input.join("bag"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let coat = std::fs::read_dir(input.join("coat"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::copy(coat, &bag[0]).unwrap();
    extract_ok(&input, &cache, &[]);
    let before = rows(&cache);
    assert_eq!(before.len(), 10);
    assert_eq!(info_numbers(&cache).1, 1, "one dead row");
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(r#"trap "" XFSZ; ulimit -f 1; exec "$0" cache compact "$1""#)
        .arg(common::bin())
        .arg(&cache)
        .env("HEADSTART_HOME", common::home())
        .output()
        .expect("run bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr.contains("/parts/")
            && stderr.contains("~c000001.parquet")
            && !stderr.contains(".tmp"),
        "{stderr}"
    );
    let after = rows(&cache);
    assert_eq!(after.len(), 10);
    for (k, v) in &after {
        assert_eq!(v.feature, before[k].feature, "{k:?}");
    }
}
