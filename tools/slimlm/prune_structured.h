// `slimlm prune-structured` (to become `slimlm prune --method heads|neurons|layers|flap|block-influence`):
// structured pruning that writes a physically smaller dense model with per-layer shapes.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

namespace slimlm::cli {

struct StructuredPruneOptions {
  std::string model, out, method = "flap", score = "activation", type = "f16", calib, calib_ids;
  double sparsity = 0.2;
  int64_t samples = 16, len = 256;
  uint64_t seed = 1;
  bool json = false, no_bias = false;
  int threads = 0;
};

// Runs the pruning and writes o.out; prints a summary (JSON with o.json). Returns 0; throws
// slimlm::Error on bad input.
int run_structured_prune(const StructuredPruneOptions& o);
// Registers the options of structured pruning on `sub` (shared with a future `prune` verb).
void add_structured_prune_options(CLI::App* sub, StructuredPruneOptions& o);
void add_prune_structured(CLI::App& app);

}  // namespace slimlm::cli
