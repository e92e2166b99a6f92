#!/usr/bin/env python3
"""Hugging Face reference fixtures for selfplay-model, and the check that transformers loads what we write.

Mode `make` (default) writes, under crates/model/tests/fixtures/:
  <name>/                  a tiny random checkpoint saved by transformers' `save_pretrained`
  <name>/expected.safetensors
      tokens.<s>      I32 [T_s]           token sequence s (s = 0, 1, 2; lengths differ)
      ce_weights.<s>  F32 [T_s - 1]       per-position loss weights (some exactly 0: masked)
      logits.<s>      F32 [T_s, vocab]    transformers' logits for sequence s alone (f32 compute)
      grad.<param>    F32 [param shape]   PyTorch autograd gradient of LOSS below, every parameter
  bpe_tokenizer/tokenizer.json + expected.json   a byte-level BPE trained by `tokenizers`, and the
      ids it gives for a few strings (checked by the Rust `hf-tokenizers` feature test)

  LOSS = sum_s sum_{t=0}^{T_s-2} ce_weights.<s>[t] * ( -log softmax(logits.<s>[t])[tokens.<s>[t+1]] )
  (a plain weighted sum of next-token cross-entropies: no mean, no normalisation)

  Fixtures:
    llama_gqa     Llama, 4 query heads / 2 KV heads, explicit head_dim 8 (q width 32 != hidden 16),
                  untied, rope_theta 500000, f32
    llama_sharded the same weights as llama_gqa saved in several shards with model.safetensors.index.json
                  (no expected.safetensors: the test checks it loads to exactly llama_gqa's weights)
    qwen2_tied    Qwen2, tied embeddings (no lm_head.weight), q/k/v biases, f32
    llama_bf16    Llama with plain multi-head attention (head_dim from hidden/heads), stored in bf16; references are
                  computed in f32 from the bf16-rounded weights (what our loader sees)
    llama_bias    Llama with attention_bias=True: biases on q_proj, k_proj, v_proj AND o_proj (unlike Qwen2), GQA,
                  untied, f32

`make NAME...` rewrites only the named fixtures (the others, and bpe_tokenizer, stay untouched).

Mode `verify DIR`: DIR is a model directory written by selfplay (see
crates/model/examples/export_model.rs) holding ours.safetensors (`logits` [T, vocab] from our forward)
and tokens.json ({"text": ..., "ids": [...]}, our tokenizer's ids). Loads DIR with
AutoModelForCausalLM / AutoTokenizer (and PreTrainedTokenizerFast on tokenizer.json alone) and checks:
the tokenizers give the same ids and decode them
back, and the logits agree within 1e-4. Exits non-zero on any mismatch.
"""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

FIXTURES = Path(__file__).resolve().parent.parent / "crates" / "model" / "tests" / "fixtures"
SEQ_LENGTHS = (1, 5, 11)
INIT_STD = 0.3
CHECKPOINTS = ("llama_gqa", "qwen2_tied", "llama_bf16", "llama_bias")


