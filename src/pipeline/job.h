// What every compression driver shares: the compressed model's summary and file metadata,
// calibration options from flags (with the shipped default text), path checks and a thread scope.
#pragma once
#include "core/dtype.h"
#include "io/gguf.h"
#include "pipeline/calibration.h"
#include "pipeline/registry.h"
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace slimlm::pipeline {

using Meta = std::vector<std::pair<std::string, gguf::Value>>;

// The outcome of compressing a model in memory: a JSON summary (the CLI's --json, a recipe
// step's result) and how to write it: the extra metadata keys, and a storage type to convert
// every matrix to (structured pruning) or none (tensors as they are).
struct Compressed {
  nlohmann::json summary;
  Meta meta;
  std::optional<DType> convert_to;
};
// Writes `m` as Compressed says (temp file, then renamed).
void save_compressed(const Model& m, const std::string& path, const Compressed& c);

// --calib, --calib-ids, --calib-samples, --calib-len, --seed.
CalibOptions calib_options(const Args& a);
// The calibration text used when neither --calib nor --calib-ids is given: calibration.txt in
// $SLIMLM_DATA, else in the source tree's data/, else in the installed share/slimlm.
std::string default_calibration_file();
// load_calibration with o.file set to the default text first when no file is given (models
// without a tokenizer fail on the tokenizer, not on a missing default).
std::vector<std::vector<int32_t>> load_calib(const Model& m, CalibOptions& o);
// e.g. "brown.txt 64x256 seed 1" (slimlm.*.calib metadata).
std::string calib_label(const CalibOptions& o);

// One-line errors before heavy work: the model path exists; the output's folder exists.
void check_model_path(const std::string& path);
void check_output_folder(const std::string& out);

// Sets the OpenMP worker count for a scope (0: leave it) and restores it after.
class ThreadScope {
 public:
  explicit ThreadScope(int64_t threads);
  ~ThreadScope();
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int saved_ = 0;
};

}  // namespace slimlm::pipeline
