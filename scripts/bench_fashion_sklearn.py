#!/usr/bin/env python3
"""scikit-learn on the same Fashion-MNIST subset as `headstart fit`, for bench_fashion_mnist.sh.

Reads the headstart cache CACHE/parts/*.parquet with pyarrow (fresh cache: every
stored row is live), takes the rows of view `original` with their `split`
column (train / val / test, from the folder layout), standardises with
training statistics and fits LogisticRegression(lbfgs, C) on the train rows,
exactly the rows headstart trains on. Reports validation and test accuracy.

With --pixels DIR it also fits the same model on the raw 28x28 pixels of the
same images (DIR is the PNG tree the cache was extracted from, paths are the
cache's `path` column), the like-for-like version of the raw-pixel floor.

    python scripts/bench_fashion_sklearn.py CACHE [--c 1.0] [--max-iter 1000] [--pixels DIR]

Prints one JSON line.
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.linear_model import LogisticRegression


def standardise(X, tr):
    mean = X[tr].mean(axis=0, dtype=np.float64)
    std = X[tr].std(axis=0, dtype=np.float64)
    std[std < 1e-7 * (1 + np.abs(mean))] = 1.0
    return ((X - mean) / std).astype(np.float32)


def fit_eval(X, y, split, c, max_iter):
    tr, va, te = split == "train", split == "val", split == "test"
    Xs = standardise(X, tr)
    clf = LogisticRegression(C=c, solver="lbfgs", max_iter=max_iter)
    t0 = time.perf_counter()
    clf.fit(Xs[tr], y[tr])
    secs = time.perf_counter() - t0
    acc = lambda m: float((clf.predict(Xs[m]) == y[m]).mean()) if m.any() else None
    return {
        "fit_seconds": secs,
        "n_iter": int(np.max(clf.n_iter_)),
        "train_rows": int(tr.sum()),
        "val_rows": int(va.sum()),
        "test_rows": int(te.sum()),
        "val_accuracy": acc(va),
        "test_accuracy": acc(te),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cache")
    ap.add_argument("--c", type=float, default=1.0)
    ap.add_argument("--max-iter", type=int, default=1000)
    ap.add_argument("--pixels", default=None, help="PNG tree to fit raw pixels of the same images")
    args = ap.parse_args()

    parts = sorted(
        str(p) for p in (Path(args.cache) / "parts").glob("*.parquet") if not p.name.startswith(".")
    )
    t = pa.concat_tables(pq.read_table(p, columns=["path", "label", "split", "view", "feature"]) for p in parts)
    t = t.filter(pa.compute.equal(t["view"], "original"))
    paths = t["path"].to_pylist()
    order = np.argsort(paths)
    paths = [paths[i] for i in order]
    y = np.array(t["label"].to_pylist(), dtype=object)[order]
    split = np.array(t["split"].to_pylist(), dtype=object)[order]
    feat = t["feature"].combine_chunks()
    dim = feat.type.list_size
    X = feat.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)[order]

    out = {"rows": len(paths), "dim": dim, "c": args.c, "features": fit_eval(X, y, split, args.c, args.max_iter)}
    if args.pixels:
        from PIL import Image

        P = np.stack(
            [np.asarray(Image.open(os.path.join(args.pixels, p)).convert("L"), dtype=np.float32).reshape(-1) for p in paths]
        )
        out["pixels"] = fit_eval(P, y, split, args.c, args.max_iter)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
