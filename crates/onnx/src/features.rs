//! Finding and exposing the feature tensor of a user's classifier backbone.
//!
//! A backbone exported by timm, torchvision or Keras (tf2onnx) ends in a
//! classifier: global pooling, a flatten/reshape, one fully connected layer and
//! maybe a softmax. The features headstart extracts are the input of that last
//! fully connected layer. [`find_penultimate`] locates it and explains what it
//! found when there is none; [`expose_output`] turns any tensor into a graph
//! output so a runtime can fetch it.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::OnnxError;
use crate::proto::{
    GraphProto, ModelProto, NodeProto, TensorProto, TypeProto, ValueInfoProto, tensor_proto,
    tensor_shape_proto, type_proto,
};
use protobuf::MessageField;

/// The tensor to extract features from: its name and, when the graph says,
/// its number of values per image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeatureTensor {
    /// Tensor name in the graph, as `--features` takes it.
    pub name: String,
    /// Values per image, from the classifier weight or the declared shape.
    pub dim: Option<usize>,
}

/// Nodes skipped when walking back from the classifier output to its last
/// fully connected layer.
const PASS_THROUGH: &[&str] = &[
    "Softmax",
    "LogSoftmax",
    "Sigmoid",
    "Identity",
    "Dropout",
    "Flatten",
    "Squeeze",
    "Reshape",
];

/// Nodes whose output is class scores, not features.
const SCORES: &[&str] = &["Softmax", "LogSoftmax", "Sigmoid"];

/// Nodes whose outputs are offered as `--features` candidates in errors.
const POOLING: &[&str] = &[
    "GlobalAveragePool",
    "GlobalMaxPool",
    "ReduceMean",
    "ReduceMax",
    "AveragePool",
    "Flatten",
    "Reshape",
    "Squeeze",
];

/// Nodes whose output has the rank of their first input.
const SAME_RANK: &[&str] = &[
    "Relu",
    "Sigmoid",
    "Tanh",
    "Clip",
    "HardSigmoid",
    "HardSwish",
    "LeakyRelu",
    "PRelu",
    "Elu",
    "Selu",
    "Softplus",
    "Gelu",
    "Mish",
    "Erf",
    "Neg",
    "Abs",
    "Sqrt",
    "Exp",
    "Log",
    "Cast",
    "Identity",
    "Dropout",
    "BatchNormalization",
    "InstanceNormalization",
    "LayerNormalization",
    "LRN",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "AveragePool",
    "MaxPool",
    "Softmax",
    "LogSoftmax",
    "Transpose",
    "Pad",
    "Resize",
    "Concat",
    "Slice",
];

/// Broadcasting element-wise nodes: output rank is the largest input rank.
const BROADCAST: &[&str] = &[
    "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean",
];

/// Reductions with `keepdims` and `axes` (attribute, or input 1 from opset 18).
const REDUCE: &[&str] = &[
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceSum",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSumExp",
    "ReduceSumSquare",
];

/// How far rank inference walks back before giving up.
const RANK_DEPTH: usize = 256;

/// Finds the input of the classifier's final fully connected layer: the
/// pooled feature vector, `[batch, dim]`.
///
/// Walks back from the graph output through Softmax, LogSoftmax, Sigmoid,
/// Identity, Dropout, Flatten, Squeeze and Reshape to a `Gemm` (features = input
/// A, dim from the weight and `transB`) or a `MatMul` with a constant weight,
/// optionally followed by an `Add` of a constant bias (features = the other
/// MatMul input, dim = weight rows, and it must be 2-D). An output without such
/// a head that is itself `[batch, dim]` (a headless backbone, a transformer's
/// pooled output) is the feature tensor.
///
/// Outputs known to have rank 3 or more (a transformer's token sequence, a CNN's
/// feature map, as Hugging Face models export `last_hidden_state` beside their
/// pooled or projected output) are never features and are set aside; the other
/// outputs must all lead to the same tensor. Anything else is an
/// [`OnnxError::Features`] that says what was found and lists candidate tensors
/// for `--features`.
pub fn find_penultimate(model: &ModelProto) -> Result<FeatureTensor, OnnxError> {
    let graph = graph_of(model)?;
    let index = GraphIndex::new(graph);
    let vectors: Vec<ValueInfoProto> = graph
        .output
        .iter()
        .filter(|o| index.rank(&o.name, RANK_DEPTH).is_none_or(|r| r < 3))
        .cloned()
        .collect();
    let outputs = if vectors.is_empty() {
        graph.output.as_slice()
    } else {
        vectors.as_slice()
    };
    let found = match outputs {
        [] => Err("the graph has no outputs".to_string()),
        [only] => index
            .head_of(&only.name)
            .or_else(|why| index.headless(&only.name).ok_or(why)),
        outputs => index.agree(outputs),
    };
    found.map_err(|why| index.explain(why))
}

/// Checks that `tensor` can be the feature tensor: one vector per image,
/// `[batch, features]`. A tensor the graph shows to have another rank (a
/// `[N, C, H, W]` feature map, a `[N, C, 1, 1]` pool before its flatten) is an
/// [`OnnxError::FeatureShape`] that names its shape and the pooled 2-D
/// tensors of the graph; a tensor of unknown rank passes (the runtime checks
/// the shape it really has).
pub fn check_feature_tensor(model: &ModelProto, tensor: &str) -> Result<(), OnnxError> {
    let graph = graph_of(model)?;
    let index = GraphIndex::new(graph);
    match index.rank(tensor, RANK_DEPTH) {
        None | Some(2) => Ok(()),
        Some(rank) => {
            let shape = match index.infos.get(tensor).and_then(|vi| declared_dims(vi)) {
                Some(dims) => format_dims(dims),
                None => format!("[{}]", vec!["?"; rank].join(", ")),
            };
            Err(OnnxError::FeatureShape {
                tensor: tensor.to_string(),
                shape,
                pooled: index.vector_candidates(),
            })
        }
    }
}

/// `[N, 16, 1, 1]`: fixed sizes, symbolic names, `?` for unknown.
fn format_dims(dims: &[tensor_shape_proto::Dimension]) -> String {
    let dims: Vec<String> = dims
        .iter()
        .map(|d| match &d.value {
            Some(tensor_shape_proto::dimension::Value::DimValue(v)) => v.to_string(),
            Some(tensor_shape_proto::dimension::Value::DimParam(p)) if !p.is_empty() => p.clone(),
            _ => "?".to_string(),
        })
        .collect();
    format!("[{}]", dims.join(", "))
}

