//! `models list`: built-in backbones and the models installed in the cache,
//! with the CPU speed `extract` recorded for each.

use std::path::PathBuf;

use headstart_models::{efficientnet, zoo};
use serde::Serialize;

use crate::{Env, Error};

/// One line of `models list`: a built-in model (installed or not) or another
/// model in the cache.
#[derive(Debug, Serialize)]
pub struct ModelRow {
    /// The model's name (built in, or installed with `models quantize`).
    pub name: String,
    /// Whether it is built in.
    pub builtin: bool,
    /// Input side in pixels, `[height, width]`.
    pub input: Option<[u32; 2]>,
    /// Feature dimension.
    pub feature_dim: Option<usize>,
    /// Parameters in the graph.
    pub parameters: Option<u64>,
    /// ImageNet-1k top-1 (%) as published by the model's source.
    pub imagenet_top1: Option<f32>,
    /// The last `extract` run's speed on this machine's CPU, when one was recorded.
    pub cpu_images_per_second: Option<f64>,
    /// The `.onnx` file, when installed.
    pub installed: Option<PathBuf>,
    /// Where it comes from.
    pub source: String,
}

/// The built-in backbones (installed or not) and the other models in the cache.
pub fn models_list(env: &Env) -> Vec<ModelRow> {
    let speed = |name: &str| zoo::speed(&env.home, name).map(|s| s.images_per_second);
    let mut rows: Vec<ModelRow> = zoo::BUILTINS
        .iter()
        .map(|b| {
            let side = b.variant.resolution;
            ModelRow {
                name: b.name().into(),
                builtin: true,
                input: Some([side, side]),
                feature_dim: Some(efficientnet::FEATURE_DIM),
                parameters: Some(b.variant.parameters() as u64),
                imagenet_top1: Some(b.imagenet_top1),
                cpu_images_per_second: speed(b.name()),
                installed: zoo::installed(&env.home, b.name()).map(|m| m.onnx),
                source: format!("PyPI {}", b.wheel.requirement()),
            }
        })
        .collect();
    for name in zoo::local_models(&env.home) {
        let Some(m) = zoo::installed(&env.home, &name) else {
            continue;
        };
        let parameters = headstart_onnx::load_model(&m.onnx)
            .ok()
            .map(|p| headstart_onnx::inspect::summarize(&p, 0).parameter_count);
        let pre = &m.card.preprocess;
        rows.push(ModelRow {
            input: Some([pre.height, pre.width]),
            feature_dim: Some(m.card.feature_dim),
            parameters,
            imagenet_top1: None,
            cpu_images_per_second: speed(&name),
            source: m.card.provenance.source.clone(),
            installed: Some(m.onnx),
            builtin: false,
            name,
        });
    }
    rows
}

/// The rows as an aligned table; `-` where a figure is unknown.
pub fn models_table(rows: &[ModelRow]) -> String {
    let dash = || "-".to_string();
    let mut lines = vec![
        [
            "MODEL",
            "INPUT",
            "DIM",
            "PARAMS",
            "TOP-1",
            "CPU IMG/S",
            "INSTALLED",
        ]
        .map(String::from),
    ];
    for r in rows {
        let installed = match &r.installed {
            Some(path) => path.display().to_string(),
            None => format!("no (headstart models fetch {})", r.name),
        };
        lines.push([
            r.name.clone(),
            r.input.map_or_else(dash, |[h, w]| format!("{h}x{w}")),
            r.feature_dim.map_or_else(dash, |d| d.to_string()),
            r.parameters
                .map_or_else(dash, |p| format!("{:.2}M", p as f64 / 1e6)),
            r.imagenet_top1.map_or_else(dash, |t| format!("{t:.1}%")),
            r.cpu_images_per_second
                .map_or_else(dash, |s| format!("{s:.1}")),
            installed,
        ]);
    }
    let mut widths = [0; 7];
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in &lines {
        let mut text = String::new();
        for (i, (cell, w)) in line.iter().zip(widths).enumerate() {
            // Names and paths to the left, figures to the right.
            match i {
                0 | 6 => text.push_str(&format!("{cell:<w$}")),
                _ => text.push_str(&format!("{cell:>w$}")),
            }
            text.push_str("  ");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out.push_str(
        "TOP-1      ImageNet-1k accuracy published by the source (TensorFlow EfficientNet-Lite)\n\
         CPU IMG/S  extract speed recorded on this machine (CPU runs of 256+ images), - if none\n",
    );
    out
}

/// `models inspect`: a model's inputs, outputs, opset, size and the tensor
/// `--features auto` would use (or why there is none, with the fix), for a
/// built-in name (installed on demand) or an .onnx file.
pub fn inspect(
    env: &Env,
    model: &str,
) -> Result<(PathBuf, headstart_onnx::inspect::ModelSummary), Error> {
    let path = if zoo::BUILTIN.contains(&model) {
        zoo::ensure(&env.home, model, &|s| env.log(s))?.0.onnx
    } else if std::path::Path::new(model).is_file() {
        PathBuf::from(model)
    } else {
        return Err(headstart_models::ModelError::UnknownModel {
            name: model.to_string(),
            known: zoo::BUILTIN.join(", "),
        }
        .into());
    };
    let size = std::fs::metadata(&path).map_err(Error::io(&path))?.len();
    let proto = headstart_onnx::load_model(&path)?;
    let mut summary = headstart_onnx::inspect::summarize(&proto, size);
    // The library says why there is no feature tensor; the fix names the option.
    if let (Err(why), Err(e)) = (
        &mut summary.features,
        headstart_onnx::features::find_penultimate(&proto),
    ) && let Some(fix) = Error::from(e).fix()
    {
        *why = format!("{why}; {fix}");
    }
    Ok((path, summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_aligned_with_dashes_for_unknown_figures() {
        let row = |name: &str, speed, installed: Option<&str>| ModelRow {
            name: name.into(),
            builtin: true,
            input: Some([240, 240]),
            feature_dim: Some(1280),
            parameters: Some(5_389_848),
            imagenet_top1: Some(76.7),
            cpu_images_per_second: speed,
            installed: installed.map(PathBuf::from),
            source: String::new(),
        };
        let rows = [
            row("efficientnet-lite1", Some(151.25), Some("/h/m.onnx")),
            row("m", None, None),
        ];
        let text = models_table(&rows);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(
            lines[1],
            "efficientnet-lite1  240x240  1280   5.39M  76.7%      151.2  /h/m.onnx"
        );
        assert_eq!(
            lines[2],
            "m                   240x240  1280   5.39M  76.7%          -  no (headstart models fetch m)"
        );
        let col = |l: &str| {
            l.find("INSTALLED")
                .or_else(|| l.find('/'))
                .or_else(|| l.find("no ("))
        };
        assert_eq!(col(lines[0]), col(lines[1]));
        assert_eq!(col(lines[1]), col(lines[2]));
    }
}
