#!/usr/bin/env bash
# Reproduces the quantization table of docs/results.md for one model: each method/format is run by
# `slimlm quantize` (calibration: brown.txt, CALIB_SAMPLES x CALIB_LEN tokens), then evaluated
# by `slimlm eval` on wikitext-2 test (ctx 512, the first CHUNKS windows) against the original
# model (KL divergence, top-1 agreement). Raw JSON: bench/results/quant-<name>.json.
# MERGE=1 keeps the other configs of an existing JSON (a few extra rows without rerunning the table).
#   bench/quant_table.sh smollm2        CONFIGS="rtn:u4g128 gptq:u4g128" bench/quant_table.sh gemma3
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-smollm2}
chunks=${CHUNKS:-8}
threads=${THREADS:-2}
calib="--calib-samples ${CALIB_SAMPLES:-32} --calib-len ${CALIB_LEN:-256}"
configs=${CONFIGS:-"rtn:u4g128 gptq:u4g128 awq:u4g128 rtn:u3g128 gptq:u3g128 awq:u3g128 rtn:u2g64 gptq:u2g64 awq:u2g64 rtn:nf4g64 gptq:nf4g64 rtn:nf3g64 gptq:s4g128 gptq-act:u4g128 awq+gptq:u3g128 rtn:u4g64 gptq:u4g64 awq:u4g64 awq+gptq:u4g64 kmeans:lut4 kmeans:lut3 rtn-outl:u3g128 gptq-outl:u3g128 w8a8:w8a8 smoothquant:w8a8"}
src=$(./scripts/fetch-models.sh "$name")
./scripts/build.sh >/dev/null
wiki=../shared/data/wikitext-2-raw/wiki.test.raw
out=bench/results/quant-$name.json
work=${WORK:-.cache/quant-$name}
mkdir -p "$work" bench/results
# method[-act][-outl]:type — -act: GPTQ act-order; -outl: --outliers $OUTLIERS (percent, default 0.5);
# kmeans:lutB runs --method kmeans --bits B.
args_of() {  # config -> "method-tag|flags"
  local method=${1%%:*} type=${1#*:} extra="" tag
  case $method in *-outl) method=${method%-outl}; extra+=" --outliers ${OUTLIERS:-0.5}";; esac
  case $method in *-act) method=${method%-act}; extra+=" --act-order";; esac
  tag=${1%%:*}
  if [ "$method" = kmeans ]; then echo "$tag|--method kmeans --bits ${type#lut}$extra"; else echo "$tag|--method $method --type $type$extra"; fi
}
for c in $configs; do
  a=$(args_of "$c"); tag=${a%%|*}; flags=${a#*|}; type=${c#*:}
  f=$work/$tag-$type.gguf
  echo "== $c" >&2
  r=$work/$tag-$type.run.json
  if [ -s "$r" ] && [ -z "${FORCE:-}" ]; then echo "   (cached: $r)" >&2; continue; fi
  if ! /usr/bin/time -f '%e %M' -o "$work/time" ./build/slimlm quantize "$src" -o "$f" $flags $calib -t "$threads" --json --no-progress > "$work/q.json" 2> "$work/q.err" ||
     ! ./build/slimlm eval "$f" -f "$wiki" --ref "$src" --chunks "$chunks" -t "$threads" --json --no-progress > "$work/e.json" 2>> "$work/q.err"; then
    msg=$(grep -v '^[[:space:]]*$' "$work/q.err" | tail -1)  # a config that fails is a row of the table, not the end of the run
    echo "   failed: $msg" >&2
    python3 -c 'import json, sys; json.dump({"config": sys.argv[1], "error": sys.argv[2]}, open(sys.argv[3], "w"))' "$c" "$msg" "$r"
    rm -f "$f"; continue
  fi
  python3 -c '
import json, sys
q = json.load(open(sys.argv[1])); wall, rss = open(sys.argv[2]).read().split(); e = json.load(open(sys.argv[3]))
json.dump({"config": sys.argv[4], "quantize": q, "wall_s": float(wall), "peak_rss_mb": int(rss) / 1024, "eval": e}, open(sys.argv[5], "w"))
' "$work/q.json" "$work/time" "$work/e.json" "$c" "$r"
  rm -f "$f"
done
runs=()
for c in $configs; do
  a=$(args_of "$c"); tag=${a%%|*}; type=${c#*:}
  [ -s "$work/$tag-$type.run.json" ] && runs+=("$work/$tag-$type.run.json")
done
rerun="CHUNKS=$chunks CALIB_SAMPLES=${CALIB_SAMPLES:-32} CALIB_LEN=${CALIB_LEN:-256} CONFIGS=\"$configs\" bench/quant_table.sh $name"
python3 - "$out" "$name" "$chunks" "$rerun" "${runs[@]}" <<'PY'
import json, os, sys
out, name, chunks, rerun = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
runs = [json.load(open(r)) for r in sys.argv[5:]]
sys.path.insert(0, "bench")
from merge_runs import merge
runs, rerun = merge(out, runs, rerun)
json.dump({"model": name, "chunks": chunks, "rerun": rerun, "runs": runs}, open(out, "w"), indent=1)
PY
python3 bench/render_quant.py "$out" docs/results.md
echo "wrote $out and the table in docs/results.md" >&2
