#!/usr/bin/env bash
# The main job, end to end on a real model: install, fetch SmolLM2-135M-Instruct, build,
# compress it with the default recipe (recipes/smollm2-default.json), evaluate the result
# against the original on WikiText-2 (perplexity, KL divergence, top-1 agreement; llama.cpp's
# protocol), measure both (size, bits per weight, tokens/s, memory), print a before/after
# table, and let both answer the same chat message.
#   DEMO_CHUNKS=N    windows of 512 tokens evaluated (default 8; 0 = the whole file)
#   DEMO_RECIPE=F    another recipe file        DEMO_PROMPT="..."  another chat message
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
model=$(./scripts/fetch-models.sh smollm2)
./scripts/build.sh >/dev/null
recipe=${DEMO_RECIPE:-recipes/smollm2-default.json}
chunks=${DEMO_CHUNKS:-8}
wiki=../shared/data/wikitext-2-raw/wiki.test.raw
work=.cache/demo
mkdir -p "$work"
out=$work/$(basename "$model" .gguf).$(basename "$recipe" .json).gguf

echo "== model"
./build/slimlm info "$model"
echo "== compress: $recipe"
python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print(r.get("description", ""))' "$recipe"
./build/slimlm recipe "$recipe" "$model" -o "$out" --json > "$work/recipe.json"
echo "== evaluate (WikiText-2 test, ctx 512, first $chunks windows; DEMO_CHUNKS=0 for all)"
if [ -f "$wiki" ]; then
  ./build/slimlm eval "$model" -f "$wiki" --ctx 512 --chunks "$chunks" --json > "$work/eval-orig.json"
  ./build/slimlm eval "$out" -f "$wiki" --ctx 512 --chunks "$chunks" --ref "$model" --json > "$work/eval-new.json"
else
  echo "(skipping perplexity: $wiki not found)"; echo '{}' > "$work/eval-orig.json"; echo '{}' > "$work/eval-new.json"
fi
echo "== speed (prompt 128 tokens, generate 64)"
./build/slimlm bench "$model" -p 128 -n 64 -r 2 --json > "$work/bench-orig.json"
./build/slimlm bench "$out" -p 128 -n 64 -r 2 --json > "$work/bench-new.json"
./build/slimlm info "$model" --json > "$work/info-orig.json"
./build/slimlm info "$out" --json > "$work/info-new.json"
python3 - "$work" "$recipe" <<'PY'
import json, os, sys
w, recipe = sys.argv[1], sys.argv[2]
ld = lambda n: json.load(open(os.path.join(w, n)))
eo, en, bo, bn, io, inn = (ld(n) for n in ("eval-orig.json", "eval-new.json", "bench-orig.json", "bench-new.json", "info-orig.json", "info-new.json"))
def row(name, i, e, b, ref):
    bpw = i["bits_per_weight"]
    ppl = f"{e['ppl']:.3f}" if "ppl" in e else "-"
    kld = f"{e['kld_mean']:.4f}" if ref and "kld_mean" in e else ("0" if not ref else "-")
    top1 = f"{100 * e['top1_agree']:.2f}%" if ref and "top1_agree" in e else ("100%" if not ref else "-")
    return (f"| {name} | {i['weight_bytes'] / 2**20:.1f} | {bpw:.2f} | {ppl} | {kld} | {top1} | "
            f"{b['pp_tps']:.1f} | {b['tg_tps']:.1f} | {b['peak_rss_mb']:.0f} |")
print("| model | weights MiB | bits/weight | ppl | KLD vs original | top-1 agree | prompt t/s | generate t/s | peak RSS MiB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
print(row("original (" + os.path.basename(io["path"]) + ")", io, eo, bo, False))
print(row("compressed (" + os.path.basename(recipe) + ")", inn, en, bn, True))
PY
q="${DEMO_PROMPT:-Explain in two sentences why the sky is blue.}"
echo "== chat: $q"
echo "-- original:"
./build/slimlm generate "$model" --chat -p "$q" -n 100 --temp 0
echo "-- compressed:"
./build/slimlm generate "$out" --chat -p "$q" -n 100 --temp 0
