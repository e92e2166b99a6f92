#!/usr/bin/env python3
"""PyTorch eager peer for `benches/model.rs` (criterion group names model_gemm / model_inference / model_train).

Times, on CPU with the same thread count as the Rust bench (2), the same work as the Rust bench:
  * the GEMMs at the reference config's shapes (GFLOP/s),
  * forward of a 16 x 128 batch (tokens/s),
  * one SFT training step: forward + cross-entropy + backward + grad-norm clip + AdamW (tokens/s),
  * the same step at 4096 tokens a step for sequences of 128, 512 and 2048 tokens (group model_length),
on the reference Llama config: d_model 256, 4 layers, 4 heads of 64, SwiGLU 704, vocab 64, untied, no biases.

Then prints a side-by-side table with the Rust figures read from criterion's estimates
($CARGO_TARGET_DIR or ./target, under criterion/<group>/<bench>/new/estimates.json). Run it right after
`cargo bench -p selfplay-benches --bench model` in the same session so both see the same machine load.

OpenMP threads spin while waiting by default, which collapses under a shared, oversubscribed machine
(we measured torch 3x slower that way); unless OMP_WAIT_POLICY is already set, this script sets it
to PASSIVE (rayon's threads also sleep when idle), the setting that gives torch its best figures here.

Usage: python3 benches/peers/torch_model.py [--threads 2] [--iters 10]
"""
import argparse
import json
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402  (must follow the OpenMP setting)
import torch.nn.functional as F  # noqa: E402

BATCH, SEQ, VOCAB, HIDDEN, LAYERS, HEADS, HEAD_DIM, INTER = 16, 128, 64, 256, 4, 4, 64, 704
EPS, THETA = 1e-5, 10000.0


class Layer(torch.nn.Module):
    def __init__(self, hidden=HIDDEN, heads=HEADS, head_dim=HEAD_DIM, inter=INTER):
        super().__init__()
        self.ln1 = torch.nn.Parameter(torch.ones(hidden))
        self.q = torch.nn.Linear(hidden, heads * head_dim, bias=False)
        self.k = torch.nn.Linear(hidden, heads * head_dim, bias=False)
        self.v = torch.nn.Linear(hidden, heads * head_dim, bias=False)
        self.o = torch.nn.Linear(heads * head_dim, hidden, bias=False)
        self.ln2 = torch.nn.Parameter(torch.ones(hidden))
        self.gate = torch.nn.Linear(hidden, inter, bias=False)
        self.up = torch.nn.Linear(hidden, inter, bias=False)
        self.down = torch.nn.Linear(inter, hidden, bias=False)


