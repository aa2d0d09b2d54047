// llama.cpp's per-tensor quantization rules for its file types (llama-quant.cpp,
// llama_tensor_get_type_impl and tensor_type_fallback), restricted to dense models without an
// importance matrix: no MoE, Falcon or 70B special cases, no IQ types. The layer counters of
// llama.cpp (i_attention_wv, i_ffn_down) equal the block index for such models.
#include "quant/mixture.h"
#include "core/error.h"
#include <algorithm>
#include <cctype>

namespace slimlm::quant {

namespace {
struct Row { const char* name; DType base; uint32_t ftype; };
// llama_ftype values (llama.h): Q4_0 2, Q4_1 3, Q8_0 7, Q5_0 8, Q5_1 9, Q2_K 10, Q3_K_S 11, ...
const Row kTypes[] = {
    {"q4_0", DType::Q4_0, 2},   {"q4_1", DType::Q4_1, 3},   {"q8_0", DType::Q8_0, 7},
    {"q5_0", DType::Q5_0, 8},   {"q5_1", DType::Q5_1, 9},   {"q2_K", DType::Q2_K, 10},
    {"q3_K_S", DType::Q3_K, 11}, {"q3_K_M", DType::Q3_K, 12}, {"q3_K_L", DType::Q3_K, 13},
    {"q4_K_S", DType::Q4_K, 14}, {"q4_K_M", DType::Q4_K, 15}, {"q5_K_S", DType::Q5_K, 16},
    {"q5_K_M", DType::Q5_K, 17}, {"q6_K", DType::Q6_K, 18},
};

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// llama.cpp's use_more_bits: the first and last eighth of the layers and every third one between.
bool more_bits(int64_t i, int64_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }
}  // namespace

std::optional<Mixture> find_mixture(const std::string& name) {
  std::string n = lower(name);
  if (n == "q3_k" || n == "q4_k" || n == "q5_k") n += "_m";
  for (const Row& r : kTypes)
    if (lower(r.name) == n) return Mixture{r.name, r.base, r.ftype};
  return std::nullopt;
}

bool is_k_mixture_name(const std::string& name) {
  const auto m = find_mixture(name);
  return m && traits(m->base).block == 256;
}

DType fit_row(DType t, int64_t cols) {
  if (cols % traits(t).block == 0) return t;
  DType f = t;
  switch (t) {
    case DType::Q2_K: case DType::Q3_K: f = DType::Q4_0; break;
    case DType::Q4_K: f = DType::Q5_0; break;
    case DType::Q5_K: f = DType::Q5_1; break;
    case DType::Q6_K: f = DType::Q8_0; break;
    default: break;
  }
  return cols % traits(f).block == 0 ? f : DType::F16;
}

std::optional<DType> mixture_type(const Mixture& mx, TensorRole role, int64_t i, int64_t cols, const MixModel& mm) {
  const std::string& f = mx.name;
  const int64_t n = mm.n_layer;
  DType t = mx.base;
  const bool is_embd = role == TensorRole::TokenEmbd, is_out = role == TensorRole::Output;
  if (mx.pure) {
    if (is_embd || is_out) return std::nullopt;
    return fit_row(t, cols);
  }
  if (is_out || (is_embd && mm.tied_embd)) {
    // The output matrix (and a tied embedding, which is the output): q6_K unless the row does not
    // fit the base type's blocks (then q8_0) or the base is q8_0.
    if (cols % traits(t).block != 0) t = DType::Q8_0;
    else if (t != DType::Q8_0) t = DType::Q6_K;
    return fit_row(t, cols);
  }
  switch (role) {
    case TensorRole::AttnV:
      if (f == "q2_K") t = mm.n_gqa >= 4 ? DType::Q4_K : DType::Q3_K;
      else if (f == "q3_K_M") t = i < 2 ? DType::Q5_K : DType::Q4_K;
      else if (f == "q3_K_L") t = DType::Q5_K;
      else if ((f == "q4_K_M" || f == "q5_K_M") && more_bits(i, n)) t = DType::Q6_K;
      else if (f == "q4_K_S" && i < 4) t = DType::Q5_K;
      break;
    case TensorRole::FfnDown:
      if (f == "q2_K") t = DType::Q3_K;
      else if (f == "q3_K_M") t = i < n / 16 ? DType::Q5_K : DType::Q4_K;
      else if (f == "q3_K_L") t = DType::Q5_K;
      else if ((f == "q4_K_M" || f == "q5_K_M") && more_bits(i, n)) t = DType::Q6_K;
      else if (f == "q4_K_S" && i < n / 8) t = DType::Q5_K;
      break;
    case TensorRole::AttnOut:
      if (f == "q2_K") t = DType::Q3_K;
      else if (f == "q3_K_M") t = DType::Q4_K;
      else if (f == "q3_K_L") t = DType::Q5_K;
      break;
    default: break;  // q, k, gate, up and an untied token embedding keep the base type
  }
  return fit_row(t, cols);
}

}  // namespace slimlm::quant
