// AVX2 integer dot products (declared in src/kernels/qdot.h); only called when the CPU has
// AVX2, FMA and F16C. K-quants give the same integer per super-block as the scalar reference
// and combine it with the same float operations (bit-identical); legacy blocks sum in 8 lanes.
#include "kernels/qdot.h"
#include "core/dtype.h"
#include <cstring>
#include <immintrin.h>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace slimlm::kernels::avx2 {
namespace {

const uint8_t* bytes(const void* p) { return static_cast<const uint8_t*>(p); }
inline float f16(const void* p) { uint16_t h; std::memcpy(&h, p, 2); return _cvtsh_ss(h); }
inline __m256i load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m256i bytes_of(int v) { return _mm256_set1_epi8(char(v)); }

inline int hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}
inline float hsum_f32(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 16 bytes of packed nibbles -> 32 bytes: the low nibbles (elements 0..15), then the high ones.
inline __m256i nibbles32(const uint8_t* p) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), bytes_of(0xF));
}
// 32 bits -> 32 bytes, byte j = 0x10 if bit j is set (the fifth bit of a 5-bit code).
inline __m256i fifth_bits32(const uint8_t* p) {
  uint32_t x;
  std::memcpy(&x, p, 4);
  const __m256i spread = _mm256_shuffle_epi8(  // byte j <- byte j / 8 of x
      _mm256_set1_epi32(int(x)), _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), bytes_of(0x10));
}
// Bits [shift, shift + width) of every byte.
inline __m256i field(__m256i v, int shift, int mask) {
  return _mm256_and_si256(_mm256_srli_epi16(v, shift), bytes_of(mask));
}
// u (unsigned bytes) times s (signed bytes), pairs summed to int16, then times the int16
// multipliers `m` with pairs summed to int32 (8 lanes).
inline __m256i dot_u8_i8(__m256i u, __m256i s, __m256i m) { return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), m); }
inline __m256i dot_u8_i8(__m256i u, __m256i s) { return dot_u8_i8(u, s, _mm256_set1_epi16(1)); }
inline __m256i dot_i8_i8(__m256i x, __m256i y) { return dot_u8_i8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x)); }
// int16 multipliers: lo for the first 16 bytes, hi for the last 16.
inline __m256i scales2(int lo, int hi) { return _mm256_set_m128i(_mm_set1_epi16(short(hi)), _mm_set1_epi16(short(lo))); }

using CodesFn = __m256i (*)(const uint8_t*, __m256i);
// Legacy blocks of 32 (kBytes each): sum of (d_w * d_a) * codes(b, a) [+ m_w * s_a if kMin].
template <int kBytes, bool kMin, class Act, CodesFn codes>
float dot_legacy(const void* w, const void* a, int64_t n) {
  const uint8_t* b = bytes(w);
  const Act* y = static_cast<const Act*>(a);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  float summ = 0.f;
  const int64_t nb = n / 32;
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2, b += 2 * kBytes, y += 2) {
    const __m256 d0 = _mm256_set1_ps(f16(b) * _cvtsh_ss(y[0].d));
    const __m256 d1 = _mm256_set1_ps(f16(b + kBytes) * _cvtsh_ss(y[1].d));
    acc0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(codes(b, load(y[0].qs))), acc0);
    acc1 = _mm256_fmadd_ps(d1, _mm256_cvtepi32_ps(codes(b + kBytes, load(y[1].qs))), acc1);
    if constexpr (kMin) summ += f16(b + 2) * _cvtsh_ss(y[0].s) + f16(b + kBytes + 2) * _cvtsh_ss(y[1].s);
  }
  for (; i < nb; ++i, b += kBytes, ++y) {
    const __m256 d = _mm256_set1_ps(f16(b) * _cvtsh_ss(y->d));
    acc0 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(codes(b, load(y->qs))), acc0);
    if constexpr (kMin) summ += f16(b + 2) * _cvtsh_ss(y->s);
  }
  return hsum_f32(_mm256_add_ps(acc0, acc1)) + summ;
}

