"""PSNR of headstart's reduced JPEG decodes against Pillow's draft() on a photo
folder, per sampling layout and scale.

    cargo run --release -p headstart-extract --example reduced_scales -- PHOTOS OUT
    /work/venvs/pillow/bin/python scripts/bench_reduced_exactness.py PHOTOS OUT
"""

import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image


def layout(im: Image.Image) -> str:
    prog = "progressive " if im.info.get("progressive") else ""
    if im.mode == "L":
        return prog + "grey"
    sampling = {(2, 2): "4:2:0", (2, 1): "4:2:2", (1, 1): "4:4:4", (1, 2): "4:4:0"}
    h, v = im.layer[0][1], im.layer[0][2]
    return prog + sampling.get((h, v), f"{h}x{v}")


def main(photos: Path, ours: Path) -> None:
    table = defaultdict(list)
    for path in sorted(photos.glob("*.jp*g")):
        for r in (2, 4, 8):
            mine = ours / f"{path.stem}-{r}.png"
            if not mine.exists():
                continue
            im = Image.open(path)
            kind = layout(im)
            w, h = im.size
            im.draft(im.mode, (w // r, h // r))
            a = np.asarray(im.convert("RGB"), dtype=np.float64)
            b = np.asarray(Image.open(mine).convert("RGB"), dtype=np.float64)
            if a.shape != b.shape:
                print(f"{path.name} 1/{r}: draft {a.shape} vs ours {b.shape}")
                continue
            mse = ((a - b) ** 2).mean()
            table[(kind, r)].append(math.inf if mse == 0 else 10 * math.log10(255**2 / mse))
    print(f"{'layout':<24} scale  files  identical  min PSNR dB  mean PSNR dB")
    for (kind, r), v in sorted(table.items()):
        finite = [p for p in v if p != math.inf]
        same = len(v) - len(finite)
        lo = f"{min(finite):.1f}" if finite else "inf"
        mean = f"{sum(finite) / len(finite):.1f}" if finite else "inf"
        print(f"{kind:<24} 1/{r:<4} {len(v):>5}  {same:>9}  {lo:>11}  {mean:>12}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
