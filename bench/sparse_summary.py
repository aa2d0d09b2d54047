#!/usr/bin/env python3
"""Summarises bench/sparse_bench.sh's raw files (kernels.json, bench-*.json, eval.json, sizes.txt
in DIR) into bench/results/sparse-crossover.json. Kernel times are CPU time (median of the
repetitions): on a shared, oversubscribed machine wall time mostly measures waiting for a CPU."""
import json, os, sys

tmp, out, threads = sys.argv[1], sys.argv[2], sys.argv[3].split()
k = json.load(open(os.path.join(tmp, "kernels.json")))
cpu, real = {}, {}  # (shape, ntok, fmt, pct) -> median microseconds
for b in k["benchmarks"]:
    if b.get("aggregate_name") != "median":
        continue
    args = tuple(int(a) for a in b["run_name"].split("/")[1:5])
    cpu[args], real[args] = b["cpu_time"], b["real_time"]
shapes = {0: "576x1536", 1: "1536x576"}


def crossover(dense, sweep):  # lowest sparsity from which on every measured point beats dense
    for i, (pct, _) in enumerate(sweep):
        if all(t < dense for _, t in sweep[i:]):
            return pct
    return None


kern, combined = [], []
for ntok in sorted({a[1] for a in cpu}):
    tot_dense, tot_sweep = 0.0, {}
    for shape in (0, 1):
        dense = cpu[(shape, ntok, 0, 0)]
        sweep = sorted((a[3], t) for a, t in cpu.items() if a[:3] == (shape, ntok, 2))
        nm = cpu[(shape, ntok, 1, 50)]
        kern.append({"shape_cols_x_rows": shapes[shape], "tokens": ntok, "dense_f16_cpu_us": dense, "nm2_4_cpu_us": nm,
                     "nm2_4_speedup": dense / nm, "bitmap_cpu_us_by_sparsity_pct": {str(p): t for p, t in sweep},
                     "bitmap_crossover_sparsity_pct": crossover(dense, sweep),
                     "wall_us": {"dense_f16": real[(shape, ntok, 0, 0)], "nm2_4": real[(shape, ntok, 1, 50)]}})
        tot_dense += dense
        for p, t in sweep:
            tot_sweep[p] = tot_sweep.get(p, 0.0) + t
    combined.append({"tokens": ntok, "bitmap_crossover_sparsity_pct": crossover(tot_dense, sorted(tot_sweep.items())),
                     "note": "both shapes summed (one 576x1536 plus one 1536x576 matmul)"})

res = {"host": open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(": \t"),
       "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
       "kernels": {"threads": 1, "metric": "CPU time, median of repetitions (random interleaving); weights cycled through > 64 MB of copies",
                   "results": kern, "combined": combined}}
if os.path.exists(os.path.join(tmp, "eval.json")):
    keys = ("pp_tps", "pp_tps_sd", "tg_tps", "tg_tps_sd", "weights_mb", "n_prompt", "n_gen")
    runs = []
    for t in threads:
        b = {m: json.load(open(os.path.join(tmp, f"bench-{m}-{t}.json"))) for m in ("dense24", "sparse24")}
        runs.append({"threads": int(t), "dense_f16": {x: b["dense24"][x] for x in keys}, "nm2_4": {x: b["sparse24"][x] for x in keys},
                     "tg_speedup": b["sparse24"]["tg_tps"] / b["dense24"]["tg_tps"],
                     "pp_speedup": b["sparse24"]["pp_tps"] / b["dense24"]["pp_tps"]})
    sizes = {os.path.basename(p).split(".")[0]: int(s) for s, p in (l.split() for l in open(os.path.join(tmp, "sizes.txt")))}
    ev = json.load(open(os.path.join(tmp, "eval.json")))
    res["model"] = {"source": "SmolLM2-135M-Instruct.Q4_1.gguf, block linears magnitude-pruned 2:4 "
                              "(SparseBench.DISABLED_MagnitudePrune), stored dense f16 and nm2:4",
                    "file_bytes": sizes, "bench": runs,
                    "eval_2_4_vs_dense": {x: ev.get(x) for x in ("kld_mean", "kld_max", "top1_agree", "max_abs_logit_diff", "ppl", "ref_ppl")}}
json.dump(res, open(out, "w"), indent=2)
summary = {"crossover": [(r["shape_cols_x_rows"], r["tokens"], r["bitmap_crossover_sparsity_pct"], round(r["nm2_4_speedup"], 2)) for r in kern],
           "combined": [(c["tokens"], c["bitmap_crossover_sparsity_pct"]) for c in combined]}
if "model" in res:
    summary["model"] = [(r["threads"], round(r["tg_speedup"], 3), round(r["pp_speedup"], 3)) for r in res["model"]["bench"]]
print(json.dumps(summary, indent=1))
