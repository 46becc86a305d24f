//! A readable summary of an ONNX model for `models inspect`: inputs, outputs,
//! opsets, producer, parameter count and the feature tensor headstart would
//! extract.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::OnnxError;
use crate::features::{FeatureTensor, declared_dims, find_penultimate};
use crate::proto::{
    ModelProto, ValueInfoProto, tensor_proto::DataType, tensor_shape_proto, type_proto,
};
use protobuf::Enum;

/// What a model looks like from the outside; `Display` is a multi-line report
/// and `Serialize` gives the same as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    /// File size in bytes (as given by the caller).
    pub size_bytes: u64,
    /// ONNX IR version (8 = ONNX 1.10).
    pub ir_version: i64,
    /// Exporter, e.g. `pytorch`, `tf2onnx`; may be empty.
    pub producer_name: String,
    /// Exporter version; may be empty.
    pub producer_version: String,
    /// Operator sets, in the model's order; the default domain is `ai.onnx`.
    pub opsets: Vec<Opset>,
    /// Name of the main graph; may be empty.
    pub graph_name: String,
    /// Nodes of the main graph (subgraphs not counted).
    pub node_count: usize,
    /// Elements in all initializers (weights, biases and small constants).
    pub parameter_count: u64,
    /// Graph inputs, excluding initializers that old exporters also list as inputs.
    pub inputs: Vec<TensorInfo>,
    /// Graph outputs.
    pub outputs: Vec<TensorInfo>,
    /// The tensor [`find_penultimate`] picks, or why there is none.
    #[serde(serialize_with = "serialize_features")]
    pub features: Result<FeatureTensor, String>,
}

/// One operator set import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Opset {
    /// `ai.onnx` for the default domain, else e.g. `com.microsoft`.
    pub domain: String,
    /// Opset version of that domain.
    pub version: i64,
}

/// A graph input or output: name, element type and dimensions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TensorInfo {
    /// Tensor name in the graph.
    pub name: String,
    /// `float32`, `int64`, ...; `sequence`, `map`, ... for non-tensor types.
    pub elem_type: String,
    /// `None` when the shape is not declared.
    pub dims: Option<Vec<DimInfo>>,
}

/// One dimension: a fixed size, a symbolic name such as `batch_size`, or
/// unknown. Serialized as a number, a string or `null`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DimInfo {
    /// A fixed size.
    Fixed(i64),
    /// A named dimension, e.g. `batch_size`.
    Symbolic(String),
    /// Neither size nor name is given.
    Unknown,
}

impl Serialize for DimInfo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            DimInfo::Fixed(v) => s.serialize_i64(*v),
            DimInfo::Symbolic(name) => s.serialize_str(name),
            DimInfo::Unknown => s.serialize_none(),
        }
    }
}

impl fmt::Display for DimInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DimInfo::Fixed(v) => write!(f, "{v}"),
            DimInfo::Symbolic(name) => f.write_str(name),
            DimInfo::Unknown => f.write_str("?"),
        }
    }
}

/// `{"name": ..., "dim": ...}` on success, `{"error": "..."}` otherwise.
fn serialize_features<S: Serializer>(
    features: &Result<FeatureTensor, String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Failure<'a> {
        error: &'a str,
    }
    match features {
        Ok(f) => f.serialize(s),
        Err(error) => Failure { error }.serialize(s),
    }
}

/// Summarizes `model`, whose file is `size_bytes` long. Never fails: a model
/// without a graph gives empty lists and the reason in `features`.
pub fn summarize(model: &ModelProto, size_bytes: u64) -> ModelSummary {
    let graph = model.graph.as_ref();
    let initializers: std::collections::HashSet<&str> = graph
        .map(|g| g.initializer.iter().map(|t| t.name.as_str()).collect())
        .unwrap_or_default();
    let parameter_count = graph
        .map(|g| {
            let dense = g.initializer.iter().map(|t| element_count(&t.dims));
            let sparse = g.sparse_initializer.iter().map(|t| {
                t.values
                    .as_ref()
                    .map(|v| element_count(&v.dims))
                    .unwrap_or(0)
            });
            dense.chain(sparse).fold(0u64, u64::saturating_add)
        })
        .unwrap_or(0);
    ModelSummary {
        size_bytes,
        ir_version: model.ir_version,
        producer_name: model.producer_name.clone(),
        producer_version: model.producer_version.clone(),
        opsets: model
            .opset_import
            .iter()
            .map(|o| Opset {
                domain: if o.domain.is_empty() {
                    "ai.onnx".into()
                } else {
                    o.domain.clone()
                },
                version: o.version,
            })
            .collect(),
        graph_name: graph.map(|g| g.name.clone()).unwrap_or_default(),
        node_count: graph.map_or(0, |g| g.node.len()),
        parameter_count,
        inputs: graph
            .map(|g| {
                g.input
                    .iter()
                    .filter(|i| !initializers.contains(i.name.as_str()))
                    .map(tensor_info)
                    .collect()
            })
            .unwrap_or_default(),
        outputs: graph
            .map(|g| g.output.iter().map(tensor_info).collect())
            .unwrap_or_default(),
        features: find_penultimate(model).map_err(|e| match e {
            OnnxError::Features { why, .. } => why,
            other => other.to_string(),
        }),
    }
}

