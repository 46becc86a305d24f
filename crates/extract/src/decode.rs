//! Reading image files into RGB8 with EXIF orientation applied, within limits
//! that turn decompression bombs into per-file errors.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};

/// Largest accepted width or height, in pixels.
pub const MAX_SIDE: u32 = 16_384;
/// Largest allocation the decoder may make for one image, in bytes.
pub const MAX_ALLOC: u64 = 512 << 20;

/// Decodes image bytes (any supported format, detected from content) into RGB8.
///
/// Orientation from EXIF is applied; grey, grey+alpha, RGBA, 16-bit and CMYK are
/// converted to RGB8 (alpha dropped); animated images give their first frame.
pub fn decode_rgb8(bytes: &[u8]) -> Result<RgbImage, String> {
    if bytes.is_empty() {
        return Err("empty file".into());
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    if reader.format().is_none() {
        return Err("not a recognised image format".into());
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| e.to_string())?;
    let orientation = decoder.orientation().map_err(|e| e.to_string())?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(format!("image has no pixels ({w}x{h})"));
    }
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?;
    img.apply_orientation(orientation);
    Ok(match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(img: DynamicImage) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
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
    fn garbage_and_empty_are_errors() {
        assert!(decode_rgb8(b"").unwrap_err().contains("empty"));
        assert!(decode_rgb8(b"hello, I am text").is_err());
    }
}
