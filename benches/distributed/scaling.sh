#!/usr/bin/env bash
# Data-parallel scaling on this machine: one process with N threads against N MPI ranks of one thread each, on the
# two recipes' own settings (the Countdown demo's SFT and RL steps; the Connect Four demo's self-play iterations).
# Prints steps/s, tokens/s and self-play moves/s from the runs' metrics.jsonl; BENCHMARKS.md holds the figures.
#
#   benches/distributed/scaling.sh            # N = 2 (this machine's cores)
#   RANKS=4 benches/distributed/scaling.sh
#
# Needs mpirun (Open MPI or MPICH) and builds selfplay with the `mpi` feature.
set -euo pipefail
cd "$(dirname "$0")/../.."

RANKS="${RANKS:-2}"
OUT="${OUT:-target/scaling}"
cargo build --release --locked -p selfplay --features mpi
BIN="$PWD/target/release/selfplay"
rm -rf "$OUT"
mkdir -p "$OUT"

MPIRUN=(mpirun -np "$RANKS")
if mpirun --version 2>/dev/null | grep -q "Open MPI"; then
    # More ranks than cores may be asked for; root may run it (containers); each rank pinned to nothing, one thread.
    MPIRUN+=(--oversubscribe --bind-to none -x RAYON_NUM_THREADS=1)
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
else
    MPIRUN+=(-env RAYON_NUM_THREADS 1)
fi

# The demos' settings, shortened: only the timed steps, evaluations pushed past the end.
"$BIN" train --print-config > "$OUT/o1.toml"
"$BIN" demo --game connect4 --print-config > "$OUT/c4-base.toml"
python3 - "$OUT" <<'PY'
import sys
out = sys.argv[1]
def patch(path, new_path, edits):
    """Sets `key = value` in TOML `section` ("" for the top level), line by line."""
    lines, section, left = open(path).read().splitlines(), "", dict(((s, k), v) for s, k, v in edits)
    for i, line in enumerate(lines):
        if line.startswith("[") and "=" not in line:
            section = line.strip("[]")
        elif (section, line.split(" = ")[0]) in left:
            lines[i] = f"{line.split(' = ')[0]} = {left.pop((section, line.split(' = ')[0]))}"
    assert not left, left
    open(new_path, "w").write("\n".join(lines) + "\n")
patch(f"{out}/o1.toml", f"{out}/o1.toml", [
    ("task", "eval_problems", "32"), ("sft", "steps", "300"), ("rl", "steps", "24"),
    ("eval", "every", "1000"), ("eval", "budgets", "[1]"), ("eval", "search_methods", "[]"),
])
patch(f"{out}/c4-base.toml", f"{out}/c4.toml", [("", "iterations", "6"), ("arena", "every", "1000")])
PY

run() { # name, then the command
    local name="$1"; shift
    echo "== $name" >&2
    /usr/bin/time -f "%e" -o "$OUT/$name.wall" "$@" > "$OUT/$name.log" 2>&1
}
run o1-1x"$RANKS" env RAYON_NUM_THREADS="$RANKS" "$BIN" train --config "$OUT/o1.toml" --out "$OUT/o1-1x$RANKS"
run o1-"$RANKS"x1 "${MPIRUN[@]}" "$BIN" train --config "$OUT/o1.toml" --out "$OUT/o1-${RANKS}x1"
run c4-1x"$RANKS" env RAYON_NUM_THREADS="$RANKS" "$BIN" game train --game connect4 --config "$OUT/c4.toml" --out "$OUT/c4-1x$RANKS"
run c4-"$RANKS"x1 "${MPIRUN[@]}" "$BIN" game train --game connect4 --config "$OUT/c4.toml" --out "$OUT/c4-${RANKS}x1"

python3 - "$OUT" "$RANKS" <<'PY'
import json, sys
out, n = sys.argv[1], sys.argv[2]
def metrics(run):
    return [json.loads(l) for l in open(f"{out}/{run}/metrics.jsonl")]
print(f"| layout | SFT steps/s | SFT tokens/s | RL steps/s | self-play iterations/s | self-play moves/s |")
print("| --- | --- | --- | --- | --- | --- |")
for layout in [f"1x{n}", f"{n}x1"]:
    o1 = metrics(f"o1-{layout}")
    sft = [m for m in o1 if m["stage"] == "sft"][5:]  # the first steps warm the caches
    rl = [m for m in o1 if m["stage"] == "rl"]
    sft_s = sum(m["tokens"] / m["tokens_per_second"] for m in sft)
    rl_s = sum(m["rollout_seconds"] + m["update_seconds"] for m in rl)
    c4 = metrics(f"c4-{layout}")[:-1]  # the last iteration measures
    c4_s = sum(m["seconds"] for m in c4)
    moves = sum(m["games"] * m["game_length"] for m in c4)
    ranks, threads = layout.split("x")
    print(f"| {ranks} rank(s) x {threads} thread(s) | {len(sft) / sft_s:.2f} | {sum(m['tokens'] for m in sft) / sft_s:.0f} "
          f"| {len(rl) / rl_s:.3f} | {len(c4) / c4_s:.3f} | {moves / c4_s:.0f} |")
PY
