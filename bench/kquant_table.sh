#!/usr/bin/env bash
# llama.cpp's own quantizer vs slimlm's RTN / GPTQ / AWQ+GPTQ rounding onto the same llama.cpp
# file types (per-tensor mixtures such as Q4_K_M), on SmolLM2-135M-Instruct from a common f32
# GGUF. Each output is evaluated by `slimlm eval` (wikitext-2 test, ctx 512, first CHUNKS
# windows; KL divergence and top-1 agreement against the f32 model) and by stock llama.cpp's
# llama-perplexity on the same file (it must load slimlm's output; its ppl should agree with
# slimlm's). Outputs are cached under .cache/kquant/ (FORCE=1 redoes them);
# raw JSON: bench/results/kquant-smollm2.json.
# llama.cpp is the peer build of scripts/peer-llamacpp.sh (.peer/llama.cpp/bin; ORACLE=folder overrides).
#   bench/kquant_table.sh        TYPES="q4_K_M" METHODS="llama gptq" THREADS=1 bench/kquant_table.sh
# (runs of different TYPES may go in parallel: each run has its own scratch files; MERGE=1 keeps
# the other rows of an existing JSON)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${THREADS:-2}
chunks=${CHUNKS:-8}
calib="--calib-samples ${CALIB_SAMPLES:-32} --calib-len ${CALIB_LEN:-256}"
types=${TYPES:-"q4_0 q4_K_M q3_K_S q2_K"}
methods=${METHODS:-"llama rtn gptq awq+gptq"}
. bench/peer.sh
oracle=$peer_bin
need_peer "$oracle/llama-quantize" "$oracle/llama-perplexity"
wiki=../shared/data/wikitext-2-raw/wiki.test.raw
work=.cache/kquant
out=bench/results/kquant-smollm2.json
mkdir -p "$work" bench/results
[ -x build/slimlm ] || ./scripts/build.sh >/dev/null
f32=${F32:-models/smollm2-f32.gguf}
if [ ! -s "$f32" ]; then
  f32=$work/smollm2-f32.gguf
  [ -s "$f32" ] || ./build/slimlm convert "$(./scripts/fetch-models.sh smollm2)" -o "$f32" --type f32
fi
for t in $types; do
  for m in $methods; do
    f=$work/$m-$t.gguf r=$work/$m-$t.json x=$work/$m-$t  # x.*: this run's scratch files
    if [ -s "$r" ] && [ -z "${FORCE:-}" ]; then echo "== $m $t (cached)" >&2; continue; fi
    echo "== $m $t" >&2
    start=$(date +%s.%N)
    if [ "$m" = llama ]; then
      LD_LIBRARY_PATH=$oracle "$oracle/llama-quantize" "$f32" "$f" "${t^^}" "$threads" > "$x.qlog" 2>&1
      echo '{}' > "$x.q"
    else
      c=$calib; [ "$m" = rtn ] && c=""
      ./build/slimlm quantize "$f32" -o "$f" --method "$m" --type "$t" --format gguf $c -t "$threads" --json --no-progress > "$x.q"
    fi
    end=$(date +%s.%N)
    ./build/slimlm eval "$f" -f "$wiki" --ctx 512 --chunks "$chunks" --ref "$f32" -t "$threads" --json --no-progress > "$x.e"
    ./build/slimlm info "$f" --json > "$x.i"
    LD_LIBRARY_PATH=$oracle "$oracle/llama-perplexity" -m "$f" -f "$wiki" -c 512 --chunks "$chunks" -t "$threads" > "$x.plog" 2>&1 || true
    python3 - "$x" "$t" "$m" "$f" "$(python3 -c "print($end - $start)")" "$r" <<'PY'
import json, os, re, sys
x, t, m, f, secs, r = sys.argv[1:]
q = json.load(open(f"{x}.q")); e = json.load(open(f"{x}.e")); i = json.load(open(f"{x}.i"))
log = open(f"{x}.plog", errors="replace").read()
mm = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", log)
size = os.path.getsize(f)
run = {"type": t, "method": m, "file_bytes": size, "file_mib": size / 2**20, "bpw_file": 8 * size / i["n_params"],
       "bpw_weights": 8 * i["weight_bytes"] / i["n_params"], "tensor_types": i["block_weight_types"], "quantize_s": float(secs),
       "quantize": q, "eval": e, "llama_ppl": float(mm.group(1)) if mm else None,
       "llama_loads": bool(mm), "llama_error": None if mm else log.strip().splitlines()[-3:]}
if mm: run["ppl_rel_diff"] = e["ppl"] / run["llama_ppl"] - 1
json.dump(run, open(r, "w"), indent=1)
print(f"   ppl {e['ppl']:.3f} (llama.cpp {run['llama_ppl']}) kld {e['kld_mean']:.4f} top1 {e['top1_agree']:.4f} {run['bpw_file']:.3f} bpw", file=sys.stderr)
PY
  done
done
runs=()
for t in $types; do for m in $methods; do [ -s "$work/$m-$t.json" ] && runs+=("$work/$m-$t.json"); done; done
python3 - "$out" "$chunks" "$f32" "${runs[@]}" <<'PY'
import json, os, sys
out, chunks, f32 = sys.argv[1], int(sys.argv[2]), sys.argv[3]
runs = [json.load(open(r)) for r in sys.argv[4:]]
for r in runs: r.setdefault("chunks", chunks)
doc = {"model": "SmolLM2-135M-Instruct", "reference": f32, "chunks": chunks, "ctx": 512}
if os.environ.get("MERGE") and os.path.exists(out):  # keep the other (type, method) rows and the notes
    old = json.load(open(out))
    mine = {(r["type"], r["method"]) for r in runs}
    runs = [r for r in old["runs"] if (r["type"], r["method"]) not in mine] + runs
    doc = {k: v for k, v in old.items() if k != "runs"}
doc["runs"] = runs
json.dump(doc, open(out, "w"), indent=1)
print("| type | method | bpw (file) | MiB | ppl | llama.cpp ppl | Δ | KLD | top-1 |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for r in runs:
    e = r["eval"]; lp = r["llama_ppl"]
    d = f"{100 * r['ppl_rel_diff']:+.2f}%" if lp else "n/a"
    print(f"| {r['type']} | {r['method']} | {r['bpw_file']:.3f} | {r['file_mib']:.1f} | {e['ppl']:.3f} | {lp if lp else 'fails'} | {d} | {e['kld_mean']:.4f} | {100 * e['top1_agree']:.2f}% |")
PY
echo "wrote $out" >&2
