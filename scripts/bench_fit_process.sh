#!/usr/bin/env bash
# Fit process to process: `headstart fit CACHE` against scikit-learn reading the
# same cache's Parquet with pyarrow and fitting LogisticRegression(lbfgs) on the
# same training rows (scripts/bench_fashion_sklearn.py), side by side in one run,
# alternating the order. Wall-clock of each whole process (reading included).
#
#   bash scripts/bench_fit_process.sh CACHE [ROUNDS=3]
#
# CACHE: e.g. a synthetic one from
#   cargo run --release -p headstart-fit --example bench_fit -- --rows 50000 \
#       --dim 1280 --classes 100 --sep 0.012 --save-cache /tmp/fit50k
# Environment: BENCH_VENV (a venv with numpy, scikit-learn, pyarrow; default
# /tmp/hs-sk-venv, made if absent), HEADSTART (the binary).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$1"; ROUNDS="${2:-3}"
VENV="${BENCH_VENV:-/tmp/hs-sk-venv}"
HS="${HEADSTART:-$ROOT/target/release/headstart}"
[ -x "$VENV/bin/python" ] || { python3 -m venv "$VENV"; "$VENV/bin/pip" install -q numpy scikit-learn pyarrow; }
HEAD="$(mktemp -d)/head"
wall() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
hs=(); sk=()
for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then
        hs+=("$(wall "$HS" -q fit "$CACHE" --out "$HEAD" --c 1 --no-report)")
        sk+=("$(wall "$VENV/bin/python" "$ROOT/scripts/bench_fashion_sklearn.py" "$CACHE" --c 1 --max-iter 100)")
    else
        sk+=("$(wall "$VENV/bin/python" "$ROOT/scripts/bench_fashion_sklearn.py" "$CACHE" --c 1 --max-iter 100)")
        hs+=("$(wall "$HS" -q fit "$CACHE" --out "$HEAD" --c 1 --no-report)")
    fi
    echo "round $r: headstart ${hs[-1]} s, scikit-learn ${sk[-1]} s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
h=$(median "${hs[@]}"); s=$(median "${sk[@]}")
echo "median: headstart $h s, scikit-learn $s s, scikit-learn / headstart = $(echo "scale=2; $s / $h" | bc)"
lscpu | grep 'Model name'
