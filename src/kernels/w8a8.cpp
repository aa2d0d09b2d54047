// W8A8 matmul driver (src/kernels/w8a8.h): per-token activation quantization, then the GEMM
// (scalar reference or AVX2) over tiles of rows on all threads. Each output is one exact int32
// sum times two scales, so results are bit-identical for any thread count and path.
#include "kernels/w8a8.h"
#include "core/dtype_custom.h"
#include "kernels/cpu.h"
#include <algorithm>
#include <vector>

namespace slimlm::kernels {

GemmW8A8Fn w8a8_gemm_fn() { return simd_enabled() ? avx2::gemm_w8a8 : ref::gemm_w8a8; }

void matmul_w8a8(const Tensor& w, const float* x, int64_t ldx, int64_t n_tok, float* y, int64_t ldy) {
  constexpr int64_t kTile = 32;  // rows per task: 32 x k int8 stay in L1/L2 while all tokens pass
  const int64_t rows = w.rows(), k = w.cols();
  const size_t rb = row_bytes(w.type, k);
  thread_local std::vector<int8_t> qx;  // grows to the largest batch, then stays
  thread_local std::vector<float> dx;
  if (qx.size() < size_t(n_tok * k)) qx.resize(size_t(n_tok * k));
  if (dx.size() < size_t(n_tok)) dx.resize(size_t(n_tok));
  int8_t* q = qx.data();
  float* d = dx.data();
  const bool par = rows * k * n_tok > 32768;
#pragma omp parallel for schedule(static) if (par && n_tok > 1)
  for (int64_t t = 0; t < n_tok; ++t) d[t] = ref::quantize_row_i8(x + t * ldx, q + t * k, k);
  const GemmW8A8Fn gemm = w8a8_gemm_fn();
  const int64_t n_tiles = (rows + kTile - 1) / kTile;
#pragma omp parallel for schedule(static) if (par)
  for (int64_t ti = 0; ti < n_tiles; ++ti) {
    const int64_t r0 = ti * kTile, nr = std::min(kTile, rows - r0);
    gemm(w.data + size_t(r0) * rb, nr, k, q, d, n_tok, y + r0, ldy);
  }
}

}  // namespace slimlm::kernels
