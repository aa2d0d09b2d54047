#!/usr/bin/env bash
# Configures and builds slimlm into build/ (Release). Extra args go to cmake, e.g.
#   scripts/build.sh -DSLIMLM_NATIVE=ON      BUILD_DIR=build-asan scripts/build.sh -DSLIMLM_SANITIZE=ON
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BUILD_DIR:-build}
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
# The machine's cores (nproc alone honours OMP_NUM_THREADS, which test.sh sets to 1).
ninja -C "$dir" -j "$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)"
