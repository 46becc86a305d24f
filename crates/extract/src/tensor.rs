//! RGB8 image -> normalised input tensor, as a model's [`Preprocess`] says.
//!
//! The crop and resize give the same 8-bit pixels as Pillow (10 and later) does
//! for the README's Python `load()`: `img.resize((width, height), filter,
//! box=box)` with the centred square as a float box. Pillow's arithmetic is
//! followed step by step (`src/libImaging/Resample.c`, `Geometry.c` and
//! `_imaging.c`):
//!
//! - the box goes to C as four `float`s, and the crop fraction is the decimal
//!   number Python reads from the model's JSON metadata;
//! - a box of whole pixels the size of the output is a plain crop;
//! - nearest is Pillow's scale-affine transform: source index `(int)` of a
//!   position that starts at `box0 + scale / 2` and grows by repeated addition;
//! - the other filters are separable: per output pixel a kernel placed as
//!   `precompute_coeffs` places it (window bounds rounded, weights normalised in
//!   `f64`, then fixed point with 22 fraction bits, rounded away from zero),
//!   horizontal pass first over the rows the vertical pass needs (vertical
//!   first where the height shrinks by more than twice the width's pixels,
//!   as Pillow 13 does), each pass
//!   accumulating `u8 * i32` from `1 << 21` and keeping `clamp(sum >> 22, 0,
//!   255)`, so the intermediate is rounded to 8 bits as Pillow's is.
//!
//! Version [`RESAMPLER_VERSION`] of the resampler, recorded in every
//! [`Preprocess`] and so in every model fingerprint.

pub use headstart_models::preprocess::RESAMPLER_VERSION;
use headstart_models::preprocess::{ChannelOrder, Filter, Layout, Preprocess};
use std::ops::Deref;

use image::{ImageBuffer, Rgb};

use crate::ExtractError;

/// An RGB8 image over any byte container: an owned [`RgbImage`](image::RgbImage), or a view of a
/// reused decode buffer (`RgbView<&[u8]>`).
pub type RgbView<C> = ImageBuffer<Rgb<u8>, C>;

/// Fraction bits of Pillow's 8-bit coefficients (`32 - 8 - 2`).
const PRECISION_BITS: u32 = 22;
/// Pillow's accumulator start: one half, so the final shift rounds.
const HALF: i32 = 1 << (PRECISION_BITS - 1);
/// Bits of a fixed-point coefficient in its low half for the SIMD paths (see
/// [`Coefficients::pairs`]).
const LO_BITS: u32 = 11;

/// A convolution filter (Pillow's `struct filter`): the function and its support.
type Kernel = (fn(f64) -> f64, f64);

/// Reusable per-thread state for [`Preprocessor::tensor_into`].
pub struct Preprocessor {
    pre: Preprocess,
    /// `crop_fraction` as Python reads it from the recipe's JSON (the shortest
    /// decimal that gives the `f32` back), widened to `f64`.
    crop_fraction: f64,
    /// The convolution filter and its support; `None` for nearest.
    kernel: Option<Kernel>,
    /// Whether the SIMD passes may run (SSSE3 for the horizontal one).
    simd: bool,
    horizontal: Coefficients,
    vertical: Coefficients,
    /// Nearest: the source column per output column (Pillow's `xintab`).
    xintab: Vec<u32>,
    /// One source row's crop window, zero-padded for the SIMD reads.
    line: Vec<u8>,
    /// The horizontal pass's output, 8-bit, over the rows the vertical pass reads.
    rows: Vec<u8>,
    pixels: Vec<u8>,
    resized: Vec<f32>,
}

impl Preprocessor {
    /// A preprocessor for `pre` (assumed validated).
    pub fn new(pre: Preprocess) -> Preprocessor {
        let n = pre.height as usize * pre.width as usize * 3;
        // Python's json gives the f64 nearest to the decimal serde_json wrote,
        // which is the f32's shortest round-trip decimal: the same as Display.
        let crop_fraction = pre
            .crop_fraction
            .to_string()
            .parse::<f64>()
            .unwrap_or(f64::from(pre.crop_fraction));
        let kernel: Option<Kernel> = match pre.filter {
            Filter::Nearest => None,
            Filter::Bilinear => Some((bilinear, 1.0)),
            Filter::Bicubic => Some((bicubic, 2.0)),
            Filter::Lanczos3 => Some((lanczos, 3.0)),
        };
        Preprocessor {
            pre,
            crop_fraction,
            kernel,
            simd: simd_available(),
            horizontal: Coefficients::default(),
            vertical: Coefficients::default(),
            xintab: Vec::new(),
            line: Vec::new(),
            rows: Vec::new(),
            pixels: vec![0; n],
            resized: vec![0.0; n],
        }
    }

