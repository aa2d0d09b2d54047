#!/usr/bin/env bash
# Wall time and peak RSS of the long compression jobs on SmolLM2-135M-Instruct, with the CLI's
# default calibration (64 x 256 tokens of brown.txt) and all cores: GPTQ 4-bit (groups of 128)
# and SparseGPT 50%. The issues' bars: each under 3 minutes on 2 cores, GPTQ under 4 GiB.
# Run it on a quiet machine. Raw JSON: bench/results/timing-smollm2.json.
#   bench/timing.sh            JOBS="gptq-w4g128" bench/timing.sh
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(./scripts/fetch-models.sh smollm2)
./scripts/build.sh >/dev/null
jobs=${JOBS:-"gptq-w4g128 sparsegpt-50"}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=bench/results/timing-smollm2.json
runs=()
for j in $jobs; do
  case $j in
    gptq-w4g128) cmd=(quantize "$src" -o "$work/out.gguf" --method gptq --bits 4 --group 128 --json --no-progress);;
    sparsegpt-50) cmd=(prune "$src" -o "$work/out.gguf" --method sparsegpt --sparsity 0.5 --json --no-progress);;
    *) echo "unknown job $j" >&2; exit 2;;
  esac
  echo "== $j: slimlm ${cmd[*]}" >&2
  /usr/bin/time -f '%e %M' -o "$work/time" ./build/slimlm "${cmd[@]}" > "$work/j.json"
  python3 - "$j" "$work/time" "$work/j.json" "$work/$j.run" "$(nproc --all)" <<'PY'
import json, sys
job, t, j, out, cores = sys.argv[1:]
wall, rss = open(t).read().split()
summary = json.load(open(j))
summary.pop("linears", None); summary.pop("layers", None)
json.dump({"job": job, "wall_s": float(wall), "peak_rss_mb": int(rss) / 1024, "cores": int(cores), "summary": summary}, open(out, "w"))
print(f"   {job}: {float(wall):.1f} s, peak RSS {int(rss) / 1024:.0f} MiB", file=sys.stderr)
PY
  runs+=("$work/$j.run")
  rm -f "$work/out.gguf"
done
python3 - "$out" "${runs[@]}" <<'PY'
import json, sys
json.dump({"model": "SmolLM2-135M-Instruct.Q4_1", "runs": [json.load(open(r)) for r in sys.argv[2:]]}, open(sys.argv[1], "w"), indent=1)
PY
echo "wrote $out" >&2
