//! How images become input tensors for a backbone: crop, resize, normalise, layout.
//! Recorded in every model sidecar and in every feature cache.

use serde::{Deserialize, Serialize};

/// Tensor memory layout of the model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `[N, 3, H, W]` (PyTorch, most ONNX exports).
    Nchw,
    /// `[N, H, W, 3]` (Keras / TensorFlow exports).
    Nhwc,
}

/// Resampling filter for the resize step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Filter {
    /// Nearest neighbour.
    Nearest,
    /// Bilinear (triangle) with support widened when shrinking.
    Bilinear,
    /// Catmull-Rom bicubic (a = -0.5) with support widened when shrinking (Pillow's BICUBIC).
    Bicubic,
    /// Lanczos3.
    Lanczos3,
}

/// Colour channel order fed to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    /// Red, green, blue.
    Rgb,
    /// Blue, green, red (Caffe-style exports).
    Bgr,
}

/// How JPEG files are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JpegDecode {
    /// Always at full size (recipes written before the choice existed).
    #[default]
    Exact,
    /// At the largest reduced DCT scale (1/2, 1/4 or 1/8) whose output still
    /// covers the crop at the model's input size, as Pillow's `draft()` and
    /// libjpeg's scaling do: a 12 MP photo decodes in a fraction of the time.
    Reduced,
}

impl JpegDecode {
    fn is_exact(&self) -> bool {
        *self == JpegDecode::Exact
    }
}

/// Version of headstart's resize arithmetic, recorded as [`Preprocess::resampler`]
/// (and so part of every model fingerprint): caches and heads made with other
/// arithmetic are refused instead of mixed.
///
/// - 1 (never written down): `f32` convolution without rounding; caches from
///   before the field have no `resampler` in their recipe.
/// - 2: Pillow's 8-bit fixed-point resampling, horizontal pass first (the
///   same pixels as Pillow 10 to 12 for the README's Python `load()`).
/// - 3: the pass order of Pillow 13 (vertical first when the height shrinks by
///   more than twice the width's pixels: tall portraits); the same pixels as
///   Pillow 13.
pub const RESAMPLER_VERSION: u32 = 3;

/// The full preprocessing recipe of a backbone.
///
/// Pipeline: decode to RGB8 (a JPEG at a reduced scale when `jpeg_decode` is
/// `reduced` and the crop allows it) -> take the centred square of side
/// `crop_fraction * min(W, H)` (fractional, not rounded) -> resize it to
/// `height x width` with `filter` -> `x = (pixel - mean[c]) / std[c]` with pixels
/// in 0..=255 -> channel order -> layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    /// Name of the graph input that receives the image tensor.
    pub input_name: String,
    /// Input layout.
    pub layout: Layout,
    /// Output height in pixels.
    pub height: u32,
    /// Output width in pixels.
    pub width: u32,
    /// Side of the centred square crop as a fraction of the shorter image side (1.0 = no crop).
    pub crop_fraction: f32,
    /// Resize filter.
    pub filter: Filter,
    /// Per-channel mean on the 0..=255 scale, in RGB order.
    pub mean: [f32; 3],
    /// Per-channel standard deviation on the 0..=255 scale, in RGB order.
    pub std: [f32; 3],
    /// Channel order of the model input.
    pub channel_order: ChannelOrder,
    /// The resize arithmetic ([`RESAMPLER_VERSION`]). Written, never read: a
    /// recipe always gets this build's version, whatever its JSON says, so
    /// the fingerprint of a model changes with the arithmetic.
    #[serde(skip_deserializing, default = "resampler_version")]
    pub resampler: u32,
    /// How JPEGs are decoded (written only when reduced). Every recipe is
    /// written with this build's [`JPEG_DECODER_VERSION`] beside it
    /// (`"jpeg_decoder"`, never read), so its fingerprint changes with the
    /// JPEG decoders' pixels.
    #[serde(flatten, with = "jpeg_decode_fields")]
    pub jpeg_decode: JpegDecode,
}

/// Version of headstart's JPEG decoding, written into every recipe (and so
/// part of its fingerprint): caches and heads made with other pixels are
/// refused instead of mixed.
///
/// - 1 (never written down): the reduced scale by jpeg-decoder's algorithm
///   (the low-frequency corner's IDCT, chroma upsampled after scaling).
/// - 2 (written beside reduced recipes only): the reduced scale by
///   libjpeg-turbo's algorithm (the pixels of Pillow's `draft()`).
/// - 3: the full-size decode's chroma upsampling rounds as libjpeg-turbo's
///   (`vendor/zune-jpeg`): subsampled JPEGs decoded in full, in exact recipes
///   and for small files in reduced ones, give Pillow's pixels.
pub const JPEG_DECODER_VERSION: u32 = 3;

