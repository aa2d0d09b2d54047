// Shared pieces of the slimlm CLI: verb registration and common options (threads, json).
#pragma once
#include "pipeline/calibration.h"
#include <CLI/CLI.hpp>
#include <string>

namespace slimlm::cli {

void add_info(CLI::App& app);
void add_generate(CLI::App& app);
void add_eval(CLI::App& app);
void add_bench(CLI::App& app);
void add_convert(CLI::App& app);
void add_quantize(CLI::App& app);
void add_prune(CLI::App& app);
void add_recipe(CLI::App& app);

// Adds --threads N (default: all cores) and applies it before the verb runs.
void add_threads(CLI::App* sub, int* threads);
void apply_threads(int threads);
// Adds --exact (quantized weights are dequantized and multiplied in f32 instead of the default
// 8-bit-activation integer kernels); apply_exact switches kernels before the verb runs.
void add_exact(CLI::App* sub, bool* exact);
void apply_exact(bool exact);
// Adds --kv-type f32|f16|q8|q4 (storage of the KV cache; default f32).
void add_kv_type(CLI::App* sub, std::string* kv);
// Checks that a model path exists before heavier work (one-line error otherwise).
void check_model_path(const std::string& path);
// Fails when the output's folder does not exist (before any heavy work).
void check_output_folder(const std::string& out);
// Calibration flags shared by quantize and prune: --calib, --calib-ids, --calib-samples,
// --calib-len, --seed. options() picks ../shared/data/brown/brown.txt when neither file is given.
struct CalibFlags {
  std::string file, ids;
  int64_t samples = 64, len = 256;
  uint64_t seed = 1;
  pipeline::CalibOptions options() const;
  std::string label() const;  // e.g. "brown.txt 64x256 seed 1" (for metadata)
};
void add_calib_flags(CLI::App* sub, CalibFlags* f);

}  // namespace slimlm::cli