/// Adds a float graph output `[batch, dim]` for the existing tensor `tensor`,
/// where `batch` is the first graph input's first dimension (symbolic or
/// fixed) and `dim` is left unknown when `None`.
///
/// The tensor must be produced by a node or be a graph input. Nothing changes
/// when it already is a graph output. When the graph shows the tensor is not
/// 2-D, the output is declared without a shape rather than a wrong one.
pub fn expose_output(
    model: &mut ModelProto,
    tensor: &str,
    dim: Option<usize>,
) -> Result<(), OnnxError> {
    let graph = graph_of(model)?;
    if graph.output.iter().any(|o| o.name == tensor) {
        return Ok(());
    }
    let index = GraphIndex::new(graph);
    let is_input = index.inputs().any(|i| i.name == tensor);
    if tensor.is_empty() || (!is_input && !index.producers.contains_key(tensor)) {
        let reason = if index.consts.contains_key(tensor) {
            "it is a constant (initializer), not a computed tensor".to_string()
        } else {
            "no node produces it and it is not a graph input".to_string()
        };
        return Err(OnnxError::UnknownTensor {
            name: tensor.to_string(),
            reason,
            suggestions: index.suggestions(tensor),
        });
    }
    let rank = index.rank(tensor, RANK_DEPTH);
    let batch = index
        .inputs()
        .next()
        .and_then(|i| declared_dims(i))
        .and_then(|dims| dims.first().cloned())
        .unwrap_or_default();
    let mut tensor_type = type_proto::Tensor::new();
    tensor_type.elem_type = tensor_proto::DataType::FLOAT as i32;
    if rank.is_none_or(|r| r == 2) {
        let mut feature = tensor_shape_proto::Dimension::new();
        if let Some(d) = dim {
            let d = i64::try_from(d).map_err(|_| {
                OnnxError::Graph(format!("feature size {d} of `{tensor}` is out of range"))
            })?;
            feature.value = Some(tensor_shape_proto::dimension::Value::DimValue(d));
        }
        let mut shape = crate::proto::TensorShapeProto::new();
        shape.dim = vec![batch, feature];
        tensor_type.shape = MessageField::some(shape);
    }
    let mut ty = TypeProto::new();
    ty.value = Some(type_proto::Value::TensorType(tensor_type));
    let mut output = ValueInfoProto::new();
    output.name = tensor.to_string();
    output.type_ = MessageField::some(ty);
    drop(index);
    model
        .graph
        .as_mut()
        .ok_or_else(no_graph)?
        .output
        .push(output);
    Ok(())
}

/// Every tensor name a node or graph input provides (not initializers), in
/// graph order, without repeats; for error messages and `--features` help.
pub fn tensor_names(model: &ModelProto) -> Vec<String> {
    let Some(graph) = model.graph.as_ref() else {
        return Vec::new();
    };
    let index = GraphIndex::new(graph);
    let mut seen = HashSet::new();
    index
        .inputs()
        .map(|i| i.name.as_str())
        .chain(
            graph
                .node
                .iter()
                .flat_map(|n| n.output.iter().map(String::as_str)),
        )
        .filter(|name| !name.is_empty() && seen.insert(*name))
        .map(str::to_string)
        .collect()
}

fn no_graph() -> OnnxError {
    OnnxError::Graph("the model has no graph".into())
}

fn graph_of(model: &ModelProto) -> Result<&GraphProto, OnnxError> {
    model.graph.as_ref().ok_or_else(no_graph)
}

/// The declared dimensions of a value info, when it is a tensor with a shape.
pub(crate) fn declared_dims(vi: &ValueInfoProto) -> Option<&[tensor_shape_proto::Dimension]> {
    match vi.type_.as_ref()?.value.as_ref()? {
        type_proto::Value::TensorType(t) => t.shape.as_ref().map(|s| s.dim.as_slice()),
        _ => None,
    }
}

fn is_default_domain(node: &NodeProto) -> bool {
    node.domain.is_empty() || node.domain == "ai.onnx"
}

fn attr_int(node: &NodeProto, name: &str) -> Option<i64> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

fn attr_ints<'a>(node: &'a NodeProto, name: &str) -> Option<&'a [i64]> {
    node.attribute
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.ints.as_slice())
}

/// `op` `name`, or just `op` for unnamed nodes.
fn describe(node: &NodeProto) -> String {
    let op = if is_default_domain(node) {
        node.op_type.clone()
    } else {
        format!("{}:{}", node.domain, node.op_type)
    };
    if node.name.is_empty() {
        op
    } else {
        format!("{op} `{}`", node.name)
    }
}

/// Lookup tables over one graph.
struct GraphIndex<'a> {
    graph: &'a GraphProto,
    producers: HashMap<&'a str, &'a NodeProto>,
    consts: HashMap<&'a str, &'a TensorProto>,
    infos: HashMap<&'a str, &'a ValueInfoProto>,
    ranks: RefCell<HashMap<String, Option<usize>>>,
}

impl<'a> GraphIndex<'a> {
    fn new(graph: &'a GraphProto) -> Self {
        let mut producers = HashMap::new();
        let mut consts: HashMap<&str, &TensorProto> = graph
            .initializer
            .iter()
            .map(|t| (t.name.as_str(), t))
            .collect();
        for node in &graph.node {
            for out in node.output.iter().filter(|o| !o.is_empty()) {
                producers.insert(out.as_str(), node);
            }
            if node.op_type == "Constant" && is_default_domain(node) {
                let value = node
                    .attribute
                    .iter()
                    .find(|a| a.name == "value")
                    .and_then(|a| a.t.as_ref());
                if let (Some(out), Some(t)) = (node.output.first(), value) {
                    consts.insert(out.as_str(), t);
                }
            }
        }
        let infos = graph
            .input
            .iter()
            .chain(&graph.value_info)
            .chain(&graph.output)
            .map(|vi| (vi.name.as_str(), vi))
            .collect();
        GraphIndex {
            graph,
            producers,
            consts,
            infos,
            ranks: RefCell::new(HashMap::new()),
        }
    }

    /// Graph inputs that are real inputs, not initializers listed as inputs.
    fn inputs(&self) -> impl Iterator<Item = &'a ValueInfoProto> + '_ {
        let initializers: HashSet<&str> = self
            .graph
            .initializer
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        self.graph
            .input
            .iter()
            .filter(move |i| !initializers.contains(i.name.as_str()))
    }

    fn is_const(&self, name: &str) -> bool {
        self.consts.contains_key(name)
    }

