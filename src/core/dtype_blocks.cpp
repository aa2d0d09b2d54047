// Block formats of GGUF/ggml, scalar: dequantization bit-identical to ggml's dequantize_row_*
// (same float operations in the same order) and round-to-nearest quantization following ggml's
// quantize_row_*_ref, so a tensor slimlm writes is the one llama.cpp would write.
#include "core/dtype_blocks.h"
#include "core/dtype.h"
#include <cmath>
#include <cstring>

// Bit-exactness needs every product rounded before the add: no fused multiply-add contraction.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace slimlm::blocks {
namespace {

constexpr int kQ = 32;    // elements per legacy block (q4_0 … q8_0)
constexpr int kQK = 256;  // elements per k-quant super-block

const uint8_t* bytes_of(const void* p) { return static_cast<const uint8_t*>(p); }
uint8_t* bytes_of(void* p) { return static_cast<uint8_t*>(p); }
float load_f16(const uint8_t* p) { uint16_t h; std::memcpy(&h, p, 2); return f16_to_f32(h); }
uint32_t load_u32(const uint8_t* p) { uint32_t u; std::memcpy(&u, p, 4); return u; }

// int(v), i.e. truncation, clamped to [lo, hi]; NaN gives 0. ggml casts without the clamp, which
// agrees for every finite input (the clamp only removes undefined behaviour).
int clamp_trunc(float v, int lo, int hi) {
  if (!(v == v)) return 0;
  return v <= float(lo) ? lo : v >= float(hi) ? hi : int(v);
}

// ---- legacy blocks: 32 codes of 4 or 5 bits; byte j of qs holds element j (low nibble) and
// element j+16 (high nibble); the fifth bit of element j is bit j of the 32-bit qh.
void unpack_codes(const uint8_t* qs, uint32_t qh, int q[kQ]) {
  for (int j = 0; j < kQ / 2; ++j) {
    q[j] = (qs[j] & 0xF) | int((qh >> j) & 1) << 4;
    q[j + kQ / 2] = (qs[j] >> 4) | int((qh >> (j + kQ / 2)) & 1) << 4;
  }
}

uint32_t pack_codes(const int q[kQ], uint8_t* qs) {  // returns qh
  uint32_t qh = 0;
  for (int j = 0; j < kQ / 2; ++j) {
    qs[j] = uint8_t((q[j] & 0xF) | (q[j + kQ / 2] & 0xF) << 4);
    qh |= uint32_t((q[j] >> 4) & 1) << j | uint32_t((q[j + kQ / 2] >> 4) & 1) << (j + kQ / 2);
  }
  return qh;
}

// Layout: d (f16), [m (f16) if kMin], [qh (u32) if kBits == 5], qs[16].
template <int kBits, bool kMin>
struct Legacy {
  static constexpr int bytes = 2 + (kMin ? 2 : 0) + (kBits == 5 ? 4 : 0) + kQ / 2;
  static constexpr int offset = kMin ? 0 : 1 << (kBits - 1);  // symmetric codes are centred
  static constexpr int qh_at = kMin ? 4 : 2;

  static void to_f32(const void* src, float* y, int64_t n) {
    const uint8_t* b = bytes_of(src);
    for (int64_t i = 0; i < n / kQ; ++i, b += bytes, y += kQ) {
      const float d = load_f16(b);
      const float m = kMin ? load_f16(b + 2) : 0.0f;
      int q[kQ];
      unpack_codes(b + bytes - kQ / 2, kBits == 5 ? load_u32(b + qh_at) : 0, q);
      for (int j = 0; j < kQ; ++j) {
        if constexpr (kMin) y[j] = float(q[j]) * d + m;
        else y[j] = float(q[j] - offset) * d;
      }
    }
  }

  static void from_f32(const float* x, void* dst, int64_t n) {
    constexpr int hi = (1 << kBits) - 1;
    uint8_t* b = bytes_of(dst);
    for (int64_t i = 0; i < n / kQ; ++i, b += bytes, x += kQ) {
      int q[kQ];
      if constexpr (kMin) {  // asymmetric: [min, max] onto 0..hi
        float lo = 3.402823466e+38f, up = -3.402823466e+38f;
        for (int j = 0; j < kQ; ++j) { if (x[j] < lo) lo = x[j]; if (x[j] > up) up = x[j]; }
        const float d = (up - lo) / float(hi);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        put_f16(b, d);
        put_f16(b + 2, lo);
        for (int j = 0; j < kQ; ++j) q[j] = clamp_trunc((x[j] - lo) * id + 0.5f, 0, hi);
      } else {  // symmetric: the value of largest magnitude maps to code 0 (−offset · d)
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < kQ; ++j)
          if (amax < std::fabs(x[j])) { amax = std::fabs(x[j]); max = x[j]; }
        const float d = max / float(-offset);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        put_f16(b, d);
        for (int j = 0; j < kQ; ++j) q[j] = clamp_trunc(x[j] * id + (float(offset) + 0.5f), 0, hi);
      }
      const uint32_t qh = pack_codes(q, b + bytes - kQ / 2);
      if constexpr (kBits == 5) std::memcpy(b + qh_at, &qh, 4);
    }
  }
};

