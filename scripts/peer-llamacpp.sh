#!/usr/bin/env bash
# Builds the peer slimlm is measured against: llama.cpp as vendored in the pinned PyPI source
# package llama-cpp-python 0.3.36 (llama.cpp commit 0c1e570), CPU only, Release, shared libraries,
# plus the project's own oracle_dump (tools/oracle_dump) linked against it. Everything goes into
# the git-ignored folder .peer/ (PEER_DIR overrides):
#   .peer/src/llama.cpp/      the vendored llama.cpp source, extracted from the sdist
#   .peer/llama.cpp/bin/      llama-bench, llama-perplexity, llama-quantize, llama-imatrix,
#                             llama-server, llama-speculative, llama-tokenize and libllama.so,
#                             libggml*.so (-DGGML_NATIVE=ON); the tools find the libraries via RPATH
#   .peer/llama.cpp-avx2/bin/ libggml-cpu.so built for AVX2+FMA, the level the oracle files in
#                             tests/data/oracle were made at (only with PEER_AVX=1)
#   .peer/llama.cpp-avx/bin/  libggml-cpu.so built for AVX without AVX2/FMA (only with PEER_AVX=1)
# (a variant is used by putting its folder first on LD_LIBRARY_PATH of a program of the main build)
#   .peer/oracle_dump/oracle_dump
# Idempotent: a second run that finds the build does nothing. The sdist is cached in .cache/peer/
# and checked against a recorded SHA-256. Progress goes to stderr.
#   scripts/peer-llamacpp.sh            PEER_AVX=1 scripts/peer-llamacpp.sh     JOBS=4 NICE=0 ...
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.3.36
sha256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
peer=${PEER_DIR:-.peer}
jobs=${JOBS:-2}
nice=(nice -n "${NICE:-15}")
tools="llama-bench llama-perplexity llama-quantize llama-imatrix llama-server llama-speculative llama-tokenize"
say() { echo "peer-llamacpp: $*" >&2; }
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)

fetch_source() {  # .cache/peer/llama_cpp_python-VERSION.tar.gz -> $peer/src/llama.cpp
  [ -s "$peer/src/llama.cpp/CMakeLists.txt" ] && return
  local sdist=.cache/peer/llama_cpp_python-$version.tar.gz
  mkdir -p .cache/peer "$peer/src"
  if [ ! -s "$sdist" ]; then
    say "downloading llama-cpp-python==$version (source package) from PyPI"
    python3 -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$version" -d .cache/peer >&2
  fi
  echo "$sha256  $sdist" | sha256sum -c --quiet - || { say "$sdist: SHA-256 mismatch (expected $sha256)"; exit 1; }
  say "extracting vendor/llama.cpp"
  rm -rf "$peer/src/tmp" && mkdir -p "$peer/src/tmp"
  tar xzf "$sdist" -C "$peer/src/tmp" "llama_cpp_python-$version/vendor/llama.cpp"
  mv "$peer/src/tmp/llama_cpp_python-$version/vendor/llama.cpp" "$peer/src/llama.cpp"
  rm -rf "$peer/src/tmp"
}

configure() {  # build dir, extra cmake flags...
  local dir=$1; shift
  [ -f "$dir/CMakeCache.txt" ] && return
  cmake -S "$peer/src/llama.cpp" -B "$dir" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
    -DGGML_CUDA=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON \
    -DLLAMA_BUILD_SERVER=ON "$@" >&2
}

build_main() {
  local dir=$peer/llama.cpp stamp=$peer/llama.cpp/.built-$version
  [ -f "$stamp" ] && { say "llama.cpp already built in $dir/bin"; return; }
  fetch_source
  say "building llama.cpp ($tools) in $dir (-j$jobs; the first build takes a while)"
  configure "$dir" -DGGML_NATIVE=ON
  # shellcheck disable=SC2086
  "${nice[@]}" cmake --build "$dir" -j "$jobs" --target $tools >&2
  touch "$stamp"
}

build_cpu_variant() {  # name, cmake flags...: the CPU backend alone (libggml-cpu.so) for one x86 level
  local name=$1; shift
  local dir=$peer/llama.cpp-$name stamp=$peer/llama.cpp-$name/.built-$version
  [ -f "$stamp" ] && { say "$name libggml-cpu.so already built in $dir/bin"; return; }
  fetch_source
  say "building the $name libggml-cpu.so in $dir"
  configure "$dir" -DGGML_NATIVE=OFF "$@"
  "${nice[@]}" cmake --build "$dir" -j "$jobs" --target ggml-cpu >&2
  touch "$stamp"
}

build_oracle_dump() {
  local dir=$peer/oracle_dump
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    cmake -S tools/oracle_dump -B "$dir" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
      -DLLAMA_SRC="$(realpath "$peer/src/llama.cpp")" -DLLAMA_BIN="$(realpath "$peer/llama.cpp/bin")" >&2
  fi
  "${nice[@]}" cmake --build "$dir" -j "$jobs" >/dev/null
  say "oracle_dump: $dir/oracle_dump"
}

build_main
if [ "${PEER_AVX:-0}" = 1 ]; then
  # the oracle files' two CPU levels: AVX2+FMA (the level the committed files were made at; a
  # native build on an AVX-512 machine runs other kernels) and AVX without AVX2/FMA
  build_cpu_variant avx2 -DGGML_AVX=ON -DGGML_F16C=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_BMI2=ON
  build_cpu_variant avx -DGGML_AVX=ON -DGGML_F16C=ON -DGGML_AVX2=OFF -DGGML_FMA=OFF
fi
build_oracle_dump
say "done: $peer/llama.cpp/bin"
