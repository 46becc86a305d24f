#!/usr/bin/env python3
"""How fast other inflaters decompress the benchmark PNGs' pixel data.

PNG decoding is inflate (zlib) plus unfiltering; this times the inflate half
alone with stock zlib and, when installed, libdeflate (`pip install deflate`)
and ISA-L (`pip install isal`), on the concatenated IDAT data of the first N
PNGs, and counts the row filters the files use. It answers "would swapping
the png crate's fdeflate for another inflater pay?" without writing a decoder.

    /tmp/hs-bench-venv/bin/python scripts/bench_png_inflate.py /tmp/hs-bench/images-2000 [N=200]
"""

import collections
import glob
import os
import struct
import sys
import time
import zlib


def idat(path):
    """(width, height, colour type, zlib stream) of a non-interlaced PNG."""
    d = open(path, "rb").read()
    pos, parts, ihdr = 8, [], None
    while pos + 8 <= len(d):
        (n,) = struct.unpack(">I", d[pos : pos + 4])
        kind = d[pos + 4 : pos + 8]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", d[pos + 8 : pos + 21])
        elif kind == b"IDAT":
            parts.append(d[pos + 8 : pos + 8 + n])
        pos += 12 + n
    w, h, depth, colour, _, _, interlace = ihdr
    if depth != 8 or interlace:
        raise SystemExit(f"{path}: not an 8-bit non-interlaced PNG")
    return w, h, colour, b"".join(parts)


def main():
    root = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    files = sorted(glob.glob(os.path.join(root, "**", "*.png"), recursive=True))[:n]
    if not files:
        raise SystemExit(f"no PNGs under {root}")
    data, filters = [], collections.Counter()
    for f in files:
        w, h, colour, z = idat(f)
        raw = zlib.decompress(z)
        row = 1 + w * {2: 3, 6: 4, 0: 1, 4: 2}[colour]
        filters.update(raw[y * row] for y in range(h))
        data.append((z, len(raw)))
    inflaters = [("zlib", lambda z, size: zlib.decompress(z))]
    try:
        import deflate

        inflaters.append(("libdeflate", lambda z, size: deflate.zlib_decompress(z, size)))
    except ImportError:
        pass
    try:
        from isal import isal_zlib

        inflaters.append(("isal", lambda z, size: isal_zlib.decompress(z)))
    except ImportError:
        pass
    raw_kb = sum(s for _, s in data) / len(data) / 1024
    z_kb = sum(len(z) for z, _ in data) / len(data) / 1024
    print(f"{len(data)} PNGs: {z_kb:.0f} KiB compressed -> {raw_kb:.0f} KiB filtered rows each")
    names = ["none", "sub", "up", "average", "paeth"]
    total = sum(filters.values())
    print("row filters: " + ", ".join(f"{names[k]} {100 * v / total:.1f} %" for k, v in sorted(filters.items())))
    for name, inflate in inflaters:
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for z, size in data:
                inflate(z, size)
            best = min(best, time.perf_counter() - t0)
        print(f"{name:>10}: {1000 * best / len(data):.2f} ms per PNG (best of 3)")


if __name__ == "__main__":
    main()
