#!/usr/bin/env bash
# Stock llama.cpp on the GGUF files slimlm's quantizer exports (issue 3: "its perplexity on them is
# within 0.5% of slimlm's own runtime's, top-1 agreement"), with llama.cpp's agreement with itself as
# the yardstick: each file runs through llama.cpp twice, its CPU backend built for AVX2 and for AVX
# without AVX2/FMA (same source and settings, other summation orders), and through slimlm, on the
# first CHUNKS windows of 512 tokens of WikiText-2. The comparison is the oracle test
# (Oracle.ExportedFileAgainstLlamaCpp), so the numbers and bars are the ones CI checks on the
# released files. Outside CI; needs the peer build with its CPU variants
# (PEER_AVX=1 scripts/peer-llamacpp.sh), found in .peer/ (PEER_DIR) unless overridden:
#   ORACLE_DUMP  the oracle_dump program (tools/oracle_dump)     default .peer/oracle_dump/oracle_dump
#   ORACLE       folder of the build's shared libraries           default .peer/llama.cpp/bin
#   ORACLE_AVX2  folder holding the AVX2 build's libggml-cpu.so   default .peer/llama.cpp-avx2/bin
#   ORACLE_AVX   folder holding the AVX build's libggml-cpu.so    default .peer/llama.cpp-avx/bin
#   FILES        GGUF files   default: llama-quantize's and slimlm's Q2_K mixes, slimlm's GPTQ Q4_0 (.cache/kquant)
# Writes bench/results/oracle-exported-smollm2.json and prints one line per file.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/peer.sh
dump=${ORACLE_DUMP:-$peer_dir/oracle_dump/oracle_dump}
lib=$peer_bin
avx2=${ORACLE_AVX2:-$peer_dir/llama.cpp-avx2/bin}
avx=${ORACLE_AVX:-$peer_dir/llama.cpp-avx/bin}
chunks=${CHUNKS:-8}
files=${FILES:-".cache/kquant/llama-q2_K.gguf .cache/kquant/gptq-q2_K.gguf .cache/kquant/awq+gptq-q2_K.gguf .cache/kquant/gptq-q4_0.gguf"}
wiki=$(realpath ../shared/data/wikitext-2-raw/wiki.test.raw)
need_peer "$dump" "$lib/libllama.so" "$avx2/libggml-cpu.so" "$avx/libggml-cpu.so"
./scripts/build.sh >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in $files; do
  [ -s "$f" ] || { echo "missing $f (bench/kquant_table.sh and slimlm quantize make them)" >&2; exit 1; }
  n=$(basename "$f" .gguf)
  echo "== $n" >&2
  LD_LIBRARY_PATH=$avx2:$lib "$dump" logits "$tmp/$n.bin" "$chunks" -m "$f" -f "$wiki" -c 512 -b 512 -t 2 > "$tmp/$n.log" 2>&1
  LD_LIBRARY_PATH=$avx:$lib "$dump" logits "$tmp/$n.avx.bin" "$chunks" -m "$f" -f "$wiki" -c 512 -b 512 -t 2 \
    > "$tmp/$n.avx.log" 2>&1
  rc=0
  ORACLE_MODEL=$(realpath "$f") ORACLE_BIN=$tmp/$n.bin ORACLE_PEER=$tmp/$n.avx.bin \
    ./build/slimlm_tests --gtest_filter=Oracle.ExportedFileAgainstLlamaCpp > "$tmp/$n.test" 2>&1 || rc=$?
  echo "$rc" > "$tmp/$n.rc"
done
python3 - "$tmp" "$chunks" $files <<'PY'
import json, os, re, sys
tmp, chunks, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
runs = []
for f in files:
    n = os.path.basename(f)[:-5]
    t = open(f"{tmp}/{n}.test").read()
    m = re.search(r"ppl ([0-9.]+) vs llama.cpp ([0-9.]+) \(([-+0-9.]+)%\), top-1 agreement ([0-9.]+)%", t)
    s = re.search(r"AVX build vs AVX2 build .*: top-1 agreement ([0-9.]+)%", t)
    avx_ppl = float(re.search(r"ppl=([0-9.]+)", open(f"{tmp}/{n}.avx.log").read()).group(1))
    if not m or not s:
        sys.exit(f"{n}: the oracle test printed no result:\n{t[-2000:]}")
    r = {"file": n, "chunks": chunks, "slimlm_ppl": float(m.group(1)), "llama_ppl": float(m.group(2)),
         "ppl_rel_diff_pct": float(m.group(3)), "top1_agree_slimlm_vs_llama": float(m.group(4)) / 100,
         "llama_avx_ppl": avx_ppl, "top1_agree_llama_avx_vs_avx2": float(s.group(1)) / 100,
         "test_passed": open(f"{tmp}/{n}.rc").read().strip() == "0"}
    runs.append(r)
    print(f"{n}: slimlm ppl {r['slimlm_ppl']:.4f}, llama.cpp {r['llama_ppl']:.4f} ({r['ppl_rel_diff_pct']:+.3f}%), "
          f"top-1 agreement {100 * r['top1_agree_slimlm_vs_llama']:.2f}%; llama.cpp AVX vs AVX2: ppl "
          f"{100 * (avx_ppl / r['llama_ppl'] - 1):+.3f}%, agreement {100 * r['top1_agree_llama_avx_vs_avx2']:.2f}%; "
          f"oracle test {'passed' if r['test_passed'] else 'FAILED'}")
json.dump({"model": "SmolLM2-135M-Instruct", "text": "wiki.test.raw, ctx 512", "runs": runs},
          open("bench/results/oracle-exported-smollm2.json", "w"), indent=1)
PY
