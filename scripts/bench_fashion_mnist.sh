#!/usr/bin/env bash
# Real data: Fashion-MNIST with default-backbone (efficientnet-lite0) features.
# headstart's softmax head and scikit-learn LogisticRegression(lbfgs) on the same
# cached features, plus scikit-learn on the raw pixels of the same images, against
# the published raw-pixel floor (0.841, LogisticRegression on all 60,000 / 10,000).
#
#   bash scripts/bench_fashion_mnist.sh [PER_CLASS_TRAIN=6000] [PER_CLASS_TEST=1000]
#
# Images (deterministic): the first PER_CLASS_TRAIN training images of each class
# in file order, of which the last 20% per class (by index) become the `val` split,
# and the first PER_CLASS_TEST test images of each class. Defaults: the full set,
# 48,000 train, 12,000 val, 10,000 test (`1000 200` gives a 12,000-image subset).
# Both fitters train on exactly the train rows with C = 1; headstart uses val for
# its reported val metrics only (one C, nothing to select).
#
# Environment:
#   HEADSTART_HOME  runtime + model cache      (default /tmp/hs-bench-home)
#   BENCH_DIR       data, cache, logs          (default /tmp/hs-bench)
#   BENCH_VENV      Python venv, made if absent (default /tmp/hs-bench-venv)
#   FASHION_DEB     dataset-fashion-mnist .deb  (default /tmp/dl/dataset-fashion-mnist_*.deb,
#                   else `apt-get download dataset-fashion-mnist`)
set -euo pipefail

TRAIN="${1:-6000}"
TEST="${2:-1000}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export HEADSTART_HOME="${HEADSTART_HOME:-/tmp/hs-bench-home}"
WORK="${BENCH_DIR:-/tmp/hs-bench}"
VENV="${BENCH_VENV:-/tmp/hs-bench-venv}"
mkdir -p "$WORK"
LOG="$WORK/fashion-$TRAIN-$TEST-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$LOG"
say() { printf '%s\n' "$*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -c 'import numpy, sklearn, pyarrow, PIL' 2>/dev/null ||
    "$VENV/bin/pip" install -q numpy scikit-learn pyarrow pillow

(cd "$ROOT" && cargo build --release --quiet --bin headstart)
HS="$ROOT/target/release/headstart"

# --- the subset -------------------------------------------------------------------
DATA="$(bash "$ROOT/scripts/fashion_mnist_tree.sh" "$TRAIN" "$TEST" "$WORK")"
count() { find "$DATA/$1" -name '*.png' | wc -l; }
NTRAIN="$(count train)" NVAL="$(count val)" NTEST="$(count test)"
say "subset: $NTRAIN train, $NVAL val, $NTEST test images in $DATA"

# --- extract ---------------------------------------------------------------------------
CACHE="$WORK/fashion-cache-$TRAIN-$TEST"
rm -rf "$CACHE"
say "extract ($(uptime))"
t0="$(date +%s.%N)"
"$HS" extract "$DATA" --out "$CACHE" --batch-size 32 --json --quiet >"$LOG/extract.json"
t1="$(date +%s.%N)"
echo "extract $(cut -d' ' -f1-3 /proc/loadavg)" >>"$LOG/load.txt"

# --- fit: headstart, then scikit-learn on the same cache ----------------------------------
say "fit ($(uptime))"
rm -rf "$WORK/fashion-head"
t2="$(date +%s.%N)"
"$HS" fit "$CACHE" --out "$WORK/fashion-head" --c 1 --json --quiet >"$LOG/fit.json"
t3="$(date +%s.%N)"
echo "fit $(cut -d' ' -f1-3 /proc/loadavg)" >>"$LOG/load.txt"
"$PY" "$ROOT/scripts/bench_fashion_sklearn.py" "$CACHE" --c 1 --pixels "$DATA" >"$LOG/sklearn.json"
echo "sklearn $(cut -d' ' -f1-3 /proc/loadavg)" >>"$LOG/load.txt"

echo "$t0 $t1 $t2 $t3" >"$LOG/times.txt"
# The report below can be re-run on a finished LOG: python3 - LOG $(cat LOG/times.txt) < (this heredoc)
"$PY" - "$LOG" "$t0" "$t1" "$t2" "$t3" <<'EOF'
import json, os, sys
log = sys.argv[1]
t0, t1, t2, t3 = map(float, sys.argv[2:6])
e = json.load(open(os.path.join(log, "extract.json")))
f = json.load(open(os.path.join(log, "fit.json")))
s = json.load(open(os.path.join(log, "sklearn.json")))
def get(d, *ks):
    for k in ks:
        if d is None:
            return None
        d = d.get(k) if isinstance(d, dict) else None
    return d
hs_val = get(f, "val_metrics", "accuracy") or get(f, "val_metrics", "summary", "accuracy")
hs_test = get(f, "test_metrics", "accuracy") or get(f, "test_metrics", "summary", "accuracy")
load = open(os.path.join(log, "load.txt")).read().strip().replace("\n", "; ")
print(f"\nFashion-MNIST subset, efficientnet-lite0 features ({e.get('feature_dim')}-d); logs in {log}")
print(f"extract: {e['extracted']} images in {t1 - t0:.1f} s wall ({e['extracted'] / (t1 - t0):.1f} images/s), failed {e['failed']}")
print(f"{'':28} {'train':>6} {'val acc':>8} {'test acc':>8} {'fit s':>7}")
print(f"{'headstart fit (softmax, C=1)':28} {get(f, 'split', 'train_rows') or '':>6} {hs_val:>8.4f} {hs_test:>8.4f} {f.get('fit_seconds', t3 - t2):>7.2f}")
for k, name in (("features", "sklearn lbfgs, same features"), ("pixels", "sklearn lbfgs, raw pixels")):
    r = s[k]
    print(f"{name:28} {r['train_rows']:>6} {r['val_accuracy']:>8.4f} {r['test_accuracy']:>8.4f} {r['fit_seconds']:>7.2f}")
print(f"{'published raw-pixel floor':28} {60000:>6} {'':>8} {0.841:>8.3f}")
print(f"headstart fit wall incl. load/save: {t3 - t2:.2f} s; load (1/5/15): {load}")
EOF
