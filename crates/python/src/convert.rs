//! Python values to the library's option structs (through serde, so each
//! option is defined once, in `headstart_api::options`), and the library's
//! errors to Python exceptions of one type per kind.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The options `T` from keyword arguments named as its fields (the CLI's
/// flags in snake_case); `fixed` are set by the function's own parameters.
/// An unknown name, or a value of the wrong type, raises `TypeError` naming
/// the parameter; values out of range are checked by the library call.
pub fn options<T: Serialize + DeserializeOwned + Default>(
    function: &str,
    kwargs: Option<&Bound<'_, PyDict>>,
    fixed: &[(&str, Value)],
) -> PyResult<T> {
    let known: Vec<String> = match serde_json::to_value(T::default()) {
        Ok(Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    };
    let mut given = Map::new();
    for (k, v) in fixed {
        if !v.is_null() {
            given.insert(k.to_string(), v.clone());
        }
    }
    for (k, v) in kwargs.into_iter().flat_map(|d| d.iter()) {
        let key: String = k.extract()?;
        if !known.contains(&key) {
            return Err(PyTypeError::new_err(format!(
                "{function}() got an unexpected keyword argument '{key}'; it takes {}",
                known.join(", ")
            )));
        }
        let mut value = to_json(&v).map_err(|why| PyTypeError::new_err(format!("{key}: {why}")))?;
        if key == "max_file_size"
            && let Value::String(s) = &value
        {
            let bytes = headstart_api::options::parse_bytes(s)
                .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("{key}: {e}")))?;
            value = Value::from(bytes);
        }
        // Alone first, so that a wrong type names its parameter.
        let one = Value::Object(Map::from_iter([(key.clone(), value.clone())]));
        if let Err(e) = serde_json::from_value::<T>(one) {
            return Err(PyTypeError::new_err(format!("{key}: {e}")));
        }
        given.insert(key, value);
    }
    serde_json::from_value(Value::Object(given)).map_err(|e| PyTypeError::new_err(e.to_string()))
}

/// A Python value as JSON: None, bool, int, float, str, os.PathLike, and
/// lists, tuples and dicts of those.
pub fn to_json(v: &Bound<'_, PyAny>) -> Result<Value, String> {
    if v.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if v.cast::<PyInt>().is_ok() {
        return match v.extract::<i64>() {
            Ok(i) => Ok(Value::from(i)),
            Err(_) => v
                .extract::<u64>()
                .map(Value::from)
                .map_err(|_| "integer out of range".to_string()),
        };
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        return Ok(Value::from(f.value()));
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(Value::String(s.to_string()));
    }
    if v.cast::<PyList>().is_ok() || v.cast::<PyTuple>().is_ok() {
        let items: Vec<Value> = v
            .try_iter()
            .map_err(|e| e.to_string())?
            .map(|item| item.map_err(|e| e.to_string()).and_then(|i| to_json(&i)))
            .collect::<Result<_, _>>()?;
        return Ok(Value::Array(items));
    }
    if let Ok(d) = v.cast::<PyDict>() {
        let mut m = Map::new();
        for (k, v) in d.iter() {
            m.insert(
                k.str().map_err(|e| e.to_string())?.to_string(),
                to_json(&v)?,
            );
        }
        return Ok(Value::Object(m));
    }
    if let Ok(p) = v.extract::<std::path::PathBuf>() {
        return Ok(Value::String(p.display().to_string()));
    }
    let t = v
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into());
    Err(format!(
        "unexpected type {t}; use None, bool, int, float, str, a path or a list"
    ))
}

/// The exception types, made once: `Error` (the base), `UsageError` (also a
/// `ValueError`), `DataError` and `RuntimeError` (also the builtin one).
pub struct Exceptions {
    pub error: Py<PyType>,
    pub usage: Py<PyType>,
    pub data: Py<PyType>,
    pub runtime: Py<PyType>,
}

static EXCEPTIONS: PyOnceLock<Exceptions> = PyOnceLock::new();

/// The exception types, created on first use.
pub fn exceptions(py: Python<'_>) -> PyResult<&Exceptions> {
    EXCEPTIONS.get_or_try_init(py, || {
        let builtins = py.import("builtins")?;
        let type_ = builtins.getattr("type")?;
        let make = |name: &str, bases: Vec<Bound<'_, PyAny>>, doc: &str| -> PyResult<Py<PyType>> {
            let ns = PyDict::new(py);
            ns.set_item("__doc__", doc)?;
            ns.set_item("__module__", "headstart")?;
            let t = type_.call1((name, PyTuple::new(py, bases)?, ns))?;
            Ok(t.cast_into::<PyType>()?.unbind())
        };
        let exception = builtins.getattr("Exception")?;
        let error = make(
            "Error",
            vec![exception],
            "Base of headstart's errors. `str(e)` says what is wrong (the file, the option); \
             `e.fix` says what to do, when headstart knows; `e.parameter` names the option at fault.",
        )?;
        let base = error.bind(py).clone().into_any();
        let usage = make(
            "UsageError",
            vec![base.clone(), builtins.getattr("ValueError")?],
            "An option or combination of options is wrong, or an output folder is not headstart's: nothing was done.",
        )?;
        let data = make(
            "DataError",
            vec![base.clone()],
            "The data (images, caches, heads, models) cannot be used.",
        )?;
        let runtime = make(
            "RuntimeError",
            vec![base, builtins.getattr("RuntimeError")?],
            "ONNX Runtime, the backbone session or provisioning failed.",
        )?;
        Ok(Exceptions {
            error,
            usage,
            data,
            runtime,
        })
    })
}

/// The library error as a Python exception of its kind, with `fix` and
/// `parameter` attributes and the fix line in its message.
pub fn error(py: Python<'_>, e: headstart_api::Error) -> PyErr {
    let make = || -> PyResult<PyErr> {
        let ex = exceptions(py)?;
        let ty = match e.kind() {
            headstart_api::ErrorKind::Usage => &ex.usage,
            headstart_api::ErrorKind::Data => &ex.data,
            headstart_api::ErrorKind::Runtime => &ex.runtime,
        };
        let fix = e.fix();
        let mut msg = e.to_string();
        if let Some(f) = &fix {
            msg.push_str("\nfix: ");
            msg.push_str(f);
        }
        let value = ty.bind(py).call1((msg,))?;
        value.setattr("fix", fix)?;
        value.setattr("parameter", e.parameter().map(|(name, _, _)| name))?;
        Ok(PyErr::from_value(value))
    };
    make().unwrap_or_else(|err| err)
}
