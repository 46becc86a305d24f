//! The `headstart` Python module: each function is a thin conversion over one
//! call of `headstart-api` (the CLI's library), as py-polars is over polars.
//! Keyword arguments are the CLI's options in snake_case with its defaults;
//! features travel as Arrow data through the C data interface, never as
//! Python objects per image; the GIL is released while images are decoded
//! and the backbone runs.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use arrow_pyarrow::{FromPyArrow, ToPyArrow};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use serde_json::Value;

use headstart_api::options::{ExtractOptions, FitOptions, PredictOptions};
use headstart_api::{Env, ExtractorOptions};

mod arrow;
mod convert;

use convert::{error, options};

/// The environment: `home` (else `HEADSTART_HOME`, else ~/.cache/headstart),
/// `ort_lib` (else `ORT_DYLIB_PATH`, else the cached runtime); progress lines
/// on stderr unless `quiet`.
fn env(
    py: Python<'_>,
    home: Option<PathBuf>,
    ort_lib: Option<PathBuf>,
    quiet: bool,
) -> PyResult<Env> {
    let env = Env::new(home, ort_lib).map_err(|e| error(py, e))?;
    Ok(if quiet {
        env.with_log(Arc::new(|_| {}))
    } else {
        env
    })
}

/// One path, or a list of them.
fn paths(v: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<PathBuf>> {
    if let Ok(p) = v.extract::<PathBuf>() {
        return Ok(vec![p]);
    }
    v.extract::<Vec<PathBuf>>()
        .map_err(|_| PyTypeError::new_err(format!("{name}: expected a path or a list of paths")))
}

/// What `extract` did: counts, the cache, the model, and timings.
#[pyclass(frozen, get_all, module = "headstart")]
pub struct Summary {
    /// The cache folder.
    cache: String,
    /// The backbone's name.
    model: String,
    /// Its fingerprint (weights, feature tensor, preprocessing).
    model_fingerprint: String,
    /// Feature dimension.
    feature_dim: usize,
    /// ONNX Runtime's execution provider that ran it.
    execution_provider: String,
    /// Images listed (including those that failed while listing).
    images: usize,
    /// Images whose features were already in the cache.
    cached: usize,
    /// Images extracted by this run.
    extracted: usize,
    /// Images that failed (see `errors_file`).
    failed: usize,
    /// Cached images whose files are gone, removed from the cache.
    deleted: usize,
    /// The error rows of this run, when there are any.
    errors_file: Option<String>,
    /// Wall-clock seconds.
    wall_seconds: f64,
    /// Images extracted per second.
    images_per_second: f64,
    text: String,
}

#[pymethods]
impl Summary {
    fn __repr__(&self) -> String {
        self.text.clone()
    }
}

impl From<headstart_api::Summary> for Summary {
    fn from(s: headstart_api::Summary) -> Summary {
        Summary {
            text: s.to_string(),
            cache: s.cache.display().to_string(),
            model: s.model,
            model_fingerprint: s.model_fingerprint,
            feature_dim: s.feature_dim,
            execution_provider: s.execution_provider,
            images: s.images,
            cached: s.cached,
            extracted: s.extracted,
            failed: s.failed,
            deleted: s.deleted,
            errors_file: s.errors_file.map(|p| p.display().to_string()),
            wall_seconds: s.wall_seconds,
            images_per_second: s.images_per_second,
        }
    }
}

/// extract(input, out, model=None, *, home=None, ort_lib=None, quiet=False, **options) -> Summary
///
/// Extracts one feature vector per image of `input` (class folders, a CSV or
/// Parquet manifest, WebDataset tar shards or image Parquet) into the Parquet
/// cache `out`, as `headstart extract` does; reruns only do new work. Options
/// are the CLI's in snake_case: batch_size, threads, views, unlabeled,
/// label_from, strict, prune, shard, flush_every, precision, device,
/// allow_cpu_fallback, intra_threads, features, preset, size, crop, mean, std,
/// filter, layout, exact_decode, samples, percentile, keep_float,
/// max_file_size. Files that fail are counted in `failed` (their rows are in
/// `errors_file`), not raised.
#[pyfunction]
#[pyo3(signature = (input, out, model=None, *, home=None, ort_lib=None, quiet=false, **options))]
#[allow(clippy::too_many_arguments)]
fn extract(
    py: Python<'_>,
    input: PathBuf,
    out: PathBuf,
    model: Option<String>,
    home: Option<PathBuf>,
    ort_lib: Option<PathBuf>,
    quiet: bool,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<Summary> {
    let o: ExtractOptions = convert::options("extract", options, &[("model", Value::from(model))])?;
    let env = env(py, home, ort_lib, quiet)?;
    let summary = py.detach(|| {
        let bar = headstart_api::progress::Bar::new(quiet);
        let r = headstart_api::extract(&env, &input, &out, &o, &bar);
        bar.finish();
        r
    });
    summary.map(Summary::from).map_err(|e| error(py, e))
}

/// What `fit` made: the head folder, its report and headline metrics;
/// `outcome` holds everything (sweep, split, leak check, metrics) as a dict.
#[pyclass(frozen, get_all, module = "headstart")]
pub struct FitResult {
    /// The head folder written.
    dir: String,
    /// Its report.html, unless `no_report`.
    report: Option<String>,
    /// The head kind: softmax, mlp or ncm.
    head: String,
    /// Validation accuracy of the selected head.
    val_accuracy: f64,
    /// Test accuracy, when the features have a test split.
    test_accuracy: Option<f64>,
    /// Seconds the fit took.
    fit_seconds: f64,
    /// The whole outcome (what `headstart fit --json` prints).
    outcome: Py<PyAny>,
    text: String,
}

#[pymethods]
impl FitResult {
    fn __repr__(&self) -> String {
        self.text.clone()
    }
}

/// fit(caches, out, *, home=None, quiet=False, **options) -> FitResult
///
/// Fits a classifier head on cached features (one cache, or a list; Parquet
/// files with a `feature` column too) and saves it, with metrics and report,
/// into the head folder `out`, as `headstart fit` does. Options: head,
/// hidden, solver, c (a float or a list to sweep), class_weight, normalize,
/// val_fraction, seed, views, dedupe, no_report, images, force.
#[pyfunction]
#[pyo3(signature = (caches, out, *, home=None, quiet=false, **options))]
fn fit(
    py: Python<'_>,
    caches: &Bound<'_, PyAny>,
    out: PathBuf,
    home: Option<PathBuf>,
    quiet: bool,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<FitResult> {
    let caches = paths(caches, "caches")?;
    let mut kwargs = options.cloned();
    // `c=0.1` means one value; the library takes a list.
    if let Some(k) = &kwargs
        && let Some(c) = k.get_item("c")?
        && (c.extract::<f64>().is_ok())
    {
        let d = k.copy()?;
        d.set_item("c", PyList::new(py, [c])?)?;
        kwargs = Some(d);
    }
    let o: FitOptions = options_of("fit", kwargs.as_ref())?;
    let env = env(py, home, None, quiet)?;
    let r = py
        .detach(|| headstart_api::fit(&env, &caches, &out, &o))
        .map_err(|e| error(py, e))?;
    let json = serde_json::to_string(&r.outcome).unwrap_or_default();
    let outcome = py.import("json")?.call_method1("loads", (json,))?.unbind();
    let t = &r.outcome;
    Ok(FitResult {
        text: t.to_text(),
        dir: r.dir.display().to_string(),
        report: r.report.map(|p| p.display().to_string()),
        head: t.head.kind().as_str().to_string(),
        val_accuracy: t.val_metrics.summary.accuracy,
        test_accuracy: t.test_metrics.as_ref().map(|m| m.summary.accuracy),
        fit_seconds: t.fit_seconds,
        outcome,
    })
}

fn options_of<T: serde::Serialize + serde::de::DeserializeOwned + Default>(
    function: &str,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<T> {
    options(function, kwargs, &[])
}

/// read_features(*caches) -> pyarrow.Table
///
/// The live rows of feature caches (or Parquet feature files): columns path,
/// label, split, content_hash, view and feature (FixedSizeList<float32, D>),
/// sorted by path and view. The features are handed to pyarrow through the
/// Arrow C data interface, without a copy; `headstart.feature_matrix(t)`
/// gives them as a numpy [n, D] view.
#[pyfunction]
#[pyo3(signature = (*caches))]
fn read_features<'py>(py: Python<'py>, caches: Vec<PathBuf>) -> PyResult<Bound<'py, PyAny>> {
    if caches.is_empty() {
        return Err(PyTypeError::new_err(
            "read_features() needs at least one cache",
        ));
    }
    let batch = py
        .detach(|| {
            let t = headstart_cache::read_features(&caches)?;
            Ok::<_, headstart_api::Error>(t.into_record_batch()?)
        })
        .map_err(|e| error(py, e))?;
    arrow::table(py, vec![batch])
}

/// feature_matrix(table_or_column) -> numpy.ndarray
///
/// The `feature` column of a table from `read_features` (or that column, or a
/// FixedSizeList array) as a numpy array of shape [n, D] that shares its
/// memory (no copy; read-only).
#[pyfunction]
fn feature_matrix<'py>(py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let mut col = data.clone();
    if col.hasattr("column_names")? {
        col = col.call_method1("column", ("feature",))?;
    }
    if col.hasattr("combine_chunks")? {
        col = col.call_method0("combine_chunks")?;
    }
    let dim: usize = col.getattr("type")?.getattr("list_size")?.extract()?;
    let n: usize = col.len()?;
    let values = col.call_method0("flatten")?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("zero_copy_only", true)?;
    let flat = values.call_method("to_numpy", (), Some(&kwargs))?;
    flat.call_method1("reshape", ((n, dim),))
}

/// A saved head, ready to classify images: `Classifier.open(head_dir, **options)`.
#[pyclass(frozen, module = "headstart")]
pub struct Classifier {
    head: PathBuf,
    options: PredictOptions,
    env: Env,
    classes: Vec<String>,
}

#[pymethods]
impl Classifier {
    /// open(head_dir, *, home=None, quiet=True, **options) -> Classifier
    ///
    /// Loads the head in `head_dir`. Options: cache (caches whose features are
    /// reused by content hash), top_k, model (when the backbone is not built
    /// in) with its recipe options, device, batch_size, max_file_size.
    #[staticmethod]
    #[pyo3(signature = (head_dir, *, home=None, quiet=true, **options))]
    fn open(
        py: Python<'_>,
        head_dir: PathBuf,
        home: Option<PathBuf>,
        quiet: bool,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Classifier> {
        let o: PredictOptions = options_of("open", options)?;
        let classes = headstart_api::head_classes(&head_dir).map_err(|e| error(py, e))?;
        Ok(Classifier {
            env: env(py, home, None, quiet)?,
            head: head_dir,
            options: o,
            classes,
        })
    }

    /// The head's class names, in its order.
    #[getter]
    fn classes(&self) -> Vec<String> {
        self.classes.clone()
    }

    /// predict(images) -> pyarrow.Table
    ///
    /// Classifies `images`: paths (files, folders, manifests) or bytes of
    /// encoded images (a list of either). One row per image: path (the index
    /// for bytes), label and probability of the best class, the top-k labels
    /// and probabilities, where the features came from (cache or model), and
    /// error (null when the image was classified).
    fn predict<'py>(
        &self,
        py: Python<'py>,
        images: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let list: Vec<Bound<'py, PyAny>> =
            if images.cast::<PyBytes>().is_ok() || images.extract::<PathBuf>().is_ok() {
                vec![images.clone()]
            } else {
                images.try_iter()?.collect::<PyResult<_>>()?
            };
        let bytes: Option<Vec<(String, Vec<u8>)>> = list
            .iter()
            .enumerate()
            .map(|(i, b)| {
                b.cast::<PyBytes>()
                    .ok()
                    .map(|b| (i.to_string(), b.as_bytes().to_vec()))
            })
            .collect();
        let o = &self.options;
        let quiet = headstart_api::NoProgress;
        let result = match bytes {
            Some(images) => {
                py.detach(|| headstart_api::predict_bytes(&self.env, &self.head, images, o, &quiet))
            }
            None => {
                let paths: Vec<PathBuf> = list
                    .iter()
                    .map(|p| p.extract::<PathBuf>())
                    .collect::<PyResult<_>>()
                    .map_err(|_| PyTypeError::new_err("images: give paths or bytes, not a mix"))?;
                py.detach(|| headstart_api::predict(&self.env, &self.head, &paths, o, &quiet))
            }
        };
        let p = result.map_err(|e| error(py, e))?;
        arrow::table(
            py,
            vec![arrow::predictions(&p.rows).map_err(|e| PyValueError::new_err(e.to_string()))?],
        )
    }
}

/// A callable that adds a `feature` and an `error` column to batches of
/// image bytes, with one backbone session reused across batches: for Ray
/// Data's `map_batches`, Spark's `mapInArrow`, Beam, Daft or a loop.
// subclass: Ray Data wraps a callable class in a subclass of its own, whose
// `__init__` calls this one's: the backbone opens in `__init__`, not `__new__`.
#[pyclass(frozen, subclass, module = "headstart")]
pub struct FeatureExtractor {
    inner: std::sync::OnceLock<Opened>,
}

/// An opened extractor and the columns it reads and writes.
struct Opened {
    extractor: Mutex<headstart_api::FeatureExtractor>,
    columns: arrow::Columns,
}

impl FeatureExtractor {
    fn opened(&self) -> PyResult<&Opened> {
        self.inner.get().ok_or_else(|| {
            pyo3::exceptions::PyRuntimeError::new_err("FeatureExtractor.__init__ was not called")
        })
    }
}

#[pymethods]
impl FeatureExtractor {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, pyo3::types::PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        FeatureExtractor {
            inner: std::sync::OnceLock::new(),
        }
    }

    /// FeatureExtractor(model=None, device=None, batch_size=None, *, image_column="image",
    /// feature_column="feature", error_column="error", feature_type="fixed_size_list",
    /// home=None, ort_lib=None, quiet=True, **recipe)
    ///
    /// Opens the backbone (the default one unless `model` names another, a
    /// built-in name or an .onnx file) with the recipe options of `extract`
    /// (features, preset, size, crop, mean, std, filter, layout, exact_decode,
    /// device, intra_threads, allow_cpu_fallback, batch_size, max_file_size).
    /// Called on a pyarrow.RecordBatch, pyarrow.Table or pandas.DataFrame
    /// whose `image_column` holds encoded images (binary, or Hugging Face's
    /// {bytes, path} structs), it returns the same kind of object with a
    /// `feature` column (FixedSizeList<float32, D>, or list<float32> with
    /// feature_type="list", e.g. for Spark) and an `error` column (null when
    /// the image was fine; a bad image never fails the batch).
    #[pyo3(signature = (model=None, device=None, batch_size=None, *, image_column="image".to_string(), feature_column="feature".to_string(), error_column="error".to_string(), feature_type="fixed_size_list".to_string(), home=None, ort_lib=None, quiet=true, **recipe))]
    #[allow(clippy::too_many_arguments)]
    fn __init__(
        &self,
        py: Python<'_>,
        model: Option<String>,
        device: Option<String>,
        batch_size: Option<usize>,
        image_column: String,
        feature_column: String,
        error_column: String,
        feature_type: String,
        home: Option<PathBuf>,
        ort_lib: Option<PathBuf>,
        quiet: bool,
        recipe: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let o: ExtractorOptions = options(
            "FeatureExtractor",
            recipe,
            &[
                ("model", Value::from(model)),
                ("device", Value::from(device)),
                ("batch_size", Value::from(batch_size)),
            ],
        )?;
        let list = match feature_type.as_str() {
            "fixed_size_list" => false,
            "list" => true,
            other => {
                return Err(error(
                    py,
                    headstart_api::Error::Param {
                        name: "feature_type",
                        value: other.to_string(),
                        message: "use fixed_size_list or list".into(),
                    },
                ));
            }
        };
        let env = env(py, home, ort_lib, quiet)?;
        let extractor = py
            .detach(|| headstart_api::FeatureExtractor::open(&env, &o))
            .map_err(|e| error(py, e))?;
        let opened = Opened {
            extractor: Mutex::new(extractor),
            columns: arrow::Columns {
                image: image_column,
                feature: feature_column,
                error: error_column,
                list,
            },
        };
        self.inner.set(opened).map_err(|_| {
            pyo3::exceptions::PyRuntimeError::new_err("FeatureExtractor is already open")
        })
    }

    /// The feature dimension.
    #[getter]
    fn dim(&self) -> PyResult<usize> {
        Ok(self.opened()?.extractor.lock().map_or(0, |f| f.dim()))
    }

    fn __call__<'py>(
        &self,
        py: Python<'py>,
        batch: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let kind = type_of(batch)?;
        let table = match kind.as_str() {
            "pandas" => py
                .import("pyarrow")?
                .getattr("Table")?
                .call_method1("from_pandas", (batch,))?,
            "RecordBatch" | "Table" => batch.clone(),
            other => {
                return Err(PyTypeError::new_err(format!(
                    "FeatureExtractor takes a pyarrow.RecordBatch, a pyarrow.Table or a pandas.DataFrame, not {other} (with Ray Data: batch_format=\"pyarrow\")"
                )));
            }
        };
        let batches: Vec<RecordBatch> = if kind == "RecordBatch" {
            vec![RecordBatch::from_pyarrow_bound(&table)?]
        } else {
            arrow_pyarrow::Table::from_pyarrow_bound(&table)?
                .into_inner()
                .0
        };
        let opened = self.opened()?;
        let columns = &opened.columns;
        let mut out = Vec::with_capacity(batches.len());
        for b in &batches {
            let images = arrow::image_bytes(b, &columns.image).map_err(|m| {
                error(
                    py,
                    headstart_api::Error::Param {
                        name: "image_column",
                        value: columns.image.clone(),
                        message: m,
                    },
                )
            })?;
            let result = py.detach(|| {
                let mut fx = opened.extractor.lock().unwrap_or_else(|e| e.into_inner());
                let dim = fx.dim();
                fx.features(&images).map(|f| (f, dim))
            });
            let (features, dim) = result.map_err(|e| error(py, e))?;
            out.push(
                arrow::with_features(b, &features, dim, columns)
                    .map_err(|e| PyValueError::new_err(e.to_string()))?,
            );
        }
        match kind.as_str() {
            "RecordBatch" => out[0].to_pyarrow(py),
            "Table" => arrow::table(py, out),
            _ => arrow::table(py, out)?.call_method0("to_pandas"),
        }
    }
}

