#!/usr/bin/env bash
# int8 vs float, side by side in one run (rounds alternate A B B A):
#   ort-fp32   ONNX Runtime alone, float backbone, pre-made tensors (examples/bench_ort)
#   ort-int8   the same with the int8 copy
#   hs-fp32    `headstart extract IMAGES` end to end, float
#   hs-int8    `headstart extract IMAGES --model INT8` end to end
# The int8 copy is made once with `headstart models quantize` (128 calibration
# images of IMAGES). The issue's target: hs-int8 >= 1.6x ort-fp32.
#
#   bash scripts/bench_int8.sh [IMAGES=data/fashion-mnist-mini] [ROUNDS=2]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMAGES="${1:-$ROOT/data/fashion-mnist-mini}"
ROUNDS="${2:-2}"
export HEADSTART_HOME="${HEADSTART_HOME:-/tmp/hs-bench-home}"
WORK="${BENCH_DIR:-/tmp/hs-bench}/int8"
mkdir -p "$WORK"
(cd "$ROOT" && cargo build --release --quiet --bin headstart && cargo build --release --quiet -p headstart-extract --example bench_ort)
HS="$ROOT/target/release/headstart"
ORT="$ROOT/target/release/examples/bench_ort"
lscpu | grep -E 'Model name|^CPU\(s\)' | sed 's/^/# /'
echo "# $(lscpu | grep -o 'avx512_vnni\|avx_vnni\|avx512f' | sort -u | tr '\n' ' ')"
N="$(find "$IMAGES" -type f | wc -l)"
INT8=bench-int8
"$HS" models quantize efficientnet-lite0 --calibrate "$IMAGES" --out "$INT8" --quiet
ips() { python3 -c 'import json,sys; print("%.1f" % json.load(sys.stdin)["images_per_second"])'; }
run() {
    case "$1" in
        ort-fp32) "$ORT" --images 1024 --model efficientnet-lite0 | ips ;;
        ort-int8) "$ORT" --images 1024 --model "$INT8" | ips ;;
        hs-fp32 | hs-int8)
            rm -rf "$WORK/cache"
            model=efficientnet-lite0; [ "$1" = hs-int8 ] && model="$INT8"
            t0=$(date +%s.%N)
            "$HS" extract "$IMAGES" --out "$WORK/cache" --model "$model" --quiet >/dev/null
            t1=$(date +%s.%N)
            python3 -c "print(f'{$N / ($t1 - $t0):.1f}')" ;;
    esac
}
order=(ort-fp32 ort-int8 hs-fp32 hs-int8)
declare -A sum
for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) -eq 0 ]; then seq_=$(printf '%s\n' "${order[@]}" | tac); else seq_=$(printf '%s\n' "${order[@]}"); fi
    line="round $r:"
    for k in $seq_; do v=$(run "$k"); sum[$k]=$(python3 -c "print(${sum[$k]:-0} + $v)"); line="$line $k $v"; done
    echo "$line images/s"
done
python3 - "$ROUNDS" "${sum[ort-fp32]}" "${sum[ort-int8]}" "${sum[hs-fp32]}" "${sum[hs-int8]}" <<'PY'
import sys
r, of, oi, hf, hi = (float(x) for x in sys.argv[1:])
of, oi, hf, hi = of / r, oi / r, hf / r, hi / r
print(f"mean images/s: ort-fp32 {of:.1f}  ort-int8 {oi:.1f}  hs-fp32 {hf:.1f}  hs-int8 {hi:.1f}")
print(f"int8 ORT alone / fp32 ORT alone: {oi / of:.2f}x; hs-int8 end to end / fp32 ORT alone: {hi / of:.2f}x (target 1.6x)")
PY