    /// With several outputs, every output must lead to the same feature tensor
    /// or be that tensor (a backbone that already exposes its features).
    fn agree(&self, outputs: &[ValueInfoProto]) -> Result<FeatureTensor, String> {
        let names = outputs
            .iter()
            .map(|o| format!("`{}`", o.name))
            .collect::<Vec<_>>()
            .join(", ");
        let heads: Vec<(&str, Result<FeatureTensor, String>)> = outputs
            .iter()
            .map(|o| (o.name.as_str(), self.head_of(&o.name)))
            .collect();
        let mut found: Option<(&str, &FeatureTensor)> = None;
        for (output, head) in &heads {
            match (head, found) {
                (Ok(f), None) => found = Some((output, f)),
                (Ok(f), Some((first, g))) if f.name != g.name => {
                    return Err(format!(
                        "the model has {} outputs ({names}) with different heads: `{first}` \
                         comes from features `{}`, `{output}` from `{}`",
                        outputs.len(),
                        g.name,
                        f.name
                    ));
                }
                _ => {}
            }
        }
        for (output, head) in &heads {
            if let Err(why) = head
                && found.is_none_or(|(_, f)| f.name != *output)
            {
                return Err(format!(
                    "the model has {} outputs ({names}) and output `{output}` has no \
                     classifier head: {why}",
                    outputs.len()
                ));
            }
        }
        found
            .map(|(_, f)| f.clone())
            .ok_or_else(|| "the graph has no outputs".to_string())
    }

    /// Finds the feature tensor behind one graph output; `Err` says why not.
    fn head_of(&self, output: &str) -> Result<FeatureTensor, String> {
        let mut tensor = output;
        let mut skipped: Vec<&str> = Vec::new();
        for _ in 0..=self.graph.node.len() {
            let after = if skipped.is_empty() {
                String::new()
            } else {
                format!(" (after skipping {})", skipped.join(", "))
            };
            let Some(node) = self.producers.get(tensor) else {
                let what = if self.is_const(tensor) {
                    "a constant"
                } else if self.inputs().any(|i| i.name == tensor) {
                    "a graph input"
                } else {
                    "not produced by any node"
                };
                return Err(format!(
                    "output `{output}` leads to `{tensor}`{after}, which is {what}; \
                     no fully connected head found"
                ));
            };
            let op = node.op_type.as_str();
            if !is_default_domain(node) {
                return Err(self.not_a_head(output, node, &after));
            }
            match op {
                _ if PASS_THROUGH.contains(&op) => {
                    tensor = node
                        .input
                        .first()
                        .filter(|i| !i.is_empty())
                        .ok_or_else(|| format!("{} has no input", describe(node)))?;
                    skipped.push(node.op_type.as_str());
                }
                "Gemm" => return self.gemm(node),
                "MatMul" => return self.matmul(node, None),
                "Add" => {
                    let matmul = node.input.iter().enumerate().find_map(|(i, t)| {
                        self.producers
                            .get(t.as_str())
                            .filter(|n| n.op_type == "MatMul" && is_default_domain(n))
                            .map(|n| (i, *n))
                    });
                    let Some((i, matmul)) = matmul else {
                        return Err(self.not_a_head(output, node, &after));
                    };
                    let bias = node.input.get(1 - i.min(1)).map(String::as_str);
                    if !bias.is_some_and(|b| self.is_const(b)) {
                        return Err(format!(
                            "the last node before output `{output}`{after} is {}, which \
                             adds `{}` to {}; that is not a constant bias, so this is no \
                             fully connected head",
                            describe(node),
                            bias.unwrap_or(""),
                            describe(matmul)
                        ));
                    }
                    return self.matmul(matmul, Some(node));
                }
                _ => return Err(self.not_a_head(output, node, &after)),
            }
        }
        Err(format!("output `{output}` is part of a cycle"))
    }

    /// A single output that is itself a `[batch, features]` matrix: a backbone
    /// exported without its classifier, giving its pooled features. Class scores
    /// (an output behind Softmax, LogSoftmax or Sigmoid) do not count.
    fn headless(&self, output: &str) -> Option<FeatureTensor> {
        if self.rank(output, RANK_DEPTH) != Some(2) {
            return None;
        }
        let mut tensor = output;
        for _ in 0..=self.graph.node.len() {
            let Some(node) = self.producers.get(tensor) else {
                break;
            };
            let op = node.op_type.as_str();
            if !is_default_domain(node) {
                break;
            }
            if !PASS_THROUGH.contains(&op) {
                // A fully connected layer that `head_of` refused: logits, no features.
                let fc = |n: &&NodeProto| {
                    is_default_domain(n) && matches!(n.op_type.as_str(), "Gemm" | "MatMul")
                };
                let after_fc = op == "Add"
                    && node
                        .input
                        .iter()
                        .any(|i| self.producers.get(i.as_str()).is_some_and(fc));
                if fc(node) || after_fc {
                    return None;
                }
                break;
            }
            if SCORES.contains(&op) {
                return None;
            }
            match node.input.first() {
                Some(input) if !input.is_empty() => tensor = input,
                _ => break,
            }
        }
        let dim = self
            .infos
            .get(output)
            .and_then(|vi| declared_dims(vi))
            .and_then(|dims| match dims {
                [_, d] => match d.value {
                    Some(tensor_shape_proto::dimension::Value::DimValue(v)) => {
                        usize::try_from(v).ok().filter(|&v| v > 0)
                    }
                    _ => None,
                },
                _ => None,
            });
        Some(FeatureTensor {
            name: output.to_string(),
            dim,
        })
    }

    fn not_a_head(&self, output: &str, node: &NodeProto, after: &str) -> String {
        format!(
            "the last node before output `{output}`{after} is {}; no fully connected head \
             found (expected Gemm, or MatMul with a constant weight and optional Add, after \
             optional Softmax/LogSoftmax/Identity/Flatten/Squeeze)",
            describe(node)
        )
    }

    /// Features of a final `Gemm`: input A; dim from B's shape and `transB`.
    fn gemm(&self, node: &NodeProto) -> Result<FeatureTensor, String> {
        let (Some(a), Some(b)) = (node.input.first(), node.input.get(1)) else {
            return Err(format!("{} has fewer than two inputs", describe(node)));
        };
        if attr_int(node, "transA").unwrap_or(0) != 0 {
            return Err(format!(
                "the final {} has transA=1, so its input `{a}` is [features, batch], not \
                 a [batch, features] vector",
                describe(node)
            ));
        }
        if a.is_empty() || self.is_const(a) {
            return Err(format!(
                "the final {} has a constant input A; its features would be input B `{b}`, \
                 which is not the usual layout",
                describe(node)
            ));
        }
        let weight_dim = match self.consts.get(b.as_str()) {
            Some(w) => {
                let axis = usize::from(attr_int(node, "transB").unwrap_or(0) != 0);
                Some(self.weight_dim(node, w, axis)?)
            }
            None => None,
        };
        self.feature(node, a, weight_dim)
    }

