# selfplay tasks: `just` lists them.

default:
    @just --list

# Run every test (the README's test command).
test:
    cargo test --workspace

# Criterion benchmarks for every crate; figures go in BENCHMARKS.md.
bench *ARGS:
    cargo bench -p selfplay-benches {{ARGS}}

# Data-parallel scaling under mpirun (1 process x N threads against N ranks x 1 thread) and the all-reduce beside MPI_Allreduce.
bench-distributed RANKS="2":
    RANKS={{RANKS}} benches/distributed/scaling.sh
    cargo build --release -p selfplay-collective --features mpi --bin mpi_check
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun --oversubscribe -np {{RANKS}} target/release/mpi_check bench

# The main job: the demo on the embedded default task.
demo *ARGS:
    cargo run --release -- demo {{ARGS}}

# Formatting, lints and the no_std builds, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    for c in selfplay-tensor selfplay-reward selfplay-search selfplay-games selfplay-learn selfplay-kvcache; do cargo build -p $c --no-default-features; done

# Everything CI checks on a fresh clone: fmt, clippy, no_std builds, import cycles, docs, tests, NVRTC.
ci:
    bash .ci/run

# The API docs of every crate, as CI builds them (warnings are errors).
doc:
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

# Compile every CUDA kernel with NVRTC from PyPI (no GPU needed), as CI does.
kernels-check:
    tools/ci_nvrtc.sh cargo test -p selfplay-kernels

# Build the GPU test and bench binaries into gpu-bundle/ (copy it to a GPU machine and run gpu-bundle/run.sh).
gpu-bundle *ARGS:
    kernels/gpu_bundle.sh {{ARGS}}