const BlockQ8_K* q8k(const void* a) { return static_cast<const BlockQ8_K*>(a); }

void scale_min_k4(const uint8_t* s, int sc[8], int m[8]) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = s[j] & 63;
    m[j] = s[j + 4] & 63;
    sc[j + 4] = (s[j + 8] & 0xF) | (s[j] >> 6) << 4;
    m[j + 4] = (s[j + 8] >> 4) | (s[j + 4] >> 6) << 4;
  }
}

template <bool kHigh>
float dot_q45_k(const void* w, const void* a, int64_t n) {
  constexpr int bb = kHigh ? 176 : 144;
  const uint8_t* b = bytes(w);
  const BlockQ8_K* y = q8k(a);
  float sumf = 0.f;
  for (int64_t i = 0; i < n / 256; ++i, b += bb, ++y) {
    int sc[8], m[8];
    scale_min_k4(b + 4, sc, m);
    int summs = 0;
    for (int s = 0; s < 8; ++s) summs += m[s] * (y->bsums[2 * s] + y->bsums[2 * s + 1]);
    const uint8_t* qs = b + (kHigh ? 48 : 16);
    __m256i hb = kHigh ? load(b + 16) : _mm256_setzero_si256();
    __m256i acc = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {
      const __m256i q = load(qs + 32 * j);
      __m256i lo = _mm256_and_si256(q, bytes_of(0xF)), hi = field(q, 4, 0xF);
      if constexpr (kHigh) {
        lo = _mm256_or_si256(lo, _mm256_slli_epi16(field(hb, 2 * j, 1), 4));
        hi = _mm256_or_si256(hi, _mm256_slli_epi16(field(hb, 2 * j + 1, 1), 4));
      }
      acc = _mm256_add_epi32(acc, dot_u8_i8(lo, load(y->qs + 64 * j), _mm256_set1_epi16(short(sc[2 * j]))));
      acc = _mm256_add_epi32(acc, dot_u8_i8(hi, load(y->qs + 64 * j + 32), _mm256_set1_epi16(short(sc[2 * j + 1]))));
    }
    sumf += f16(b) * y->d * float(hsum_i32(acc)) - f16(b + 2) * y->d * float(summs);
  }
  return sumf;
}
}  // namespace

// Per legacy type: the 32 weight codes of block `b` times activations `y`, in 8 int32 lanes.
static inline __m256i codes_q4_0(const uint8_t* b, __m256i y) { return dot_i8_i8(_mm256_sub_epi8(nibbles32(b + 2), bytes_of(8)), y); }
static inline __m256i codes_q4_1(const uint8_t* b, __m256i y) { return dot_u8_i8(nibbles32(b + 4), y); }
static inline __m256i codes_q5_0(const uint8_t* b, __m256i y) {
  return dot_i8_i8(_mm256_sub_epi8(_mm256_or_si256(nibbles32(b + 6), fifth_bits32(b + 2)), bytes_of(16)), y);
}
static inline __m256i codes_q5_1(const uint8_t* b, __m256i y) { return dot_u8_i8(_mm256_or_si256(nibbles32(b + 8), fifth_bits32(b + 4)), y); }
static inline __m256i codes_q8_0(const uint8_t* b, __m256i y) { return dot_i8_i8(load(b + 2), y); }

float dot_q4_0(const void* w, const void* a, int64_t n) { return dot_legacy<18, false, BlockQ8_0, codes_q4_0>(w, a, n); }
float dot_q4_1(const void* w, const void* a, int64_t n) { return dot_legacy<20, true, BlockQ8_1, codes_q4_1>(w, a, n); }
float dot_q5_0(const void* w, const void* a, int64_t n) { return dot_legacy<22, false, BlockQ8_0, codes_q5_0>(w, a, n); }
float dot_q5_1(const void* w, const void* a, int64_t n) { return dot_legacy<24, true, BlockQ8_1, codes_q5_1>(w, a, n); }
float dot_q8_0(const void* w, const void* a, int64_t n) { return dot_legacy<34, false, BlockQ8_0, codes_q8_0>(w, a, n); }

