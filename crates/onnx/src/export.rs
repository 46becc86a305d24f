//! Exporting a classifier head as ONNX, alone or fused with its backbone.
//!
//! [`HeadSpec`] describes a head without depending on how it was trained:
//! a feature normalisation, dense layers (ReLU between them) and class names.
//! [`head_model`] turns it into a model `features [N, D] -> probabilities
//! [N, K], label [N]`; [`fuse`] appends it to a backbone graph at its feature
//! tensor, optionally behind in-graph image preprocessing
//! (`image` uint8 `[N, H, W, 3]` -> cast, normalise, channel order, layout),
//! and prunes everything that no longer feeds the two outputs.
//!
//! Every tensor and node the builders add is named under one prefix
//! (`headstart/` unless the backbone already uses it), except the public
//! names [`FEATURES_INPUT`], [`IMAGE_INPUT`], [`PROBABILITIES`] and [`LABEL`];
//! backbone tensors that happen to carry a public name are renamed.
//! Only operators valid at the backbone's default-domain opset (7 or newer)
//! are used: Cast, Gather, Sub, Mul, Div, Max, Transpose, Flatten, ReduceL2,
//! MatMul, Add, Relu, Softmax and ArgMax.

use std::collections::{HashMap, HashSet};

use protobuf::MessageField;

use crate::OnnxError;
use crate::build::{self, Attr, Dim, node, tensor_f32, tensor_i64, value_info};
use crate::proto::{
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, ValueInfoProto,
    tensor_proto::DataType, tensor_shape_proto,
};

/// Metadata key of the class names, a JSON list in label order.
pub const CLASS_NAMES_KEY: &str = "headstart.class_names";
/// Metadata key of the backbone's name the head was trained on.
pub const MODEL_NAME_KEY: &str = "headstart.model_name";
/// Metadata key of the backbone's fingerprint the head was trained on.
pub const MODEL_FINGERPRINT_KEY: &str = "headstart.model_fingerprint";
/// Metadata key a backbone may carry its preprocessing under; dropped by
/// [`fuse`] when the preprocessing moves into the graph.
pub const PREPROCESS_KEY: &str = "headstart.preprocess";
/// Metadata key of what the exported model's input is: `features`, `tensor` or
/// `image-uint8`.
pub const INPUT_KIND_KEY: &str = "headstart.input";
/// Metadata key of the crop and resize still to do outside a model whose input
/// is `image-uint8` (JSON).
pub const IMAGE_PREPROCESS_KEY: &str = "headstart.image_preprocess";
/// Metadata key of the head kind (`softmax`, `mlp`, ...).
pub const HEAD_KEY: &str = "headstart.head";
/// Metadata key of the head's feature normalisation.
pub const NORMALIZATION_KEY: &str = "headstart.normalization";
/// Metadata key of the feature dimension the head takes.
pub const FEATURE_DIM_KEY: &str = "headstart.feature_dim";
/// Input of a head-only model: float `[N, D]`.
pub const FEATURES_INPUT: &str = "features";
/// Input of a fused model with in-graph preprocessing: uint8 `[N, H, W, 3]`, RGB.
pub const IMAGE_INPUT: &str = "image";
/// Output: float `[N, K]` class probabilities.
pub const PROBABILITIES: &str = "probabilities";
/// Output: int64 `[N]` index of the most probable class.
pub const LABEL: &str = "label";
/// Preferred prefix of every added tensor and node name.
pub const PREFIX: &str = "headstart/";

/// Lowest default-domain opset [`fuse`] accepts (numpy-style broadcasting).
pub const MIN_OPSET: i64 = 7;

/// How features are normalised before the first layer.
#[derive(Debug, Clone, PartialEq)]
pub enum Normalization {
    /// Features go in as they are.
    None,
    /// `(x - mean) * (1 / std)` per feature.
    Standard {
        /// `[D]`.
        mean: Vec<f32>,
        /// `[D]`, finite and positive.
        std: Vec<f32>,
    },
    /// Each row divided by its L2 norm (all-zero rows stay zero).
    L2,
}

/// One fully connected layer: `y = x . weights + bias`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
    /// `[inputs, outputs]`, row-major.
    pub weights: Vec<f32>,
    /// `[outputs]`.
    pub bias: Vec<f32>,
}

/// A classifier head: normalisation, dense layers with ReLU between them,
/// softmax over the last layer's outputs, one class name per output.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadSpec {
    /// Feature normalisation.
    pub normalization: Normalization,
    /// Layers in order; ReLU between consecutive layers, none after the last.
    pub layers: Vec<Dense>,
    /// Class names in output order.
    pub class_names: Vec<String>,
    /// Name of the backbone the head was trained on ([`MODEL_NAME_KEY`]).
    pub model_name: Option<String>,
    /// Fingerprint of that backbone ([`MODEL_FINGERPRINT_KEY`]).
    pub model_fingerprint: Option<String>,
    /// Further metadata (`key`, `value`) written into the model.
    pub metadata: Vec<(String, String)>,
}

impl HeadSpec {
    /// Feature dimension D (inputs of the first layer).
    pub fn feature_dim(&self) -> usize {
        self.layers.first().map_or(0, |l| l.inputs)
    }

