//! Post-training int8 quantisation of a float CNN as a QDQ graph, the form ONNX
//! Runtime fuses into integer kernels (`QLinearConv`, `QLinearAdd`; VNNI on
//! CPUs that have it).
//!
//! - **Weights**: every `Conv` weight, per output channel, symmetric int8
//!   (`scale = max|w| / 127`); its bias int32 at `input scale x weight scale`.
//! - **Activations**: uint8, asymmetric, with ranges measured on calibration
//!   images ([`calibration_tensors`] names them, [`with_outputs`] exposes them,
//!   [`RangeObserver`] turns their values into ranges). Quantised: the input of
//!   every quantised `Conv`, its output (or, when its only consumer is a
//!   `Relu`/`Clip`, that activation's output, so ONNX Runtime drops the
//!   activation into the quantisation), and the inputs and output of every `Add`
//!   of two activations.
//! - Everything else (pooling, the classifier `Gemm`, graph outputs) stays float
//!   and reads dequantised values; [`QuantizeOptions::keep_float`] keeps chosen
//!   `Conv` nodes (by name) float as well.

use std::collections::{HashMap, HashSet};

use crate::OnnxError;
use crate::build::{Attr, node};
use crate::proto::{ModelProto, NodeProto, TensorProto, tensor_proto::DataType};

/// A calibrated activation range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActRange {
    /// Lowest value kept (values below saturate).
    pub min: f32,
    /// Highest value kept.
    pub max: f32,
}

/// Options of [`quantize`].
#[derive(Debug, Clone, Default)]
pub struct QuantizeOptions {
    /// Names of `Conv` nodes to keep in float.
    pub keep_float: Vec<String>,
}

/// Ops whose output a following quantisation can absorb (ONNX Runtime removes
/// a `Relu`/`Clip` followed by a `QuantizeLinear` whose range lies inside it).
const ABSORBED: [&str; 2] = ["Relu", "Clip"];

fn float_initializers(model: &ModelProto) -> HashMap<&str, &TensorProto> {
    model
        .graph
        .initializer
        .iter()
        .filter(|t| t.data_type == DataType::FLOAT as i32)
        .map(|t| (t.name.as_str(), t))
        .collect()
}

/// What gets quantised: the `Conv` nodes (indices) and the activation tensors.
struct Plan {
    convs: Vec<usize>,
    tensors: Vec<String>,
}

