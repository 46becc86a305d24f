//! Feature files written by real tools (pyarrow, pandas, Polars, DuckDB, arrow-rs)
//! in every codec read into the same table. The fixtures in tests/data/parquet/
//! come from scripts/parquet_fixtures.py; they all hold the same 12 rows.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{Float32Builder, ListBuilder};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Schema};
use headstart_cache::{FeatureTable, read_features, to_utf8};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{BrotliLevel, Compression, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/parquet")
}

/// The fixture every other one must equal: pyarrow, zstd, Arrow schema stored.
const REFERENCE: &str = "pyarrow_zstd.parquet";

/// Fixtures that hold exactly the reference rows, by writer and codec
/// (tests/data/parquet/same_rows.txt, shared with the end-to-end tests).
fn same_rows() -> Vec<String> {
    let text = std::fs::read_to_string(fixtures().join("same_rows.txt")).expect("same_rows.txt");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(String::from)
        .collect()
}

fn read(path: &Path) -> FeatureTable {
    read_features(&[path.to_path_buf()]).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Asserts that two tables hold the same rows, bit for bit.
fn assert_same(name: &str, got: &FeatureTable, want: &FeatureTable) {
    assert_eq!(got.dim, want.dim, "{name}: dim");
    assert_eq!(got.paths, want.paths, "{name}: paths");
    assert_eq!(got.labels, want.labels, "{name}: labels");
    assert_eq!(got.splits, want.splits, "{name}: splits");
    assert_eq!(got.content_hashes, want.content_hashes, "{name}: hashes");
    assert_eq!(got.views, want.views, "{name}: views");
    let bits = |t: &FeatureTable| t.features.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(got), bits(want), "{name}: features");
    assert_eq!(
        (&got.model_fingerprint, &got.model_name),
        (&want.model_fingerprint, &want.model_name),
        "{name}: identity"
    );
}

fn reference() -> FeatureTable {
    read(&fixtures().join(REFERENCE))
}

/// The Arrow types headstart's reader sees for column `col` of a fixture.
fn arrow_type(name: &str, col: &str) -> DataType {
    let f = File::open(fixtures().join(name)).unwrap();
    let b = ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
    b.schema().field_with_name(col).unwrap().data_type().clone()
}

/// Codec names of every column chunk of a file.
fn codecs(path: &Path) -> BTreeSet<String> {
    let b = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    b.metadata()
        .row_groups()
        .iter()
        .flat_map(|rg| rg.columns())
        .map(|c| {
            let s = c.compression().to_string();
            s.split('(').next().unwrap().to_string()
        })
        .collect()
}

#[test]
fn the_reference_holds_the_rows_of_the_script() {
    let t = reference();
    assert_eq!((t.len(), t.dim), (12, 4));
    assert_eq!(t.paths[0], "img/00_cat.jpg");
    assert_eq!(
        t.labels[..3],
        [Some("cat".into()), Some("dog".into()), Some("fox".into())]
    );
    assert_eq!(t.splits[3].as_deref(), Some("val"));
    assert_eq!(t.content_hashes[0], "path:img/00_cat.jpg");
    assert_eq!(t.row(0), &[0.75, -0.25, 0.25, -1.25]);
}

/// Regression (#15): pyarrow's default codec (snappy) stopped `fit` with
/// "Disabled feature at compile time: snap".
#[test]
fn every_writer_and_codec_reads_as_the_reference() {
    let want = reference();
    let mut seen = BTreeSet::new();
    for name in &same_rows() {
        let path = fixtures().join(name);
        assert_same(name, &read(&path), &want);
        seen.extend(codecs(&path));
    }
    let all = [
        "BROTLI",
        "GZIP",
        "LZ4_RAW",
        "SNAPPY",
        "UNCOMPRESSED",
        "ZSTD",
    ];
    assert_eq!(seen, all.iter().map(|s| s.to_string()).collect());
}

/// The fixtures cover the Arrow types they are meant to: if a writer changes
/// what it stores, this says which case the matrix lost.
#[test]
fn the_fixtures_cover_each_arrow_type() {
    let list_of = |t: &DataType| match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            f.data_type().clone()
        }
        other => panic!("not a list: {other}"),
    };
    let ty = arrow_type("pyarrow_large_list.parquet", "feature");
    assert!(matches!(ty, DataType::LargeList(_)), "{ty}");
    let ty = arrow_type("pyarrow_fixed_size_list.parquet", "feature");
    assert!(matches!(ty, DataType::FixedSizeList(_, 4)), "{ty}");
    let ty = arrow_type("pyarrow_zstd_noschema.parquet", "feature");
    assert!(matches!(ty, DataType::List(_)), "{ty}");
    assert_eq!(
        list_of(&arrow_type("pyarrow_float64.parquet", "feature")),
        DataType::Float64
    );
    assert_eq!(
        list_of(&arrow_type("duckdb_default.parquet", "feature")),
        DataType::Float32
    );
    for name in ["pyarrow_dictionary.parquet", "pandas_category.parquet"] {
        let ty = arrow_type(name, "label");
        assert!(matches!(ty, DataType::Dictionary(_, _)), "{name}: {ty}");
    }
    assert_eq!(
        arrow_type("pyarrow_int_labels.parquet", "label"),
        DataType::Int64
    );
    assert_eq!(
        arrow_type("hf_classlabel.parquet", "label"),
        DataType::Int64
    );
    // pandas writes large_string; Polars a string view, or large_string.
    assert_eq!(
        arrow_type("pandas_default.parquet", "label"),
        DataType::LargeUtf8
    );
    let ty = arrow_type("polars_default.parquet", "label");
    assert!(
        matches!(ty, DataType::Utf8View | DataType::LargeUtf8),
        "{ty}"
    );
    let ty = arrow_type("polars_default.parquet", "feature");
    assert!(matches!(ty, DataType::LargeList(_)), "{ty}");
}

