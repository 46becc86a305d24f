//! An int8 copy of a float backbone, calibrated on the user's own images:
//! the images go through the same decode and preprocessing as extraction, the
//! float model reports its activations ([`headstart_runtime::Probe`]), and
//! `headstart_onnx::quantize` writes the QDQ graph.

use std::time::Instant;

use headstart_models::ResolvedBackbone;
use headstart_onnx::quantize::{self, QuantizeOptions, RangeObserver};
use headstart_runtime::{Probe, Runtime};

use crate::ExtractError;
use crate::input::Item;
use crate::tensor::Preprocessor;

/// Default number of calibration images.
pub const DEFAULT_SAMPLES: usize = 128;
/// Default percentile of the activation ranges (outliers beyond saturate).
pub const DEFAULT_PERCENTILE: f64 = 99.99;

/// How the model was calibrated.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Calibration {
    /// Images that went through the model.
    pub images: usize,
    /// Images that could not be read or decoded (skipped).
    pub skipped: usize,
    /// Activation tensors quantised.
    pub tensors: usize,
    /// Percentile of the ranges.
    pub percentile: f64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// `samples` items spread evenly over `items` (in their order), all of them
/// when there are fewer.
pub fn spread(items: &[Item], samples: usize) -> Vec<Item> {
    if items.len() <= samples {
        return items.to_vec();
    }
    (0..samples)
        .map(|i| items[i * items.len() / samples].clone())
        .collect()
}

/// Calibrates `model` on `images` and returns the int8 QDQ model (encoded, with
/// its preprocessing in the metadata so the file describes itself) and how it
/// was calibrated.
pub fn quantize_backbone(
    rt: &Runtime,
    model: &ResolvedBackbone,
    images: &[Item],
    percentile: f64,
    threads: usize,
    opts: &QuantizeOptions,
) -> Result<(Vec<u8>, Calibration), ExtractError> {
    let t0 = Instant::now();
    let onnx_err = |e: headstart_onnx::OnnxError| ExtractError::Model(e.into());
    let float = headstart_onnx::decode_model(&model.onnx, model.name.as_ref()).map_err(onnx_err)?;
    let tensors = quantize::calibration_tensors(&float, opts).map_err(onnx_err)?;
    let probe_model = quantize::with_outputs(&float, &tensors);
    let bytes = headstart_onnx::encode_model(&probe_model).map_err(onnx_err)?;
    let mut probe = Probe::open(
        rt,
        &model.name,
        &bytes,
        model.preprocess.clone(),
        tensors.clone(),
        threads,
    )?;
    let batch = probe.fixed_batch().unwrap_or(16);
    let mut pre = Preprocessor::new(model.preprocess.clone());
    let len = model.preprocess.tensor_len();
    let mut observer = RangeObserver::new(percentile);
    let (mut used, mut skipped) = (0usize, 0usize);
    let mut buf = Vec::new();
    let mut tensor = Vec::with_capacity(batch * len);
    let mut n = 0usize;
    let mut flush = |tensor: &mut Vec<f32>, n: &mut usize| -> Result<(), ExtractError> {
        if *n == 0 {
            return Ok(());
        }
        // A fixed-batch model takes exactly its batch: pad with copies of the first row.
        let rows = probe.fixed_batch().unwrap_or(*n);
        while tensor.len() < rows * len {
            let first = tensor[..len].to_vec();
            tensor.extend_from_slice(&first);
        }
        probe.run(tensor, rows, &mut |name, values| {
            observer.observe(name, values)
        })?;
        tensor.clear();
        *n = 0;
        Ok(())
    };
    for unit in crate::container::units(images) {
        for bytes in crate::container::load(images, &unit, headstart_files::DEFAULT_MAX_FILE_SIZE) {
            let Ok(bytes) = bytes else {
                skipped += 1;
                continue;
            };
            let Ok(img) = crate::isolate::decode(&bytes, &mut buf, &model.preprocess) else {
                skipped += 1;
                continue;
            };
            let at = tensor.len();
            tensor.resize(at + len, 0.0);
            let (img, slot) = (&img, &mut tensor[at..]);
            if !matches!(
                crate::isolate::guarded(|| pre.tensor_into(img, slot)),
                Ok(Ok(_))
            ) {
                tensor.truncate(at);
                skipped += 1;
                continue;
            }
            used += 1;
            n += 1;
            if n == batch {
                flush(&mut tensor, &mut n)?;
            }
        }
    }
    flush(&mut tensor, &mut n)?;
    if used == 0 {
        return Err(ExtractError::NoCalibrationImages {
            tried: images.len(),
        });
    }
    let mut q = quantize::quantize(&float, &observer.ranges(), opts).map_err(onnx_err)?;
    // The preprocessing travels in the file, as for any user model.
    q.metadata_props
        .retain(|e| e.key != headstart_models::resolve::PREPROCESS_METADATA_KEY);
    let mut entry = headstart_onnx::proto::StringStringEntryProto::new();
    entry.key = headstart_models::resolve::PREPROCESS_METADATA_KEY.to_string();
    entry.value = serde_json::to_string(&model.preprocess).unwrap_or_default();
    q.metadata_props.push(entry);
    let out = headstart_onnx::encode_model(&q).map_err(onnx_err)?;
    Ok((
        out,
        Calibration {
            images: used,
            skipped,
            tensors: tensors.len(),
            percentile,
            seconds: t0.elapsed().as_secs_f64(),
        },
    ))
}
