//! Reading image files into RGB8 with EXIF orientation applied, within limits
//! that turn decompression bombs into per-file errors.
//!
//! A JPEG is decoded by one decoder chosen from its headers before anything
//! is allocated: headstart's reduced-scale decoder (module `jpeg_reduced`)
//! when the recipe asks for a reduced scale and the file is of a layout it
//! reads, otherwise zune-jpeg in strict mode at full size. The reduced
//! decoder reads only undamaged entropy-coded data and hands a damaged file
//! to zune-jpeg, whose verdict (an error, or the pixels it reads past the
//! damage) the file then gets in both modes. Each decode's peak memory is
//! estimated from the header and refused above [`MAX_ALLOC`].

use std::io::Cursor;

use image::metadata::Orientation;
use image::{ColorType, DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;

use headstart_models::preprocess::Preprocess;

use crate::ExtractError;
use crate::jpeg_reduced;
use crate::tensor::RgbView;

/// Largest accepted width or height, in pixels.
pub const MAX_SIDE: u32 = 16_384;
/// Largest allocation the decoder may make for one image, in bytes.
pub const MAX_ALLOC: u64 = 512 << 20;

/// Decodes image bytes (any supported format, detected from content) into RGB8.
///
/// Orientation from EXIF is applied; grey, grey+alpha, RGBA, 16-bit and CMYK are
/// converted to RGB8 (alpha dropped); animated images give their first frame.
pub fn decode_rgb8(bytes: &[u8]) -> Result<RgbImage, ExtractError> {
    let mut buf = Vec::new();
    let (w, h) = decode_rgb8_into(bytes, &mut buf)?.dimensions();
    buf.truncate(w as usize * h as usize * 3);
    RgbImage::from_raw(w, h, buf).ok_or_else(|| too_few_pixels(w, h))
}

/// [`decode_rgb8`] into `buf`, reusing its allocation: the image is a view of
/// `buf`'s first `width * height * 3` bytes. `buf` grows as needed and never
/// shrinks, so a thread that decodes many plain RGB8 files (most JPEGs and
/// PNGs) neither allocates nor zero-fills a pixel buffer per file.
pub fn decode_rgb8_into<'a>(
    bytes: &[u8],
    buf: &'a mut Vec<u8>,
) -> Result<RgbView<&'a [u8]>, ExtractError> {
    decode_scaled(bytes, buf, |_, _| 1)
}

/// [`decode_rgb8_into`] for `recipe`: a JPEG whose crop is at least twice the
/// model's input size is decoded at a reduced DCT scale
/// ([`Preprocess::jpeg_scale`]) when the recipe asks for it and the file is
/// of a layout the reduced decoder reads, with EXIF orientation and the same
/// limits and verdicts; every other image as by [`decode_rgb8_into`].
pub fn decode_for<'a>(
    bytes: &[u8],
    buf: &'a mut Vec<u8>,
    recipe: &Preprocess,
) -> Result<RgbView<&'a [u8]>, ExtractError> {
    decode_scaled(bytes, buf, |w, h| recipe.jpeg_scale(w, h))
}

/// Decodes `bytes`, a JPEG at the scale `scale(width, height)` picks.
fn decode_scaled<'a>(
    bytes: &[u8],
    buf: &'a mut Vec<u8>,
    scale: impl Fn(u32, u32) -> u32,
) -> Result<RgbView<&'a [u8]>, ExtractError> {
    let decode = |e: image::ImageError| ExtractError::Decode(e.to_string());
    if bytes.is_empty() {
        return Err(ExtractError::EmptyImage);
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ExtractError::Decode(e.to_string()))?;
    match reader.format() {
        None => return Err(ExtractError::UnknownImageFormat),
        Some(ImageFormat::Jpeg) => return decode_jpeg(bytes, buf, scale),
        Some(_) => {}
    }
    with_limits(&mut reader);
    let mut decoder = reader.into_decoder().map_err(decode)?;
    let orientation = decoder.orientation().map_err(decode)?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(ExtractError::NoPixels {
            width: w,
            height: h,
        });
    }
    // `into_decoder` checks only the sides. The decoded buffer, and a second
    // full-size one: the decoder's own planes (WebP's YUV), or the RGB8 copy
    // of another colour type.
    let second = u64::from(w) * u64::from(h) * 4;
    within_budget(w, h, "image", decoder.total_bytes().saturating_add(second))?;
    if decoder.color_type() == ColorType::Rgb8 && orientation == Orientation::NoTransforms {
        let n = w as usize * h as usize * 3;
        grow(buf, n);
        decoder.read_image(&mut buf[..n]).map_err(decode)?;
        return RgbView::from_raw(w, h, &buf[..n]).ok_or_else(|| too_few_pixels(w, h));
    }
    let mut img = DynamicImage::from_decoder(decoder).map_err(decode)?;
    img.apply_orientation(orientation);
    let rgb = match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    };
    let (w, h) = rgb.dimensions();
    *buf = rgb.into_raw();
    RgbView::from_raw(w, h, &buf[..]).ok_or_else(|| too_few_pixels(w, h))
}

