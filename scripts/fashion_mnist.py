#!/usr/bin/env python3
"""Convert Fashion-MNIST IDX files into a folder of PNGs, one folder per class.

Writes OUT/{train,test}/<class>/<index>.png, 28x28 8-bit greyscale, where
<index> is the image's position in its IDX file (zero-padded to 5 digits).
With --per-class-train N / --per-class-test M only the first N (M) images of
each class, in file order, are written, so the subset is deterministic.

Standard library only (gzip, struct, zlib): the PNGs are encoded by hand.

The IDX files come from the Debian package `dataset-fashion-mnist`
(Zalando's Fashion-MNIST, MIT licence):

    apt-get download dataset-fashion-mnist
    dpkg-deb -x dataset-fashion-mnist_*.deb pkg
    python3 scripts/fashion_mnist.py \\
        --idx-dir pkg/usr/share/datasets/fashion-mnist --out data/fashion-mnist
"""

import argparse
import gzip
import os
import struct
import sys
import zlib

# Label order of Fashion-MNIST (T-shirt/top, Trouser, ..., Ankle boot),
# made filesystem-safe.
CLASSES = [
    "t-shirt-top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
]

SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801


class IdxError(Exception):
    pass


def read_idx_bytes(idx_dir, stem):
    """Returns the bytes of STEM.gz (or plain STEM) in idx_dir."""
    for name, opener in ((stem + ".gz", gzip.open), (stem, open)):
        path = os.path.join(idx_dir, name)
        if os.path.exists(path):
            with opener(path, "rb") as f:
                return path, f.read()
    raise IdxError(f"{os.path.join(idx_dir, stem)}.gz: not found")


def parse_idx(path, data, magic, ndim):
    """Checks the IDX header; returns (dims, offset of the raw u8 data)."""
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError(f"{path}: truncated IDX header")
    (found,) = struct.unpack(">I", data[:4])
    if found != magic:
        raise IdxError(f"{path}: magic 0x{found:08x}, expected 0x{magic:08x}")
    dims = struct.unpack(">" + "I" * ndim, data[4:header])
    size = 1
    for d in dims:
        size *= d
    if len(data) != header + size:
        raise IdxError(
            f"{path}: {len(data) - header} data bytes, header {dims} says {size}"
        )
    return dims, header


def png_chunk(kind, payload):
    body = kind + payload
    return (
        struct.pack(">I", len(payload))
        + body
        + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    )


def encode_png_gray8(pixels, width, height):
    """Encodes width*height u8 pixels (row-major) as an 8-bit greyscale PNG."""
    # Each scanline is prefixed by filter type 0 (None).
    raw = b"".join(
        b"\x00" + pixels[y * width : (y + 1) * width] for y in range(height)
    )
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(raw, 9))
        + png_chunk(b"IEND", b"")
    )


def convert_split(idx_dir, out_dir, split, per_class):
    images_stem, labels_stem = SPLITS[split]
    ipath, images = read_idx_bytes(idx_dir, images_stem)
    lpath, labels = read_idx_bytes(idx_dir, labels_stem)
    (count, rows, cols), ioff = parse_idx(ipath, images, IMAGES_MAGIC, 3)
    (lcount,), loff = parse_idx(lpath, labels, LABELS_MAGIC, 1)
    if count != lcount:
        raise IdxError(f"{ipath} has {count} images but {lpath} has {lcount} labels")

    for name in CLASSES:
        os.makedirs(os.path.join(out_dir, split, name), exist_ok=True)
    written = [0] * len(CLASSES)
    step = rows * cols
    for i in range(count):
        label = labels[loff + i]
        if label >= len(CLASSES):
            raise IdxError(f"{lpath}: label {label} at index {i} is out of range")
        if per_class is not None and written[label] >= per_class:
            if min(written) >= per_class:
                break
            continue
        start = ioff + i * step
        png = encode_png_gray8(images[start : start + step], cols, rows)
        path = os.path.join(out_dir, split, CLASSES[label], f"{i:05d}.png")
        with open(path, "wb") as f:
            f.write(png)
        written[label] += 1
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Convert Fashion-MNIST IDX files to OUT/{train,test}/<class>/<index>.png"
    )
    parser.add_argument(
        "--idx-dir",
        default="/usr/share/datasets/fashion-mnist",
        help="folder with the *-idx?-ubyte.gz files (default: %(default)s)",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--per-class-train",
        type=int,
        metavar="N",
        help="write only the first N training images of each class",
    )
    parser.add_argument(
        "--per-class-test",
        type=int,
        metavar="M",
        help="write only the first M test images of each class",
    )
    args = parser.parse_args(argv)
    for flag, value in (
        ("--per-class-train", args.per_class_train),
        ("--per-class-test", args.per_class_test),
    ):
        if value is not None and value < 0:
            parser.error(f"{flag} must be >= 0")

    try:
        for split, per_class in (
            ("train", args.per_class_train),
            ("test", args.per_class_test),
        ):
            written = convert_split(args.idx_dir, args.out, split, per_class)
            counts = ", ".join(f"{c} {n}" for c, n in zip(CLASSES, written))
            print(f"{split}: {sum(written)} images ({counts})")
            if per_class is not None and min(written) < per_class:
                print(
                    f"warning: {split} has fewer than {per_class} images for some class",
                    file=sys.stderr,
                )
    except (IdxError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
