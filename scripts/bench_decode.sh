#!/usr/bin/env bash
# JPEG decode alone, one thread: headstart's decode_for (what extract runs, via
# `bench_ort --preprocess`) against Pillow's draft() at the same DCT scale,
# both over the same files (Pillow reads them from memory, best of 3).
#
#   bash scripts/bench_decode.sh DIR R     # R: the scale headstart picks (8, 4 or 2)
#
# Sets: scripts/make_12mp_images.py --n 160 [--size 2048x1536 | 1024x768] --out DIR
# gives 1/8, 1/4 and 1/2 for the default backbone. Needs $BENCH_VENV with Pillow.
set -euo pipefail
DIR="$1"
R="$2"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BENCH_VENV:-/tmp/hs-bench-venv}"
export HEADSTART_HOME="${HEADSTART_HOME:-/tmp/hs-bench-home}"
lscpu | grep -E "Model name|^CPU\(s\)" 
(cd "$ROOT" && cargo build --release -q -p headstart-extract --example bench_ort)
for _ in 1 2; do
    "$ROOT/target/release/examples/bench_ort" --preprocess "$DIR" | tail -1 |
        python3 -c "import json, sys; d = json.load(sys.stdin); print('headstart decode_for: %.2f ms/image (read %.2f, hash %.2f, resize %.2f)' % (d['decode_ms'], d['read_ms'], d['hash_ms'], d['resize_ms']))"
done
"$VENV/bin/python" - "$DIR" "$R" <<'PY'
import glob, io, sys, time
from PIL import Image
d, r = sys.argv[1], int(sys.argv[2])
datas = [open(f, "rb").read() for f in sorted(glob.glob(d + "/**/*.jpg", recursive=True))]
best = 1e9
for _ in range(3):
    t = time.perf_counter()
    for b in datas:
        im = Image.open(io.BytesIO(b))
        im.draft("RGB", (im.width // r, im.height // r))
        im = im.convert("RGB")
    best = min(best, (time.perf_counter() - t) * 1000 / len(datas))
print("Pillow draft() 1/%d: %.2f ms/image, output %dx%d" % (r, best, *im.size))
PY
