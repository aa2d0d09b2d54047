// One step that rewrites a model, checked before it runs and then run on a model in memory or
// from file to file: what `slimlm quantize|prune|convert|train|distill` and each recipe step do.
#pragma once
#include "model/model.h"
#include "model/sparsify.h"
#include "pipeline/job.h"
#include "pipeline/prune.h"
#include "pipeline/quantize.h"
#include "pipeline/registry.h"
#include "pipeline/train_job.h"
#include <optional>
#include <string>

namespace slimlm::pipeline {

struct ConvertOptions {
  std::string type_name = "f16";
  DType type = DType::F16;
  std::optional<SparseOptions> sparse;  // --sparse: block linears in a sparse format where they fit
  int64_t threads = 0;
};

// A verb with its options, validated (one-line Error on bad flags or values).
struct Job {
  Verb verb = Verb::Quantize;
  QuantizeOptions quantize;
  PruneJobOptions prune;
  ConvertOptions convert;
  TrainJobOptions train;  // Train and Distill
};
Job make_job(Verb v, const Params& params);

// Runs the job on `m` in place.
Compressed run_job(Model& m, const Job& job);
// Loads `model`, runs the job, writes `out`; the summary gains model, output, file size and peak
// memory. Paths and flags are checked before the model is loaded. Train and Distill may leave
// `out` empty (train, write nothing).
nlohmann::json run_job_file(const Job& job, const std::string& model, const std::string& out);

}  // namespace slimlm::pipeline
