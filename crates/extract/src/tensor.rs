//! RGB8 image -> normalised input tensor, as a model's [`Preprocess`] says.

use fast_image_resize::{
    PixelType, ResizeAlg, ResizeOptions, Resizer,
    images::{Image, ImageRef},
};
use headstart_models::preprocess::{ChannelOrder, Filter, Layout, Preprocess};
use std::ops::Deref;

use image::{ImageBuffer, Rgb, RgbImage};

use crate::ExtractError;

/// An RGB8 image over any byte container: an owned [`RgbImage`], or a view of a
/// reused decode buffer (`RgbView<&[u8]>`).
pub type RgbView<C> = ImageBuffer<Rgb<u8>, C>;

/// Reusable per-thread state for [`Preprocessor::tensor_into`].
pub struct Preprocessor {
    pre: Preprocess,
    resizer: Resizer,
    nearest: Vec<u8>,
    line: Vec<f32>,
    /// The horizontal weights, each repeated over four lanes.
    weights4: Vec<[f32; 4]>,
    rows: Vec<f32>,
    resized: Vec<f32>,
}

impl Preprocessor {
    /// A preprocessor for `pre` (assumed validated).
    pub fn new(pre: Preprocess) -> Preprocessor {
        let n = pre.height as usize * pre.width as usize * 3;
        Preprocessor {
            pre,
            resizer: Resizer::new(),
            nearest: vec![0; n],
            line: Vec::new(),
            weights4: Vec::new(),
            rows: Vec::new(),
            resized: vec![0.0; n],
        }
    }

    /// The recipe.
    pub fn preprocess(&self) -> &Preprocess {
        &self.pre
    }

    /// Crops and resamples `img` to the model's size: `H*W*3` RGB values on the
    /// 0..=255 scale, not rounded to integers.
    ///
    /// Convolution filters run separably in `f32` straight from the 8-bit
    /// samples over the crop window only (plus the filter's reach), with
    /// Pillow's kernel placement, pass order and clamping: the result is the
    /// exact convolution to within 1e-3 of a level. An 8-bit resampler with 16-bit
    /// coefficients (fast_image_resize's u8 path) is off by up to 2 levels,
    /// enough to move ImageNet probabilities by 0.01.
    pub fn resize<C: Deref<Target = [u8]>>(
        &mut self,
        img: &RgbView<C>,
    ) -> Result<&[f32], ExtractError> {
        let (w, h) = (f64::from(img.width()), f64::from(img.height()));
        let side = f64::from(self.pre.crop_fraction) * w.min(h);
        let (left, top) = ((w - side) / 2.0, (h - side) / 2.0);
        let (filter, support): (fn(f64) -> f64, f64) = match self.pre.filter {
            Filter::Nearest => return self.resize_nearest(img, (left, top, side)),
            Filter::Bilinear => (bilinear, 1.0),
            Filter::Bicubic => (catmull_rom, 2.0),
            Filter::Lanczos3 => (lanczos3, 3.0),
        };
        let (out_w, out_h) = (self.pre.width, self.pre.height);
        let hc = Coefficients::new(img.width(), left, side, out_w, filter, support);
        let vc = Coefficients::new(img.height(), top, side, out_h, filter, support);
        let (x0, x1) = (hc.first(), hc.last());
        let (y0, y1) = (vc.first(), vc.last());
        let (ow, stride) = (out_w as usize * 3, img.width() as usize * 3);
        let src = img.as_raw();
        // Horizontal pass over the source rows the vertical pass reads, each
        // clamped to 0..=255 as Pillow's intermediate image is. One float of
        // slack at the end: each pixel is stored as four lanes.
        let rows = ensure(&mut self.rows, (y1 - y0) * ow + 1);
        // One source row widened to packed f32 RGB, zero-padded by a window
        // (plus a lane) so every tap reads four floats in bounds.
        let n = (x1 - x0) * 3;
        self.line.clear();
        self.line.resize(n + hc.window * 3 + 1, 0.0);
        let line = &mut self.line[..];
        self.weights4.clear();
        self.weights4.extend(hc.weights.iter().map(|&w| [w; 4]));
        let weights4 = &self.weights4[..];
        for (sy, out) in (y0..y1).zip(0..) {
            let off = sy * stride + x0 * 3;
            for (l, &v) in line[..n].iter_mut().zip(&src[off..off + n]) {
                *l = f32::from(v);
            }
            horizontal_row(&hc, weights4, line, &mut rows[out * ow..out * ow + ow + 1]);
        }
        // Vertical pass: contiguous rows, sixteen columns at a time.
        for (out, (&sy, taps)) in self
            .resized
            .chunks_exact_mut(ow)
            .zip(vc.start.iter().zip(vc.weights.chunks_exact(vc.window)))
        {
            let first = (sy as usize - y0) * ow;
            vertical_row(taps, &rows[first..], ow, out);
        }
        Ok(&self.resized)
    }

