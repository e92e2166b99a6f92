#!/usr/bin/env bash
# Builds the GPU test and bench binaries into gpu-bundle/ with a run script, so a GPU machine needs no Rust:
#   kernels/gpu_bundle.sh [--with-nvrtc]      (then copy gpu-bundle/ over and run gpu-bundle/run.sh)
# --with-nvrtc also copies libnvrtc from .nvrtc/ (tools/ci_nvrtc.sh installs it; ~110 MB). Without it, the
# GPU machine must provide libnvrtc and libcublas (a CUDA toolkit, or the nvidia-* wheels torch installs).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/gpu-bundle"
cd "$root"

# Prints the executables cargo built, one per line, from its JSON messages on stdin.
executables() {
    python3 -c '
import json, sys
for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    if msg.get("reason") == "compiler-artifact" and msg.get("executable"):
        print(msg["executable"])
'
}

rm -rf "$out"
mkdir -p "$out/bin" "$out/lib"
cargo test --release -p selfplay-kernels -p selfplay-kvcache --no-run --message-format=json-render-diagnostics \
    | executables | while read -r exe; do cp "$exe" "$out/bin/test-$(basename "$exe" | sed 's/-[0-9a-f]*$//')"; done
cargo bench -p selfplay-benches --bench kernels --no-run --message-format=json-render-diagnostics \
    | executables | while read -r exe; do cp "$exe" "$out/bin/bench-kernels"; done

if [ "${1:-}" = "--with-nvrtc" ]; then
    eval "$(tools/ci_nvrtc.sh)"
    cp -L "$root"/.nvrtc/nvidia/cu13/lib/libnvrtc.so.13 "$root"/.nvrtc/nvidia/cu13/lib/libnvrtc-builtins.so.13.0 "$out/lib/"
fi
[ -f kernels/peers/torch_peers.py ] && cp kernels/peers/torch_peers.py "$out/"

cat > "$out/run.sh" <<'RUN'
#!/usr/bin/env bash
# Runs the GPU tests (every GPU test must run: SELFPLAY_REQUIRE_GPU=1) and/or the kernel benchmarks.
#   ./run.sh [tests|bench|all]     bench results land in ./criterion (and on stdout)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
libs="$here/lib"
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do [ -d "$d" ] && libs="$libs:$d"; done
# NVIDIA's pip wheels (e.g. those torch depends on) ship libnvrtc/libcublas under site-packages/nvidia/*/lib.
if command -v python3 >/dev/null; then
    for d in $(python3 -c 'import glob, site; print(" ".join(d for p in site.getsitepackages() for d in glob.glob(p + "/nvidia/*/lib")))' 2>/dev/null); do
        libs="$libs:$d"
    done
fi
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export SELFPLAY_REQUIRE_GPU=1 SELFPLAY_REQUIRE_NVRTC=1
mode="${1:-all}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || true
status=0
if [ "$mode" = tests ] || [ "$mode" = all ]; then
    for t in "$here"/bin/test-*; do
        echo "== $(basename "$t")"
        "$t" --test-threads=1 || status=1
    done
fi
if [ "$mode" = bench ] || [ "$mode" = all ]; then
    cd "$here"
    "$here/bin/bench-kernels" --bench || status=1
fi
exit "$status"
RUN
chmod +x "$out/run.sh"
ls -la "$out/bin" "$out/lib"
echo "gpu-bundle ready: copy $out to a GPU machine and run ./run.sh"
