//! RGB8 image -> normalised input tensor, as a model's [`Preprocess`] says.

use fast_image_resize::{
    FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer,
    images::{Image, ImageRef},
};
use headstart_models::preprocess::{ChannelOrder, Filter, Layout, Preprocess};
use image::RgbImage;

/// Reusable per-thread state for [`Preprocessor::tensor_into`].
pub struct Preprocessor {
    pre: Preprocess,
    resizer: Resizer,
    wide: Vec<u16>,
    resized16: Vec<u16>,
    resized: Vec<f32>,
}

impl Preprocessor {
    /// A preprocessor for `pre` (assumed validated).
    pub fn new(pre: Preprocess) -> Preprocessor {
        let n = pre.height as usize * pre.width as usize * 3;
        Preprocessor {
            pre,
            resizer: Resizer::new(),
            wide: Vec::new(),
            resized16: vec![0; n],
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
    /// Resampling runs on 16-bit samples (SIMD, 32-bit coefficients): the 8-bit
    /// path's 16-bit coefficients shift pixels by up to 2 levels against the
    /// exact convolution, enough to move ImageNet probabilities by 0.01.
    pub fn resize(&mut self, img: &RgbImage) -> Result<&[f32], String> {
        let (w, h) = (f64::from(img.width()), f64::from(img.height()));
        let side = f64::from(self.pre.crop_fraction) * w.min(h);
        let (left, top) = ((w - side) / 2.0, (h - side) / 2.0);
        let alg = match self.pre.filter {
            Filter::Nearest => ResizeAlg::Nearest,
            Filter::Bilinear => ResizeAlg::Convolution(FilterType::Bilinear),
            Filter::Bicubic => ResizeAlg::Convolution(FilterType::CatmullRom),
            Filter::Lanczos3 => ResizeAlg::Convolution(FilterType::Lanczos3),
        };
        self.wide.clear();
        self.wide
            .extend(img.as_raw().iter().map(|&v| u16::from(v) * 257));
        let src = ImageRef::new(
            img.width(),
            img.height(),
            bytemuck::cast_slice(&self.wide),
            PixelType::U16x3,
        )
        .map_err(|e| e.to_string())?;
        let mut dst = Image::from_slice_u8(
            self.pre.width,
            self.pre.height,
            bytemuck::cast_slice_mut(&mut self.resized16),
            PixelType::U16x3,
        )
        .map_err(|e| e.to_string())?;
        let opts = ResizeOptions::new()
            .resize_alg(alg)
            .crop(left, top, side, side);
        self.resizer
            .resize(&src, &mut dst, &opts)
            .map_err(|e| e.to_string())?;
        for (o, &v) in self.resized.iter_mut().zip(&self.resized16) {
            *o = f32::from(v) / 257.0;
        }
        Ok(&self.resized)
    }

    /// Writes the normalised tensor of `img` into `out` (`3*H*W` values).
    pub fn tensor_into(&mut self, img: &RgbImage, out: &mut [f32]) -> Result<(), String> {
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
