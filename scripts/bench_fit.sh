#!/usr/bin/env bash
# Fit speed and memory: headstart's softmax head (crates/fit/examples/bench_fit.rs)
# against scikit-learn LogisticRegression(lbfgs) (scripts/bench_fit_sklearn.py)
# on the same synthetic features, side by side in one run.
#
#   bash scripts/bench_fit.sh
#
# Sizes: 10,000 x 1280, 10 classes and 50,000 x 1280, 100 classes; one C (1.0).
# Difficulty: bench_fit's --sep (class-centre spread). Its default 0.06 makes the
# classes linearly separable (100% accuracy, both solvers stop after 2-9
# iterations); 0.012 gives ~87% (50k, 100 classes) / 97% (10k, 10 classes)
# validation accuracy, close to real CNN features (Fashion-MNIST: 87%), and 0.01
# a harder ~68% / 91%; there the solvers have to work. All three run by default.
# Every 5th group of rows is validation; both sides standardise with training
# statistics and report validation accuracy. Rounds alternate the order
# (headstart first, then scikit-learn first, ...).
#
# Environment:
#   BENCH_DIR     data dumps and logs          (default /tmp/hs-bench)
#   BENCH_VENV    Python venv, made if absent  (default /tmp/hs-bench-venv)
#   BENCH_ROUNDS  rounds per size              (default 2)
#   BENCH_SIZES   "ROWSxCLASSES ..."           (default "10000x10 50000x100")
#   BENCH_SEPS    "SEP ..."                    (default "0.06 0.012 0.01")
#
# Time: fit_seconds as each side reports it (headstart: the whole `fit` call,
# i.e. normalisation, split, leak check, solver and metrics; scikit-learn:
# LogisticRegression.fit only, on already standardised arrays). Memory: peak
# RSS of each process from /usr/bin/time -v, over the feature matrix size.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${BENCH_DIR:-/tmp/hs-bench}"
VENV="${BENCH_VENV:-/tmp/hs-bench-venv}"
ROUNDS="${BENCH_ROUNDS:-2}"
SIZES="${BENCH_SIZES:-10000x10 50000x100}"
SEPS="${BENCH_SEPS:-0.06 0.012 0.01}"
DIM=1280
C=1
LOG="$WORK/fit-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$LOG"
say() { printf '%s\n' "$*" >&2; }

if [ ! -x /usr/bin/time ]; then
    apt-get install -y -qq time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
fi
if [ ! -x "$VENV/bin/python" ]; then
    say "making $VENV (numpy scikit-learn)"
    python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -c 'import numpy, sklearn' 2>/dev/null || "$VENV/bin/pip" install -q numpy scikit-learn

say "building (example bench_fit)"
(cd "$ROOT" && cargo build --release --quiet -p headstart-fit --example bench_fit)
BENCH_FIT="$ROOT/target/release/examples/bench_fit"

# timed NAME CMD...: stdout -> LOG/NAME.json, /usr/bin/time -v -> LOG/NAME.time
timed() {
    local name="$1"
    shift
    /usr/bin/time -v -o "$LOG/$name.time" "$@" >"$LOG/$name.json" 2>"$LOG/$name.err" ||
        { say "$name failed; see $LOG/$name.err"; tail -n 20 "$LOG/$name.err" >&2; exit 1; }
    printf '%s %s\n' "$name" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$LOG/load.txt"
}

say "load before: $(uptime)"
CASES=""
for sep in $SEPS; do
for size in $SIZES; do
    rows="${size%x*}" classes="${size#*x}"
    case_="${size}s$sep"
    CASES="$CASES $case_"
    data="$WORK/fit-data-${rows}x${DIM}x${classes}-sep$sep"
    common=(--rows "$rows" --dim "$DIM" --classes "$classes" --c "$C" --sep "$sep")
    if [ ! -f "$data/meta.json" ]; then
        say "dumping $size features to $data (bench_fit --save-npy, not timed)"
        "$BENCH_FIT" "${common[@]}" --save-npy "$data" >/dev/null
    fi
    for r in $(seq 1 "$ROUNDS"); do
        if [ $((r % 2)) -eq 1 ]; then order="hs sk"; else order="sk hs"; fi
        say "$case_ round $r/$ROUNDS: $order   ($(cut -d' ' -f1-3 /proc/loadavg))"
        for c in $order; do
            case $c in
                hs) timed "hs-$case_-$r" "$BENCH_FIT" "${common[@]}" ;;
                sk) timed "sk-$case_-$r" "$PY" "$ROOT/scripts/bench_fit_sklearn.py" "$data" --c "$C" ;;
            esac
        done
    done
