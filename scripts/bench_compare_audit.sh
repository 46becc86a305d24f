#!/usr/bin/env bash
# Fashion-MNIST (full set by default): `headstart compare` over the three built-in
# backbones, then `headstart audit` on lite0's features with 5 % of the training
# labels flipped at random (seeded), scored as precision of the top N flagged
# (N = number of flips).
#
#   bash scripts/bench_compare_audit.sh [PER_CLASS_TRAIN=6000] [PER_CLASS_TEST=1000] [MODELS]
#
# The flipped labels go in through a manifest of the same files (paths relative to
# the tree, so the cache rows keep their keys) extracted into a copy of lite0's
# cache: only labels change, no image is extracted again.
# Environment: HEADSTART_HOME (default /tmp/hs-bench-home), BENCH_DIR (default /tmp/hs-bench).
set -euo pipefail
TRAIN="${1:-6000}"
TEST="${2:-1000}"
MODELS="${3:-efficientnet-lite0,efficientnet-lite1,efficientnet-lite2}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export HEADSTART_HOME="${HEADSTART_HOME:-/tmp/hs-bench-home}"
WORK="${BENCH_DIR:-/tmp/hs-bench}"
mkdir -p "$WORK"
(cd "$ROOT" && cargo build --release --quiet --bin headstart)
HS="$ROOT/target/release/headstart"
DATA="$(bash "$ROOT/scripts/fashion_mnist_tree.sh" "$TRAIN" "$TEST" "$WORK")"
OUT="$WORK/compare-$TRAIN-$TEST"
lscpu | grep -E 'Model name|^CPU\(s\)|Flags' | sed 's/^/# /' | cut -c1-400

echo "== headstart compare $DATA --models $MODELS"
/usr/bin/time -f "compare: %e s wall, %M KB peak RSS" "$HS" compare "$DATA" --models "$MODELS" --out "$OUT" --quiet

FIRST="${MODELS%%,*}"
FLIPPED="$WORK/audit-flipped-$TRAIN-$TEST"
rm -rf "$FLIPPED" && mkdir -p "$FLIPPED"
python3 - "$DATA" "$FLIPPED" <<'PY'
import csv, os, random, sys
data, out = sys.argv[1:3]
rows = []
for split in ("train", "val", "test"):
    for c in sorted(os.listdir(os.path.join(data, split))):
        for f in sorted(os.listdir(os.path.join(data, split, c))):
            rows.append([f"{split}/{c}/{f}", c, split])
classes = sorted({r[1] for r in rows})
train = [i for i, r in enumerate(rows) if r[2] == "train"]
rng = random.Random(2021)
flip = rng.sample(train, round(0.05 * len(train)))
for i in flip:
    rows[i][1] = rng.choice([c for c in classes if c != rows[i][1]])
with open(os.path.join(data, "flipped-manifest.csv"), "w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow(["path", "label", "split"])
    w.writerows(rows)
with open(os.path.join(out, "flipped.txt"), "w") as fh:
    fh.write("\n".join(rows[i][0] for i in flip) + "\n")
print(f"flipped {len(flip)} of {len(train)} training labels", file=sys.stderr)
PY
cp -r "$OUT/$FIRST/cache" "$FLIPPED/cache"
"$HS" extract "$DATA/flipped-manifest.csv" --out "$FLIPPED/cache" --quiet | grep -E '^images'
echo "== headstart audit (lite0 features, 5 % of training labels flipped)"
/usr/bin/time -f "audit: %e s wall, %M KB peak RSS" "$HS" audit "$FLIPPED/cache" --out "$FLIPPED/audit" --top 5
python3 - "$FLIPPED" <<'PY'
import csv, sys
d = sys.argv[1]
flipped = set(open(f"{d}/flipped.txt").read().split())
issues = [r["path"] for r in csv.DictReader(open(f"{d}/audit/label_issues.csv"))]
n = len(flipped)
top = sum(p in flipped for p in issues[:n])
print(f"audit: {len(issues)} flagged; precision at N = {n}: {top / n:.3f}; recall of all flagged: {sum(p in flipped for p in issues) / n:.3f}")
PY
