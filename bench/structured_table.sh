#!/usr/bin/env bash
# Structured pruning table for one model: each method x sparsity prunes the original (stored as
# f16: a physically smaller dense model), is evaluated against the original on wikitext-2 test
# (ctx 512, the first CHUNKS windows: ppl, KL divergence, top-1) and benchmarked for decode
# (`slimlm bench -p 32 -n GEN`, REPS repetitions). Decode speed on a shared 2-core machine drifts
# by 10-20% over minutes, so each pruned model is timed between two runs of the dense f16 model
# (A-B-A) and its speedup is against the mean of those two. A method that refuses a sparsity (e.g. heads beyond what the KV groups allow) is a
# row saying so. Raw JSON: bench/results/structured-<name>.json; table between
# <!-- structured:<name> --> markers of docs/results.md (bench/render_structured.py).
# MERGE=1 keeps the other configs of an existing JSON (e.g. one extra row).
#   bench/structured_table.sh smollm2      METHODS="flap neurons" SPARSITIES="0.4" bench/structured_table.sh gemma3
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-smollm2}
chunks=${CHUNKS:-4}
threads=${THREADS:-2}
reps=${REPS:-3}
gen=${GEN:-128}
calib="--calib-samples ${CALIB_SAMPLES:-16} --calib-len ${CALIB_LEN:-256}"
methods=${METHODS:-"heads neurons flap block-influence layers"}
sparsities=${SPARSITIES:-"0.2 0.4"}
src=$(./scripts/fetch-models.sh "$name")
[ -x build/slimlm ] || ./scripts/build.sh >/dev/null
wiki=../shared/data/wikitext-2-raw/wiki.test.raw
work=${WORK:-.cache/structured-$name}
out=bench/results/structured-$name.json
mkdir -p "$work" bench/results
bench() {  # file out.json
  ./build/slimlm bench "$1" -t "$threads" -r "$reps" -p 32 -n "$gen" --json > "$2"
}
measure() {  # tag file -> $work/tag.{eval,bench,dense-a.bench,dense-b.bench}.json, tag.size
  ./build/slimlm eval "$2" -f "$wiki" --ctx 512 --chunks "$chunks" --ref "$src" -t "$threads" --json --no-progress > "$work/$1.eval.json" &&
  bench "$work/dense-f16.gguf" "$work/$1.dense-a.bench.json" && bench "$2" "$work/$1.bench.json" &&
  bench "$work/dense-f16.gguf" "$work/$1.dense-b.bench.json" &&
  stat -c %s "$2" > "$work/$1.size"
}
[ -s "$work/dense-f16.gguf" ] || ./build/slimlm convert "$src" -o "$work/dense-f16.gguf" --type f16 >&2
echo "== dense f16" >&2
./build/slimlm eval "$work/dense-f16.gguf" -f "$wiki" --ctx 512 --chunks "$chunks" --ref "$src" -t "$threads" --json --no-progress > "$work/dense.eval.json"
bench "$work/dense-f16.gguf" "$work/dense.bench.json"
stat -c %s "$work/dense-f16.gguf" > "$work/dense.size"
tags=()
for s in $sparsities; do
  for m in $methods; do
    tag=$m-$s; tags+=("$tag"); f=$work/$tag.gguf
    echo "== $m $s" >&2
    rm -f "$work/$tag".{err,size,prune.json,eval.json,bench.json,dense-a.bench.json,dense-b.bench.json}
    if ! ./build/slimlm prune "$src" -o "$f" --method "$m" --sparsity "$s" --type f16 $calib -t "$threads" --json --no-progress \
         > "$work/$tag.prune.json" 2> "$work/$tag.err" || ! measure "$tag" "$f" 2>> "$work/$tag.err"; then
      echo "   failed: $(grep -v '^[[:space:]]*$' "$work/$tag.err" | tail -1)" >&2
    fi
    rm -f "$f"
  done
done
rerun="CHUNKS=$chunks REPS=$reps GEN=$gen CALIB_SAMPLES=${CALIB_SAMPLES:-16} METHODS=\"$methods\" SPARSITIES=\"$sparsities\" bench/structured_table.sh $name"
python3 - "$out" "$name" "$chunks" "$work" "$rerun" "${tags[@]}" <<'PY'
import json, os, sys
out, name, chunks, work, rerun, tags = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6:]
def load(tag):
    r = {"config": tag}
    err = os.path.join(work, tag + ".err")
    if os.path.exists(err) and os.path.getsize(err) and not os.path.exists(os.path.join(work, tag + ".size")):
        lines = [l for l in open(err, errors="replace").read().splitlines() if l.strip()]
        r["error"] = lines[-1] if lines else "failed"
        return r
    for part in ("prune", "eval", "bench", "dense-a.bench", "dense-b.bench"):
        p = os.path.join(work, f"{tag}.{part}.json")
        if os.path.exists(p): r[part.replace(".bench", "_bench").replace("-", "_")] = json.load(open(p))
    if "dense_a_bench" in r and "dense_b_bench" in r:
        d = (r["dense_a_bench"]["tg_tps"] + r["dense_b_bench"]["tg_tps"]) / 2
        r["dense_tg_tps_paired"] = d
        r["decode_speedup"] = r["bench"]["tg_tps"] / d
    r["file_mib"] = int(open(os.path.join(work, tag + ".size")).read()) / 2**20
    return r
runs = [load(t) for t in tags]
sys.path.insert(0, "bench")
from merge_runs import merge
runs, rerun = merge(out, runs, rerun)
json.dump({"model": name, "chunks": chunks, "rerun": rerun, "gen": int(os.environ.get("GEN", "128")), "reps": int(os.environ.get("REPS", "3")), "dense": load("dense"), "runs": runs}, open(out, "w"), indent=1)
PY
python3 bench/render_structured.py "$out" docs/results.md
echo "wrote $out and the table in docs/results.md" >&2
