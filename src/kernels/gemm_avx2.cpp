// AVX2+FMA f32 GEMM (see gemm.h). Layouts: packed activations [token panel][k][kGemmNr],
// packed weight slice [k-slice][kGemmMr]; both zero-padded at ragged edges, so the micro-kernel
// has no edge cases and only the stores are clipped.
#include "kernels/gemm.h"
#include <immintrin.h>
#include <omp.h>
#include <algorithm>
#include <vector>

namespace slimlm::kernels {

namespace {
constexpr int MR = kGemmMr, NR = kGemmNr;

// c (MR x NR) = [y +] a(kc x MR) · b(kc x NR)ᵀ, stored to y for nr rows and nt tokens. The twelve
// accumulators are named variables: GCC spills an accumulator array to the stack every step.
__attribute__((target("avx2,fma"))) void micro(const float* a, int64_t lda, const float* b, int64_t kc, bool accumulate,
                                               float* y, int64_t ldy, int nr, int nt) {
  static_assert(MR == 16 && NR == 6, "the micro-kernel is written for 16 x 6");
  alignas(32) float tmp[NR][MR] = {};
  if (accumulate)
    for (int j = 0; j < nt; ++j) {
      if (nr == MR) {
        _mm256_store_ps(tmp[j], _mm256_loadu_ps(y + j * ldy));
        _mm256_store_ps(tmp[j] + 8, _mm256_loadu_ps(y + j * ldy + 8));
      } else {
        for (int r = 0; r < nr; ++r) tmp[j][r] = y[j * ldy + r];
      }
    }
  __m256 c00 = _mm256_load_ps(tmp[0]), c01 = _mm256_load_ps(tmp[0] + 8);
  __m256 c10 = _mm256_load_ps(tmp[1]), c11 = _mm256_load_ps(tmp[1] + 8);
  __m256 c20 = _mm256_load_ps(tmp[2]), c21 = _mm256_load_ps(tmp[2] + 8);
  __m256 c30 = _mm256_load_ps(tmp[3]), c31 = _mm256_load_ps(tmp[3] + 8);
  __m256 c40 = _mm256_load_ps(tmp[4]), c41 = _mm256_load_ps(tmp[4] + 8);
  __m256 c50 = _mm256_load_ps(tmp[5]), c51 = _mm256_load_ps(tmp[5] + 8);
  for (int64_t i = 0; i < kc; ++i) {
    const __m256 a0 = _mm256_loadu_ps(a + i * lda), a1 = _mm256_loadu_ps(a + i * lda + 8);
    const float* bi = b + i * NR;
    __m256 bj = _mm256_broadcast_ss(bi + 0);
    c00 = _mm256_fmadd_ps(a0, bj, c00); c01 = _mm256_fmadd_ps(a1, bj, c01);
    bj = _mm256_broadcast_ss(bi + 1);
    c10 = _mm256_fmadd_ps(a0, bj, c10); c11 = _mm256_fmadd_ps(a1, bj, c11);
    bj = _mm256_broadcast_ss(bi + 2);
    c20 = _mm256_fmadd_ps(a0, bj, c20); c21 = _mm256_fmadd_ps(a1, bj, c21);
    bj = _mm256_broadcast_ss(bi + 3);
    c30 = _mm256_fmadd_ps(a0, bj, c30); c31 = _mm256_fmadd_ps(a1, bj, c31);
    bj = _mm256_broadcast_ss(bi + 4);
    c40 = _mm256_fmadd_ps(a0, bj, c40); c41 = _mm256_fmadd_ps(a1, bj, c41);
    bj = _mm256_broadcast_ss(bi + 5);
    c50 = _mm256_fmadd_ps(a0, bj, c50); c51 = _mm256_fmadd_ps(a1, bj, c51);
  }
  _mm256_store_ps(tmp[0], c00); _mm256_store_ps(tmp[0] + 8, c01);
  _mm256_store_ps(tmp[1], c10); _mm256_store_ps(tmp[1] + 8, c11);
  _mm256_store_ps(tmp[2], c20); _mm256_store_ps(tmp[2] + 8, c21);
  _mm256_store_ps(tmp[3], c30); _mm256_store_ps(tmp[3] + 8, c31);
  _mm256_store_ps(tmp[4], c40); _mm256_store_ps(tmp[4] + 8, c41);
  _mm256_store_ps(tmp[5], c50); _mm256_store_ps(tmp[5] + 8, c51);
  for (int j = 0; j < nt; ++j) {
    if (nr == MR) {
      _mm256_storeu_ps(y + j * ldy, _mm256_load_ps(tmp[j]));
      _mm256_storeu_ps(y + j * ldy + 8, _mm256_load_ps(tmp[j] + 8));
    } else {
      for (int r = 0; r < nr; ++r) y[j * ldy + r] = tmp[j][r];
    }
  }
}

template <class T>
struct AlignedBuf {  // 32-byte aligned scratch that grows and stays
  std::vector<T> v;
  T* get(size_t n) {
    if (v.size() < n + 32 / sizeof(T)) v.resize(n + 32 / sizeof(T));
    auto p = reinterpret_cast<uintptr_t>(v.data());
    return reinterpret_cast<T*>((p + 31) & ~uintptr_t(31));
  }
};
}  // namespace

void gemm_micro(const float* a, int64_t lda, const float* b, int64_t kc, bool accumulate, float* y, int64_t ldy,
                int nr, int nt) {
  micro(a, lda, b, kc, accumulate, y, ldy, nr, nt);
}

void gemm_f32(const RowSource& src, int64_t rows, int64_t k, const float* x, int64_t ldx, int64_t n_tok,
              float* y, int64_t ldy) {
  const int64_t n_tp = (n_tok + NR - 1) / NR, n_rp = (rows + MR - 1) / MR;
  static thread_local AlignedBuf<float> xbuf;
  float* xp = xbuf.get(size_t(n_tp * k * NR));
  const bool par = rows * k * n_tok > 32768;
#pragma omp parallel for schedule(static) if (par)
  for (int64_t p = 0; p < n_tp; ++p) {
    float* dst = xp + p * k * NR;
    const int nt = int(std::min<int64_t>(NR, n_tok - p * NR));
    for (int64_t i = 0; i < k; ++i)
      for (int j = 0; j < NR; ++j) dst[i * NR + j] = j < nt ? x[(p * NR + j) * ldx + i] : 0.f;
  }
#pragma omp parallel if (par)
  {
    static thread_local AlignedBuf<float> rowbuf, abuf;
    float* rb = rowbuf.get(size_t(MR * k));
    float* ap = abuf.get(size_t(MR * std::min(k, kGemmKc)));
    const float* wr[MR];
#pragma omp for schedule(static)
    for (int64_t rp = 0; rp < n_rp; ++rp) {
      const int64_t r0 = rp * MR;
      const int nr = int(std::min<int64_t>(MR, rows - r0));
      src(r0, nr, rb, wr);
      for (int64_t i0 = 0; i0 < k; i0 += kGemmKc) {
        const int64_t kc = std::min(kGemmKc, k - i0);
        for (int64_t i = 0; i < kc; ++i)
          for (int r = 0; r < MR; ++r) ap[i * MR + r] = r < nr ? wr[r][i0 + i] : 0.f;
        for (int64_t p = 0; p < n_tp; ++p) {
          const int nt = int(std::min<int64_t>(NR, n_tok - p * NR));
          micro(ap, MR, xp + p * k * NR + i0 * NR, kc, i0 > 0, y + p * NR * ldy + r0, ldy, nr, nt);
        }
      }
    }
  }
}

}  // namespace slimlm::kernels
