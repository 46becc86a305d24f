#!/usr/bin/env bash
# Peak memory of `headstart extract` as the dataset grows: one fresh extract per
# size (default 2000 and 10000 images from scripts/make_bench_images.py), batch 32,
# default backbone, CPU, each under /usr/bin/time -v.
#
#   bash scripts/bench_extract_rss.sh [SIZE...]        (default: 2000 10000)
#
# Uses the same HEADSTART_HOME / BENCH_DIR / BENCH_VENV as scripts/bench_extract.sh,
# which makes the images (run it first, or this script makes them the same way).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export HEADSTART_HOME="${HEADSTART_HOME:-/tmp/hs-bench-home}"
WORK="${BENCH_DIR:-/tmp/hs-bench}"
VENV="${BENCH_VENV:-/tmp/hs-bench-venv}"
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(2000 10000)
LOG="$WORK/rss-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$LOG"
say() { printf '%s\n' "$*" >&2; }

[ -x /usr/bin/time ] || { apt-get install -y -qq time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }; }
(cd "$ROOT" && cargo build --release --quiet --bin headstart)
HS="$ROOT/target/release/headstart"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q pillow
fi

printf '%8s %9s %8s %10s  %s\n' images wall_s "img/s" peak_MiB "load (1/5/15) after" >"$LOG/table.txt"
for n in "${SIZES[@]}"; do
    IMAGES="$WORK/images-$n"
    if [ ! -f "$IMAGES/.done" ]; then
        PHOTOS="${BENCH_PHOTOS:-$(ls /tmp/dl/skimage/*.whl 2>/dev/null | tail -n 1 || true)}"
        rm -rf "$IMAGES"
        say "making $n images in $IMAGES"
        "$VENV/bin/python" "$ROOT/scripts/make_bench_images.py" --n "$n" --out "$IMAGES" ${PHOTOS:+--photos "$PHOTOS"} >&2
        touch "$IMAGES/.done"
    fi
    find "$IMAGES" -type f -exec cat {} + >/dev/null
    rm -rf "$WORK/cache-rss"
    say "extract $n images ($(uptime))"
    /usr/bin/time -v -o "$LOG/$n.time" "$HS" extract "$IMAGES" --out "$WORK/cache-rss" --batch-size 32 --json --quiet \
        >"$LOG/$n.json" 2>"$LOG/$n.err"
    kb="$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$LOG/$n.time")"
    read -r wall ips <<<"$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["wall_seconds"], d["images_per_second"])' "$LOG/$n.json")"
    printf '%8d %9.1f %8.2f %10d  %s\n' "$n" "$wall" "$ips" "$((kb / 1024))" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$LOG/table.txt"
done
rm -rf "$WORK/cache-rss"
echo "peak RSS of headstart extract (logs in $LOG):"
cat "$LOG/table.txt"