    /// Features of a final `MatMul` with a constant 2-D weight B: input A,
    /// which must be 2-D; dim = the weight's rows. `bias` is the `Add` of a
    /// constant bias after it, if any.
    ///
    /// A's rank comes from the graph, or else from the head's output: with a
    /// 2-D weight the product has A's rank, so a `[batch, classes]` output
    /// (as exporters declare graph outputs even when they declare nothing
    /// inside the graph) means a 2-D A.
    fn matmul(&self, node: &NodeProto, bias: Option<&NodeProto>) -> Result<FeatureTensor, String> {
        let (Some(a), Some(b)) = (node.input.first(), node.input.get(1)) else {
            return Err(format!("{} has fewer than two inputs", describe(node)));
        };
        let Some(w) = self.consts.get(b.as_str()) else {
            return Err(format!(
                "the final {} multiplies `{a}` by `{b}`, which is not a constant weight, \
                 so it is no fully connected layer",
                describe(node)
            ));
        };
        if a.is_empty() || self.is_const(a) {
            return Err(format!(
                "the final {} multiplies two constants",
                describe(node)
            ));
        }
        let dim = self.weight_dim(node, w, 0)?;
        let source = self
            .producers
            .get(a.as_str())
            .map(|n| format!(", produced by {}", describe(n)))
            .unwrap_or_default();
        match self
            .rank(a, RANK_DEPTH)
            .or_else(|| self.product_rank(node, bias))
        {
            Some(2) => {}
            Some(r) => {
                return Err(format!(
                    "the input `{a}` of the final {} has rank {r}{source}, not a pooled \
                     [batch, features] vector",
                    describe(node)
                ));
            }
            None => {
                return Err(format!(
                    "cannot tell whether `{a}`, the input of the final {}{source}, is a \
                     pooled [batch, features] vector (its rank is not known)",
                    describe(node)
                ));
            }
        }
        self.feature(node, a, Some(dim))
    }

    /// The rank of the product of `matmul` (input A times a 2-D weight) when
    /// its output, or the output of `bias` (adding a bias of rank 0 or 1),
    /// has a known rank of at least 2: then that is A's rank too.
    fn product_rank(&self, matmul: &NodeProto, bias: Option<&NodeProto>) -> Option<usize> {
        let of = |n: &NodeProto| {
            let out = n.output.first().filter(|o| !o.is_empty())?;
            self.rank(out, RANK_DEPTH).filter(|&r| r >= 2)
        };
        of(matmul).or_else(|| {
            let add = bias?;
            let small_bias = add
                .input
                .iter()
                .filter(|i| !matmul.output.contains(i))
                .all(|i| {
                    self.consts
                        .get(i.as_str())
                        .is_some_and(|t| t.dims.len() <= 1)
                });
            small_bias.then(|| of(add)).flatten()
        })
    }

    /// Size of axis `axis` of the 2-D weight `w` of `node`.
    fn weight_dim(&self, node: &NodeProto, w: &TensorProto, axis: usize) -> Result<usize, String> {
        if w.dims.len() != 2 {
            return Err(format!(
                "the weight `{}` of the final {} has shape {:?}, not 2-D",
                w.name,
                describe(node),
                w.dims
            ));
        }
        w.dims
            .get(axis)
            .and_then(|&d| usize::try_from(d).ok())
            .ok_or_else(|| {
                format!(
                    "the weight `{}` of {} has an invalid shape {:?}",
                    w.name,
                    describe(node),
                    w.dims
                )
            })
    }

    /// The feature tensor `a` with size `dim`, checked against its declared
    /// shape; the declared size is used when the weight gives none.
    fn feature(
        &self,
        node: &NodeProto,
        a: &str,
        dim: Option<usize>,
    ) -> Result<FeatureTensor, String> {
        let declared =
            self.infos
                .get(a)
                .and_then(|vi| declared_dims(vi))
                .and_then(|dims| match dims {
                    [_, d] => match d.value {
                        Some(tensor_shape_proto::dimension::Value::DimValue(v)) => {
                            usize::try_from(v).ok()
                        }
                        _ => None,
                    },
                    _ => None,
                });
        if let (Some(w), Some(d)) = (dim, declared)
            && w != d
        {
            return Err(format!(
                "`{a}` is declared with {d} features but the weight of the final {} expects {w}",
                describe(node)
            ));
        }
        Ok(FeatureTensor {
            name: a.to_string(),
            dim: dim.or(declared),
        })
    }

    /// The rank of `name` from declared shapes, constants, or the ops that
    /// produce it; `None` when it cannot be told.
    fn rank(&self, name: &str, depth: usize) -> Option<usize> {
        if let Some(dims) = self.infos.get(name).and_then(|vi| declared_dims(vi)) {
            return Some(dims.len());
        }
        if let Some(t) = self.consts.get(name) {
            return Some(t.dims.len());
        }
        if let Some(known) = self.ranks.borrow().get(name) {
            return *known;
        }
        if depth == 0 {
            return None;
        }
        let rank = self.producers.get(name).and_then(|node| {
            if !is_default_domain(node) {
                return None;
            }
            self.node_rank(node, depth - 1)
        });
        self.ranks.borrow_mut().insert(name.to_string(), rank);
        rank
    }

    fn node_rank(&self, node: &NodeProto, depth: usize) -> Option<usize> {
        let input = |i: usize| node.input.get(i).filter(|s| !s.is_empty());
        let input_rank = |i: usize| input(i).and_then(|s| self.rank(s, depth));
        // Length of a 1-D constant axes/shape input.
        let const_len = |i: usize| {
            input(i)
                .and_then(|s| self.consts.get(s.as_str()))
                .and_then(|t| match t.dims.as_slice() {
                    [n] => usize::try_from(*n).ok(),
                    _ => None,
                })
        };
        let op = node.op_type.as_str();
        match op {
            "Flatten" | "Gemm" => Some(2),
            "Reshape" => const_len(1),
            "Conv" | "ConvTranspose" => input(1)
                .and_then(|w| self.consts.get(w.as_str()))
                .map(|w| w.dims.len())
                .or_else(|| input_rank(0)),
            _ if SAME_RANK.contains(&op) => input_rank(0),
            _ if BROADCAST.contains(&op) => {
                let ranks: Option<Vec<usize>> = node
                    .input
                    .iter()
                    .filter(|s| !s.is_empty())
                    .map(|s| self.rank(s, depth))
                    .collect();
                ranks?.into_iter().max()
            }
            _ if REDUCE.contains(&op) => {
                let rank = input_rank(0)?;
                if attr_int(node, "keepdims").unwrap_or(1) != 0 {
                    return Some(rank);
                }
                let axes = attr_ints(node, "axes")
                    .filter(|a| !a.is_empty())
                    .map(<[i64]>::len)
                    .or_else(|| const_len(1));
                match axes {
                    Some(n) => rank.checked_sub(n),
                    None if attr_int(node, "noop_with_empty_axes").unwrap_or(0) != 0 => Some(rank),
                    None => Some(0),
                }
            }
            "Squeeze" => {
                let n = attr_ints(node, "axes")
                    .filter(|a| !a.is_empty())
                    .map(<[i64]>::len)
                    .or_else(|| const_len(1))?;
                input_rank(0)?.checked_sub(n)
            }
            "Unsqueeze" => {
                let n = attr_ints(node, "axes")
                    .filter(|a| !a.is_empty())
                    .map(<[i64]>::len)
                    .or_else(|| const_len(1))?;
                Some(input_rank(0)? + n)
            }
            // Indexing `data` with `indices` replaces one axis by the indices' axes:
            // a scalar index (`x[:, 0]`, a transformer's CLS token) drops the axis.
            "Gather" => (input_rank(0)? + input_rank(1)?).checked_sub(1),
            "MatMul" => match (input_rank(0)?, input_rank(1)?) {
                (1, 1) => Some(0),
                (1, r) | (r, 1) => r.checked_sub(1),
                (a, b) => Some(a.max(b)),
            },
            _ => None,
        }
    }

