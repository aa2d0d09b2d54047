#!/usr/bin/env bash
# Pruning measurements for one model: each config runs `slimlm prune` (calibration: brown.txt,
# CALIB_SAMPLES x CALIB_LEN tokens) under /usr/bin/time, then `slimlm eval` on wikitext-2 test
# (ctx 512, the first CHUNKS windows) against the original model (perplexity, KL divergence,
# top-1 agreement) and `slimlm bench` on the stored file (decode tokens/s; file size). A config
# that fails becomes a row saying so. Raw JSON: bench/results/prune-<name>.json (one entry per
# config); the table between <!-- prune:<name> --> markers of docs/results.md comes from bench/render_prune.py.
# MERGE=1 keeps the other configs of an existing JSON (a few extra rows without rerunning the table).
#   bench/prune_table.sh smollm2      CONFIGS="wanda:0.5 sparsegpt:2:4 wanda-owl:0.7 wanda-dsnot:0.5" bench/prune_table.sh
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-smollm2}
chunks=${CHUNKS:-4}
threads=${THREADS:-2}
calib="--calib-samples ${CALIB_SAMPLES:-32} --calib-len ${CALIB_LEN:-256}"
configs=${CONFIGS:-"magnitude:0.5 wanda:0.5 sparsegpt:0.5 magnitude:2:4 wanda:2:4 sparsegpt:2:4 wanda:0.7 wanda-owl:0.7"}
src=$(./scripts/fetch-models.sh "$name")
wiki=../shared/data/wikitext-2-raw/wiki.test.raw
out=bench/results/prune-$name.json
work=${WORK:-.cache/prune-$name}
mkdir -p "$work" bench/results
runs=()
for c in $configs; do
  method=${c%%:*}; pat=${c#*:}; extra=""
  # method[-owl][-dsnot]: OWL layer-wise ratios, DSnoT mask refinement after pruning
  if [ "${method%-dsnot}" != "$method" ]; then method=${method%-dsnot}; extra="$extra --dsnot"; fi
  if [ "${method%-owl}" != "$method" ]; then method=${method%-owl}; extra="$extra --owl"; fi
  case $pat in *:*) extra="$extra --nm $pat" ;; *) extra="$extra --sparsity $pat" ;; esac
  tag=$(echo "$c" | tr ':' '_')
  f=$work/$tag.gguf r=$work/$tag.run.json
  runs+=("$r")
  if [ -s "$r" ] && [ -z "${FORCE:-}" ]; then echo "== $c (cached: $r)" >&2; continue; fi
  echo "== $c" >&2
  if ! /usr/bin/time -v -o "$work/time" ./build/slimlm prune "$src" -o "$f" --method "$method" $extra $calib -t "$threads" --json --no-progress > "$work/p.json" 2> "$work/p.err" ||
     ! ./build/slimlm eval "$f" -f "$wiki" --ref "$src" --ctx 512 --chunks "$chunks" -t "$threads" --json --no-progress > "$work/e.json" 2>> "$work/p.err" ||
     ! ./build/slimlm bench "$f" -p 32 -n 64 -r 1 -t "$threads" --json > "$work/b.json" 2>> "$work/p.err"; then
    msg=$(grep -v '^[[:space:]]*$' "$work/p.err" | tail -1)  # a config that fails is a row of the table, not the end of the run
    echo "   failed: $msg" >&2
    python3 -c 'import json, sys; json.dump({"config": sys.argv[1], "error": sys.argv[2]}, open(sys.argv[3], "w"))' "$c" "$msg" "$r"
    rm -f "$f"; continue
  fi
  stat -c %s "$f" > "$work/size"
  python3 - "$work/p.json" "$work/time" "$work/e.json" "$c" "$r" "$work/b.json" "$work/size" <<'PY'
import json, re, sys
p = json.load(open(sys.argv[1])); t = open(sys.argv[2]).read(); e = json.load(open(sys.argv[3]))
b = json.load(open(sys.argv[6])); size = int(open(sys.argv[7]).read())
wall = re.search(r"Elapsed \(wall clock\) time.*: (.*)", t).group(1).split(":")
wall_s = sum(float(x) * 60 ** i for i, x in enumerate(reversed(wall)))
rss_mb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024
p.pop("linears", None)
json.dump({"config": sys.argv[4], "prune": p, "wall_s": wall_s, "peak_rss_mb": rss_mb, "eval": e,
           "file_mib": size / 2**20, "tg_tps": b["tg_tps"], "bench": b}, open(sys.argv[5], "w"))
print(f"{sys.argv[4]:>14}: ppl {e['ppl']:.3f} (dense {e['ref_ppl']:.3f})  KLD {e['kld_mean']:.4f}  top-1 {e['top1_agree']:.4f}  "
      f"achieved {p['achieved_sparsity']:.4f}  {wall_s:.0f} s  {rss_mb:.0f} MiB", file=sys.stderr)
PY
  rm -f "$f"
done
rerun="CHUNKS=$chunks CALIB_SAMPLES=${CALIB_SAMPLES:-32} CALIB_LEN=${CALIB_LEN:-256} CONFIGS=\"$configs\" bench/prune_table.sh $name"
python3 - "$out" "$name" "$chunks" "$rerun" "${runs[@]}" <<'PY'
import json, os, sys
out, name, chunks, rerun = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
runs = [json.load(open(r)) for r in sys.argv[5:] if os.path.exists(r)]
sys.path.insert(0, "bench")
from merge_runs import merge
runs, rerun = merge(out, runs, rerun)
json.dump({"model": name, "chunks": chunks, "rerun": rerun, "runs": runs}, open(out, "w"), indent=1)
PY
python3 bench/render_prune.py "$out" docs/results.md
echo "wrote $out and the table in docs/results.md" >&2