/// Product of non-negative dims (a scalar has one element); negative dims count as 0.
fn element_count(dims: &[i64]) -> u64 {
    dims.iter()
        .map(|&d| u64::try_from(d).unwrap_or(0))
        .fold(1u64, u64::saturating_mul)
}

fn tensor_info(vi: &ValueInfoProto) -> TensorInfo {
    let elem_type = match vi.type_.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => elem_type_name(t.elem_type),
        Some(type_proto::Value::SparseTensorType(t)) => {
            format!("sparse {}", elem_type_name(t.elem_type))
        }
        Some(type_proto::Value::SequenceType(_)) => "sequence".into(),
        Some(type_proto::Value::MapType(_)) => "map".into(),
        Some(type_proto::Value::OptionalType(_)) => "optional".into(),
        Some(_) | None => "unknown".into(),
    };
    let dims = declared_dims(vi).map(|dims| {
        dims.iter()
            .map(|d| match &d.value {
                Some(tensor_shape_proto::dimension::Value::DimValue(v)) => DimInfo::Fixed(*v),
                Some(tensor_shape_proto::dimension::Value::DimParam(p)) if !p.is_empty() => {
                    DimInfo::Symbolic(p.clone())
                }
                _ => DimInfo::Unknown,
            })
            .collect()
    });
    TensorInfo {
        name: vi.name.clone(),
        elem_type,
        dims,
    }
}

/// numpy-style name of an ONNX element type.
fn elem_type_name(code: i32) -> String {
    let name = match DataType::from_i32(code) {
        Some(DataType::FLOAT) => "float32",
        Some(DataType::FLOAT16) => "float16",
        Some(DataType::BFLOAT16) => "bfloat16",
        Some(DataType::DOUBLE) => "float64",
        Some(DataType::UINT8) => "uint8",
        Some(DataType::INT8) => "int8",
        Some(DataType::UINT16) => "uint16",
        Some(DataType::INT16) => "int16",
        Some(DataType::UINT32) => "uint32",
        Some(DataType::INT32) => "int32",
        Some(DataType::UINT64) => "uint64",
        Some(DataType::INT64) => "int64",
        Some(DataType::BOOL) => "bool",
        Some(DataType::STRING) => "string",
        Some(DataType::COMPLEX64) => "complex64",
        Some(DataType::COMPLEX128) => "complex128",
        Some(DataType::UNDEFINED) => "undefined",
        Some(other) => return format!("{other:?}").to_lowercase(),
        None => return format!("type {code}"),
    };
    name.into()
}

/// Bytes as B / KiB / MiB / GiB with one decimal.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// 5288548 -> "5,288,548".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn write_tensors(f: &mut fmt::Formatter<'_>, title: &str, list: &[TensorInfo]) -> fmt::Result {
    writeln!(f, "{title}:")?;
    if list.is_empty() {
        return writeln!(f, "  (none)");
    }
    let width = list.iter().map(|t| t.name.len()).max().unwrap_or(0);
    for t in list {
        let shape = match &t.dims {
            Some(dims) => format!(
                "[{}]",
                dims.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => "(shape not declared)".into(),
        };
        writeln!(f, "  {:<width$}  {} {shape}", t.name, t.elem_type)?;
    }
    Ok(())
}