/// What a batch argument is: `RecordBatch`, `Table`, `pandas` or its type name.
fn type_of(v: &Bound<'_, PyAny>) -> PyResult<String> {
    let t = v.get_type();
    let module: String = t.getattr("__module__")?.extract()?;
    let name: String = t.getattr("__name__")?.extract()?;
    Ok(if module.starts_with("pandas") {
        "pandas".into()
    } else if module.starts_with("pyarrow") && (name == "RecordBatch" || name == "Table") {
        name
    } else {
        format!("{module}.{name}")
    })
}

/// headstart: transfer learning on images, from Python. See `help(headstart.extract)`,
/// `fit`, `read_features`, `Classifier` and `FeatureExtractor`.
#[pymodule]
fn headstart(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    let ex = convert::exceptions(py)?;
    m.add("Error", ex.error.bind(py))?;
    m.add("UsageError", ex.usage.bind(py))?;
    m.add("DataError", ex.data.bind(py))?;
    m.add("RuntimeError", ex.runtime.bind(py))?;
    m.add_function(wrap_pyfunction!(extract, m)?)?;
    m.add_function(wrap_pyfunction!(fit, m)?)?;
    m.add_function(wrap_pyfunction!(read_features, m)?)?;
    m.add_function(wrap_pyfunction!(feature_matrix, m)?)?;
    m.add_class::<Summary>()?;
    m.add_class::<FitResult>()?;
    m.add_class::<Classifier>()?;
    m.add_class::<FeatureExtractor>()?;
    Ok(())
}