    /// The recipe.
    pub fn preprocess(&self) -> &Preprocess {
        &self.pre
    }

    /// The crop box Pillow receives from the README's `load()` for a `width x
    /// height` image: `((w - side) / 2, (h - side) / 2, (w + side) / 2, (h +
    /// side) / 2)` with `side = crop_fraction * min(w, h)`, computed in `f64`
    /// and handed to C as `float`s.
    pub fn crop_box(&self, width: u32, height: u32) -> [f32; 4] {
        let (w, h) = (f64::from(width), f64::from(height));
        let side = self.crop_fraction * w.min(h);
        [
            ((w - side) / 2.0) as f32,
            ((h - side) / 2.0) as f32,
            ((w + side) / 2.0) as f32,
            ((h + side) / 2.0) as f32,
        ]
    }

    /// Crops and resamples `img` to the model's size: `H*W*3` RGB values on the
    /// 0..=255 scale, whole numbers (the pixels of [`Preprocessor::resize_u8`]).
    pub fn resize<C: Deref<Target = [u8]>>(
        &mut self,
        img: &RgbView<C>,
    ) -> Result<&[f32], ExtractError> {
        self.resize_u8(img)?;
        for (o, &v) in self.resized.iter_mut().zip(&self.pixels) {
            *o = f32::from(v);
        }
        Ok(&self.resized)
    }

    /// Crops and resamples `img` to the model's size: `H*W*3` RGB bytes, the
    /// same as Pillow's `resize` gives for the README's `load()`.
    ///
    /// Reads only the crop window of `img` (plus the filter's reach).
    pub fn resize_u8<C: Deref<Target = [u8]>>(
        &mut self,
        img: &RgbView<C>,
    ) -> Result<&[u8], ExtractError> {
        let (iw, ih) = img.dimensions();
        if iw == 0 || ih == 0 {
            return Err(ExtractError::Resize {
                width: iw,
                height: ih,
                message: "the image has no pixels".into(),
            });
        }
        let b = self.crop_box(iw, ih);
        let (ow, oh) = (self.pre.width, self.pre.height);
        let src = &img.as_raw()[..iw as usize * ih as usize * 3];
        // _imaging.c `_resize`: whole-pixel box of the output's size -> crop.
        if b[0] - b[0].trunc() == 0.0
            && b[2] - b[0] == ow as f32
            && b[1] - b[1].trunc() == 0.0
            && b[3] - b[1] == oh as f32
        {
            self.crop(src, iw, (b[0] as usize, b[1] as usize));
        } else if let Some((filter, support)) = self.kernel {
            self.convolve(src, (iw, ih), b, filter, support);
        } else {
            self.nearest(src, (iw, ih), b);
        }
        Ok(&self.pixels)
    }

    /// Writes the normalised tensor of `img` into `out` (`3*H*W` values).
    pub fn tensor_into<C: Deref<Target = [u8]>>(
        &mut self,
        img: &RgbView<C>,
        out: &mut [f32],
    ) -> Result<(), ExtractError> {
        self.resize_u8(img)?;
        normalize_into(&self.pre, &self.pixels, out);
        Ok(())
    }

    fn crop(&mut self, src: &[u8], iw: u32, (x0, y0): (usize, usize)) {
        let (stride, ow) = (iw as usize * 3, self.pre.width as usize * 3);
        for (y, out) in self.pixels.chunks_exact_mut(ow).enumerate() {
            let off = (y0 + y) * stride + x0 * 3;
            out.copy_from_slice(&src[off..off + ow]);
        }
    }

    /// Geometry.c `ImagingScaleAffine` with `a = [(box2 - box0) / W, 0, box0,
    /// 0, (box3 - box1) / H, box1]`: positions by repeated `f64` addition,
    /// truncated; outside the image stays 0.
    fn nearest(&mut self, src: &[u8], (iw, ih): (u32, u32), b: [f32; 4]) {
        let (ow, oh) = (self.pre.width as usize, self.pre.height as usize);
        let coord = |v: f64| if v < 0.0 { -1 } else { v as i64 };
        let a0 = f64::from(b[2] - b[0]) / ow as f64;
        let a4 = f64::from(b[3] - b[1]) / oh as f64;
        self.xintab.clear();
        self.xintab.resize(ow, 0);
        let (mut xmin, mut xmax) = (ow, 0);
        let mut xo = f64::from(b[0]) + a0 * 0.5;
        for x in 0..ow {
            let xin = coord(xo);
            if xin >= 0 && xin < i64::from(iw) {
                xmax = x + 1;
                xmin = xmin.min(x);
                self.xintab[x] = xin as u32;
            }
            xo += a0;
        }
        let stride = iw as usize * 3;
        let mut yo = f64::from(b[1]) + a4 * 0.5;
        for out in self.pixels.chunks_exact_mut(ow * 3) {
            let yi = coord(yo);
            out.fill(0);
            if yi >= 0 && yi < i64::from(ih) {
                let row = &src[yi as usize * stride..][..stride];
                for x in xmin..xmax {
                    let s = self.xintab[x] as usize * 3;
                    out[3 * x..3 * x + 3].copy_from_slice(&row[s..s + 3]);
                }
            }
            yo += a4;
        }
    }