    /// Outputs of pooling and flattening nodes that may be `[batch, features]`
    /// (rank 2 or unknown; a `[N, C, 1, 1]` pool is no candidate), in graph order.
    fn candidates(&self) -> Vec<String> {
        self.pooled_where(|rank| rank.is_none_or(|r| r == 2))
    }

    /// Outputs of pooling and flattening nodes known to be `[batch, features]`.
    fn vector_candidates(&self) -> Vec<String> {
        self.pooled_where(|rank| rank == Some(2))
    }

    /// Outputs of pooling and flattening nodes whose rank passes `keep`, as
    /// `` `name` (Op) ``, in graph order.
    fn pooled_where(&self, keep: impl Fn(Option<usize>) -> bool) -> Vec<String> {
        let mut seen = HashSet::new();
        self.graph
            .node
            .iter()
            .filter(|n| is_default_domain(n) && POOLING.contains(&n.op_type.as_str()))
            .filter_map(|n| {
                let out = n.output.first().filter(|o| !o.is_empty())?;
                (keep(self.rank(out, RANK_DEPTH)) && seen.insert(out.as_str()))
                    .then(|| format!("`{out}` ({})", n.op_type))
            })
            .collect()
    }

    /// Tensor names resembling `name` (substring either way, any case), or else
    /// the pooling candidates.
    fn suggestions(&self, name: &str) -> String {
        let wanted = name.to_lowercase();
        let mut seen = HashSet::new();
        let similar: Vec<String> = self
            .inputs()
            .map(|i| i.name.as_str())
            .chain(
                self.graph
                    .node
                    .iter()
                    .flat_map(|n| n.output.iter().map(String::as_str)),
            )
            .filter(|t| {
                let t = t.to_lowercase();
                !t.is_empty() && !wanted.is_empty() && (t.contains(&wanted) || wanted.contains(&t))
            })
            .filter(|t| seen.insert(*t))
            .map(|t| format!("`{t}`"))
            .collect();
        let (label, list) = if similar.is_empty() {
            ("pooled tensors", self.candidates())
        } else {
            ("similar names", similar)
        };
        if list.is_empty() {
            String::new()
        } else {
            format!("; {label}: {}", shorten(&list))
        }
    }

    /// The error for a graph without a usable head, with the pooled tensors
    /// that could be named instead.
    fn explain(&self, why: String) -> OnnxError {
        OnnxError::Features {
            why,
            pooled: self.candidates(),
        }
    }
}

