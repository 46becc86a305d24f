#!/usr/bin/env bash
# Peak RSS and speed of `headstart extract` on N 12 MP photos (issue #13: peak
# RSS under 1 GB on 10,000), once with the default decode and, with EXACT=1,
# once more with --exact-decode (full-size decodes, the most memory per image).
#
#   bash scripts/bench_rss_photos.sh [N=10000]
#
# The set: the 160 benchmark photos (scripts/make_12mp_images.py, 4032x3024,
# quality 90) repeated; copy i is photo i mod 160 with a JPEG comment segment
# holding i after the start-of-image marker, so every file has its own content
# hash and is read, hashed and decoded like a new photo (~8.5 GB for 10,000).
# lscpu goes first in the output.
set -euo pipefail
N="${1:-10000}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HS="${HEADSTART:-$ROOT/target/release/headstart}"
export HEADSTART_HOME="${HEADSTART_HOME:-/tmp/hs-bench-home}"
WORK="${BENCH_DIR:-/tmp/hs-bench}"
SRC="$WORK/photos-12mp-160"
SET="$WORK/photos-12mp-many-$N"
lscpu | grep -E "Model name|^CPU\(s\)|^Flags" | cut -c1-400
[ -d "$SRC" ] || python3 "$ROOT/scripts/make_12mp_images.py" --n 160 --out "$SRC"
if [ ! -d "$SET" ]; then
    python3 - "$SRC" "$SET.tmp" "$N" <<'PY'
import os, sys
src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
photos = sorted(os.path.join(d, f) for d, _, fs in os.walk(src) for f in fs if f.endswith(".jpg"))
for i in range(n):
    path = photos[i % len(photos)]
    data = open(path, "rb").read()
    note = b"copy %d" % i
    com = b"\xff\xfe" + (len(note) + 2).to_bytes(2, "big") + note
    cls = os.path.basename(os.path.dirname(path))
    os.makedirs(os.path.join(out, cls), exist_ok=True)
    with open(os.path.join(out, cls, "%05d.jpg" % i), "wb") as f:
        f.write(data[:2] + com + data[2:])
PY
    mv "$SET.tmp" "$SET"
fi
"$HS" -q runtime install >/dev/null && "$HS" -q models fetch >/dev/null
modes=(default)
[ "${EXACT:-0}" = 1 ] && modes+=(exact)
for mode in "${modes[@]}"; do
    out="$WORK/rss-out-$mode"
    rm -rf "$out"
    flag=()
    [ "$mode" = exact ] && flag=(--exact-decode)
    start="$(date +%s.%N)"
    /usr/bin/time -f "%M %U %S" -o "$WORK/rss-time" "$HS" -q extract "$SET" --out "$out" "${flag[@]}" >/dev/null
    end="$(date +%s.%N)"
    read -r kb user sys < "$WORK/rss-time"
    python3 -c "print('$mode: $N images, %.1f images/s, %.1f ms CPU/image, peak RSS %.0f MB' % ($N / ($end - $start), ($user + $sys) * 1000 / $N, $kb / 1024))"
done
