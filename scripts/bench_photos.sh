#!/usr/bin/env bash
# Big photos (12 MP JPEGs), side by side in one run, rotating order:
#   hs        `headstart extract` (JPEGs decoded at a reduced DCT scale, the default)
#   hs-exact  `headstart extract --exact-decode` (full-size decode)
#   py        Python: Pillow full decode, worker pool, onnxruntime, pyarrow (scripts/bench_extract_python.py)
#   py-draft  the same with Pillow's draft() (reduced DCT scale, headstart's rule)
# Then the feature cosine of hs and py-draft against hs-exact (same images).
#
#   bash scripts/bench_photos.sh [N=160] [ROUNDS=2]
#
# Images: scripts/make_12mp_images.py (4032x3024, quality 90) into $BENCH_DIR.
# Python: a venv with onnxruntime (headstart's version), pillow, numpy, pyarrow
# ($BENCH_VENV, made if absent). lscpu goes first in the output.
set -euo pipefail
N="${1:-160}"
ROUNDS="${2:-2}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HS="${HEADSTART:-$ROOT/target/release/headstart}"
export HEADSTART_HOME="${HEADSTART_HOME:-/tmp/hs-bench-home}"
WORK="${BENCH_DIR:-/tmp/hs-bench}"
VENV="${BENCH_VENV:-/tmp/hs-bench-venv}"
IMAGES="${BENCH_IMAGES:-$WORK/photos-12mp-$N}"  # BENCH_IMAGES: another set (N must be its size)
ORT_VERSION="$(sed -n 's/^pub const ORT_VERSION: &str = "\(.*\)";/\1/p' "$ROOT/crates/runtime/src/load.rs")"
mkdir -p "$WORK"
lscpu | grep -E "Model name|^CPU\(s\)|^Flags" | cut -c1-400

if ! "$VENV/bin/python" -c "import onnxruntime, PIL, numpy, pyarrow" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "onnxruntime==$ORT_VERSION" pillow numpy pyarrow
fi
[ -d "$IMAGES" ] || "$VENV/bin/python" "$ROOT/scripts/make_12mp_images.py" --n "$N" --out "$IMAGES"
"$HS" -q runtime install >/dev/null && "$HS" -q models fetch >/dev/null
MODEL="$HEADSTART_HOME/models/efficientnet-lite0/model.onnx"

run() {  # run NAME: prints "NAME images/s cpu_s_per_image"
    local name="$1" out="$WORK/photos-out-$1" t="$WORK/photos-time"
    rm -rf "$out" "$out.parquet"
    case "$name" in
        hs) /usr/bin/time -f "%U %S" -o "$t" "$HS" -q extract "$IMAGES" --out "$out" >/dev/null ;;
        hs-exact) /usr/bin/time -f "%U %S" -o "$t" "$HS" -q extract "$IMAGES" --out "$out" --exact-decode >/dev/null ;;
        py) /usr/bin/time -f "%U %S" -o "$t" "$VENV/bin/python" "$ROOT/scripts/bench_extract_python.py" --model "$MODEL" --input "$IMAGES" --out "$out.parquet" >/dev/null ;;
        py-draft) /usr/bin/time -f "%U %S" -o "$t" "$VENV/bin/python" "$ROOT/scripts/bench_extract_python.py" --model "$MODEL" --input "$IMAGES" --out "$out.parquet" --draft >/dev/null ;;
    esac
}

{
    for r in $(seq "$ROUNDS"); do
        order=(hs hs-exact py py-draft)
        [ $((r % 2)) = 0 ] && order=(py-draft py hs-exact hs)
        for name in "${order[@]}"; do
            start="$(date +%s.%N)"
            run "$name"
            end="$(date +%s.%N)"
            read -r user sys < "$WORK/photos-time"
            python3 -c "print('$name', round($N / ($end - $start), 1), round(($user + $sys) * 1000 / $N, 1))"
        done
    done
} | tee "$WORK/photos-runs"
"$VENV/bin/python" - "$WORK" "$N" <<'PY'
import statistics, sys
import glob
import numpy as np, pyarrow.parquet as pq
work, n = sys.argv[1], sys.argv[2]
rows = [l.split() for l in open(f"{work}/photos-runs")]
med = {k: statistics.median(float(r[1]) for r in rows if r[0] == k) for k in ("hs", "hs-exact", "py", "py-draft")}
cpu = {k: statistics.median(float(r[2]) for r in rows if r[0] == k) for k in med}
for k in med:
    print(f"{k:9} {med[k]:6.1f} images/s  {cpu[k]:6.1f} ms CPU/image")
print(f"hs / py {med['hs'] / med['py']:.2f}x   hs / py-draft {med['hs'] / med['py-draft']:.2f}x   hs / hs-exact {med['hs'] / med['hs-exact']:.2f}x")
def cos(a, b):
    c = [float(a[k] @ b[k] / np.linalg.norm(a[k]) / np.linalg.norm(b[k])) for k in sorted(a)]
    return np.mean(c), np.min(c)
import pyarrow.dataset as ds
def cache(path):
    t = ds.dataset(glob.glob(f"{path}/parts/*.parquet"), format="parquet").to_table(columns=["path", "feature"])
    d = t.to_pydict()
    return {p: np.asarray(f, dtype=np.float64) for p, f in zip(d["path"], d["feature"])}
def table(path):
    d = pq.read_table(path, columns=["path", "feature"]).to_pydict()
    return {p: np.asarray(f, dtype=np.float64) for p, f in zip(d["path"], d["feature"])}
print("feature cosine to full decode, mean / min: headstart %.4f / %.4f" % cos(cache(f"{work}/photos-out-hs"), cache(f"{work}/photos-out-hs-exact")))
print("feature cosine to full decode, mean / min: Python    %.4f / %.4f" % cos(table(f"{work}/photos-out-py-draft.parquet"), table(f"{work}/photos-out-py.parquet")))
print("feature cosine, headstart's reduced decode to Pillow's draft(): %.4f / %.4f" % cos(cache(f"{work}/photos-out-hs"), table(f"{work}/photos-out-py-draft.parquet")))
print("feature cosine, headstart's full decode to Pillow's:            %.4f / %.4f" % cos(cache(f"{work}/photos-out-hs-exact"), table(f"{work}/photos-out-py.parquet")))
PY
