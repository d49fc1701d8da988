#!/usr/bin/env python3
"""Extracts the English text the accuracy tasks are made of from Debian packages.

  words.txt  lower-case words of 3 to 9 letters from `wamerican` (/usr/share/dict/american-english):
             needle keys ("word-word"), word values, the common-words lists
  prose.txt  one paragraph per line from `fortunes` (/usr/share/games/fortunes): the prose haystack

Both are written into bench/accuracy/data/ (ignored by git; `sudo apt-get install wamerican
fortunes` first). The output depends only on the package versions, which SOURCES.txt records with
the files' SHA-256, so that held-out samples are the same on every machine with those versions.

  python3 bench/accuracy/prepare_data.py [--out DIR]
"""

import argparse
import hashlib
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DICT = "/usr/share/dict/american-english"
FORTUNES = "/usr/share/games/fortunes"
# Fortune files that are pictures, code or lists rather than prose.
SKIP_FORTUNES = {"art", "ascii-art", "perl", "definitions", "translate-me", "songs-poems"}


def package_version(name):
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True,
                             text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def read_words():
    words = set()
    with open(DICT, encoding="utf-8", errors="replace") as f:
        for line in f:
            w = line.strip()
            if 3 <= len(w) <= 9 and w.isascii() and w.isalpha() and w.islower():
                words.add(w)
    return sorted(words)


def clean_fortune(text):
    """One paragraph of plain prose, or None for pictures, tables, code and the like."""
    if not text.isascii() or "\t" in text or "    " in text.strip("\n"):
        return None
    lines = [ln.strip() for ln in text.strip().split("\n")]
    if any(ln.startswith(("--", "- ")) for ln in lines[:-1]):
        return None  # dialogue or lists
    para = " ".join(ln for ln in lines if ln)
    para = re.sub(r"\s+", " ", para).strip()
    if not 40 <= len(para) <= 700:
        return None
    letters = sum(c.isalpha() for c in para)
    if letters < 0.7 * len(para) or re.search(r"[|_<>{}\\\[\]^~=#*]", para):
        return None
    return para


def read_prose():
    paras = []
    seen = set()
    for name in sorted(os.listdir(FORTUNES)):
        path = os.path.join(FORTUNES, name)
        if "." in name or name in SKIP_FORTUNES or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for entry in f.read().split("\n%\n"):
                para = clean_fortune(entry)
                if para and para not in seen:
                    seen.add(para)
                    paras.append(para)
    return paras


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(HERE, "data"))
    args = ap.parse_args()
    for path, pkg in ((DICT, "wamerican"), (FORTUNES, "fortunes")):
        if not os.path.exists(path):
            sys.exit(f"prepare_data: {path} is missing: install the Debian package '{pkg}' "
                     f"(sudo apt-get install wamerican fortunes)")
    os.makedirs(args.out, exist_ok=True)
    words, prose = read_words(), read_prose()
    for name, rows in (("words.txt", words), ("prose.txt", prose)):
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
            f.write("\n".join(rows) + "\n")
    with open(os.path.join(args.out, "SOURCES.txt"), "w", encoding="utf-8") as f:
        f.write(f"wamerican {package_version('wamerican')}\n")
        f.write(f"fortunes {package_version('fortunes')}\n")
        for name in ("words.txt", "prose.txt"):
            f.write(f"{sha256(os.path.join(args.out, name))}  {name}\n")
    print(f"prepare_data: {len(words)} words, {len(prose)} paragraphs of prose in {args.out}")


if __name__ == "__main__":
    main()
