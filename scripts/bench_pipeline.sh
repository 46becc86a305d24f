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
        python3 -c "import json,sys; d=json.load(sys.stdin); print('$label', $threads, round(d['images_per_second'],1), d['extracted'], *(round(d[k],4) for k in ('wall_seconds','setup_seconds','decode_seconds','inference_seconds','write_seconds')))"
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
# What the cores allow: with T decode threads on C cores, the run cannot be shorter
# than its serial start plus the longer of: decoding spread over T threads, and
# all stages' CPU time (decode summed over threads, inference, writing) spread
# over min(T + 1, C) cores (inference and writing have their own threads).
cores = __import__("os").cpu_count()
for t in ("1", "2"):
    rs = [r for r in rows if r[0] == "null" and r[1] == t]
    bound = statistics.median(
        float(r[3]) / (float(r[5]) + max(float(r[6]) / int(t),
                                         (float(r[6]) + float(r[7]) + float(r[8])) / min(int(t) + 1, cores)))
        for r in rs)
    dec = statistics.median(float(r[6]) for r in rs)
    setup = statistics.median(float(r[5]) for r in rs)
    print(f"null, {t} thread(s): decode CPU {dec:.3f} s summed, setup {setup:.3f} s; "
          f"measured {med('null', t):.0f} images/s = {med('null', t) / bound:.2f} of the {bound:.0f} the cores allow")
PY