    /// Resample.c `ImagingResampleInner` for 8-bit RGB: horizontal pass over
    /// the source rows the vertical kernels reach, then the vertical pass; or
    /// the other way round where Pillow 13 takes it.
    fn convolve(
        &mut self,
        src: &[u8],
        (iw, ih): (u32, u32),
        b: [f32; 4],
        filter: fn(f64) -> f64,
        support: f64,
    ) {
        let (ow, oh) = (self.pre.width, self.pre.height);
        let hc = &mut self.horizontal;
        hc.update(iw, b[0], b[2], ow, filter, support);
        let vc = &mut self.vertical;
        vc.update(ih, b[1], b[3], oh, filter, support);
        let (hc, vc) = (&self.horizontal, &self.vertical);
        // Pillow's ybox_first / ybox_last; the kernels only move forward.
        let y0 = vc.bounds[0].0 as usize;
        let y1 = vc
            .bounds
            .iter()
            .map(|&(s, n)| (s + n) as usize)
            .max()
            .unwrap_or(y0);
        let x0 = hc.bounds.iter().map(|b| b.0).min().unwrap_or(0) as usize;
        let x1 = hc
            .bounds
            .iter()
            .map(|&(s, n)| (s + n) as usize)
            .max()
            .unwrap_or(x0);
        let (ow3, stride) = (ow as usize * 3, iw as usize * 3);
        let n = (x1 - x0) * 3;
        // The SIMD horizontal pass reads 8 bytes from each even tap, up to one
        // pixel past the window plus two bytes: pad by 16.
        self.line.clear();
        self.line.resize(n + 16, 0);
        let simd = self.simd;
        // Pillow 13 (Resample.c, python-pillow/Pillow#9549) runs the vertical
        // pass first when the height shrinks by more than twice the width's
        // pixels; the 8-bit intermediate then differs, so follow the order.
        // Only the columns the horizontal kernels reach are computed.
        let (dh, dw) = (i64::from(ih) - i64::from(oh), i64::from(iw) - i64::from(ow));
        if dh > 0 && dh > dw * 2 {
            for (yy, out) in self.pixels.chunks_exact_mut(ow3).enumerate() {
                let first = vc.bounds[yy].0 as usize * stride + x0 * 3;
                vertical_row(vc, yy, &src[first..], stride, &mut self.line[..n], simd);
                horizontal_row(hc, &self.line, x0, out, simd);
            }
            return;
        }
        self.rows.clear();
        self.rows.resize((y1 - y0) * ow3, 0);
        for (sy, out) in (y0..y1).zip(self.rows.chunks_exact_mut(ow3)) {
            let off = sy * stride + x0 * 3;
            self.line[..n].copy_from_slice(&src[off..off + n]);
            horizontal_row(hc, &self.line, x0, out, simd);
        }
        for (yy, out) in self.pixels.chunks_exact_mut(ow3).enumerate() {
            let first = (vc.bounds[yy].0 as usize - y0) * ow3;
            vertical_row(vc, yy, &self.rows[first..], ow3, out, simd);
        }
    }
}

/// Normalises resized RGB pixels (`H*W*3`, 0..=255 scale) into `out` with the
/// recipe's mean, std, channel order and layout.
pub fn normalize_into<T: Copy + Into<f32>>(pre: &Preprocess, rgb: &[T], out: &mut [f32]) {
    let hw = pre.height as usize * pre.width as usize;
    debug_assert_eq!(rgb.len(), hw * 3);
    debug_assert_eq!(out.len(), hw * 3);
    let order: [usize; 3] = match pre.channel_order {
        ChannelOrder::Rgb => [0, 1, 2],
        ChannelOrder::Bgr => [2, 1, 0],
    };
    let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / pre.std[order[c]]);
    let mean: [f32; 3] = std::array::from_fn(|c| pre.mean[order[c]]);
    match pre.layout {
        Layout::Nchw => {
            let (p0, rest) = out.split_at_mut(hw);
            let (p1, p2) = rest.split_at_mut(hw);
            for (i, px) in rgb.chunks_exact(3).enumerate() {
                p0[i] = (px[order[0]].into() - mean[0]) * scale[0];
                p1[i] = (px[order[1]].into() - mean[1]) * scale[1];
                p2[i] = (px[order[2]].into() - mean[2]) * scale[2];
            }
        }
        Layout::Nhwc => {
            for (o, px) in out.chunks_exact_mut(3).zip(rgb.chunks_exact(3)) {
                for c in 0..3 {
                    o[c] = (px[order[c]].into() - mean[c]) * scale[c];
                }
            }
        }
    }
}

