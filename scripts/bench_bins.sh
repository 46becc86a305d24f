#!/usr/bin/env bash
# Two headstart binaries side by side (e.g. before and after a refactor): extract
# and fit on the same images, alternating A B B A per round so drifting load
# favours neither. Prints images/s of extract (fresh cache each run) and wall
# seconds of fit, per run and the B/A ratio of medians.
#
#   bash scripts/bench_bins.sh A_BIN B_BIN [IMAGES=data/fashion-mnist-mini] [ROUNDS=3]
#
# Both binaries share HEADSTART_HOME (default /tmp/hs-bench-home), so the runtime
# and model are provisioned once. lscpu goes in the log with the figures.
set -euo pipefail
A="$1"; B="$2"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMAGES="${3:-$ROOT/data/fashion-mnist-mini}"
ROUNDS="${4:-3}"
export HEADSTART_HOME="${HEADSTART_HOME:-/tmp/hs-bench-home}"
WORK="$(mktemp -d /tmp/hs-bins-XXXX)"
trap 'rm -rf "$WORK"' EXIT

lscpu | grep -E "Model name|^CPU\(s\)" >&2
"$A" -q runtime install >/dev/null && "$A" -q models fetch >/dev/null
"$A" -q extract "$IMAGES" --out "$WORK/warm" >/dev/null  # warm the page cache

one() {  # one BIN LABEL: prints "LABEL extract_img_s fit_s"
    local bin="$1" label="$2" cache="$WORK/cache-$RANDOM" t0 t1
    local rate
    rate="$("$bin" -q extract "$IMAGES" --out "$cache" --json | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["images_per_second"],1))')"
    t0="$(date +%s.%N)"
    "$bin" -q fit "$cache" --out "$cache-head" >/dev/null
    t1="$(date +%s.%N)"
    rm -rf "$cache" "$cache-head"
    printf '%s %s %.2f\n' "$label" "$rate" "$(echo "$t1 - $t0" | bc)"
}

{
    for r in $(seq "$ROUNDS"); do
        one "$A" A; one "$B" B; one "$B" B; one "$A" A
    done
} | tee "$WORK/runs" >&2
python3 - "$WORK/runs" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def med(label, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == label)
ea, eb, fa, fb = med("A", 1), med("B", 1), med("A", 2), med("B", 2)
print(f"extract images/s  A {ea:.1f}  B {eb:.1f}  B/A {eb/ea:.3f}")
print(f"fit seconds       A {fa:.2f}  B {fb:.2f}  B/A {fb/fa:.3f}")
PY
