// llama.cpp's quantization file types ("q4_K_M", "q3_K_S", "q2_K", "q4_0", ...) as per-tensor type
// mixtures: which storage type each weight gets from its role, layer and row length, following
// llama.cpp's llama_tensor_get_type (src/llama-quant.cpp) for dense models, fallbacks included.
#pragma once
#include "core/dtype.h"
#include <cstdint>
#include <optional>
#include <string>

namespace slimlm::quant {

enum class TensorRole { AttnQ, AttnK, AttnV, AttnOut, FfnGate, FfnUp, FfnDown, Output, TokenEmbd };

struct Mixture {
  std::string name;        // canonical, e.g. "q4_K_M"
  DType base;              // the file type's default tensor type
  uint32_t file_type;      // llama_ftype, written as general.file_type
  bool pure = false;       // every weight the base type (llama-quantize --pure); embedding/output left as they are
};

// The mixture named `name` (case-insensitive; q3_K/q4_K/q5_K are llama.cpp's aliases of the _M
// mixtures); nullopt when `name` is not a llama.cpp file type.
std::optional<Mixture> find_mixture(const std::string& name);
// True for the K-quant file type names (which are never a single codec in the CLI).
bool is_k_mixture_name(const std::string& name);

// Shape of the model the rules look at.
struct MixModel {
  int64_t n_layer = 0;
  int64_t n_gqa = 1;           // n_head / n_head_kv
  bool tied_embd = false;      // the output matrix is the token embedding
};

// The type of one weight (layer: its block, ignored for Output/TokenEmbd; cols: its row length).
// nullopt: leave the tensor as it is (the token embedding of an untied model under --pure).
std::optional<DType> mixture_type(const Mixture& mx, TensorRole role, int64_t layer, int64_t cols, const MixModel& mm);

// llama.cpp's fallback for rows that are not whole blocks of `t`: q2_K/q3_K -> q4_0, q4_K -> q5_0,
// q5_K -> q5_1, q6_K -> q8_0; f16 when the row does not fit that either.
DType fit_row(DType t, int64_t cols);

}  // namespace slimlm::quant