/// Whether the SIMD passes can run on this CPU.
fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("ssse3")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Pillow's `clip8`: the accumulator's integer part, clamped to a byte.
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Per output pixel of one axis: Pillow's `bounds` (first source index, tap
/// count) and fixed-point weights, from `precompute_coeffs` and
/// `normalize_coeffs_8bpc`. Kept between images of the same size.
#[derive(Default)]
struct Coefficients {
    /// Input size, box start and end (bits of the `f32`s), output size.
    key: Option<(u32, u32, u32, u32)>,
    /// Weights per output pixel (Pillow's `ksize`), zero-padded.
    window: usize,
    bounds: Vec<(u32, u32)>,
    weights: Vec<i32>,
    /// Pairs of consecutive taps for the SIMD paths, `window.div_ceil(2)` per
    /// output pixel: each weight `k` split as `hi * 2^11 + lo` with `0 <= lo <
    /// 2^11`, and `[lo_a | lo_b << 16, hi_a | hi_b << 16]` as two `i32`s, so
    /// that `_mm_madd_epi16` multiplies two taps' samples by 16-bit halves; the
    /// sum `(hi_sum << 11) + lo_sum` is the exact `i32` sum.
    pairs: Vec<[i32; 2]>,
}

impl Coefficients {
    fn update(
        &mut self,
        in_size: u32,
        in0: f32,
        in1: f32,
        out: u32,
        filter: fn(f64) -> f64,
        support: f64,
    ) {
        let key = (in_size, in0.to_bits(), in1.to_bits(), out);
        if self.key == Some(key) {
            return;
        }
        // `(double)(in1 - in0) / outSize`: the difference is a float.
        let scale = f64::from(in1 - in0) / f64::from(out);
        let filterscale = if scale < 1.0 { 1.0 } else { scale };
        let support = support * filterscale;
        let window = support.ceil() as usize * 2 + 1;
        let ss = 1.0 / filterscale;
        self.window = window;
        self.bounds.clear();
        self.weights.clear();
        self.weights.resize(window * out as usize, 0);
        let mut k = vec![0f64; window];
        for (xx, kk) in self.weights.chunks_exact_mut(window).enumerate() {
            let center = f64::from(in0) + (xx as f64 + 0.5) * scale;
            // `(int)` truncates toward zero, as `as` does.
            let xmin = ((center - support + 0.5) as i64).max(0);
            let xmax = ((center + support + 0.5) as i64).min(i64::from(in_size));
            let n = (xmax - xmin).clamp(0, window as i64) as usize;
            let mut ww = 0.0;
            for (x, w) in k[..n].iter_mut().enumerate() {
                *w = filter(((x as i64 + xmin) as f64 - center + 0.5) * ss);
                ww += *w;
            }
            for (w, &v) in kk.iter_mut().zip(&k[..n]) {
                let v = if ww != 0.0 { v / ww } else { v };
                let scaled = v * f64::from(1u32 << PRECISION_BITS);
                *w = if v < 0.0 {
                    (-0.5 + scaled) as i32
                } else {
                    (0.5 + scaled) as i32
                };
            }
            self.bounds.push((xmin as u32, n as u32));
        }
        let half = window.div_ceil(2);
        self.pairs.clear();
        for kk in self.weights.chunks_exact(window) {
            for p in 0..half {
                let a = kk[2 * p];
                let b = kk.get(2 * p + 1).copied().unwrap_or(0);
                let lo = |k: i32| (k & ((1 << LO_BITS) - 1)) as u32;
                let hi = |k: i32| ((k >> LO_BITS) as i16 as u16) as u32;
                self.pairs
                    .push([(lo(a) | lo(b) << 16) as i32, (hi(a) | hi(b) << 16) as i32]);
            }
        }
        self.key = Some(key);
    }

    fn taps(&self, o: usize) -> (usize, &[i32]) {
        let (s, n) = self.bounds[o];
        (
            s as usize,
            &self.weights[o * self.window..o * self.window + n as usize],
        )
    }

    fn tap_pairs(&self, o: usize) -> &[[i32; 2]] {
        let half = self.window.div_ceil(2);
        let n = self.bounds[o].1 as usize;
        &self.pairs[o * half..o * half + n.div_ceil(2)]
    }
}