    /// Number of classes K.
    pub fn n_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Checks that shapes chain and values are usable.
    pub fn validate(&self) -> Result<(), OnnxError> {
        let bad = |m: String| Err(OnnxError::Graph(format!("invalid head: {m}")));
        if self.layers.is_empty() {
            return bad("no layers".into());
        }
        for (i, l) in self.layers.iter().enumerate() {
            if l.inputs == 0 || l.outputs == 0 {
                return bad(format!("layer {i} is {} x {}", l.inputs, l.outputs));
            }
            if l.weights.len() != l.inputs * l.outputs || l.bias.len() != l.outputs {
                return bad(format!(
                    "layer {i} is {} x {} but has {} weights and {} biases",
                    l.inputs,
                    l.outputs,
                    l.weights.len(),
                    l.bias.len()
                ));
            }
            if i > 0 && self.layers[i - 1].outputs != l.inputs {
                return bad(format!(
                    "layer {} gives {} values, layer {i} takes {}",
                    i - 1,
                    self.layers[i - 1].outputs,
                    l.inputs
                ));
            }
            if l.weights.iter().chain(&l.bias).any(|v| !v.is_finite()) {
                return bad(format!("layer {i} has non-finite values"));
            }
        }
        let k = self.layers.last().map_or(0, |l| l.outputs);
        if k != self.class_names.len() {
            return bad(format!(
                "the last layer gives {k} values for {} class names",
                self.class_names.len()
            ));
        }
        if let Normalization::Standard { mean, std } = &self.normalization {
            let d = self.feature_dim();
            if mean.len() != d || std.len() != d {
                return bad(format!(
                    "normalisation has {} means and {} stds for {d} features",
                    mean.len(),
                    std.len()
                ));
            }
            if mean.iter().any(|m| !m.is_finite())
                || std.iter().any(|s| !(s.is_finite() && *s > 0.0))
            {
                return bad("normalisation mean must be finite and std positive".into());
            }
        }
        Ok(())
    }

    /// The metadata entries of an exported model.
    fn metadata_entries(&self) -> Vec<(String, String)> {
        let mut out = vec![(CLASS_NAMES_KEY.to_string(), json_strings(&self.class_names))];
        if let Some(n) = &self.model_name {
            out.push((MODEL_NAME_KEY.to_string(), n.clone()));
        }
        if let Some(f) = &self.model_fingerprint {
            out.push((MODEL_FINGERPRINT_KEY.to_string(), f.clone()));
        }
        for (k, v) in &self.metadata {
            out.retain(|(o, _)| o != k);
            out.push((k.clone(), v.clone()));
        }
        out
    }
}

/// Image preprocessing done inside a fused graph. Pixels arrive as uint8 RGB
/// `[N, height, width, 3]` (already cropped and resized);
/// `x = (pixel - mean[c]) * (1 / std[c])` on the 0..=255 scale, in the
/// model's channel order and layout, feeds the backbone input `input_name`.
#[derive(Debug, Clone, PartialEq)]
pub struct InGraphPreprocess {
    /// The backbone input the normalised tensor replaces.
    pub input_name: String,
    /// Image height in pixels.
    pub height: u32,
    /// Image width in pixels.
    pub width: u32,
    /// Per-channel mean, RGB order, 0..=255 scale.
    pub mean: [f32; 3],
    /// Per-channel std, RGB order, 0..=255 scale.
    pub std: [f32; 3],
    /// The backbone takes BGR channels.
    pub bgr: bool,
    /// The backbone takes NCHW (else NHWC).
    pub nchw: bool,
}

/// The model `features [N, D] -> probabilities [N, K], label [N]` at
/// headstart's IR version and opset 13, with the class names
/// ([`CLASS_NAMES_KEY`]), model name and fingerprint in its metadata.
pub fn head_model(spec: &HeadSpec) -> Result<ModelProto, OnnxError> {
    spec.validate()?;
    let mut g = GraphProto::new();
    g.name = "headstart_head".into();
    let batch = Dim::Named("N".into());
    g.input.push(value_info(
        FEATURES_INPUT,
        DataType::FLOAT,
        &[batch.clone(), Dim::Fixed(spec.feature_dim() as i64)],
    ));
    append_head(&mut g, FEATURES_INPUT, spec, build::OPSET, PREFIX, &batch);
    let meta = spec.metadata_entries();
    let meta: Vec<(&str, &str)> = meta.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut m = build::model(g, &meta);
    m.doc_string = format!(
        "headstart classifier head: {FEATURES_INPUT} float [N, {}] -> {PROBABILITIES} float [N, {}], {LABEL} int64 [N]",
        spec.feature_dim(),
        spec.n_classes()
    );
    Ok(m)
}

