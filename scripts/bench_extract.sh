#!/usr/bin/env bash
# Extract throughput, side by side in one run:
#   ort      ONNX Runtime alone on pre-made random tensors (crates/extract/examples/bench_ort.rs)
#   headstart  `headstart extract IMAGES --out CACHE --batch-size 32` end to end
#   python   onnxruntime + Pillow + numpy + multiprocessing + pyarrow (scripts/bench_extract_python.py),
#            decode pool bounded to ~2 batches ahead (like headstart's queue)
#   pyunb    the same with plain Pool.imap: decodes everything ahead, unbounded memory
#            (set BENCH_PY_UNBOUNDED=0 to skip it)
# Same model (the default backbone, efficientnet-lite0), same ONNX Runtime
# version, same thread settings (intra-op threads = cores, spinning off), same
# images. Rounds alternate the order (ort, headstart, python, pyunb, then
# pyunb, python, headstart, ort, ...) so drifting machine load does not favour one.
#
#   bash scripts/bench_extract.sh [N=2000]
#
# Environment:
#   HEADSTART_HOME  runtime + model cache      (default /tmp/hs-bench-home)
#   BENCH_DIR       images, caches, logs       (default /tmp/hs-bench)
#   BENCH_VENV      Python venv, made if absent (default /tmp/hs-bench-venv)
#   BENCH_ROUNDS    rounds of the three        (default 2)
#   BENCH_PHOTOS    scikit-image wheel or photo folder for make_bench_images.py
#                   (default /tmp/dl/skimage/*.whl; else the venv gets scikit-image)
#   BENCH_INTRA     ONNX Runtime intra-op threads for all of them (default: cores).
#                   Below the core count, ORT leaves cores free for decoding.
#
# Throughput is images / wall-clock seconds of each whole process (startup,
# session creation and Parquet writing included for headstart and python;
# for ort only the timed inference loop, i.e. the most favourable ceiling).
# Peak RSS of every process is taken with /usr/bin/time -v.
#
# Before each round a short probe (ORT alone, 160 images, default threads)
# shows whether something outside this machine is slowing it: the table's
# `probe` column. On the 2-core benchmark VM a calm host gives about 73 images/s;
# compare rounds only where the probes agree.
set -euo pipefail

N="${1:-2000}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export HEADSTART_HOME="${HEADSTART_HOME:-/tmp/hs-bench-home}"
WORK="${BENCH_DIR:-/tmp/hs-bench}"
VENV="${BENCH_VENV:-/tmp/hs-bench-venv}"
ROUNDS="${BENCH_ROUNDS:-2}"
PY_UNBOUNDED="${BENCH_PY_UNBOUNDED:-1}"
INTRA="${BENCH_INTRA:-}"
BATCH=32
mkdir -p "$WORK" "$HEADSTART_HOME"
LOG="$WORK/extract-$N-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$LOG"

say() { printf '%s\n' "$*" >&2; }

# --- tools -------------------------------------------------------------------
if [ ! -x /usr/bin/time ]; then
    say "installing GNU time (apt-get install time)"
    apt-get install -y -qq time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
fi
ORT_VERSION="$(sed -n 's/^pub const ORT_VERSION: &str = "\(.*\)";/\1/p' "$ROOT/crates/runtime/src/load.rs")"
if [ ! -x "$VENV/bin/python" ]; then
    say "making $VENV (onnxruntime==$ORT_VERSION pillow numpy pyarrow)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "onnxruntime==$ORT_VERSION" pillow numpy pyarrow
fi
PY="$VENV/bin/python"
"$PY" -c 'import onnxruntime, PIL, numpy, pyarrow' 2>/dev/null ||
    "$VENV/bin/pip" install -q "onnxruntime==$ORT_VERSION" pillow numpy pyarrow

say "building (cargo build --release; example bench_ort)"
(cd "$ROOT" && cargo build --release --quiet --bin headstart &&
    cargo build --release --quiet -p headstart-extract --example bench_ort)
HS="$ROOT/target/release/headstart"
BENCH_ORT="$ROOT/target/release/examples/bench_ort"

# --- provisioning (not timed) ---------------------------------------------------
"$BENCH_ORT" --images "$BATCH" --warmup 0 >/dev/null
MODEL="$HEADSTART_HOME/models/efficientnet-lite0/model.onnx"
[ -f "$MODEL" ] || { say "no $MODEL after provisioning"; exit 1; }

# --- images --------------------------------------------------------------------
IMAGES="$WORK/images-$N"
if [ ! -f "$IMAGES/.done" ]; then
    PHOTOS="${BENCH_PHOTOS:-$(ls /tmp/dl/skimage/*.whl 2>/dev/null | tail -n 1 || true)}"
    if [ -z "$PHOTOS" ]; then
        "$VENV/bin/pip" install -q scikit-image
        PHOTOS="$("$PY" -c 'import skimage, os; print(os.path.dirname(os.path.dirname(skimage.__file__)))')"
    fi
    rm -rf "$IMAGES"
    say "making $N images in $IMAGES"
    "$PY" "$ROOT/scripts/make_bench_images.py" --n "$N" --out "$IMAGES" --photos "$PHOTOS" >&2
    touch "$IMAGES/.done"
