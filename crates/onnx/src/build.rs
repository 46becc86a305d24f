//! Builders for the ONNX pieces headstart writes: float initializers, nodes with
//! attributes, typed graph inputs and outputs, and whole models.

use crate::proto::{
    self, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto,
};
use protobuf::{EnumOrUnknown, MessageField};

/// The ONNX IR version headstart writes (ONNX 1.10+, readable by every ORT >= 1.10).
pub const IR_VERSION: i64 = 8;
/// The default-domain opset headstart writes.
pub const OPSET: i64 = 13;

/// A float32 initializer with the given name, shape and values (raw little-endian).
pub fn tensor_f32(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.to_string();
    t.dims = dims.to_vec();
    t.data_type = DataType::FLOAT as i32;
    t.raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    t
}

/// An int64 initializer (shapes, axes).
pub fn tensor_i64(name: &str, dims: &[i64], values: &[i64]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.to_string();
    t.dims = dims.to_vec();
    t.data_type = DataType::INT64 as i32;
    t.raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    t
}

/// An attribute value for [`node`].
// Attributes are built once per node; boxing the tensor would only cost callers.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Attr {
    /// An `INT` attribute.
    Int(i64),
    /// An `INTS` attribute.
    Ints(Vec<i64>),
    /// A `FLOAT` attribute.
    Float(f32),
    /// A `FLOATS` attribute.
    Floats(Vec<f32>),
    /// A `STRING` attribute (stored as UTF-8 bytes).
    Str(String),
    /// A `TENSOR` attribute (e.g. the value of a `Constant` node).
    Tensor(TensorProto),
}

/// A node of `op_type` with the given inputs, outputs and attributes.
pub fn node(
    op_type: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attrs: Vec<(&str, Attr)>,
) -> NodeProto {
    let mut n = NodeProto::new();
    n.op_type = op_type.to_string();
    n.name = name.to_string();
    n.input = inputs.iter().map(|s| s.to_string()).collect();
    n.output = outputs.iter().map(|s| s.to_string()).collect();
    n.attribute = attrs
        .into_iter()
        .map(|(k, v)| {
            let mut a = AttributeProto::new();
            a.name = k.to_string();
            let ty = match v {
                Attr::Int(i) => {
                    a.i = i;
                    AttributeType::INT
                }
                Attr::Ints(is) => {
                    a.ints = is;
                    AttributeType::INTS
                }
                Attr::Float(f) => {
                    a.f = f;
                    AttributeType::FLOAT
                }
                Attr::Floats(fs) => {
                    a.floats = fs;
                    AttributeType::FLOATS
                }
                Attr::Str(s) => {
                    a.s = s.into_bytes();
                    AttributeType::STRING
                }
                Attr::Tensor(t) => {
                    a.t = MessageField::some(t);
                    AttributeType::TENSOR
                }
            };
            a.type_ = EnumOrUnknown::new(ty);
            a
        })
        .collect();
    n
}

/// A dimension of a value info: fixed size or symbolic name.
#[derive(Debug, Clone)]
pub enum Dim {
    /// A fixed size (`dim_value`).
    Fixed(i64),
    /// A symbolic dimension (`dim_param`), e.g. `batch`.
    Named(String),
}

/// A typed tensor value info (graph input or output).
pub fn value_info(name: &str, elem: DataType, dims: &[Dim]) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    shape.dim = dims
        .iter()
        .map(|d| {
            let mut dim = tensor_shape_proto::Dimension::new();
            dim.value = Some(match d {
                Dim::Fixed(v) => tensor_shape_proto::dimension::Value::DimValue(*v),
                Dim::Named(s) => tensor_shape_proto::dimension::Value::DimParam(s.clone()),
            });
            dim
        })
        .collect();
    let mut tensor = proto::type_proto::Tensor::new();
    tensor.elem_type = elem as i32;
    tensor.shape = MessageField::some(shape);
    let mut ty = TypeProto::new();
    ty.value = Some(proto::type_proto::Value::TensorType(tensor));
    let mut vi = ValueInfoProto::new();
    vi.name = name.to_string();
    vi.type_ = MessageField::some(ty);
    vi
}

/// Wraps a graph into a model with headstart's IR version and opset, and metadata.
pub fn model(graph: GraphProto, metadata: &[(&str, &str)]) -> ModelProto {
    let mut m = ModelProto::new();
    m.ir_version = IR_VERSION;
    let mut opset = OperatorSetIdProto::new();
    opset.domain = String::new();
    opset.version = OPSET;
    m.opset_import = vec![opset];
    m.producer_name = "headstart".into();
    m.producer_version = env!("CARGO_PKG_VERSION").into();
    m.metadata_props = metadata
        .iter()
        .map(|(k, v)| {
            let mut e = StringStringEntryProto::new();
            e.key = k.to_string();
            e.value = v.to_string();
            e
        })
        .collect();
    m.graph = MessageField::some(graph);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use protobuf::Message;

    #[test]
    fn model_round_trips_through_protobuf() {
        let mut g = GraphProto::new();
        g.name = "t".into();
        g.node.push(node("Relu", "r", &["x"], &["y"], vec![]));
        g.input.push(value_info(
            "x",
            DataType::FLOAT,
            &[Dim::Named("N".into()), Dim::Fixed(3)],
        ));
        g.output.push(value_info(
            "y",
            DataType::FLOAT,
            &[Dim::Named("N".into()), Dim::Fixed(3)],
        ));
        g.initializer.push(tensor_f32("w", &[3], &[1.0, 2.0, 3.0]));
        let m = model(g, &[("k", "v")]);
        let bytes = m.write_to_bytes().unwrap();
        let back = ModelProto::parse_from_bytes(&bytes).unwrap();
        assert_eq!(back.graph.node[0].op_type, "Relu");
        assert_eq!(back.graph.initializer[0].raw_data.len(), 12);
        assert_eq!(back.metadata_props[0].value, "v");
        assert_eq!(back.opset_import[0].version, OPSET);
    }
}
