#!/usr/bin/env bash
# The main job, end to end on a real model: install, fetch SmolLM2-135M-Instruct, build,
# evaluate it on WikiText-2 (perplexity, llama.cpp protocol), and answer a chat message.
# DEMO_CHUNKS=N evaluates the first N windows of 512 tokens (default 16; 0 = the whole file).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
model=$(./scripts/fetch-models.sh smollm2)
./scripts/build.sh >/dev/null
wiki=../shared/data/wikitext-2-raw/wiki.test.raw
echo "== model"
./build/slimlm info "$model"
if [ -f "$wiki" ]; then
  echo "== WikiText-2 test perplexity (ctx 512, first ${DEMO_CHUNKS:-16} windows; DEMO_CHUNKS=0 for all)"
  ./build/slimlm eval "$model" -f "$wiki" --ctx 512 --chunks "${DEMO_CHUNKS:-16}"
else
  echo "(skipping perplexity: $wiki not found)"
fi
echo "== chat"
q="${DEMO_PROMPT:-Explain in two sentences why the sky is blue.}"
echo "user: $q"
echo -n "assistant: "
./build/slimlm generate "$model" --chat -p "$q" -n 120 --temp 0
