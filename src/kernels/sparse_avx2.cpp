// AVX2 kernels for f16-valued weights (declared in src/kernels/sparse.h); only called when the
// CPU has AVX2, FMA and F16C. Gather-free: a 2:4 row selects its activations with in-register
// permutes whose controls come from the index bits by shifts; a bitmap row expands its packed values
// to their columns with a permute from a 256-entry table of mask bytes. Decode reads
// 1.125 bytes per weight (2:4) instead of 2 (dense f16): the win when memory bandwidth binds.
#include "kernels/sparse.h"
#include "core/dtype_sparse.h"  // before the target pragma: its inline functions stay baseline
#include <algorithm>
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

// 32 activations (8 groups) -> the 16 kept ones, controls computed from the 4 index bytes `w`
// (fewer instructions than two table loads per 16): lane j of half h uses bits 16h + 2j.
inline void select24x2(const float* x, uint32_t w, __m256& s0, __m256& s1) {
  const __m256i wv = _mm256_set1_epi32(int(w)), three = _mm256_set1_epi32(3);
  const __m256i odd = _mm256_setr_epi32(0, 0, 4, 4, 0, 0, 4, 4);  // second group of each pair
  const __m256i c0 = _mm256_or_si256(_mm256_and_si256(_mm256_srlv_epi32(wv, _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)), three), odd);
  const __m256i c1 = _mm256_or_si256(_mm256_and_si256(_mm256_srlv_epi32(wv, _mm256_setr_epi32(16, 18, 20, 22, 24, 26, 28, 30)), three), odd);
  s0 = _mm256_blend_ps(_mm256_permutevar8x32_ps(_mm256_loadu_ps(x), c0), _mm256_permutevar8x32_ps(_mm256_loadu_ps(x + 8), c0), 0xF0);
  s1 = _mm256_blend_ps(_mm256_permutevar8x32_ps(_mm256_loadu_ps(x + 16), c1), _mm256_permutevar8x32_ps(_mm256_loadu_ps(x + 24), c1), 0xF0);
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
  // Full chunks: 4 index bytes + 16 f16 values for 32 inputs (dtype_sparse.h), one stream.
  __m256 a0 = _mm256_setzero_ps(), a1 = a0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32, row += 36) {
    uint32_t w;
    std::memcpy(&w, row, 4);
    __m256 s0, s1;
    select24x2(x + i, w, s0, s1);
    a0 = _mm256_fmadd_ps(load_f16x8(row + 4), s0, a0);
    a1 = _mm256_fmadd_ps(load_f16x8(row + 20), s1, a1);
  }
  float s = hsum(_mm256_add_ps(a0, a1));
  const int64_t gl = (n - i + 3) / 4;  // groups in the last, short chunk
  const uint8_t* vals = row + (gl * 4 + 7) / 8;
  for (int64_t slot = 0; slot < 2 * gl; ++slot) {
    const int64_t c = i + 4 * (slot / 2) + (row[slot >> 2] >> (2 * (slot & 3)) & 3);
    if (c < n) s += f16(vals + 2 * slot) * x[c];
  }
  return s;
}

// Bitmap bytes j, j+1, ... while 16 inputs and 16 values remain (p: values consumed, lim: slots).
inline void bitmap_run(const uint8_t* bm, const uint8_t* vals, int64_t lim, const float* x, int64_t n, int64_t& j,
                       int64_t& p, __m256& a0, __m256& a1) {
  for (; 8 * j + 16 <= n && p + 16 <= lim; j += 2) {
    const int b0 = bm[j], b1 = bm[j + 1];
    const int64_t p1 = p + __builtin_popcount(unsigned(b0));
    a0 = _mm256_fmadd_ps(expand(vals + 2 * p, b0), _mm256_loadu_ps(x + 8 * j), a0);
    a1 = _mm256_fmadd_ps(expand(vals + 2 * p1, b1), _mm256_loadu_ps(x + 8 * j + 8), a1);
    p = p1 + __builtin_popcount(unsigned(b1));
  }
}

float dot_bitmap(const uint8_t* row, int64_t cap, const float* x, int64_t n) {
  const int64_t nb = (n + 7) / 8;
  const uint8_t* vals = row + nb;
  __m256 a0 = _mm256_setzero_ps(), a1 = a0;
  int64_t j = 0, p = 0;  // mask bytes done, values consumed
  bitmap_run(row, vals, cap, x, n, j, p, a0, a1);
  // Fewer than 16 values left: continue from a zero-padded copy (never read past the row).
  alignas(32) uint8_t tail[64] = {};
  std::memcpy(tail, vals + 2 * p, size_t(2 * std::min<int64_t>(cap - p, 16)));
  const int64_t left = std::min<int64_t>(cap - p, 16);
  int64_t q = 0;
  bitmap_run(row, tail, 32, x, n, j, q, a0, a1);
  float s = hsum(_mm256_add_ps(a0, a1));
  for (int64_t i = 8 * j; i < n && q < left; ++i)
    if (row[i >> 3] >> (i & 7) & 1) s += f16(tail + 2 * q++) * x[i];
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

void nm24_row_to_f32(const CustomLayout& l, const uint8_t* row, float* dst, int64_t n) {
  int64_t i = 0;
  alignas(32) float v[16];
  for (; i + 32 <= n; i += 32, row += 36) {  // full chunks: 4 index bytes, 16 f16 values
    uint32_t w;
    std::memcpy(&w, row, 4);
    _mm256_store_ps(v, load_f16x8(row + 4));
    _mm256_store_ps(v + 8, load_f16x8(row + 20));
    float* d = dst + i;
    for (int j = 0; j < 32; j += 8) _mm256_storeu_ps(d + j, _mm256_setzero_ps());
    for (int s = 0; s < 16; ++s) d[(s >> 1) * 4 + int(w >> (2 * s) & 3)] += v[s];  // += as the scalar decoder
  }
  if (i < n) sparse_row_to_f32(l, row, dst + i, n - i);
}

}  // namespace slimlm::kernels::avx2
#pragma GCC pop_options