/// Makes `buf` at least `n` bytes long for a decoder to overwrite, in the
/// memory it holds when that is enough. A buffer that must grow is replaced
/// by a fresh zeroed one, whose pages the system provides as the decoder
/// writes them: a file that fails before its pixels (a bomb of a few hundred
/// bytes declaring 70 MP) costs no pass over hundreds of megabytes.
fn grow(buf: &mut Vec<u8>, n: usize) {
    if buf.len() >= n {
    } else if buf.capacity() >= n {
        buf.resize(n, 0);
    } else {
        *buf = vec![0; n];
    }
}

/// Refuses a `w x h` `what` whose decode needs more than [`MAX_ALLOC`] bytes.
fn within_budget(w: u32, h: u32, what: &'static str, bytes: u64) -> Result<(), ExtractError> {
    if bytes <= MAX_ALLOC {
        return Ok(());
    }
    Err(ExtractError::ImageTooLarge {
        width: w,
        height: h,
        what,
        mib: bytes.div_ceil(1 << 20),
        limit_mib: MAX_ALLOC >> 20,
    })
}

/// zune-jpeg's options: strict (damaged data is an error, not grey pixels),
/// RGB out, [`MAX_SIDE`] per side.
fn zune_options() -> DecoderOptions {
    DecoderOptions::default()
        .set_strict_mode(true)
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_max_width(MAX_SIDE as usize)
        .set_max_height(MAX_SIDE as usize)
}

/// A zune-jpeg error as an [`ExtractError`]: unsupported features say so,
/// everything else is damage.
fn zune_error(e: zune_jpeg::errors::DecodeErrors) -> ExtractError {
    match e {
        zune_jpeg::errors::DecodeErrors::Unsupported(what) => {
            ExtractError::Decode(format!("unsupported JPEG: {what:?}"))
        }
        e => ExtractError::CorruptJpeg(e.to_string()),
    }
}

/// An upper bound of zune-jpeg's peak allocation for a `w x h` JPEG of
/// `components`: the RGB output, and for a progressive file its coefficients
/// (16 bits each, every component counted at full size) and one plane per
/// component; for a sequential file a few MCU rows.
fn zune_peak_bytes(w: u32, h: u32, components: u8, progressive: bool) -> u64 {
    // Padded to whole MCUs of up to 4x4 blocks (32 pixels).
    let (pw, ph) = (
        u64::from(w.div_ceil(32) * 32),
        u64::from(h.div_ceil(32) * 32),
    );
    let n = u64::from(components.max(1));
    let output = u64::from(w) * u64::from(h) * 3;
    if progressive {
        output + pw * ph * n * 3
    } else {
        output + pw * 32 * n * 4
    }
}