/// One graph: `backbone` up to `feature_tensor` (flattened to `[N, D]`), then
/// the head and softmax. The outputs are only [`PROBABILITIES`] and [`LABEL`];
/// nodes, initializers, inputs and value infos that no longer feed them are
/// removed. With `preprocessing`, the backbone input it names is replaced by
/// [`IMAGE_INPUT`] (uint8 NHWC) and in-graph normalisation.
///
/// The backbone's opset imports and IR version are kept; its metadata is kept
/// (minus [`PREPROCESS_KEY`] when preprocessing moves into the graph) and the
/// head's metadata added.
pub fn fuse(
    mut backbone: ModelProto,
    feature_tensor: &str,
    spec: &HeadSpec,
    preprocessing: Option<&InGraphPreprocess>,
) -> Result<ModelProto, OnnxError> {
    spec.validate()?;
    let opset = default_opset(&backbone);
    let opset = match opset {
        Some(v) if v < MIN_OPSET => {
            return Err(OnnxError::Graph(format!(
                "the backbone uses opset {v}; exporting needs opset {MIN_OPSET} or newer"
            )));
        }
        Some(v) => v,
        None => {
            let mut o = OperatorSetIdProto::new();
            o.version = build::OPSET;
            backbone.opset_import.push(o);
            build::OPSET
        }
    };
    let mut graph = backbone
        .graph
        .take()
        .ok_or_else(|| OnnxError::Graph("the backbone has no graph".into()))?;
    let initializers: HashSet<String> = graph.initializer.iter().map(|t| t.name.clone()).collect();
    let real_inputs: Vec<String> = graph
        .input
        .iter()
        .filter(|i| !initializers.contains(&i.name))
        .map(|i| i.name.clone())
        .collect();

    // The feature tensor must be computed (or be an input).
    let produced = graph
        .node
        .iter()
        .any(|n| n.output.iter().any(|o| o == feature_tensor));
    if feature_tensor.is_empty() || !(produced || real_inputs.iter().any(|i| i == feature_tensor)) {
        let lower = feature_tensor.to_lowercase();
        let similar: Vec<String> = graph
            .node
            .iter()
            .flat_map(|n| n.output.iter())
            .filter(|o| !lower.is_empty() && o.to_lowercase().contains(&lower))
            .take(8)
            .map(|o| format!("`{o}`"))
            .collect();
        return Err(OnnxError::UnknownTensor {
            name: feature_tensor.to_string(),
            reason: "no node of the backbone produces it".into(),
            suggestions: if similar.is_empty() {
                String::new()
            } else {
                format!("; similar names: {}", similar.join(", "))
            },
        });
    }
    if let Some(p) = preprocessing {
        if !real_inputs.contains(&p.input_name) {
            return Err(OnnxError::Graph(format!(
                "the backbone has no input `{}` to preprocess for (inputs: {})",
                p.input_name,
                real_inputs.join(", ")
            )));
        }
        if p.height == 0 || p.width == 0 || p.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(OnnxError::Graph(format!(
                "invalid in-graph preprocessing: {}x{} pixels, std {:?}",
                p.height, p.width, p.std
            )));
        }
    }

    // Names: one unused prefix; backbone tensors with a public name move aside.
    let mut used = HashSet::new();
    collect_names(&graph, &mut used);
    let prefix = (1..)
        .map(|i| {
            if i == 1 {
                PREFIX.to_string()
            } else {
                format!("headstart_{i}/")
            }
        })
        .find(|p| !used.iter().any(|n| n.starts_with(p.as_str())))
        .unwrap_or_else(|| PREFIX.to_string());
    let mut public = vec![PROBABILITIES, LABEL];
    if preprocessing.is_some() {
        public.push(IMAGE_INPUT);
    }
    let mut renames = HashMap::new();
    for name in public {
        if used.contains(name) {
            renames.insert(name.to_string(), format!("{prefix}backbone/{name}"));
        }
    }
    rename_tensors(&mut graph, &renames);
    let rename = |n: &str| renames.get(n).cloned().unwrap_or_else(|| n.to_string());
    let feature_tensor = rename(feature_tensor);
    let pre = preprocessing.map(|p| InGraphPreprocess {
        input_name: rename(&p.input_name),
        ..p.clone()
    });

    // The batch dimension of the outputs: the image input's first dimension.
    let image_input = pre
        .as_ref()
        .map(|p| p.input_name.clone())
        .or_else(|| real_inputs.first().map(|n| rename(n)));
    let batch = image_input
        .and_then(|name| graph.input.iter().find(|i| i.name == name))
        .and_then(|i| crate::features::declared_dims(i).and_then(|d| d.first().cloned()))
        .map(|d| match d.value {
            Some(tensor_shape_proto::dimension::Value::DimValue(v)) if v > 0 => Dim::Fixed(v),
            Some(tensor_shape_proto::dimension::Value::DimParam(p)) if !p.is_empty() => {
                Dim::Named(p)
            }
            _ => Dim::Named("N".into()),
        })
        .unwrap_or_else(|| Dim::Named("N".into()));

    // Outputs: only the head's. The feature tensor keeps its declared type as a value info.
    let old_outputs = std::mem::take(&mut graph.output);
    for o in old_outputs {
        if o.name == feature_tensor && !graph.value_info.iter().any(|v| v.name == o.name) {
            graph.value_info.push(o);
        }
    }
    let flat = format!("{prefix}features");
    graph.node.push(node(
        "Flatten",
        &format!("{prefix}flatten"),
        &[&feature_tensor],
        &[&flat],
        vec![("axis", Attr::Int(1))],
    ));
    append_head(&mut graph, &flat, spec, opset, &prefix, &batch);

    if let Some(p) = &pre {
        prepend_preprocessing(&mut graph, p, &prefix, &batch);
    }
    prune(&mut graph);

    let mut meta: Vec<(String, String)> = backbone
        .metadata_props
        .iter()
        .map(|e| (e.key.clone(), e.value.clone()))
        .filter(|(k, _)| !(pre.is_some() && k == PREPROCESS_KEY))
        .collect();
    for (k, v) in spec.metadata_entries() {
        meta.retain(|(o, _)| *o != k);
        meta.push((k, v));
    }
    backbone.metadata_props = meta
        .into_iter()
        .map(|(key, value)| {
            let mut e = StringStringEntryProto::new();
            e.key = key;
            e.value = value;
            e
        })
        .collect();
    backbone.producer_name = "headstart".into();
    backbone.producer_version = env!("CARGO_PKG_VERSION").into();
    backbone.doc_string = format!(
        "headstart classifier: {} -> {PROBABILITIES} float [N, {}], {LABEL} int64 [N]",
        match &pre {
            Some(p) => format!("{IMAGE_INPUT} uint8 [N, {}, {}, 3] RGB", p.height, p.width),
            None => "backbone input".to_string(),
        },
        spec.n_classes()
    );
    graph.name = "headstart_classifier".into();
    backbone.graph = MessageField::some(graph);
    Ok(backbone)
}

/// A JSON list of strings (this crate does not link a JSON library).
fn json_strings(items: &[String]) -> String {
    let mut out = String::from("[");
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push(']');
    out
}

/// The default-domain opset a model imports.
pub fn default_opset(model: &ModelProto) -> Option<i64> {
    model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
}

