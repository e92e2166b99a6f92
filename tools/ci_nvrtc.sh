#!/usr/bin/env bash
# Installs NVRTC from PyPI (wheel nvidia-cuda-nvrtc, no CUDA toolkit, no GPU needed) into .nvrtc/ at the
# repository root, so the kernel compile tests can run anywhere.
#
#   eval "$(tools/ci_nvrtc.sh)"                      # exports LD_LIBRARY_PATH in the calling shell
#   tools/ci_nvrtc.sh cargo test -p selfplay-kernels # or runs a command with it set (and NVRTC required)
#
# cudarc loads libnvrtc.so.13 with dlopen, which searches LD_LIBRARY_PATH; NVRTC then dlopens its
# libnvrtc-builtins from the same directory.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="13.0.88"
dest="$root/.nvrtc"
libdir="$dest/nvidia/cu13/lib"

if [ ! -e "$libdir/libnvrtc.so.13" ] || [ ! -e "$dest/nvidia_cuda_nvrtc-$version.dist-info/METADATA" ]; then
    python3 -m pip install --quiet --disable-pip-version-check --no-deps --upgrade \
        --target "$dest" "nvidia-cuda-nvrtc==$version" >&2
fi
[ -e "$libdir/libnvrtc.so.13" ] || { echo "ci_nvrtc: libnvrtc.so.13 missing under $libdir" >&2; exit 1; }

export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ "$#" -gt 0 ]; then
    export SELFPLAY_REQUIRE_NVRTC=1
    exec "$@"
fi
echo "export LD_LIBRARY_PATH=\"$libdir\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