fn plan(model: &ModelProto, opts: &QuantizeOptions) -> Result<Plan, OnnxError> {
    let g = &model.graph;
    let opset = model
        .opset_import
        .iter()
        .filter(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .max()
        .unwrap_or(0);
    if opset < 13 {
        return Err(OnnxError::Graph(format!(
            "int8 quantisation needs opset 13 or newer (per-channel QuantizeLinear); this model has opset {opset}: export it again with opset_version=13 or newer"
        )));
    }
    let inits = float_initializers(model);
    let conv_names: Vec<&str> = g
        .node
        .iter()
        .filter(|n| n.op_type == "Conv")
        .map(|n| n.name.as_str())
        .collect();
    if let Some(missing) = opts
        .keep_float
        .iter()
        .find(|k| !conv_names.contains(&k.as_str()))
    {
        return Err(OnnxError::Graph(format!(
            "no Conv node named `{missing}` to keep in float; the model's Conv nodes include {}",
            conv_names
                .iter()
                .take(5)
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let outputs: HashSet<&str> = g.output.iter().map(|o| o.name.as_str()).collect();
    let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, n) in g.node.iter().enumerate() {
        for x in &n.input {
            consumers.entry(x.as_str()).or_default().push(i);
        }
    }
    let mut tensors: Vec<String> = Vec::new();
    let mut mark = |t: &str| {
        if !outputs.contains(t) && !inits.contains_key(t) && !tensors.iter().any(|x| x == t) {
            tensors.push(t.to_string());
        }
    };
    let mut convs = Vec::new();
    for (i, n) in g.node.iter().enumerate() {
        match n.op_type.as_str() {
            "Conv"
                if n.input.len() >= 2
                    && inits.contains_key(n.input[1].as_str())
                    && !opts.keep_float.contains(&n.name) =>
            {
                convs.push(i);
                mark(&n.input[0]);
                let y = n.output[0].as_str();
                match consumers.get(y).map(Vec::as_slice) {
                    Some([c]) if ABSORBED.contains(&g.node[*c].op_type.as_str()) => {
                        mark(&g.node[*c].output[0]);
                    }
                    _ => mark(y),
                }
            }
            "Add"
                if n.input.len() == 2
                    && n.input.iter().all(|x| !inits.contains_key(x.as_str())) =>
            {
                mark(&n.input[0]);
                mark(&n.input[1]);
                mark(&n.output[0]);
            }
            _ => {}
        }
    }
    Ok(Plan { convs, tensors })
}

/// The activation tensors whose ranges [`quantize`] needs, in graph order.
pub fn calibration_tensors(
    model: &ModelProto,
    opts: &QuantizeOptions,
) -> Result<Vec<String>, OnnxError> {
    Ok(plan(model, opts)?.tensors)
}

/// A copy of `model` that also outputs `tensors` (float, any shape), to
/// measure them on calibration images.
pub fn with_outputs(model: &ModelProto, tensors: &[String]) -> ModelProto {
    let mut m = model.clone();
    let have: HashSet<String> = m.graph.output.iter().map(|o| o.name.clone()).collect();
    let g = m.graph.mut_or_insert_default();
    for t in tensors.iter().filter(|t| !have.contains(*t)) {
        let mut tensor = crate::proto::type_proto::Tensor::new();
        tensor.elem_type = DataType::FLOAT as i32;
        let mut ty = crate::proto::TypeProto::new();
        ty.value = Some(crate::proto::type_proto::Value::TensorType(tensor));
        let mut vi = crate::proto::ValueInfoProto::new();
        vi.name = t.clone();
        vi.type_ = protobuf::MessageField::some(ty);
        g.output.push(vi);
    }
    m
}

/// Turns observed activation values into ranges: per batch, the
/// `percentile`-th and `(100 - percentile)`-th percentiles of each tensor's
/// values, averaged over batches (outliers saturate instead of stretching the
/// scale for everything else).
#[derive(Debug, Clone)]
pub struct RangeObserver {
    percentile: f64,
    sums: HashMap<String, (f64, f64, usize)>,
}

impl RangeObserver {
    /// An observer cutting at `percentile` (e.g. 99.99; 100 is min/max).
    pub fn new(percentile: f64) -> RangeObserver {
        RangeObserver {
            percentile: percentile.clamp(50.0, 100.0),
            sums: HashMap::new(),
        }
    }

    /// Adds one batch's values of `tensor`.
    pub fn observe(&mut self, tensor: &str, values: &[f32]) {
        let mut v: Vec<f32> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return;
        }
        let n = v.len();
        let cut = ((1.0 - self.percentile / 100.0) * n as f64).floor() as usize;
        let hi_at = n - 1 - cut.min(n - 1);
        let lo_at = cut.min(n - 1);
        let hi = *v.select_nth_unstable_by(hi_at, f32::total_cmp).1;
        let lo = *v.select_nth_unstable_by(lo_at, f32::total_cmp).1;
        let e = self.sums.entry(tensor.to_string()).or_insert((0.0, 0.0, 0));
        e.0 += f64::from(lo);
        e.1 += f64::from(hi);
        e.2 += 1;
    }

    /// The ranges observed so far.
    pub fn ranges(&self) -> HashMap<String, ActRange> {
        self.sums
            .iter()
            .map(|(k, &(lo, hi, n))| {
                let n = n.max(1) as f64;
                (
                    k.clone(),
                    ActRange {
                        min: (lo / n) as f32,
                        max: (hi / n) as f32,
                    },
                )
            })
            .collect()
    }
}

/// uint8 scale and zero point of a range (extended to include 0, as ONNX
/// requires zero to be exact).
fn act_params(r: ActRange) -> (f32, u8) {
    let (lo, hi) = (r.min.min(0.0), r.max.max(0.0));
    let scale = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
    let zp = (-lo / scale).round().clamp(0.0, 255.0) as u8;
    (scale, zp)
}

fn raw_f32(t: &TensorProto) -> Result<Vec<f32>, OnnxError> {
    if !t.raw_data.is_empty() {
        return Ok(t
            .raw_data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect());
    }
    if !t.float_data.is_empty() {
        return Ok(t.float_data.clone());
    }
    Err(OnnxError::Graph(format!(
        "initializer `{}` has no data in the file",
        t.name
    )))
}

/// A per-channel (axis 0) quantised copy of the initializer `name`: the
/// quantised values `(dims, type, raw bytes)`, their `scales` and zero points
/// go into `inits` as `name/q/{tag}`, `..._scale` and `..._zp`, a
/// DequantizeLinear into `nodes`; returns the name of its float output,
/// which replaces `name` as the consumer's input.
fn per_channel(
    name: &str,
    tag: &str,
    (dims, ty, raw): (&[i64], DataType, Vec<u8>),
    scales: &[f32],
    inits: &mut Vec<TensorProto>,
    nodes: &mut Vec<NodeProto>,
) -> String {
    let base = format!("{name}/q");
    let channels = scales.len();
    let values = format!("{base}/{tag}");
    let (scale, zero) = (format!("{values}_scale"), format!("{values}_zp"));
    let zero_bytes = if ty == DataType::INT32 { 4 } else { 1 } * channels;
    inits.push(tensor(&values, dims, ty, raw));
    inits.push(crate::build::tensor_f32(&scale, &[channels as i64], scales));
    inits.push(tensor(&zero, &[channels as i64], ty, vec![0; zero_bytes]));
    let out = format!("{base}/dq");
    nodes.push(node(
        "DequantizeLinear",
        &out,
        &[&values, &scale, &zero],
        &[&out],
        vec![("axis", Attr::Int(0))],
    ));
    out
}

fn tensor(name: &str, dims: &[i64], ty: DataType, raw: Vec<u8>) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.to_string();
    t.dims = dims.to_vec();
    t.data_type = ty as i32;
    t.raw_data = raw;
    t
}

/// `model` with QDQ pairs inserted (see the module docs); `ranges` must hold
/// every tensor of [`calibration_tensors`].
pub fn quantize(
    model: &ModelProto,
    ranges: &HashMap<String, ActRange>,
    opts: &QuantizeOptions,
) -> Result<ModelProto, OnnxError> {
    let plan = plan(model, opts)?;
    let mut m = model.clone();
    let mut params: HashMap<String, (f32, u8)> = HashMap::new();
    for t in &plan.tensors {
        let r = ranges
            .get(t)
            .ok_or_else(|| OnnxError::Graph(format!("no calibration range for tensor `{t}`")))?;
        params.insert(t.clone(), act_params(*r));
    }
    let inits: HashMap<String, TensorProto> = float_initializers(model)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let mut new_inits: Vec<TensorProto> = Vec::new();
    let mut replaced_inits: HashSet<String> = HashSet::new();
    // Weights and biases of the quantised convolutions.
    let mut conv_inputs: HashMap<usize, Vec<String>> = HashMap::new();
    let mut prologue: HashMap<usize, Vec<NodeProto>> = HashMap::new();
    for &i in &plan.convs {
        let n = &model.graph.node[i];
        let Some(&(sx, _)) = params.get(&n.input[0]) else {
            continue;
        };
        let w = &inits[&n.input[1]];
        let values = raw_f32(w)?;
        let cout = *w.dims.first().unwrap_or(&0) as usize;
        if cout == 0 || values.len() % cout != 0 {
            return Err(OnnxError::Graph(format!(
                "Conv `{}`: weight `{}` of shape {:?} has {} values",
                n.name,
                w.name,
                w.dims,
                values.len()
            )));
        }
        let per = values.len() / cout;
        let scales: Vec<f32> = values
            .chunks_exact(per)
            .map(|c| {
                let m = c.iter().fold(0f32, |a, v| a.max(v.abs()));
                if m > 0.0 { m / 127.0 } else { 1.0 }
            })
            .collect();
        let q: Vec<u8> = values
            .chunks_exact(per)
            .zip(&scales)
            .flat_map(|(c, s)| {
                c.iter()
                    .map(move |v| (v / s).round().clamp(-127.0, 127.0) as i8 as u8)
            })
            .collect();
        let mut nodes = Vec::new();
        let mut inputs = n.input.to_vec();
        inputs[1] = per_channel(
            &n.input[1],
            "w",
            (&w.dims, DataType::INT8, q),
            &scales,
            &mut new_inits,
            &mut nodes,
        );
        replaced_inits.insert(n.input[1].clone());
        if let Some(b) = n.input.get(2).and_then(|b| inits.get(b)) {
            let bias = raw_f32(b)?;
            if bias.len() != cout {
                return Err(OnnxError::Graph(format!(
                    "Conv `{}`: bias `{}` has {} values for {cout} channels",
                    n.name,
                    b.name,
                    bias.len()
                )));
            }
            let bscale: Vec<f32> = scales.iter().map(|s| s * sx).collect();
            let bq: Vec<u8> = bias
                .iter()
                .zip(&bscale)
                .flat_map(|(v, s)| {
                    ((v / s).round().clamp(i32::MIN as f32, i32::MAX as f32) as i32).to_le_bytes()
                })
                .collect();
            inputs[2] = per_channel(
                &b.name,
                "b",
                (&[cout as i64], DataType::INT32, bq),
                &bscale,
                &mut new_inits,
                &mut nodes,
            );
            replaced_inits.insert(b.name.clone());
        }
        conv_inputs.insert(i, inputs);
        prologue.insert(i, nodes);
    }
    // Activation QDQ pairs, right after each tensor's producer.
    let mut after: HashMap<String, Vec<NodeProto>> = HashMap::new();
    for t in &plan.tensors {
        let (scale, zp) = params[t];
        let s = format!("{t}/q_scale");
        let z = format!("{t}/q_zp");
        new_inits.push(crate::build::tensor_f32(&s, &[], &[scale]));
        new_inits.push(tensor(&z, &[], DataType::UINT8, vec![zp]));
        after.entry(t.clone()).or_default().extend([
            node(
                "QuantizeLinear",
                &format!("{t}/q"),
                &[t, &s, &z],
                &[&format!("{t}/q")],
                vec![],
            ),
            node(
                "DequantizeLinear",
                &format!("{t}/dq"),
                &[&format!("{t}/q"), &s, &z],
                &[&format!("{t}/dq")],
                vec![],
            ),
        ]);
    }
    let dq = |x: &str| -> String {
        if params.contains_key(x) {
            format!("{x}/dq")
        } else {
            x.to_string()
        }
    };
    let mut nodes: Vec<NodeProto> = Vec::new();
    // Graph inputs first.
    for i in &model.graph.input {
        if let Some(qdq) = after.remove(&i.name) {
            nodes.extend(qdq);
        }
    }
    for (i, n) in model.graph.node.iter().enumerate() {
        let mut n = n.clone();
        if let Some(inputs) = conv_inputs.remove(&i) {
            n.input = inputs;
        }
        n.input = n.input.iter().map(|x| dq(x)).collect();
        nodes.extend(prologue.remove(&i).unwrap_or_default());
        let outs = n.output.clone();
        nodes.push(n);
        for o in &outs {
            if let Some(qdq) = after.remove(o) {
                nodes.extend(qdq);
            }
        }
    }
    if let Some(t) = after.keys().next() {
        return Err(OnnxError::Graph(format!(
            "tensor `{t}` is neither a graph input nor produced by a node"
        )));
    }
    let g = m.graph.mut_or_insert_default();
    g.node = nodes;
    // Drop float initializers nothing reads any more.
    let used: HashSet<String> = g
        .node
        .iter()
        .flat_map(|n| n.input.iter().cloned())
        .collect();
    g.initializer
        .retain(|t| !replaced_inits.contains(&t.name) || used.contains(&t.name));
    g.initializer.extend(new_inits);
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{Dim, model, tensor_f32, value_info};
    use crate::proto::GraphProto;

    /// x -> Conv(w, b) -> Clip(0, 6) -> Conv(w2) -> Add(with the Clip output) -> GlobalAveragePool.
    fn tiny() -> ModelProto {
        let mut g = GraphProto::new();
        g.name = "tiny".into();
        let n = || Dim::Named("N".into());
        g.input.push(value_info(
            "x",
            DataType::FLOAT,
            &[n(), Dim::Fixed(2), Dim::Fixed(4), Dim::Fixed(4)],
        ));
        g.output.push(value_info(
            "feat",
            DataType::FLOAT,
            &[n(), Dim::Fixed(3), Dim::Fixed(1), Dim::Fixed(1)],
        ));
        g.initializer.push(tensor_f32(
            "w",
            &[3, 2, 1, 1],
            &[0.5, -1.0, 0.25, 0.75, -0.1, 0.2],
        ));
        g.initializer.push(tensor_f32("b", &[3], &[0.1, 0.0, -0.2]));
        g.initializer.push(tensor_f32(
            "w2",
            &[3, 3, 1, 1],
            &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        ));
        g.initializer.push(tensor_f32("lo", &[], &[0.0]));
        g.initializer.push(tensor_f32("hi", &[], &[6.0]));
        g.node
            .push(node("Conv", "c1", &["x", "w", "b"], &["y1"], vec![]));
        g.node
            .push(node("Clip", "r1", &["y1", "lo", "hi"], &["a1"], vec![]));
        g.node
            .push(node("Conv", "c2", &["a1", "w2"], &["y2"], vec![]));
        g.node
            .push(node("Add", "add", &["y2", "a1"], &["s"], vec![]));
        g.node
            .push(node("GlobalAveragePool", "gap", &["s"], &["feat"], vec![]));
        model(g, &[])
    }

    #[test]
    fn plans_inputs_activation_outputs_and_adds() {
        let m = tiny();
        let t = calibration_tensors(&m, &QuantizeOptions::default()).unwrap();
        // y1 is absorbed by the Clip: a1 is quantised instead.
        assert_eq!(t, ["x", "a1", "y2", "s"]);
        let keep = QuantizeOptions {
            keep_float: vec!["c1".into()],
        };
        assert_eq!(calibration_tensors(&m, &keep).unwrap(), ["a1", "y2", "s"]);
    }

    #[test]
    fn inserts_qdq_pairs_and_int8_weights() {
        let m = tiny();
        let ranges: HashMap<String, ActRange> = ["x", "a1", "y2", "s"]
            .iter()
            .map(|t| {
                (
                    t.to_string(),
                    ActRange {
                        min: -1.0,
                        max: 3.0,
                    },
                )
            })
            .collect();
        let q = quantize(&m, &ranges, &QuantizeOptions::default()).unwrap();
        let ops: Vec<&str> = q.graph.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops.iter().filter(|o| **o == "QuantizeLinear").count(), 4);
        // 4 activation DQs + 2 weight DQs + 1 bias DQ.
        assert_eq!(ops.iter().filter(|o| **o == "DequantizeLinear").count(), 7);
        let c1 = q.graph.node.iter().find(|n| n.name == "c1").unwrap();
        assert_eq!(c1.input, ["x/dq", "w/q/dq", "b/q/dq"]);
        let add = q.graph.node.iter().find(|n| n.name == "add").unwrap();
        assert_eq!(add.input, ["y2/dq", "a1/dq"]);
        // The float weights are gone; the int8 copy holds round(w / (max|w_c| / 127)).
        assert!(q.graph.initializer.iter().all(|t| t.name != "w"));
        let wq = q
            .graph
            .initializer
            .iter()
            .find(|t| t.name == "w/q/w")
            .unwrap();
        assert_eq!(wq.raw_data[..2], [64u8, (-127i8) as u8]);
        // Every node input is produced before it is read.
        let mut known: HashSet<String> =
            q.graph.initializer.iter().map(|t| t.name.clone()).collect();
        known.insert("x".into());
        for n in &q.graph.node {
            for i in &n.input {
                assert!(known.contains(i), "{} reads {i} before it exists", n.name);
            }
            known.extend(n.output.iter().cloned());
        }
        // A missing range is an error naming the tensor.
        let e = quantize(&m, &HashMap::new(), &QuantizeOptions::default()).unwrap_err();
        assert!(e.to_string().contains("`x`"), "{e}");
    }

    #[test]
    fn activation_params_make_zero_exact() {
        let (s, z) = act_params(ActRange { min: 0.0, max: 6.0 });
        assert_eq!(z, 0);
        assert!((s - 6.0 / 255.0).abs() < 1e-9);
        let (s, z) = act_params(ActRange {
            min: -1.0,
            max: 1.0,
        });
        assert!((127..=128).contains(&z), "{z}");
        assert!((s * 255.0 - 2.0).abs() < 1e-6);
    }

    #[test]
    fn observer_cuts_outliers() {
        let mut o = RangeObserver::new(99.0);
        let mut v: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
        v.push(1000.0);
        o.observe("t", &v);
        let r = o.ranges()["t"];
        assert!(r.max < 1.0 && r.max > 0.98, "{r:?}");
        assert!(r.min >= 0.0 && r.min < 0.02, "{r:?}");
    }
}