/// Appends normalisation, layers, softmax and argmax reading `input`
/// (`[N, D]` float); outputs [`PROBABILITIES`] and [`LABEL`].
fn append_head(
    g: &mut GraphProto,
    input: &str,
    spec: &HeadSpec,
    opset: i64,
    prefix: &str,
    batch: &Dim,
) {
    let p = |s: &str| format!("{prefix}{s}");
    let mut x = input.to_string();
    match &spec.normalization {
        Normalization::None => {}
        Normalization::Standard { mean, std } => {
            // The reciprocal in f32, as the Rust head computes it.
            let inv: Vec<f32> = std.iter().map(|s| 1.0 / s).collect();
            let d = mean.len() as i64;
            g.initializer
                .push(tensor_f32(&p("normalize/mean"), &[d], mean));
            g.initializer
                .push(tensor_f32(&p("normalize/inv_std"), &[d], &inv));
            g.node.push(node(
                "Sub",
                &p("normalize/sub"),
                &[&x, &p("normalize/mean")],
                &[&p("normalize/centered")],
                vec![],
            ));
            g.node.push(node(
                "Mul",
                &p("normalize/scale"),
                &[&p("normalize/centered"), &p("normalize/inv_std")],
                &[&p("normalize/out")],
                vec![],
            ));
            x = p("normalize/out");
        }
        Normalization::L2 => {
            let norm = p("normalize/l2_norm");
            if opset >= 18 {
                g.initializer
                    .push(tensor_i64(&p("normalize/axes"), &[1], &[1]));
                g.node.push(node(
                    "ReduceL2",
                    &p("normalize/reduce_l2"),
                    &[&x, &p("normalize/axes")],
                    &[&norm],
                    vec![("keepdims", Attr::Int(1))],
                ));
            } else {
                g.node.push(node(
                    "ReduceL2",
                    &p("normalize/reduce_l2"),
                    &[&x],
                    &[&norm],
                    vec![("axes", Attr::Ints(vec![1])), ("keepdims", Attr::Int(1))],
                ));
            }
            // All-zero rows divide by the smallest normal float and stay zero;
            // any non-zero norm of f32 values is larger than that.
            g.initializer.push(tensor_f32(
                &p("normalize/min_norm"),
                &[1],
                &[f32::MIN_POSITIVE],
            ));
            g.node.push(node(
                "Max",
                &p("normalize/clamp"),
                &[&norm, &p("normalize/min_norm")],
                &[&p("normalize/safe_norm")],
                vec![],
            ));
            g.node.push(node(
                "Div",
                &p("normalize/div"),
                &[&x, &p("normalize/safe_norm")],
                &[&p("normalize/out")],
                vec![],
            ));
            x = p("normalize/out");
        }
    }
    let last = spec.layers.len() - 1;
    for (i, l) in spec.layers.iter().enumerate() {
        let w = p(&format!("dense{i}/weight"));
        let b = p(&format!("dense{i}/bias"));
        g.initializer.push(tensor_f32(
            &w,
            &[l.inputs as i64, l.outputs as i64],
            &l.weights,
        ));
        g.initializer
            .push(tensor_f32(&b, &[l.outputs as i64], &l.bias));
        let mm = p(&format!("dense{i}/matmul"));
        g.node.push(node(
            "MatMul",
            &p(&format!("dense{i}/MatMul")),
            &[&x, &w],
            &[&mm],
            vec![],
        ));
        let out = if i == last {
            p("logits")
        } else {
            p(&format!("dense{i}/out"))
        };
        g.node.push(node(
            "Add",
            &p(&format!("dense{i}/Add")),
            &[&mm, &b],
            &[&out],
            vec![],
        ));
        x = out;
        if i != last {
            let r = p(&format!("dense{i}/relu"));
            g.node.push(node(
                "Relu",
                &p(&format!("dense{i}/Relu")),
                &[&x],
                &[&r],
                vec![],
            ));
            x = r;
        }
    }
    g.node.push(node(
        "Softmax",
        &p("softmax"),
        &[&x],
        &[PROBABILITIES],
        vec![("axis", Attr::Int(1))],
    ));
    g.node.push(node(
        "ArgMax",
        &p("argmax"),
        &[PROBABILITIES],
        &[LABEL],
        vec![("axis", Attr::Int(1)), ("keepdims", Attr::Int(0))],
    ));
    let k = spec.n_classes() as i64;
    g.output.push(value_info(
        PROBABILITIES,
        DataType::FLOAT,
        &[batch.clone(), Dim::Fixed(k)],
    ));
    g.output.push(value_info(
        LABEL,
        DataType::INT64,
        std::slice::from_ref(batch),
    ));
}

/// Replaces the backbone input `p.input_name` by [`IMAGE_INPUT`] and the nodes
/// that turn it into the normalised tensor, placed before every other node.
fn prepend_preprocessing(g: &mut GraphProto, p: &InGraphPreprocess, prefix: &str, batch: &Dim) {
    let n = |s: &str| format!("{prefix}image/{s}");
    let bgr = [2usize, 1, 0];
    let order = if p.bgr { bgr } else { [0, 1, 2] };
    // As `normalize_into`: subtract the mean, multiply by the f32 reciprocal of the std.
    let mean: Vec<f32> = order.iter().map(|&c| p.mean[c]).collect();
    let inv: Vec<f32> = order.iter().map(|&c| 1.0 / p.std[c]).collect();
    let mut nodes = vec![node(
        "Cast",
        &n("Cast"),
        &[IMAGE_INPUT],
        &[&n("float")],
        vec![("to", Attr::Int(DataType::FLOAT as i64))],
    )];
    let mut x = n("float");
    if p.bgr {
        g.initializer
            .push(tensor_i64(&n("bgr_order"), &[3], &[2, 1, 0]));
        nodes.push(node(
            "Gather",
            &n("ToBgr"),
            &[&x, &n("bgr_order")],
            &[&n("bgr")],
            vec![("axis", Attr::Int(3))],
        ));
        x = n("bgr");
    }
    g.initializer.push(tensor_f32(&n("mean"), &[3], &mean));
    g.initializer.push(tensor_f32(&n("inv_std"), &[3], &inv));
    nodes.push(node(
        "Sub",
        &n("SubMean"),
        &[&x, &n("mean")],
        &[&n("centered")],
        vec![],
    ));
    let scaled = if p.nchw {
        n("scaled")
    } else {
        p.input_name.clone()
    };
    nodes.push(node(
        "Mul",
        &n("Scale"),
        &[&n("centered"), &n("inv_std")],
        &[&scaled],
        vec![],
    ));
    if p.nchw {
        nodes.push(node(
            "Transpose",
            &n("ToNchw"),
            &[&scaled],
            &[&p.input_name],
            vec![("perm", Attr::Ints(vec![0, 3, 1, 2]))],
        ));
    }
    nodes.append(&mut g.node);
    g.node = nodes;
    g.input.retain(|i| i.name != p.input_name);
    g.input.insert(
        0,
        value_info(
            IMAGE_INPUT,
            DataType::UINT8,
            &[
                batch.clone(),
                Dim::Fixed(i64::from(p.height)),
                Dim::Fixed(i64::from(p.width)),
                Dim::Fixed(3),
            ],
        ),
    );
}