// ---- k-quants. Q2_K and Q3_K: each half of 128 elements uses 32 bytes of 2-bit codes; byte l
// holds elements l, l+32, l+64, l+96 at shifts 0, 2, 4, 6.
int code2(const uint8_t* qs, int e) { return (qs[32 * (e / 128) + e % 32] >> (2 * (e % 128 / 32))) & 3; }

// Q4_K (kHigh false) and Q5_K: d, dmin (f16), scales[12], [qh[32]], qs[128]. In each 64-element
// group g, byte l of its 32 qs bytes holds element l (low nibble) and l+32 (high nibble); the
// fifth bit of sub-block 2g+h is bit 2g+h of qh[l].
template <bool kHigh>
void q45_k_to_f32(const void* src, float* y, int64_t n) {
  constexpr int bytes = kHigh ? 176 : 144;
  const uint8_t* b = bytes_of(src);
  for (int64_t i = 0; i < n / kQK; ++i, b += bytes) {
    const float d = load_f16(b), dmin = load_f16(b + 2);
    const uint8_t* scales = b + 4;
    const uint8_t* qh = b + 16;
    const uint8_t* qs = b + (kHigh ? 48 : 16);
    for (int s = 0; s < 8; ++s) {  // sub-blocks of 32
      int sc, m;
      scale_min_k4(s, scales, sc, m);
      const float d1 = d * float(sc), m1 = dmin * float(m);
      for (int l = 0; l < 32; ++l) {
        int q = (qs[32 * (s / 2) + l] >> (4 * (s % 2))) & 0xF;
        if constexpr (kHigh) q += (qh[l] >> s & 1) ? 16 : 0;
        *y++ = d1 * float(q) - m1;
      }
    }
  }
}

}  // namespace

// Q4_K/Q5_K: eight 6-bit (scale, min) pairs packed in 12 bytes (ggml's get_scale_min_k4).
void scale_min_k4(int j, const uint8_t* s, int& sc, int& m) {
  if (j < 4) {
    sc = s[j] & 63;
    m = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0xF) | (s[j - 4] >> 6) << 4;
    m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
  }
}

// ---- f32, f16, bf16
void f32_to_f32(const void* src, float* dst, int64_t n) { std::memcpy(dst, src, size_t(n) * 4); }
void f32_from_f32(const float* src, void* dst, int64_t n) { std::memcpy(dst, src, size_t(n) * 4); }

