#!/usr/bin/env python3
"""A well-written Python feature-extraction pipeline, the competitor of `headstart extract`.

Same job as `headstart extract INPUT --out CACHE --batch-size 32` on a folder of
class folders: read each file, hash its bytes, decode it with Pillow, centre-crop
and resample it bicubically to the model's input size (one resize call with a
fractional crop box, as headstart does), normalise with numpy, run ONNX Runtime
in batches, and stream the features to Parquet with pyarrow (zstd, a row group
every 2048 rows).

Decoding and preprocessing run in a multiprocessing pool (one worker per core
by default) that works ahead of inference, so it overlaps with ONNX Runtime in
the main process. Work is submitted in chunks of --chunksize images with at
most --window chunks in flight (default 8 x 8 = 64 images, two batches, like
headstart's queue), so memory stays bounded; --unbounded uses plain
`Pool.imap` instead, which decodes the whole input as fast as it can and
buffers every tensor in the main process until inference reaches it. ONNX Runtime gets the same
settings as headstart's default session: intra_op_num_threads = cores,
allow_spinning 0 (intra and inter), all graph optimisations, sequential
execution, CPU provider.

The preprocessing recipe (size, crop fraction, mean, std, layout) is read from
the model's headstart sidecar `model.json` next to `model.onnx`.

    python scripts/bench_extract_python.py --model $HEADSTART_HOME/models/efficientnet-lite0/model.onnx \\
        --input IMAGES --out features.parquet [--batch-size 32] [--workers N] [--threads N]

Prints one JSON line: images, seconds, images_per_second, peak RSS of the main
process and of the largest worker (MiB).
"""

import argparse
import hashlib
import io
import json
import multiprocessing as mp
import os
import resource
import sys
import time

import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}

_PRE = None

# Cores this process may run on (what Rust's available_parallelism reports).
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def list_images(root):
    """(relative path, label) of every image under root/<class>/..., sorted."""
    items = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for f in sorted(filenames):
            if os.path.splitext(f)[1].lower() in EXTS:
                rel = os.path.relpath(os.path.join(dirpath, f), root)
                label = rel.split(os.sep, 1)[0] if os.sep in rel else None
                items.append((rel, label))
    return items


def _init(pre):
    global _PRE
    _PRE = pre


