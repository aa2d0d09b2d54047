// Dispatch and threading of the f16-valued weight kernels (sparse.h). Rows go to threads in
// tiles; each output is computed by one thread in a fixed order, so results are bit-identical
// for any thread count.
#include "kernels/sparse.h"
#include "core/dtype_sparse.h"
#include "kernels/cpu.h"
#include <algorithm>
#include <vector>

namespace slimlm::kernels {
namespace {
constexpr int64_t kRowTile = 16;

using RowDot = float (*)(const CustomLayout&, const uint8_t*, const float*, int64_t);
float f16_dot(const CustomLayout&, const uint8_t* r, const float* x, int64_t n) { return avx2::dot_f16(r, x, n); }
float nm24_dot(const CustomLayout&, const uint8_t* r, const float* x, int64_t n) { return avx2::dot_nm24(r, x, n); }
float bitmap_dot(const CustomLayout& l, const uint8_t* r, const float* x, int64_t n) { return avx2::dot_bitmap(r, l.cap, x, n); }

RowDot pick_dot(DType t, const CustomLayout& l, bool simd) {
  if (t == DType::F16) return f16_dot;  // only reached with simd
  if (!simd) return ref::dot_sparse;
  if (l.kind == CustomKind::Bitmap) return bitmap_dot;
  return l.keep == 2 && l.group == 4 ? nm24_dot : ref::dot_sparse;
}

bool parallel(const Tensor& w, int64_t n_tok) { return w.rows() * w.cols() * n_tok > 32768; }

void matmul_dots(const Tensor& w, RowDot dot, const CustomLayout& l, const float* x, int64_t ldx, int64_t n_tok,
                 float* y, int64_t ldy) {
  const int64_t rows = w.rows(), k = w.cols(), n_tiles = (rows + kRowTile - 1) / kRowTile;
  const size_t rb = row_bytes(w.type, k);
#pragma omp parallel for schedule(static) if (parallel(w, n_tok))
  for (int64_t ti = 0; ti < n_tiles; ++ti)
    for (int64_t r = ti * kRowTile; r < std::min(rows, (ti + 1) * kRowTile); ++r)
      for (int64_t t = 0; t < n_tok; ++t) y[t * ldy + r] = dot(l, w.data + size_t(r) * rb, x + t * ldx, k);
}

// Batched sparse: activations transposed into tiles of kTokTile tokens ([col][token], zero
// padded), then each nonzero of a row feeds kTokTile tokens with 4 FMAs.
void matmul_xt(const Tensor& w, const CustomLayout& l, const float* x, int64_t ldx, int64_t n_tok, float* y, int64_t ldy) {
  const int64_t rows = w.rows(), k = w.cols(), n_tt = (n_tok + kTokTile - 1) / kTokTile;
  const int64_t n_tiles = (rows + kRowTile - 1) / kRowTile;
  const size_t rb = row_bytes(w.type, k), tile = size_t(k) * kTokTile;
  thread_local std::vector<float> xt;  // grows to the largest batch, then stays
  if (xt.size() < tile * size_t(n_tt)) xt.resize(tile * size_t(n_tt));
  for (int64_t tt = 0; tt < n_tt; ++tt)
    for (int64_t c = 0; c < k; ++c)
      for (int i = 0; i < kTokTile; ++i) {
        const int64_t t = tt * kTokTile + i;
        xt[size_t(tt) * tile + size_t(c) * kTokTile + size_t(i)] = t < n_tok ? x[t * ldx + c] : 0.0f;
      }
  const float* xtp = xt.data();
#pragma omp parallel for schedule(static) if (parallel(w, n_tok))
  for (int64_t ti = 0; ti < n_tiles; ++ti) {
    alignas(32) float acc[kTokTile];
    for (int64_t r = ti * kRowTile; r < std::min(rows, (ti + 1) * kRowTile); ++r)
      for (int64_t tt = 0; tt < n_tt; ++tt) {
        avx2::row_xt(l, w.data + size_t(r) * rb, xtp + size_t(tt) * tile, k, acc);
        for (int64_t i = 0; i < kTokTile && tt * kTokTile + i < n_tok; ++i) y[(tt * kTokTile + i) * ldy + r] = acc[i];
      }
  }
}
}  // namespace

bool matmul_half(const Tensor& w, const float* x, int64_t ldx, int64_t n_tok, float* y, int64_t ldy) {
  const bool simd = simd_enabled();
  if (w.type == DType::F16) {
    if (!simd || n_tok >= kHalfBatchMin) return false;  // the f32 tile path of matmul.cpp
    matmul_dots(w, f16_dot, CustomLayout{}, x, ldx, n_tok, y, ldy);
    return true;
  }
  if (!is_sparse(w.type)) return false;
  const CustomLayout l = custom_layout(w.type);
  if (n_tok < kHalfBatchMin) {
    matmul_dots(w, pick_dot(w.type, l, simd), l, x, ldx, n_tok, y, ldy);
    return true;
  }
  // N:M batches: rows decoded into matmul.cpp's f32 GEMM beat the transposed tile (64 tokens of
  // SmolLM2's projections: 0.48-0.63x of dense f16 on the tile, sparse-crossover.json); bitmap
  // keeps the tile, which wins above ~70-80% sparsity.
  if (simd && n_tok >= kTokTile && l.kind != CustomKind::NM) {
    matmul_xt(w, l, x, ldx, n_tok, y, ldy);
    return true;
  }
  return false;  // a few tokens: rows decoded into matmul.cpp's f32 tile (a padded 32-token tile wastes more)
}

}  // namespace slimlm::kernels