def rms_norm(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Model(torch.nn.Module):
    """The Hugging Face Llama computation written out (same ops as LlamaForCausalLM in eager mode).

    The shape defaults to the reference config above; `torch_alphazero.py` builds the AlphaZero network with it.
    """

    def __init__(self, vocab=VOCAB, hidden=HIDDEN, layers=LAYERS, heads=HEADS, head_dim=HEAD_DIM, inter=INTER,
                 seq=SEQ):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.embed = torch.nn.Embedding(vocab, hidden)
        self.layers = torch.nn.ModuleList(Layer(hidden, heads, head_dim, inter) for _ in range(layers))
        self.norm = torch.nn.Parameter(torch.ones(hidden))
        self.lm_head = torch.nn.Linear(hidden, vocab, bias=False)
        self.value_head = torch.nn.Linear(hidden, 1)
        inv_freq = 1.0 / THETA ** (torch.arange(0, head_dim, 2).float() / head_dim)
        freqs = torch.outer(torch.arange(seq).float(), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)

    def forward(self, ids):
        b, t = ids.shape
        x = self.embed(ids)
        cos, sin = self.cos[:t], self.sin[:t]
        nh, hd = self.heads, self.head_dim
        for layer in self.layers:
            h = rms_norm(x, layer.ln1)
            q = layer.q(h).view(b, t, nh, hd).transpose(1, 2)
            k = layer.k(h).view(b, t, nh, hd).transpose(1, 2)
            v = layer.v(h).view(b, t, nh, hd).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + layer.o(a.transpose(1, 2).reshape(b, t, nh * hd))
            h = rms_norm(x, layer.ln2)
            x = x + layer.down(F.silu(layer.gate(h)) * layer.up(h))
        h = rms_norm(x, self.norm)
        return self.lm_head(h), self.value_head(h).squeeze(-1)


def timed(fn, iters, warmup=2):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def sft_step(model, opt, ids):
    """One SFT step: forward, next-token cross-entropy, backward, grad-norm clip at 1, AdamW."""
    opt.zero_grad(set_to_none=True)
    logits, _ = model(ids)
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


def criterion_seconds(group, name):
    root = os.environ.get("CARGO_TARGET_DIR", "target")
    path = os.path.join(root, "criterion", group, name, "new", "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["median"]["point_estimate"] * 1e-9
    except (OSError, KeyError, ValueError):
        return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []  # (label, group, bench, work units, unit, torch seconds)

    n = BATCH * SEQ
    for name, m, nn, k, ta, tb in [
        ("qkvo_fwd_2048x256x256", n, 256, 256, False, True),
        ("up_fwd_2048x704x256", n, 704, 256, False, True),
        ("down_fwd_2048x256x704", n, 256, 704, False, True),
        ("up_dx_2048x256x704", n, 256, 704, False, False),
        ("up_dw_704x256x2048", 704, 256, n, True, False),
    ]:
        a = torch.randn(k, m) if ta else torch.randn(m, k)
        b = torch.randn(nn, k) if tb else torch.randn(k, nn)
        aa = a.t() if ta else a
        bb = b.t() if tb else b
        out = torch.empty(m, nn)
        secs = timed(lambda: torch.matmul(aa, bb, out=out), args.iters * 3)
        rows.append((f"GEMM {name}", "model_gemm", name, 2 * m * nn * k / 1e9, "GFLOP/s", secs))

    model = Model()
    for p in model.parameters():
        if p.dim() == 2:
            torch.nn.init.normal_(p, std=0.02)
    ids = torch.tensor([[(s * 7919 + t * 104729) % VOCAB for t in range(SEQ)] for s in range(BATCH)])
    with torch.no_grad():
        secs = timed(lambda: model(ids), args.iters)
    rows.append(("forward 16x128", "model_inference", "forward_16x128", n, "tokens/s", secs))

    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)

    secs = timed(lambda: sft_step(model, opt, ids), args.iters)
    rows.append(("train step 16x128", "model_train", "sft_step_16x128", n, "tokens/s", secs))

    # model_length: 4096 tokens a step at the lengths search streams need (the decode half is not compared).
    long_model = Model(seq=2048)
    long_model.load_state_dict(model.state_dict(), strict=False)
    long_opt = torch.optim.AdamW(long_model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    for length in (128, 512, 2048):
        rows_per_step = 4096 // length
        long_ids = torch.tensor([[(s * 7919 + t * 104729) % VOCAB for t in range(length)]
                                 for s in range(rows_per_step)])
        secs = timed(lambda long_ids=long_ids: sft_step(long_model, long_opt, long_ids), args.iters)
        name = f"sft_step_{rows_per_step}x{length}"
        rows.append((f"train step {rows_per_step}x{length}", "model_length", name, 4096, "tokens/s", secs))

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, load average {os.getloadavg()[0]:.1f}")
    print(f"| {'work':<30} | {'unit':<9} | {'selfplay':>10} | {'torch eager':>11} | {'selfplay/torch':>14} |")
    print(f"|{'-' * 32}|{'-' * 11}|{'-' * 12}|{'-' * 13}|{'-' * 16}|")
    for label, group, bench, work, unit, secs in rows:
        ours = criterion_seconds(group, bench)
        theirs = work / secs
        mine = f"{work / ours:10.1f}" if ours else f"{'n/a':>10}"
        ratio = f"{(work / ours) / theirs:14.2f}" if ours else f"{'n/a':>14}"
        print(f"| {label:<30} | {unit:<9} | {mine} | {theirs:11.1f} | {ratio} |")


if __name__ == "__main__":
    main()
