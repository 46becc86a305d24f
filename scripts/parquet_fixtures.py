#!/usr/bin/env python3
"""Writes the Parquet fixtures of tests/data/parquet/ with real writers.

Usage: python3 scripts/parquet_fixtures.py [OUT_DIR]   (default tests/data/parquet)

Every feature file holds the same 12 rows (path, label, split, 4-d feature; 3
classes), so `crates/cache/tests/writers.rs` and `tests/parquet_writers.rs` can
check that headstart reads each one into the same table, and fits the same head on
it, as on `pyarrow_zstd.parquet` (the reference). Feature values are multiples of
1/8, exact in float32 and float64.

Writers: pyarrow (every codec, with and without the stored Arrow schema), pandas
`to_parquet` defaults, Polars `write_parquet` defaults, DuckDB `COPY ... TO`
defaults; plus variants (float64 and large_list features, dictionary-encoded and
integer labels, Hugging Face ClassLabel names), a pandas manifest, and one file
whose label column claims the LZO codec (no reader headstart builds supports it).
The files are read back with pyarrow and compared with the rows before the
script finishes.

Setup (once): python3 -m venv /tmp/venv-parquet && /tmp/venv-parquet/bin/pip install pyarrow pandas polars duckdb
"""

import json
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

CLASSES = ["cat", "dog", "fox"]
N = 12
DIM = 4

# pyarrow's names of the Parquet codecs (its "lz4" also writes LZ4_RAW; no current writer
# writes the Hadoop-framed LZ4 codec, which the Rust test writes with arrow-rs).
CODECS = ["none", "snappy", "gzip", "lz4_raw", "brotli", "zstd"]


def rows():
    paths = [f"img/{i:02d}_{CLASSES[i % 3]}.jpg" for i in range(N)]
    labels = [CLASSES[i % 3] for i in range(N)]
    splits = ["val" if i % 4 == 3 else "train" for i in range(N)]
    base = [[1.0, 0.0, 0.5, -1.0], [0.0, 1.0, -0.5, 0.25], [-1.0, -0.5, 1.0, 0.75]]
    feats = []
    for i in range(N):
        c, k = i % 3, i // 3
        feats.append([base[c][j] + 0.125 * ((k * (j + 1)) % 5 - 2) for j in range(DIM)])
    return paths, labels, splits, feats


def table(feature_type=pa.list_(pa.float32()), label_type=pa.string()):
    paths, labels, splits, feats = rows()
    label = pa.array(labels, pa.string())
    if label_type != pa.string():
        label = label.cast(label_type)
    return pa.table(
        {
            "path": pa.array(paths, pa.string()),
            "label": label,
            "split": pa.array(splits, pa.string()),
            "feature": pa.array(feats, feature_type),
        }
    )


def frame():
    paths, labels, splits, feats = rows()
    return pd.DataFrame(
        {
            "path": paths,
            "label": labels,
            "split": splits,
            "feature": [np.array(f, dtype=np.float32) for f in feats],
        }
    )


