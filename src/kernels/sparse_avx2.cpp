// AVX2 kernels for f16-valued weights (declared in src/kernels/sparse.h); only called when the
// CPU has AVX2, FMA and F16C. Gather-free: a 2:4 row selects its activations with in-register
// permutes driven by a 256-entry table of index bytes; a bitmap row expands its packed values
// to their columns with a permute from a 256-entry table of mask bytes. Decode reads
// 1.125 bytes per weight (2:4) instead of 2 (dense f16): the win when memory bandwidth binds.
#include "kernels/sparse.h"
#include <array>
#include <cstring>
#include <immintrin.h>
#include <vector>

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#include "kernels/sparse_iter.h"

namespace slimlm::kernels::avx2 {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float f16(const uint8_t* p) { uint16_t h; std::memcpy(&h, p, 2); return _cvtsh_ss(h); }
inline __m256 load_f16x8(const uint8_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

// 2:4: one index byte covers two groups (four 2-bit indices, lowest first). The permute control
// for lanes 0..3 picks within the 8 activations of those two groups: {i0, i1, 4 + i2, 4 + i3}.
struct Nm24Table {
  alignas(16) std::array<std::array<int32_t, 4>, 256> ctrl;
  Nm24Table() {
    for (int b = 0; b < 256; ++b) ctrl[size_t(b)] = {b & 3, (b >> 2) & 3, 4 + ((b >> 4) & 3), 4 + (b >> 6)};
  }
};
const Nm24Table kNm24;

// Bitmap: for mask byte b, lane i takes packed value popcount(b & (2^i - 1)) when bit i is set;
// otherwise the control's sign bit is set and the lane is zeroed by blendv.
struct ExpandTable {
  alignas(32) std::array<std::array<int32_t, 8>, 256> ctrl;
  ExpandTable() {
    for (int b = 0; b < 256; ++b)
      for (int i = 0; i < 8; ++i)
        ctrl[size_t(b)][size_t(i)] = (b >> i & 1) ? __builtin_popcount(unsigned(b) & ((1u << i) - 1)) : int32_t(0x80000000u);
  }
};
const ExpandTable kExpand;

inline __m256 select24(const float* x, const uint8_t* ib) {  // 16 activations -> the 8 kept ones
  const __m256i ctrl = _mm256_set_m128i(_mm_load_si128(reinterpret_cast<const __m128i*>(kNm24.ctrl[ib[1]].data())),
                                        _mm_load_si128(reinterpret_cast<const __m128i*>(kNm24.ctrl[ib[0]].data())));
  const __m256 lo = _mm256_permutevar8x32_ps(_mm256_loadu_ps(x), ctrl);
  const __m256 hi = _mm256_permutevar8x32_ps(_mm256_loadu_ps(x + 8), ctrl);
  return _mm256_blend_ps(lo, hi, 0xF0);
}

inline __m256 expand(const uint8_t* vals, int b) {  // 8 packed f16 values -> lanes of mask byte b
  const __m256i ctrl = _mm256_load_si256(reinterpret_cast<const __m256i*>(kExpand.ctrl[size_t(b)].data()));
  const __m256 w = _mm256_permutevar8x32_ps(load_f16x8(vals), ctrl);
  return _mm256_blendv_ps(w, _mm256_setzero_ps(), _mm256_castsi256_ps(ctrl));
}
}  // namespace

float dot_f16(const uint8_t* row, const float* x, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_fmadd_ps(load_f16x8(row + 2 * i), _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(load_f16x8(row + 2 * i + 16), _mm256_loadu_ps(x + i + 8), a1);
    a2 = _mm256_fmadd_ps(load_f16x8(row + 2 * i + 32), _mm256_loadu_ps(x + i + 16), a2);
    a3 = _mm256_fmadd_ps(load_f16x8(row + 2 * i + 48), _mm256_loadu_ps(x + i + 24), a3);
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(load_f16x8(row + 2 * i), _mm256_loadu_ps(x + i), a0);
  float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; i < n; ++i) s += f16(row + 2 * i) * x[i];
  return s;
}

float dot_nm24(const uint8_t* row, const float* x, int64_t n) {
  const int64_t ng = (n + 3) / 4;
  const uint8_t* idx = row + 4 * ng;  // after 2 f16 values per group
  __m256 a0 = _mm256_setzero_ps(), a1 = a0;
  int64_t g = 0;  // groups done; 4 groups = 16 activations, 8 values, 2 index bytes
  for (; 4 * g + 32 <= n; g += 8) {
    a0 = _mm256_fmadd_ps(load_f16x8(row + 4 * g), select24(x + 4 * g, idx + g / 2), a0);
    a1 = _mm256_fmadd_ps(load_f16x8(row + 4 * g + 16), select24(x + 4 * g + 16, idx + g / 2 + 2), a1);
  }
  for (; 4 * g + 16 <= n; g += 4) a0 = _mm256_fmadd_ps(load_f16x8(row + 4 * g), select24(x + 4 * g, idx + g / 2), a0);
  float s = hsum(_mm256_add_ps(a0, a1));
  for (; g < ng; ++g)
    for (int k = 0; k < 2; ++k) {
      const int64_t slot = 2 * g + k, c = 4 * g + (idx[slot >> 2] >> (2 * (slot & 3)) & 3);
      if (c < n) s += f16(row + 2 * slot) * x[c];
    }
  return s;
}

float dot_bitmap(const uint8_t* row, int64_t cap, const float* x, int64_t n) {
  const int64_t nb = (n + 7) / 8;
  const uint8_t* vals = row + nb;
  __m256 a0 = _mm256_setzero_ps(), a1 = a0;
  int64_t j = 0, p = 0;  // mask bytes done, values consumed
  for (; 8 * j + 16 <= n && p + 16 <= cap; j += 2) {
    const int b0 = row[j], b1 = row[j + 1];
    const int64_t p1 = p + __builtin_popcount(unsigned(b0));
    a0 = _mm256_fmadd_ps(expand(vals + 2 * p, b0), _mm256_loadu_ps(x + 8 * j), a0);
    a1 = _mm256_fmadd_ps(expand(vals + 2 * p1, b1), _mm256_loadu_ps(x + 8 * j + 8), a1);
    p = p1 + __builtin_popcount(unsigned(b1));
  }
  float s = hsum(_mm256_add_ps(a0, a1));
  for (int64_t i = 8 * j; i < n && p < cap; ++i)
    if (row[i >> 3] >> (i & 7) & 1) s += f16(vals + 2 * p++) * x[i];
  return s;
}

void row_xt(const CustomLayout& l, const uint8_t* row, const float* xt, int64_t n, float* acc) {
  static_assert(kTokTile == 32);
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for_each_nonzero(l, row, n, [&](int64_t c, uint16_t h) {
    const __m256 v = _mm256_set1_ps(_cvtsh_ss(h));
    const float* xc = xt + c * kTokTile;
    a0 = _mm256_fmadd_ps(v, _mm256_loadu_ps(xc), a0);
    a1 = _mm256_fmadd_ps(v, _mm256_loadu_ps(xc + 8), a1);
    a2 = _mm256_fmadd_ps(v, _mm256_loadu_ps(xc + 16), a2);
    a3 = _mm256_fmadd_ps(v, _mm256_loadu_ps(xc + 24), a3);
  });
  _mm256_storeu_ps(acc, a0); _mm256_storeu_ps(acc + 8, a1); _mm256_storeu_ps(acc + 16, a2); _mm256_storeu_ps(acc + 24, a3);
}

void f16_row_to_f32(const uint8_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load_f16x8(src + 2 * i));
  for (; i < n; ++i) dst[i] = f16(src + 2 * i);
}

}  // namespace slimlm::kernels::avx2
#pragma GCC pop_options