/// Removes every node that does not (transitively) feed a graph output, and
/// the initializers, graph inputs and value infos nothing uses any more.
/// Nodes must be in topological order, as ONNX requires.
pub fn prune(g: &mut GraphProto) {
    let mut needed: HashSet<String> = g.output.iter().map(|o| o.name.clone()).collect();
    let mut keep = vec![false; g.node.len()];
    for (i, n) in g.node.iter().enumerate().rev() {
        if n.output.iter().any(|o| !o.is_empty() && needed.contains(o)) {
            keep[i] = true;
            needed.extend(n.input.iter().filter(|s| !s.is_empty()).cloned());
            // Subgraphs may read outer tensors by name.
            for a in &n.attribute {
                for sub in a.g.as_ref().into_iter().chain(&a.graphs) {
                    let mut names = HashSet::new();
                    collect_names(sub, &mut names);
                    needed.extend(names);
                }
            }
        }
    }
    let mut k = keep.into_iter();
    g.node.retain(|_| k.next().unwrap_or(false));
    g.initializer.retain(|t| needed.contains(&t.name));
    g.sparse_initializer
        .retain(|t| t.values.as_ref().is_some_and(|v| needed.contains(&v.name)));
    g.input.retain(|i| needed.contains(&i.name));
    g.value_info.retain(|v| needed.contains(&v.name));
}

/// Every tensor and node name of `g` and its subgraphs.
fn collect_names(g: &GraphProto, out: &mut HashSet<String>) {
    let vis = |v: &[ValueInfoProto], out: &mut HashSet<String>| {
        out.extend(v.iter().map(|i| i.name.clone()));
    };
    vis(&g.input, out);
    vis(&g.output, out);
    vis(&g.value_info, out);
    out.extend(g.initializer.iter().map(|t| t.name.clone()));
    out.extend(
        g.sparse_initializer
            .iter()
            .filter_map(|t| t.values.as_ref().map(|v| v.name.clone())),
    );
    for n in &g.node {
        if !n.name.is_empty() {
            out.insert(n.name.clone());
        }
        out.extend(
            n.input
                .iter()
                .chain(&n.output)
                .filter(|s| !s.is_empty())
                .cloned(),
        );
        for a in &n.attribute {
            for sub in a.g.as_ref().into_iter().chain(&a.graphs) {
                collect_names(sub, out);
            }
        }
    }
}

/// Renames tensors everywhere in `g` and its subgraphs.
fn rename_tensors(g: &mut GraphProto, map: &HashMap<String, String>) {
    if map.is_empty() {
        return;
    }
    let fix = |s: &mut String| {
        if let Some(new) = map.get(s.as_str()) {
            *s = new.clone();
        }
    };
    for v in g
        .input
        .iter_mut()
        .chain(&mut g.output)
        .chain(&mut g.value_info)
    {
        fix(&mut v.name);
    }
    for t in &mut g.initializer {
        fix(&mut t.name);
    }
    for t in &mut g.sparse_initializer {
        if let Some(v) = t.values.as_mut() {
            fix(&mut v.name);
        }
    }
    for n in &mut g.node {
        rename_node(n, map);
    }
}

