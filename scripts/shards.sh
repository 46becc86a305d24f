#!/usr/bin/env bash
# Extract INPUT into CACHE with N shard processes at once on this machine, as a
# cluster array job would (one process per shard, all writing into the same cache).
#
#   scripts/shards.sh INPUT CACHE N [extra extract args...]
#
# HEADSTART names the headstart command (e.g. HEADSTART=/usr/local/bin/headstart);
# by default `cargo run --release --quiet --` in this repository. Extra arguments go to
# every `headstart extract`, e.g. `--device cuda` (see docs/scaling.md for one process
# per GPU). Exits non-zero if any shard failed (with the last failing status).
set -euo pipefail

if [ "$#" -lt 3 ]; then
    echo "usage: $0 INPUT CACHE N [extra extract args...]" >&2
    exit 2
fi
input="$1"
cache="$2"
n="$3"
shift 3
if ! [[ "$n" =~ ^[1-9][0-9]*$ ]]; then
    echo "$0: N must be a positive integer, got \`$n\`" >&2
    exit 2
fi

if [ -n "${HEADSTART:-}" ]; then
    # Word-split on purpose: HEADSTART may carry arguments ("cargo run --release --").
    read -r -a headstart <<<"$HEADSTART"
else
    repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    headstart=(cargo run --release --quiet --manifest-path "$repo/Cargo.toml" --)
    # Build once up front, so that the N processes do not race on cargo's lock.
    cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
fi

pids=()
for ((i = 0; i < n; i++)); do
    "${headstart[@]}" extract "$input" --out "$cache" --shard "$i/$n" --quiet "$@" &
    pids+=($!)
done
status=0
for p in "${pids[@]}"; do
    wait "$p" || status=$?
done
exit "$status"