/// `jpeg_decode` (when reduced) and `jpeg_decoder` (the version).
mod jpeg_decode_fields {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{JPEG_DECODER_VERSION, JpegDecode};

    #[derive(Serialize, Deserialize)]
    struct Fields {
        #[serde(default, skip_serializing_if = "JpegDecode::is_exact")]
        jpeg_decode: JpegDecode,
        #[serde(skip_deserializing)]
        jpeg_decoder: u32,
    }

    pub fn serialize<S: Serializer>(d: &JpegDecode, s: S) -> Result<S::Ok, S::Error> {
        Fields {
            jpeg_decode: *d,
            jpeg_decoder: JPEG_DECODER_VERSION,
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<JpegDecode, D::Error> {
        Ok(Fields::deserialize(d)?.jpeg_decode)
    }
}

fn resampler_version() -> u32 {
    RESAMPLER_VERSION
}

impl Preprocess {
    /// The JPEG DCT scale denominator (1, 4 or 8) for a `width` x `height`
    /// image: the largest whose output still covers the crop at the model's
    /// input size; 1 for exact decoding. Never 2: at 1/2 libjpeg's scaled
    /// decode reads every coefficient and was no faster than a full decode
    /// (docs/benchmarks.md).
    pub fn jpeg_scale(&self, width: u32, height: u32) -> u32 {
        if self.jpeg_decode == JpegDecode::Exact {
            return 1;
        }
        let crop = f64::from(self.crop_fraction) * f64::from(width.min(height));
        let need = f64::from(self.height.max(self.width).max(1));
        [8, 4]
            .into_iter()
            .find(|&r| (crop / f64::from(r)).floor() >= need)
            .unwrap_or(1)
    }

    /// TF EfficientNet-Lite evaluation: crop 0.875, bicubic to 224, `(p - 127) / 128`.
    pub fn tf_lite(input_name: &str) -> Preprocess {
        Preprocess {
            input_name: input_name.to_string(),
            layout: Layout::Nchw,
            height: 224,
            width: 224,
            crop_fraction: 0.875,
            filter: Filter::Bicubic,
            mean: [127.0; 3],
            std: [128.0; 3],
            channel_order: ChannelOrder::Rgb,
            resampler: RESAMPLER_VERSION,
            jpeg_decode: JpegDecode::Reduced,
        }
    }

    /// TF EfficientNet-Lite evaluation at `side` x `side` pixels: the centred square of
    /// side `side / (side + 32)` of the shorter image side (the crop TF's
    /// `preprocessing.py` takes: 0.8824 at 240, 0.8904 at 260), bicubic, `(p - 127) / 128`.
    /// At 224 this is [`Preprocess::tf_lite`].
    pub fn tf_lite_sized(input_name: &str, side: u32) -> Preprocess {
        Preprocess {
            height: side,
            width: side,
            crop_fraction: side as f32 / (side + 32) as f32,
            ..Self::tf_lite(input_name)
        }
    }

    /// torchvision ImageNet: resize 256 + centre crop 224 (= crop 0.875), bilinear, ImageNet mean/std.
    pub fn imagenet(input_name: &str) -> Preprocess {
        Preprocess {
            input_name: input_name.to_string(),
            layout: Layout::Nchw,
            height: 224,
            width: 224,
            crop_fraction: 0.875,
            filter: Filter::Bilinear,
            mean: [123.675, 116.28, 103.53],
            std: [58.395, 57.12, 57.375],
            channel_order: ChannelOrder::Rgb,
            resampler: RESAMPLER_VERSION,
            jpeg_decode: JpegDecode::Reduced,
        }
    }

    /// OpenAI CLIP (and OpenCLIP): resize the shorter side to 224 and centre-crop
    /// 224 (crop 1.0), bicubic, CLIP's mean/std (0.48145466, 0.4578275,
    /// 0.40821073 / 0.26862954, 0.26130258, 0.27577711 on the 0-1 scale).
    pub fn clip(input_name: &str) -> Preprocess {
        Preprocess {
            crop_fraction: 1.0,
            filter: Filter::Bicubic,
            mean: [122.770_94, 116.746_01, 104.093_74],
            std: [68.500_53, 66.632_16, 70.323_16],
            ..Self::imagenet(input_name)
        }
    }

    /// DINOv2's linear evaluation: resize 256 + centre crop 224 (crop 0.875),
    /// bicubic, ImageNet mean/std.
    pub fn dinov2(input_name: &str) -> Preprocess {
        Preprocess {
            filter: Filter::Bicubic,
            ..Self::imagenet(input_name)
        }
    }

    /// A named preset: `imagenet`, `tf-lite` (224 px), `tf-lite-240` or `tf-lite-260`
    /// ([`Preprocess::tf_lite_sized`], EfficientNet-Lite1 and -Lite2), `clip`
    /// ([`Preprocess::clip`]) or `dinov2` ([`Preprocess::dinov2`]).
    pub fn preset(name: &str, input_name: &str) -> Option<Preprocess> {
        match name {
            "imagenet" => Some(Self::imagenet(input_name)),
            "tf-lite" => Some(Self::tf_lite(input_name)),
            "tf-lite-240" => Some(Self::tf_lite_sized(input_name, 240)),
            "tf-lite-260" => Some(Self::tf_lite_sized(input_name, 260)),
            "clip" => Some(Self::clip(input_name)),
            "dinov2" => Some(Self::dinov2(input_name)),
            _ => None,
        }
    }

    /// Names accepted by [`Preprocess::preset`].
    pub const PRESETS: &'static [&'static str] = &[
        "imagenet",
        "tf-lite",
        "tf-lite-240",
        "tf-lite-260",
        "clip",
        "dinov2",
    ];

    /// Checks the values are usable; the error names the bad field and value.
    pub fn validate(&self) -> Result<(), crate::ModelError> {
        let bad = |field, value: String, message| {
            Err(crate::ModelError::Preprocess {
                field,
                value,
                message,
            })
        };
        if self.height == 0 || self.width == 0 || self.height > 4096 || self.width > 4096 {
            let size = format!("{}x{}", self.height, self.width);
            return bad("input size", size, "must be between 1 and 4096");
        }
        if !(self.crop_fraction > 0.0 && self.crop_fraction <= 1.0) {
            let crop = self.crop_fraction.to_string();
            return bad("crop fraction", crop, "must be in (0, 1]");
        }
        if self.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return bad(
                "std",
                format!("{:?}", self.std),
                "must be finite and positive",
            );
        }
        if self.mean.iter().any(|m| !m.is_finite()) {
            return bad("mean", format!("{:?}", self.mean), "must be finite");
        }
        Ok(())
    }

