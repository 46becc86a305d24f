# headstart recipes. Parameters have defaults; override them like
#   just extract images/ cache/ "--views original,hflip"
# Usable from other repos' justfiles with `import` or `mod` (paths are relative to the invocation).

headstart := "cargo run --release --quiet --manifest-path " + justfile_directory() / "Cargo.toml" + " --"

# The whole workflow on the bundled sample data (provisions everything on first run).
demo:
    {{headstart}} demo

# The fast test tier (provisions the runtime and the default model into target/tmp once).
# Release profile: it reuses what `cargo run --release` (and `just demo`) compiled.
test:
    cargo test --release --workspace

# Both tiers: the fast one, then the slow one (pip provisioning races, killed and
# resumed runs, concurrent shard processes, crash windows, fuzzing, Python on Ray and Spark).
test-all: test
    cargo test --release --workspace -- --ignored

# Build and install the Python package (module `headstart`) into the active Python.
python:
    pip install "{{justfile_directory()}}/crates/python"

# What is installed, what is missing, and how to fix it.
doctor:
    {{headstart}} doctor

# Extract features of INPUT (class folders or manifest) into CACHE.
extract input cache args="":
    {{headstart}} extract {{input}} --out {{cache}} {{args}}

# Fit a head on CACHE into HEAD.
fit cache head args="":
    {{headstart}} fit {{cache}} --out {{head}} {{args}}

# Evaluate HEAD on CACHE.
eval head cache args="":
    {{headstart}} eval {{head}} {{cache}} {{args}}

# Classify INPUT with HEAD.
predict head input args="":
    {{headstart}} predict {{head}} {{input}} {{args}}

# Export HEAD fused with its backbone into OUT (.onnx).
export head out="classifier.onnx" args="":
    {{headstart}} export {{head}} --out {{out}} {{args}}

# Extract INPUT into CACHE with N local shard processes at once (as a cluster array job would).
# The work is in scripts/shards.sh (HEADSTART=path/to/headstart selects another binary).
shards input cache n="4" args="":
    bash "{{justfile_directory()}}/scripts/shards.sh" {{input}} {{cache}} {{n}} {{args}}

# All benchmarks (results go to docs/benchmarks.md by hand, with the command lines printed).
bench: bench-extract bench-fit

# Extract throughput: end-to-end vs ONNX Runtime alone vs a Python pipeline, side by side.
bench-extract n="2000":
    bash scripts/bench_extract.sh {{n}}

# Extract throughput from loose files vs tar shards vs image Parquet (same images).
bench-containers images="data/fashion-mnist-mini" rounds="3":
    bash scripts/bench_containers.sh {{images}} {{rounds}}

# Fit speed: headstart vs scikit-learn on the same synthetic features.
bench-fit:
    bash scripts/bench_fit.sh

# Fashion-MNIST, full set: headstart's head vs scikit-learn vs raw pixels (~25 min).
bench-fashion:
    bash scripts/bench_fashion_mnist.sh

# Fetch the full Fashion-MNIST (70,000 PNGs, MIT, Zalando) into data/fashion-mnist/
# from the Debian package dataset-fashion-mnist (about 31 MB). Not committed.
fetch-fashion-mnist:
    #!/usr/bin/env bash
    set -euo pipefail
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    chmod 755 "$tmp"  # lets apt's sandbox user write the .deb
    (cd "$tmp" && apt-get download dataset-fashion-mnist)
    dpkg-deb -x "$tmp"/dataset-fashion-mnist_*.deb "$tmp/pkg"
    python3 scripts/fashion_mnist.py \
        --idx-dir "$tmp/pkg/usr/share/datasets/fashion-mnist" \
        --out data/fashion-mnist

# Screenshot of the demo's report.html (docs/report.png) with headless Chromium
# (Debian's chromium package, installed on first use). Runs the demo first.
report-screenshot out="docs/report.png":
    #!/usr/bin/env bash
    set -euo pipefail
    {{headstart}} demo --out target/demo --quiet >/dev/null
    command -v chromium >/dev/null || apt-get install -y --no-install-recommends chromium
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1100,3000 \
        --screenshot="{{out}}" "file://$(pwd)/target/demo/head/report.html" 2>/dev/null
    echo "wrote {{out}}"
