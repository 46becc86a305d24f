"""The fuzzer's seed corpus (crates/extract/tests/fuzz/seeds/): small images of
every layout the decoders read, a few KB each, made by Pillow from a textured
synthetic pattern.

    /work/venvs/pillow/bin/python scripts/make_fuzz_seeds.py crates/extract/tests/fuzz/seeds
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image

W, H = 136, 104


def pattern() -> Image.Image:
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    rng = np.random.default_rng(5)
    r = 128 + 90 * np.sin(x / 7.0) * np.cos(y / 11.0) + rng.normal(0, 6, (H, W))
    g = 128 + 100 * np.sin((x + 2 * y) / 17.0)
    b = 128 + 110 * np.cos(np.hypot(x - 60, y - 40) / 9.0)
    return Image.fromarray(np.stack([r, g, b], -1).clip(0, 255).astype(np.uint8), "RGB")


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    img = pattern()
    jpeg = dict(quality=60)
    img.save(out / "baseline-444.jpg", subsampling="4:4:4", **jpeg)
    img.save(out / "baseline-422.jpg", subsampling="4:2:2", **jpeg)
    img.save(out / "baseline-420.jpg", subsampling="4:2:0", **jpeg)
    img.save(out / "baseline-420-restart.jpg", subsampling="4:2:0", restart_marker_blocks=2, **jpeg)
    img.save(out / "progressive-420.jpg", subsampling="4:2:0", progressive=True, **jpeg)
    img.save(out / "progressive-444.jpg", subsampling="4:4:4", progressive=True, **jpeg)
    img.convert("L").save(out / "grey.jpg", **jpeg)
    img.convert("L").save(out / "grey-progressive.jpg", progressive=True, **jpeg)
    img.convert("CMYK").save(out / "cmyk.jpg", **jpeg)
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(out / "exif-rotated.jpg", exif=exif, **jpeg)
    small = img.resize((W // 2, H // 2))
    small.save(out / "rgb.png")
    small.convert("RGBA").save(out / "rgba.png")
    small.convert("P").save(out / "palette.png")
    small.convert("P").save(out / "image.gif")
    small.save(out / "lossy.webp", quality=50)
    small.save(out / "lossless.webp", lossless=True)
    small.save(out / "image.tiff")
    small.save(out / "image.bmp")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
