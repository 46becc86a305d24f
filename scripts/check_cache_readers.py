#!/usr/bin/env python3
"""Reads a headstart cache's Parquet parts with pyarrow, pandas, DuckDB and Polars.

Usage: python3 scripts/check_cache_readers.py CACHE_DIR

Prints, for each library, the number of rows stored in CACHE_DIR/parts/*.parquet
(all stored rows: superseded and deleted rows are only dropped by
`headstart cache compact`) and the type it gives the `feature` column; then the
headstart key-value metadata of the first part and the rows of the error files.
Exits 1 when the libraries disagree on the row count or a feature vector does not
have the cache's dimension.

Setup (once): python3 -m venv /tmp/pyread && /tmp/pyread/bin/pip install pyarrow pandas duckdb polars
"""

import json
import sys
from pathlib import Path


def parquet_files(folder: Path) -> list[str]:
    # Names starting with '.' are temporary files of writers; readers ignore them.
    return sorted(str(p) for p in folder.glob("*.parquet") if not p.name.startswith("."))


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    cache = Path(sys.argv[1])
    info = json.loads((cache / "cache.json").read_text())
    dim = info["feature_dim"]
    parts = parquet_files(cache / "parts")
    if not parts:
        print(f"{cache}: no parts", file=sys.stderr)
        return 1
    print(f"cache {cache}: model {info['model_name']} ({dim}-d), {len(parts)} part(s)")
    counts = {}
    ok = True

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.concat_tables(pq.read_table(p) for p in parts)
    feature_type = table.schema.field("feature").type
    counts["pyarrow"] = table.num_rows
    lengths = set(pa.compute.list_value_length(table["feature"]).to_pylist())
    ok &= lengths == {dim}
    print(f"pyarrow {pa.__version__}: {table.num_rows} rows, feature {feature_type}, lengths {sorted(lengths)}")

    import pandas as pd

    df = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    first = df["feature"].iloc[0]
    counts["pandas"] = len(df)
    ok &= all(len(v) == dim for v in df["feature"])
    print(
        f"pandas {pd.__version__}: {len(df)} rows, feature dtype {df['feature'].dtype} "
        f"of {type(first).__name__}[{getattr(first, 'dtype', '?')}] x {len(first)}"
    )

    import duckdb

    con = duckdb.connect()
    n, t, lmin, lmax = con.execute(
        "SELECT count(*), any_value(typeof(feature)), min(len(feature)), max(len(feature)) "
        "FROM read_parquet(?)",
        [parts],
    ).fetchone()
    counts["duckdb"] = n
    ok &= lmin == lmax == dim
    print(f"duckdb {duckdb.__version__}: {n} rows, feature {t}, lengths {lmin}..{lmax}")

    import polars as pl

    pdf = pl.concat([pl.read_parquet(p) for p in parts])
    counts["polars"] = pdf.height
    ptype = pdf.schema["feature"]
    ok &= getattr(ptype, "size", dim) == dim
    print(f"polars {pl.__version__}: {pdf.height} rows, feature {ptype}")

    meta = pq.read_metadata(parts[0]).metadata or {}
    for k, v in sorted(meta.items()):
        if k.startswith(b"headstart."):
            text = v.decode()
            print(f"  {k.decode()} = {text if len(text) <= 100 else text[:97] + '...'}")

    for e in parquet_files(cache / "errors"):
        et = pq.read_table(e)
        print(f"errors {Path(e).name}: {et.num_rows} rows")
        for row in et.to_pylist():
            print(f"  {row['path']} | {row['stage']} | {row['message'][:90]}")

    if len(set(counts.values())) != 1:
        print(f"row counts differ: {counts}", file=sys.stderr)
        ok = False
    if not ok:
        print("FAILED", file=sys.stderr)
        return 1
    print("all four readers agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
