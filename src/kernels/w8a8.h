// W8A8 (SmoothQuant-style) integer matmul: weights stored per output channel as int8 with an
// f32 scale (slimlm type "w8a8"), activations quantized per token to int8 at run time
// (dynamic, symmetric, absmax / 127), one int32 dot per (row, token), then both scales.
#pragma once
#include "core/tensor.h"
#include <cstdint>

namespace slimlm::kernels {

// y[t * ldy + r] = dx[t] · dw[r] · Σ_c qx[t * k + c] · qw[r][c]  for r < rows, t < n_tok.
// w: `rows` rows of 4 + k bytes (f32 dw, then k int8 codes in [-127, 127]); qx: n_tok rows of
// k int8 codes in [-127, 127]. The int32 sum is exact for k < 133,000, so every path gives
// the same bits.
using GemmW8A8Fn = void (*)(const uint8_t* w, int64_t rows, int64_t k, const int8_t* qx, const float* dx,
                            int64_t n_tok, float* y, int64_t ldy);
// The kernel matmul uses now (AVX2 unless use_simd(false) or the CPU lacks AVX2).
GemmW8A8Fn w8a8_gemm_fn();
// matmul for w8a8 weights on the default path: quantizes each token (ref::quantize_row_i8),
// then runs the GEMM over tiles of rows on all threads.
void matmul_w8a8(const Tensor& w, const float* x, int64_t ldx, int64_t n_tok, float* y, int64_t ldy);

}  // namespace slimlm::kernels

namespace slimlm::kernels::ref {
// Per-token symmetric int8: returns d = amax / 127 and writes q = round_half_even(x · 127 / amax)
// (llama.cpp's q8_0 rounding on x86); an all-zero row gives d = 0 and q = 0.
float quantize_row_i8(const float* x, int8_t* q, int64_t n);
void gemm_w8a8(const uint8_t* w, int64_t rows, int64_t k, const int8_t* qx, const float* dx, int64_t n_tok,
               float* y, int64_t ldy);
}  // namespace slimlm::kernels::ref

namespace slimlm::kernels::avx2 {
void gemm_w8a8(const uint8_t* w, int64_t rows, int64_t k, const int8_t* qx, const float* dx, int64_t n_tok,
               float* y, int64_t ldy);
}  // namespace slimlm::kernels::avx2