    /// Number of f32 values of one image tensor.
    pub fn tensor_len(&self) -> usize {
        3 * self.height as usize * self.width as usize
    }

    /// The input tensor shape for a batch of `n`.
    pub fn shape(&self, n: usize) -> [i64; 4] {
        let (h, w) = (i64::from(self.height), i64::from(self.width));
        match self.layout {
            Layout::Nchw => [n as i64, 3, h, w],
            Layout::Nhwc => [n as i64, h, w, 3],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_round_trip_json() {
        for name in Preprocess::PRESETS {
            let p = Preprocess::preset(name, "input").unwrap();
            p.validate().unwrap();
            let back: Preprocess =
                serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
            assert_eq!(back, p);
        }
        let mut p = Preprocess::tf_lite("x");
        p.crop_fraction = 0.0;
        let e = p.validate().unwrap_err().to_string();
        assert!(e.contains("crop fraction"), "{e}");
    }

    /// `clip` and `dinov2` are the published recipes: CLIP's mean/std on the
    /// 0-1 scale times 255, no crop beyond the centred square; DINOv2's
    /// resize 256 / crop 224 with ImageNet's mean/std; both bicubic at 224 px.
    #[test]
    fn clip_and_dinov2_presets_match_their_published_recipes() {
        let clip = Preprocess::preset("clip", "pixel_values").unwrap();
        let mean = [0.481_454_66_f64, 0.457_827_5, 0.408_210_73];
        let std = [0.268_629_54_f64, 0.261_302_58, 0.275_777_11];
        for c in 0..3 {
            assert!(
                (f64::from(clip.mean[c]) / 255.0 - mean[c]).abs() < 1e-7,
                "{c}"
            );
            assert!(
                (f64::from(clip.std[c]) / 255.0 - std[c]).abs() < 1e-7,
                "{c}"
            );
        }
        assert_eq!(clip.crop_fraction, 1.0);
        assert_eq!(clip.input_name, "pixel_values");
        let dinov2 = Preprocess::preset("dinov2", "x").unwrap();
        assert_eq!(dinov2.crop_fraction, 224.0 / 256.0);
        assert_eq!(dinov2.mean, Preprocess::imagenet("x").mean);
        assert_eq!(dinov2.std, Preprocess::imagenet("x").std);
        for p in [&clip, &dinov2] {
            assert_eq!(p.filter, Filter::Bicubic);
            assert_eq!((p.height, p.width, p.layout), (224, 224, Layout::Nchw));
        }
    }

    /// Lite0's recipe is pinned byte for byte (its fingerprint depends on it);
    /// the sized recipes differ from it only in size and crop.
    #[test]
    fn tf_lite_recipes_keep_lite0_and_record_their_crop() {
        let lite0 = serde_json::to_string(&Preprocess::tf_lite("input")).unwrap();
        assert_eq!(
            lite0,
            format!(
                "{{\"input_name\":\"input\",\"layout\":\"nchw\",\"height\":224,\"width\":224,\
                 \"crop_fraction\":0.875,\"filter\":\"bicubic\",\"mean\":[127.0,127.0,127.0],\
                 \"std\":[128.0,128.0,128.0],\"channel_order\":\"rgb\",\
                 \"resampler\":{RESAMPLER_VERSION},\"jpeg_decode\":\"reduced\",\
                 \"jpeg_decoder\":{JPEG_DECODER_VERSION}}}"
            )
        );
        assert_eq!(
            Preprocess::tf_lite_sized("input", 224),
            Preprocess::tf_lite("input")
        );
        for (side, crop) in [(240, 0.882_352_9), (260, 0.890_411)] {
            let p = Preprocess::preset(&format!("tf-lite-{side}"), "input").unwrap();
            assert_eq!((p.height, p.width), (side, side));
            assert!((p.crop_fraction - crop).abs() < 1e-6, "{}", p.crop_fraction);
            let json = serde_json::to_string(&p).unwrap();
            assert!(
                json.contains(&format!("\"crop_fraction\":{}", p.crop_fraction)),
                "{json}"
            );
            let same_but_size = Preprocess {
                height: 224,
                width: 224,
                crop_fraction: 0.875,
                ..p
            };
            assert_eq!(same_but_size, Preprocess::tf_lite("input"));
        }
    }

    /// The JPEG decoding version is written beside every recipe and never
    /// read back: a recipe from an older build reads, and is written (and so
    /// fingerprinted) as this build's.
    #[test]
    fn jpeg_decoder_version_is_written_for_every_recipe() {
        let reduced = Preprocess::tf_lite("input");
        let exact = Preprocess {
            jpeg_decode: JpegDecode::Exact,
            ..reduced.clone()
        };
        let version = format!("\"jpeg_decoder\":{JPEG_DECODER_VERSION}");
        for recipe in [reduced, exact] {
            let json = serde_json::to_string(&recipe).unwrap();
            assert!(json.contains(&version), "{json}");
            assert_eq!(
                json.contains("jpeg_decode\""),
                recipe.jpeg_decode == JpegDecode::Reduced,
                "{json}"
            );
            let old = json.replace(&format!(",{version}"), "");
            assert_eq!(serde_json::from_str::<Preprocess>(&old).unwrap(), recipe);
            let v2 = json.replace(&version, "\"jpeg_decoder\":2");
            let back: Preprocess = serde_json::from_str(&v2).unwrap();
            assert_eq!(serde_json::to_string(&back).unwrap(), json);
        }
    }

    /// The resampler version is written (so it is part of the fingerprint) and
    /// always this build's when read back, with or without the field.
    #[test]
    fn resampler_version_is_written_and_always_current() {
        let p = Preprocess::imagenet("input");
        let json = serde_json::to_string(&p).unwrap();
        assert!(
            json.contains(&format!("\"resampler\":{RESAMPLER_VERSION}")),
            "{json}"
        );
        let old = json.replace(&format!(",\"resampler\":{RESAMPLER_VERSION}"), "");
        assert!(!old.contains("resampler"), "{old}");
        let back: Preprocess = serde_json::from_str(&old).unwrap();
        assert_eq!(back, p);
        let other = json.replace(
            &format!("\"resampler\":{RESAMPLER_VERSION}"),
            "\"resampler\":1",
        );
        let back: Preprocess = serde_json::from_str(&other).unwrap();
        assert_eq!(back.resampler, RESAMPLER_VERSION);
    }
}