/// Integer labels without ClassLabel names are their decimal text.
#[test]
fn integer_labels_are_their_decimal_text() {
    let want = reference();
    let t = read(&fixtures().join("pyarrow_int_labels.parquet"));
    let classes = ["cat", "dog", "fox"];
    let as_names: Vec<Option<String>> = t
        .labels
        .iter()
        .map(|l| Some(classes[l.as_deref().unwrap().parse::<usize>().unwrap()].to_string()))
        .collect();
    assert_eq!(
        t.labels[..3],
        [Some("0".into()), Some("1".into()), Some("2".into())]
    );
    assert_eq!(as_names, want.labels);
    assert_eq!(t.features, want.features);
}

/// Writes one batch of (label, feature) rows with arrow-rs.
fn write_batch(path: &Path, batch: &RecordBatch, props: Option<WriterProperties>) {
    let mut w = ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), props).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

fn features(rows: usize) -> ArrayRef {
    let mut lb = ListBuilder::new(Float32Builder::new());
    for r in 0..rows {
        lb.values().append_slice(&[r as f32, 1.0]);
        lb.append(true);
    }
    Arc::new(lb.finish())
}

#[test]
fn classlabel_minus_one_is_unlabeled_and_a_bad_index_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let hf = serde_json::json!({"info": {"features": {
        "label": {"names": ["cat", "dog"], "_type": "ClassLabel"}
    }}})
    .to_string();
    let batch = |labels: Vec<i64>| {
        let n = labels.len();
        let label: ArrayRef = Arc::new(Int64Array::from(labels));
        let b = RecordBatch::try_from_iter([("label", label), ("feature", features(n))]).unwrap();
        let schema = Schema::new_with_metadata(
            b.schema().fields().clone(),
            std::collections::HashMap::from([("huggingface".to_string(), hf.clone())]),
        );
        b.with_schema(Arc::new(schema)).unwrap()
    };
    let ok = dir.path().join("ok.parquet");
    write_batch(&ok, &batch(vec![1, -1, 0]), None);
    let t = read(&ok);
    assert_eq!(t.labels, vec![Some("dog".into()), None, Some("cat".into())]);
    let bad = dir.path().join("bad.parquet");
    write_batch(&bad, &batch(vec![0, 2]), None);
    let e = read_features(std::slice::from_ref(&bad))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&bad.display().to_string()) && e.contains("class index 2"),
        "{e}"
    );
}

/// Every codec arrow-rs writes, Hadoop-framed LZ4 included (no Python writer
/// still writes it; older parquet-mr and Arrow C++ did).
#[test]
fn arrow_rs_writes_in_every_codec_read_back() {
    let want = reference();
    let dir = tempfile::tempdir().unwrap();
    let src = File::open(fixtures().join(REFERENCE)).unwrap();
    let batches: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(src)
        .unwrap()
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for codec in [
        Compression::UNCOMPRESSED,
        Compression::SNAPPY,
        Compression::GZIP(GzipLevel::default()),
        Compression::LZ4,
        Compression::LZ4_RAW,
        Compression::BROTLI(BrotliLevel::default()),
        Compression::ZSTD(ZstdLevel::default()),
    ] {
        let path = dir.path().join(format!("{codec:?}.parquet"));
        let props = WriterProperties::builder().set_compression(codec).build();
        let mut w = ArrowWriter::try_new(
            File::create(&path).unwrap(),
            batches[0].schema(),
            Some(props),
        )
        .unwrap();
        for b in &batches {
            w.write(b).unwrap();
        }
        w.close().unwrap();
        let name = codec.to_string();
        let expected = name.split('(').next().unwrap().to_string();
        assert_eq!(codecs(&path), BTreeSet::from([expected]), "{name}");
        assert_same(&name, &read(&path), &want);
    }
}

/// A codec that headstart cannot read is named, with the column and the file.
#[test]
fn an_unreadable_codec_is_named_with_the_file() {
    let path = fixtures().join("lzo_label.parquet");
    let e = read_features(std::slice::from_ref(&path))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&path.display().to_string())
            && e.contains("column `label` is compressed with LZO")
            && e.contains("zstd"),
        "{e}"
    );
}

/// A file whose data pages are garbage is named; nothing panics.
#[test]
fn corrupt_pages_are_named_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["pyarrow_snappy.parquet", "pyarrow_gzip.parquet"] {
        let mut bytes = std::fs::read(fixtures().join(name)).unwrap();
        let n = bytes.len();
        let footer = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().unwrap()) as usize;
        // Keep the magic and the footer; overwrite the pages.
        for b in &mut bytes[4..n - 8 - footer] {
            *b = 0xAB;
        }
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let e = read_features(std::slice::from_ref(&path))
            .unwrap_err()
            .to_string();
        assert!(e.contains(&path.display().to_string()), "{e}");
    }
}

#[test]
fn to_utf8_reads_dictionaries_and_refuses_integers() {
    use arrow_array::{DictionaryArray, types::Int8Type};
    let d: DictionaryArray<Int8Type> = vec![Some("b"), None, Some("a"), Some("b")]
        .into_iter()
        .collect();
    let s = to_utf8(&d).unwrap();
    assert_eq!(
        s,
        StringArray::from(vec![Some("b"), None, Some("a"), Some("b")])
    );
    // Integers are not strings: callers that map them (ClassLabel names) rely on it.
    assert!(to_utf8(&Int64Array::from(vec![1, 2])).is_none());
}
