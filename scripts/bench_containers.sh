#!/usr/bin/env bash
# Extract throughput from the same images as loose files, as WebDataset tar
# shards and as Hugging Face style image Parquet, side by side in one run.
#
#   bash scripts/bench_containers.sh [IMAGES=data/fashion-mnist-mini] [ROUNDS=2]
#
# IMAGES is a class-folder tree; it is packed once (crates/extract/examples/
# pack_images.rs: 1,000 images a file, Parquet row groups of 100). Each round
# runs the three extracts into fresh caches, in rotating order, and prints
# images/s from each run's --json summary (wall clock of the whole run).
#
# BENCH_MODEL_ARGS replaces the default backbone, e.g. with a tiny model so the
# input side (read, hash, decode, resize) is what is timed:
#   BENCH_MODEL_ARGS="--model tests/data/models/a_torchvision.onnx --size 8" \
#       bash scripts/bench_containers.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMAGES="$(realpath "${1:-$ROOT/data/fashion-mnist-mini}")"
ROUNDS="${2:-2}"
read -r -a MODEL_ARGS <<< "${BENCH_MODEL_ARGS:-}"
WORK="${BENCH_DIR:-/tmp/hs-bench-containers}"
export HEADSTART_HOME="${HEADSTART_HOME:-/tmp/hs-bench-home}"
cd "$ROOT"
cargo build --release --quiet
cargo build --release --quiet -p headstart-extract --example pack_images
HS="$ROOT/target/release/headstart"
rm -rf "$WORK" && mkdir -p "$WORK"
target/release/examples/pack_images "$IMAGES" "$WORK/tars" "$WORK/parquet"
lscpu | grep -E '^(Model name|CPU\(s\))'
echo "SIMD flags: $(lscpu | grep -o 'avx2\|avx512[a-z_]*\|avx_vnni' | sort -u | tr '\n' ' ')"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "model: ${BENCH_MODEL_ARGS:-the default backbone}"
"$HS" -q runtime install >/dev/null
"$HS" -q models fetch >/dev/null
printf '%-6s %-8s %10s %8s\n' round input images images/s
kinds=(loose tar parquet)
for r in $(seq 1 "$ROUNDS"); do
    for k in $(seq 0 2); do
        kind="${kinds[$(( (k + r - 1) % 3 ))]}"
        case "$kind" in
            loose) in="$IMAGES" ;;
            tar) in="$WORK/tars" ;;
            parquet) in="$WORK/parquet" ;;
        esac
        rm -rf "$WORK/cache-$kind"
        "$HS" -q extract "$in" --out "$WORK/cache-$kind" --json ${MODEL_ARGS[@]+"${MODEL_ARGS[@]}"} \
            > "$WORK/$kind-$r.json"
        python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print("%-6s %-8s %10d %8.1f" % (sys.argv[2], sys.argv[3], s["extracted"], s["images_per_second"]))' \
            "$WORK/$kind-$r.json" "$r" "$kind"
    done
done