impl fmt::Display for ModelSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let producer = match (self.producer_name.as_str(), self.producer_version.as_str()) {
            ("", _) => "unknown".to_string(),
            (name, "") => name.to_string(),
            (name, version) => format!("{name} {version}"),
        };
        writeln!(f, "producer:   {producer}")?;
        writeln!(f, "size:       {}", human_size(self.size_bytes))?;
        let opsets = self
            .opsets
            .iter()
            .map(|o| format!("{} {}", o.domain, o.version))
            .collect::<Vec<_>>()
            .join(", ");
        writeln!(
            f,
            "format:     IR version {}, opsets {}",
            self.ir_version, opsets
        )?;
        let name = if self.graph_name.is_empty() {
            String::new()
        } else {
            format!("`{}`, ", self.graph_name)
        };
        writeln!(
            f,
            "graph:      {name}{} nodes, {} parameters",
            self.node_count,
            thousands(self.parameter_count)
        )?;
        write_tensors(f, "inputs", &self.inputs)?;
        write_tensors(f, "outputs", &self.outputs)?;
        match &self.features {
            Ok(FeatureTensor { name, dim: Some(d) }) => {
                write!(f, "features:   `{name}` ({d} values per image)")
            }
            Ok(FeatureTensor { name, dim: None }) => {
                write!(f, "features:   `{name}` (size not declared)")
            }
            Err(why) => write!(f, "features:   none found: {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load_model;
    use std::path::Path;

    fn summary(file: &str) -> ModelSummary {
        let path = format!(
            "{}/../../tests/data/models/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let model = load_model(Path::new(&path)).unwrap_or_else(|e| panic!("{e}"));
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        summarize(&model, size)
    }

    #[test]
    fn summary_of_torchvision_model() {
        let s = summary("a_torchvision.onnx");
        assert_eq!(s.producer_name, "pytorch");
        assert_eq!(s.ir_version, 8);
        assert_eq!(
            s.opsets,
            [Opset {
                domain: "ai.onnx".into(),
                version: 17
            }]
        );
        // conv 16*3*3*3 + 16, fc 5*16 + 5
        assert_eq!(s.parameter_count, 432 + 16 + 80 + 5);
        assert_eq!(s.inputs.len(), 1);
        assert_eq!(s.inputs[0].elem_type, "float32");
        assert_eq!(
            s.inputs[0].dims,
            Some(vec![
                DimInfo::Symbolic("batch_size".into()),
                DimInfo::Fixed(3),
                DimInfo::Fixed(8),
                DimInfo::Fixed(8)
            ])
        );
        assert_eq!(s.outputs[0].name, "logits");
        let text = s.to_string();
        assert!(
            text.contains("input  float32 [batch_size, 3, 8, 8]"),
            "{text}"
        );
        assert!(text.contains("logits  float32 [batch_size, 5]"), "{text}");
        assert!(text.contains("533 parameters"), "{text}");
        assert!(
            text.contains("features:   `/Flatten_output_0` (16 values per image)"),
            "{text}"
        );

        let json = serde_json::to_value(&s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            json["inputs"][0]["dims"],
            serde_json::json!(["batch_size", 3, 8, 8])
        );
        assert_eq!(
            json["features"],
            serde_json::json!({"name": "/Flatten_output_0", "dim": 16})
        );
    }

    #[test]
    fn summary_explains_missing_head() {
        let s = summary("e_no_head.onnx");
        let Err(why) = &s.features else {
            panic!("expected no features")
        };
        assert!(why.contains("GlobalAveragePool"), "{why}");
        assert!(s.to_string().contains("features:   none found: "));
        let json = serde_json::to_value(&s).unwrap_or_else(|e| panic!("{e}"));
        assert!(json["features"]["error"].is_string(), "{json}");
    }

    #[test]
    fn summary_of_model_without_graph() {
        let s = summarize(&ModelProto::new(), 0);
        assert!(s.inputs.is_empty() && s.outputs.is_empty());
        assert!(s.features.is_err());
        assert!(s.to_string().contains("(none)"));
    }

    #[test]
    fn weights_listed_as_inputs_are_not_inputs() {
        let path = format!(
            "{}/../../tests/data/models/c_keras.onnx",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut model = load_model(Path::new(&path)).unwrap_or_else(|e| panic!("{e}"));
        let w = crate::build::value_info("model/conv2d/Conv2D.weight", DataType::FLOAT, &[]);
        model
            .graph
            .as_mut()
            .unwrap_or_else(|| panic!("no graph"))
            .input
            .push(w);
        let s = summarize(&model, 0);
        assert_eq!(s.inputs.len(), 1);
        assert_eq!(s.inputs[0].name, "input_1");
        assert_eq!(s.inputs[0].dims.as_ref().map(Vec::len), Some(4));
    }

    #[test]
    fn sizes_and_counts_read_well() {
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(5 * 1024 * 1024 + 300 * 1024), "5.3 MiB");
        assert_eq!(thousands(5_288_548), "5,288,548");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(100), "100");
    }
}
