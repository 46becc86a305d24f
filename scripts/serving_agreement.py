#!/usr/bin/env python3
"""How often the README's Python serving snippet agrees with `headstart predict`.

Usage: python3 scripts/serving_agreement.py [--headstart BIN] [--train DIR]
           [--work DIR] IMAGES...

Fits a head on --train (default data/fashion-mnist-mini/train: extract + fit with
the default backbone), exports it with `headstart export --with-preprocessing`,
then classifies every image under IMAGES (default data/fashion-mnist-mini/test
and data/fashion-mnist-mini/train: greyscale scans, plus tests/data's two
photos) twice: with `headstart predict --format json` and with the README's
`load()` + onnxruntime. Prints the top-1 agreement, the largest probability
difference, and each disagreement.

Setup (once): python3 -m venv /tmp/venv-pillow && /tmp/venv-pillow/bin/pip install pillow numpy onnxruntime
Uses HEADSTART_HOME (runtime and default model) as headstart does.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
FILTERS = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR,
           "bicubic": Image.BICUBIC, "lanczos3": Image.LANCZOS}
EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


def readme_load(path, pre):
    """The README's load(), verbatim but for `pre` as an argument."""
    img = Image.open(path)
    if img.format == "JPEG" and pre.get("jpeg_decode") == "reduced":
        # As headstart: a big JPEG decodes at the largest DCT reduction (1/4 or
        # 1/8; never 1/2) whose output still covers the crop at the model's input size.
        w, h = img.size
        crop, need = pre["crop_fraction"] * min(w, h), max(pre["width"], pre["height"])
        r = next((r for r in (8, 4) if crop // r >= need), 1)
        if r > 1:
            img.draft("RGB", (w // r, h // r))
    img = ImageOps.exif_transpose(img).convert("RGB")  # as headstart: EXIF applied
    w, h = img.size
    side = pre["crop_fraction"] * min(w, h)
    box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
    img = img.resize((pre["width"], pre["height"]), FILTERS[pre["filter"]], box=box)
    return np.asarray(img, dtype=np.uint8)  # [H, W, 3], RGB


def run(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed ({out.returncode}):\n{out.stderr}")
    return out.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--headstart", default=str(ROOT / "target/release/headstart"))
    ap.add_argument("--train", default=str(ROOT / "data/fashion-mnist-mini/train"))
    ap.add_argument("--work", default=None)
    ap.add_argument("images", nargs="*")
    a = ap.parse_args()
    images = a.images or [
        str(ROOT / "data/fashion-mnist-mini/test"),
        str(ROOT / "data/fashion-mnist-mini/train"),
        str(ROOT / "tests/data/chelsea.png"),
        str(ROOT / "tests/data/coffee.png"),
    ]
    work = Path(a.work or tempfile.mkdtemp(prefix="serving-agreement-"))
    hs = a.headstart
    run([hs, "-q", "extract", a.train, "--out", work / "cache"])
    run([hs, "-q", "fit", work / "cache", "--out", work / "head"])
    run([hs, "-q", "export", work / "head", "--out", work / "classifier.onnx",
         "--with-preprocessing"])

    files = []
    for i in images:
        p = Path(i)
        files += sorted(f for f in p.rglob("*") if f.suffix.lower() in EXTS) if p.is_dir() else [p]
    session = ort.InferenceSession(str(work / "classifier.onnx"),
                                   providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    classes = json.loads(meta["headstart.class_names"])
    pre = json.loads(meta["headstart.image_preprocess"])

    # headstart predict, all classes, in one run per input.
    ours = {}
    for i in images:
        rows = json.loads(run([hs, "-q", "predict", work / "head", i, "--format", "json",
                               "--top-k", str(len(classes))]))
        for r in rows:
            if r.get("error"):
                sys.exit(f"{r['path']}: {r['error']}")
            ours[str(Path(r["path"]).resolve())] = {
                p["label"]: p["probability"] for p in r["predictions"]}

    agree, worst, disagreements = 0, 0.0, []
    for start in range(0, len(files), 64):
        chunk = files[start:start + 64]
        probs, labels = session.run(None, {"image": np.stack([readme_load(f, pre) for f in chunk])})
        for f, p, label in zip(chunk, probs, labels):
            mine = ours[str(f.resolve())]
            top = max(mine, key=mine.get)
            diff = max(abs(float(p[k]) - mine[c]) for k, c in enumerate(classes))
            worst = max(worst, diff)
            if classes[label] == top:
                agree += 1
            else:
                disagreements.append(f"{f}: python {classes[label]} {p[label]:.4f}, "
                                     f"headstart {top} {mine[top]:.4f}")
    n = len(files)
    print(f"top-1 agreement {agree}/{n} = {100 * agree / n:.2f} %, "
          f"largest probability difference {worst:.2e} "
          f"(filter {pre['filter']}, crop {pre['crop_fraction']}, "
          f"{pre['width']}x{pre['height']}; Pillow {Image.__version__}, onnxruntime {ort.__version__})")
    for d in disagreements:
        print("  differs:", d)


if __name__ == "__main__":
    main()