done
done
say "load after: $(uptime)"

"$PY" - "$LOG" "$ROUNDS" "$CASES" <<'EOF'
import json, os, re, statistics, sys
log, rounds, sizes = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
def rss(name):
    t = open(os.path.join(log, f"{name}.time")).read()
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024
load = dict(l.split(None, 1) for l in open(os.path.join(log, "load.txt")))
print(f"\nfit benchmark: softmax regression, one C, {os.cpu_count()} cores; logs in {log}")
print(f"{'size, sep':>16} {'rnd':>3} {'hs s':>7} {'sk s':>7} {'sk/hs':>6} {'hs acc':>7} {'sk acc':>7} {'d acc':>6} "
      f"{'hs it':>5} {'conv':>5} {'sk it':>5} {'X MiB':>6} {'hs RSS':>7} {'RSS/X':>6} {'sk RSS':>7}  load(1/5/15)")
verdict = []
for size in sizes:
    rs = []
    for r in range(1, rounds + 1):
        h = json.load(open(os.path.join(log, f"hs-{size}-{r}.json")))
        s = json.load(open(os.path.join(log, f"sk-{size}-{r}.json")))
        x = dict(conv=h["converged"], hs=h["fit_seconds"], sk=s["fit_seconds"], hs_acc=h["val_accuracy"], sk_acc=s["val_accuracy"],
                 hs_it=h["iterations"], sk_it=s["n_iter"], X=h["feature_matrix_mib"], hs_rss=rss(f"hs-{size}-{r}"),
                 sk_rss=rss(f"sk-{size}-{r}"), load=load[f"hs-{size}-{r}"].strip())
        x["ratio"] = x["sk"] / x["hs"]
        x["dacc"] = 100 * (x["hs_acc"] - x["sk_acc"])
        x["rss_x"] = x["hs_rss"] / x["X"]
        rs.append(x)
        print(f"{size:>16} {r:>3} {x['hs']:>7.2f} {x['sk']:>7.2f} {x['ratio']:>6.1f} {x['hs_acc']:>7.4f} {x['sk_acc']:>7.4f} "
              f"{x['dacc']:>+6.2f} {x['hs_it']:>5} {str(x['conv'])[0]:>5} {x['sk_it']:>5} {x['X']:>6.0f} {x['hs_rss']:>6.0f}M {x['rss_x']:>6.2f} "
              f"{x['sk_rss']:>6.0f}M  {x['load']}")
    med = {k: statistics.median(x[k] for x in rs) for k in ("hs", "sk", "ratio", "dacc", "rss_x")}
    print(f"{size:>16} med {med['hs']:>7.2f} {med['sk']:>7.2f} {med['ratio']:>6.1f} {'':>7} {'':>7} {med['dacc']:>+6.2f}"
          f" {'':>5} {'':>5} {'':>5} {'':>6} {'':>7} {max(x['rss_x'] for x in rs):>6.2f} (max)")
    rows_ = int(size.split("x")[0])
    limit = 5.0 if rows_ >= 50000 else 1.0
    verdict.append(f"{size}: time {med['hs']:.2f} s (target < {limit:g} s: {'met' if med['hs'] < limit else 'NOT met'})"
                   + (f", {med['ratio']:.1f}x scikit-learn (target >= 5x: {'met' if med['ratio'] >= 5 else 'NOT met'})"
                      f", accuracy {med['dacc']:+.2f} points vs scikit-learn (target >= -0.5: {'met' if med['dacc'] >= -0.5 else 'NOT met'})"
                      if rows_ >= 50000 else f", {med['ratio']:.1f}x scikit-learn")
                   + f", peak RSS {max(x['rss_x'] for x in rs):.2f} x features (target <= 1.5: {'met' if max(x['rss_x'] for x in rs) <= 1.5 else 'NOT met'})")
print("\n".join(verdict))
EOF