/// Joins a list, keeping its last 12 entries (those nearest the output).
fn shorten(list: &[String]) -> String {
    const KEEP: usize = 12;
    if list.len() <= KEEP {
        list.join(", ")
    } else {
        format!(
            "... ({} earlier), {}",
            list.len() - KEEP,
            list[list.len() - KEEP..].join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{Attr, Dim, model, node, tensor_f32, tensor_i64, value_info};
    use crate::proto::tensor_proto::DataType;
    use crate::{decode_model, encode_model, load_model};
    use std::path::Path;

    macro_rules! test_model {
        ($file:literal) => {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../tests/data/models/",
                $file
            )
        };
    }

    fn load(path: &str) -> ModelProto {
        match load_model(Path::new(path)) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        }
    }

    fn features(path: &str) -> FeatureTensor {
        match find_penultimate(&load(path)) {
            Ok(f) => f,
            Err(e) => panic!("{path}: {e}"),
        }
    }

    fn feature(name: &str, dim: usize) -> FeatureTensor {
        FeatureTensor {
            name: name.into(),
            dim: Some(dim),
        }
    }

    fn err(model: &ModelProto) -> String {
        match find_penultimate(model) {
            Ok(f) => panic!("expected an error, found {f:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn torchvision_gemm_trans_b() {
        let f = features(test_model!("a_torchvision.onnx"));
        assert_eq!(f, feature("/Flatten_output_0", 16));
    }

    #[test]
    fn fixed_batch() {
        let f = features(test_model!("b_fixed_batch.onnx"));
        assert_eq!(f, feature("/Flatten_output_0", 16));
    }

    #[test]
    fn keras_reduce_mean_matmul_add_softmax() {
        let f = features(test_model!("c_keras.onnx"));
        assert_eq!(f, feature("model/global_average_pooling2d/Mean:0", 16));
    }

    #[test]
    fn reshape_then_gemm_without_trans_b() {
        let f = features(test_model!("d_reshape_gemm.onnx"));
        assert_eq!(f, feature("pool_flat", 16));
    }

    #[test]
    fn no_head_is_explained() {
        let e = err(&load(test_model!("e_no_head.onnx")));
        assert!(
            e.contains("the last node before output `pooled` is GlobalAveragePool `pool`"),
            "{e}"
        );
        assert!(e.contains("no fully connected head found"), "{e}");
        // Its [N, C, 1, 1] pool is no candidate: `--features` would refuse it.
        assert!(
            matches!(
                find_penultimate(&load(test_model!("e_no_head.onnx"))),
                Err(OnnxError::Features { pooled, .. }) if pooled.is_empty()
            ),
            "{e}"
        );
    }

    /// x [N,4] -> MatMul(x, w) -> Add(b) -> y, with x's shape declared or not.
    fn matmul_graph(x_dims: Option<Vec<Dim>>, pre: Vec<NodeProto>, feat: &str) -> ModelProto {
        let mut g = GraphProto::new();
        g.node = pre;
        g.node
            .push(node("MatMul", "fc", &[feat, "w"], &["mm"], vec![]));
        g.node
            .push(node("Add", "bias", &["b", "mm"], &["y"], vec![]));
        g.initializer.push(tensor_f32("w", &[4, 3], &[0.0; 12]));
        g.initializer.push(tensor_f32("b", &[3], &[0.0; 3]));
        let mut x = value_info("x", DataType::FLOAT, &x_dims.clone().unwrap_or_default());
        if x_dims.is_none() {
            x = ValueInfoProto::new();
            x.name = "x".into();
        }
        g.input.push(x);
        g.output.push(value_info(
            "y",
            DataType::FLOAT,
            &[Dim::Named("N".into()), Dim::Fixed(3)],
        ));
        model(g, &[])
    }

    #[test]
    fn matmul_with_bias_first_and_declared_2d_input() {
        let m = matmul_graph(
            Some(vec![Dim::Named("N".into()), Dim::Fixed(4)]),
            vec![],
            "x",
        );
        assert_eq!(find_penultimate(&m).ok(), Some(feature("x", 4)));
    }

    #[test]
    fn matmul_on_unpooled_tensor_is_refused() {
        let dims = vec![
            Dim::Named("N".into()),
            Dim::Fixed(7),
            Dim::Fixed(7),
            Dim::Fixed(4),
        ];
        let m = matmul_graph(
            Some(dims),
            vec![node("Relu", "act", &["x"], &["h"], vec![])],
            "h",
        );
        let e = err(&m);
        assert!(e.contains("has rank 4, produced by Relu `act`"), "{e}");
    }

    /// `x` is not declared, but `y = x @ w + b` is declared [N, 3]: x is 2-D.
    /// (Nothing declared at all is refused: see
    /// `a_projection_input_gets_its_rank_from_the_declared_output`.)
    #[test]
    fn matmul_of_undeclared_input_takes_the_output_rank() {
        let m = matmul_graph(None, vec![], "x");
        assert_eq!(find_penultimate(&m).ok(), Some(feature("x", 4)));
    }

    #[test]
    fn rank_follows_transpose_conv_and_squeeze() {
        let mut g = GraphProto::new();
        g.input.push(value_info(
            "x",
            DataType::FLOAT,
            &[
                Dim::Named("N".into()),
                Dim::Fixed(8),
                Dim::Fixed(8),
                Dim::Fixed(3),
            ],
        ));
        g.initializer
            .push(tensor_f32("k", &[4, 3, 1, 1], &[0.0; 12]));
        g.initializer.push(tensor_i64("axes", &[2], &[2, 3]));
        g.node = vec![
            node(
                "Transpose",
                "t",
                &["x"],
                &["xt"],
                vec![("perm", Attr::Ints(vec![0, 3, 1, 2]))],
            ),
            node("Conv", "c", &["xt", "k"], &["h"], vec![]),
            node("GlobalAveragePool", "p", &["h"], &["p4"], vec![]),
            node("Squeeze", "s", &["p4", "axes"], &["p2"], vec![]),
        ];
        let m = model(g, &[]);
        let index = GraphIndex::new(graph_of(&m).unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(index.rank("xt", RANK_DEPTH), Some(4));
        assert_eq!(index.rank("p4", RANK_DEPTH), Some(4));
        assert_eq!(index.rank("p2", RANK_DEPTH), Some(2));
    }

    #[test]
    fn several_outputs_must_agree() {
        let mut m = load(test_model!("a_torchvision.onnx"));
        let g = m.graph.as_mut().unwrap_or_else(|| panic!("no graph"));
        g.node.push(node(
            "Softmax",
            "sm",
            &["logits"],
            &["probs"],
            vec![("axis", Attr::Int(1))],
        ));
        let probs = value_info("probs", DataType::FLOAT, &[Dim::Named("batch_size".into())]);
        g.output.push(probs);
        assert_eq!(
            find_penultimate(&m).ok(),
            Some(feature("/Flatten_output_0", 16))
        );

        let pooled = value_info("/avgpool/GlobalAveragePool_output_0", DataType::FLOAT, &[]);
        m.graph
            .as_mut()
            .unwrap_or_else(|| panic!("no graph"))
            .output
            .push(pooled);
        let e = err(&m);
        assert!(e.contains("has 3 outputs"), "{e}");
        assert!(
            e.contains("`/avgpool/GlobalAveragePool_output_0` has no classifier head"),
            "{e}"
        );
    }

    #[test]
    fn an_output_that_is_the_feature_tensor_is_accepted() {
        let mut m = load(test_model!("d_reshape_gemm.onnx"));
        let flat = value_info(
            "pool_flat",
            DataType::FLOAT,
            &[Dim::Named("N".into()), Dim::Fixed(16)],
        );
        let g = m.graph.as_mut().unwrap_or_else(|| panic!("no graph"));
        g.output.insert(0, flat);
        assert_eq!(find_penultimate(&m).ok(), Some(feature("pool_flat", 16)));
    }

    /// image [N,3,8,8] -> GlobalAveragePool -> Flatten -> `tail` nodes -> output.
    fn headless(tail: Vec<NodeProto>, output: &str, declared: Option<Vec<Dim>>) -> ModelProto {
        let mut g = GraphProto::new();
        g.input.push(value_info(
            "image",
            DataType::FLOAT,
            &[
                Dim::Named("N".into()),
                Dim::Fixed(3),
                Dim::Fixed(8),
                Dim::Fixed(8),
            ],
        ));
        g.node = vec![
            node("GlobalAveragePool", "pool", &["image"], &["pooled"], vec![]),
            node("Flatten", "flat", &["pooled"], &["flat"], vec![]),
        ];
        g.node.extend(tail);
        let mut out = value_info(
            output,
            DataType::FLOAT,
            &declared.clone().unwrap_or_default(),
        );
        if declared.is_none() {
            out = ValueInfoProto::new();
            out.name = output.into();
        }
        g.output.push(out);
        model(g, &[])
    }

    /// Issue #12: `--features auto` refused a headless backbone whose only
    /// output is its pooled `features [N, D]`.
    #[test]
    fn auto_features_accepts_a_headless_features_output() {
        let n_by = |d: i64| Some(vec![Dim::Named("N".into()), Dim::Fixed(d)]);
        let identity = vec![node("Identity", "id", &["flat"], &["features"], vec![])];
        let m = headless(identity.clone(), "features", n_by(3));
        assert_eq!(find_penultimate(&m).ok(), Some(feature("features", 3)));
        // Rank known from the graph, size not declared.
        let m = headless(identity, "features", None);
        assert_eq!(
            find_penultimate(&m).ok(),
            Some(FeatureTensor {
                name: "features".into(),
                dim: None
            })
        );
        // The pooled output itself.
        let m = headless(vec![], "flat", n_by(3));
        assert_eq!(find_penultimate(&m).ok(), Some(feature("flat", 3)));
        // Class scores are no features.
        let softmax = vec![node("Softmax", "sm", &["flat"], &["probs"], vec![])];
        let e = err(&headless(softmax, "probs", n_by(3)));
        assert!(e.contains("no fully connected head found"), "{e}");
        // A 4-D output stays refused.
        let e = err(&load(test_model!("e_no_head.onnx")));
        assert!(e.contains("no fully connected head found"), "{e}");
        // So do the logits of a fully connected layer that is no usable head.
        let fc = vec![node(
            "Gemm",
            "fc",
            &["flat", "w"],
            &["logits"],
            vec![("transA", Attr::Int(1))],
        )];
        let mut m = headless(fc, "logits", n_by(2));
        let g = m.graph.as_mut().unwrap_or_else(|| panic!("no graph"));
        g.initializer.push(tensor_f32("w", &[3, 2], &[0.0; 6]));
        assert!(err(&m).contains("transA=1"));
    }

    /// A vision transformer's tail: tokens `x` [N, 5, 4] -> LayerNormalization
    /// -> `seq` -> Gather(index 0, axis 1) -> `cls` -> `tail` -> `outputs`.
    /// `x` is declared when `tokens_declared`; each output is declared with
    /// the dims given (none: no shape).
    fn vit_tail(
        tokens_declared: bool,
        tail: Vec<NodeProto>,
        outputs: &[(&str, Option<Vec<Dim>>)],
    ) -> ModelProto {
        let mut g = GraphProto::new();
        let mut x = ValueInfoProto::new();
        x.name = "x".into();
        if tokens_declared {
            let n = Dim::Named("N".into());
            x = value_info("x", DataType::FLOAT, &[n, Dim::Fixed(5), Dim::Fixed(4)]);
        }
        g.input.push(x);
        g.initializer.push(tensor_f32("gamma", &[4], &[1.0; 4]));
        g.initializer.push(tensor_f32("beta", &[4], &[0.0; 4]));
        g.initializer.push(tensor_i64("zero", &[], &[0]));
        g.initializer.push(tensor_f32("proj", &[4, 3], &[0.0; 12]));
        g.initializer.push(tensor_f32("bias", &[3], &[0.0; 3]));
        g.node = vec![
            node(
                "LayerNormalization",
                "norm",
                &["x", "gamma", "beta"],
                &["seq"],
                vec![],
            ),
            node(
                "Gather",
                "select",
                &["seq", "zero"],
                &["cls"],
                vec![("axis", Attr::Int(1))],
            ),
        ];
        g.node.extend(tail);
        for (name, dims) in outputs {
            let mut out = ValueInfoProto::new();
            out.name = (*name).into();
            if let Some(dims) = dims {
                out = value_info(name, DataType::FLOAT, dims);
            }
            g.output.push(out);
        }
        model(g, &[])
    }

    /// Hugging Face vision models export `last_hidden_state` [N, T, D] beside
    /// their pooled (DINOv2, SigLIP) or projected (CLIP) output; the token
    /// sequence is set aside and the CLS token after the final norm is found.
    #[test]
    fn token_sequence_outputs_are_set_aside() {
        let n = || Dim::Named("N".into());
        let seq = ("seq", Some(vec![n(), Dim::Fixed(5), Dim::Fixed(4)]));
        let projection = || vec![node("MatMul", "proj", &["cls", "proj"], &["emb"], vec![])];
        // CLIPVisionModelWithProjection: image_embeds and last_hidden_state.
        let emb = ("emb", Some(vec![n(), Dim::Fixed(3)]));
        let m = vit_tail(true, projection(), &[emb.clone(), seq.clone()]);
        assert_eq!(find_penultimate(&m).ok(), Some(feature("cls", 4)));
        // Dinov2Model / SiglipVisionModel: last_hidden_state and pooler_output.
        let pooled = ("cls", Some(vec![n(), Dim::Fixed(4)]));
        let m = vit_tail(true, vec![], &[seq.clone(), pooled]);
        assert_eq!(find_penultimate(&m).ok(), Some(feature("cls", 4)));
        // Without a declared shape the CLS token's rank comes from the Gather.
        let m = vit_tail(true, vec![], &[seq.clone(), ("cls", None)]);
        assert_eq!(
            find_penultimate(&m).ok(),
            Some(FeatureTensor {
                name: "cls".into(),
                dim: None
            })
        );
        // Sequences alone are still no features.
        let e = err(&vit_tail(true, vec![], &[seq]));
        assert!(e.contains("no fully connected head found"), "{e}");
    }

    /// The TorchScript exporter declares graph outputs but nothing inside the
    /// graph: a final MatMul's input then gets its rank from the declared
    /// output, with or without a bias.
    #[test]
    fn a_projection_input_gets_its_rank_from_the_declared_output() {
        let n = || Dim::Named("N".into());
        let projection = || vec![node("MatMul", "proj", &["cls", "proj"], &["emb"], vec![])];
        let m = vit_tail(
            false,
            projection(),
            &[("emb", Some(vec![n(), Dim::Fixed(3)]))],
        );
        assert_eq!(find_penultimate(&m).ok(), Some(feature("cls", 4)));

        let mut biased = projection();
        biased.push(node("Add", "b", &["emb", "bias"], &["logits"], vec![]));
        let m = vit_tail(false, biased, &[("logits", Some(vec![n(), Dim::Fixed(3)]))]);
        assert_eq!(find_penultimate(&m).ok(), Some(feature("cls", 4)));

        // A per-token projection [N, T, 3] is no head on a vector.
        let per_token = vec![node("MatMul", "proj", &["seq", "proj"], &["emb"], vec![])];
        let dims = vec![n(), Dim::Fixed(5), Dim::Fixed(3)];
        let e = err(&vit_tail(false, per_token, &[("emb", Some(dims))]));
        assert!(
            e.contains("`seq` of the final MatMul `proj` has rank 3"),
            "{e}"
        );
        // Nothing declared anywhere: still unknown, and said so.
        let e = err(&vit_tail(false, projection(), &[("emb", None)]));
        assert!(e.contains("cannot tell whether `cls`"), "{e}");
    }

    /// Issue #12: `--features` on a 4-D tensor was flattened silently.
    #[test]
    fn four_d_feature_tensor_is_refused() {
        let m = load(test_model!("e_no_head.onnx"));
        match check_feature_tensor(&m, "pooled") {
            Err(OnnxError::FeatureShape {
                tensor,
                shape,
                pooled,
            }) => {
                assert_eq!(tensor, "pooled");
                assert_eq!(shape, "[N, 16, 1, 1]");
                assert!(pooled.is_empty(), "{pooled:?}");
            }
            other => panic!("expected FeatureShape, got {other:?}"),
        }
        // Rank from the graph (Conv, Relu), shape not declared.
        let e = check_feature_tensor(&m, "act").map_err(|e| e.to_string());
        assert!(
            matches!(&e, Err(s) if s.contains("`act` has shape [?, ?, ?, ?], not [batch, features]")),
            "{e:?}"
        );

        let m = load(test_model!("a_torchvision.onnx"));
        let Err(e) = check_feature_tensor(&m, "/avgpool/GlobalAveragePool_output_0") else {
            panic!("a [N, C, 1, 1] pool is not a feature vector")
        };
        assert!(e.to_string().contains("has shape [?, ?, ?, ?]"), "{e}");
        assert!(
            matches!(&e, OnnxError::FeatureShape { pooled, .. }
                if pooled == &["`/Flatten_output_0` (Flatten)"]),
            "{e:?}"
        );
        // 2-D tensors and tensors of unknown rank pass.
        assert!(check_feature_tensor(&m, "/Flatten_output_0").is_ok());
        assert!(check_feature_tensor(&m, "logits").is_ok());
        let m = matmul_graph(None, vec![], "x");
        assert!(check_feature_tensor(&m, "x").is_ok());
    }

    #[test]
    fn malformed_models_are_errors_not_panics() {
        let empty = ModelProto::new();
        assert!(matches!(find_penultimate(&empty), Err(OnnxError::Graph(_))));
        let mut m = ModelProto::new();
        m.graph = MessageField::some(GraphProto::new());
        assert!(err(&m).contains("the graph has no outputs"));

        // A Gemm with a 3-D weight, and an output nobody produces.
        let mut g = GraphProto::new();
        g.node.push(node("Gemm", "fc", &["x", "w"], &["y"], vec![]));
        g.initializer.push(tensor_f32("w", &[2, 2, 1], &[0.0; 4]));
        g.output.push(value_info("y", DataType::FLOAT, &[]));
        g.output.push(value_info("z", DataType::FLOAT, &[]));
        let e = err(&model(g, &[]));
        assert!(
            e.contains("not 2-D") || e.contains("not produced by any node"),
            "{e}"
        );

        let mut g = GraphProto::new();
        g.node.push(node("Gemm", "fc", &["x"], &["y"], vec![]));
        g.output.push(value_info("y", DataType::FLOAT, &[]));
        assert!(err(&model(g, &[])).contains("fewer than two inputs"));
    }

    #[test]
    fn expose_output_adds_a_decodable_output() {
        for (file, tensor, batch) in [
            (
                test_model!("a_torchvision.onnx"),
                "/Flatten_output_0",
                "batch_size",
            ),
            (test_model!("b_fixed_batch.onnx"), "/Flatten_output_0", "1"),
            (
                test_model!("c_keras.onnx"),
                "model/global_average_pooling2d/Mean:0",
                "unk__12",
            ),
        ] {
            let mut m = load(file);
            expose_output(&mut m, tensor, Some(16)).unwrap_or_else(|e| panic!("{e}"));
            let bytes = encode_model(&m).unwrap_or_else(|e| panic!("{e}"));
            let back = decode_model(&bytes, Path::new(file)).unwrap_or_else(|e| panic!("{e}"));
            let graph = graph_of(&back).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(graph.output.len(), 2);
            let out = &graph.output[1];
            assert_eq!(out.name, tensor);
            let dims: Vec<String> = declared_dims(out)
                .unwrap_or_default()
                .iter()
                .map(|d| match &d.value {
                    Some(tensor_shape_proto::dimension::Value::DimValue(v)) => v.to_string(),
                    Some(tensor_shape_proto::dimension::Value::DimParam(p)) => p.clone(),
                    _ => "?".into(),
                })
                .collect();
            assert_eq!(dims, [batch, "16"]);
            // The original classifier output is still found first.
            assert_eq!(graph.output[0].name, m.graph.output[0].name);
            // Exposing twice changes nothing.
            expose_output(&mut m, tensor, Some(16)).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(m.graph.output.len(), 2);
        }
    }

    #[test]
    fn expose_output_leaves_shape_off_for_non_2d_tensors() {
        let mut m = load(test_model!("e_no_head.onnx"));
        expose_output(&mut m, "act", None).unwrap_or_else(|e| panic!("{e}"));
        let out = m.graph.output.last().unwrap_or_else(|| panic!("no output"));
        assert_eq!(out.name, "act");
        assert!(declared_dims(out).is_none());
    }

    #[test]
    fn expose_output_names_unknown_tensors() {
        let mut m = load(test_model!("a_torchvision.onnx"));
        let e = expose_output(&mut m, "flatten", None).map_err(|e| e.to_string());
        let Err(e) = e else {
            panic!("expected an error")
        };
        assert!(e.contains("`flatten`"), "{e}");
        assert!(e.contains("similar names: `/Flatten_output_0`"), "{e}");
        let e = expose_output(&mut m, "fc.weight", None).map_err(|e| e.to_string());
        assert!(matches!(e, Err(ref s) if s.contains("constant")), "{e:?}");
        assert_eq!(m.graph.output.len(), 1);
    }

    #[test]
    fn tensor_names_skip_initializers() {
        let mut m = load(test_model!("a_torchvision.onnx"));
        // Old exporters list weights as graph inputs too.
        let w = value_info(
            "fc.weight",
            DataType::FLOAT,
            &[Dim::Fixed(5), Dim::Fixed(16)],
        );
        m.graph
            .as_mut()
            .unwrap_or_else(|| panic!("no graph"))
            .input
            .push(w);
        let names = tensor_names(&m);
        assert_eq!(names.first().map(String::as_str), Some("input"));
        assert!(names.contains(&"/Flatten_output_0".to_string()));
        assert!(!names.contains(&"fc.weight".to_string()));
        assert_eq!(names.last().map(String::as_str), Some("logits"));
    }

    /// Writes the test models with their feature tensor exposed, for
    /// `scripts/make_test_models.py --verify-exposed DIR` (onnxruntime check).
    /// Run: `HEADSTART_EXPOSED_DIR=DIR cargo test -p headstart-onnx -- --ignored`.
    /// Without HEADSTART_EXPOSED_DIR the files go to a temporary folder and are read back.
    #[test]
    fn write_exposed_models() {
        let keep = std::env::var("HEADSTART_EXPOSED_DIR").ok();
        let tmp = std::env::temp_dir().join(format!(
            "headstart-write_exposed_models-{}",
            std::process::id()
        ));
        let dir = keep.clone().unwrap_or_else(|| tmp.display().to_string());
        std::fs::create_dir_all(&dir).unwrap();
        for file in [
            "a_torchvision.onnx",
            "b_fixed_batch.onnx",
            "c_keras.onnx",
            "d_reshape_gemm.onnx",
        ] {
            let path = format!(
                "{}/../../tests/data/models/{file}",
                env!("CARGO_MANIFEST_DIR")
            );
            let mut m = load(&path);
            let f = find_penultimate(&m).unwrap_or_else(|e| panic!("{e}"));
            expose_output(&mut m, &f.name, f.dim).unwrap_or_else(|e| panic!("{e}"));
            let bytes = encode_model(&m).unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(Path::new(&dir).join(file), bytes).unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(
            crate::read_back_models(Path::new(&dir)) > 0,
            "nothing written to {dir}"
        );
        if keep.is_none() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
}
