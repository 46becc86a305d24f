#!/usr/bin/env python3
"""Make N 12 MP JPEG photos (4032x3024, quality 90) for the big-photo benchmark.

Each image is a random crop (at least half of each side, random left-right
flip) of one of the bundled photos (tests/data/chelsea.png, coffee.png, or the
files given with --photos), upscaled to 4032x3024 with Lanczos, so the JPEG
holds the kind of smooth detail a phone photo has. Images go into one folder per
source photo (a labelled class-folder input for `headstart extract`):

    OUT/<photo>/<index>.jpg

Deterministic for a given --seed. Needs Pillow.

    python scripts/make_12mp_images.py --n 160 --out /tmp/hs-bench/photos-12mp

With --tree DIR every image of a labelled tree (class folders, optionally under
split folders, e.g. data/fashion-mnist-mini) becomes a 12 MP JPEG at the same
relative path: square images are upscaled to 3464x3464, others to 4032x3024. This
gives a labelled 12 MP set on which heads fitted on both decodes can be compared.
"""

import argparse
import os
import random

from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=160)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--photos", nargs="*", default=[
        os.path.join(ROOT, "tests/data/chelsea.png"),
        os.path.join(ROOT, "tests/data/coffee.png"),
    ])
    ap.add_argument("--tree", help="a labelled image tree to upscale instead")
    ap.add_argument("--progressive", action="store_true",
                    help="write progressive JPEGs (as web tools often do)")
    ap.add_argument("--size", default="4032x3024",
                    help="WxH of the photos (not --tree), e.g. 2048x1536 for the 1/4-scale case")
    a = ap.parse_args()
    if a.tree:
        for dirpath, _, files in os.walk(a.tree):
            for f in sorted(files):
                src = os.path.join(dirpath, f)
                rel = os.path.relpath(src, a.tree)
                img = Image.open(src).convert("RGB")
                size = (3464, 3464) if img.width == img.height else (4032, 3024)
                dst = os.path.join(a.out, os.path.splitext(rel)[0] + ".jpg")
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                img.resize(size, Image.LANCZOS).save(dst, quality=90, progressive=a.progressive)
        return
    size = tuple(int(v) for v in a.size.split("x"))
    rng = random.Random(a.seed)
    photos = [(os.path.splitext(os.path.basename(p))[0], Image.open(p).convert("RGB")) for p in a.photos]
    for i in range(a.n):
        name, img = photos[i % len(photos)]
        w, h = img.size
        cw, ch = rng.randint(w // 2, w), rng.randint(h // 2, h)
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        big = img.crop((x, y, x + cw, y + ch)).resize(size, Image.LANCZOS)
        if rng.random() < 0.5:
            big = big.transpose(Image.FLIP_LEFT_RIGHT)
        d = os.path.join(a.out, name)
        os.makedirs(d, exist_ok=True)
        big.save(os.path.join(d, f"{i:05d}.jpg"), quality=90, progressive=a.progressive)


if __name__ == "__main__":
    main()