def prepare(job):
    """Worker: file -> (rel, label, hash, CHW float32 tensor) or (rel, label, None, error)."""
    root, rel, label = job
    pre = _PRE
    try:
        with open(os.path.join(root, rel), "rb") as f:
            data = f.read()
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        with Image.open(io.BytesIO(data)) as im:
            if pre["draft"] and im.format == "JPEG":
                # headstart's rule: the largest DCT reduction (1/4 or 1/8; never
                # 1/2) whose output still covers the crop at the model's input size.
                w, h = im.size
                crop = pre["crop_fraction"] * min(w, h)
                need = max(pre["width"], pre["height"])
                r = next((r for r in (8, 4) if crop // r >= need), 1)
                if r > 1:
                    im.draft("RGB", (w // r, h // r))
            im = im.convert("RGB")
            w, h = im.size
            side = pre["crop_fraction"] * min(w, h)
            left, top = (w - side) / 2.0, (h - side) / 2.0
            im = im.resize(
                (pre["width"], pre["height"]),
                Image.BICUBIC,
                box=(left, top, left + side, top + side),
            )
        x = np.asarray(im, dtype=np.float32)
        x -= pre["mean"]
        x *= pre["inv_std"]
        if pre["layout"] == "nchw":
            x = np.ascontiguousarray(x.transpose(2, 0, 1))
        return rel, label, digest, x
    except Exception as e:  # noqa: BLE001 - a bad file is a row in the report, not a crash
        return rel, label, None, f"{type(e).__name__}: {e}"


def prepare_chunk(jobs):
    return [prepare(j) for j in jobs]


def bounded_imap(pool, jobs, chunksize, window):
    """Ordered results of prepare over jobs, at most window chunks in flight."""
    from collections import deque

    chunks = (jobs[i : i + chunksize] for i in range(0, len(jobs), chunksize))
    inflight = deque()
    for c in chunks:
        inflight.append(pool.apply_async(prepare_chunk, (c,)))
        if len(inflight) >= window:
            yield from inflight.popleft().get()
    while inflight:
        yield from inflight.popleft().get()


def worker_peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="model.onnx (its model.json sidecar gives the preprocessing)")
    ap.add_argument("--input", required=True, help="folder of class folders")
    ap.add_argument("--out", required=True, help="Parquet file to write")
    ap.add_argument("--output-name", default=None, help="feature output (default: the sidecar's feature_tensor)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=CORES)
    ap.add_argument("--threads", type=int, default=CORES, help="ORT intra_op_num_threads")
    ap.add_argument("--chunksize", type=int, default=8)
    ap.add_argument("--window", type=int, default=8, help="chunks in flight (bounded mode)")
    ap.add_argument("--unbounded", action="store_true", help="plain Pool.imap, no back-pressure")
    ap.add_argument("--row-group", type=int, default=2048)
    ap.add_argument("--draft", action="store_true", help="decode JPEGs at a reduced DCT scale (Pillow's draft()), as headstart does by default")
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    with open(os.path.join(os.path.dirname(os.path.abspath(args.model)), "model.json")) as f:
        card = json.load(f)
    p = card["preprocess"]
    pre = {
        "height": int(p["height"]),
        "width": int(p["width"]),
        "crop_fraction": float(p["crop_fraction"]),
        "mean": np.array(p["mean"], dtype=np.float32),
        "inv_std": (1.0 / np.array(p["std"], dtype=np.float32)).astype(np.float32),
        "layout": p["layout"],
        "draft": args.draft,
    }
    if p.get("channel_order", "rgb") != "rgb" or p.get("filter", "bicubic") != "bicubic":
        sys.exit("bench_extract_python: only RGB order and bicubic filtering are implemented")
    input_name = p["input_name"]
    output_name = args.output_name or card["feature_tensor"]

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    sess = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])

    items = list_images(args.input)
    dim = None
    writer = None
    pending = {"path": [], "label": [], "content_hash": [], "feature": []}
    rows = failed = 0
    infer_s = write_s = 0.0

    def flush():
        nonlocal writer, write_s
        if not pending["path"]:
            return
        t0 = time.perf_counter()
        feats = np.concatenate(pending["feature"], axis=0)
        table = pa.table(
            {
                "path": pa.array(pending["path"], pa.string()),
                "label": pa.array(pending["label"], pa.string()),
                "content_hash": pa.array(pending["content_hash"], pa.string()),
                "feature": pa.FixedSizeListArray.from_arrays(pa.array(feats.reshape(-1)), dim),
            }
        )
        if writer is None:
            writer = pq.ParquetWriter(args.out, table.schema, compression="zstd", compression_level=3)
        writer.write_table(table)
        for v in pending.values():
            v.clear()
        write_s += time.perf_counter() - t0

    batch, keys = [], []

    def run_batch():
        nonlocal dim, rows, infer_s
        if not batch:
            return
        t0 = time.perf_counter()
        x = np.stack(batch)
        (out,) = sess.run([output_name], {input_name: x})
        out = np.asarray(out, dtype=np.float32).reshape(len(batch), -1)
        infer_s += time.perf_counter() - t0
        dim = out.shape[1]
        for rel, label, digest in keys:
            pending["path"].append(rel)
            pending["label"].append(label)
            pending["content_hash"].append(digest)
        pending["feature"].append(out)
        rows += len(batch)
        batch.clear()
        keys.clear()
        if len(pending["path"]) >= args.row_group:
            flush()

    jobs = [(args.input, rel, label) for rel, label in items]
    t_run = time.perf_counter()
    ctx = mp.get_context("fork")
    with ctx.Pool(args.workers, initializer=_init, initargs=(pre,)) as pool:
        results = (
            pool.imap(prepare, jobs, chunksize=args.chunksize)
            if args.unbounded
            else bounded_imap(pool, jobs, args.chunksize, args.window)
        )
        for rel, label, digest, x in results:
            if digest is None:
                failed += 1
                continue
            batch.append(x)
            keys.append((rel, label, digest))
            if len(batch) == args.batch_size:
                run_batch()
        run_batch()
        flush()
        if writer is not None:
            writer.close()
        pool.close()
        pool.join()
        worker_rss = worker_peak_rss_mib()
    end = time.perf_counter()
    print(
        json.dumps(
            {
                "images": len(items),
                "extracted": rows,
                "failed": failed,
                "seconds": end - t_start,
                "run_seconds": end - t_run,
                "inference_seconds": infer_s,
                "write_seconds": write_s,
                "images_per_second": rows / (end - t_start),
                "intra_threads": args.threads,
                "workers": args.workers,
                "mode": "unbounded" if args.unbounded else f"bounded {args.window}x{args.chunksize}",
                "batch_size": args.batch_size,
                "ort_version": ort.__version__,
                "peak_rss_mib_main": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                "peak_rss_mib_largest_worker": worker_rss,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
