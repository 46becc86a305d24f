#!/usr/bin/env python3
"""Feature cosine between the four extractions of scripts/bench_photos.sh
(headstart reduced and exact, Python with and without draft()), matched by
path, over all images and over those each side decoded at a reduced scale.

Both sides reduce a JPEG by the same rule (crop // r >= the input size, r in
8, 4; scripts/bench_extract_python.py --draft).

    python scripts/feature_cosine.py WORK IMAGES [--size 224 --crop 0.875]

WORK holds photos-out-{hs,hs-exact} (caches) and photos-out-{py,py-draft}.parquet.
"""

import argparse
import glob
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from PIL import Image


def features(path):
    if path.is_dir():
        t = ds.dataset(glob.glob(f"{path}/parts/*.parquet"), format="parquet").to_table(
            columns=["path", "feature"])
    else:
        t = pq.read_table(path, columns=["path", "feature"])
    d = t.to_pydict()
    return {p: np.asarray(f, dtype=np.float64) for p, f in zip(d["path"], d["feature"])}


def scale(path, size, crop):
    """The DCT scale denominator one file is decoded at (1: in full)."""
    im = Image.open(path)
    if im.format != "JPEG":
        return 1
    w, h = im.size
    return next((r for r in (8, 4) if crop * min(w, h) // r >= size), 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work", type=Path)
    ap.add_argument("images", type=Path)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--crop", type=float, default=0.875)
    a = ap.parse_args()
    hs, hs_exact = features(a.work / "photos-out-hs"), features(a.work / "photos-out-hs-exact")
    py, py_draft = features(a.work / "photos-out-py.parquet"), features(a.work / "photos-out-py-draft.parquet")
    scales = {p: scale(a.images / p, a.size, a.crop) for p in hs_exact}

    def cos(x, y, keys):
        c = {k: float(x[k] @ y[k] / np.linalg.norm(x[k]) / np.linalg.norm(y[k])) for k in keys}
        worst = min(c, key=c.get)
        v = np.array(list(c.values()))
        return f"mean {v.mean():.4f}  min {v.min():.4f}  (n {len(v)}, worst {worst} {c[worst]:.4f}, " \
               f"{(v < 0.97).sum()} below 0.97)"

    every = sorted(hs_exact)
    reduced = [k for k in every if scales[k] > 1]
    print("headstart reduced vs --exact-decode, all images:     ", cos(hs, hs_exact, every))
    print("headstart reduced vs --exact-decode, decoded reduced:", cos(hs, hs_exact, reduced))
    print("Pillow draft() vs full decode, all images:           ", cos(py_draft, py, every))
    print("Pillow draft() vs full decode, decoded reduced:      ", cos(py_draft, py, reduced))
    print("headstart reduced vs Pillow draft(), decoded reduced:", cos(hs, py_draft, reduced))
    print("headstart exact vs Pillow full decode, all images:   ", cos(hs_exact, py, every))
    for r in (4, 8):
        k = [p for p in reduced if scales[p] == r]
        if k:
            print(f"  at 1/{r}: headstart {cos(hs, hs_exact, k)}")
            print(f"  at 1/{r}: draft()   {cos(py_draft, py, k)}")


if __name__ == "__main__":
    main()
