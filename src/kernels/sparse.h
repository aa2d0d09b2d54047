// Kernels for weights with f16 values: dense f16 (decode baseline), N:M structured sparse and
// bitmap sparse (formats: core/dtype_sparse.h). kernels::matmul hands these types to
// matmul_half(); few tokens use one dot per (row, token), many use transposed activations.
#pragma once
#include "core/dtype_custom.h"
#include "core/tensor.h"
#include <cstdint>

namespace slimlm::kernels {

// Below kHalfBatchMin tokens a matmul is dot products over the row (decode); from kTokTile
// tokens on, sparse weights multiply a transposed activation tile (each nonzero feeds kTokTile
// tokens); in between, and dense f16 from kHalfBatchMin on, rows are decoded into the f32 tile
// path of matmul.cpp.
constexpr int64_t kHalfBatchMin = 4;
constexpr int kTokTile = 32;

// Computes y = W x for F16 (decode, AVX2 only), NM and Bitmap weights; returns false (and does
// nothing) for other types, which kernels::matmul handles itself.
bool matmul_half(const Tensor& w, const float* x, int64_t ldx, int64_t n_tok, float* y, int64_t ldy);

}  // namespace slimlm::kernels

namespace slimlm::kernels::ref {
// One sparse row times one token, float accumulation in column order (the scalar truth the
// AVX2 paths are tested against, and the baseline path).
float dot_sparse(const CustomLayout& l, const uint8_t* row, const float* x, int64_t n);
}  // namespace slimlm::kernels::ref

namespace slimlm::kernels::avx2 {
float dot_f16(const uint8_t* row, const float* x, int64_t n);
float dot_nm24(const uint8_t* row, const float* x, int64_t n);  // 2:4 only
float dot_bitmap(const uint8_t* row, int64_t cap, const float* x, int64_t n);
// acc[i] = sum_c W[c] * xt[c * kTokTile + i] over the row's nonzeros (any N:M or bitmap).
void row_xt(const CustomLayout& l, const uint8_t* row, const float* xt, int64_t n, float* acc);
void f16_row_to_f32(const uint8_t* src, float* dst, int64_t n);
void nm24_row_to_f32(const CustomLayout& l, const uint8_t* row, float* dst, int64_t n);  // 2:4 row decoded (sparse_row_to_f32's result)
}  // namespace slimlm::kernels::avx2