// Q2_K: 2-bit codes; group g (32 elements) of half h = g / 4 is bits 2(g%4) of qs[32h ..].
float dot_q2_K(const void* w, const void* a, int64_t n) {
  const uint8_t* b = bytes(w);
  const BlockQ8_K* y = q8k(a);
  float sumf = 0.f;
  for (int64_t i = 0; i < n / 256; ++i, b += 84, ++y) {
    int summs = 0;
    for (int s = 0; s < 16; ++s) summs += (b[s] >> 4) * y->bsums[s];
    __m256i acc = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i q = load(b + 16 + 32 * h);
      for (int k = 0; k < 4; ++k) {
        const int g = 4 * h + k;
        acc = _mm256_add_epi32(acc, dot_u8_i8(field(q, 2 * k, 3), load(y->qs + 32 * g), scales2(b[2 * g] & 0xF, b[2 * g + 1] & 0xF)));
      }
    }
    sumf += f16(b + 80) * y->d * float(hsum_i32(acc)) - f16(b + 82) * y->d * float(summs);
  }
  return sumf;
}

// Q3_K: code + 4 * hbit in 0..7 times a, minus 4 * sum(a) per sub-block (from bsums).
float dot_q3_K(const void* w, const void* a, int64_t n) {
  const uint8_t* b = bytes(w);
  const BlockQ8_K* y = q8k(a);
  float sumf = 0.f;
  for (int64_t i = 0; i < n / 256; ++i, b += 110, ++y) {
    const uint8_t* sc = b + 96;
    int scale[16], corr = 0;
    for (int s = 0; s < 16; ++s) {
      const int low = s < 8 ? sc[s] & 0xF : sc[s - 8] >> 4;
      scale[s] = (low | ((sc[8 + s % 4] >> (2 * (s / 4))) & 3) << 4) - 32;
      corr += scale[s] * y->bsums[s];
    }
    const __m256i hm = load(b);
    __m256i acc = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i q = load(b + 32 + 32 * h);
      for (int k = 0; k < 4; ++k) {
        const int g = 4 * h + k;
        const __m256i u = _mm256_or_si256(field(q, 2 * k, 3), _mm256_slli_epi16(field(hm, g, 1), 2));
        acc = _mm256_add_epi32(acc, dot_u8_i8(u, load(y->qs + 32 * g), scales2(scale[2 * g], scale[2 * g + 1])));
      }
    }
    sumf += f16(b + 108) * y->d * float(hsum_i32(acc) - 4 * corr);
  }
  return sumf;
}

float dot_q4_K(const void* w, const void* a, int64_t n) { return dot_q45_k<false>(w, a, n); }
float dot_q5_K(const void* w, const void* a, int64_t n) { return dot_q45_k<true>(w, a, n); }

// Q6_K: 6-bit codes 0..63 times a, minus 32 * sum(a) per sub-block.
float dot_q6_K(const void* w, const void* a, int64_t n) {
  const uint8_t* b = bytes(w);
  const BlockQ8_K* y = q8k(a);
  float sumf = 0.f;
  for (int64_t i = 0; i < n / 256; ++i, b += 210, ++y) {
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
    int corr = 0;
    for (int s = 0; s < 16; ++s) corr += sc[s] * y->bsums[s];
    __m256i acc = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i ql0 = load(b + 64 * h), ql1 = load(b + 64 * h + 32), qh = load(b + 128 + 32 * h);
      for (int k = 0; k < 4; ++k) {
        const __m256i lo = field(k % 2 ? ql1 : ql0, 4 * (k / 2), 0xF);
        const __m256i u = _mm256_or_si256(lo, _mm256_slli_epi16(field(qh, 2 * k, 3), 4));
        const int s = 8 * h + 2 * k;
        acc = _mm256_add_epi32(acc, dot_u8_i8(u, load(y->qs + 128 * h + 32 * k), scales2(sc[s], sc[s + 1])));
      }
    }
    sumf += f16(b + 208) * y->d * float(hsum_i32(acc) - 32 * corr);
  }
  return sumf;
}