def lzo_label(src: Path, dst: Path):
    """Copies `src` (uncompressed) with the label column's codec set to LZO (3)."""
    data = bytearray(src.read_bytes())
    footer_len = int.from_bytes(data[-8:-4], "little")
    start = len(data) - 8 - footer_len
    # ColumnMetaData, thrift compact: path_in_schema = ["label"] (field 3, a list
    # of one binary), then codec (field 4, i32 zigzag: UNCOMPRESSED 0x00, LZO 0x06).
    pattern = b"\x19\x18\x05label\x15\x00"
    at = data.find(pattern, start)
    assert at > 0 and data.find(pattern, at + 1) < 0, "label column metadata not found once"
    data[at + len(pattern) - 1] = 0x06
    dst.write_bytes(bytes(data))


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/parquet")
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.parquet"):
        old.unlink()
    ref = table()
    same = []  # files that must read back as exactly `ref`

    # pyarrow, every codec, with and without the stored Arrow schema.
    for codec in CODECS:
        for store_schema in (True, False):
            name = f"pyarrow_{codec}{'' if store_schema else '_noschema'}.parquet"
            pq.write_table(ref, out / name, compression=codec, store_schema=store_schema)
            same.append(name)

    # pandas defaults (snappy through pyarrow, with the pandas metadata).
    frame().to_parquet(out / "pandas_default.parquet")
    same.append("pandas_default.parquet")
    # pandas with a categorical label: a dictionary-encoded column.
    f = frame()
    f["label"] = f["label"].astype("category")
    f.to_parquet(out / "pandas_category.parquet")
    same.append("pandas_category.parquet")

    # Polars defaults (zstd; strings as views, lists as large_list).
    paths, labels, splits, feats = rows()
    pl.DataFrame(
        {
            "path": paths,
            "label": labels,
            "split": splits,
            "feature": pl.Series(feats, dtype=pl.List(pl.Float32)),
        }
    ).write_parquet(out / "polars_default.parquet")
    same.append("polars_default.parquet")

    # DuckDB defaults (snappy), features as FLOAT[] and as FLOAT[4].
    con = duckdb.connect()
    con.register("t", ref)
    for name, ty in (("duckdb_default.parquet", "FLOAT[]"), ("duckdb_array.parquet", "FLOAT[4]")):
        con.execute(
            f"COPY (SELECT path, label, split, feature::{ty} AS feature FROM t ORDER BY path)"
            f" TO '{out / name}' (FORMAT parquet)"
        )
    con.close()
    # ORDER BY path: the rows' order must be the reference's order.
    order = sorted(range(N), key=lambda i: paths[i])
    assert order == list(range(N)), "paths must sort in row order"
    same += ["duckdb_default.parquet", "duckdb_array.parquet"]

    # Variants through pyarrow (snappy, as a user's script would write them).
    pq.write_table(table(pa.list_(pa.float64())), out / "pyarrow_float64.parquet")
    pq.write_table(table(pa.large_list(pa.float32())), out / "pyarrow_large_list.parquet")
    pq.write_table(table(pa.list_(pa.float32(), DIM)), out / "pyarrow_fixed_size_list.parquet")
    pq.write_table(
        table(label_type=pa.dictionary(pa.int32(), pa.string())), out / "pyarrow_dictionary.parquet"
    )
    pq.write_table(
        table(label_type=pa.dictionary(pa.int8(), pa.string())),
        out / "pyarrow_dictionary_noschema.parquet",
        store_schema=False,
    )
    same += [
        "pyarrow_float64.parquet",
        "pyarrow_large_list.parquet",
        "pyarrow_fixed_size_list.parquet",
        "pyarrow_dictionary.parquet",
        "pyarrow_dictionary_noschema.parquet",
    ]

    # Integer labels: plain (read as "0", "1", "2") and with Hugging Face
    # ClassLabel names in the schema metadata (read as the names).
    ints = pa.array([i % 3 for i in range(N)], pa.int64())
    plain = ref.set_column(1, "label", ints)
    pq.write_table(plain, out / "pyarrow_int_labels.parquet")
    hf = {
        "info": {
            "features": {
                "path": {"dtype": "string", "_type": "Value"},
                "label": {"names": CLASSES, "_type": "ClassLabel"},
                "split": {"dtype": "string", "_type": "Value"},
                "feature": {"feature": {"dtype": "float32", "_type": "Value"}, "_type": "Sequence"},
            }
        }
    }
    classlabel = plain.replace_schema_metadata({"huggingface": json.dumps(hf)})
    pq.write_table(classlabel, out / "hf_classlabel.parquet")
    same.append("hf_classlabel.parquet")

    # A label column that claims LZO, which no reader headstart builds supports.
    pq.write_table(ref, out / "tmp_none.parquet", compression="none", use_dictionary=False)
    lzo_label(out / "tmp_none.parquet", out / "lzo_label.parquet")
    (out / "tmp_none.parquet").unlink()

    # A manifest written by pandas (snappy): path, label, split.
    m = frame().drop(columns=["feature"])
    m.to_parquet(out / "manifest_pandas.parquet")

    # Read everything back: same rows as the reference.
    want = ref.to_pylist()
    for name in same:
        got = pq.read_table(out / name).to_pylist()
        if name == "hf_classlabel.parquet":
            got = [{**r, "label": CLASSES[r["label"]]} for r in got]
        got = [{**r, "feature": list(r["feature"])} for r in got]
        assert got == want, f"{name} does not hold the reference rows"
    assert pq.read_table(out / "manifest_pandas.parquet").to_pylist() == [
        {k: r[k] for k in ("path", "label", "split")} for r in want
    ]
    total = 0
    con = duckdb.connect()  # pyarrow calls LZ4_RAW "LZ4"; DuckDB names the codec
    for p in sorted(out.glob("*.parquet")):
        q = f"SELECT DISTINCT compression FROM parquet_metadata('{p}') ORDER BY 1"
        codecs = [c for (c,) in con.execute(q).fetchall()]
        total += p.stat().st_size
        print(f"{p.name:40} {p.stat().st_size:6} bytes  {','.join(codecs)}")
    print(f"{total} bytes in all; pyarrow {pa.__version__}, pandas {pd.__version__}, "
          f"polars {pl.__version__}, duckdb {duckdb.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
