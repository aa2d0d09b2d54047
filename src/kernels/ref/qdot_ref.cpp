// Scalar references of the integer dot products (src/kernels/qdot.h): activation quantization
// to q8_0 / q8_1 / q8_K and one dot per weight block type, written element by element from
// the block layouts (docs/formats.md). The AVX2 paths are tested against these.
#include "core/dtype.h"
#include "core/dtype_blocks.h"
#include "kernels/qdot.h"
#include <algorithm>
#include <cmath>
#include <cstring>

// The AVX2 K-quant kernels reproduce these float operations exactly: no contraction to FMA.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace slimlm::kernels::ref {
namespace {

const uint8_t* bytes(const void* p) { return static_cast<const uint8_t*>(p); }
float f16(const uint8_t* p) { uint16_t h; std::memcpy(&h, p, 2); return f16_to_f32(h); }
uint32_t u32(const uint8_t* p) { uint32_t u; std::memcpy(&u, p, 4); return u; }

// Round to nearest, ties to even (what _mm256_round_ps and ggml's nearest_int do), for
// |v| < 2^22: adding 1.5 * 2^23 leaves the rounded integer in the low mantissa bits.
int nearest_int(float v) {
  const float t = v + 12582912.f;
  int32_t i;
  std::memcpy(&i, &t, 4);
  return (i & 0x007fffff) - 0x00400000;
}

// q8_0 / q8_1 as ggml's AVX2 quantize_row_q8_0/_1 (the path llama.cpp runs on x86): the
// multiplier is 127 / amax (not 1 / d) and rounding is to nearest even (the generic C
// reference uses roundf, ties away from zero; the two differ on rare ties).
template <bool kSum>
void quantize_q8_32(const float* x, void* dst, int64_t n) {
  uint8_t* y = static_cast<uint8_t*>(dst);
  constexpr size_t bb = kSum ? 36 : 34;
  for (int64_t i = 0; i < n / 32; ++i, x += 32, y += bb) {
    float amax = 0.f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.f;
    const float id = amax != 0.f ? 127.f / amax : 0.f;
    const uint16_t dh = f32_to_f16(d);
    std::memcpy(y, &dh, 2);
    int8_t* qs = reinterpret_cast<int8_t*>(y + (kSum ? 4 : 2));
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
      qs[j] = int8_t(nearest_int(x[j] * id));
      sum += qs[j];
    }
    if constexpr (kSum) {
      const uint16_t sh = f32_to_f16(d * float(sum));
      std::memcpy(y + 2, &sh, 2);
    }
  }
}

// ---- weight codes, element by element (layouts as in core/dtype_blocks.cpp)
// legacy blocks: byte j of qs holds element j (low nibble) and j+16 (high); bit j of qh is
// the fifth bit of element j.
int legacy_code(const uint8_t* qs, uint32_t qh, int bits, int j) {
  const int lo = j < 16 ? qs[j] & 0xF : qs[j - 16] >> 4;
  return bits == 5 ? lo | int((qh >> j) & 1) << 4 : lo;
}

// sum over a block of 32 of code(j) * a[j]
template <class Code>
int isum32(const int8_t* a, Code code) {
  int s = 0;
  for (int j = 0; j < 32; ++j) s += code(j) * a[j];
  return s;
}

int code2(const uint8_t* qs, int e) { return (qs[32 * (e / 128) + e % 32] >> (2 * (e % 128 / 32))) & 3; }

const BlockQ8_K* q8k(const void* a) { return static_cast<const BlockQ8_K*>(a); }

