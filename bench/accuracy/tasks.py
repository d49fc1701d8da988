#!/usr/bin/env python3
"""RULER-style synthetic long-context tasks: seeded, deterministic generators and scoring.

Modelled on RULER (Hsieh et al., "RULER: What's the Real Context Size of Your Long-Context
Language Models?", 2024), its synthetic tasks and prompt templates:

  niah_single_1     repeated filler sentences, word key, 7-digit number value
  niah_single_2     prose haystack, word key, number value
  niah_single_3     prose haystack, word key, UUID value
  niah_multikey_1   prose haystack, the needle among 3 distractor needles of other keys
  niah_multikey_2   a haystack made only of needles: word keys, word values
  niah_multikey_3   a haystack made only of needles: UUID keys, UUID values
  niah_multivalue   prose haystack, 4 needles of one key: all 4 values are expected
  niah_multiquery   prose haystack, 4 needles of 4 keys, all 4 asked for at once
  vt                variable tracking: a chain of 4 hops (VAR A = 12345, VAR B = VAR A, ...) in
                    filler, all 5 names expected
  cwe               common-words extraction: a numbered list of words, 10 of them 30 times (fewer
                    at short lengths), the others 3 times; the 10 expected

(RULER's niah_multikey_2 has number values; here they are words so that every value type of the
issue is covered.) Keys are two words of the word list joined by '-', like RULER's
adjective-noun keys. Words come from Debian's `wamerican`, prose from `fortunes`
(prepare_data.py).

A sample is {"task", "length", "seed", "context", "query", "answers", "target",
"max_new_tokens"}: `starinfer eval --chat-template none` reads context, query and
max_new_tokens; BOS + context + query is at most `length` tokens (as close as the haystack
allows); the question comes after the context, so Star Attention encodes it in phase 2. `target`
is the answer text the model is trained to produce after the query (then EOS). Scoring as RULER's
string_match_all: the fraction of the expected strings found (case-insensitive) in the
answer; a sample is correct when all are found.

Seeds: training draws from [2**32, 2**40), held-out evaluation from [0, 2**31) (eval_seed
below), the demo from [2**31, 2**32): no training document shares a seed with an evaluation or
demo sample.

  python3 bench/accuracy/tasks.py --tokenizer bench/accuracy/model --tasks niah_single_2 \
      --length 4096 --samples 20 --out requests.jsonl
"""

import argparse
import hashlib
import json
import os
import random
import sys
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")

TASKS = [
    "niah_single_1", "niah_single_2", "niah_single_3",
    "niah_multikey_1", "niah_multikey_2", "niah_multikey_3",
    "niah_multivalue", "niah_multiquery", "vt", "cwe",
]
EVAL_SEED_LIMIT = 2 ** 31
DEMO_SEEDS = (2 ** 31, 2 ** 32)
TRAIN_SEED_BASE = 2 ** 32

# RULER's "noise" haystack.
FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
FILLER_SENTENCES = [s.strip() + "." for s in FILLER.split(".") if s.strip()]

NIAH_INTRO = ("Some special magic {tv} are hidden within the following text. Make sure to memorize "
              "it. I will quiz you about the {tv} afterwards.\n")
NEEDLE = "One of the special magic {tv} for {key} is: {value}."
Q_ONE = ("\nWhat is the special magic {tv1} for {key} mentioned in the provided text?\n"
         "Answer: The special magic {tv1} for {key} mentioned in the provided text is")
Q_ALL = ("\nWhat are all the special magic {tv} for {key} mentioned in the provided text?\n"
         "Answer: The special magic {tv} for {key} mentioned in the provided text are")
VT_INTRO = "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n"
VT_QUERY = ("\nQuestion: Find all variables that are assigned the value {value} in the text above.\n"
            "Answer: According to the chain(s) of variable assignment in the text above, "
            "{n} variables are assigned the value {value}, they are:")
CWE_INTRO = ("Below is a numbered list of words. In these words, some appear more often than "
             "others. Memorize the ones that appear most often.\n")
