#!/usr/bin/env bash
# The main job, end to end on a real model: install, fetch SmolLM2-135M-Instruct (Q4_1 GGUF as
# released), build, make a full-precision copy (f16, converted from the release, so it holds the
# release's values), compress that copy with the default recipe (recipes/smollm2-default.json),
# evaluate the release and the compressed file against the f16 copy on WikiText-2 (perplexity,
# KL divergence, top-1 agreement; llama.cpp's protocol), measure all three (size, bits per weight,
# tokens/s, memory), print one table, and let them answer the same chat message.
#   DEMO_CHUNKS=N    windows of 512 tokens evaluated (default 8; 0 = the whole file)
#   DEMO_RECIPE=F    another recipe file        DEMO_PROMPT="..."  another chat message
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
release=$(./scripts/fetch-models.sh smollm2)
./scripts/build.sh >/dev/null
recipe=${DEMO_RECIPE:-recipes/smollm2-default.json}
chunks=${DEMO_CHUNKS:-8}
wiki=../shared/data/wikitext-2-raw/wiki.test.raw
work=.cache/demo
mkdir -p "$work"
name=$(basename "$release" .gguf)            # SmolLM2-135M-Instruct.Q4_1
f16=$work/${name%.*}.f16.gguf
out=$work/${name%.*}.f16.$(basename "$recipe" .json).gguf
models=(f16 release out)
declare -A path=([f16]=$f16 [release]=$release [out]=$out)
declare -A label=([f16]="f16 copy" [release]="release (Q4_1)" [out]="compressed f16 copy")

echo "== model"
./build/slimlm info "$release"
echo "== f16 copy of the release: $f16"
./build/slimlm convert "$release" -o "$f16" --type f16
echo "== compress the f16 copy: $recipe"
python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print(r.get("description", ""))' "$recipe"
./build/slimlm recipe "$recipe" "$f16" -o "$out" --json > "$work/recipe.json"
echo "== evaluate (WikiText-2 test, ctx 512, first $chunks windows; DEMO_CHUNKS=0 for all)"
for m in "${models[@]}"; do
  if [ ! -f "$wiki" ]; then echo '{}' > "$work/eval-$m.json"; continue; fi
  ref=(); [ "$m" != f16 ] && ref=(--ref "$f16")
  ./build/slimlm eval "${path[$m]}" -f "$wiki" --ctx 512 --chunks "$chunks" "${ref[@]}" --json > "$work/eval-$m.json"
done
[ -f "$wiki" ] || echo "(skipped perplexity: $wiki not found)"
echo "== speed (prompt 128 tokens, generate 64)"
for m in "${models[@]}"; do
  ./build/slimlm bench "${path[$m]}" -p 128 -n 64 -r 2 --json > "$work/bench-$m.json"
  ./build/slimlm info "${path[$m]}" --json > "$work/info-$m.json"
done
python3 - "$work" "$recipe" <<'PY'
import json, os, sys
w, recipe = sys.argv[1], sys.argv[2]
ld = lambda kind, m: json.load(open(os.path.join(w, f"{kind}-{m}.json")))
names = {"f16": "f16 copy (converted from the Q4_1 release)",
         "release": "release (Q4_1, as published)",
         "out": f"compressed f16 copy ({os.path.basename(recipe)})"}
print("| model | weights MiB | bits/weight | ppl | KLD vs f16 copy | top-1 agree | prompt t/s | generate t/s | peak RSS MiB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for m, name in names.items():
    i, e, b = ld("info", m), ld("eval", m), ld("bench", m)
    ppl = f"{e['ppl']:.3f}" if "ppl" in e else "-"
    kld = "0" if m == "f16" else (f"{e['kld_mean']:.4f}" if "kld_mean" in e else "-")
    top1 = "100%" if m == "f16" else (f"{100 * e['top1_agree']:.2f}%" if "top1_agree" in e else "-")
    print(f"| {name} | {i['weight_bytes'] / 2**20:.1f} | {i['bits_per_weight']:.2f} | {ppl} | {kld} | {top1} | "
          f"{b['pp_tps']:.1f} | {b['tg_tps']:.1f} | {b['peak_rss_mb']:.0f} |")
ratio = ld("info", "out")["weight_bytes"] / ld("info", "f16")["weight_bytes"]
print(f"\nweights: compressed = {ratio:.3f}x the f16 copy ({1 / ratio:.2f}x smaller; the goal is <= 0.45x)")
PY
q="${DEMO_PROMPT:-Explain in two sentences why the sky is blue.}"
echo "== chat: $q"
for m in "${models[@]}"; do
  echo "-- ${label[$m]}: ${path[$m]}"
  ./build/slimlm generate "${path[$m]}" --chat -p "$q" -n 100 --temp 0
done
