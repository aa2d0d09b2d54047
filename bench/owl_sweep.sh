#!/usr/bin/env bash
# OWL's two hyperparameters on one model at one sparsity: Wanda with uniform layer sparsity, then
# Wanda + OWL for each "M:lambda" in SETTINGS (outlier threshold M x mean score; layer sparsities
# spread over 2·lambda). The paper's defaults are 5:0.08 (tuned on LLaMA). Each result: wikitext-2
# ppl / KL divergence / top-1 vs the original (ctx 512, CHUNKS windows) and the per-layer
# sparsities OWL chose. Raw JSON: bench/results/owl-sweep-<name>.json.
#   bench/owl_sweep.sh gemma3      SPARSITY=0.7 SETTINGS="5:0.08 5:0.04 3:0.08" bench/owl_sweep.sh smollm2
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-gemma3}
sparsity=${SPARSITY:-0.7}
chunks=${CHUNKS:-4}
threads=${THREADS:-2}
settings=${SETTINGS:-"5:0.08 5:0.04 5:0.02 3:0.08 10:0.08"}
calib="--calib-samples ${CALIB_SAMPLES:-16} --calib-len ${CALIB_LEN:-256}"
src=$(./scripts/fetch-models.sh "$name")
[ -x build/slimlm ] || ./scripts/build.sh >/dev/null
wiki=../shared/data/wikitext-2-raw/wiki.test.raw
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=bench/results/owl-sweep-$name.json
run() {  # tag, extra prune flags
  echo "== $1" >&2
  ./build/slimlm prune "$src" -o "$work/m.gguf" --method wanda --sparsity "$sparsity" $2 $calib -t "$threads" --json --no-progress > "$work/$1.prune.json"
  ./build/slimlm eval "$work/m.gguf" -f "$wiki" --ref "$src" --ctx 512 --chunks "$chunks" -t "$threads" --json --no-progress > "$work/$1.eval.json"
  rm -f "$work/m.gguf"
}
run uniform ""
tags=(uniform)
for s in $settings; do
  run "owl-$s" "--owl --owl-m ${s%%:*} --owl-lambda ${s#*:}"; tags+=("owl-$s")
done
python3 - "$work" "$out" "$name" "$sparsity" "$chunks" "${tags[@]}" <<'PY'
import json, sys
work, out, name, sparsity, chunks, tags = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]), sys.argv[6:]
runs = []
for t in tags:
    p, e = json.load(open(f"{work}/{t}.prune.json")), json.load(open(f"{work}/{t}.eval.json"))
    runs.append({"config": t, "ppl": e["ppl"], "kld_mean": e["kld_mean"], "top1_agree": e["top1_agree"],
                 "achieved": p.get("achieved_sparsity"), "layers": p.get("layers")})
    print(f"{t:>14}: ppl {e['ppl']:.2f}  KLD {e['kld_mean']:.4f}  top-1 {e['top1_agree']:.4f}", file=sys.stderr)
json.dump({"model": name, "sparsity": sparsity, "chunks": chunks, "runs": runs}, open(out, "w"), indent=1)
PY
echo "wrote $out" >&2
