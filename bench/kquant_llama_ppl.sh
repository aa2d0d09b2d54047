#!/usr/bin/env bash
# Re-evaluates K-quant outputs already made by bench/kquant_table.sh (.cache/kquant/METHOD-TYPE.gguf)
# over more windows: slimlm eval (KLD / top-1 against the f32 model) and stock llama.cpp's
# llama-perplexity on the same file, to see whether the two runtimes' ppl gap shrinks with more
# text. Prints one line per file and writes bench/results/kquant-recheck-smollm2.json.
# llama.cpp is the peer build of scripts/peer-llamacpp.sh (.peer/llama.cpp/bin; ORACLE=folder overrides).
#   CHUNKS=8 TYPE=q2_K METHODS="llama gptq awq+gptq" bench/kquant_llama_ppl.sh
set -euo pipefail
cd "$(dirname "$0")/.."
chunks=${CHUNKS:-8}
type=${TYPE:-q2_K}
methods=${METHODS:-"llama gptq awq+gptq"}
. bench/peer.sh
oracle=$peer_bin
wiki=../shared/data/wikitext-2-raw/wiki.test.raw
f32=${F32:-models/smollm2-f32.gguf}
need_peer "$oracle/llama-perplexity"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for m in $methods; do
  f=.cache/kquant/$m-$type.gguf
  [ -s "$f" ] || { echo "missing $f (run bench/kquant_table.sh first)" >&2; exit 1; }
  ./build/slimlm eval "$f" -f "$wiki" --ctx 512 --chunks "$chunks" --ref "$f32" -t 2 --json --no-progress > "$tmp/$m.json"
  LD_LIBRARY_PATH=$oracle "$oracle/llama-perplexity" -m "$f" -f "$wiki" -c 512 --chunks "$chunks" -t 2 > "$tmp/$m.plog" 2>&1
done
python3 - "$tmp" "$type" "$chunks" $methods <<'PY'
import json, re, sys
tmp, typ, chunks, methods = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
runs = []
for m in methods:
    e = json.load(open(f"{tmp}/{m}.json"))
    lp = float(re.search(r"Final estimate: PPL = ([0-9.]+)", open(f"{tmp}/{m}.plog").read()).group(1))
    runs.append({"type": typ, "method": m, "chunks": chunks, "slimlm_ppl": e["ppl"], "llama_ppl": lp,
                 "ppl_rel_diff": e["ppl"] / lp - 1, "kld_mean": e["kld_mean"], "top1_agree": e["top1_agree"]})
    print(f"{typ} {m}: slimlm ppl {e['ppl']:.3f}, llama.cpp {lp:.3f} ({100 * (e['ppl'] / lp - 1):+.2f}%), KLD {e['kld_mean']:.4f}, top-1 {e['top1_agree']:.4f}")
json.dump({"model": "SmolLM2-135M-Instruct", "reference": "f32", "runs": runs}, open("bench/results/kquant-recheck-smollm2.json", "w"), indent=1)
PY
