// matmul for weights of any type: quantized weights with an integer kernel (kernels/qdot.h)
// multiply 8-bit quantized activations (llama.cpp's numerics); everything else, or every type
// under set_exact(true), is dequantized a few rows at a time into an f32 tile (exact path).
#include "core/error.h"
#include "kernels/kernels.h"
#include "kernels/qdot.h"
#include "core/dtype_custom.h"
#include "kernels/sparse.h"
#include "kernels/w8a8.h"
#include "quant/outliers.h"
#include <cstdlib>
#include <omp.h>
#include <vector>

namespace slimlm::kernels {

namespace {
constexpr int kRowTile = 8;  // rows dequantized together; fits L1 for rows up to ~1k floats

// y[t][r] for up to kRowTile rows `w[r]` and n_tok tokens; four tokens at a time so each
// weight load feeds four FMAs. Compiled twice (baseline and AVX2+FMA), picked at run time.
template <int kIsa>
__attribute__((always_inline)) inline void tile_impl(const float* const* w, int nr, const float* x, int64_t ldx, int64_t n_tok, int64_t k,
          float* y, int64_t ldy) {
  int64_t t = 0;
  for (; t + 4 <= n_tok; t += 4) {
    const float *x0 = x + t * ldx, *x1 = x0 + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx;
    for (int r = 0; r < nr; ++r) {
      const float* wr = w[r];
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
      for (int64_t i = 0; i < k; ++i) {
        const float a = wr[i];
        s0 += a * x0[i]; s1 += a * x1[i]; s2 += a * x2[i]; s3 += a * x3[i];
      }
      y[t * ldy + r] = s0; y[(t + 1) * ldy + r] = s1; y[(t + 2) * ldy + r] = s2; y[(t + 3) * ldy + r] = s3;
    }
  }
  for (; t < n_tok; ++t) {
    const float* xt = x + t * ldx;
    for (int r = 0; r < nr; ++r) {
      const float* wr = w[r];
      float s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < k; ++i) s += wr[i] * xt[i];
      y[t * ldy + r] = s;
    }
  }
}
template void tile_impl<0>(const float* const*, int, const float*, int64_t, int64_t, int64_t, float*, int64_t);

__attribute__((target("avx2,fma"))) void tile_avx2(const float* const* w, int nr, const float* x, int64_t ldx,
                                                    int64_t n_tok, int64_t k, float* y, int64_t ldy) {
  tile_impl<1>(w, nr, x, ldx, n_tok, k, y, ldy);
}

using TileFn = void (*)(const float* const*, int, const float*, int64_t, int64_t, int64_t, float*, int64_t);
bool cpu_has_avx2() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
TileFn pick_tile(bool simd) { return simd && cpu_has_avx2() ? tile_avx2 : tile_impl<0>; }
TileFn tile = pick_tile(std::getenv("SLIMLM_NO_SIMD") == nullptr);

// Integer path: each token's activations are quantized once, then every (row, token) is one
// integer dot. Rows go to threads in tiles; a tile's weights stay in L1 while all tokens pass.
void matmul_q8(const Tensor& w, const QDotTraits& q, const float* x, int64_t ldx, int64_t n_tok, float* y, int64_t ldy) {
  constexpr int64_t kTile = 32;
  const int64_t rows = w.rows(), k = w.cols();
  const size_t ab = act_row_bytes(q.act, k), rb = row_bytes(w.type, k);
  thread_local std::vector<uint8_t> act;  // grows to the largest batch, then stays
  if (act.size() < size_t(n_tok) * ab) act.resize(size_t(n_tok) * ab);
  uint8_t* a = act.data();
  const bool par = rows * k * n_tok > 32768;
#pragma omp parallel for schedule(static) if (par && n_tok > 1)
  for (int64_t t = 0; t < n_tok; ++t) quantize_act(q.act, x + t * ldx, a + size_t(t) * ab, k);
  const QDotFn dot = qdot_fn(q);
  const int64_t n_tiles = (rows + kTile - 1) / kTile;
#pragma omp parallel for schedule(static) if (par)
  for (int64_t ti = 0; ti < n_tiles; ++ti) {
    const int64_t r0 = ti * kTile, r1 = std::min(rows, r0 + kTile);
    for (int64_t t = 0; t < n_tok; ++t) {
      const uint8_t* at = a + size_t(t) * ab;
      float* yt = y + t * ldy;
      for (int64_t r = r0; r < r1; ++r) yt[r] = dot(w.data + size_t(r) * rb, at, k);
    }
  }
}
}  // namespace

const char* use_simd(bool on) {
  select_qdot_simd(on);
  tile = pick_tile(on);
  return tile == tile_avx2 ? "avx2+fma" : "baseline";
}

float dot(const float* a, const float* b, int64_t n) {
  float y = 0;
  tile(&a, 1, b, n, 1, n, &y, 1);
  return y;
}

namespace {
void matmul_dense(const Tensor& w, const float* x, int64_t ldx, int64_t n_tok, float* y, int64_t ldy) {
  // w8a8: int8 x int8 sums stay exact in int32 for rows up to 2^31 / 127² (> 131072) elements
  if (!exact() && is_w8a8(w.type) && w.cols() <= 131072) return matmul_w8a8(w, x, ldx, n_tok, y, ldy);
  if (matmul_half(w, x, ldx, n_tok, y, ldy)) return;  // f16 decode, N:M and bitmap sparse (sparse.h)
  if (!exact())
    if (const QDotTraits* q = find_qdot(w.type); q != nullptr && w.cols() % act_block(q->act) == 0)
      return matmul_q8(w, *q, x, ldx, n_tok, y, ldy);
  const int64_t rows = w.rows(), k = w.cols();
  const size_t rb = row_bytes(w.type, k);
  const bool direct = w.type == DType::F32;
  const bool f16c = w.type == DType::F16 && simd_enabled();  // exact conversion, F16C instructions
  const int64_t n_tiles = (rows + kRowTile - 1) / kRowTile;
#pragma omp parallel if (rows * k * n_tok > 32768)
  {
    std::vector<float> buf(direct ? 0 : size_t(kRowTile * k));
    const float* wp[kRowTile];
#pragma omp for schedule(static)
    for (int64_t ti = 0; ti < n_tiles; ++ti) {
      const int64_t r0 = ti * kRowTile;
      const int nr = int(std::min<int64_t>(kRowTile, rows - r0));
      for (int r = 0; r < nr; ++r) {
        const uint8_t* src = w.data + size_t(r0 + r) * rb;
        if (direct) {
          wp[r] = reinterpret_cast<const float*>(src);
        } else {
          if (f16c) avx2::f16_row_to_f32(src, buf.data() + r * k, k);
          else row_to_f32(w.type, src, buf.data() + r * k, k);
          wp[r] = buf.data() + r * k;
        }
      }
      tile(wp, nr, x, ldx, n_tok, k, y + r0, ldy);
    }
  }
}

}  // namespace

void matmul(const Tensor& w, const float* x, int64_t ldx, int64_t n_tok, float* y, int64_t ldy) {
  matmul_dense(w, x, ldx, n_tok, y, ldy);
  if (w.outliers) quant::apply(*w.outliers, x, ldx, n_tok, y, ldy);  // dense-and-sparse: + S·x
}

}  // namespace slimlm::kernels
