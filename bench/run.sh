#!/usr/bin/env bash
# Reproduces the speed table of docs/results.md: pp512 / tg128 tokens/s and peak RSS for SmolLM2-135M
# stored as f32, f16, q8_0, q4_0 (converted by slimlm from the Q4_1 file, so the weights hold
# Q4_1-precision values) and the original q4_1, and Gemma 3 270M as released, with 2 threads, and
# llama.cpp's llama-bench on the same files in the same run, side by side: the peer build that
# scripts/peer-llamacpp.sh makes (LLAMA_BENCH=path overrides it, LLAMA_BENCH= runs slimlm alone).
# Output: bench/results/smollm2-cpu.json (raw) and the table in docs/results.md (via render.py).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/peer.sh
LLAMA_BENCH=${LLAMA_BENCH-$peer_bin/llama-bench}
if [ -n "$LLAMA_BENCH" ] && [ ! -x "$LLAMA_BENCH" ]; then
  echo "no llama-bench at $LLAMA_BENCH (slimlm alone): $peer_hint" >&2
  LLAMA_BENCH=
fi
threads=${THREADS:-2}
reps=${REPS:-3}
src=$(./scripts/fetch-models.sh smollm2)
./scripts/build.sh >/dev/null
out=bench/results/smollm2-cpu.json
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo '{"host": "'"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"'", "threads": '"$threads"', "runs": [' > "$tmp/out.json"
first=1
# the last row: Gemma 3 270M as released (Q4_K_M: q4_K/q6_K/q5_0 tensors, a 262k-token vocabulary)
for type in f32 f16 q8_0 q4_0 q4_1 "gemma3 q4_K_M"; do
  f=models/smollm2-$type.gguf
  if [ "$type" = q4_1 ]; then f=$src
  elif [ "$type" = "gemma3 q4_K_M" ]; then f=$(./scripts/fetch-models.sh gemma3)
  elif [ ! -s "$f" ]; then ./build/slimlm convert "$src" -o "$f" --type "$type"; fi
  echo "bench $type ..." >&2
  s=$(./build/slimlm bench "$f" -p 512 -n 128 -r "$reps" -t "$threads" --json)
  l=null
  if [ -n "${LLAMA_BENCH:-}" ]; then
    l=$(LD_LIBRARY_PATH=$(dirname "$LLAMA_BENCH") "$LLAMA_BENCH" -m "$f" -p 512 -n 128 -t "$threads" -r "$reps" -o json 2>/dev/null || echo null)
  fi
  [ $first = 1 ] || echo , >> "$tmp/out.json"; first=0
  echo '{"type": "'"$type"'", "slimlm": '"$s"', "llama_cpp": '"$l"'}' >> "$tmp/out.json"
done
echo ']}' >> "$tmp/out.json"
python3 -m json.tool "$tmp/out.json" > "$out"
python3 bench/render.py "$out" docs/results.md
echo "wrote $out and the table in docs/results.md" >&2
