#!/usr/bin/env python3
"""Make N benchmark images of realistic size from the scikit-image sample photos.

Each image is a random crop (each side 300-640 px) of one of the photos in
skimage/data (upscaled first when the photo is smaller than the crop), with a
random left-right flip, saved as RGB: even indices as JPEG quality 90, odd as
PNG. Images go into one folder per source photo, so the tree is a labelled
class-folder input for `headstart extract`:

    OUT/<photo>/<index>.jpg|png

Deterministic for a given --seed. Needs Pillow (the bench venv has it).
The photos come from the scikit-image wheel; pass the wheel, or a folder that
holds skimage/data/ (an unpacked wheel) or the *.png/*.jpg files directly:

    python scripts/make_bench_images.py --n 2000 --out /tmp/hs-bench/images-2000 \\
        --photos /tmp/dl/skimage/scikit_image-*.whl
"""

import argparse
import glob
import io
import multiprocessing as mp
import os
import random
import sys
import zipfile

from PIL import Image

# Natural photographs (and micrographs) from skimage/data; synthetic patterns,
# text and tiny images are left out.
PHOTOS = [
    "astronaut.png",
    "brick.png",
    "camera.png",
    "cell.png",
    "chelsea.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "moon.png",
    "motorcycle_left.png",
    "retina.jpg",
    "rocket.jpg",
]

_SOURCES = {}


def load_photos(spec):
    """Returns {stem: RGB PIL image} from a wheel, an unpacked tree or a folder."""
    found = {}
    if os.path.isfile(spec) and spec.endswith(".whl"):
        with zipfile.ZipFile(spec) as z:
            for name in PHOTOS:
                member = f"skimage/data/{name}"
                try:
                    data = z.read(member)
                except KeyError:
                    continue
                found[name] = Image.open(io.BytesIO(data)).convert("RGB")
    else:
        for d in (os.path.join(spec, "skimage", "data"), spec):
            for name in PHOTOS:
                p = os.path.join(d, name)
                if name not in found and os.path.isfile(p):
                    found[name] = Image.open(p).convert("RGB")
    if not found:
        raise SystemExit(f"make_bench_images: no photos found in {spec}")
    return {os.path.splitext(k)[0]: v for k, v in sorted(found.items())}


def _init(sources):
    _SOURCES.update(sources)


def make_one(job):
    i, out, seed = job
    rng = random.Random(seed * 1_000_003 + i)
    names = sorted(_SOURCES)
    name = names[i % len(names)]
    src = _SOURCES[name]
    w, h = rng.randint(300, 640), rng.randint(300, 640)
    sw, sh = src.size
    scale = max(w / sw, h / sh, 1.0)
    if scale > 1.0:
        src = src.resize((round(sw * scale + 0.5), round(sh * scale + 0.5)), Image.BICUBIC)
        sw, sh = src.size
    x, y = rng.randint(0, sw - w), rng.randint(0, sh - h)
    img = src.crop((x, y, x + w, y + h))
    if rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    folder = os.path.join(out, name)
    if i % 2 == 0:
        path = os.path.join(folder, f"{i:06d}.jpg")
        img.save(path, "JPEG", quality=90)
    else:
        path = os.path.join(folder, f"{i:06d}.png")
        img.save(path, "PNG")
    return os.path.getsize(path), w * h


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="number of images (default %(default)s)")
    ap.add_argument("--out", required=True, help="output folder (class folders inside)")
    ap.add_argument(
        "--photos",
        default=None,
        help="scikit-image wheel, unpacked wheel or folder of photos (default: /tmp/dl/skimage/*.whl)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args(argv)

    spec = args.photos
    if spec is None:
        wheels = sorted(glob.glob("/tmp/dl/skimage/*.whl"))
        if not wheels:
            ap.error("--photos is required (no wheel in /tmp/dl/skimage)")
        spec = wheels[-1]
    sources = load_photos(spec)
    for name in sources:
        os.makedirs(os.path.join(args.out, name), exist_ok=True)
    jobs = [(i, args.out, args.seed) for i in range(args.n)]
    with mp.Pool(args.jobs, initializer=_init, initargs=(sources,)) as pool:
        stats = pool.map(make_one, jobs, chunksize=16)
    total = sum(s for s, _ in stats)
    px = sum(p for _, p in stats) / max(len(stats), 1)
    print(
        f"make_bench_images: {args.n} images from {len(sources)} photos in {args.out} "
        f"({total / 1e6:.1f} MB, mean {px / 1e3:.0f} kpx/image, half JPEG q90, half PNG)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