    /// Nearest-neighbour: exact on 8-bit samples, so fast_image_resize's u8 path.
    fn resize_nearest<C: Deref<Target = [u8]>>(
        &mut self,
        img: &RgbView<C>,
        (left, top, side): (f64, f64, f64),
    ) -> Result<&[f32], ExtractError> {
        let err = |message: String| ExtractError::Resize {
            width: img.width(),
            height: img.height(),
            message,
        };
        let src = ImageRef::new(img.width(), img.height(), img.as_raw(), PixelType::U8x3)
            .map_err(|e| err(e.to_string()))?;
        let mut dst = Image::from_slice_u8(
            self.pre.width,
            self.pre.height,
            &mut self.nearest,
            PixelType::U8x3,
        )
        .map_err(|e| err(e.to_string()))?;
        let opts = ResizeOptions::new()
            .resize_alg(ResizeAlg::Nearest)
            .crop(left, top, side, side);
        self.resizer
            .resize(&src, &mut dst, &opts)
            .map_err(|e| err(e.to_string()))?;
        for (o, &v) in self.resized.iter_mut().zip(&self.nearest) {
            *o = f32::from(v);
        }
        Ok(&self.resized)
    }

    /// Writes the normalised tensor of `img` into `out` (`3*H*W` values).
    pub fn tensor_into(&mut self, img: &RgbImage, out: &mut [f32]) -> Result<(), ExtractError> {
        self.resize(img)?;
        normalize_into(&self.pre, &self.resized, out);
        Ok(())
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

/// One row of the horizontal pass: `out[3*i..3*i + 3]` is output pixel `i`
/// of the packed-RGB f32 `line` (which starts at source column `hc.first()`), clamped
/// to 0..=255. Each pixel is stored as four lanes, so `out` has one float of
/// slack; the next pixel overwrites the spare lane.
fn horizontal_row(hc: &Coefficients, weights4: &[[f32; 4]], line: &[f32], out: &mut [f32]) {
    let (w, x0) = (hc.window, hc.first());
    let n_out = hc.start.len();
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            _mm_add_ps, _mm_loadu_ps, _mm_max_ps, _mm_min_ps, _mm_mul_ps, _mm_set1_ps,
            _mm_setzero_ps, _mm_storeu_ps,
        };
        // Bounds for the unchecked reads and writes below.
        assert!((hc.max_start - x0 + w) * 3 < line.len());
        assert!(weights4.len() >= n_out * w && out.len() > 3 * n_out);
        // SAFETY: SSE is part of the x86_64 baseline. Tap `k < w` of pixel `i`
        // reads `line[3*(s - x0 + k)..][..4]` and `weights4[i*w + k]`, pixel `i`
        // writes `out[3*i..3*i + 4]`: all in bounds by the asserts above.
        unsafe {
            let (lo, hi) = (_mm_setzero_ps(), _mm_set1_ps(255.0));
            let lp = line.as_ptr();
            let wp = weights4.as_ptr();
            let op = out.as_mut_ptr();
            let mut i = 0;
            // Four pixels at a time: four independent accumulator chains
            // (one alone is bound by the add latency).
            while i + 4 <= n_out {
                let s: [usize; 4] = std::array::from_fn(|j| (hc.start[i + j] as usize - x0) * 3);
                let mut acc = [_mm_setzero_ps(); 4];
                for k in 0..w {
                    for j in 0..4 {
                        let v = _mm_loadu_ps(lp.add(s[j] + 3 * k));
                        let wk = _mm_loadu_ps((*wp.add((i + j) * w + k)).as_ptr());
                        acc[j] = _mm_add_ps(acc[j], _mm_mul_ps(wk, v));
                    }
                }
                for (j, a) in acc.into_iter().enumerate() {
                    _mm_storeu_ps(op.add(3 * (i + j)), _mm_min_ps(_mm_max_ps(a, lo), hi));
                }
                i += 4;
            }
            while i < n_out {
                let s = (hc.start[i] as usize - x0) * 3;
                let mut acc = _mm_setzero_ps();
                for k in 0..w {
                    let v = _mm_loadu_ps(lp.add(s + 3 * k));
                    let wk = _mm_loadu_ps((*wp.add(i * w + k)).as_ptr());
                    acc = _mm_add_ps(acc, _mm_mul_ps(wk, v));
                }
                _mm_storeu_ps(op.add(3 * i), _mm_min_ps(_mm_max_ps(acc, lo), hi));
                i += 1;
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = weights4;
        for (i, (&s, taps)) in hc.start.iter().zip(hc.weights.chunks_exact(w)).enumerate() {
            let q = &line[(s as usize - x0) * 3..];
            let mut a = [0.0f32; 3];
            for (k, &wk) in taps.iter().enumerate() {
                for c in 0..3 {
                    a[c] += wk * q[3 * k + c];
                }
            }
            for c in 0..3 {
                out[3 * i + c] = a[c].clamp(0.0, 255.0);
            }
        }
    }
}

/// One row of the vertical pass: `out[c]` is the sum over the taps `k` of
/// `taps[k] * rows[k * stride + c]`, clamped to 0..=255.
fn vertical_row(taps: &[f32], rows: &[f32], stride: usize, out: &mut [f32]) {
    let n = out.len();
    // Taps past the last row are zero padding and are never read.
    let used = taps.iter().rposition(|&w| w != 0.0).map_or(0, |k| k + 1);
    assert!(n <= stride && rows.len() >= used.saturating_sub(1) * stride + n);
    let mut c = 0;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            _mm_add_ps, _mm_loadu_ps, _mm_max_ps, _mm_min_ps, _mm_mul_ps, _mm_set1_ps,
            _mm_setzero_ps, _mm_storeu_ps,
        };
        // SAFETY: SSE is part of the x86_64 baseline; reads stay within
        // `rows[k * stride + c..][..16]` for `k < used` and `c + 16 <= n`, and
        // writes within `out[c..c + 16]`, in bounds by the assert above.
        unsafe {
            let (lo, hi) = (_mm_setzero_ps(), _mm_set1_ps(255.0));
            while c + 16 <= n {
                let mut acc = [_mm_setzero_ps(); 4];
                for (k, &wk) in taps[..used].iter().enumerate() {
                    let r = rows.as_ptr().add(k * stride + c);
                    let wk = _mm_set1_ps(wk);
                    for (q, a) in acc.iter_mut().enumerate() {
                        *a = _mm_add_ps(*a, _mm_mul_ps(wk, _mm_loadu_ps(r.add(4 * q))));
                    }
                }
                for (q, a) in acc.into_iter().enumerate() {
                    _mm_storeu_ps(
                        out.as_mut_ptr().add(c + 4 * q),
                        _mm_min_ps(_mm_max_ps(a, lo), hi),
                    );
                }
                c += 16;
            }
        }
    }
    for (i, o) in out.iter_mut().enumerate().skip(c) {
        let mut a = 0.0;
        for (k, &wk) in taps[..used].iter().enumerate() {
            a += wk * rows[k * stride + i];
        }
        *o = a.clamp(0.0, 255.0);
    }
}