CWE_QUERY = ("\nQuestion: What are the {n} most common words in the above list?\n"
             "Answer: The top {n} words that appear most often in the list are:")

VALUE_NAMES = {"numbers": ("numbers", "number"), "words": ("words", "word"),
               "uuids": ("uuids", "uuid")}

NIAH = {
    #                  haystack, key type, value type, keys, values, queries
    "niah_single_1": ("filler", "words", "numbers", 1, 1, 1),
    "niah_single_2": ("prose", "words", "numbers", 1, 1, 1),
    "niah_single_3": ("prose", "words", "uuids", 1, 1, 1),
    "niah_multikey_1": ("prose", "words", "numbers", 4, 1, 1),
    "niah_multikey_2": ("needle", "words", "words", 1, 1, 1),
    "niah_multikey_3": ("needle", "uuids", "uuids", 1, 1, 1),
    "niah_multivalue": ("prose", "words", "numbers", 1, 4, 1),
    "niah_multiquery": ("prose", "words", "numbers", 4, 1, 4),
}

MAX_NEW_TOKENS = {"numbers": 12, "words": 12, "uuids": 40}


def eval_seed(task, length, index):
    """The seed of held-out sample INDEX of TASK at LENGTH: below 2**31, never used in training."""
    h = hashlib.sha256(f"eval:{task}:{length}:{index}".encode()).digest()
    return int.from_bytes(h[:8], "little") % EVAL_SEED_LIMIT


def load_sources(data_dir=DATA):
    try:
        with open(os.path.join(data_dir, "words.txt"), encoding="utf-8") as f:
            words = f.read().split()
        with open(os.path.join(data_dir, "prose.txt"), encoding="utf-8") as f:
            prose = [ln.strip() for ln in f if ln.strip()]
    except FileNotFoundError:
        sys.exit(f"tasks: {data_dir}/words.txt or prose.txt is missing: run "
                 f"python3 bench/accuracy/prepare_data.py first")
    return words, prose


class Counter:
    """Token counts: exact with a tokenizer (BOS excluded), else an estimate from the length."""

    def __init__(self, tokenizer=None, chars_per_token=4.0):
        self.tok = tokenizer
        self.chars_per_token = chars_per_token
        self.cache = {}

    def exact(self, text):
        if self.tok is None:
            return int(len(text) / self.chars_per_token + 0.99)
        return len(self.tok.encode(text, add_special_tokens=False).ids)

    def unit(self, text):
        n = self.cache.get(text)
        if n is None:
            n = self.exact(" " + text)
            if len(self.cache) < 200000:
                self.cache[text] = n
        return n


