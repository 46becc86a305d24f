#!/usr/bin/env python3
"""Writes tests/data/pillow/: what Pillow makes of a few images under the
README's "Serve it from Python" `load()` (EXIF transpose, convert("RGB"), centre
square crop as a float box, `resize(size, filter, box=box)`), for every filter.

Usage: python3 scripts/pillow_fixtures.py [OUT_DIR]   (default tests/data/pillow)

`crates/extract/src/tensor.rs` (`tests::pixels_match_pillow_for_every_filter`)
decodes the same inputs with headstart's decoder, runs its resampler and compares
the 8-bit pixels with these, so the test needs no Python. Inputs are PNG
(lossless: both sides see the same decoded pixels):

- grey300.png: a 300x300 greyscale low-contrast "scan" (smooth shading, paper
  grain, faint strokes), mode L;
- chelsea.png: the RGB photo of tests/data (451x300), read from there;
- small40x30.png: a 40x30 RGB image upscaled to 224 (fractional box 26.25 wide);
- fmnist28.png: one 28x28 Fashion-MNIST image (greyscale scan, upscaled 8x);
- portrait.png: coffee transposed (400x600), a crop box in the middle rows.

cases.json lists every case: input, filter, crop_fraction, width, height, the
expected pixels (PNG: mode L when all three channels are equal, else RGB), and
the Pillow version that made them. crop_fraction is written as JSON reads it
from the model metadata (shortest decimal of the float32, e.g. 0.9), and one case
uses 0.9, which float32 cannot hold exactly.

Setup (once): python3 -m venv /tmp/venv-pillow && /tmp/venv-pillow/bin/pip install pillow numpy
"""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import PIL
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
FILTERS = {
    "nearest": Image.NEAREST,
    "bilinear": Image.BILINEAR,
    "bicubic": Image.BICUBIC,
    "lanczos3": Image.LANCZOS,
}


def load(path, pre):
    """The README's load(): keep in step with README.md, "Serve it from Python"."""
    img = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    w, h = img.size
    side = pre["crop_fraction"] * min(w, h)
    box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
    img = img.resize((pre["width"], pre["height"]), FILTERS[pre["filter"]], box=box)
    return np.asarray(img, dtype=np.uint8)  # [H, W, 3], RGB


def grey_scan(rng):
    """300x300, values within about 150..200: shading + grain + faint strokes."""
    y, x = np.mgrid[0:300, 0:300].astype(np.float64)
    v = 175 + 12 * np.sin(x / 37.0) * np.cos(y / 53.0) + 6 * (x - y) / 300
    v += rng.normal(0, 3, v.shape)
    for k in range(12):
        r = 40 + 8 * k
        ring = np.abs(np.hypot(x - 150, y - 140) - r) < 1.2
        v[ring] -= 10 + k
    return Image.fromarray(np.clip(np.rint(v), 0, 255).astype(np.uint8), "L")


def small_rgb(rng):
    """40x30 RGB: gradients with hard edges and noise, the upscaling case."""
    y, x = np.mgrid[0:30, 0:40]
    r = (x * 6 + rng.integers(0, 8, x.shape)) % 256
    g = np.where((x // 5 + y // 5) % 2 == 0, 220, 30) + rng.integers(-6, 6, x.shape)
    b = (y * 8 + x * 2) % 256
    return Image.fromarray(np.clip(np.dstack([r, g, b]), 0, 255).astype(np.uint8), "RGB")


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests/data/pillow"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(15)
    grey_scan(rng).save(out / "grey300.png", optimize=True)
    small_rgb(rng).save(out / "small40x30.png", optimize=True)
    shutil.copyfile(
        ROOT / "data/fashion-mnist-mini/test/ankle-boot/00234.png", out / "fmnist28.png"
    )
    # Portrait: the crop box runs down the middle rows (coffee turned, 400x600).
    Image.open(ROOT / "tests/data/coffee.png").convert("RGB").transpose(Image.TRANSPOSE).save(
        out / "portrait.png", optimize=True
    )
    inputs = {
        "grey300.png": out / "grey300.png",
        "../chelsea.png": ROOT / "tests/data/chelsea.png",
        "small40x30.png": out / "small40x30.png",
        "fmnist28.png": out / "fmnist28.png",
        "portrait.png": out / "portrait.png",
    }
    cases = []
    for name, path in inputs.items():
        shapes = [(0.875, 224, 224, list(FILTERS))]
        if name == "../chelsea.png":
            # A 224 photo is ~95 KB of PNG per filter: every filter at 96 (a
            # wider kernel), the default filter at 224.
            shapes = [(0.875, 224, 224, ["bicubic"]), (0.875, 96, 96, list(FILTERS))]
        if name == "grey300.png":
            shapes.append((0.9, 224, 224, ["nearest", "bicubic"]))  # 0.9: inexact in float32
        if name == "portrait.png":
            shapes = [(0.875, 224, 224, ["bicubic"]), (0.875, 96, 96, list(FILTERS))]
        if name == "small40x30.png":
            shapes.append((1.0, 227, 225, ["nearest", "lanczos3"]))  # odd, non-square
        for crop, width, height, filters in shapes:
            for filt in filters:
                pre = {"crop_fraction": crop, "width": width, "height": height, "filter": filt}
                px = load(path, pre)
                grey = bool((px[..., 0] == px[..., 1]).all() and (px[..., 1] == px[..., 2]).all())
                stem = Path(name).stem
                expected = f"{stem}.{filt}.{crop}.{width}x{height}.png"
                img = Image.fromarray(px[..., 0], "L") if grey else Image.fromarray(px, "RGB")
                img.save(out / expected, optimize=True)
                back = np.asarray(Image.open(out / expected).convert("RGB"))
                assert (back == px).all(), expected
                cases.append({
                    "input": name, "filter": filt, "crop_fraction": crop,
                    "width": width, "height": height, "expected": expected,
                })
    meta = {"pillow": PIL.__version__, "numpy": np.__version__, "cases": cases}
    (out / "cases.json").write_text(json.dumps(meta, indent=1) + "\n")
    total = sum(p.stat().st_size for p in out.iterdir())
    print(f"{len(cases)} cases, Pillow {PIL.__version__}, {total / 1024:.0f} KiB in {out}")


if __name__ == "__main__":
    main()