fi
# Warm the page cache so no competitor pays for the disk.
find "$IMAGES" -type f -exec cat {} + >/dev/null

# --- runs ------------------------------------------------------------------------
now() { date +%s.%N; }
# run NAME ROUND CMD...: runs CMD under /usr/bin/time -v, stdout to LOG/NAME-ROUND.json
run() {
    local name="$1" round="$2"
    shift 2
    local t0 t1
    t0="$(now)"
    /usr/bin/time -v -o "$LOG/$name-$round.time" "$@" >"$LOG/$name-$round.json" 2>"$LOG/$name-$round.err" ||
        { say "$name failed; see $LOG/$name-$round.err"; tail -n 20 "$LOG/$name-$round.err" >&2; exit 1; }
    t1="$(now)"
    echo "$t0 $t1" >"$LOG/$name-$round.wall"
    printf '%s %s %s\n' "$name" "$round" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$LOG/load.txt"
}
# The same intra-op thread setting for all three, when BENCH_INTRA is set.
ORT_INTRA=() HS_INTRA=() PY_INTRA=()
if [ -n "$INTRA" ]; then
    ORT_INTRA=(--intra-threads "$INTRA") HS_INTRA=(--intra-threads "$INTRA") PY_INTRA=(--threads "$INTRA")
fi
run_ort() {
    run ort "$1" "$BENCH_ORT" --images "$N" --batch-size "$BATCH" --warmup 1 "${ORT_INTRA[@]}"
}
run_headstart() {
    rm -rf "$WORK/cache-hs"
    run headstart "$1" "$HS" extract "$IMAGES" --out "$WORK/cache-hs" --batch-size "$BATCH" \
        "${HS_INTRA[@]}" --json --quiet
}
run_python() {
    rm -f "$WORK/py.parquet"
    run python "$1" "$PY" "$ROOT/scripts/bench_extract_python.py" --model "$MODEL" \
        --input "$IMAGES" --out "$WORK/py.parquet" --batch-size "$BATCH" "${PY_INTRA[@]}"
}
run_pyunb() {
    rm -f "$WORK/py.parquet"
    run pyunb "$1" "$PY" "$ROOT/scripts/bench_extract_python.py" --model "$MODEL" \
        --input "$IMAGES" --out "$WORK/py.parquet" --batch-size "$BATCH" --unbounded "${PY_INTRA[@]}"
}
# probe ROUND: a short ORT-alone run at default threads, to spot a slowed host.
probe() {
    "$BENCH_ORT" --images 160 --batch-size "$BATCH" --warmup 1 >"$LOG/probe-$1.json" 2>/dev/null
}
ALL="ort headstart python"
[ "$PY_UNBOUNDED" = 1 ] && ALL="$ALL pyunb"
REV="$(echo "$ALL" | tr ' ' '\n' | tac | tr '\n' ' ')"

say "load before: $(uptime)"
for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then order="$ALL"; else order="$REV"; fi
    probe "$r"
    say "round $r/$ROUNDS: $order   ($(cut -d' ' -f1-3 /proc/loadavg))"
    for c in $order; do "run_$c" "$r"; done
done
say "load after: $(uptime)"

# --- report --------------------------------------------------------------------------
"$PY" - "$LOG" "$N" "$ROUNDS" "$PY_UNBOUNDED" "${INTRA:-cores}" <<'EOF'
import json, os, re, statistics, sys
log, n, rounds, unb, intra = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5]
def rss(name, r):
    t = open(os.path.join(log, f"{name}-{r}.time")).read()
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024
def cpu(name, r):
    t = open(os.path.join(log, f"{name}-{r}.time")).read()
    u = float(re.search(r"User time \(seconds\): ([0-9.]+)", t).group(1))
    s = float(re.search(r"System time \(seconds\): ([0-9.]+)", t).group(1))
    return u + s
def wall(name, r):
    a, b = map(float, open(os.path.join(log, f"{name}-{r}.wall")).read().split())
    return b - a
load = {}
for line in open(os.path.join(log, "load.txt")):
    name, r, *l = line.split()
    load[(name, int(r))] = " ".join(l)
