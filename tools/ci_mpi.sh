#!/usr/bin/env bash
# Installs Open MPI (and libclang, which the `mpi` crate's bindings need to build) from Debian when absent, then
# runs the given command with MPI required (SELFPLAY_REQUIRE_MPI=1: MPI tests fail instead of printing SKIP).
#
#   tools/ci_mpi.sh cargo test -p selfplay --features mpi --test cli_distributed
set -euo pipefail

have_mpi() { command -v mpirun >/dev/null 2>&1 && command -v mpicc >/dev/null 2>&1; }
have_libclang() { ldconfig -p 2>/dev/null | grep -q "libclang"; }

if ! have_mpi || ! have_libclang; then
    echo "ci_mpi: installing openmpi-bin libopenmpi-dev libclang-dev" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q openmpi-bin libopenmpi-dev libclang-dev >/dev/null 2>&1 || {
        apt-get update -q >/dev/null
        apt-get install -y -q openmpi-bin libopenmpi-dev libclang-dev >/dev/null
    }
fi
have_mpi || { echo "ci_mpi: mpirun or mpicc still missing" >&2; exit 1; }

export SELFPLAY_REQUIRE_MPI=1
exec "$@"
