#!/usr/bin/env bash
# Quantization-aware training against post-training quantization on one model, same calibration
# text (data/calibration.txt, CALIB_SAMPLES sequences of 256 tokens) for every row:
#   rtn      round to nearest                     awq      AWQ scales + clip search
#   qat      Block-AP (block-wise reconstruction of weights and step sizes, QAT_EPOCHS passes)
#   qat-e2e  Block-AP, then E2E_STEPS end-to-end steps on the step sizes (forward KL to the original)
# Each file is evaluated by `slimlm eval` against the original on WikiText-2 test (ctx 512, the
# first CHUNKS windows); files of llama.cpp types (q4_0 ... q8_0) are also scored by stock
# llama.cpp's llama-perplexity (the peer build, scripts/peer-llamacpp.sh) when it is built.
#   bench/qat.sh [smollm2|gemma3]     CONFIGS="rtn:u3g128 awq:u3g128 qat:u3g128 ..." CALIB_SAMPLES=64
#   QAT_EPOCHS=2 QAT_LR=5e-4 QAT_SCALE_LR=2e-3 E2E_STEPS=60 E2E_LR=2e-5 CHUNKS=4 THREADS=2
# Rows are cached in WORK (default .cache/qat-MODEL; FORCE=1 recomputes). Output:
# bench/results/qat-MODEL.json (raw) and the table between <!-- qat:MODEL --> markers of docs/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-smollm2}
configs=${CONFIGS:-"rtn:u3g128 awq:u3g128 qat:u3g128 qat-e2e:u3g128 rtn:u2g64 awq:u2g64 qat:u2g64 qat-e2e:u2g64 rtn:q4_0 qat:q4_0"}
samples=${CALIB_SAMPLES:-64}; chunks=${CHUNKS:-4}; threads=${THREADS:-2}
epochs=${QAT_EPOCHS:-2}; lr=${QAT_LR:-5e-4}; slr=${QAT_SCALE_LR:-2e-3}; e2e=${E2E_STEPS:-60}; e2e_lr=${E2E_LR:-2e-5}
src=$(./scripts/fetch-models.sh "$name")
[ -x build/slimlm ] || ./scripts/build.sh >/dev/null
wiki=../shared/data/wikitext-2-raw/wiki.test.raw
[ -f "$wiki" ] || { echo "qat.sh: $wiki is missing (WikiText-2 test, the evaluation text)" >&2; exit 1; }
peer_ppl=.peer/llama.cpp/bin/llama-perplexity
work=${WORK:-.cache/qat-$name}
mkdir -p "$work" bench/results
export OMP_WAIT_POLICY=passive
qat_flags="--qat-epochs $epochs --qat-lr $lr --qat-scale-lr $slr"
for c in $configs; do
  tag=${c%%:*}; type=${c#*:}
  case $tag in
    rtn|awq) flags="--method $tag" ;;
    qat) flags="--method qat $qat_flags" ;;
    qat-e2e) flags="--method qat $qat_flags --qat-e2e-steps $e2e --qat-e2e-lr $e2e_lr" ;;
    *) echo "qat.sh: unknown config $c" >&2; exit 1 ;;
  esac
  f=$work/$tag-$type.gguf; r=$work/$tag-$type.run.json
  if [ -s "$r" ] && [ -z "${FORCE:-}" ]; then echo "== $c (cached: $r)" >&2; continue; fi
  echo "== $c" >&2
  ./build/slimlm quantize "$src" -o "$f" $flags --type "$type" --calib-samples "$samples" --calib-len 256 \
    -t "$threads" --json > "$work/q.json"
  ./build/slimlm eval "$f" -f "$wiki" --ctx 512 --chunks "$chunks" --ref "$src" -t "$threads" --json --no-progress > "$work/e.json"
  llama=null
  if [[ $type == q[0-9]_[01] ]] && [ -x "$peer_ppl" ]; then
    "$peer_ppl" -m "$f" -f "$wiki" -c 512 --chunks "$chunks" -t "$threads" > "$work/llama.txt" 2>&1
    llama=$(grep -o 'Final estimate: PPL = [0-9.]*' "$work/llama.txt" | awk '{print $5}')
  fi
  python3 -c 'import json, sys; q, e = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
json.dump({"config": sys.argv[1], "quantize": q, "eval": e, "llama_ppl": json.loads(sys.argv[5]), "flags": sys.argv[6]}, open(sys.argv[4], "w"))' \
    "$c" "$work/q.json" "$work/e.json" "$r" "$llama" "$flags"
done
python3 - "$name" "$work" "$samples" "$chunks" "$configs" \
  "CONFIGS=\"$configs\" CALIB_SAMPLES=$samples QAT_EPOCHS=$epochs QAT_LR=$lr QAT_SCALE_LR=$slr E2E_STEPS=$e2e E2E_LR=$e2e_lr CHUNKS=$chunks bench/qat.sh $name" <<'PY'
import json, os, sys
sys.path.insert(0, "bench")
from results_block import write_block
name, work, samples, chunks, configs, rerun = sys.argv[1:7]
runs = [json.load(open(os.path.join(work, c.replace(":", "-", 1) + ".run.json"))) for c in configs.split()]
json.dump({"model": name, "calib_samples": int(samples), "chunks": int(chunks), "rerun": rerun, "runs": runs},
          open(f"bench/results/qat-{name}.json", "w"), indent=1)
label = {"rtn": "RTN", "awq": "AWQ", "qat": "QAT (Block-AP)", "qat-e2e": "QAT (Block-AP + E2E)"}
body = ("| method | type | bpw (linears) | ppl | KLD vs original | top-1 agree | llama.cpp ppl | time (s) |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|\n")
for r in runs:
    tag, typ = r["config"].split(":", 1)
    q, e = r["quantize"], r["eval"]
    lp = "-" if r["llama_ppl"] is None else f"{r['llama_ppl']:.3f}"
    body += (f"| {label[tag]} | {typ} | {q['bpw_linear']:.3f} | {e['ppl']:.3f} | {e['kld_mean']:.4f} | "
             f"{100 * e['top1_agree']:.2f}% | {lp} | {q['seconds']:.0f} |\n")
ref = runs[0]["eval"]
body += (f"\nOriginal model ppl {ref['ref_ppl']:.3f}. WikiText-2 test, ctx 512, first {chunks} windows "
         f"({ref['n_scored']} scored tokens); calibration: {samples} x 256 tokens of data/calibration.txt for every row. "
         f"Rerun: `{rerun}`.")
write_block("docs/results.md", f"qat:{name}", body)
print(body)
PY