/// One row of the horizontal pass (`ImagingResampleHorizontal_8bpc`, 3 bands):
/// `out[3*xx + c]` from the packed-RGB `line`, which starts at source column
/// `x0` and has 16 bytes of padding.
fn horizontal_row(hc: &Coefficients, line: &[u8], x0: usize, out: &mut [u8], simd: bool) {
    #[cfg(target_arch = "x86_64")]
    if simd {
        // SAFETY: `simd` is only set when SSSE3 was detected at run time.
        unsafe { horizontal_row_ssse3(hc, line, x0, out) };
        return;
    }
    let _ = simd;
    for (xx, px) in out.chunks_exact_mut(3).enumerate() {
        let (s, k) = hc.taps(xx);
        let q = &line[(s - x0) * 3..];
        let mut acc = [HALF; 3];
        for (x, &w) in k.iter().enumerate() {
            for c in 0..3 {
                acc[c] = acc[c].wrapping_add(i32::from(q[3 * x + c]).wrapping_mul(w));
            }
        }
        for c in 0..3 {
            px[c] = clip8(acc[c]);
        }
    }
}

/// [`horizontal_row`] two taps at a time: eight bytes from the first tap's
/// pixel, shuffled to `[R_a, R_b, G_a, G_b, B_a, B_b, 0, 0]` as 16-bit lanes,
/// multiplied by the pair's weight halves with `_mm_madd_epi16`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "ssse3")]
unsafe fn horizontal_row_ssse3(hc: &Coefficients, line: &[u8], x0: usize, out: &mut [u8]) {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi32, _mm_cvtsi128_si32, _mm_loadl_epi64, _mm_madd_epi16,
        _mm_packs_epi32, _mm_packus_epi16, _mm_set1_epi32, _mm_setr_epi8, _mm_setzero_si128,
        _mm_shuffle_epi8, _mm_slli_epi32, _mm_srai_epi32,
    };
    let n_out = out.len() / 3;
    // Bounds of the unchecked reads: pair `p` of pixel `xx` reads
    // `line[3*(s - x0) + 6*p..][..8]`, `6*p < 3*n + 3` for `n` taps, and
    // `s + n <= x0 + (line.len() - 16) / 3`.
    assert!(hc.bounds.len() >= n_out);
    for &(s, n) in &hc.bounds[..n_out] {
        assert!(s as usize >= x0 && (s + n) as usize * 3 + 16 <= x0 * 3 + line.len());
    }
    let mask = _mm_setr_epi8(
        0, -128, 3, -128, 1, -128, 4, -128, 2, -128, 5, -128, -1, -1, -1, -1,
    );
    let half = _mm_set1_epi32(HALF);
    let lp = line.as_ptr();
    for (xx, px) in out.chunks_exact_mut(3).enumerate() {
        let base = (hc.bounds[xx].0 as usize - x0) * 3;
        let mut lo = _mm_setzero_si128();
        let mut hi = _mm_setzero_si128();
        for (p, w) in hc.tap_pairs(xx).iter().enumerate() {
            // SAFETY: in bounds by the asserts above.
            let v = unsafe { _mm_loadl_epi64(lp.add(base + 6 * p).cast::<__m128i>()) };
            let v = _mm_shuffle_epi8(v, mask);
            lo = _mm_add_epi32(lo, _mm_madd_epi16(v, _mm_set1_epi32(w[0])));
            hi = _mm_add_epi32(hi, _mm_madd_epi16(v, _mm_set1_epi32(w[1])));
        }
        let sum = _mm_add_epi32(_mm_add_epi32(_mm_slli_epi32::<11>(hi), lo), half);
        let r = _mm_srai_epi32::<22>(sum);
        let bytes = _mm_cvtsi128_si32(_mm_packus_epi16(_mm_packs_epi32(r, r), r)) as u32;
        px.copy_from_slice(&bytes.to_le_bytes()[..3]);
    }
}

/// One row of the vertical pass (`ImagingResampleVertical_8bpc`): output row
/// `yy`, `rows` starting at its first source row, `stride` bytes per row.
fn vertical_row(
    vc: &Coefficients,
    yy: usize,
    rows: &[u8],
    stride: usize,
    out: &mut [u8],
    simd: bool,
) {
    let (_, k) = vc.taps(yy);
    let n = out.len();
    assert!(n <= stride && rows.len() >= k.len().saturating_sub(1) * stride + n);
    let mut c = 0;
    #[cfg(target_arch = "x86_64")]
    if simd {
        // SAFETY: SSE2 is part of the x86_64 baseline; bounds by the assert above.
        c = unsafe { vertical_row_sse2(vc.tap_pairs(yy), k.len(), rows, stride, out) };
    }
    let _ = simd;
    for (i, o) in out.iter_mut().enumerate().skip(c) {
        let mut acc = HALF;
        for (y, &w) in k.iter().enumerate() {
            acc = acc.wrapping_add(i32::from(rows[y * stride + i]).wrapping_mul(w));
        }
        *o = clip8(acc);
    }
}