// Q4_K (kHigh false) / Q5_K: sub-block s of 32 has a 6-bit scale and min.
template <bool kHigh>
float dot_q45_k(const void* w, const void* a, int64_t n) {
  constexpr int bb = kHigh ? 176 : 144;
  const uint8_t* b = bytes(w);
  const BlockQ8_K* y = q8k(a);
  float sumf = 0.f;
  for (int64_t i = 0; i < n / 256; ++i, b += bb, ++y) {
    const uint8_t* qh = b + 16;
    const uint8_t* qs = b + (kHigh ? 48 : 16);
    int isum = 0, summs = 0;
    for (int s = 0; s < 8; ++s) {
      int sc, m;
      blocks::scale_min_k4(s, b + 4, sc, m);
      int si = 0;
      for (int l = 0; l < 32; ++l) {
        int q = (qs[32 * (s / 2) + l] >> (4 * (s % 2))) & 0xF;
        if constexpr (kHigh) q |= (qh[l] >> s & 1) << 4;
        si += q * y->qs[32 * s + l];
      }
      isum += sc * si;
      summs += m * (y->bsums[2 * s] + y->bsums[2 * s + 1]);
    }
    sumf += f16(b) * y->d * float(isum) - f16(b + 2) * y->d * float(summs);
  }
  return sumf;
}
}  // namespace

void quantize_row_q8_0(const float* x, void* y, int64_t n) { quantize_q8_32<false>(x, y, n); }
void quantize_row_q8_1(const float* x, void* y, int64_t n) { quantize_q8_32<true>(x, y, n); }

// q8_K as ggml's quantize_row_q8_K_ref: scale from the value of largest magnitude (first one
// on ties), codes clamped to <= 127, d = 1 / iscale, bsums per 16.
void quantize_row_q8_K(const float* x, void* dst, int64_t n) {
  BlockQ8_K* y = static_cast<BlockQ8_K*>(dst);
  for (int64_t i = 0; i < n / 256; ++i, x += 256, ++y) {
    float amax = 0.f, max = 0.f;
    for (int j = 0; j < 256; ++j)
      if (std::fabs(x[j]) > amax) { amax = std::fabs(x[j]); max = x[j]; }
    std::memset(y, 0, sizeof *y);
    if (amax == 0.f) continue;
    const float iscale = -127.f / max;
    for (int j = 0; j < 256; ++j) y->qs[j] = int8_t(std::min(127, nearest_int(iscale * x[j])));
    for (int j = 0; j < 256; ++j) y->bsums[j / 16] = int16_t(y->bsums[j / 16] + y->qs[j]);
    y->d = 1.f / iscale;
  }
}

