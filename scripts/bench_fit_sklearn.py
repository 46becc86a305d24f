#!/usr/bin/env python3
"""scikit-learn reference for crates/fit/examples/bench_fit.rs.

Reads the raw dump written by `bench_fit --save-npy DIR` (X.f32 rows x dim,
y.i32, split.u8 with 0 = train and 1 = val, meta.json), standardises with
statistics of the training rows, fits LogisticRegression(solver="lbfgs", C)
and prints JSON: fit time, validation accuracy and log-loss, and the training
objective in the mean form headstart reports
(mean CE + ||W||^2 / (2 C n_train)).

    python scripts/bench_fit_sklearn.py DIR [--c 1.0] [--max-iter 100]
"""

import argparse
import json
import os
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--c", type=float, default=1.0)
    ap.add_argument("--max-iter", type=int, default=100)
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()

    with open(os.path.join(args.dir, "meta.json")) as f:
        meta = json.load(f)
    n, d, k = meta["rows"], meta["dim"], meta["classes"]
    X = np.fromfile(os.path.join(args.dir, "X.f32"), dtype="<f4").reshape(n, d)
    y = np.fromfile(os.path.join(args.dir, "y.i32"), dtype="<i4")
    split = np.fromfile(os.path.join(args.dir, "split.u8"), dtype=np.uint8)
    tr, va = split == 0, split == 1

    mean = X[tr].mean(axis=0, dtype=np.float64)
    std = X[tr].std(axis=0, dtype=np.float64)
    std[std < 1e-7 * (1 + np.abs(mean))] = 1.0
    Xtr = ((X[tr] - mean) / std).astype(np.float32)
    Xva = ((X[va] - mean) / std).astype(np.float32)
    ytr, yva = y[tr], y[va]

    clf = LogisticRegression(C=args.c, solver="lbfgs", max_iter=args.max_iter, tol=args.tol)
    t0 = time.perf_counter()
    clf.fit(Xtr, ytr)
    fit_seconds = time.perf_counter() - t0

    p_tr = clf.predict_proba(Xtr)
    ce = log_loss(ytr, p_tr, labels=np.arange(k))
    objective = ce + float((clf.coef_.astype(np.float64) ** 2).sum()) / (2 * args.c * len(ytr))
    p_va = clf.predict_proba(Xva)
    print(json.dumps({
        "rows": n, "dim": d, "classes": k, "c": args.c,
        "fit_seconds": fit_seconds,
        "val_accuracy": accuracy_score(yva, p_va.argmax(axis=1)),
        "val_log_loss": log_loss(yva, p_va, labels=np.arange(k)),
        "train_objective": objective,
        "n_iter": int(np.max(clf.n_iter_)),
        "threads_hint": os.environ.get("OMP_NUM_THREADS"),
    }))


if __name__ == "__main__":
    main()
