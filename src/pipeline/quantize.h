// Post-training quantization of a whole model over the layer-wise calibration pipeline (the
// `slimlm quantize` verb, recipe steps, the library's quantize): one method from the registry
// (RTN, GPTQ, AWQ, W8A8/SmoothQuant, k-means codebooks, NF grids) on every block linear, with
// optional dense-and-sparse outliers and llama.cpp type mixtures.
#pragma once
#include "quant/qat.h"
#include "model/model.h"
#include "pipeline/job.h"
#include "pipeline/calibration.h"
#include "pipeline/registry.h"
#include <cstdint>
#include <string>

namespace slimlm::pipeline {

struct QuantizeOptions {
  const MethodInfo* method = nullptr;
  std::string type, format = "slimlm";
  CalibOptions calib;
  int bits = 4;
  int64_t group = 128;
  bool sym = false, asym = false, act_order = false, pure = false, progress = true;
  double damp = 0.01, alpha = 0.5;
  double outliers = 0;            // percent of each block weight kept in f16 beside the quantized rest
  std::string outlier_score = "auto";
  int64_t sample_tokens = 512;    // AWQ: calibration rows kept per site
  int64_t threads = 0;
  quant::QatOptions qat;          // --method qat
};
// The options of `slimlm quantize` flags / a recipe step; throws Error on bad values.
QuantizeOptions quantize_options(const Args& a);
// The storage type name the options ask for (e.g. "u4g128", "q4_0", "w8a8", "lut3"); throws
// Error for flag combinations that fit no type.
std::string pick_type(const QuantizeOptions& o);

// Quantizes every block linear of `m` in place (token embedding and output too with a llama.cpp
// mixture); the summary holds method, type, bits per weight, calibration tokens and timings.
Compressed quantize_model(Model& m, const QuantizeOptions& o);

}  // namespace slimlm::pipeline