/// Decodes JPEG `bytes` at the scale `scale(width, height)` picks when the
/// reduced decoder reads the file's layout and finds no damage, at full size
/// otherwise.
fn decode_jpeg<'a>(
    bytes: &[u8],
    buf: &'a mut Vec<u8>,
    scale: impl Fn(u32, u32) -> u32,
) -> Result<RgbView<&'a [u8]>, ExtractError> {
    // Both decoders would fill missing data with grey or zeros.
    if !jpeg_reaches_eoi(bytes) {
        return Err(ExtractError::TruncatedJpeg);
    }
    let mut zune = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), zune_options());
    zune.decode_headers().map_err(zune_error)?;
    let info = zune.info().ok_or_else(|| too_few_pixels(0, 0))?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    if w == 0 || h == 0 {
        return Err(ExtractError::NoPixels {
            width: w,
            height: h,
        });
    }
    let progressive = info.sof.is_progressive();
    let what = if progressive {
        "progressive JPEG"
    } else {
        "JPEG"
    };
    let orientation = zune
        .exif()
        .and_then(|e| Orientation::from_exif_chunk(e))
        .unwrap_or(Orientation::NoTransforms);
    // The full decode's peak bounds the reduced one's; checked in both modes
    // so that a file gets one verdict.
    let peak = zune_peak_bytes(w, h, info.components, progressive);
    within_budget(w, h, what, peak)?;
    let r = scale(w, h);
    // The reduced decoder, when it reads this layout and sees the frame the
    // full decoder sees (not a second header hidden from one of them).
    if let Some(plan) = (r > 1)
        .then(|| jpeg_reduced::plan(bytes, r))
        .flatten()
        .filter(|p| p.size() == (w, h))
    {
        debug_assert!(plan.peak_bytes() <= peak);
        let mut pixels = std::mem::take(buf);
        match plan.decode(bytes, &mut pixels) {
            Ok((sw, sh)) => return oriented(pixels, sw, sh, orientation, buf),
            // Damaged data (never a clean file): the full decode decides, so
            // the file gets the verdict it gets in exact mode.
            Err(_) => *buf = pixels,
        }
    }
    let n = zune
        .output_buffer_size()
        .ok_or_else(|| too_few_pixels(w, h))?;
    if n != w as usize * h as usize * 3 {
        return Err(too_few_pixels(w, h));
    }
    let mut pixels = std::mem::take(buf);
    grow(&mut pixels, n);
    if let Err(e) = zune.decode_into(&mut pixels[..n]) {
        *buf = pixels;
        return Err(zune_error(e));
    }
    if orientation == Orientation::NoTransforms {
        *buf = pixels;
        return RgbView::from_raw(w, h, &buf[..n]).ok_or_else(|| too_few_pixels(w, h));
    }
    pixels.truncate(n);
    oriented(pixels, w, h, orientation, buf)
}

/// RGB8 `pixels` (`w x h`) turned by `orientation`, as a view of `buf`.
fn oriented(
    pixels: Vec<u8>,
    w: u32,
    h: u32,
    orientation: Orientation,
    buf: &mut Vec<u8>,
) -> Result<RgbView<&[u8]>, ExtractError> {
    *buf = if orientation == Orientation::NoTransforms {
        pixels
    } else {
        let rgb = RgbImage::from_raw(w, h, pixels).ok_or_else(|| too_few_pixels(w, h))?;
        let mut img = DynamicImage::ImageRgb8(rgb);
        img.apply_orientation(orientation);
        img.into_rgb8().into_raw()
    };
    let (w, h) = if orientation_swaps(orientation) {
        (h, w)
    } else {
        (w, h)
    };
    let pixels = buf
        .get(..w as usize * h as usize * 3)
        .ok_or_else(|| too_few_pixels(w, h))?;
    RgbView::from_raw(w, h, pixels).ok_or_else(|| too_few_pixels(w, h))
}

