// Pruning of a whole model (the `slimlm prune` verb, recipe steps, the library's prune):
// unstructured / N:M methods over the layer-wise pipeline (magnitude, Wanda, RIA, SparseGPT,
// with OWL and DSnoT), or structured methods that write a physically smaller dense model
// (heads, neurons, layers, FLAP, block influence).
#pragma once
#include "model/model.h"
#include "pipeline/job.h"
#include "pipeline/registry.h"
#include "prune/prune.h"
#include <memory>
#include <string>

namespace slimlm::pipeline {

struct PruneJobOptions {
  const MethodInfo* method = nullptr;
  prune::PruneOptions unstructured;        // unstructured methods (validated)
  std::shared_ptr<quant::Codec> codec;     // --quant: SparseGPT's joint quantization (unstructured.sparsegpt.codec)
  std::string type = "f16", nm, score = "activation";
  double sparsity = 0.5;
  bool owl = false, dsnot = false, no_bias = false;
  CalibOptions calib;
  int64_t threads = 0;
};
// The options of `slimlm prune` flags / a recipe step; throws Error on bad values and on flags
// that do not apply to the method.
PruneJobOptions prune_options(const Args& a);

// Prunes `m` in place (structured methods reshape it); the summary holds the method, the
// achieved sparsity, per-layer / per-linear figures and timings.
Compressed prune_model(Model& m, const PruneJobOptions& o);

}  // namespace slimlm::pipeline
