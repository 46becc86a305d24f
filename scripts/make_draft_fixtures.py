"""Small JPEG fixtures and Pillow's draft() decodes of them, for the reduced
decoder's exactness tests (crates/extract/tests/data/draft/).

A textured synthetic pattern (waves, edges and seeded noise, so every DCT
frequency is used) saved by Pillow at q90 in each layout, and for each file
and scale 1/2, 1/4, 1/8 the pixels Pillow's draft() gives, and at 1/1 its full decode
(libjpeg-turbo, fancy upsampling), as PNG.

    /work/venvs/pillow/bin/python scripts/make_draft_fixtures.py crates/extract/tests/data/draft
"""

import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image

W, H = 203, 141


def pattern() -> Image.Image:
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    rng = np.random.default_rng(26)
    r = 128 + 90 * np.sin(x / 5.0) * np.cos(y / 9.0) + rng.normal(0, 18, (H, W))
    g = 128 + 100 * np.sin((x + 2 * y) / 13.0) + 60 * ((x // 17 + y // 11) % 2 - 0.5)
    b = 128 + 110 * np.cos(np.hypot(x - 90, y - 60) / 7.0) + rng.normal(0, 10, (H, W))
    rgb = np.stack([r, g, b], axis=-1).clip(0, 255).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    img = pattern()
    files = {
        "444": dict(subsampling="4:4:4"),
        "422": dict(subsampling="4:2:2"),
        "420": dict(subsampling="4:2:0"),
        "420-restart": dict(subsampling="4:2:0", restart_marker_blocks=3),
        "444-progressive": dict(subsampling="4:4:4", progressive=True),
        "420-progressive": dict(subsampling="4:2:0", progressive=True),
        "444-progressive-restart": dict(subsampling="4:4:4", progressive=True, restart_marker_blocks=5),
    }
    for name, opts in files.items():
        img.save(out / f"{name}.jpg", quality=90, **opts)
    img.convert("L").save(out / "grey.jpg", quality=90)
    # An even width: the last chroma column's right neighbour is padding.
    img.crop((0, 0, W - 1, H - 1)).save(out / "422-even.jpg", quality=90, subsampling="4:2:2")
    for path in sorted(out.glob("*.jpg")):
        for s in (1, 2, 4, 8):  # 1: the full decode, the exact path's reference
            im = Image.open(path)
            w, h = im.size
            im.draft(im.mode, (w // s, h // s))
            want = (math.ceil(w / s), math.ceil(h / s))
            assert im.size == want, (path, s, im.size, want)
            im.load()
            im.save(out / f"{path.stem}-{s}.png", optimize=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
