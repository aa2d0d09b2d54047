#!/usr/bin/env bash
# Configures and builds slimlm into build/ (Release). Extra args go to cmake, e.g.
#   scripts/build.sh -DSLIMLM_NATIVE=ON      BUILD_DIR=build-asan scripts/build.sh -DSLIMLM_SANITIZE=ON
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BUILD_DIR:-build}
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
ninja -C "$dir" -j "$(nproc)"