/// [`vertical_row`] for sixteen bytes at a time and two rows per
/// `_mm_madd_epi16` (the bytes of both rows interleaved); returns how many
/// bytes it wrote. The odd last tap pairs its row with itself at weight 0.
#[cfg(target_arch = "x86_64")]
unsafe fn vertical_row_sse2(
    pairs: &[[i32; 2]],
    taps: usize,
    rows: &[u8],
    stride: usize,
    out: &mut [u8],
) -> usize {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi32, _mm_loadu_si128, _mm_madd_epi16, _mm_packs_epi32, _mm_packus_epi16,
        _mm_set1_epi32, _mm_setzero_si128, _mm_slli_epi32, _mm_srai_epi32, _mm_storeu_si128,
        _mm_unpackhi_epi8, _mm_unpacklo_epi8,
    };
    let n = out.len();
    let mut c = 0;
    // SAFETY (whole body): row `y < taps` is read at `y * stride + c..+16` with
    // `c + 16 <= n <= stride`, in bounds as the caller asserted; writes stay
    // within `out[c..c + 16]`.
    unsafe {
        let half = _mm_set1_epi32(HALF);
        let zero = _mm_setzero_si128();
        while c + 16 <= n {
            let mut lo = [zero; 4];
            let mut hi = [zero; 4];
            for (p, w) in pairs.iter().enumerate() {
                let ya = 2 * p;
                let yb = (ya + 1).min(taps - 1);
                let a = _mm_loadu_si128(rows.as_ptr().add(ya * stride + c).cast::<__m128i>());
                let b = _mm_loadu_si128(rows.as_ptr().add(yb * stride + c).cast::<__m128i>());
                let (ab0, ab1) = (_mm_unpacklo_epi8(a, b), _mm_unpackhi_epi8(a, b));
                let v = [
                    _mm_unpacklo_epi8(ab0, zero),
                    _mm_unpackhi_epi8(ab0, zero),
                    _mm_unpacklo_epi8(ab1, zero),
                    _mm_unpackhi_epi8(ab1, zero),
                ];
                let (wl, wh) = (_mm_set1_epi32(w[0]), _mm_set1_epi32(w[1]));
                for q in 0..4 {
                    lo[q] = _mm_add_epi32(lo[q], _mm_madd_epi16(v[q], wl));
                    hi[q] = _mm_add_epi32(hi[q], _mm_madd_epi16(v[q], wh));
                }
            }
            let r: [__m128i; 4] = std::array::from_fn(|q| {
                let sum = _mm_add_epi32(_mm_add_epi32(_mm_slli_epi32::<11>(hi[q]), lo[q]), half);
                _mm_srai_epi32::<22>(sum)
            });
            let bytes = _mm_packus_epi16(_mm_packs_epi32(r[0], r[1]), _mm_packs_epi32(r[2], r[3]));
            _mm_storeu_si128(out.as_mut_ptr().add(c).cast::<__m128i>(), bytes);
            c += 16;
        }
    }
    c
}

fn bilinear(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

/// Pillow's `bicubic_filter` (a = -0.5).
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let x = x * std::f64::consts::PI;
        x.sin() / x
    }
}

