// Integer dot products of block-quantized weights with 8-bit quantized activations, as in
// ggml: activations are quantized per row to q8_0 / q8_1 (blocks of 32) or q8_K (blocks of 256)
// and each weight block is multiplied with integers. A table maps weight type -> kernels.
#pragma once
#include "core/dtype.h"
#include "kernels/cpu.h"
#include <cstddef>
#include <cstdint>

namespace slimlm::kernels {

// Activation blocks (layouts equal ggml's block_q8_0 / block_q8_1 / block_q8_K).
struct BlockQ8_0 { uint16_t d; int8_t qs[32]; };                  // d: f16
struct BlockQ8_1 { uint16_t d, s; int8_t qs[32]; };               // s: f16(d * sum(qs))
struct BlockQ8_K { float d; int8_t qs[256]; int16_t bsums[16]; };  // bsums: sums of 16
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36 && sizeof(BlockQ8_K) == 292);

// n: elements, a multiple of the activation block size.
using QuantizeRowFn = void (*)(const float* x, void* y, int64_t n);
// Dot product of one weight row (n elements, blocks as stored) with one quantized activation row.
using QDotFn = float (*)(const void* w, const void* a, int64_t n);

// One row per weight type with an integer kernel. A type without a row (f32, f16, bf16,
// slimlm's own formats until they get a kernel) is multiplied by dequantizing instead.
struct QDotTraits {
  DType weight;         // weight block type
  DType act;            // activation type: Q8_0, Q8_1 or Q8_K
  QDotFn dot_ref;       // scalar reference (src/kernels/ref/qdot_ref.cpp)
  QDotFn dot_avx2;      // AVX2 path (src/kernels/qdot_avx2.cpp), nullptr if none
};

// The row for weight type `w`, or nullptr (dequantize path).
const QDotTraits* find_qdot(DType w);
// The dot function the dispatcher uses now for `t` (AVX2 unless use_simd(false)).
QDotFn qdot_fn(const QDotTraits& t);
// Activation block size (32 or 256) and bytes per block for act in {Q8_0, Q8_1, Q8_K}.
int act_block(DType act);
size_t act_row_bytes(DType act, int64_t n);
// Quantizes one activation row with ggml's x86 rounding (see ref/qdot_ref.cpp).
void quantize_act(DType act, const float* x, void* y, int64_t n);

// The numerics mode of matmul. Exact: quantized weights are always dequantized to f32 and
// multiplied in f32 (no 8-bit activations). The default is SLIMLM_EXACT=1 or not (read once);
// a scope switches the mode for its lifetime and restores the one before when it ends, however
// it ends (return, exception, a failed test assertion), so a mode cannot leak past its scope:
//     { kernels::ExactScope exact(true); ... }
// The mode belongs to the calling thread (thread_local). matmul reads it on the calling thread
// before its OpenMP region forks, so the workers follow the caller; a matmul called from inside
// a parallel region sees that worker's own mode (the default).
class ExactScope {
 public:
  explicit ExactScope(bool on);
  ~ExactScope();
  ExactScope(const ExactScope&) = delete;
  ExactScope& operator=(const ExactScope&) = delete;

 private:
  bool prev_;
};
bool exact();  // the mode on this thread now

}  // namespace slimlm::kernels

namespace slimlm::kernels::ref {
void quantize_row_q8_0(const float* x, void* y, int64_t n);
void quantize_row_q8_1(const float* x, void* y, int64_t n);
void quantize_row_q8_K(const float* x, void* y, int64_t n);
#define SLIMLM_QDOT_DECL(name) float dot_##name(const void* w, const void* a, int64_t n);
SLIMLM_QDOT_DECL(q4_0) SLIMLM_QDOT_DECL(q4_1) SLIMLM_QDOT_DECL(q5_0) SLIMLM_QDOT_DECL(q5_1)
SLIMLM_QDOT_DECL(q8_0) SLIMLM_QDOT_DECL(q2_K) SLIMLM_QDOT_DECL(q3_K) SLIMLM_QDOT_DECL(q4_K)
SLIMLM_QDOT_DECL(q5_K) SLIMLM_QDOT_DECL(q6_K)
}  // namespace slimlm::kernels::ref

namespace slimlm::kernels::avx2 {
SLIMLM_QDOT_DECL(q4_0) SLIMLM_QDOT_DECL(q4_1) SLIMLM_QDOT_DECL(q5_0) SLIMLM_QDOT_DECL(q5_1)
SLIMLM_QDOT_DECL(q8_0) SLIMLM_QDOT_DECL(q2_K) SLIMLM_QDOT_DECL(q3_K) SLIMLM_QDOT_DECL(q4_K)
SLIMLM_QDOT_DECL(q5_K) SLIMLM_QDOT_DECL(q6_K)
#undef SLIMLM_QDOT_DECL
// bit-identical to the ref:: versions
void quantize_row_q8_0(const float* x, void* y, int64_t n);
void quantize_row_q8_1(const float* x, void* y, int64_t n);
void quantize_row_q8_K(const float* x, void* y, int64_t n);
}  // namespace slimlm::kernels::avx2