rows = []
for r in range(1, rounds + 1):
    o = json.load(open(os.path.join(log, f"ort-{r}.json")))
    h = json.load(open(os.path.join(log, f"headstart-{r}.json")))
    p = json.load(open(os.path.join(log, f"python-{r}.json")))
    assert h["extracted"] == n and h["failed"] == 0, h
    assert p["extracted"] == n and p["failed"] == 0, p
    u = json.load(open(os.path.join(log, f"pyunb-{r}.json"))) if unb else None
    ort = o["images_per_second"]
    hs = n / wall("headstart", r)
    py = n / wall("python", r)
    probe = json.load(open(os.path.join(log, f"probe-{r}.json")))["images_per_second"]
    rows.append(dict(round=r, probe=probe, ort=ort, hs=hs, hs_internal=h["images_per_second"], py=py,
                     hs_ort=hs / ort, hs_py=hs / py,
                     rss_hs=rss("headstart", r), rss_py=rss("python", r), rss_ort=rss("ort", r),
                     load=load.get(("headstart", r), "?"),
                     hs_decode=h["decode_seconds"], hs_infer=h["inference_seconds"], hs_wall=h["wall_seconds"],
                     py_infer=p["inference_seconds"], py_run=p["run_seconds"],
                     cpu_ort=1000 * cpu("ort", r) / (n + 32), cpu_hs=1000 * cpu("headstart", r) / n,
                     cpu_py=1000 * cpu("python", r) / n,
                     pyunb=n / wall("pyunb", r) if unb else float("nan"),
                     rss_pyunb=rss("pyunb", r) if unb else float("nan"),
                     cpu_pyunb=1000 * cpu("pyunb", r) / n if unb else float("nan")))
    rows[-1]["hs_pyunb"] = rows[-1]["hs"] / rows[-1]["pyunb"]
print(f"\nextract benchmark: {n} images, batch {32}, efficientnet-lite0, CPU, {os.cpu_count()} cores, "
      f"intra-op threads {intra}; logs in {log}")
print(f"{'round':>6} {'probe':>6} {'ort':>6} {'hs':>6} {'(own)':>6} {'py':>6} {'pyunb':>6} {'hs/ort':>6} {'hs/py':>6} {'hs/pyunb':>8} "
      f"{'RSS hs':>7} {'RSS py*':>7} {'pyunb*':>7} {'RSS ort':>7}  load(1/5/15 after hs)")
def dash(line):  # columns of a skipped competitor (BENCH_PY_UNBOUNDED=0)
    return line.replace("nanM", "   -").replace(" nan ms", " - ms").replace(" nan", "   -")
for x in rows:
    print(dash(f"{x['round']:>6} {x['probe']:>6.1f} {x['ort']:>6.2f} {x['hs']:>6.2f} {x['hs_internal']:>6.2f} {x['py']:>6.2f} {x['pyunb']:>6.2f} {x['hs_ort']:>6.3f} {x['hs_py']:>6.3f} {x['hs_pyunb']:>8.3f} "
          f"{x['rss_hs']:>6.0f}M {x['rss_py']:>6.0f}M {x['rss_pyunb']:>6.0f}M {x['rss_ort']:>6.0f}M  {x['load']}"))
med = lambda k: statistics.median(x[k] for x in rows)
print(dash(f"{'median':>6} {med('probe'):>6.1f} {med('ort'):>6.2f} {med('hs'):>6.2f} {med('hs_internal'):>6.2f} {med('py'):>6.2f} {med('pyunb'):>6.2f} {med('hs_ort'):>6.3f} {med('hs_py'):>6.3f} {med('hs_pyunb'):>8.3f}"))
print("(images/s; probe = ORT alone on 160 images at default threads before the round, ~73 on a calm 2-core host; ort = ONNX Runtime alone, hs = headstart extract, py = Python pipeline with bounded look-ahead, pyunb = with unbounded Pool.imap)")
print("headstart breakdown (median): wall %.1f s, inference %.1f s, decode %.1f s summed over threads" %
      (med("hs_wall"), med("hs_infer"), med("hs_decode")))
print("python breakdown (median): run %.1f s, inference %.1f s" % (med("py_run"), med("py_infer")))
print(dash("CPU time per image (user+sys, median): ort %.1f ms (incl. warm-up batch), headstart %.1f ms, python %.1f ms, pyunb %.1f ms (all processes)" %
      (med("cpu_ort"), med("cpu_hs"), med("cpu_py"), med("cpu_pyunb"))))
print("* python RSS: /usr/bin/time -v reports the largest single process (the main one), not the sum with its workers")
print(f"target 1: headstart >= 0.9 x ort   -> {'met' if med('hs_ort') >= 0.9 else 'NOT met'} ({med('hs_ort'):.3f})")
print(f"target 2: headstart >= 1.3 x python -> {'met' if med('hs_py') >= 1.3 else 'NOT met'} ({med('hs_py'):.3f} bounded"
      + (f", {med('hs_pyunb'):.3f} unbounded)" if unb else ")"))
json.dump(rows, open(os.path.join(log, "summary.json"), "w"), indent=1)
EOF
