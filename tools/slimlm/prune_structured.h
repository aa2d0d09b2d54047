// `slimlm prune --method heads|neurons|layers|flap|block-influence` (called by prune.cpp):
// structured pruning that writes a physically smaller dense model with per-layer shapes.
#pragma once
#include "common.h"
#include <cstdint>
#include <string>

namespace slimlm::cli {

struct StructuredPruneOptions {
  std::string model, out, method = "flap", score = "activation", type = "f16";
  CalibFlags calib;
  double sparsity = 0.2;
  bool json = false, no_bias = false;
  int threads = 0;
};

// Runs the pruning and writes o.out; prints a summary (JSON with o.json). Returns 0; throws
// slimlm::Error on bad input.
int run_structured_prune(const StructuredPruneOptions& o);
}  // namespace slimlm::cli
