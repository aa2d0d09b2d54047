#!/usr/bin/env bash
# Training throughput on SmolLM2-135M-Instruct, sequence 256, 2 threads: tokens/s of full
# fine-tuning and of LoRA (rank 16 on every linear), and the model-FLOPs utilisation of full
# fine-tuning, MFU = 6 · parameters · tokens/s ÷ this machine's peak f32 FMA rate (measured in
# the same run by bench/peak/peak_fma.cpp, 2 threads of AVX2 FMA chains).
# Each configuration runs REPS times (interleaved, default 3) for STEPS optimizer steps (default 4);
# the first step of each run is warm-up and not timed. Output: bench/results/train-smollm2.json
# (raw) and the table between the <!-- train:smollm2 --> markers of docs/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${REPS:-3}; steps=${STEPS:-4}; threads=${THREADS:-2}
model=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
out=bench/results/train-smollm2.json
[ -x build/slimlm ] || ./scripts/build.sh >/dev/null
[ -f "$model" ] || ./scripts/fetch-models.sh smollm2 >/dev/null
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
g++ -O2 -mavx2 -mfma -fopenmp bench/peak/peak_fma.cpp -o "$work/peak_fma"
export OMP_WAIT_POLICY=passive
runs=()
for r in $(seq "$reps"); do
  "$work/peak_fma" "$threads" > "$work/peak.$r.json"
  for mode in full lora; do
    extra=(); [ "$mode" = lora ] && extra=(--lora-rank 16 --lr 1e-3)
    echo "run $r/$reps: $mode" >&2
    build/slimlm train "$model" --seq 256 --steps "$steps" --heldout 0 -t "$threads" --json "${extra[@]}" \
      > "$work/$mode.$r.json"
    runs+=("$mode.$r")
  done
done
python3 - "$work" "$out" "$reps" "$threads" "$model" <<'PY'
import json, os, statistics, sys
sys.path.insert(0, "bench")
from results_block import write_block
work, out, reps, threads, model = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
ld = lambda n: json.load(open(os.path.join(work, n)))
peak = [ld(f"peak.{r}.json")["gflops"] for r in range(1, reps + 1)]
rows = {}
for mode in ("full", "lora"):
    tps, params = [], None
    for r in range(1, reps + 1):
        j = ld(f"{mode}.{r}.json")
        secs = j["step_seconds"][1:]
        tps.append(j["tokens_per_step"] * len(secs) / sum(secs))
        params = j["params_total"]
        trained = j["params_trained"]
    rows[mode] = {"tokens_per_s": tps, "params_total": params, "params_trained": trained}
n = rows["full"]["params_total"]
mfu = [6 * n * t / (p * 1e9) for t, p in zip(rows["full"]["tokens_per_s"], peak)]
res = {"model": os.path.basename(model), "seq": 256, "threads": threads, "peak_gflops": peak, "mfu_full": mfu,
       "runs": rows, "command": "bench/train_throughput.sh"}
os.makedirs(os.path.dirname(out), exist_ok=True)
json.dump(res, open(out, "w"), indent=1)
f = lambda xs, d=1: f"{statistics.median(xs):.{d}f} ({min(xs):.{d}f}-{max(xs):.{d}f})"
body = ("| mode | trained parameters | tokens/s | MFU |\n|---|---:|---:|---:|\n"
        f"| full fine-tuning | {rows['full']['params_trained']:,} | {f(rows['full']['tokens_per_s'])} | "
        f"{f([100 * m for m in mfu])}% |\n"
        f"| LoRA r16, every linear | {rows['lora']['params_trained']:,} | {f(rows['lora']['tokens_per_s'])} | - |\n\n"
        f"Peak f32 FMA rate measured in the same run ({threads} threads): {f(peak)} GFLOP/s; median (min-max) of {reps} runs.")
write_block("docs/results.md", "train:smollm2", body)
print(body)
PY
echo "wrote $out and the docs/results.md table" >&2
