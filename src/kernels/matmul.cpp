// matmul for weights of any type: quantized weights with an integer kernel (kernels/qdot.h)
// multiply 8-bit quantized activations (llama.cpp's numerics); everything else, or every type
// in an ExactScope(true), is dequantized a few rows at a time into an f32 tile (exact path).
#include "core/error.h"
#include "kernels/kernels.h"
#include "kernels/gemm.h"
#include "kernels/qdot.h"
#include "core/dtype_custom.h"
#include "kernels/sparse.h"
#include "kernels/w8a8.h"
#include <cstdlib>
#include <cstring>
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
TileFn tile_fn() { return simd_enabled() ? tile_avx2 : tile_impl<0>; }

// Each token's activations quantized to the 8-bit type `act` (one row of act_row_bytes each),
// in a per-thread buffer that grows to the largest batch and stays valid until the next call.
const uint8_t* act_rows(DType act, const float* x, int64_t ldx, int64_t n_tok, int64_t k) {
  const size_t ab = act_row_bytes(act, k);
  thread_local std::vector<uint8_t> buf;
  if (buf.size() < size_t(n_tok) * ab) buf.resize(size_t(n_tok) * ab);
  uint8_t* a = buf.data();
#pragma omp parallel for schedule(static) if (n_tok * k > 32768)
  for (int64_t t = 0; t < n_tok; ++t) quantize_act(act, x + t * ldx, a + size_t(t) * ab, k);
  return a;
}