/// Pillow's `lanczos_filter` (a = 3).
fn lanczos(x: f64) -> f64 {
    if (-3.0..3.0).contains(&x) {
        sinc(x) * sinc(x / 3.0)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::RgbImage;

    fn noise_image(w: u32, h: u32, seed: u32) -> RgbImage {
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        RgbImage::from_fn(w, h, |x, y| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            // Smooth gradient plus noise: both edges and flat areas.
            let base = ((x * 255) / w.max(1) + (y * 128) / h.max(1)) as u8;
            image::Rgb([
                base,
                (s & 0xff) as u8,
                base.wrapping_add((s >> 8) as u8 / 4),
            ])
        })
    }

    fn recipe(filter: Filter, crop_fraction: f32, width: u32, height: u32) -> Preprocess {
        Preprocess {
            filter,
            crop_fraction,
            width,
            height,
            ..Preprocess::imagenet("input")
        }
    }

    /// `ImagingResampleInner` transcribed as plainly as possible over the whole
    /// image (no crop window, no line buffer, no SIMD): the reference for the
    /// fast path's bookkeeping.
    fn reference(pre: &Preprocess, img: &RgbImage) -> Vec<u8> {
        let p = Preprocessor::new(pre.clone());
        let (iw, ih) = img.dimensions();
        let b = p.crop_box(iw, ih);
        let (filter, support) = p.kernel.unwrap();
        let (ow, oh) = (pre.width as usize, pre.height as usize);
        let (mut hc, mut vc) = (Coefficients::default(), Coefficients::default());
        hc.update(iw, b[0], b[2], pre.width, filter, support);
        vc.update(ih, b[1], b[3], pre.height, filter, support);
        if ih as usize > oh && ih as usize - oh > 2 * (iw as usize).saturating_sub(ow) {
            // Pillow 13's vertical pass first, over every column.
            let mut temp = vec![0u8; oh * iw as usize * 3];
            for yy in 0..oh {
                let (s, k) = vc.taps(yy);
                for xx in 0..iw as usize {
                    for c in 0..3 {
                        let mut ss = 1i32 << 21;
                        for (y, &w) in k.iter().enumerate() {
                            ss += i32::from(img.get_pixel(xx as u32, (s + y) as u32)[c]) * w;
                        }
                        temp[(yy * iw as usize + xx) * 3 + c] = clip8(ss);
                    }
                }
            }
            let mut out = vec![0u8; oh * ow * 3];
            for yy in 0..oh {
                for xx in 0..ow {
                    let (s, k) = hc.taps(xx);
                    for c in 0..3 {
                        let mut ss = 1i32 << 21;
                        for (x, &w) in k.iter().enumerate() {
                            ss += i32::from(temp[(yy * iw as usize + s + x) * 3 + c]) * w;
                        }
                        out[(yy * ow + xx) * 3 + c] = clip8(ss);
                    }
                }
            }
            return out;
        }
        let y0 = vc.bounds[0].0 as usize;
        let last = vc.bounds[oh - 1];
        let y1 = (last.0 + last.1) as usize;
        let mut temp = vec![0u8; (y1 - y0) * ow * 3];
        for yy in 0..y1 - y0 {
            for xx in 0..ow {
                let (s, k) = hc.taps(xx);
                for c in 0..3 {
                    let mut ss = 1i32 << 21;
                    for (x, &w) in k.iter().enumerate() {
                        ss += i32::from(img.get_pixel((s + x) as u32, (yy + y0) as u32)[c]) * w;
                    }
                    temp[(yy * ow + xx) * 3 + c] = clip8(ss);
                }
            }
        }
        let mut out = vec![0u8; oh * ow * 3];
        for yy in 0..oh {
            let (s, k) = vc.taps(yy);
            for xx in 0..ow * 3 {
                let mut ss = 1i32 << 21;
                for (y, &w) in k.iter().enumerate() {
                    ss += i32::from(temp[(s - y0 + y) * ow * 3 + xx]) * w;
                }
                out[yy * ow * 3 + xx] = clip8(ss);
            }
        }
        out
    }

    /// Shapes that exercise downscaling, upscaling, no crop, wide kernels and
    /// the SIMD tails: 227 px is 227*3 = 16*42 + 9 bytes in the vertical pass,
    /// and odd tap counts leave a half pair; tall portraits take Pillow 13's
    /// vertical-first order.
    const SHAPES: [(u32, u32, f32, u32, u32); 11] = [
        (400, 900, 0.875, 224, 224),
        (150, 700, 1.0, 227, 225),
        (500, 375, 0.875, 224, 224),
        (375, 500, 0.875, 224, 224),
        (224, 224, 1.0, 224, 224),
        (640, 480, 1.0, 224, 224),
        (100, 60, 0.875, 224, 224),
        (1200, 900, 0.875, 224, 224),
        (500, 375, 0.875, 227, 225),
        (33, 47, 1.0, 227, 225),
        (301, 257, 0.9, 5, 3),
    ];

    #[test]
    fn fast_paths_equal_the_plain_transcription_of_pillow() {
        for filter in [Filter::Bilinear, Filter::Bicubic, Filter::Lanczos3] {
            for (w, h, crop, out_w, out_h) in SHAPES {
                let pre = recipe(filter, crop, out_w, out_h);
                let img = noise_image(w, h, w ^ h);
                let expected = reference(&pre, &img);
                let mut p = Preprocessor::new(pre.clone());
                for simd in [false, true] {
                    p.simd = simd && simd_available();
                    let ours = p.resize_u8(&img).unwrap();
                    let diff = ours.iter().zip(&expected).filter(|(a, b)| a != b).count();
                    assert_eq!(
                        diff, 0,
                        "{filter:?} {w}x{h} crop {crop} -> {out_w}x{out_h}, simd {simd}: {diff} bytes differ"
                    );
                }
                // The f32 output is the same pixels.
                let bytes = p.resize_u8(&img).unwrap().to_vec();
                let floats = p.resize(&img).unwrap();
                assert!(bytes.iter().zip(floats).all(|(&a, &b)| f32::from(a) == b));
            }
        }
    }

    #[test]
    fn nearest_and_identity_keep_pixel_values() {
        let img = noise_image(224, 224, 3);
        for filter in [
            Filter::Nearest,
            Filter::Bilinear,
            Filter::Bicubic,
            Filter::Lanczos3,
        ] {
            let pre = recipe(filter, 1.0, 224, 224);
            let ours = Preprocessor::new(pre).resize_u8(&img).unwrap().to_vec();
            assert_eq!(ours, img.as_raw()[..], "{filter:?}");
        }
        // A whole-pixel box of the output's size is a crop (as in Pillow).
        let img = noise_image(256, 300, 4);
        let mut p = Preprocessor::new(recipe(Filter::Bicubic, 0.875, 224, 224));
        assert_eq!(p.crop_box(256, 300), [16.0, 38.0, 240.0, 262.0]);
        let ours = p.resize_u8(&img).unwrap().to_vec();
        let crop = image::imageops::crop_imm(&img, 16, 38, 224, 224).to_image();
        assert_eq!(ours, crop.into_raw());
    }

    #[test]
    fn crop_fraction_is_the_decimal_python_reads() {
        // 0.9f32 is 0.89999998; Python reads "0.9" from the JSON metadata.
        let p = Preprocessor::new(recipe(Filter::Bicubic, 0.9, 224, 224));
        let side = 0.9f64 * 375.0;
        assert_eq!(
            p.crop_box(500, 375),
            [
                ((500.0 - side) / 2.0) as f32,
                ((375.0 - side) / 2.0) as f32,
                ((500.0 + side) / 2.0) as f32,
                ((375.0 + side) / 2.0) as f32
            ]
        );
    }

    /// Pixels from Pillow for the README's `load()`, made by
    /// `scripts/pillow_fixtures.py` (tests/data/pillow/cases.json): a 300x300
    /// greyscale scan, a 451x300 photo, a 40x30 and a 28x28 image upscaled, every
    /// filter, crop 0.875 and 0.9 (inexact in f32), square and odd output sizes.
    /// Every byte must equal Pillow's, with and without SIMD.
    #[test]
    fn pixels_match_pillow_for_every_filter() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/pillow");
        let read = |name: &str| {
            let bytes = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            crate::decode::decode_rgb8(&bytes).unwrap()
        };
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("cases.json")).unwrap()).unwrap();
        let cases = meta["cases"].as_array().unwrap();
        assert!(cases.len() >= 20);
        let mut filters = std::collections::BTreeSet::new();
        for case in cases {
            let filter: Filter = serde_json::from_value(case["filter"].clone()).unwrap();
            filters.insert(format!("{filter:?}"));
            let crop = case["crop_fraction"].as_f64().unwrap() as f32;
            let (w, h) = (
                case["width"].as_u64().unwrap() as u32,
                case["height"].as_u64().unwrap() as u32,
            );
            let img = read(case["input"].as_str().unwrap());
            let expected = read(case["expected"].as_str().unwrap());
            assert_eq!(expected.dimensions(), (w, h));
            let mut p = Preprocessor::new(recipe(filter, crop, w, h));
            for simd in [false, true] {
                p.simd = simd && simd_available();
                let ours = p.resize_u8(&img).unwrap();
                let (mut max, mut n) = (0u8, 0usize);
                for (a, b) in ours.iter().zip(expected.as_raw()) {
                    max = max.max(a.abs_diff(*b));
                    n += usize::from(a != b);
                }
                assert!(
                    max == 0,
                    "{}: max difference {max} levels on {n} of {} values (simd {simd})",
                    case["expected"],
                    ours.len()
                );
            }
        }
        assert_eq!(filters.len(), 4, "{filters:?}");
    }
}

#[cfg(test)]
mod bench {
    use super::*;
    use image::RgbImage;

    /// Milliseconds per image of `Preprocessor::resize`, for a few source sizes
    /// and every filter: `cargo test --release -p headstart-extract --lib
    /// tensor::bench -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn resize_speed() {
        for (w, h) in [(500u32, 375u32), (1600, 1200), (4000, 3000)] {
            let img = RgbImage::from_fn(w, h, |x, y| {
                image::Rgb([(x * 7 + y) as u8, (x ^ y) as u8, (x * y) as u8])
            });
            for filter in [
                Filter::Nearest,
                Filter::Bilinear,
                Filter::Bicubic,
                Filter::Lanczos3,
            ] {
                let pre = Preprocess {
                    filter,
                    ..Preprocess::imagenet("input")
                };
                let mut p = Preprocessor::new(pre);
                p.resize(&img).unwrap();
                let n = if w > 2000 { 10 } else { 50 };
                let t = std::time::Instant::now();
                for _ in 0..n {
                    std::hint::black_box(p.resize(&img).unwrap());
                }
                let ms = t.elapsed().as_secs_f64() * 1000.0 / n as f64;
                println!("{w}x{h} {filter:?}: {ms:.3} ms");
            }
        }
    }
}
