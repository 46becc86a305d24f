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
    resized: Vec<u8>,
}

impl Preprocessor {
    /// A preprocessor for `pre` (assumed validated).
    pub fn new(pre: Preprocess) -> Preprocessor {
        let n = pre.height as usize * pre.width as usize * 3;
        Preprocessor {
            pre,
            resizer: Resizer::new(),
            resized: vec![0; n],
        }
    }

    /// The recipe.
    pub fn preprocess(&self) -> &Preprocess {
        &self.pre
    }

    /// Crops, resizes and resamples `img` to the model's size as RGB8 (`H*W*3`).
    pub fn resize(&mut self, img: &RgbImage) -> Result<&[u8], String> {
        let (w, h) = (f64::from(img.width()), f64::from(img.height()));
        let side = f64::from(self.pre.crop_fraction) * w.min(h);
        let (left, top) = ((w - side) / 2.0, (h - side) / 2.0);
        let alg = match self.pre.filter {
            Filter::Nearest => ResizeAlg::Nearest,
            Filter::Bilinear => ResizeAlg::Convolution(FilterType::Bilinear),
            Filter::Bicubic => ResizeAlg::Convolution(FilterType::CatmullRom),
            Filter::Lanczos3 => ResizeAlg::Convolution(FilterType::Lanczos3),
        };
        let src = ImageRef::new(img.width(), img.height(), img.as_raw(), PixelType::U8x3)
            .map_err(|e| e.to_string())?;
        let mut dst = Image::from_slice_u8(
            self.pre.width,
            self.pre.height,
            &mut self.resized,
            PixelType::U8x3,
        )
        .map_err(|e| e.to_string())?;
        let opts = ResizeOptions::new()
            .resize_alg(alg)
            .crop(left, top, side, side);
        self.resizer
            .resize(&src, &mut dst, &opts)
            .map_err(|e| e.to_string())?;
        Ok(&self.resized)
    }

    /// Writes the normalised tensor of `img` into `out` (`3*H*W` values).
    pub fn tensor_into(&mut self, img: &RgbImage, out: &mut [f32]) -> Result<(), String> {
        self.resize(img)?;
        normalize_into(&self.pre, &self.resized, out);
        Ok(())
    }
}

/// Normalises resized RGB8 pixels (`H*W*3`) into `out` with the recipe's mean,
/// std, channel order and layout.
pub fn normalize_into(pre: &Preprocess, rgb: &[u8], out: &mut [f32]) {
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
                p0[i] = (f32::from(px[order[0]]) - mean[0]) * scale[0];
                p1[i] = (f32::from(px[order[1]]) - mean[1]) * scale[1];
                p2[i] = (f32::from(px[order[2]]) - mean[2]) * scale[2];
            }
        }
        Layout::Nhwc => {
            for (o, px) in out.chunks_exact_mut(3).zip(rgb.chunks_exact(3)) {
                for c in 0..3 {
                    o[c] = (f32::from(px[order[c]]) - mean[c]) * scale[c];
                }
            }
        }
    }
}