/// Whether `orientation` exchanges width and height.
fn orientation_swaps(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// The decompression-bomb limits: [`MAX_SIDE`] per side, [`MAX_ALLOC`] bytes.
fn with_limits(reader: &mut ImageReader<Cursor<&[u8]>>) {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
}

fn too_few_pixels(w: u32, h: u32) -> ExtractError {
    ExtractError::Decode(format!("the decoder returned too few pixels for {w}x{h}"))
}

/// Whether JPEG `bytes` reach their end-of-image marker: walks the marker
/// segments (skipping APPn payloads such as EXIF thumbnails) and the entropy-coded
/// data after each start-of-scan, where bytes are read by libjpeg's rule
/// (`jpeg_fill_bit_buffer`): 0xFF, any run of 0xFF fill, then 0x00 is a data
/// byte; then a restart marker is part of the data; anything else is a marker.
pub(crate) fn jpeg_reaches_eoi(bytes: &[u8]) -> bool {
    let mut i = 2; // after SOI
    while i + 1 < bytes.len() {
        if bytes[i] != 0xFF {
            return false;
        }
        let marker = bytes[i + 1];
        i += 2;
        match marker {
            0xD9 => return true,
            0xFF => i -= 1, // fill byte
            0x01 | 0xD0..=0xD7 => {}
            _ => {
                let Some(len) = bytes.get(i..i + 2) else {
                    return false;
                };
                i += usize::from(u16::from_be_bytes([len[0], len[1]]));
                if marker == 0xDA {
                    // Entropy-coded data: up to the marker that ends it, at
                    // the last 0xFF of its fill.
                    loop {
                        let Some(at) = bytes.get(i..).and_then(|d| memchr::memchr(0xFF, d)) else {
                            return false;
                        };
                        i += at;
                        let mut next = i + 1;
                        while bytes.get(next) == Some(&0xFF) {
                            next += 1;
                        }
                        match bytes.get(next) {
                            None => return false,
                            Some(0x00 | 0xD0..=0xD7) => i = next + 1,
                            Some(_) => {
                                i = next - 1;
                                break;
                            }
                        }
                    }
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use headstart_models::preprocess::JpegDecode;

    use super::*;

    fn png(img: DynamicImage) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    /// A smooth `w` x `h` photo-like JPEG (quality 90), with an EXIF
    /// orientation tag when `orientation` is given.
    fn jpeg(w: u32, h: u32, orientation: Option<u16>) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let v = |a: f32| (127.5 + 120.0 * a.sin()) as u8;
            image::Rgb([v(9.0 * fx), v(7.0 * fy + 1.0), v(5.0 * (fx + fy))])
        });
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .unwrap();
        let Some(o) = orientation else { return out };
        let mut exif = b"Exif\0\0II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0".to_vec();
        exif.extend(o.to_le_bytes());
        exif.extend([0, 0, 0, 0, 0, 0]);
        let mut app1 = vec![0xFF, 0xE1];
        app1.extend(((exif.len() + 2) as u16).to_be_bytes());
        app1.extend(exif);
        out.splice(2..2, app1);
        out
    }

    fn tensor(pre: &Preprocess, img: &RgbView<&[u8]>) -> Vec<f32> {
        let mut p = crate::tensor::Preprocessor::new(pre.clone());
        let mut t = vec![0f32; pre.tensor_len()];
        crate::tensor::normalize_into(pre, p.resize_u8(img).unwrap(), &mut t);
        t
    }

    fn cosine(a: &[f32], b: &[f32]) -> f64 {
        let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x * y)).sum();
        let n = |v: &[f32]| v.iter().map(|x| f64::from(x * x)).sum::<f64>().sqrt();
        dot / (n(a) * n(b))
    }

    /// A JPEG whose crop is at least twice the input size decodes at a reduced
    /// DCT scale, rotated by its EXIF orientation, to nearly the same tensor; a
    /// smaller one, or exact decoding, gives the full decode.
    #[test]
    fn big_jpegs_decode_at_a_reduced_scale_with_their_orientation() {
        let reduced = Preprocess::tf_lite("input");
        assert_eq!(reduced.jpeg_decode, JpegDecode::Reduced);
        let exact = Preprocess {
            jpeg_decode: JpegDecode::Exact,
            ..reduced.clone()
        };
        // 1200x900: crop 787 px for a 224 input; 1/2 (393 px) would cover it,
        // but 1/2 is never used (no faster than a full decode).
        assert_eq!(reduced.jpeg_scale(1200, 900), 1);
        assert_eq!(reduced.jpeg_scale(2400, 1800), 4);
        assert_eq!(reduced.jpeg_scale(4032, 3024), 8);
        assert_eq!(reduced.jpeg_scale(400, 300), 1);
        assert_eq!(exact.jpeg_scale(4032, 3024), 1);
        let bytes = jpeg(2400, 1800, Some(6)); // rotate 90 degrees clockwise
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let small = decode_for(&bytes, &mut a, &reduced).unwrap();
        let full = decode_for(&bytes, &mut b, &exact).unwrap();
        assert_eq!(small.dimensions(), (450, 600));
        assert_eq!(full.dimensions(), (1800, 2400));
        let c = cosine(&tensor(&reduced, &small), &tensor(&reduced, &full));
        assert!(c > 0.995, "cosine {c}");
        // Not big enough to reduce: the same pixels as the full decode.
        let bytes = jpeg(400, 300, None);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        assert_eq!(
            decode_for(&bytes, &mut a, &reduced).unwrap().as_raw(),
            decode_rgb8_into(&bytes, &mut b).unwrap().as_raw()
        );
    }

    /// Regression (review of the reduced decoder): bytes `FF 00 FF C0` are fill
    /// and a 520x520 frame to the image crate, which checks the limits, but a
    /// marker 0x00 with length 0xFFC0 to a looser parser, which would skip to a
    /// second frame header hidden in an APP1 segment, 2000x2000 here (65535 in
    /// an attack: gigabytes per file). The decode never yields the hidden frame.
    #[test]
    fn a_frame_header_hidden_from_the_limits_check_is_never_decoded() {
        fn seg(o: &mut Vec<u8>, marker: u8, payload: &[u8]) {
            o.extend([0xFF, marker]);
            o.extend(((payload.len() + 2) as u16).to_be_bytes());
            o.extend(payload);
        }
        let sof = |side: u16| {
            let mut p = vec![8];
            p.extend(side.to_be_bytes());
            p.extend(side.to_be_bytes());
            p.extend([1, 1, 0x11, 0]);
            p
        };
        let hidden = 2000u16;
        let mut o = vec![0xFF, 0xD8, 0xFF, 0x00];
        seg(&mut o, 0xC0, &sof(520));
        let hidden_at = 4 + 0xFFC0;
        let app_start = o.len();
        let app_len = hidden_at + 13 - app_start - 2;
        o.extend([0xFF, 0xE1]);
        o.extend((app_len as u16).to_be_bytes());
        o.resize(hidden_at, 0);
        seg(&mut o, 0xC0, &sof(hidden));
        let mut dqt = vec![0u8];
        dqt.extend([1u8; 64]);
        seg(&mut o, 0xDB, &dqt);
        // One-bit codes: DC difference 0, AC end-of-block.
        let table = |class: u8| [&[class, 1][..], &[0u8; 15], &[0]].concat();
        seg(&mut o, 0xC4, &table(0x00));
        seg(&mut o, 0xC4, &table(0x10));
        seg(&mut o, 0xDA, &[1, 1, 0x00, 0, 63, 0]);
        let blocks = usize::from(hidden).div_ceil(8).pow(2);
        o.resize(o.len() + (2 * blocks).div_ceil(8), 0);
        o.extend([0xFF, 0xD9]);
        let recipe = Preprocess::tf_lite("input");
        if let Ok(img) = decode_for(&o, &mut Vec::new(), &recipe) {
            let (w, h) = img.dimensions();
            assert!(w <= 520 && h <= 520, "decoded the hidden {w}x{h} frame");
        }
    }

    /// Photo-sized JPEGs take the 1/8-scale DC decoder: EXIF orientation still
    /// applies, the tensor stays close to the full decode's, trailing bytes
    /// after the image are fine, and a truncated file gets the same error as
    /// with exact decoding.
    #[test]
    fn photo_sized_jpegs_decode_at_one_eighth_with_orientation_and_verdicts() {
        let reduced = Preprocess::tf_lite("input");
        let exact = Preprocess {
            jpeg_decode: JpegDecode::Exact,
            ..reduced.clone()
        };
        assert_eq!(reduced.jpeg_scale(4032, 3024), 8);
        let bytes = jpeg(4032, 3024, Some(6));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let small = decode_for(&bytes, &mut a, &reduced).unwrap();
        let full = decode_for(&bytes, &mut b, &exact).unwrap();
        assert_eq!(small.dimensions(), (378, 504));
        assert_eq!(full.dimensions(), (3024, 4032));
        let c = cosine(&tensor(&reduced, &small), &tensor(&reduced, &full));
        assert!(c > 0.995, "cosine {c}");
        let mut trailing = bytes.clone();
        trailing.extend(b"trailing bytes");
        assert_eq!(
            decode_for(&trailing, &mut b, &reduced).unwrap().as_raw(),
            decode_for(&bytes, &mut a, &reduced).unwrap().as_raw()
        );
        let cut = &bytes[..bytes.len() * 2 / 3];
        let e = decode_for(cut, &mut a, &reduced).unwrap_err();
        assert!(matches!(e, ExtractError::TruncatedJpeg), "{e}");
    }

    /// A big JPEG with damaged entropy-coded data gets the same verdict at a
    /// reduced scale as at full size (it was decoded by headstart's decoder,
    /// then jpeg-decoder, then zune-jpeg, which fills what it cannot read with
    /// grey). Random bytes decode (libjpeg and zune-jpeg read past them too);
    /// a run of one-bits, which no Huffman table codes, is named as damage.
    #[test]
    fn a_damaged_big_jpeg_gets_one_verdict_in_both_modes() {
        let reduced = Preprocess::tf_lite("input");
        let exact = Preprocess {
            jpeg_decode: JpegDecode::Exact,
            ..reduced.clone()
        };
        let good = jpeg(1200, 900, None);
        let (mut ok, mut errors) = (0, 0);
        for at in (good.len() / 4..good.len() - 48).step_by(997) {
            for ones in [false, true] {
                // 32 pseudo-random bytes (never a marker), or 0xFF 0x00 pairs
                // (data bytes 0xFF), over the data at `at`.
                let mut b = good.clone();
                let mut x = at as u32;
                for (i, v) in b[at..at + 32].iter_mut().enumerate() {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    *v = match (ones, i % 2) {
                        (false, _) => ((x >> 16) as u8).min(0xFE),
                        (true, 0) => 0xFF,
                        (true, _) => 0x00,
                    };
                }
                let (mut a, mut c) = (Vec::new(), Vec::new());
                let ours = decode_for(&b, &mut a, &reduced).map(|_| ());
                let full = decode_for(&b, &mut c, &exact).map(|_| ());
                assert_eq!(ours.is_ok(), full.is_ok(), "at {at}: {ours:?} vs {full:?}");
                match ours {
                    Ok(()) => ok += 1,
                    Err(e) => {
                        assert!(e.to_string().starts_with("corrupt JPEG data: "), "{e}");
                        errors += 1;
                    }
                }
            }
        }
        assert!(ok > 0 && errors > 0, "{ok} decoded, {errors} refused");
    }

    /// Regression (issue 26: 188 of 50,000 fuzzed files): a bad Huffman code
    /// in an AC scan of a big progressive JPEG was read past at 1/8 (the AC
    /// scans were skipped) and an error at full size. The reduced decoder
    /// finds the damage and hands the file to the full decode, so both modes
    /// give the same error; the undamaged file still decodes at 1/8.
    #[test]
    fn a_bad_code_in_a_progressive_ac_scan_is_the_same_error_in_both_modes() {
        let (w, h) = (600u16, 400u16);
        let rgb: Vec<u8> = (0..u32::from(w) * u32::from(h))
            .flat_map(|i| {
                let (x, y) = ((i % 600) as f32, (i / 600) as f32);
                let v = |a: f32| (127.5 + 120.0 * a.sin()) as u8;
                [v(x / 9.0), v(y / 7.0 + 1.0), v((x + y) / 5.0)]
            })
            .collect();
        let mut good = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut good, 90);
        enc.set_progressive(true);
        enc.encode(&rgb, w, h, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        let reduced = Preprocess {
            height: 24,
            width: 24,
            crop_fraction: 1.0,
            ..Preprocess::tf_lite("input")
        };
        let exact = Preprocess {
            jpeg_decode: JpegDecode::Exact,
            ..reduced.clone()
        };
        assert_eq!(reduced.jpeg_scale(600, 400), 8);
        let mut buf = Vec::new();
        let small = decode_for(&good, &mut buf, &reduced).unwrap();
        assert_eq!(small.dimensions(), (75, 50));
        // Eight data bytes 0xFF (stuffed as FF 00) in the last scan, an AC scan.
        let sos = good.windows(2).rposition(|m| m == [0xFF, 0xDA]).unwrap();
        assert_ne!(good[sos + 7], 0, "an AC scan");
        let at = (sos + good.len()) / 2;
        let mut bad = good.clone();
        for (i, b) in bad[at..at + 16].iter_mut().enumerate() {
            *b = if i % 2 == 0 { 0xFF } else { 0x00 };
        }
        let ours = decode_for(&bad, &mut Vec::new(), &reduced).map(|_| ());
        let full = decode_for(&bad, &mut Vec::new(), &exact).map(|_| ());
        assert!(full.is_err());
        assert_eq!(
            ours.map_err(|e| e.to_string()),
            full.map_err(|e| e.to_string())
        );
    }

    /// Regression (issue 26): a small progressive JPEG declaring 13377 x
    /// 13377 cost 1.08 GB in jpeg-decoder (1.58 GB through zune-jpeg); it is
    /// refused from its header in both modes, naming the declared size.
    #[test]
    fn a_progressive_header_declaring_13377_squared_is_refused_in_both_modes() {
        let bomb = progressive_bomb(13377);
        assert!(bomb.len() < 1000, "{} bytes", bomb.len());
        let reduced = Preprocess::tf_lite("input");
        let exact = Preprocess {
            jpeg_decode: JpegDecode::Exact,
            ..reduced.clone()
        };
        for recipe in [&reduced, &exact] {
            let e = decode_for(&bomb, &mut Vec::new(), recipe).unwrap_err();
            assert!(
                matches!(
                    e,
                    ExtractError::ImageTooLarge {
                        width: 13377,
                        height: 13377,
                        ..
                    }
                ),
                "{e}"
            );
            let msg = e.to_string();
            assert!(msg.contains("13377x13377 progressive JPEG needs"), "{msg}");
        }
        // The same file at 4000 x 4000 decodes in both modes.
        let small = progressive_bomb(4000);
        for recipe in [&reduced, &exact] {
            assert!(decode_for(&small, &mut Vec::new(), recipe).is_ok());
        }
    }

    /// A small progressive JPEG whose frame header declares `side x side`.
    pub(crate) fn progressive_bomb(side: u16) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut out, 50);
        enc.set_progressive(true);
        enc.encode(&[128; 8 * 8 * 3], 8, 8, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        let sof = out.windows(2).position(|m| m == [0xFF, 0xC2]).unwrap();
        out[sof + 5..sof + 9].copy_from_slice(&[side.to_be_bytes(), side.to_be_bytes()].concat());
        out
    }

    #[test]
    fn grey_alpha_and_16_bit_become_rgb8() {
        let la = DynamicImage::ImageLumaA8(image::ImageBuffer::from_pixel(
            3,
            2,
            image::LumaA([200, 10]),
        ));
        let rgb = decode_rgb8(&png(la)).unwrap();
        assert_eq!((rgb.width(), rgb.height()), (3, 2));
        assert_eq!(rgb.get_pixel(0, 0).0, [200, 200, 200]);
        let wide = DynamicImage::ImageRgb16(image::ImageBuffer::from_pixel(
            2,
            2,
            image::Rgb([65535, 0, 32896]),
        ));
        assert_eq!(
            decode_rgb8(&png(wide)).unwrap().get_pixel(1, 1).0,
            [255, 0, 128]
        );
    }

    #[test]
    fn a_reused_buffer_gives_each_image_its_own_pixels() {
        let rgb = |w, h, seed: u32| {
            DynamicImage::ImageRgb8(image::ImageBuffer::from_fn(w, h, |x, y| {
                image::Rgb([(x * 7 + seed) as u8, (y * 11) as u8, (x ^ y) as u8])
            }))
        };
        let grey = DynamicImage::ImageLuma8(image::ImageBuffer::from_fn(2, 3, |x, y| {
            image::Luma([(40 * x + 9 * y) as u8])
        }));
        // Large, then smaller (buffer kept longer than the image), then a
        // converted one (buffer replaced), then large again.
        let files = [rgb(9, 7, 1), rgb(3, 2, 5), grey, rgb(8, 8, 3)].map(png);
        let mut buf = Vec::new();
        for f in &files {
            let view = decode_rgb8_into(f, &mut buf).unwrap();
            let fresh = decode_rgb8(f).unwrap();
            assert_eq!(view.dimensions(), fresh.dimensions());
            assert_eq!(*view.as_raw(), fresh.as_raw().as_slice());
        }
        // A failed decode leaves an error, not a stale image.
        assert!(decode_rgb8_into(b"not an image", &mut buf).is_err());
    }

    /// A full decode gives libjpeg-turbo's pixels (Pillow's full decode, fancy
    /// upsampling) up to its integer IDCT's rounding, in every layout. Before
    /// the vendored zune-jpeg patch its chroma upsampling rounded the other
    /// way on half the columns and blended the last column with padding:
    /// 4:2:0 differed in 27 % of values (bias +0.18 a value), and the features
    /// of a flat 4:2:2 picture had cosine 0.97 to Pillow's.
    #[test]
    fn full_decodes_give_libjpegs_pixels_in_every_layout() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/draft/");
        let read = |name: String| std::fs::read(format!("{dir}{name}")).unwrap();
        for stem in [
            "444",
            "422",
            "422-even",
            "420",
            "420-restart",
            "444-progressive",
            "420-progressive",
            "grey",
        ] {
            let want = image::load_from_memory(&read(format!("{stem}-1.png")))
                .unwrap()
                .into_rgb8();
            let got = decode_rgb8(&read(format!("{stem}.jpg"))).unwrap();
            assert_eq!(got.dimensions(), want.dimensions(), "{stem}");
            let (mut differ, mut worst, mut bias) = (0usize, 0i32, 0i64);
            for (&g, &w) in got.as_raw().iter().zip(want.as_raw()) {
                let d = i32::from(g) - i32::from(w);
                differ += usize::from(d != 0);
                worst = worst.max(d.abs());
                bias += i64::from(d);
            }
            // The IDCT alone: about 2 % of values, by up to 3 levels, on
            // 4:4:4 and grey, where nothing is upsampled.
            let n = want.as_raw().len();
            let what = format!("{stem}: {differ} of {n} differ, worst {worst}, bias {bias}");
            assert!(differ * 40 <= n, "{what}");
            assert!(worst <= 3, "{what}: the right edge replicated?");
            assert!(bias.unsigned_abs() * 100 <= n as u64, "{what}");
        }
    }

    #[test]
    fn truncated_jpeg_is_an_error() {
        let img = DynamicImage::ImageRgb8(image::ImageBuffer::from_fn(64, 48, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 5) as u8, 90])
        }));
        let mut jpg = Vec::new();
        img.write_to(&mut Cursor::new(&mut jpg), ImageFormat::Jpeg)
            .unwrap();
        assert!(decode_rgb8(&jpg).is_ok());
        let mut trailing = jpg.clone();
        trailing.extend(b"trailing bytes");
        assert!(decode_rgb8(&trailing).is_ok());
        let e = decode_rgb8(&jpg[..jpg.len() - 40]).unwrap_err();
        assert!(matches!(e, ExtractError::TruncatedJpeg), "{e}");
        // An APP1 segment holding a whole JPEG (like an EXIF thumbnail) does not
        // count as the end of the image.
        let mut with_thumb = jpg[..2].to_vec();
        with_thumb.extend([0xFF, 0xE1]);
        with_thumb.extend(((jpg.len() + 2) as u16).to_be_bytes());
        with_thumb.extend(&jpg);
        with_thumb.extend(&jpg[2..jpg.len() - 40]);
        assert!(matches!(
            decode_rgb8(&with_thumb),
            Err(ExtractError::TruncatedJpeg)
        ));
    }

    #[test]
    fn garbage_and_empty_are_errors() {
        assert!(matches!(decode_rgb8(b""), Err(ExtractError::EmptyImage)));
        assert!(decode_rgb8(b"hello, I am text").is_err());
    }
}
