// AVX2 W8A8 GEMM (declared in src/kernels/w8a8.h): int8 weights and activations sign-extended
// to int16 and multiplied with _mm256_madd_epi16 (pairs summed into int32 lanes; no
// saturation, unlike maddubs on offset codes). Activations are widened to int16 once per call;
// a micro-tile of 2 rows x 4 tokens keeps 8 accumulators in registers (3 x 4 spills with GCC
// 12), so each weight vector feeds four tokens and each activation vector two rows. Same int32 sums and float operations as the reference: bit-identical.
#include "kernels/w8a8.h"
#include <algorithm>
#include <cstring>
#include <immintrin.h>
#include <vector>

#pragma GCC push_options
#pragma GCC target("avx2,fma")

namespace slimlm::kernels::avx2 {
namespace {

inline int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}
constexpr int kR = 2, kT = 4;  // micro-tile: 8 accumulators + 2 weight vectors + 1 activation vector (no spills)
inline __m256i widen16(const int8_t* p) {  // 16 int8 -> 16 int16
  return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// Σ_c w_r[c] · x_t[c] for R rows (int8 codes) and T tokens (codes widened to int16), into s[r][t].
template <int R, int T>
__attribute__((always_inline)) inline void tile(const int8_t* const* w, const int16_t* const* x, int64_t k, int32_t (*s)[kT]) {
  __m256i acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_si256();
  int64_t c = 0;
  for (; c + 16 <= k; c += 16) {
    __m256i wv[R];
    for (int r = 0; r < R; ++r) wv[r] = widen16(w[r] + c);
    for (int t = 0; t < T; ++t) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t] + c));
      for (int r = 0; r < R; ++r) acc[r][t] = _mm256_add_epi32(acc[r][t], _mm256_madd_epi16(wv[r], xv));
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) {
      int32_t v = hsum_i32(acc[r][t]);
      for (int64_t j = c; j < k; ++j) v += int32_t(w[r][j]) * int32_t(x[t][j]);
      s[r][t] = v;
    }
}

template <int R>
void rows_tile(const int8_t* const* w, const int16_t* const* x, int nt, int64_t k, int32_t (*s)[kT]) {
  switch (nt) {
    case 4: tile<R, 4>(w, x, k, s); break;
    case 3: tile<R, 3>(w, x, k, s); break;
    case 2: tile<R, 2>(w, x, k, s); break;
    default: tile<R, 1>(w, x, k, s); break;
  }
}
}  // namespace

void gemm_w8a8(const uint8_t* w, int64_t rows, int64_t k, const int8_t* qx, const float* dx, int64_t n_tok,
               float* y, int64_t ldy) {
  const size_t rb = 4 + size_t(k);
  thread_local std::vector<int16_t> x16;  // activations widened once per call, reused by every row
  if (x16.size() < size_t(n_tok * k)) x16.resize(size_t(n_tok * k));
  for (int64_t i = 0; i < n_tok * k; ++i) x16[size_t(i)] = qx[i];
  for (int64_t t0 = 0; t0 < n_tok; t0 += kT) {
    const int nt = int(std::min<int64_t>(kT, n_tok - t0));
    const int16_t* x[kT];
    for (int t = 0; t < nt; ++t) x[t] = x16.data() + (t0 + t) * k;
    for (int64_t r0 = 0; r0 < rows; r0 += kR) {
      const int nr = int(std::min<int64_t>(kR, rows - r0));
      const int8_t* wr[kR];
      float dw[kR];
      for (int r = 0; r < nr; ++r) {
        const uint8_t* row = w + size_t(r0 + r) * rb;
        std::memcpy(&dw[r], row, 4);
        wr[r] = reinterpret_cast<const int8_t*>(row + 4);
      }
      int32_t s[kR][kT];
      switch (nr) {
        case 2: rows_tile<2>(wr, x, nt, k, s); break;
        default: rows_tile<1>(wr, x, nt, k, s); break;
      }
      for (int r = 0; r < nr; ++r)
        for (int t = 0; t < nt; ++t) y[(t0 + t) * ldy + r0 + r] = dx[t0 + t] * dw[r] * float(s[r][t]);
    }
  }
}

}  // namespace slimlm::kernels::avx2

#pragma GCC pop_options
