#!/usr/bin/env bash
# Issue #23's targets, side by side in one run: the same inputs read from local
# disk and from a local S3-compatible server over loopback.
#
#   bash scripts/bench_objstore.sh [PHOTOS=/tmp/hs-real/photos] [ROUNDS=3]
#
# A. tar shards, the default backbone (inference-bound): PHOTOS (a class-folder
#    tree of real photos) copied COPIES times (default 3), packed 32 images a
#    shard; `extract <local dir of .tar>` against `extract s3://bench/shards/`.
#    Target: the bucket at >= 0.9x local disk.
# B. SMALL images (default 10,000: data/fashion-mnist-mini repeated) as single
#    objects, a near-null backbone (tests/data/models/a_torchvision.onnx at 8x8),
#    `--io-concurrency 32`. Target: >= 0.8x local disk.
#
# SERVER=moto (moto[server] in a venv under WORK, the tests' server) or
# SERVER=s3s with S3S_FS=path/to/s3s-fs (`cargo install s3s-fs@0.14.1 --features
# binary`: a Rust server over a folder). Each run also records the server's CPU
# seconds and headstart's own (user + sys): on 2 cores the server's work is
# taken from headstart, so the CPU ratio tells what reading from a store costs
# headstart itself, as it would with the store on other machines.
# Rounds alternate the order; every run gets a fresh cache.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PHOTOS="$(realpath "${1:-/tmp/hs-real/photos}")"
ROUNDS="${2:-3}"
COPIES="${COPIES:-3}"
SMALL="${SMALL:-10000}"
SERVER="${SERVER:-moto}"
WORK="${BENCH_DIR:-/tmp/hs-bench-objstore}"
export HEADSTART_HOME="${HEADSTART_HOME:-/tmp/hs-bench-home}"
cd "$ROOT"
cargo build --release --quiet
cargo build --release --quiet -p headstart-extract --example pack_images
HS="$ROOT/target/release/headstart"
NULL=(--model "$ROOT/tests/data/models/a_torchvision.onnx" --size 8 --preset imagenet)
mkdir -p "$WORK"
rm -rf "$WORK/caches" "$WORK/data" "$WORK/s3root"
mkdir -p "$WORK/caches" "$WORK/data"

lscpu | grep -E '^(Model name|CPU\(s\))'
echo "SIMD flags: $(lscpu | grep -o 'avx2\|avx512[a-z_]*\|amx[a-z_]*' | sort -u | tr '\n' ' ')"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg); server: $SERVER"

# ---- data: A (tar shards of real photos), B (small images, one object each)
for c in $(seq 1 "$COPIES"); do
    for d in "$PHOTOS"/*/; do
        k="$(basename "$d")"
        mkdir -p "$WORK/data/photos/$k"
        for f in "$d"*; do ln -s "$f" "$WORK/data/photos/$k/c$c-$(basename "$f")"; done
    done
done
target/release/examples/pack_images "$WORK/data/photos" "$WORK/data/shards" "$WORK/data/pq" 32 >/dev/null
FM="$ROOT/data/fashion-mnist-mini/train"
n=0
while [ "$n" -lt "$SMALL" ]; do
    for f in "$FM"/*/*; do
        [ "$n" -ge "$SMALL" ] && break
        k="$(basename "$(dirname "$f")")"
        mkdir -p "$WORK/data/small/$k"
        cp "$f" "$WORK/data/small/$k/$n-$(basename "$f")"
        n=$((n + 1))
    done
done
echo "A: $(find "$WORK/data/shards" -name '*.tar' | wc -l) shards, $(du -shL "$WORK/data/shards" | cut -f1); B: $SMALL objects, $(du -sh "$WORK/data/small" | cut -f1)"

