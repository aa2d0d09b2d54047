#!/usr/bin/env bash
# Sparse weights vs dense f16, two measurements, one JSON (bench/results/sparse-crossover.json):
# 1. kernels (bench/bench_sparse.cpp, 1 thread): dense f16, 2:4 and bitmap at 0..95% sparsity on
#    SmolLM2's 576x1536 and 1536x576 projections, 1 and 64 tokens; the crossover is the lowest
#    measured sparsity from which on bitmap beats dense f16.
# 2. model: SmolLM2-135M with every block linear magnitude-pruned to 2:4 (test utility
#    SparseBench.DISABLED_MagnitudePrune), stored dense f16 and 2:4 (`convert --sparse 2:4`):
#    `slimlm bench` pp64/tg128 tokens/s with THREADS ("2 1") threads, and eval of 2:4 against the
#    dense copy. OMP_WAIT_POLICY=passive (default here): on a shared, oversubscribed machine
#    spinning OpenMP threads wait for descheduled peers and 2-thread timings collapse.
set -euo pipefail
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
cd "$(dirname "$0")/.."
build=${BUILD:-build}
threads=${THREADS:-2 1}
reps=${REPS:-3}
src=models/SmolLM2-135M-Instruct.Q4_1.gguf
out=bench/results/sparse-crossover.json
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "kernels ..." >&2
OMP_NUM_THREADS=1 "$build/slimlm_bench" --benchmark_filter=BM_Sparse --benchmark_min_time=0.3 \
  --benchmark_repetitions="$reps" --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true --benchmark_format=json > "$tmp/kernels.json"

echo "model ..." >&2
SLIMLM_PRUNE_IN=$src SLIMLM_PRUNE_OUT=$tmp/dense24.gguf SLIMLM_PRUNE_MODE=2:4 \
  "$build/slimlm_tests" --gtest_also_run_disabled_tests --gtest_filter=SparseBench.DISABLED_MagnitudePrune >&2
"$build/slimlm" convert "$tmp/dense24.gguf" -o "$tmp/sparse24.gguf" --type f16 --sparse 2:4
for t in $threads; do
  for m in dense24 sparse24; do  # alternate so load changes hit both
    echo "bench $m, $t threads ..." >&2
    "$build/slimlm" bench "$tmp/$m.gguf" -p 64 -n 128 -r "$reps" -t "$t" --json > "$tmp/bench-$m-$t.json"
  done
done
"$build/slimlm" eval "$tmp/sparse24.gguf" -f ../shared/data/wikitext-2-raw/wiki.test.raw --ref "$tmp/dense24.gguf" \
  --ctx 256 --chunks 2 --json --no-progress -t 2 > "$tmp/eval.json"
ls -l "$tmp"/*.gguf | awk '{print $5, $NF}' > "$tmp/sizes.txt"

python3 bench/sparse_summary.py "$tmp" "$out" "$threads"
