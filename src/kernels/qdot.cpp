// The weight type -> integer dot product table and its dispatch (scalar reference or AVX2),
// activation quantization by type, and the exact-path switch (set_exact / SLIMLM_EXACT).
// Adding a kernel for a new weight type is adding a row to kQDots.
#include "kernels/qdot.h"
#include "core/error.h"
#include <cstdlib>
#include <cstring>

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

bool cpu_has_avx2() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}
bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
}
bool g_simd = !env_set("SLIMLM_NO_SIMD") && cpu_has_avx2();
bool g_exact = env_set("SLIMLM_EXACT");
}  // namespace

const QDotTraits* find_qdot(DType w) {
  for (const auto& t : kQDots) if (t.weight == w) return &t;
  return nullptr;
}

QDotFn qdot_fn(const QDotTraits& t) { return g_simd && t.dot_avx2 ? t.dot_avx2 : t.dot_ref; }

int act_block(DType act) { return act == DType::Q8_K ? 256 : 32; }

size_t act_row_bytes(DType act, int64_t n) {
  const size_t bb = act == DType::Q8_0 ? sizeof(BlockQ8_0) : act == DType::Q8_1 ? sizeof(BlockQ8_1) : sizeof(BlockQ8_K);
  SLIMLM_ASSERT(n % act_block(act) == 0);
  return size_t(n / act_block(act)) * bb;
}

void quantize_act(DType act, const float* x, void* y, int64_t n) {
  switch (act) {
    case DType::Q8_0: g_simd ? avx2::quantize_row_q8_0(x, y, n) : ref::quantize_row_q8_0(x, y, n); break;
    case DType::Q8_1: g_simd ? avx2::quantize_row_q8_1(x, y, n) : ref::quantize_row_q8_1(x, y, n); break;
    case DType::Q8_K: g_simd ? avx2::quantize_row_q8_K(x, y, n) : ref::quantize_row_q8_K(x, y, n); break;
    default: SLIMLM_ASSERT(false && "not an activation type");
  }
}

bool set_exact(bool on) { const bool was = g_exact; g_exact = on; return was; }
bool exact() { return g_exact; }
bool simd_enabled() { return g_simd; }
void select_qdot_simd(bool on) { g_simd = on && cpu_has_avx2(); }

}  // namespace slimlm::kernels