void f16_to_f32_row(const void* src, float* dst, int64_t n) {
  const uint8_t* b = bytes_of(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = load_f16(b + 2 * i);
}
void f16_from_f32_row(const float* src, void* dst, int64_t n) {
  uint8_t* b = bytes_of(dst);
  for (int64_t i = 0; i < n; ++i) put_f16(b + 2 * i, src[i]);
}
void bf16_to_f32_row(const void* src, float* dst, int64_t n) {
  const uint8_t* b = bytes_of(src);
  for (int64_t i = 0; i < n; ++i) { uint16_t h; std::memcpy(&h, b + 2 * i, 2); dst[i] = bf16_to_f32(h); }
}
void bf16_from_f32_row(const float* src, void* dst, int64_t n) {
  uint8_t* b = bytes_of(dst);
  for (int64_t i = 0; i < n; ++i) { const uint16_t h = f32_to_bf16(src[i]); std::memcpy(b + 2 * i, &h, 2); }
}
void i32_to_f32_row(const void* src, float* dst, int64_t n) {
  const uint8_t* b = bytes_of(src);
  for (int64_t i = 0; i < n; ++i) { int32_t v; std::memcpy(&v, b + 4 * i, 4); dst[i] = float(v); }
}

// ---- legacy blocks
void q4_0_to_f32(const void* s, float* d, int64_t n) { Legacy<4, false>::to_f32(s, d, n); }
void q4_0_from_f32(const float* s, void* d, int64_t n) { Legacy<4, false>::from_f32(s, d, n); }
void q4_1_to_f32(const void* s, float* d, int64_t n) { Legacy<4, true>::to_f32(s, d, n); }
void q4_1_from_f32(const float* s, void* d, int64_t n) { Legacy<4, true>::from_f32(s, d, n); }
void q5_0_to_f32(const void* s, float* d, int64_t n) { Legacy<5, false>::to_f32(s, d, n); }
void q5_0_from_f32(const float* s, void* d, int64_t n) { Legacy<5, false>::from_f32(s, d, n); }
void q5_1_to_f32(const void* s, float* d, int64_t n) { Legacy<5, true>::to_f32(s, d, n); }
void q5_1_from_f32(const float* s, void* d, int64_t n) { Legacy<5, true>::from_f32(s, d, n); }

// Q8_0: d (f16), qs[32] (int8).
void q8_0_to_f32(const void* src, float* y, int64_t n) {
  const uint8_t* b = bytes_of(src);
  for (int64_t i = 0; i < n / kQ; ++i, b += 34, y += kQ) {
    const float d = load_f16(b);
    for (int j = 0; j < kQ; ++j) y[j] = float(int8_t(b[2 + j])) * d;
  }
}
void q8_0_from_f32(const float* x, void* dst, int64_t n) {
  uint8_t* b = bytes_of(dst);
  for (int64_t i = 0; i < n / kQ; ++i, b += 34, x += kQ) {
    float amax = 0.0f;
    for (int j = 0; j < kQ; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_f16(b, d);
    for (int j = 0; j < kQ; ++j) b[2 + j] = uint8_t(int8_t(clamp_trunc(std::round(x[j] * id), -127, 127)));
  }
}

// ---- k-quants
// Q2_K: scales[16] (4-bit scale | 4-bit min), qs[64], d, dmin (f16). 16 sub-blocks of 16.
void q2_k_to_f32(const void* src, float* y, int64_t n) {
  const uint8_t* b = bytes_of(src);
  for (int64_t i = 0; i < n / kQK; ++i, b += 84) {
    const uint8_t* qs = b + 16;
    const float d = load_f16(b + 80), dmin = load_f16(b + 82);
    for (int s = 0; s < 16; ++s) {
      const float dl = d * float(b[s] & 0xF), ml = dmin * float(b[s] >> 4);
      for (int e = 16 * s; e < 16 * s + 16; ++e) *y++ = dl * float(code2(qs, e)) - ml;
    }
  }
}

// Q3_K: hmask[32], qs[64], scales[12] (sixteen 6-bit values, offset 32), d (f16). Element e
// subtracts 4 unless bit e/32 of hmask[e%32] is set.
void q3_k_to_f32(const void* src, float* y, int64_t n) {
  const uint8_t* b = bytes_of(src);
  for (int64_t i = 0; i < n / kQK; ++i, b += 110) {
    const uint8_t* hmask = b;
    const uint8_t* qs = b + 32;
    const uint8_t* sc = b + 96;
    const float d = load_f16(b + 108);
    for (int s = 0; s < 16; ++s) {
      const int low = s < 8 ? sc[s] & 0xF : sc[s - 8] >> 4;
      const int high = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
      const float dl = d * float((low | high << 4) - 32);
      for (int e = 16 * s; e < 16 * s + 16; ++e) {
        const int q = code2(qs, e) - ((hmask[e % 32] >> (e / 32) & 1) ? 0 : 4);
        *y++ = dl * float(q);
      }
    }
  }
}

void q4_k_to_f32(const void* src, float* dst, int64_t n) { q45_k_to_f32<false>(src, dst, n); }
void q5_k_to_f32(const void* src, float* dst, int64_t n) { q45_k_to_f32<true>(src, dst, n); }

// Q6_K: ql[128], qh[64], scales[16] (int8), d (f16). In each half of 128, element 32k+l takes
// its low nibble from ql[l + 32(k%2)] (low nibble for k < 2, high for k >= 2) and bits 4-5 from
// qh[l] >> 2k; codes are offset by 32. y = (d * scale) * q, as in ggml.
void q6_k_to_f32(const void* src, float* y, int64_t n) {
  const uint8_t* b = bytes_of(src);
  for (int64_t i = 0; i < n / kQK; ++i, b += 210) {
    const float d = load_f16(b + 208);
    for (int e = 0; e < kQK; ++e) {
      const int half = e / 128, k = e % 128 / 32, l = e % 32;
      const uint8_t* ql = b + 64 * half;
      const uint8_t* qh = b + 128 + 32 * half;
      const int lo = (ql[l + 32 * (k % 2)] >> (4 * (k / 2))) & 0xF;
      const int q = (lo | ((qh[l] >> (2 * k)) & 3) << 4) - 32;
      *y++ = d * float(int8_t(b[192 + e / 16])) * float(q);
    }
  }
}

// Q8_K: d (f32), qs[256] (int8), bsums[16] (int16, unused here).
void q8_k_to_f32(const void* src, float* y, int64_t n) {
  const uint8_t* b = bytes_of(src);
  for (int64_t i = 0; i < n / kQK; ++i, b += 292) {
    float d;
    std::memcpy(&d, b, 4);
    for (int j = 0; j < kQK; ++j) *y++ = d * float(int8_t(b[4 + j]));
  }
}

}  // namespace slimlm::blocks