// Integer path: each token's activations are quantized once, then every (row, token) is one
// integer dot. Rows go to threads in tiles; a tile's weights stay in L1 while all tokens pass.
void matmul_q8(const Tensor& w, const QDotTraits& q, const float* x, int64_t ldx, int64_t n_tok, float* y, int64_t ldy) {
  constexpr int64_t kTile = 32;
  const int64_t rows = w.rows(), k = w.cols();
  const size_t ab = act_row_bytes(q.act, k), rb = row_bytes(w.type, k);
  const uint8_t* a = act_rows(q.act, x, ldx, n_tok, k);
  const bool par = rows * k * n_tok > 32768;
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

float dot(const float* a, const float* b, int64_t n) {
  float y = 0;
  tile_fn()(&a, 1, b, n, 1, n, &y, 1);
  return y;
}

namespace {
// The values an 8-bit activation row stands for (d · q per element).
void act_to_f32(DType act, const uint8_t* a, float* x, int64_t n) {
  // block by block: the scale converted once, the inner loop vectorizes
  const auto expand = [x](int64_t i0, int bs, float d, const int8_t* qs) {
    for (int j = 0; j < bs; ++j) x[i0 + j] = d * float(qs[j]);
  };
  if (act == DType::Q8_K) {
    const auto* b = reinterpret_cast<const BlockQ8_K*>(a);
    for (int64_t i = 0; i < n / 256; ++i) expand(i * 256, 256, b[i].d, b[i].qs);
  } else if (act == DType::Q8_1) {
    const auto* b = reinterpret_cast<const BlockQ8_1*>(a);
    for (int64_t i = 0; i < n / 32; ++i) expand(i * 32, 32, f16_to_f32(b[i].d), b[i].qs);
  } else {
    const auto* b = reinterpret_cast<const BlockQ8_0*>(a);
    for (int64_t i = 0; i < n / 32; ++i) expand(i * 32, 32, f16_to_f32(b[i].d), b[i].qs);
  }
}

// y[t][r] += Σ_b m[r][b] · (s[t][b] − d[t][b] · Σ_j q[t][b][j]) for q4_1/q5_1 weights (min m at
// byte 2 of each 32-weight block) and q8_1 activation blocks: what the integer kernel's f16-rounded
// block sums add to a GEMM of dequantized weights and 8-bit-rounded activations.
void min_term_correction(const Tensor& w, const uint8_t* aq, int64_t n_tok, float* y, int64_t ldy) {
  const int64_t rows = w.rows(), nb = w.cols() / 32;
  const size_t rb = row_bytes(w.type, w.cols()), bb = rb / size_t(nb);
  thread_local std::vector<float> delta, c;
  if (delta.size() < size_t(n_tok * nb)) delta.resize(size_t(n_tok * nb));
  if (c.size() < size_t(n_tok * rows)) c.resize(size_t(n_tok * rows));
  const auto* ab = reinterpret_cast<const BlockQ8_1*>(aq);
  for (int64_t i = 0; i < n_tok * nb; ++i) {
    int sum = 0;
    for (int j = 0; j < 32; ++j) sum += ab[i].qs[j];
    delta[size_t(i)] = f16_to_f32(ab[i].s) - f16_to_f32(ab[i].d) * float(sum);
  }
  const RowSource mins = [&](int64_t r0, int nr, float* dst, const float** wr) {
    for (int r = 0; r < nr; ++r) {
      const uint8_t* row = w.data + size_t(r0 + r) * rb;
      for (int64_t b = 0; b < nb; ++b) {
        uint16_t m;
        std::memcpy(&m, row + size_t(b) * bb + 2, 2);
        dst[r * nb + b] = f16_to_f32(m);
      }
      wr[r] = dst + r * nb;
    }
  };
  float* cp = c.data();  // thread_local: only its pointer goes into the parallel loop
  gemm_f32(mins, rows, nb, delta.data(), nb, n_tok, cp, rows);
#pragma omp parallel for schedule(static) if (n_tok * rows > 32768)
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t r = 0; r < rows; ++r) y[t * ldy + r] += cp[t * rows + r];
}

void matmul_dense(const Tensor& w, const float* x, int64_t ldx, int64_t n_tok, float* y, int64_t ldy) {
  // w8a8: int8 x int8 sums stay exact in int32 for rows up to 2^31 / 127² (> 131072) elements
  if (!exact() && is_w8a8(w.type) && w.cols() <= 131072) return matmul_w8a8(w, x, ldx, n_tok, y, ldy);
  if (matmul_half(w, x, ldx, n_tok, y, ldy)) return;  // f16 decode, N:M and bitmap sparse (sparse.h)
  // Many tokens: the register-blocked GEMM (gemm.h); SLIMLM_NO_GEMM=1 keeps the per-row paths
  // below for every batch size (for A/B measurements).
  static const bool no_gemm = std::getenv("SLIMLM_NO_GEMM") != nullptr;
  const bool gemm = !no_gemm && n_tok >= kGemmMinTok && simd_enabled();
  const QDotTraits* q8 = exact() ? nullptr : find_qdot(w.type);
  if (q8 != nullptr && w.cols() % act_block(q8->act) != 0) q8 = nullptr;
  // q4_1/q5_1: the integer kernel's min term is m_w · s_a with s_a = f16(d_a · Σq_a) (llama.cpp's
  // q8_1), where the GEMM of dequantized weights gives m_w · f16(d_a) · Σq_a; the difference is
  // added back after the GEMM as a second, 32x smaller product (min_term_correction).
  const bool min_term = w.type == DType::Q4_1 || w.type == DType::Q5_1;
  if (q8 != nullptr && !gemm)
    return matmul_q8(w, *q8, x, ldx, n_tok, y, ldy);
  const int64_t rows = w.rows(), k = w.cols();
  const size_t rb = row_bytes(w.type, k);
  const bool direct = w.type == DType::F32;
  const bool f16c = w.type == DType::F16 && simd_enabled();  // exact conversion, F16C instructions
  if (gemm) {
    const CustomLayout nl = is_sparse(w.type) ? custom_layout(w.type) : CustomLayout{};
    const bool nm24 = nl.kind == CustomKind::NM && nl.group == 4 && nl.keep == 2;
    const RowSource src = [&](int64_t r0, int nr, float* dst, const float** wr) {
      for (int r = 0; r < nr; ++r) {
        const uint8_t* row = w.data + size_t(r0 + r) * rb;
        if (direct) { wr[r] = reinterpret_cast<const float*>(row); continue; }
        if (f16c) avx2::f16_row_to_f32(row, dst + r * k, k);
        else if (nm24) avx2::nm24_row_to_f32(nl, row, dst + r * k, k);
        else row_to_f32(w.type, row, dst + r * k, k);
        wr[r] = dst + r * k;
      }
    };
    if (q8 == nullptr) return gemm_f32(src, rows, k, x, ldx, n_tok, y, ldy);
    // Integer-kernel numerics at GEMM speed: the activations are rounded to the same 8-bit grid
    // the integer path uses, then multiplied in f32 with the dequantized weights. Each product of
    // an f16-scaled int8 and a dequantized weight is exact in f32; only the summation order differs.
    thread_local std::vector<float> xq;
    if (xq.size() < size_t(n_tok * k)) xq.resize(size_t(n_tok * k));
    float* xqp = xq.data();
    const uint8_t* aq = act_rows(q8->act, x, ldx, n_tok, k);
    const size_t ab = act_row_bytes(q8->act, k);
#pragma omp parallel for schedule(static) if (n_tok * k > 32768)
    for (int64_t t = 0; t < n_tok; ++t) act_to_f32(q8->act, aq + size_t(t) * ab, xqp + t * k, k);
    gemm_f32(src, rows, k, xqp, k, n_tok, y, ldy);
    if (min_term) min_term_correction(w, aq, n_tok, y, ldy);
    return;
  }
  const int64_t n_tiles = (rows + kRowTile - 1) / kRowTile;
  const TileFn tile = tile_fn();
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

void matmul_f32_rows(const float* w, int64_t rows, int64_t k, const float* x, int64_t ldx, int64_t n_tok,
                     float* y, int64_t ldy) {
  Tensor t;
  t.type = DType::F32;
  t.ne = {k, rows};
  t.data = reinterpret_cast<const uint8_t*>(w);
  t.nbytes = size_t(rows * k) * 4;
  matmul_dense(t, x, ldx, n_tok, y, ldy);
}

void matmul(const Tensor& w, const float* x, int64_t ldx, int64_t n_tok, float* y, int64_t ldy) {
  matmul_dense(w, x, ldx, n_tok, y, ldy);
  if (w.outliers) w.outliers->apply(x, ldx, n_tok, y, ldy);  // dense-and-sparse: + S·x
}

}  // namespace slimlm::kernels
