// Block formats of GGUF/ggml: exact dequantization (to_f32) and round-to-nearest
// quantization (from_f32) for each row of the type table. Scalar: these are the truth that
// optimized kernels are tested against. Layouts: docs/formats.md.
#pragma once
#include <cstdint>

namespace slimlm::blocks {
#define SLIMLM_BLOCK_FNS(x)                                 \
  void x##_to_f32(const void* src, float* dst, int64_t n); \
  void x##_from_f32(const float* src, void* dst, int64_t n);
SLIMLM_BLOCK_FNS(f32)
SLIMLM_BLOCK_FNS(q4_0)
SLIMLM_BLOCK_FNS(q4_1)
SLIMLM_BLOCK_FNS(q5_0)
SLIMLM_BLOCK_FNS(q5_1)
SLIMLM_BLOCK_FNS(q8_0)
#undef SLIMLM_BLOCK_FNS
void f16_to_f32_row(const void* src, float* dst, int64_t n);
void f16_from_f32_row(const float* src, void* dst, int64_t n);
void bf16_to_f32_row(const void* src, float* dst, int64_t n);
void bf16_from_f32_row(const float* src, void* dst, int64_t n);
void i32_to_f32_row(const void* src, float* dst, int64_t n);    // int32 -> float (exact below 2^24)
void q2_k_to_f32(const void* src, float* dst, int64_t n);
void q3_k_to_f32(const void* src, float* dst, int64_t n);
void q4_k_to_f32(const void* src, float* dst, int64_t n);
void q5_k_to_f32(const void* src, float* dst, int64_t n);
void q6_k_to_f32(const void* src, float* dst, int64_t n);
void q8_k_to_f32(const void* src, float* dst, int64_t n);
// Q4_K/Q5_K: the 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes `s`.
void scale_min_k4(int j, const uint8_t* s, int& sc, int& m);
}  // namespace slimlm::blocks
