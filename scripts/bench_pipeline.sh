#!/usr/bin/env bash
# The pipeline's own ceiling: `headstart extract` with a near-null backbone
# (tests/data/models/a_torchvision.onnx at 8x8: 533 parameters, so inference
# costs almost nothing) with 1 and with 2 decode threads, beside the real
# default backbone with the same thread counts. If the pipeline scales, the
# null-backbone rate nearly doubles from 1 to 2 threads; a serial stage shows up
# as a flat line. Rounds alternate the order; fresh cache per run.
#
#   bash scripts/bench_pipeline.sh [IMAGES=data/fashion-mnist-mini] [ROUNDS=3]
#
# The null backbone needs many images for the run to outlast startup (session
# creation, listing): e.g. the sample copied 40 times (50,720 files). The real
# backbone runs on REAL_IMAGES (default: the bundled sample, 1,300 images).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMAGES="${1:-$ROOT/data/fashion-mnist-mini}"
ROUNDS="${2:-3}"
REAL_IMAGES="${REAL_IMAGES:-$ROOT/data/fashion-mnist-mini}"
HS="${HEADSTART:-$ROOT/target/release/headstart}"
export HEADSTART_HOME="${HEADSTART_HOME:-/tmp/hs-bench-home}"
WORK="$(mktemp -d /tmp/hs-pipeline-XXXX)"
trap 'rm -rf "$WORK"' EXIT
NULL=(--model "$ROOT/tests/data/models/a_torchvision.onnx" --size 8 --preset imagenet)

lscpu | grep -E "Model name|^CPU\(s\)" >&2
"$HS" -q extract "$IMAGES" --out "$WORK/warm" "${NULL[@]}" >/dev/null  # page cache, provisioning

one() {  # one LABEL THREADS ARGS...: prints "LABEL THREADS images/s"
    local label="$1" threads="$2"; shift 2
    local cache="$WORK/c-$RANDOM" input="$IMAGES"
    [ "$label" = real ] && input="$REAL_IMAGES"
    "$HS" -q extract "$input" --out "$cache" --threads "$threads" --json "$@" |
        python3 -c "import json,sys; print('$label', $threads, round(json.load(sys.stdin)['images_per_second'],1))"
    rm -rf "$cache"
}

{
    for r in $(seq "$ROUNDS"); do
        one null 1 "${NULL[@]}"; one null 2 "${NULL[@]}"; one real 1; one real 2
        one real 2; one real 1; one null 2 "${NULL[@]}"; one null 1 "${NULL[@]}"
    done
} | tee "$WORK/runs" >&2
python3 - "$WORK/runs" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = lambda m, t: statistics.median(float(r[2]) for r in rows if r[0] == m and r[1] == t)
for m in ("null", "real"):
    one, two = med(m, "1"), med(m, "2")
    print(f"{m:4} backbone: 1 thread {one:9.1f} images/s, 2 threads {two:9.1f} images/s, 2/1 {two/one:.2f}")
PY
