#!/usr/bin/env python3
"""Ray Data's map_batches with headstart.FeatureExtractor against the CLI's
extract on the same image-bytes Parquet, side by side in one run (#25).

Usage (in a venv with ray[data], pyarrow and the headstart wheel):
    python scripts/bench_engines.py IMAGES_DIR N ROUNDS [HEADSTART_BIN]

IMAGES_DIR: any folder of images (searched recursively); its first N files are
packed into 8 Parquet files in WORK/images/ (id, image). Each round runs, in alternating
order, (a) `headstart extract images.parquet --out <fresh cache>` and (b) the
README's Ray example (2 actors of half a CPU each, ORT intra_threads 1) over
the same file, both from a cold cache, and prints images/s of each and the
ratio. ray.init is outside the timing (a cluster is started once); actor
start-up, model loading and the Parquet write are inside, as the CLI's
start-up and write are.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def pack(images_dir, n, out, files_n=8):
    """The first n images as files_n Parquet files in the folder out (a data set
    comes sharded; Ray Data reads one file as one block, so one file would give
    one actor all the work)."""
    files = sorted(p for p in Path(images_dir).rglob("*") if p.is_file())[:n]
    out.mkdir(parents=True)
    for k in range(files_n):
        part = files[k::files_n]
        table = pa.table({
            "id": pa.array(range(k, len(files), files_n), pa.int64()),
            "image": pa.array([f.read_bytes() for f in part], pa.binary()),
        })
        pq.write_table(table, out / f"images-{k:05d}.parquet", row_group_size=256)
    return len(files)


def setup(prefix):
    """Arguments, the packed images and a local Ray cluster of 2 CPUs:
    (n, rounds, binary, work folder, images folder)."""
    images_dir, n, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    binary = sys.argv[4] if len(sys.argv) > 4 else "headstart"
    import ray

    work = Path(tempfile.mkdtemp(prefix=prefix))
    parquet = work / "images"
    n = pack(images_dir, n, parquet)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    return n, rounds, binary, work, parquet


def ray_extract(parquet, out):
    """The README's Ray example over the images in `parquet`, into `out`."""
    import headstart
    import ray

    # Ray Data 2.60 coalesces small files into one block (1 MB minimum),
    # which would give one of the two actors all the work.
    ds = ray.data.read_parquet(str(parquet)).repartition(8).map_batches(
        headstart.FeatureExtractor,
        fn_constructor_kwargs={"model": "efficientnet-lite0", "intra_threads": 1},
        batch_format="pyarrow", batch_size=64, concurrency=2, num_cpus=0.5,
    )
    ds.drop_columns(["image"]).write_parquet(str(out))


def main():
    import ray

    n, rounds, binary, work, parquet = setup("hs-engines-")

    def cli(i):
        out = work / f"cli-{i}"
        t0 = time.time()
        subprocess.run([binary, "-q", "extract", str(parquet), "--out", str(out)], check=True,
                       stdout=subprocess.DEVNULL)
        return time.time() - t0

    def engine(i):
        t0 = time.time()
        ray_extract(parquet, work / f"ray-{i}")
        return time.time() - t0

    results = {"cli": [], "ray": []}
    for r in range(rounds):
        order = [("cli", cli), ("ray", engine)]
        if r % 2:
            order.reverse()
        for name, run in order:
            results[name].append(run(r))
            print(f"round {r} {name}: {n / results[name][-1]:.1f} images/s", flush=True)
    best = {k: min(v) for k, v in results.items()}
    print(f"{n} images; best of {rounds}: CLI {n / best['cli']:.1f} images/s, "
          f"Ray {n / best['ray']:.1f} images/s, Ray / CLI = {best['cli'] / best['ray']:.3f}")
    ray.shutdown()
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