class Generator:
    """Samples of the tasks. TOKENIZER (a tokenizers.Tokenizer, a tokenizer.json or a model
    directory) counts tokens; without one, lengths are estimated at CHARS_PER_TOKEN."""

    def __init__(self, tokenizer=None, data_dir=DATA, chars_per_token=4.0):
        if isinstance(tokenizer, str):
            from tokenizers import Tokenizer
            path = tokenizer
            if os.path.isdir(path):
                path = os.path.join(path, "tokenizer.json")
            tokenizer = Tokenizer.from_file(path)
        self.tok = tokenizer
        self.count = Counter(tokenizer, chars_per_token)
        self.words, self.prose = load_sources(data_dir)

    # ---- values and keys ----
    def value(self, rng, kind):
        if kind == "numbers":
            return str(rng.randint(1000000, 9999999))
        if kind == "words":
            return rng.choice(self.words)
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def key(self, rng, kind):
        if kind == "uuids":
            return self.value(rng, "uuids")
        return f"{rng.choice(self.words)}-{rng.choice(self.words)}"

    # ---- length fitting ----
    def fit(self, build, units, budget, exact):
        """The text build(k, w) for the most haystack units k (and words w of unit k) whose
        token count stays within BUDGET; build returns (text, pieces) where pieces are the
        strings whose counts add up to about the text's count."""
        def estimate(k, w):
            text, pieces = build(k, w)
            return text, sum(self.count.unit(p) for p in pieces)

        def measure(k, w):
            text, est = estimate(k, w)
            return text, (self.count.exact(text) if exact else est)

        # First by estimate (cheap), then by exact counts around it.
        lo, hi = 0, len(units)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if estimate(mid, 0)[1] <= budget:
                lo = mid
            else:
                hi = mid - 1
        k = lo
        if not exact:
            return build(k, 0)[0]
        while k > 0 and measure(k, 0)[1] > budget:
            k = max(0, k - max(1, k // 50))
        while k < len(units) and measure(k + 1, 0)[1] <= budget:
            k += 1
        # Then words of the next unit, where units are sentences of prose.
        if k < len(units):
            n_words = len(units[k].split())
            lo, hi = 0, n_words - 1
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if measure(k, mid)[1] <= budget:
                    lo = mid
                else:
                    hi = mid - 1
            return build(k, lo)[0]
        return build(k, 0)[0]

    def haystack_units(self, rng, kind, tokens, key_kind="words", value_kind="numbers",
                       tv="numbers"):
        """Enough haystack units for TOKENS tokens (by estimate), with some to spare."""
        units, total = [], 0
        while total < tokens * 1.15 + 64:
            if kind == "filler":
                u = FILLER_SENTENCES[len(units) % len(FILLER_SENTENCES)]
            elif kind == "prose":
                u = rng.choice(self.prose)
            else:
                u = NEEDLE.format(tv=tv, key=self.key(rng, key_kind),
                                  value=self.value(rng, value_kind))
            units.append(u)
            total += self.count.unit(u) if kind != "needle" else max(8, len(u) // 3)
        return units

    # ---- tasks ----
    def sample(self, task, length, seed, exact=True):
        rng = random.Random(seed)
        if task in NIAH:
            s = self._niah(rng, task, length, exact)
        elif task == "vt":
            s = self._vt(rng, length, exact)
        elif task == "cwe":
            s = self._cwe(rng, length, exact)
        else:
            raise ValueError(f"unknown task '{task}'; tasks: {', '.join(TASKS)}")
        s.update(task=task, length=length, seed=seed)
        return s

    def _insert(self, rng, units, items, k, w):
        """Haystack units[:k] (plus w words of units[k]) with ITEMS inserted at their depths
        (fractions of the haystack), in order."""
        body = list(units[:k])
        if w > 0 and k < len(units):
            body.append(" ".join(units[k].split()[:w]))
        out = list(body)
        for depth, item in sorted(items, key=lambda x: x[0], reverse=True):
            out.insert(round(depth * len(body)), item)
        return out

    def _niah(self, rng, task, length, exact):
        hay, key_kind, value_kind, n_keys, n_values, n_queries = NIAH[task]
        tv, tv1 = VALUE_NAMES[value_kind]
        keys = []
        while len(keys) < n_keys:
            k = self.key(rng, key_kind)
            if k not in keys:
                keys.append(k)
        values = {k: [self.value(rng, value_kind) for _ in range(n_values)] for k in keys}
        needles = [(rng.random(), NEEDLE.format(tv=tv, key=k, value=v))
                   for k in keys for v in values[k]]
        queried = keys[:n_queries]
        if n_queries > 1:
            key_text = ", ".join(queried[:-1]) + ", and " + queried[-1]
            query = Q_ALL.format(tv=tv, key=key_text)
            answers = [values[k][0] for k in queried]
        elif n_values > 1:
            query = Q_ALL.format(tv=tv, key=queried[0])
            answers = list(values[queried[0]])
        else:
            query = Q_ONE.format(tv1=tv1, key=queried[0])
            answers = list(values[queried[0]])
        if n_values > 1:
            # The answer lists the values in the order they appear in the text.
            order = {text: depth for depth, text in needles}
            answers.sort(key=lambda v: order[NEEDLE.format(tv=tv, key=queried[0], value=v)])
        intro = NIAH_INTRO.format(tv=tv)
        budget = length - 1 - self.count.exact(query)
        units = self.haystack_units(rng, hay, budget, key_kind, value_kind, tv)
        if hay == "needle":
            # Distractor needles must not repeat a queried key.
            units = [u for u in units if not any(f" {k} " in u for k in keys)]

        def build(k, w):
            pieces = self._insert(rng, units, needles, k, w)
            return intro + " ".join(pieces), [intro] + pieces

        # Depths are fixed before fitting, so every candidate places the needles alike.
        context = self.fit(build, units, budget, exact)
        target = " " + ", ".join(answers)
        return {"context": context, "query": query, "answers": answers, "target": target,
                "max_new_tokens": MAX_NEW_TOKENS[value_kind] * len(answers)}

    def _vt(self, rng, length, exact, hops=4, chains=1):
        names = set()
        chain_list = []
        for _ in range(chains):
            chain = []
            while len(chain) < hops + 1:
                name = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(5))
                if name not in names:
                    names.add(name)
                    chain.append(name)
            value = str(rng.randint(10000, 99999))
            stmts = [f"VAR {chain[0]} = {value}."]
            stmts += [f"VAR {chain[i]} = VAR {chain[i - 1]}." for i in range(1, hops + 1)]
            chain_list.append((value, chain, stmts))
        value, chain, _ = chain_list[0]
        query = VT_QUERY.format(value=value, n=hops + 1)
        budget = length - 1 - self.count.exact(query)
        units = self.haystack_units(rng, "filler", budget)
        items = []
        for _, _, stmts in chain_list:
            depths = sorted(rng.random() for _ in stmts)
            items += list(zip(depths, stmts))

        def build(k, w):
            pieces = self._insert(rng, units, items, k, w)
            return VT_INTRO + " ".join(pieces), [VT_INTRO] + pieces

        context = self.fit(build, units, budget, exact)
        return {"context": context, "query": query, "answers": chain, "target": " " + " ".join(chain),
                "max_new_tokens": 6 * len(chain)}

    def _cwe(self, rng, length, exact, n_common=10, freq_common=30, freq_rare=3):
        pool = rng.sample(self.words, 4000)
        common, rare_pool = pool[:n_common], pool[n_common:]
        query = CWE_QUERY.format(n=n_common)
        budget = length - 1 - self.count.exact(query)
        # About 4 tokens an item ("123. word"); short lists repeat the common words less often.
        items_max = max(4 * n_common, budget // 4)
        fc = max(2 * freq_rare, min(freq_common, items_max // (2 * n_common)))
        shuffle_seed = rng.getrandbits(64)

        def build(k, w):
            words = [x for x in common for _ in range(fc)]
            words += [x for x in rare_pool[:k] for _ in range(freq_rare)]
            random.Random(shuffle_seed).shuffle(words)
            pieces = [p for i, x in enumerate(words) for p in (f"{i + 1}.", x)]
            return CWE_INTRO + " ".join(pieces), [CWE_INTRO] + pieces

        # "Units" are the distinct rare words, and no partial ones.
        units = ["x"] * min(len(rare_pool), items_max)
        context = self.fit(lambda k, w: build(k, 0), units, budget, exact)
        return {"context": context, "query": query, "answers": common,
                "target": " " + ", ".join(common), "max_new_tokens": 6 * n_common}


# ---- scoring ----
def score(answer, expected):
    """RULER's string_match_all for one sample: the fraction of EXPECTED found in ANSWER."""
    a = answer.lower()
    return sum(1.0 for e in expected if e.lower() in a) / len(expected)


def main():
    ap = argparse.ArgumentParser(description="Writes held-out samples as starinfer eval requests.")
    ap.add_argument("--tokenizer", required=True, help="tokenizer.json, or a model directory")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--length", type=int, required=True, help="prompt tokens (BOS+context+query)")
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--seed", type=int, help="one sample with this seed instead of held-out ones")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    gen = Generator(args.tokenizer)
    with open(args.out, "w", encoding="utf-8") as f:
        for task in args.tasks.split(","):
            seeds = [args.seed] if args.seed is not None else [
                eval_seed(task, args.length, i) for i in range(args.samples)]
            for seed in seeds:
                f.write(json.dumps(gen.sample(task, args.length, seed)) + "\n")


if __name__ == "__main__":
    main()
