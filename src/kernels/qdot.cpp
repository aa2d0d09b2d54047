// The weight type -> integer dot product table and its dispatch (scalar reference or AVX2),
// activation quantization by type, and the exact-path mode (ExactScope / SLIMLM_EXACT).
// Adding a kernel for a new weight type is adding a row to kQDots.
#include "kernels/qdot.h"
#include "core/error.h"

namespace slimlm::kernels {
namespace {
const QDotTraits kQDots[] = {
    {DType::Q4_0, DType::Q8_0, ref::dot_q4_0, avx2::dot_q4_0},
    {DType::Q4_1, DType::Q8_1, ref::dot_q4_1, avx2::dot_q4_1},
    {DType::Q5_0, DType::Q8_0, ref::dot_q5_0, avx2::dot_q5_0},
    {DType::Q5_1, DType::Q8_1, ref::dot_q5_1, avx2::dot_q5_1},
    {DType::Q8_0, DType::Q8_0, ref::dot_q8_0, avx2::dot_q8_0},
    {DType::Q2_K, DType::Q8_K, ref::dot_q2_K, avx2::dot_q2_K},
    {DType::Q3_K, DType::Q8_K, ref::dot_q3_K, avx2::dot_q3_K},
    {DType::Q4_K, DType::Q8_K, ref::dot_q4_K, avx2::dot_q4_K},
    {DType::Q5_K, DType::Q8_K, ref::dot_q5_K, avx2::dot_q5_K},
    {DType::Q6_K, DType::Q8_K, ref::dot_q6_K, avx2::dot_q6_K},
};

bool& exact_mode() {
  static const bool from_env = env_flag("SLIMLM_EXACT");
  thread_local bool mode = from_env;
  return mode;
}
}  // namespace

const QDotTraits* find_qdot(DType w) {
  for (const auto& t : kQDots) if (t.weight == w) return &t;
  return nullptr;
}

QDotFn qdot_fn(const QDotTraits& t) { return simd_enabled() && t.dot_avx2 ? t.dot_avx2 : t.dot_ref; }

int act_block(DType act) { return act == DType::Q8_K ? 256 : 32; }

size_t act_row_bytes(DType act, int64_t n) {
  const size_t bb = act == DType::Q8_0 ? sizeof(BlockQ8_0) : act == DType::Q8_1 ? sizeof(BlockQ8_1) : sizeof(BlockQ8_K);
  SLIMLM_ASSERT(n % act_block(act) == 0);
  return size_t(n / act_block(act)) * bb;
}

void quantize_act(DType act, const float* x, void* y, int64_t n) {
  const bool simd = simd_enabled();
  switch (act) {
    case DType::Q8_0: simd ? avx2::quantize_row_q8_0(x, y, n) : ref::quantize_row_q8_0(x, y, n); break;
    case DType::Q8_1: simd ? avx2::quantize_row_q8_1(x, y, n) : ref::quantize_row_q8_1(x, y, n); break;
    case DType::Q8_K: simd ? avx2::quantize_row_q8_K(x, y, n) : ref::quantize_row_q8_K(x, y, n); break;
    default: SLIMLM_ASSERT(false && "not an activation type");
  }
}

ExactScope::ExactScope(bool on) : prev_(exact_mode()) { exact_mode() = on; }
ExactScope::~ExactScope() { exact_mode() = prev_; }
bool exact() { return exact_mode(); }

}  // namespace slimlm::kernels
