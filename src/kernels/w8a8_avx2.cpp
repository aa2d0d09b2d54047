// AVX2 W8A8 GEMM (declared in src/kernels/w8a8.h): int8 weights and activations sign-extended
// to int16 and multiplied with _mm256_madd_epi16 (pairs summed into int32 lanes; no
// saturation, unlike maddubs on offset codes). A micro-tile of 4 rows x 2 tokens keeps 8
// accumulators in registers, so each weight load feeds two tokens and each activation load
// four rows. Same int32 sums and float operations as the reference: bit-identical.
#include "kernels/w8a8.h"
#include <cstring>
#include <immintrin.h>

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
inline __m256i widen16(const int8_t* p) {  // 16 int8 -> 16 int16
  return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// Σ_c w_r[c] · x_t[c] for R rows (w_r = codes of row r) and T tokens, into s[r][t].
template <int R, int T>
__attribute__((always_inline)) inline void tile(const int8_t* const* w, const int8_t* const* x, int64_t k, int32_t (*s)[2]) {
  __m256i acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_si256();
  int64_t c = 0;
  for (; c + 16 <= k; c += 16) {
    __m256i wv[R];
    for (int r = 0; r < R; ++r) wv[r] = widen16(w[r] + c);
    for (int t = 0; t < T; ++t) {
      const __m256i xv = widen16(x[t] + c);
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
void rows_tile(const int8_t* const* w, const int8_t* const* x, int nt, int64_t k, int32_t (*s)[2]) {
  if (nt == 2) tile<R, 2>(w, x, k, s); else tile<R, 1>(w, x, k, s);
}
}  // namespace

void gemm_w8a8(const uint8_t* w, int64_t rows, int64_t k, const int8_t* qx, const float* dx, int64_t n_tok,
               float* y, int64_t ldy) {
  const size_t rb = 4 + size_t(k);
  for (int64_t t0 = 0; t0 < n_tok; t0 += 2) {
    const int nt = n_tok - t0 >= 2 ? 2 : 1;
    const int8_t* x[2] = {qx + t0 * k, qx + (t0 + nt - 1) * k};
    for (int64_t r0 = 0; r0 < rows; r0 += 4) {
      const int nr = rows - r0 >= 4 ? 4 : int(rows - r0);
      const int8_t* wr[4];
      float dw[4];
      for (int r = 0; r < nr; ++r) {
        const uint8_t* row = w + size_t(r0 + r) * rb;
        std::memcpy(&dw[r], row, 4);
        wr[r] = reinterpret_cast<const int8_t*>(row + 4);
      }
      int32_t s[4][2];
      switch (nr) {
        case 4: rows_tile<4>(wr, x, nt, k, s); break;
        case 3: rows_tile<3>(wr, x, nt, k, s); break;
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
