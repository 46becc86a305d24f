#!/usr/bin/env bash
# Concurrency stress on the release binary (issue #12, defect 8):
#   1. `cache compact` in the background while `fit` reads the same cache, N tries;
#   2. two `cache compact` at once, M tries; the live rows must stay 1,300, dead 0.
# The cache is the bundled sample extracted in many small parts, copied fresh each try.
#
#   bash scripts/stress_compact.sh [N=24] [M=10]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N="${1:-24}"; M="${2:-10}"
HS="$ROOT/target/release/headstart"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
"$HS" -q extract "$ROOT/data/fashion-mnist-mini" --out "$WORK/template" --flush-every 50 >/dev/null
echo "template: $(ls "$WORK/template/parts" | grep -c '\.parquet$') parts"
fails=0
for i in $(seq 1 "$N"); do
    rm -rf "$WORK/c"; cp -r "$WORK/template" "$WORK/c"
    "$HS" -q cache compact "$WORK/c" >/dev/null 2>&1 &
    sleep "0.0$((RANDOM % 10))"
    "$HS" -q fit "$WORK/c" --out "$WORK/h" >"$WORK/fit.log" 2>&1 || { fails=$((fails + 1)); tail -2 "$WORK/fit.log"; }
    wait
done
echo "fit during compact: $fails failures in $N tries"
bad=0
for i in $(seq 1 "$M"); do
    rm -rf "$WORK/c"; cp -r "$WORK/template" "$WORK/c"
    "$HS" -q cache compact "$WORK/c" >/dev/null 2>&1 & a=$!
    rb=0; "$HS" -q cache compact "$WORK/c" >/dev/null 2>&1 || rb=$?
    ra=0; wait "$a" || ra=$?
    rows="$("$HS" cache info "$WORK/c" | grep '^rows')"
    if [ "$ra$rb" != "00" ] || ! grep -q "1300 live, 0 dead" <<<"$rows"; then
        bad=$((bad + 1)); echo "try $i: exit $ra/$rb, $rows"
    fi
done
echo "two compacts at once: $((M - bad)) of $M kept 1300 live and 0 dead rows"