fn ensure(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if v.len() < len {
        v.resize(len, 0.0);
    }
    &mut v[..len]
}

/// Per output pixel: the first source index and `window` normalised weights
/// (zero-padded), placed as Pillow (and fast_image_resize) place them: the
/// kernel widens with the downscale factor, and source pixels outside the crop
/// box but inside the image contribute.
struct Coefficients {
    window: usize,
    /// The smallest and the largest of `start`.
    min_start: usize,
    max_start: usize,
    start: Vec<u32>,
    weights: Vec<f32>,
}

impl Coefficients {
    fn new(
        in_size: u32,
        in0: f64,
        len: f64,
        out: u32,
        filter: fn(f64) -> f64,
        support: f64,
    ) -> Coefficients {
        let scale = len / f64::from(out);
        let fscale = scale.max(1.0);
        let radius = support * fscale;
        let window = radius.ceil() as usize * 2 + 1;
        let mut start = Vec::with_capacity(out as usize);
        let mut weights = vec![0.0f32; window * out as usize];
        let mut taps = vec![0.0f64; window];
        for (o, ws) in weights.chunks_exact_mut(window).enumerate() {
            let center = in0 + (o as f64 + 0.5) * scale;
            let lo = ((center - radius).floor().max(0.0) as u32).min(in_size.saturating_sub(1));
            let hi = ((center + radius).ceil().min(f64::from(in_size)) as u32).max(lo + 1);
            let n = ((hi - lo) as usize).min(window);
            let mut sum = 0.0;
            for (k, t) in taps[..n].iter_mut().enumerate() {
                *t = filter((f64::from(lo) + k as f64 - (center - 0.5)) / fscale);
                sum += *t;
            }
            if sum == 0.0 {
                // Degenerate kernel (only when the crop is outside the image).
                taps[0] = 1.0;
                sum = 1.0;
            }
            for (w, t) in ws.iter_mut().zip(&taps[..n]) {
                *w = (t / sum) as f32;
            }
            start.push(lo);
        }
        Coefficients {
            window,
            min_start: start.iter().copied().min().unwrap_or(0) as usize,
            max_start: start.iter().copied().max().unwrap_or(0) as usize,
            start,
            weights,
        }
    }