def randomize(model, seed):
    """Large random weights (std 0.3) so logits are far from flat; norms near 1."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(INIT_STD * torch.randn(p.shape, generator=gen))


def build(name):
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    common = dict(vocab_size=48, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                  max_position_embeddings=64, bos_token_id=1, eos_token_id=2)
    if name == "llama_gqa":
        cfg = LlamaConfig(**common, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                          rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=False)
        return LlamaForCausalLM(cfg), torch.float32, 1
    if name == "qwen2_tied":
        cfg = Qwen2Config(**common, num_attention_heads=4, num_key_value_heads=2, rope_theta=10000.0,
                          rms_norm_eps=1e-6, tie_word_embeddings=True)
        return Qwen2ForCausalLM(cfg), torch.float32, 2
    if name == "llama_bf16":
        cfg = LlamaConfig(**common, num_attention_heads=2, num_key_value_heads=2, rms_norm_eps=1e-6,
                          tie_word_embeddings=False)
        return LlamaForCausalLM(cfg), torch.bfloat16, 3
    if name == "llama_bias":
        cfg = LlamaConfig(**common, num_attention_heads=4, num_key_value_heads=2, head_dim=8, attention_bias=True,
                          rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False)
        return LlamaForCausalLM(cfg), torch.float32, 4
    raise ValueError(name)


def references(model, seed):
    """Logits per sequence and gradients of LOSS (module docstring), all in f32."""
    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(1000 + seed)
    out = {}
    model.zero_grad()
    loss = torch.zeros((), dtype=torch.float32)
    for s, length in enumerate(SEQ_LENGTHS):
        tokens = torch.randint(0, vocab, (length,), generator=gen)
        weights = torch.rand(max(length - 1, 0), generator=gen)
        weights[::3] = 0.0  # masked positions must contribute nothing
        logits = model(input_ids=tokens[None]).logits[0]
        if length > 1:
            logp = torch.log_softmax(logits[:-1], dim=-1)
            nll = -logp.gather(1, tokens[1:, None])[:, 0]
            loss = loss + (weights * nll).sum()
        out[f"tokens.{s}"] = tokens.to(torch.int32)
        out[f"ce_weights.{s}"] = weights
        out[f"logits.{s}"] = logits.detach().clone()
    loss.backward()
    for pname, p in model.named_parameters():
        out[f"grad.{pname}"] = p.grad.detach().clone()
    return out


def make_one(name):
    from transformers import AutoModelForCausalLM

    model, dtype, seed = build(name)
    torch.manual_seed(seed)
    randomize(model, seed)
    directory = FIXTURES / name
    directory.mkdir(parents=True, exist_ok=True)
    model.to(dtype).save_pretrained(directory)
    if name == "llama_gqa":
        model.save_pretrained(FIXTURES / "llama_sharded", max_shard_size="12KB")
    # References come from the checkpoint as saved, loaded back in f32: for bf16 that is the rounded
    # weights (what our loader sees) with RoPE frequencies recomputed in f32, as transformers does.
    reloaded = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    reloaded.eval()
    refs = references(reloaded, seed)
    save_file({k: v.contiguous() for k, v in refs.items()}, directory / "expected.safetensors")
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters, stored {dtype}")


def make_bpe_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = ["12+7=19\n<answer>(12+7)*3</answer>", "the quick brown fox jumps over the lazy dog",
              "Countdown: reach 24 using 3 4 6 8", "café naïve déjà vu"] * 20
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|bos|>", "<|eos|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    directory = FIXTURES / "bpe_tokenizer"
    directory.mkdir(parents=True, exist_ok=True)
    tok.save(str(directory / "tokenizer.json"))
    texts = ["12+7=19\n<answer>(12+7)*3</answer>", "the lazy fox", "unseen wörds ✓", "<|bos|>hi<|eos|>", ""]
    expected = [{"text": t, "ids": tok.encode(t, add_special_tokens=False).ids} for t in texts]
    (directory / "expected.json").write_text(json.dumps({"vocab_size": tok.get_vocab_size(), "cases": expected},
                                                        indent=1, ensure_ascii=False) + "\n")
    print(f"bpe_tokenizer: vocab {tok.get_vocab_size()}")


def verify(directory):
    from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

    directory = Path(directory)
    ours = load_file(directory / "ours.safetensors")["logits"]
    recorded = json.loads((directory / "tokens.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(directory)
    hf_ids = tokenizer(recorded["text"], add_special_tokens=False)["input_ids"]
    ok = True
    if hf_ids != recorded["ids"]:
        print(f"tokenizer MISMATCH: transformers {hf_ids} vs ours {recorded['ids']}")
        ok = False
    generic = PreTrainedTokenizerFast(tokenizer_file=str(directory / "tokenizer.json"))
    if generic(recorded["text"], add_special_tokens=False)["input_ids"] != recorded["ids"]:
        print("PreTrainedTokenizerFast(tokenizer_file=...) MISMATCH")
        ok = False
    decoded = tokenizer.decode(recorded["ids"])
    if decoded != recorded["text"]:
        print(f"decode MISMATCH: {decoded!r} vs {recorded['text']!r}")
        ok = False
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        theirs = model(input_ids=torch.tensor([recorded["ids"]])).logits[0]
    diff = (theirs - ours).abs().max().item()
    print(f"{directory}: {type(model).__name__} ({model.config.model_type}), tokenizer "
          f"{type(tokenizer).__name__}, {len(hf_ids)} tokens, logits {tuple(ours.shape)}, "
          f"max |transformers - ours| = {diff:.3e}")
    if diff > 1e-4 or theirs.shape != ours.shape:
        ok = False
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


def main():
    args = sys.argv[1:]
    if args[:1] == ["verify"] and len(args) >= 2:
        return max(verify(d) for d in args[1:])
    if args[:1] == ["make"] and len(args) >= 2 and set(args[1:]) <= set(CHECKPOINTS):
        torch.use_deterministic_algorithms(True)
        for name in args[1:]:
            make_one(name)
        return 0
    if args not in ([], ["make"]):
        print(__doc__)
        return 2
    torch.use_deterministic_algorithms(True)
    for name in CHECKPOINTS:
        make_one(name)
    make_bpe_tokenizer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
