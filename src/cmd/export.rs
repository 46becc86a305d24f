//! `headstart export`: a saved head as one ONNX classifier, fused with its
//! backbone (optionally with the preprocessing in the graph) or alone.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use headstart_extract::ResolvedBackbone;
use headstart_fit::{Head, HeadWeights, Normalize};
use headstart_models::preprocess::{ChannelOrder, Layout, Preprocess};
use headstart_onnx::export::{self, Dense, HeadSpec, InGraphPreprocess, Normalization};

use super::Ctx;
use crate::cli::{ExportArgs, ModelArgs};

/// Metadata key: what the model's input is (`features`, `tensor` or `image-uint8`).
pub const INPUT_KIND_KEY: &str = "headstart.input";
/// Metadata key of the crop/resize still to do outside a `--with-preprocessing` model.
pub const IMAGE_PREPROCESS_KEY: &str = "headstart.image_preprocess";

pub fn run(ctx: &Ctx, a: ExportArgs) -> Result<ExitCode> {
    let head = Head::load(&a.head)
        .with_context(|| format!("loading the head from {}", a.head.display()))?;
    let mut spec = head_spec(&head);
    let (model, what) = if a.head_only {
        if a.model.model.is_some() {
            ctx.log("--head-only exports no backbone; --model is not used");
        }
        spec.metadata
            .push((INPUT_KIND_KEY.into(), "features".into()));
        (export::head_model(&spec)?, "the head alone".to_string())
    } else {
        let rb = resolve_for_head(ctx, &head, &a.model)?;
        let backbone = headstart_onnx::decode_model(&rb.onnx, Path::new(&rb.name))?;
        let pre = &rb.preprocess;
        let in_graph = if a.with_preprocessing {
            spec.metadata
                .push((INPUT_KIND_KEY.into(), "image-uint8".into()));
            spec.metadata.push((
                IMAGE_PREPROCESS_KEY.into(),
                serde_json::json!({
                    "height": pre.height,
                    "width": pre.width,
                    "crop_fraction": pre.crop_fraction,
                    "filter": pre.filter,
                    "layout": "nhwc",
                    "channel_order": "rgb",
                    "dtype": "uint8",
                })
                .to_string(),
            ));
            Some(in_graph_preprocess(pre))
        } else {
            spec.metadata.push((INPUT_KIND_KEY.into(), "tensor".into()));
            spec.metadata
                .push((export::PREPROCESS_KEY.into(), serde_json::to_string(pre)?));
            None
        };
        let model = export::fuse(backbone, &rb.feature_tensor, &spec, in_graph.as_ref())
            .with_context(|| format!("fusing the head with {}", rb.name))?;
        let how = if a.with_preprocessing {
            "preprocessing in the graph"
        } else {
            "float input tensor"
        };
        (model, format!("fused with {} ({how})", rb.name))
    };
    let bytes = headstart_onnx::encode_model(&model)?;
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    headstart_provision::write_atomic(&a.out, &bytes)
        .with_context(|| format!("writing {}", a.out.display()))?;

    let s = headstart_onnx::inspect::summarize(&model, bytes.len() as u64);
    println!(
        "wrote {} ({:.1} MB, opset {}): {what}",
        a.out.display(),
        bytes.len() as f64 / 1e6,
        export::default_opset(&model).unwrap_or(0)
    );
    let dims = |d: &Option<Vec<headstart_onnx::inspect::DimInfo>>| match d {
        Some(d) => format!(
            "[{}]",
            d.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => "[?]".into(),
    };
    for i in &s.inputs {
        println!("  input   {} {} {}", i.name, i.elem_type, dims(&i.dims));
    }
    for o in &s.outputs {
        println!("  output  {} {} {}", o.name, o.elem_type, dims(&o.dims));
    }
    println!(
        "  classes {} (metadata `{}`)",
        head.class_names().join(", "),
        export::CLASS_NAMES_KEY
    );
    if a.with_preprocessing {
        let p = head_preprocess_note(&model);
        println!("  feed    {p}");
    }
    Ok(ExitCode::SUCCESS)
}

/// What a caller must still do before feeding a `--with-preprocessing` model.
fn head_preprocess_note(model: &headstart_onnx::proto::ModelProto) -> String {
    let v = model
        .metadata_props
        .iter()
        .find(|e| e.key == IMAGE_PREPROCESS_KEY)
        .and_then(|e| serde_json::from_str::<serde_json::Value>(&e.value).ok())
        .unwrap_or_default();
    format!(
        "RGB uint8 images: centre square crop of {} x the shorter side, {} resize to {}x{} (metadata `{IMAGE_PREPROCESS_KEY}`)",
        v["crop_fraction"],
        v["filter"].as_str().unwrap_or("?"),
        v["height"],
        v["width"]
    )
}

/// The export form of a head.
pub fn head_spec(head: &Head) -> HeadSpec {
    let (d, k) = (head.dim(), head.n_classes());
    let layers = match head.weights() {
        HeadWeights::Linear { w, b } => vec![Dense {
            inputs: d,
            outputs: k,
            weights: w.to_vec(),
            bias: b.to_vec(),
        }],
        HeadWeights::Mlp {
            hidden,
            w1,
            b1,
            w2,
            b2,
        } => vec![
            Dense {
                inputs: d,
                outputs: hidden,
                weights: w1.to_vec(),
                bias: b1.to_vec(),
            },
            Dense {
                inputs: hidden,
                outputs: k,
                weights: w2.to_vec(),
                bias: b2.to_vec(),
            },
        ],
    };
    let n = head.normalizer();
    let normalization = match (n.kind(), n.mean(), n.std()) {
        (Normalize::Standard, Some(mean), Some(std)) => Normalization::Standard {
            mean: mean.to_vec(),
            std: std.to_vec(),
        },
        (Normalize::L2, ..) => Normalization::L2,
        _ => Normalization::None,
    };
    let meta = head.meta();
    HeadSpec {
        normalization,
        layers,
        class_names: head.class_names().to_vec(),
        model_name: meta.model_name.clone(),
        model_fingerprint: meta.model_fingerprint.clone(),
        metadata: vec![
            ("headstart.head".into(), meta.head.to_string()),
            (
                "headstart.normalization".into(),
                meta.normalization.to_string(),
            ),
            ("headstart.feature_dim".into(), d.to_string()),
        ],
    }
}

/// In-graph form of a backbone's preprocessing (resize and crop excluded).
pub fn in_graph_preprocess(p: &Preprocess) -> InGraphPreprocess {
    InGraphPreprocess {
        input_name: p.input_name.clone(),
        height: p.height,
        width: p.width,
        mean: p.mean,
        std: p.std,
        bgr: p.channel_order == ChannelOrder::Bgr,
        nchw: p.layout == Layout::Nchw,
    }
}

/// Resolves the backbone a head was trained on: `--model` if given, else the
/// built-in model the head records; refuses a backbone whose fingerprint (model
/// bytes, feature tensor, preprocessing) or feature size differs from the head's.
pub fn resolve_for_head(ctx: &Ctx, head: &Head, m: &ModelArgs) -> Result<ResolvedBackbone> {
    let meta = head.meta();
    let trained_on = meta.model_name.as_deref();
    let spec = match (&m.model, trained_on) {
        (Some(s), _) => s.clone(),
        (None, Some(name)) if headstart_models::zoo::BUILTIN.contains(&name) => name.to_string(),
        (None, Some(name)) => bail!(
            "the head was trained on features of `{name}`, which is not a built-in model; pass --model PATH.onnx with the --features and preprocessing flags used for `headstart extract`"
        ),
        (None, None) => bail!(
            "the head does not record the model it was trained on; pass --model NAME|PATH with the --features and preprocessing flags used for `headstart extract`"
        ),
    };
    let rb = super::extract::resolve_model(ctx, m, &spec)?;
    if let Some(fp) = meta.model_fingerprint.as_deref()
        && fp != rb.fingerprint
    {
        bail!(
            "the head was trained on features of `{}` (model fingerprint {fp}), but the backbone `{}` resolved from `{spec}` has fingerprint {}; pass the --model, --features and preprocessing flags used for `headstart extract`",
            trained_on.unwrap_or("an unnamed model"),
            rb.name,
            rb.fingerprint
        );
    }
    if let Some(d) = rb.feature_dim
        && d != head.dim()
    {
        bail!(
            "the backbone `{}` gives {d}-d features from `{}`, but the head takes {}-d features",
            rb.name,
            rb.feature_tensor,
            head.dim()
        );
    }
    Ok(rb)
}
