"""headstart: transfer learning on images, from Python.

A thin layer over headstart's Rust library (the same calls as the CLI):
``extract`` images into a Parquet feature cache once, ``read_features`` as a
pyarrow.Table, ``fit`` a classifier head in seconds, ``Classifier`` to predict,
and ``FeatureExtractor`` for Ray Data, Spark and other engines that map
batches of image bytes. Keyword options are the CLI's flags in snake_case,
with its defaults.
"""

import builtins
from os import PathLike
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy
import pandas
import pyarrow

__version__: str

_Path = Union[str, PathLike]

class Error(Exception):
    """Base of headstart's errors: ``str(e)`` says what is wrong, ``e.fix`` what to do."""

    fix: Optional[str]
    parameter: Optional[str]

class UsageError(Error, ValueError):
    """An option is wrong, or an output folder is not headstart's: nothing was done."""

class DataError(Error):
    """The data (images, caches, heads, models) cannot be used."""

class RuntimeError(Error, builtins.RuntimeError):
    """ONNX Runtime, the backbone session or provisioning failed."""

class Summary:
    """What ``extract`` did."""

    cache: str
    model: str
    model_fingerprint: str
    feature_dim: int
    execution_provider: str
    images: int
    cached: int
    extracted: int
    failed: int
    deleted: int
    errors_file: Optional[str]
    wall_seconds: float
    images_per_second: float

class FitResult:
    """What ``fit`` made: the head folder, report and headline metrics."""

    dir: str
    report: Optional[str]
    head: str
    val_accuracy: float
    test_accuracy: Optional[float]
    fit_seconds: float
    outcome: Dict[str, Any]

def extract(
    input: _Path,
    out: _Path,
    model: Optional[str] = None,
    *,
    home: Optional[_Path] = None,
    ort_lib: Optional[_Path] = None,
    quiet: bool = False,
    batch_size: int = 32,
    threads: Optional[int] = None,
    views: Sequence[str] = ("original",),
    unlabeled: bool = False,
    label_from: str = "cls",
    strict: bool = False,
    prune: bool = False,
    shard: Optional[str] = None,
    flush_every: int = 2048,
    precision: str = "fp32",
    device: str = "cpu",
    allow_cpu_fallback: bool = False,
    fp16: bool = False,
    intra_threads: Optional[int] = None,
    features: str = "auto",
    preset: Optional[str] = None,
    size: Optional[int] = None,
    crop: Optional[float] = None,
    mean: Optional[Sequence[float]] = None,
    std: Optional[Sequence[float]] = None,
    filter: Optional[str] = None,
    layout: Optional[str] = None,
    exact_decode: bool = False,
    samples: int = 128,
    percentile: float = 99.99,
    keep_float: Sequence[str] = (),
    max_file_size: Union[int, str] = "512MiB",
) -> Summary:
    """Extract one feature vector per image of ``input`` into the cache ``out``."""

def fit(
    caches: Union[_Path, Sequence[_Path]],
    out: _Path,
    *,
    home: Optional[_Path] = None,
    quiet: bool = False,
    head: str = "softmax",
    hidden: Sequence[int] = (),
    solver: str = "auto",
    c: Union[float, Sequence[float]] = (1.0,),
    class_weight: str = "none",
    normalize: str = "standard",
    val_fraction: float = 0.2,
    seed: int = 0,
    views: Sequence[str] = (),
    dedupe: bool = False,
    no_report: bool = False,
    images: Optional[_Path] = None,
    force: bool = False,
) -> FitResult:
    """Fit a classifier head on cached features and save it into ``out``."""

def read_features(*caches: _Path) -> pyarrow.Table:
    """The live rows of feature caches: path, label, split, content_hash, view, feature."""

def feature_matrix(data: Union[pyarrow.Table, pyarrow.ChunkedArray, pyarrow.Array]) -> numpy.ndarray:
    """The feature column as a read-only numpy [n, D] view (no copy)."""

class Classifier:
    """A saved head, ready to classify images."""

    @staticmethod
    def open(
        head_dir: _Path,
        *,
        home: Optional[_Path] = None,
        quiet: bool = True,
        cache: Sequence[_Path] = (),
        top_k: int = 5,
        model: Optional[str] = None,
        device: str = "cpu",
        batch_size: int = 32,
        max_file_size: Union[int, str] = "512MiB",
        **recipe: Any,
    ) -> "Classifier": ...
    @property
    def classes(self) -> List[str]: ...
    def predict(self, images: Union[_Path, bytes, Sequence[Union[_Path, bytes]]]) -> pyarrow.Table:
        """One row per image: path, label, probability, top_labels, top_probabilities, source, error."""

class FeatureExtractor:
    """A callable adding ``feature`` and ``error`` columns to batches of image bytes."""

    def __init__(
        self,
        model: Optional[str] = None,
        device: Optional[str] = None,
        batch_size: Optional[int] = None,
        *,
        image_column: str = "image",
        feature_column: str = "feature",
        error_column: str = "error",
        feature_type: str = "fixed_size_list",
        home: Optional[_Path] = None,
        ort_lib: Optional[_Path] = None,
        quiet: bool = True,
        **recipe: Any,
    ) -> None: ...
    @property
    def dim(self) -> int: ...
    def __call__(
        self, batch: Union[pyarrow.RecordBatch, pyarrow.Table, pandas.DataFrame]
    ) -> Union[pyarrow.RecordBatch, pyarrow.Table, pandas.DataFrame]: ...