# ---- the server
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=benchsecret AWS_REGION=us-east-1
ENDPOINT="http://127.0.0.1:$PORT"
VENV="$WORK/venv"
[ -x "$VENV/bin/moto_server" ] || {
    python3 -m venv "$VENV" && "$VENV/bin/pip" -q install 'moto[server]==5.2.6' boto3
}
if [ "$SERVER" = s3s ]; then
    mkdir -p "$WORK/s3root/bench/shards" "$WORK/s3root/bench/small"
    cp -L "$WORK/data/shards/"*.tar "$WORK/s3root/bench/shards/"
    cp -r "$WORK/data/small/." "$WORK/s3root/bench/small/"
    "${S3S_FS:?set S3S_FS to the s3s-fs binary}" --host 127.0.0.1 --port "$PORT" \
        --access-key "$AWS_ACCESS_KEY_ID" --secret-key "$AWS_SECRET_ACCESS_KEY" \
        "$WORK/s3root" >/dev/null 2>&1 &
else
    "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >/dev/null 2>&1 &
fi
SPID=$!
trap 'kill $SPID 2>/dev/null; wait $SPID 2>/dev/null || true' EXIT
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT))" 2>/dev/null; do sleep 0.2; done
if [ "$SERVER" = moto ]; then
    "$VENV/bin/python" - "$ENDPOINT" "$WORK/data" <<'PY'
import boto3, os, sys
from concurrent.futures import ThreadPoolExecutor
endpoint, data = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=endpoint)
s3.create_bucket(Bucket="bench")
jobs = []
for sub in ("shards", "small"):
    for d, _, files in os.walk(os.path.join(data, sub)):
        for f in files:
            p = os.path.join(d, f)
            jobs.append((p, sub + "/" + os.path.relpath(p, os.path.join(data, sub))))
with ThreadPoolExecutor(16) as ex:
    list(ex.map(lambda j: s3.upload_file(os.path.realpath(j[0]), "bench", j[1]), jobs))
print(f"uploaded {len(jobs)} objects", file=sys.stderr)
PY
fi

server_cpu() {  # CPU seconds of the server so far
    awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$SPID/stat"
}

one() {  # one CASE WHERE: prints "CASE WHERE images/s server_cpu_s wall_s headstart_cpu_s"
    local case="$1" where="$2" input args=()
    local cache="$WORK/caches/$case-$where-$RANDOM"
    if [ "$case" = A ]; then
        input="$WORK/data/shards"; [ "$where" = s3 ] && input="s3://bench/shards/"
    else
        input="$WORK/data/small"; [ "$where" = s3 ] && input="s3://bench/small/"
        args=("${NULL[@]}" --io-concurrency 32)
    fi
    [ "$where" = s3 ] && args+=(--endpoint "$ENDPOINT")
    local before after
    before="$(server_cpu)"
    /usr/bin/time -f "%U %S" -o "$cache.time" \
        "$HS" -q extract "$input" --out "$cache" --json "${args[@]}" > "$cache.json"
    after="$(server_cpu)"
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); u,s=map(float,open(sys.argv[2]).read().split()[-2:]); assert d['failed']==0, d; print('$case', '$where', round(d['images_per_second'],1), round($after-$before,2), round(d['wall_seconds'],2), round(u+s,2))" "$cache.json" "$cache.time"
    rm -rf "$cache" "$cache.json" "$cache.time"
}

one A local >/dev/null; one B local >/dev/null  # page cache, provisioning
printf '%-4s %-6s %10s %12s %8s %14s\n' case input images/s server_cpu_s wall_s headstart_cpu_s
{
    for r in $(seq 1 "$ROUNDS"); do
        if [ $((r % 2)) = 1 ]; then
            one A local; one A s3; one B local; one B s3
        else
            one B s3; one B local; one A s3; one A local
        fi
    done
} | tee "$WORK/runs"
python3 - "$WORK/runs" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = lambda c, w, i=2: statistics.median(float(r[i]) for r in rows if r[0] == c and r[1] == w)
for c, what, target in (("A", "tar shards, default backbone", 0.9),
                        ("B", "single small objects, null backbone, 32 in flight", 0.8)):
    local, s3 = med(c, "local"), med(c, "s3")
    busy = med(c, "s3", 3) / med(c, "s3", 4)
    cpu = med(c, "s3", 5) / med(c, "local", 5)
    print(f"{c} ({what}): local {local:.1f} images/s, bucket {s3:.1f} images/s, "
          f"ratio {s3 / local:.2f} (target >= {target}); server busy {busy:.2f} cores; "
          f"headstart's own CPU bucket/local {cpu:.2f}")
PY
