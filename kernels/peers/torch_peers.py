#!/usr/bin/env python3
"""Peer measurements for benches/kernels.rs, on the same GPU: HF transformers `generate` decode throughput of
a Qwen2.5-0.5B-shaped model with random bf16 weights (512-token prompts, batch 1/32/256), PyTorch
scaled_dot_product_attention on the prefill shapes, a PyTorch top-p sampler at vocab 151,936, and device
copy bandwidth. Prints one JSON object per measurement. `--smoke` runs tiny shapes on the CPU.

    python3 torch_peers.py            # on the GPU machine, beside the bundle
"""
import argparse
import json
import time

import torch


def timed(fn, sync, repeats):
    fn()
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - start) / repeats


def report(**fields):
    print(json.dumps(fields), flush=True)


def qwen_config(smoke):
    from transformers import Qwen2Config

    if smoke:
        return Qwen2Config(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    return Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                       num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                       rope_theta=1e6, rms_norm_eps=1e-6, tie_word_embeddings=True)


def hf_generate(device, dtype, sync, smoke):
    from transformers import Qwen2ForCausalLM

    torch.manual_seed(0)
    model = Qwen2ForCausalLM(qwen_config(smoke)).to(device=device, dtype=dtype).eval()
    prompt, new = (16, 8) if smoke else (512, 128)
    for batch in ([1, 2] if smoke else [1, 32, 256]):
        ids = torch.randint(0, model.config.vocab_size, (batch, prompt), device=device)
        mask = torch.ones_like(ids)

        def run(n):
            with torch.no_grad():
                model.generate(ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                               pad_token_id=0)

        prefill_only = timed(lambda: run(1), sync, 2)
        full = timed(lambda: run(new), sync, 2)
        per_step = (full - prefill_only) / (new - 1)
        report(peer="hf_generate", batch=batch, prompt=prompt, step_s=per_step, tokens_per_s=batch / per_step)


def sdpa(device, dtype, sync, smoke):
    import torch.nn.functional as F

    for batch, length in ([(1, 64)] if smoke else [(1, 512), (8, 512), (1, 4096)]):
        q = torch.randn(batch, 14, length, 64, device=device, dtype=dtype)
        k = torch.randn(batch, 2, length, 64, device=device, dtype=dtype)
        v = torch.randn_like(k)
        run = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        report(peer="sdpa", batch=batch, len=length, s=timed(run, sync, 20))


def top_p(device, sync, smoke):
    vocab = 1000 if smoke else 151936
    for batch in ([1, 4] if smoke else [1, 32, 256]):
        logits = torch.randn(batch, vocab, device=device)

        def run():
            probs = torch.softmax(logits / 0.7, dim=-1)
            sorted_p, idx = torch.sort(probs, descending=True, dim=-1)
            cum = sorted_p.cumsum(-1)
            sorted_p[(cum - sorted_p) > 0.9] = 0
            choice = torch.multinomial(sorted_p / sorted_p.sum(-1, keepdim=True), 1)
            return idx.gather(-1, choice)

        report(peer="torch_top_p", batch=batch, vocab=vocab, s=timed(run, sync, 20))


def copy_bandwidth(device, sync, smoke):
    n = (1 << 20) if smoke else (1 << 30)
    src = torch.empty(n, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    s = timed(lambda: dst.copy_(src), sync, 20)
    report(peer="copy", bytes=n, read_plus_write_gb_s=2 * n / s / 1e9)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on the CPU")
    args = parser.parse_args()
    device = "cpu" if args.smoke else "cuda"
    dtype = torch.float32 if args.smoke else torch.bfloat16
    sync = (lambda: None) if args.smoke else torch.cuda.synchronize
    if not args.smoke:
        report(device=torch.cuda.get_device_name(), torch=torch.__version__)
    copy_bandwidth(device, sync, args.smoke)
    top_p(device, sync, args.smoke)
    sdpa(device, dtype, sync, args.smoke)
    hf_generate(device, dtype, sync, args.smoke)


if __name__ == "__main__":
    main()
