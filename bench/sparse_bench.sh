#!/usr/bin/env bash
# Sparse weights vs dense f16, two measurements, one JSON (bench/results/sparse-crossover.json):
# 1. kernels (bench/bench_sparse.cpp, 1 thread): dense f16, 2:4 and bitmap at 0..95% sparsity on
#    SmolLM2's 576x1536 and 1536x576 projections, 1 and 64 tokens; the crossover is the lowest
#    measured sparsity from which on bitmap beats dense f16.
# 2. model: SmolLM2-135M with every block linear magnitude-pruned to 2:4 (test utility
#    SparseBench.DISABLED_MagnitudePrune), stored dense f16 and 2:4 (`convert --sparse 2:4`):
#    `slimlm bench` pp/tg tokens/s with THREADS (2) threads, and eval of 2:4 against the dense copy.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
threads=${THREADS:-2}
reps=${REPS:-3}
src=models/SmolLM2-135M-Instruct.Q4_1.gguf
out=bench/results/sparse-crossover.json
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "kernels ..." >&2
OMP_NUM_THREADS=1 "$build/slimlm_bench" --benchmark_filter=BM_Sparse --benchmark_min_time=0.3 \
  --benchmark_repetitions="$reps" --benchmark_report_aggregates_only=true --benchmark_format=json > "$tmp/kernels.json"

echo "model ..." >&2
SLIMLM_PRUNE_IN=$src SLIMLM_PRUNE_OUT=$tmp/dense24.gguf SLIMLM_PRUNE_MODE=2:4 \
  "$build/slimlm_tests" --gtest_also_run_disabled_tests --gtest_filter=SparseBench.DISABLED_MagnitudePrune >&2
"$build/slimlm" convert "$tmp/dense24.gguf" -o "$tmp/sparse24.gguf" --type f16 --sparse 2:4
for m in dense24 sparse24; do
  "$build/slimlm" bench "$tmp/$m.gguf" -p 64 -n 128 -r "$reps" -t "$threads" --json > "$tmp/bench-$m.json"
done
"$build/slimlm" eval "$tmp/sparse24.gguf" -f ../shared/data/wikitext-2-raw/wiki.test.raw --ref "$tmp/dense24.gguf" \
  --ctx 256 --chunks 2 --json --no-progress -t "$threads" > "$tmp/eval.json"
ls -l "$tmp"/*.gguf | awk '{print $5, $NF}' > "$tmp/sizes.txt"

python3 - "$tmp" "$out" <<'PY'
import json, os, sys
tmp, out = sys.argv[1], sys.argv[2]
k = json.load(open(os.path.join(tmp, "kernels.json")))
times = {}  # (shape, ntok, fmt, pct) -> median microseconds
for b in k["benchmarks"]:
    if b.get("aggregate_name") != "median": continue
    args = tuple(int(a) for a in b["run_name"].split("/")[1:5])
    times[args] = b["real_time"]
shapes = {0: "576x1536", 1: "1536x576"}
kern = []
for (shape, ntok) in sorted({(a[0], a[1]) for a in times}):
    dense = times[(shape, ntok, 0, 0)]
    sweep = sorted((a[3], t) for a, t in times.items() if a[:3] == (shape, ntok, 2))
    cross = None
    for i, (pct, _) in enumerate(sweep):
        if all(t < dense for _, t in sweep[i:]): cross = pct; break
    kern.append({"shape_cols_x_rows": shapes[shape], "tokens": ntok, "dense_f16_us": dense,
                 "nm2_4_us": times[(shape, ntok, 1, 50)], "nm2_4_speedup": dense / times[(shape, ntok, 1, 50)],
                 "bitmap_us_by_sparsity_pct": {str(p): t for p, t in sweep},
                 "bitmap_crossover_sparsity_pct": cross})
bench = {m: json.load(open(os.path.join(tmp, f"bench-{m}.json"))) for m in ("dense24", "sparse24")}
sizes = {os.path.basename(p).split(".")[0]: int(s) for s, p in (l.split() for l in open(os.path.join(tmp, "sizes.txt")))}
ev = json.load(open(os.path.join(tmp, "eval.json")))
res = {
    "host": open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(": \t"),
    "kernels": {"threads": 1, "note": "median of repetitions; weights cycled through > 64 MB of copies", "results": kern},
    "model": {"source": "SmolLM2-135M-Instruct.Q4_1.gguf, block linears magnitude-pruned 2:4 (SparseBench.DISABLED_MagnitudePrune)",
              "file_bytes": sizes,
              "dense_f16": {k: bench["dense24"][k] for k in ("pp_tps", "pp_tps_sd", "tg_tps", "tg_tps_sd", "weights_mb", "threads", "n_prompt", "n_gen")},
              "nm2_4": {k: bench["sparse24"][k] for k in ("pp_tps", "pp_tps_sd", "tg_tps", "tg_tps_sd", "weights_mb", "threads", "n_prompt", "n_gen")},
              "tg_speedup": bench["sparse24"]["tg_tps"] / bench["dense24"]["tg_tps"],
              "pp_speedup": bench["sparse24"]["pp_tps"] / bench["dense24"]["pp_tps"],
              "eval_2_4_vs_dense": {k: ev.get(k) for k in ("kld_mean", "top1_agree", "ppl", "ppl_ref")}},
}
json.dump(res, open(out, "w"), indent=2)
print(json.dumps({"crossover": [(r["shape_cols_x_rows"], r["tokens"], r["bitmap_crossover_sparsity_pct"], round(r["nm2_4_speedup"], 2)) for r in kern],
                  "tg_speedup": res["model"]["tg_speedup"], "pp_speedup": res["model"]["pp_speedup"]}, indent=1))
PY
