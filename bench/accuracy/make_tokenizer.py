#!/usr/bin/env python3
"""Trains the accuracy model's tokenizer: a byte-level BPE in Llama 3's tokenizer.json format.

The recipe of tests/fixtures/make_tokenizer.py (Llama 3's split regex + ByteLevel, ignore_merges,
the special tokens at the end of the id range, a TemplateProcessing post-processor that adds
<|begin_of_text|>), trained with the `tokenizers` library on documents of the task mixture
(training seeds only) and the prose and words they are made of. Deterministic for a given seed,
package data and library version.

  python3 bench/accuracy/make_tokenizer.py [--out bench/accuracy/model] [--vocab 4096] [--seed 1]
"""

import argparse
import json
import os
import random
import sys

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
from tokenizers import processors, trainers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tasks  # noqa: E402

# Llama 3's pre-tokenizer regex, exactly as its tokenizer.json writes it.
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
BOS, EOS = "<|begin_of_text|>", "<|end_of_text|>"
SPECIAL_TOKENS = [BOS, EOS, "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"] + [
    f"<|reserved_special_token_{i}|>" for i in range(3)]
# The tokenizer's documents: seeds from the top of the training range, apart from the model's.
TOKENIZER_SEED_BASE = tasks.TRAIN_SEED_BASE + 2 ** 39


def corpus(seed, docs):
    gen = tasks.Generator(None)
    rng = random.Random(seed)
    out = list(gen.prose) + [" ".join(gen.words[i:i + 100]) for i in range(0, len(gen.words), 100)]
    for i in range(docs):
        task = tasks.TASKS[i % len(tasks.TASKS)]
        s = gen.sample(task, rng.choice([256, 512, 1024, 2048]), TOKENIZER_SEED_BASE + i, exact=False)
        out.append(s["context"] + s["query"] + s["target"])
    return out


def build(out_dir, vocab, seed, docs):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab - len(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=[], show_progress=False)
    tok.train_from_iterator(corpus(seed, docs), trainer=trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    assert tok.get_vocab_size(with_added_tokens=True) == vocab, tok.get_vocab_size()
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A:0 {BOS}:1 $B:1",
                                      special_tokens=[(BOS, tok.token_to_id(BOS))]),
    ])
    os.makedirs(out_dir, exist_ok=True)
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    config = {
        "bos_token": BOS,
        "eos_token": EOS,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 32768,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    return tok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(tasks.HERE, "model"))
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--docs", type=int, default=3000)
    args = ap.parse_args()
    tok = build(args.out, args.vocab, args.seed, args.docs)
    text = "One of the special magic numbers for gnarlier-marmots is: 7015227."
    print(f"make_tokenizer: {tok.get_vocab_size()} tokens in {args.out}; "
          f"{text!r} -> {tok.encode(text).tokens}")


if __name__ == "__main__":
    main()
