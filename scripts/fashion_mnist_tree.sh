#!/usr/bin/env bash
# Builds the Fashion-MNIST class-folder tree the benchmarks use, once:
#
#   bash scripts/fashion_mnist_tree.sh PER_CLASS_TRAIN PER_CLASS_TEST WORK
#
# prints the tree's path (WORK/fashion-mnist-TRAIN-TEST). The first PER_CLASS_TRAIN
# training images of each class in file order, of which the last 20 % per class (by
# index) go to val/, and the first PER_CLASS_TEST test images per class; `6000 1000`
# is the full set (48,000 train, 12,000 val, 10,000 test). The IDX files come from
# the Debian package dataset-fashion-mnist (FASHION_DEB, else /tmp/dl/*.deb, else
# `apt-get download`).
set -euo pipefail
TRAIN="$1" TEST="$2" WORK="$3"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="$WORK/fashion-mnist-$TRAIN-$TEST"
if [ ! -f "$DATA/.done" ]; then
    IDX="$WORK/fashion-mnist-idx"
    if [ ! -f "$IDX/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz" ]; then
        DEB="${FASHION_DEB:-$(ls /tmp/dl/dataset-fashion-mnist_*.deb 2>/dev/null | tail -n 1 || true)}"
        if [ -z "$DEB" ]; then
            tmp="$(mktemp -d)"
            chmod 755 "$tmp"
            (cd "$tmp" && apt-get download dataset-fashion-mnist >&2)
            DEB="$(ls "$tmp"/dataset-fashion-mnist_*.deb)"
        fi
        dpkg-deb -x "$DEB" "$IDX"
    fi
    rm -rf "$DATA"
    python3 "$ROOT/scripts/fashion_mnist.py" --idx-dir "$IDX/usr/share/datasets/fashion-mnist" \
        --out "$DATA" --per-class-train "$TRAIN" --per-class-test "$TEST" >&2
    nval=$((TRAIN / 5))
    for d in "$DATA"/train/*/; do
        c="$(basename "$d")"
        mkdir -p "$DATA/val/$c"
        ls "$d" | sort | tail -n "$nval" | while read -r f; do mv "$d/$f" "$DATA/val/$c/"; done
    done
    touch "$DATA/.done"
fi
echo "$DATA"