// ---- legacy blocks: sum over blocks of (d_w * d_a) * isum [+ m_w * s_a]
float dot_q4_0(const void* w, const void* a, int64_t n) {
  const uint8_t* b = bytes(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  float s = 0.f;
  for (int64_t i = 0; i < n / 32; ++i, b += 18, ++y)
    s += f16(b) * f16_to_f32(y->d) * float(isum32(y->qs, [&](int j) { return legacy_code(b + 2, 0, 4, j) - 8; }));
  return s;
}

float dot_q4_1(const void* w, const void* a, int64_t n) {
  const uint8_t* b = bytes(w);
  const BlockQ8_1* y = static_cast<const BlockQ8_1*>(a);
  float s = 0.f;
  for (int64_t i = 0; i < n / 32; ++i, b += 20, ++y)
    s += f16(b) * f16_to_f32(y->d) * float(isum32(y->qs, [&](int j) { return legacy_code(b + 4, 0, 4, j); })) +
         f16(b + 2) * f16_to_f32(y->s);
  return s;
}

float dot_q5_0(const void* w, const void* a, int64_t n) {
  const uint8_t* b = bytes(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  float s = 0.f;
  for (int64_t i = 0; i < n / 32; ++i, b += 22, ++y)
    s += f16(b) * f16_to_f32(y->d) * float(isum32(y->qs, [&](int j) { return legacy_code(b + 6, u32(b + 2), 5, j) - 16; }));
  return s;
}

float dot_q5_1(const void* w, const void* a, int64_t n) {
  const uint8_t* b = bytes(w);
  const BlockQ8_1* y = static_cast<const BlockQ8_1*>(a);
  float s = 0.f;
  for (int64_t i = 0; i < n / 32; ++i, b += 24, ++y)
    s += f16(b) * f16_to_f32(y->d) * float(isum32(y->qs, [&](int j) { return legacy_code(b + 8, u32(b + 4), 5, j); })) +
         f16(b + 2) * f16_to_f32(y->s);
  return s;
}

float dot_q8_0(const void* w, const void* a, int64_t n) {
  const uint8_t* b = bytes(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  float s = 0.f;
  for (int64_t i = 0; i < n / 32; ++i, b += 34, ++y)
    s += f16(b) * f16_to_f32(y->d) * float(isum32(y->qs, [&](int j) { return int(int8_t(b[2 + j])); }));
  return s;
}

// ---- k-quants: per super-block an integer sum, then d_w * d_a * isum - dmin_w * d_a * summs
// Q2_K: scales[16] (scale | min << 4), qs[64], d, dmin.
float dot_q2_K(const void* w, const void* a, int64_t n) {
  const uint8_t* b = bytes(w);
  const BlockQ8_K* y = q8k(a);
  float sumf = 0.f;
  for (int64_t i = 0; i < n / 256; ++i, b += 84, ++y) {
    int isum = 0, summs = 0;
    for (int s = 0; s < 16; ++s) {
      int si = 0;
      for (int e = 16 * s; e < 16 * s + 16; ++e) si += code2(b + 16, e) * y->qs[e];
      isum += (b[s] & 0xF) * si;
      summs += (b[s] >> 4) * y->bsums[s];
    }
    sumf += f16(b + 80) * y->d * float(isum) - f16(b + 82) * y->d * float(summs);
  }
  return sumf;
}

// Q3_K: hmask[32], qs[64], scales[12] (sixteen 6-bit values, offset 32), d.
float dot_q3_K(const void* w, const void* a, int64_t n) {
  const uint8_t* b = bytes(w);
  const BlockQ8_K* y = q8k(a);
  float sumf = 0.f;
  for (int64_t i = 0; i < n / 256; ++i, b += 110, ++y) {
    const uint8_t* sc = b + 96;
    int isum = 0;
    for (int s = 0; s < 16; ++s) {
      const int low = s < 8 ? sc[s] & 0xF : sc[s - 8] >> 4;
      const int high = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
      int si = 0;
      for (int e = 16 * s; e < 16 * s + 16; ++e)
        si += (code2(b + 32, e) - ((b[e % 32] >> (e / 32) & 1) ? 0 : 4)) * y->qs[e];
      isum += ((low | high << 4) - 32) * si;
    }
    sumf += f16(b + 108) * y->d * float(isum);
  }
  return sumf;
}

float dot_q4_K(const void* w, const void* a, int64_t n) { return dot_q45_k<false>(w, a, n); }
float dot_q5_K(const void* w, const void* a, int64_t n) { return dot_q45_k<true>(w, a, n); }

// Q6_K: ql[128], qh[64], scales[16] (int8), d; codes offset by 32.
float dot_q6_K(const void* w, const void* a, int64_t n) {
  const uint8_t* b = bytes(w);
  const BlockQ8_K* y = q8k(a);
  float sumf = 0.f;
  for (int64_t i = 0; i < n / 256; ++i, b += 210, ++y) {
    int isum = 0;
    for (int s = 0; s < 16; ++s) {
      int si = 0;
      for (int e = 16 * s; e < 16 * s + 16; ++e) {
        const int half = e / 128, k = e % 128 / 32, l = e % 32;
        const int lo = (b[64 * half + l + 32 * (k % 2)] >> (4 * (k / 2))) & 0xF;
        si += ((lo | ((b[128 + 32 * half + l] >> (2 * k)) & 3) << 4) - 32) * y->qs[e];
      }
      isum += int(int8_t(b[192 + s])) * si;
    }
    sumf += f16(b + 208) * y->d * float(isum);
  }
  return sumf;
}

}  // namespace slimlm::kernels::ref
