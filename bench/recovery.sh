#!/usr/bin/env bash
# Recovery after compression on SmolLM2-135M-Instruct: remove 40% of the FFN neurons (structured,
# --method neurons, stored f16), then train the pruned model for STEPS steps of 256 tokens of
# data/calibration.txt (full fine-tuning, AdamW, warm-up 10 and cosine) two ways on the same data
# and budget: distillation from the original (forward KL on its logits) and plain next-token
# cross-entropy. Each file is evaluated against the original on WikiText-2 test (ctx 512, CHUNKS
# windows): perplexity, KL divergence, top-1 agreement.
#   STEPS=100  LR=1e-4  CHUNKS=4  THREADS=2
# Output: bench/results/recovery-smollm2.json (raw), the KD run's loss curves as
# bench/results/recovery-smollm2-kd.svg, and the table between <!-- recovery:smollm2 --> markers
# of docs/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${STEPS:-100}; lr=${LR:-1e-4}; chunks=${CHUNKS:-4}; threads=${THREADS:-2}
src=$(./scripts/fetch-models.sh smollm2)
[ -x build/slimlm ] || ./scripts/build.sh >/dev/null
wiki=../shared/data/wikitext-2-raw/wiki.test.raw
[ -f "$wiki" ] || { echo "recovery.sh: $wiki is missing (WikiText-2 test, the evaluation text)" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
export OMP_WAIT_POLICY=passive
ev() { ./build/slimlm eval "$1" -f "$wiki" --ctx 512 --chunks "$chunks" --ref "$src" -t "$threads" --json --no-progress > "$2"; }
echo "== prune: neurons 0.4" >&2
./build/slimlm prune "$src" -o "$work/pruned.gguf" --method neurons --sparsity 0.4 --type f16 --calib-samples 16 \
  -t "$threads" --json --no-progress > "$work/prune.json"
ev "$work/pruned.gguf" "$work/pruned.eval.json"
common=(--steps "$steps" --seq 256 --lr "$lr" --warmup 10 --heldout 0.02 --eval-every 25 -t "$threads" --json --type f16)
echo "== distill (forward KL), $steps steps" >&2
./build/slimlm distill "$work/pruned.gguf" --teacher "$src" --kd fkl "${common[@]}" -o "$work/kd.gguf" \
  --curve bench/results/recovery-smollm2-kd.svg > "$work/kd.train.json"
ev "$work/kd.gguf" "$work/kd.eval.json"
echo "== fine-tune (cross-entropy), $steps steps" >&2
./build/slimlm train "$work/pruned.gguf" "${common[@]}" -o "$work/ce.gguf" > "$work/ce.train.json"
ev "$work/ce.gguf" "$work/ce.eval.json"
python3 - "$work" "$steps" "$lr" "$chunks" <<'PY'
import json, os, sys
sys.path.insert(0, "bench")
from results_block import write_block
w, steps, lr, chunks = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ld = lambda n: json.load(open(os.path.join(w, n)))
rows = [("pruned, no recovery", ld("pruned.eval.json"), None),
        (f"+ KD (forward KL), {steps} steps", ld("kd.eval.json"), ld("kd.train.json")),
        (f"+ cross-entropy fine-tuning, {steps} steps", ld("ce.eval.json"), ld("ce.train.json"))]
res = {"model": "SmolLM2-135M-Instruct", "prune": "neurons 0.4", "steps": steps, "lr": lr, "seq": 256, "chunks": chunks,
       "rows": [{"name": n, "eval": e, "train": {k: t[k] for k in ("seconds", "tokens", "tokens_per_s", "heldout")} if t else None}
                for n, e, t in rows],
       "command": f"STEPS={steps} LR={lr} CHUNKS={chunks} bench/recovery.sh"}
json.dump(res, open("bench/results/recovery-smollm2.json", "w"), indent=1)
body = "| model | ppl | KLD vs original | top-1 agree | training time |\n|---|---:|---:|---:|---:|\n"
for n, e, t in rows:
    body += (f"| {n} | {e['ppl']:.2f} | {e['kld_mean']:.4f} | {100 * e['top1_agree']:.2f}% | "
             f"{'-' if not t else '%.0f s' % t['seconds']} |\n")
body += f"\nRerun: `{res['command']}`; the KD run's loss curves: [recovery-smollm2-kd.svg](../bench/results/recovery-smollm2-kd.svg)."
write_block("docs/results.md", "recovery:smollm2", body)
print(body)
PY
