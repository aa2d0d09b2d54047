// Calibration data for the layer-wise loop (quant/layerwise.h): token sequences cut from a
// text (or token-id) file.
#pragma once
#include "model/model.h"
#include <cstdint>
#include <string>
#include <vector>

namespace slimlm::pipeline {

struct CalibOptions {
  std::string file;          // text file (empty: pipeline::default_calibration_file(), pipeline/job.h)
  std::string ids_file;      // or token ids (whitespace-separated), e.g. for models without a tokenizer
  int64_t samples = 64;      // sequences
  int64_t len = 256;         // tokens per sequence
  uint64_t seed = 1;         // picks the sequences' start offsets
};
// Tokenizes the file and cuts `samples` sequences of `len` tokens at seeded random offsets
// (non-overlapping when the text is long enough). Throws Error when the text is too short.
std::vector<std::vector<int32_t>> load_calibration(const Model& m, const CalibOptions& o);

}  // namespace slimlm::pipeline