inline float hmax_f32(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}
// Four vectors of eight int32 codes (each within int8) stored as 32 int8 in order: the packs
// interleave 128-bit lanes, the permute undoes it.
inline void store_i8x32(const __m256i q[4], void* dst) {
  const __m256i p8 = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
  _mm256_storeu_si256(static_cast<__m256i*>(dst), _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

// q8_0 / q8_1 activation rows, bit-identical to ref::quantize_row_q8_0/_1: the same amax, the
// same multiplier 127 / amax, rounding to nearest even (_mm256_round_ps under the default MXCSR
// mode, exact for |x · id| <= 127), the scale rounded to f16 by the same scalar routine.
template <bool kSum>
void quantize_q8_32(const float* x, void* dst, int64_t n) {
  uint8_t* y = static_cast<uint8_t*>(dst);
  constexpr size_t bb = kSum ? 36 : 34;
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t i = 0; i < n / 32; ++i, x += 32, y += bb) {
    __m256 v[4];
    for (int j = 0; j < 4; ++j) v[j] = _mm256_loadu_ps(x + 8 * j);
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
                             _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
    const float amax = hmax_f32(m);
    const float d = amax / 127.f;
    const float id = amax != 0.f ? 127.f / amax : 0.f;
    const uint16_t dh = f32_to_f16(d);
    std::memcpy(y, &dh, 2);
    const __m256 vid = _mm256_set1_ps(id);
    __m256i q[4];
    for (int j = 0; j < 4; ++j)
      q[j] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[j], vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    if constexpr (kSum) {
      const int sum = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
      const uint16_t sh = f32_to_f16(d * float(sum));
      std::memcpy(y + 2, &sh, 2);
    }
    store_i8x32(q, y + (kSum ? 4 : 2));
  }
}

void quantize_row_q8_0(const float* x, void* y, int64_t n) { quantize_q8_32<false>(x, y, n); }
void quantize_row_q8_1(const float* x, void* y, int64_t n) { quantize_q8_32<true>(x, y, n); }

// q8_K, bit-identical to ref::quantize_row_q8_K: the scale from the first element of largest
// magnitude, codes nearest-even and clamped to <= 127, bsums per 16.
void quantize_row_q8_K(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_K*>(dst);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t i = 0; i < n / 256; ++i, x += 256, ++y) {
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < 256; j += 8) m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)), m);  // NaN ignored
    const float amax = hmax_f32(m);
    std::memset(y, 0, sizeof *y);
    if (!(amax > 0.f)) continue;
    float max = 0.f;
    const __m256 va = _mm256_set1_ps(amax);
    for (int j = 0; j < 256; j += 8) {
      const int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)), va, _CMP_EQ_OQ));
      if (hit != 0) { max = x[j + __builtin_ctz(unsigned(hit))]; break; }
    }
    const float iscale = -127.f / max;
    const __m256 vs = _mm256_set1_ps(iscale);
    const __m256i top = _mm256_set1_epi32(127);
    for (int j = 0; j < 256; j += 32) {
      __m256i q[4];
      for (int u = 0; u < 4; ++u)
        q[u] = _mm256_min_epi32(top, _mm256_cvtps_epi32(_mm256_round_ps(
                                         _mm256_mul_ps(vs, _mm256_loadu_ps(x + j + 8 * u)),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
      y->bsums[j / 16] = int16_t(hsum_i32(_mm256_add_epi32(q[0], q[1])));
      y->bsums[j / 16 + 1] = int16_t(hsum_i32(_mm256_add_epi32(q[2], q[3])));
      store_i8x32(q, y->qs + j);
    }
    y->d = 1.f / iscale;
  }
}

}  // namespace slimlm::kernels::avx2

#pragma GCC pop_options
