#!/usr/bin/env python3
"""PyTorch eager peer for `benches/alphazero.rs` (criterion group alphazero/net_eval).

Times, on CPU with the same thread count as the Rust bench (2), the forward of the AlphaZero network of
`AlphaZeroConfig::default()` on Connect Four: a Llama (RMSNorm, RoPE, SwiGLU, causal attention, untied embeddings,
value head = linear with bias on the final normed hidden state) of 64 hidden, 2 layers, 4 heads of 16, SwiGLU 128,
vocabulary 133 (126 placed board tokens: 42 cells x 3 states, + 7 action tokens), over batches of 1, 32, 128 and 512 positions of 42 tokens. The
network is `torch_model.Model` (the same module `torch_model.py` times) at this shape. Each call also takes what
the search reads: the 7 action logits and the value at the last position. The token tensor is built once (the
Rust side tokenises the positions inside every call, so this favours torch slightly).

Then prints a table with the Rust figures read from criterion's estimates ($CARGO_TARGET_DIR or ./target, under
criterion/alphazero_net_eval/batch<N>/new/estimates.json), and the machine's limit: forward FLOPs per position
(the formula of crates/engine/src/flops.rs, summed over the 42 positions with causal context t + 1) times
positions/s, against a 2-core peak. The peak is an estimate: by default 413 GFLOP/s, the best f32 GEMM throughput
measured on this machine (BENCHMARKS.md, "Deterministic GEMM": the AVX-512 kernels at 2048x256x704 on 2 threads),
i.e. a practical ceiling for f32 matrix products, not a datasheet figure; override with --peak-gflops.

Run it right after `cargo bench -p selfplay-benches --bench alphazero` in the same session so both see the same
machine load. OMP_WAIT_POLICY=PASSIVE unless already set (see torch_model.py for why).

Usage: python3 benches/peers/torch_alphazero.py [--threads 2] [--seconds 2] [--peak-gflops 413]
"""
import argparse
import os
import statistics
import sys
import time
import warnings

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")  # torch without numpy: harmless

import torch  # noqa: E402  (must follow the OpenMP setting)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_model  # noqa: E402

# AlphaZeroConfig::default().model_config::<Connect4>()
BOARD_TOKENS, ACTIONS, SEQ = 42 * 3, 7, 42
VOCAB, HIDDEN, LAYERS, HEADS, INTER = BOARD_TOKENS + ACTIONS, 64, 2, 4, 128
HEAD_DIM = HIDDEN // HEADS
BATCHES = [1, 32, 128, 512]


def forward_flops_per_token(context):
    """crates/engine/src/flops.rs::forward_flops_per_token for this config (q_dim = kv_dim = HIDDEN)."""
    h, q, kv, i = HIDDEN, HEADS * HEAD_DIM, HEADS * HEAD_DIM, INTER
    per_layer = h * q + 2 * h * kv + q * h + 3 * h * i
    matmul = LAYERS * per_layer + VOCAB * h + h
    attention = 4 * LAYERS * context * q
    return 2.0 * matmul + attention


FLOPS_PER_POSITION = sum(forward_flops_per_token(t + 1) for t in range(SEQ))


def timed(fn, seconds, min_iters=5, warmup=3):
    """Median seconds per call over at least `min_iters` calls and about `seconds` of calls."""
    for _ in range(warmup):
        fn()
    samples = []
    deadline = time.perf_counter() + seconds
    while len(samples) < min_iters or time.perf_counter() < deadline:
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0, help="timing per batch size")
    parser.add_argument("--peak-gflops", type=float, default=413.0, help="2-core f32 peak (see the docstring)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = torch_model.Model(vocab=VOCAB, hidden=HIDDEN, layers=LAYERS, heads=HEADS, head_dim=HEAD_DIM,
                              inter=INTER, seq=SEQ)
    for p in model.parameters():
        if p.dim() == 2:
            torch.nn.init.normal_(p, std=0.02)
    model.eval()

    rows = []  # (batch, ours positions/s or None, torch positions/s)
    with torch.inference_mode():
        for n in BATCHES:
            ids = torch.randint(0, BOARD_TOKENS, (n, SEQ))

            def evaluate():
                logits, values = model(ids)
                return logits[:, -1, BOARD_TOKENS:VOCAB], values[:, -1]

            secs = timed(evaluate, args.seconds)
            ours = torch_model.criterion_seconds("alphazero_net_eval", f"batch{n}")
            rows.append((n, n / ours if ours else None, n / secs))

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, load average {os.getloadavg()[0]:.1f}")
    print(f"network: vocab {VOCAB}, hidden {HIDDEN}, {LAYERS} layers, {HEADS} heads of {HEAD_DIM}, SwiGLU {INTER}, "
          f"{SEQ} tokens; {FLOPS_PER_POSITION / 1e6:.3f} MFLOP per position forward; "
          f"peak {args.peak_gflops:.0f} GFLOP/s (2 cores) = {args.peak_gflops * 1e9 / FLOPS_PER_POSITION:,.0f} "
          f"positions/s at most")
    print()
    print("| batch | selfplay positions/s | torch positions/s | selfplay/torch | selfplay GFLOP/s (% of peak) "
          "| torch GFLOP/s (% of peak) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")

    def gflops(rate):
        g = rate * FLOPS_PER_POSITION / 1e9
        return f"{g:.1f} ({100 * g / args.peak_gflops:.1f}%)"

    for n, ours, theirs in rows:
        mine = f"{ours:,.0f}" if ours else "n/a"
        ratio = f"{ours / theirs:.2f}" if ours else "n/a"
        mine_g = gflops(ours) if ours else "n/a"
        print(f"| {n} | {mine} | {theirs:,.0f} | {ratio} | {mine_g} | {gflops(theirs)} |")


if __name__ == "__main__":
    main()
