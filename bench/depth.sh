#!/usr/bin/env bash
# Speed with a filled KV cache: pp512 and tg128 after DEPTH positions (default 1024) for SmolLM2
# q4_0 / f16 and Gemma 3 Q4_K_M, slimlm (`bench -d`) and llama.cpp's llama-bench (`-d`, its
# defaults: f16 K/V, flash attention) on the same files in the same run; llama-bench is the peer
# build of scripts/peer-llamacpp.sh (LLAMA_BENCH=path overrides it, LLAMA_BENCH= runs slimlm alone).
# slimlm's cache is f32 (its default); the files come from bench/run.sh / scripts/fetch-models.sh.
#   bench/depth.sh      DEPTH=2048 REPS=1 bench/depth.sh
# Writes bench/results/depth-smollm2.json and prints a markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/peer.sh
LLAMA_BENCH=${LLAMA_BENCH-$peer_bin/llama-bench}
if [ -n "$LLAMA_BENCH" ] && [ ! -x "$LLAMA_BENCH" ]; then
  echo "no llama-bench at $LLAMA_BENCH (slimlm alone): $peer_hint" >&2
  LLAMA_BENCH=
fi
depth=${DEPTH:-1024}
threads=${THREADS:-2}
reps=${REPS:-3}
src=$(./scripts/fetch-models.sh smollm2)
gemma=$(./scripts/fetch-models.sh gemma3)
./scripts/build.sh >/dev/null
for t in q4_0 f16; do
  [ -s models/smollm2-$t.gguf ] || ./build/slimlm convert "$src" -o models/smollm2-$t.gguf --type $t
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
runs=()
for f in models/smollm2-q4_0.gguf models/smollm2-f16.gguf "$gemma"; do
  n=$(basename "$f" .gguf)
  echo "bench $n @ d$depth ..." >&2
  ./build/slimlm bench "$f" -p 512 -n 128 -d "$depth" -r "$reps" -t "$threads" --json > "$tmp/$n.s"
  echo null > "$tmp/$n.l"
  if [ -n "${LLAMA_BENCH:-}" ]; then
    LD_LIBRARY_PATH=$(dirname "$LLAMA_BENCH") "$LLAMA_BENCH" -m "$f" -p 512 -n 128 -d "$depth" -t "$threads" -r "$reps" -o json > "$tmp/$n.l" 2>/dev/null || echo null > "$tmp/$n.l"
  fi
  runs+=("$n")
done
python3 - "$tmp" "$depth" "${runs[@]}" <<'PY'
import json, sys
tmp, depth, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
out = {"depth": depth, "runs": []}
print(f"| weights | slimlm pp512 @ d{depth} | llama.cpp | ratio | slimlm tg128 @ d{depth} | llama.cpp | ratio |")
print("|---|---:|---:|---:|---:|---:|---:|")
for n in names:
    s = json.load(open(f"{tmp}/{n}.s")); l = json.load(open(f"{tmp}/{n}.l"))
    lpp = ltg = None
    for e in l or []:
        if e.get("n_prompt", 0) > 0 and e.get("n_gen", 0) == 0: lpp = e["avg_ts"]
        if e.get("n_gen", 0) > 0 and e.get("n_prompt", 0) == 0: ltg = e["avg_ts"]
    out["runs"].append({"file": n, "slimlm": s, "llama_cpp": l})
    f = lambda v: f"{v:.1f}" if v else "–"
    r = lambda a, b: f"{a / b:.2f}" if a and b else "–"
    print(f"| {n} | {s['pp_tps']:.1f} | {f(lpp)} | {r(s['pp_tps'], lpp)} | {s['tg_tps']:.1f} | {f(ltg)} | {r(s['tg_tps'], ltg)} |")
json.dump(out, open("bench/results/depth-smollm2.json", "w"), indent=1)
PY