fn rename_node(n: &mut NodeProto, map: &HashMap<String, String>) {
    for s in n.input.iter_mut().chain(&mut n.output) {
        if let Some(new) = map.get(s.as_str()) {
            *s = new.clone();
        }
    }
    for a in &mut n.attribute {
        if let Some(sub) = a.g.as_mut() {
            rename_tensors(sub, map);
        }
        for sub in &mut a.graphs {
            rename_tensors(sub, map);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode_model, encode_model, load_model};
    use std::path::Path;

    fn test_model(file: &str) -> ModelProto {
        let path = format!(
            "{}/../../tests/data/models/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        load_model(Path::new(&path)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A deterministic pseudo-random sequence in [-1, 1).
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn dense(inputs: usize, outputs: usize, seed: u32) -> Dense {
        Dense {
            inputs,
            outputs,
            weights: values(inputs * outputs, seed),
            bias: values(outputs, seed + 1),
        }
    }

    fn spec(norm: Normalization, layers: Vec<Dense>) -> HeadSpec {
        let k = layers.last().map_or(0, |l| l.outputs);
        HeadSpec {
            normalization: norm,
            layers,
            class_names: (0..k).map(|i| format!("class \"{i}\"")).collect(),
            model_name: Some("toy".into()),
            model_fingerprint: Some("abc123".into()),
            metadata: vec![("headstart.head".into(), "softmax".into())],
        }
    }

    /// The head computed directly, as headstart-fit does.
    fn reference(spec: &HeadSpec, x: &[f32], n: usize) -> Vec<f32> {
        let d = spec.feature_dim();
        let mut out = Vec::new();
        for r in 0..n {
            let row = &x[r * d..(r + 1) * d];
            let mut h: Vec<f32> = match &spec.normalization {
                Normalization::None => row.to_vec(),
                Normalization::Standard { mean, std } => row
                    .iter()
                    .zip(mean.iter().zip(std))
                    .map(|(v, (m, s))| (v - m) * (1.0 / s))
                    .collect(),
                Normalization::L2 => {
                    let ss: f32 = row.iter().map(|v| v * v).sum();
                    let inv = if ss > 0.0 { 1.0 / ss.sqrt() } else { 1.0 };
                    row.iter().map(|v| v * inv).collect()
                }
            };
            for (i, l) in spec.layers.iter().enumerate() {
                let mut y = l.bias.clone();
                for (j, hv) in h.iter().enumerate() {
                    for (o, yv) in y.iter_mut().enumerate() {
                        *yv += hv * l.weights[j * l.outputs + o];
                    }
                }
                if i + 1 < spec.layers.len() {
                    y.iter_mut().for_each(|v| *v = v.max(0.0));
                }
                h = y;
            }
            let m = h.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = h.iter().map(|v| (v - m).exp()).collect();
            let s: f32 = e.iter().sum();
            out.extend(e.iter().map(|v| v / s));
        }
        out
    }

    /// A tiny interpreter for the 2-D float graphs [`head_model`] writes.
    fn evaluate(m: &ModelProto, x: &[f32], n: usize) -> (Vec<f32>, Vec<i64>) {
        type T = (Vec<f32>, Vec<usize>);
        let g = m.graph.as_ref().unwrap();
        let mut env: HashMap<String, T> = HashMap::new();
        let d = x.len() / n;
        env.insert(FEATURES_INPUT.into(), (x.to_vec(), vec![n, d]));
        for t in &g.initializer {
            assert_eq!(t.data_type, DataType::FLOAT as i32, "{}", t.name);
            let v: Vec<f32> = t
                .raw_data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            env.insert(
                t.name.clone(),
                (v, t.dims.iter().map(|&d| d as usize).collect()),
            );
        }
        let attr = |n: &NodeProto, k: &str| n.attribute.iter().find(|a| a.name == k).cloned();
        // Element-wise with the second operand broadcast over rows or columns.
        let bin = |a: &T, b: &T, f: &dyn Fn(f32, f32) -> f32| -> T {
            let (rows, cols) = (a.1[0], a.1[1]);
            let v = (0..rows * cols)
                .map(|i| {
                    let (r, c) = (i / cols, i % cols);
                    let bv = match b.0.len() {
                        1 => b.0[0],
                        l if l == cols && b.1.len() == 1 => b.0[c],
                        l if l == rows => b.0[r],
                        _ => b.0[i],
                    };
                    f(a.0[i], bv)
                })
                .collect();
            (v, a.1.clone())
        };
        let mut label = Vec::new();
        for nd in &g.node {
            let i = |k: usize| env[&nd.input[k]].clone();
            let out: T = match nd.op_type.as_str() {
                "Sub" => bin(&i(0), &i(1), &|a, b| a - b),
                "Mul" => bin(&i(0), &i(1), &|a, b| a * b),
                "Div" => bin(&i(0), &i(1), &|a, b| a / b),
                "Add" => bin(&i(0), &i(1), &|a, b| a + b),
                "Max" => {
                    let (a, b) = (i(0), i(1));
                    let v = a.0.iter().map(|x| x.max(b.0[0])).collect();
                    (v, a.1)
                }
                "Relu" => {
                    let a = i(0);
                    (a.0.iter().map(|v| v.max(0.0)).collect(), a.1)
                }
                "ReduceL2" => {
                    let a = i(0);
                    assert_eq!(attr(nd, "axes").unwrap().ints, vec![1]);
                    let v =
                        a.0.chunks(a.1[1])
                            .map(|r| r.iter().map(|v| v * v).sum::<f32>().sqrt())
                            .collect();
                    (v, vec![a.1[0], 1])
                }
                "MatMul" => {
                    let (a, b) = (i(0), i(1));
                    let (r, k, c) = (a.1[0], a.1[1], b.1[1]);
                    let mut v = vec![0f32; r * c];
                    for rr in 0..r {
                        for kk in 0..k {
                            for cc in 0..c {
                                v[rr * c + cc] += a.0[rr * k + kk] * b.0[kk * c + cc];
                            }
                        }
                    }
                    (v, vec![r, c])
                }
                "Softmax" => {
                    let a = i(0);
                    assert_eq!(attr(nd, "axis").unwrap().i, 1);
                    let mut v = Vec::new();
                    for r in a.0.chunks(a.1[1]) {
                        let m = r.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                        let e: Vec<f32> = r.iter().map(|x| (x - m).exp()).collect();
                        let s: f32 = e.iter().sum();
                        v.extend(e.iter().map(|x| x / s));
                    }
                    (v, a.1)
                }
                "ArgMax" => {
                    let a = i(0);
                    assert_eq!(attr(nd, "keepdims").unwrap().i, 0);
                    label =
                        a.0.chunks(a.1[1])
                            .map(|r| {
                                (0..r.len()).fold(0, |b, j| if r[j] > r[b] { j } else { b }) as i64
                            })
                            .collect();
                    continue;
                }
                op => panic!("unexpected op {op}"),
            };
            env.insert(nd.output[0].clone(), out);
        }
        (env.remove(PROBABILITIES).unwrap().0, label)
    }

    fn meta(m: &ModelProto, key: &str) -> Option<String> {
        m.metadata_props
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.value.clone())
    }

    #[test]
    fn head_model_round_trips_and_computes_the_head() {
        let (d, n) = (6, 5);
        let mut x = values(n * d, 7);
        x[d..2 * d].iter_mut().for_each(|v| *v = 0.0); // an all-zero row
        let std: Vec<f32> = values(d, 9).iter().map(|v| v.abs() + 0.1).collect();
        let specs = [
            spec(Normalization::None, vec![dense(d, 3, 1)]),
            spec(
                Normalization::Standard {
                    mean: values(d, 8),
                    std,
                },
                vec![dense(d, 4, 2)],
            ),
            spec(Normalization::L2, vec![dense(d, 5, 3), dense(5, 3, 4)]),
        ];
        for s in &specs {
            let m = head_model(s).unwrap_or_else(|e| panic!("{e}"));
            let bytes = encode_model(&m).unwrap_or_else(|e| panic!("{e}"));
            let back =
                decode_model(&bytes, Path::new("head.onnx")).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(back, m);
            let g = back.graph.as_ref().unwrap();
            let io = |v: &[ValueInfoProto]| v.iter().map(|i| i.name.clone()).collect::<Vec<_>>();
            assert_eq!(io(&g.input), [FEATURES_INPUT]);
            assert_eq!(io(&g.output), [PROBABILITIES, LABEL]);
            assert_eq!(back.opset_import[0].version, build::OPSET);
            let names: Vec<String> =
                serde_json::from_str(&meta(&back, CLASS_NAMES_KEY).unwrap()).unwrap();
            assert_eq!(names, s.class_names);
            assert_eq!(
                meta(&back, MODEL_FINGERPRINT_KEY).as_deref(),
                Some("abc123")
            );
            assert_eq!(meta(&back, MODEL_NAME_KEY).as_deref(), Some("toy"));
            assert_eq!(meta(&back, "headstart.head").as_deref(), Some("softmax"));

            let (p, label) = evaluate(&back, &x, n);
            let want = reference(s, &x, n);
            let k = s.n_classes();
            assert_eq!(p.len(), n * k);
            for (a, b) in p.iter().zip(&want) {
                assert!((a - b).abs() < 1e-6, "{a} vs {b}");
            }
            for (r, l) in label.iter().enumerate() {
                let row = &p[r * k..(r + 1) * k];
                assert!(row.iter().all(|v| *v <= row[*l as usize]));
            }
        }
    }

    #[test]
    fn invalid_heads_are_refused() {
        let mut s = spec(Normalization::None, vec![dense(4, 3, 1)]);
        s.class_names.pop();
        assert!(
            head_model(&s)
                .unwrap_err()
                .to_string()
                .contains("2 class names")
        );
        let s = spec(Normalization::None, vec![dense(4, 3, 1), dense(2, 3, 1)]);
        assert!(head_model(&s).unwrap_err().to_string().contains("takes 2"));
        let s = spec(
            Normalization::Standard {
                mean: vec![0.0; 4],
                std: vec![0.0; 4],
            },
            vec![dense(4, 3, 1)],
        );
        assert!(head_model(&s).is_err());
        let s = spec(Normalization::None, vec![]);
        assert!(head_model(&s).is_err());
    }

    #[test]
    fn fuse_prunes_the_backbone_classifier() {
        // a_torchvision: Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm `logits`.
        let backbone = test_model("a_torchvision.onnx");
        let s = spec(Normalization::L2, vec![dense(16, 4, 1)]);
        let m = fuse(backbone, "/Flatten_output_0", &s, None).unwrap_or_else(|e| panic!("{e}"));
        let g = m.graph.as_ref().unwrap();
        let outs: Vec<&str> = g.output.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(outs, [PROBABILITIES, LABEL]);
        assert!(
            !g.node.iter().any(|n| n.op_type == "Gemm"),
            "the old head stays"
        );
        assert!(!g.initializer.iter().any(|t| t.name.starts_with("fc.")));
        assert!(g.initializer.iter().any(|t| t.name == "features.0.weight"));
        assert_eq!(g.input.len(), 1);
        assert_eq!(g.input[0].name, "input");
        // The opset of the backbone is kept, so ReduceL2 uses an axes input at 18+ only.
        assert_eq!(default_opset(&m), Some(17));
        let l2 = g.node.iter().find(|n| n.op_type == "ReduceL2").unwrap();
        assert_eq!(l2.input.len(), 1);
        assert!(l2.attribute.iter().any(|a| a.name == "axes"));
        // The output batch dimension is the input's.
        let dims = crate::features::declared_dims(&g.output[0]).unwrap();
        assert_eq!(
            dims[0].value,
            Some(tensor_shape_proto::dimension::Value::DimParam(
                "batch_size".into()
            ))
        );
        assert_eq!(
            meta(&m, CLASS_NAMES_KEY).unwrap(),
            serde_json::to_string(&s.class_names).unwrap()
        );
        // Encodes and decodes.
        let bytes = encode_model(&m).unwrap_or_else(|e| panic!("{e}"));
        decode_model(&bytes, Path::new("x.onnx")).unwrap_or_else(|e| panic!("{e}"));

        // An unreachable branch and an extra output disappear too.
        let mut backbone = test_model("a_torchvision.onnx");
        let g = backbone.graph.as_mut().unwrap();
        g.node
            .push(node("Relu", "dangling", &["logits"], &["more"], vec![]));
        g.output.push(value_info("more", DataType::FLOAT, &[]));
        let m = fuse(backbone, "/avgpool/GlobalAveragePool_output_0", &s, None)
            .unwrap_or_else(|e| panic!("{e}"));
        let g = m.graph.as_ref().unwrap();
        let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
        assert!(!ops.contains(&"Gemm") && !g.node.iter().any(|n| n.name == "dangling"));
        // The backbone's own Flatten is gone (it only fed the old head); ours flattens.
        assert!(!g.node.iter().any(|n| n.name == "/Flatten"));
        assert!(g.node.iter().any(|n| n.name == "headstart/flatten"));
    }

    #[test]
    fn fused_names_are_prefixed_and_never_collide() {
        let mut backbone = test_model("a_torchvision.onnx");
        // A backbone that already uses the public names and the prefix.
        let g = backbone.graph.as_mut().unwrap();
        for n in &mut g.node {
            for o in n.output.iter_mut().chain(n.input.iter_mut()) {
                if o == "/features/features.1/Relu_output_0" {
                    *o = "probabilities".into();
                }
                if o == "input" {
                    *o = "image".into();
                }
            }
        }
        g.input[0].name = "image".into();
        g.node[0].name = "headstart/conv".into();
        let before: HashSet<String> = {
            let mut s = HashSet::new();
            collect_names(g, &mut s);
            s
        };
        let s = spec(
            Normalization::Standard {
                mean: vec![0.5; 16],
                std: vec![2.0; 16],
            },
            vec![dense(16, 8, 1), dense(8, 4, 2)],
        );
        let pre = InGraphPreprocess {
            input_name: "image".into(),
            height: 8,
            width: 8,
            mean: [1.0, 2.0, 3.0],
            std: [4.0, 5.0, 6.0],
            bgr: true,
            nchw: true,
        };
        let m =
            fuse(backbone, "/Flatten_output_0", &s, Some(&pre)).unwrap_or_else(|e| panic!("{e}"));
        let g = m.graph.as_ref().unwrap();
        let mut after = HashSet::new();
        collect_names(g, &mut after);
        let public = [IMAGE_INPUT, PROBABILITIES, LABEL];
        for name in &after {
            assert!(
                before.contains(name)
                    || name.starts_with("headstart_2/")
                    || public.contains(&name.as_str()),
                "`{name}` is neither the backbone's, prefixed, nor public"
            );
        }
        assert!(after.contains("headstart_2/backbone/probabilities"));
        assert!(after.contains("headstart_2/backbone/image"));
        // Every tensor is produced once.
        let mut produced = HashSet::new();
        for n in &g.node {
            for o in &n.output {
                assert!(produced.insert(o.clone()), "`{o}` produced twice");
            }
        }
        // Inputs: only the uint8 image, shaped [batch, H, W, 3].
        assert_eq!(g.input.len(), 1);
        assert_eq!(g.input[0].name, IMAGE_INPUT);
        let dims = crate::features::declared_dims(&g.input[0]).unwrap();
        let dims: Vec<_> = dims.iter().map(|d| d.value.clone()).collect();
        use tensor_shape_proto::dimension::Value::{DimParam, DimValue};
        assert_eq!(
            dims,
            [
                Some(DimParam("batch_size".into())),
                Some(DimValue(8)),
                Some(DimValue(8)),
                Some(DimValue(3))
            ]
        );
        // Preprocessing comes first, in order, and feeds the backbone's old input.
        let ops: Vec<&str> = g.node.iter().take(5).map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, ["Cast", "Gather", "Sub", "Mul", "Transpose"]);
        assert_eq!(g.node[4].output[0], "headstart_2/backbone/image");
        let mean = g
            .initializer
            .iter()
            .find(|t| t.name == "headstart_2/image/mean")
            .unwrap();
        let mean: Vec<f32> = mean
            .raw_data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(mean, [3.0, 2.0, 1.0], "BGR order");
    }

    #[test]
    fn fuse_refuses_unknown_tensors_and_inputs() {
        let s = spec(Normalization::None, vec![dense(16, 4, 1)]);
        let e = fuse(test_model("a_torchvision.onnx"), "flatten", &s, None).unwrap_err();
        assert!(e.to_string().contains("`flatten`"), "{e}");
        assert!(e.to_string().contains("/Flatten_output_0"), "{e}");
        let e = fuse(test_model("a_torchvision.onnx"), "fc.weight", &s, None).unwrap_err();
        assert!(e.to_string().contains("fc.weight"), "{e}");
        let pre = InGraphPreprocess {
            input_name: "pixels".into(),
            height: 8,
            width: 8,
            mean: [0.0; 3],
            std: [1.0; 3],
            bgr: false,
            nchw: true,
        };
        let e = fuse(
            test_model("a_torchvision.onnx"),
            "/Flatten_output_0",
            &s,
            Some(&pre),
        )
        .unwrap_err();
        assert!(e.to_string().contains("no input `pixels`"), "{e}");
    }

    /// Writes fused test models for an external check
    /// (`onnx.checker.check_model(full_check=True)` and onnxruntime).
    /// Run: `HEADSTART_EXPORT_DIR=DIR cargo test -p headstart-onnx -- --ignored write_fused`.
    /// Without HEADSTART_EXPORT_DIR the files go to a temporary folder and are read back.
    #[test]
    fn write_fused_models() {
        let keep = std::env::var("HEADSTART_EXPORT_DIR").ok();
        let tmp = std::env::temp_dir().join(format!(
            "headstart-write_fused_models-{}",
            std::process::id()
        ));
        let dir = keep.clone().unwrap_or_else(|| tmp.display().to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let s = spec(
            Normalization::Standard {
                mean: vec![0.1; 16],
                std: vec![0.5; 16],
            },
            vec![dense(16, 8, 1), dense(8, 4, 2)],
        );
        for (file, feature, input, bgr) in [
            ("a_torchvision.onnx", "/Flatten_output_0", "input", false),
            (
                "c_keras.onnx",
                "model/global_average_pooling2d/Mean:0",
                "input_1",
                true,
            ),
        ] {
            let pre = InGraphPreprocess {
                input_name: input.into(),
                height: 8,
                width: 8,
                mean: [120.0, 110.0, 100.0],
                std: [60.0, 50.0, 40.0],
                bgr,
                nchw: true,
            };
            for (suffix, p) in [("plain", None), ("pre", Some(&pre))] {
                let m = fuse(test_model(file), feature, &s, p).unwrap_or_else(|e| panic!("{e}"));
                let bytes = encode_model(&m).unwrap_or_else(|e| panic!("{e}"));
                let name = file.replace(".onnx", &format!("_{suffix}.onnx"));
                std::fs::write(Path::new(&dir).join(name), bytes).unwrap();
            }
        }
        // An NHWC backbone: a_torchvision behind a Transpose from [N, 8, 8, 3].
        let mut nhwc = test_model("a_torchvision.onnx");
        let g = nhwc.graph.as_mut().unwrap();
        g.input[0] = value_info(
            "pixels_nhwc",
            DataType::FLOAT,
            &[
                Dim::Named("N".into()),
                Dim::Fixed(8),
                Dim::Fixed(8),
                Dim::Fixed(3),
            ],
        );
        g.node.insert(
            0,
            node(
                "Transpose",
                "to_nchw",
                &["pixels_nhwc"],
                &["input"],
                vec![("perm", Attr::Ints(vec![0, 3, 1, 2]))],
            ),
        );
        let pre = InGraphPreprocess {
            input_name: "pixels_nhwc".into(),
            height: 8,
            width: 8,
            mean: [120.0, 110.0, 100.0],
            std: [60.0, 50.0, 40.0],
            bgr: true,
            nchw: false,
        };
        for (suffix, p) in [("plain", None), ("pre", Some(&pre))] {
            let m =
                fuse(nhwc.clone(), "/Flatten_output_0", &s, p).unwrap_or_else(|e| panic!("{e}"));
            let bytes = encode_model(&m).unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(Path::new(&dir).join(format!("nhwc_{suffix}.onnx")), bytes).unwrap();
        }
        let mut l2 = s.clone();
        l2.normalization = Normalization::L2;
        // At opset 18, ReduceL2 takes its axes as an input.
        let mut v18 = test_model("a_torchvision.onnx");
        v18.opset_import[0].version = 18;
        let m = fuse(v18, "/Flatten_output_0", &l2, None).unwrap_or_else(|e| panic!("{e}"));
        let bytes = encode_model(&m).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(Path::new(&dir).join("opset18_l2.onnx"), bytes).unwrap();
        let bytes = encode_model(&head_model(&l2).unwrap()).unwrap();
        std::fs::write(Path::new(&dir).join("head_l2.onnx"), bytes).unwrap();
        assert!(
            crate::read_back_models(Path::new(&dir)) > 0,
            "nothing written to {dir}"
        );
        if keep.is_none() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
}