    fn first(&self) -> usize {
        self.min_start
    }

    /// One past the last source index any weight touches.
    fn last(&self) -> usize {
        self.start
            .iter()
            .zip(self.weights.chunks_exact(self.window))
            .map(|(&s, w)| s as usize + w.iter().rposition(|&v| v != 0.0).map_or(1, |i| i + 1))
            .max()
            .unwrap_or(0)
    }
}

fn bilinear(x: f64) -> f64 {
    (1.0 - x.abs()).max(0.0)
}

fn catmull_rom(x: f64) -> f64 {
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

fn lanczos3(x: f64) -> f64 {
    if (-3.0..3.0).contains(&x) {
        sinc(x) * sinc(x / 3.0)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fast_image_resize::FilterType;

    /// The 16-bit fast_image_resize convolution that this module replaced:
    /// the reference the separable f32 path must reproduce.
    fn reference_u16(pre: &Preprocess, img: &RgbImage) -> Vec<f32> {
        let (w, h) = (f64::from(img.width()), f64::from(img.height()));
        let side = f64::from(pre.crop_fraction) * w.min(h);
        let filter = match pre.filter {
            Filter::Bilinear => FilterType::Bilinear,
            Filter::Bicubic => FilterType::CatmullRom,
            Filter::Lanczos3 => FilterType::Lanczos3,
            Filter::Nearest => unreachable!(),
        };
        let wide: Vec<u16> = img.as_raw().iter().map(|&v| u16::from(v) * 257).collect();
        let src = ImageRef::new(
            img.width(),
            img.height(),
            bytemuck::cast_slice(&wide),
            PixelType::U16x3,
        )
        .unwrap();
        let mut out = vec![0u16; pre.width as usize * pre.height as usize * 3];
        let mut dst = Image::from_slice_u8(
            pre.width,
            pre.height,
            bytemuck::cast_slice_mut(&mut out),
            PixelType::U16x3,
        )
        .unwrap();
        let opts = ResizeOptions::new()
            .resize_alg(ResizeAlg::Convolution(filter))
            .crop((w - side) / 2.0, (h - side) / 2.0, side, side);
        Resizer::new().resize(&src, &mut dst, &opts).unwrap();
        out.iter().map(|&v| f32::from(v) / 257.0).collect()
    }

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

    #[test]
    fn matches_the_exact_convolution_for_every_filter_and_shape() {
        for filter in [Filter::Bilinear, Filter::Bicubic, Filter::Lanczos3] {
            for (w, h, crop, out_w, out_h) in [
                (500, 375, 0.875, 224, 224),
                (375, 500, 0.875, 224, 224),
                (224, 224, 1.0, 224, 224),
                (640, 480, 1.0, 224, 224),
                (100, 60, 0.875, 224, 224),
                (1200, 900, 0.875, 224, 224),
                // Widths that leave tails: 227 px is 4*56 + 3 in the horizontal
                // pass, and 227*3 floats are 16*42 + 9 in the vertical one.
                (500, 375, 0.875, 227, 225),
                (33, 47, 1.0, 227, 225),
            ] {
                let pre = Preprocess {
                    filter,
                    crop_fraction: crop,
                    width: out_w,
                    height: out_h,
                    ..Preprocess::imagenet("input")
                };
                let img = noise_image(w, h, w ^ h);
                let ours = Preprocessor::new(pre.clone())
                    .resize(&img)
                    .unwrap()
                    .to_vec();
                let reference = reference_u16(&pre, &img);
                let diff = ours
                    .iter()
                    .zip(&reference)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                // The reference rounds its intermediate to 1/257 of a level.
                assert!(
                    diff < 0.01,
                    "{filter:?} {w}x{h} crop {crop} -> {out_w}x{out_h}: max diff {diff}"
                );
            }
        }
    }

    #[test]
    fn nearest_and_identity_keep_pixel_values() {
        let img = noise_image(224, 224, 3);
        for filter in [Filter::Nearest, Filter::Bicubic] {
            let pre = Preprocess {
                filter,
                crop_fraction: 1.0,
                ..Preprocess::imagenet("input")
            };
            let ours = Preprocessor::new(pre).resize(&img).unwrap().to_vec();
            for (a, &b) in ours.iter().zip(img.as_raw()) {
                assert!((a - f32::from(b)).abs() < 1e-3, "{filter:?}: {a} vs {b}");
            }
        }
    }
}
