//! The no-transfer baseline: raw grey pixels as features.

use std::path::Path;

use headstart_cache::FeatureTable;

use crate::ExtractError;
use crate::decode::decode_rgb8;

/// The `original` rows of `table` (same paths, labels, splits and content
/// hashes) with the image files under `root` as `side` x `side` grey pixels
/// in `0..=1`: what a head learns without a backbone.
pub fn raw_pixel_table(
    root: &Path,
    table: &FeatureTable,
    side: u32,
) -> Result<FeatureTable, ExtractError> {
    let mut raw = FeatureTable {
        dim: (side * side) as usize,
        ..FeatureTable::default()
    };
    for i in 0..table.len() {
        if !headstart_cache::is_original(&table.views[i]) {
            continue;
        }
        let path = root.join(&table.paths[i]);
        let input_err = |message: String| ExtractError::Input {
            path: path.clone(),
            message,
        };
        let bytes = std::fs::read(&path).map_err(|e| input_err(e.to_string()))?;
        let img = decode_rgb8(&bytes).map_err(|e| input_err(e.to_string()))?;
        let grey = image::DynamicImage::ImageRgb8(img)
            .resize_exact(side, side, image::imageops::FilterType::Triangle)
            .to_luma8();
        raw.features
            .extend(grey.as_raw().iter().map(|&v| f32::from(v) / 255.0));
        raw.paths.push(table.paths[i].clone());
        raw.labels.push(table.labels[i].clone());
        raw.splits.push(table.splits[i].clone());
        raw.content_hashes.push(table.content_hashes[i].clone());
        raw.views.push(table.views[i].clone());
    }
    Ok(raw)
}
