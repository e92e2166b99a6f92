#!/usr/bin/env python3
"""Reference for selfplay_model::tokenizer::train_bpe: the same BPE trained by the Python `tokenizers` library.

Writes crates/model/tests/fixtures/trained_bpe/expected.json:
  corpus       the training texts (Countdown-like prompts, steps, `back` lines and answers, made here)
  vocab_size   the vocabulary asked for
  vocab        the trained vocabulary, token -> id
  cases        [{"text", "ids"}] for a few strings, encoded without special tokens

The pipeline is the one train_bpe documents: specials <pad>, <bos>, <eos> first; a newline split off on its own,
digits split one by one, then byte-level with no regex; every byte in the initial alphabet; pairs seen at
least twice. The Rust test trains on `corpus` and must give the same vocabulary and ids.

    pip install "tokenizers==0.22.*" && python3 tools/make_trained_bpe_fixture.py
"""

import json
import random
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

OUT = Path(__file__).resolve().parent.parent / "crates" / "model" / "tests" / "fixtures" / "trained_bpe"
VOCAB_SIZE = 320


def corpus():
    rng = random.Random(7)
    texts = []
    for _ in range(150):
        a, b, c = (rng.randint(1, 99) for _ in range(3))
        target = rng.randint(10, 100)
        texts.append(f"{a} {b} {c} -> {target}\n")
        texts.append(f"{a}+{b}={a + b}\nback\n{a}*{c}={a * c}\n<answer>({a}*{c})-{b}</answer>")
    return texts


def main():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split("\n", behavior="isolated"),
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, min_frequency=2, show_progress=False,
                                  special_tokens=["<pad>", "<bos>", "<eos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    texts = corpus()
    tok.train_from_iterator(texts, trainer)
    samples = ["3 8 12 -> 24\n", "8*3=24\nback\n12+8=20\n<answer>(12+8)+3</answer>", "unseen wörds ✓", "\n\n", ""]
    cases = [{"text": t, "ids": tok.encode(t, add_special_tokens=False).ids} for t in samples]
    OUT.mkdir(parents=True, exist_ok=True)
    expected = {"corpus": texts, "vocab_size": VOCAB_SIZE, "vocab": tok.get_vocab(), "cases": cases}
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"trained_bpe: {tok.get_vocab_size()} ids")


if __name__ == "__main__":
    main()
