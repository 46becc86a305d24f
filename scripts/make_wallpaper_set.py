#!/usr/bin/env python3
"""The real-picture set of issue 26 from Debian's wallpaper packages, as a folder
of class folders for `headstart extract`, each picture once (the packages link
one file under many size names):

    OUT/plasma/<wallpaper>[-dark]-<W>x<H>.jpg  every distinct JPEG of
                                    plasma-workspace-wallpapers, copied as it is
    OUT/plasma-png/<wallpaper>[-dark]-<W>x<H>.jpg  its distinct PNG wallpapers
                                    (not the screenshots), re-encoded by Pillow at
                                    q90 in 4:2:0
    OUT/gnome/<picture>-<sampling>.jpg  every PNG/WebP of gnome-backgrounds
                                    re-encoded by Pillow at q90 in 4:2:0, 4:2:2
                                    and 4:4:4

ROOT is where the packages are unpacked (`apt-get download plasma-workspace-wallpapers
gnome-backgrounds`, then `dpkg-deb -x PKG.deb ROOT` for each). Needs Pillow.

    python scripts/make_wallpaper_set.py ROOT OUT
"""

import hashlib
import shutil
import sys
from pathlib import Path

from PIL import Image


def distinct(paths):
    """The paths whose contents were not seen before, in order."""
    seen = set()
    for path in paths:
        digest = hashlib.sha256(path.read_bytes()).digest()
        if digest not in seen:
            seen.add(digest)
            yield path


def name(walls: Path, path: Path, img: Image.Image) -> str:
    rel = path.relative_to(walls).parts
    dark = "-dark" if "images_dark" in rel else ""
    return f"{rel[0]}{dark}-{img.width}x{img.height}.jpg"


def main(root: Path, out: Path) -> None:
    walls = root / "usr/share/wallpapers"
    for d in ("plasma", "plasma-png", "gnome"):
        (out / d).mkdir(parents=True, exist_ok=True)
    for path in distinct(sorted(walls.rglob("*.jpg"))):
        shutil.copyfile(path, out / "plasma" / name(walls, path, Image.open(path)))
    pngs = [p for p in sorted(walls.rglob("*.png")) if p.parent.name in ("images", "images_dark")]
    for path in distinct(pngs):
        img = Image.open(path).convert("RGB")
        img.save(out / "plasma-png" / name(walls, path, img), quality=90, subsampling="4:2:0")
    pictures = sorted(
        p for p in (root / "usr/share/backgrounds").rglob("*") if p.suffix in (".png", ".webp")
    )
    for path in pictures:
        img = Image.open(path).convert("RGB")
        for sampling in ("4:2:0", "4:2:2", "4:4:4"):
            stem = f"{path.stem}-{sampling.replace(':', '')}"
            img.save(out / "gnome" / f"{stem}.jpg", quality=90, subsampling=sampling)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
