#!/bin/bash
# Structured pruning table on SmolLM2-135M: prune (--type f16), evaluate against the Q4_1
# original (ppl, KLD, top-1) and bench decode against the dense model in the same type.
# Usage: bench/structured_table.sh [OUTDIR] [CHUNKS]   (raw JSON per run in OUTDIR)
#   METHODS="flap neurons" SPARSITIES="0.4" bench/structured_table.sh   (a subset)
set -u
B=build/slimlm; M=models/SmolLM2-135M-Instruct.Q4_1.gguf; W=../shared/data/wikitext-2-raw/wiki.test.raw
O=${1:-.cache/structured}; C=${2:-4}
mkdir -p $O
[ -f $O/dense-f16.gguf ] || $B convert $M -o $O/dense-f16.gguf --type f16 >&2
measure() {  # name file
  $B eval $2 -f $W --ctx 512 --chunks $C --ref $M --json --no-progress > $O/$1.eval.json
  $B bench $2 -t 2 -r 2 -p 32 -n 64 --json > $O/$1.bench.json
}
measure dense $O/dense-f16.gguf
for S in ${SPARSITIES:-0.2 0.4}; do
  for me in ${METHODS:-heads neurons flap block-influence layers}; do
    $B prune $M -o $O/$me-$S.gguf --method $me --sparsity $S --calib-samples 8 --calib-len 256 --json \
      > $O/$me-$S.prune.json 2> $O/$me-$S.prune.err || { echo "$me $S: $(tail -1 $O/$me-$S.prune.err)" >&2; continue; }
    measure $me-$S $O/$me-$S.gguf
  done
done
