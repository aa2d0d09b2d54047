// ggml's K-quants (llama.cpp PR #1684, Kawrakow 2023) as Codecs: super-blocks of 256 weights,
// split into groups ("sub-blocks") of 16 or 32 whose scales (and mins) are themselves integers
// under f16 super-block scales:
//   q2_K, q4_K, q5_K:  x ≈ (d·sc_j)·q − dmin·m_j,   q ∈ [0, 2^b − 1], sc_j, m_j ∈ [0, 15] / [0, 63]
//   q3_K, q6_K:        x ≈ (d·sc_j)·(c − o),         c ∈ [0, 2^b − 1], o = 2^(b−1), sc_j signed 6 / 8 bit
// The fit minimises the squared rounding error of the super-block in two stages (the idea of
// ggml's make_qkx2_quants / make_qx_quants, written independently): (1) per group, a search over
// candidate scales, each followed by the least-squares refit of (scale, min) for its rounded codes;
// (2) per super-block, candidate f16 super-scales; for each, every group picks the floor/ceil
// integer sub-scale (and min) with the least error; then a least-squares refit of (d, dmin) for
// the chosen integers and codes. The naive min-max fit is one of the candidates, so the result is
// never worse than it. Byte layouts: docs/formats.md; dequantizers: src/core/dtype_blocks.cpp.
#include "core/error.h"
#include "quant/codec.h"
#include <algorithm>
#include <cmath>
#include <cstring>

// value() must equal the dequantizer bit for bit: no fused multiply-add contraction here.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace slimlm::quant {

namespace {
constexpr int kQK = 256;

struct KSpec {
  int group;        // elements per sub-block
  int qmax;         // codes 0..qmax
  int qoff;         // value = scale·(code − qoff) − zero
  bool has_min;     // q2_K/q4_K/q5_K: zero = dmin·m, m >= 0
  int sc_lo, sc_hi; // integer sub-scale range
  int m_hi;         // integer sub-min range [0, m_hi]
};

KSpec spec_of(DType t) {
  switch (t) {
    case DType::Q2_K: return {16, 3, 0, true, 0, 15, 15};
    case DType::Q3_K: return {16, 7, 4, false, -32, 31, 0};
    case DType::Q4_K: return {32, 15, 0, true, 0, 63, 63};
    case DType::Q5_K: return {32, 31, 0, true, 0, 63, 63};
    case DType::Q6_K: return {16, 63, 32, false, -128, 127, 0};
    default: fail("no K-quant codec for ", type_name(t));
  }
}

float f16_sat(float x) {  // nearest f16, saturating instead of overflowing to inf
  return f16_round(std::clamp(x, -65504.f, 65504.f));
}

// The codec's rounding with a given (scale, zero), shared by code() and the error sums.
inline int nearest_code(const KSpec& k, float x, float scale, float zero) {
  if (scale == 0) return k.qoff;
  const long q = std::lround((x + zero) / scale + float(k.qoff));
  return int(std::clamp<long>(q, 0, k.qmax));
}
inline float code_value(const KSpec& k, int c, float scale, float zero) { return scale * float(c - k.qoff) - zero; }

// v clamped to [0, hi] and rounded to the nearest integer (ties to even) without a library call.
inline float round_clamped(float v, float hi) {
  constexpr float kMagic = 12582912.0f;  // 1.5·2^23: adding and subtracting it rounds to an integer
  return (std::clamp(v, 0.0f, hi) + kMagic) - kMagic;
}

// Squared error of x[0..n) rounded with (scale, zero), for the searches: the code from a
// reciprocal (vectorizes; may differ from code() only at near-ties).
double sse(const KSpec& k, const float* x, int64_t n, float scale, float zero) {
  float e = 0;
  if (scale == 0) {
    for (int64_t i = 0; i < n; ++i) e += (x[i] + zero) * (x[i] + zero);
    return e;
  }
  const float inv = 1.0f / scale, off = zero * inv + float(k.qoff), hi = float(k.qmax);
  for (int64_t i = 0; i < n; ++i) {
    const float q = round_clamped(x[i] * inv + off, hi);
    const float d = x[i] - (scale * (q - float(k.qoff)) - zero);
    e += d * d;
  }
  return e;
}

// Float fit of one group: value = s·(c − qoff) − mn. Min-max (clip-shrunk) when clip < 1 or
// search == false; otherwise the best of the min-max fit and a scan of candidate scales, each
// refitted by least squares for its codes.
struct SubFit { float s = 0, mn = 0; bool plain = false; };

SubFit fit_group(const KSpec& k, const float* x, int64_t n, float clip, bool search) {
  SubFit f;
  f.plain = clip < 1.0f || !search;
  if (k.has_min) {
    float lo = 0, hi = x[0];
    for (int64_t i = 0; i < n; ++i) { lo = std::min(lo, x[i]); hi = std::max(hi, x[i]); }
    lo *= clip; hi *= clip;
    if (!(hi > lo)) { f.mn = -lo; return f; }
    f.s = (hi - lo) / float(k.qmax);
    f.mn = -lo;
    if (f.plain) return f;
    double best = sse(k, x, n, f.s, f.mn);
    double sx = 0;
    for (int64_t i = 0; i < n; ++i) sx += x[i];
    for (int t = -10; t <= 10; ++t) {
      const float iscale = (float(k.qmax) + 0.1f * float(t)) / (hi - lo);
      double sq = 0, sq2 = 0, sxq = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double q = round_clamped(iscale * (x[i] - lo), float(k.qmax));
        sq += q; sq2 += q * q; sxq += q * x[i];
      }
      const double D = double(n) * sq2 - sq * sq;
      if (!(D > 0)) continue;
      double s = (double(n) * sxq - sx * sq) / D, b = (sq2 * sx - sq * sxq) / D;  // x ≈ s·q + b
      if (b > 0) { b = 0; s = sxq / sq2; }
      if (!(s > 0)) continue;
      const double e = sse(k, x, n, float(s), float(-b));
      if (e < best) { best = e; f.s = float(s); f.mn = float(-b); }
    }
    return f;
  }
  float m = 0;  // signed value of largest magnitude
  for (int64_t i = 0; i < n; ++i) if (std::fabs(x[i]) > std::fabs(m)) m = x[i];
  m *= clip;
  if (m == 0) return f;
  f.s = m / -float(k.qoff);  // the extreme value maps to the wide end of the grid
  if (f.plain) return f;
  double best = sse(k, x, n, f.s, 0);
  for (int side = 0; side < 2; ++side)
    for (int t = -10; t <= 10; ++t) {
      const float s0 = side == 0 ? m / -(float(k.qoff) + 0.1f * float(t)) : m / (float(k.qoff - 1) + 0.1f * float(t));
      double sxq = 0, sq2 = 0;
      const float inv = 1.0f / s0;
      for (int64_t i = 0; i < n; ++i) {
        const double q = double(round_clamped(x[i] * inv + float(k.qoff), float(k.qmax))) - k.qoff;
        sxq += q * x[i]; sq2 += q * q;
      }
      if (!(sq2 > 0)) continue;
      const float s = float(sxq / sq2);
      if (s == 0) continue;
      const double e = sse(k, x, n, s, 0);
      if (e < best) { best = e; f.s = s; }
    }
  return f;
}

// Integer sub-scales and mins under super-scales (d, dmin): each group takes the floor/ceil pair
// with the least error (only the nearest for clip-shrunk groups). Returns the total error.
double choose_ints(const KSpec& k, const float* x, int64_t n, const SubFit* sf, float d, float dmin, GroupFit* out) {
  const int64_t G = k.group;
  double total = 0;
  for (int64_t j = 0; j * G < n; ++j) {
    const float* xj = x + j * G;
    const int64_t len = std::min<int64_t>(G, n - j * G);
    auto cands = [&](float v, float unit, int lo, int hi, int* c) {  // -> count of candidates
      if (unit == 0) { c[0] = 0; return 1; }
      const float r = v / unit;
      if (sf[j].plain) { c[0] = int(std::clamp<long>(std::lround(r), lo, hi)); return 1; }
      c[0] = int(std::clamp<float>(std::floor(r), float(lo), float(hi)));
      c[1] = int(std::clamp<float>(std::ceil(r), float(lo), float(hi)));
      return c[1] == c[0] ? 1 : 2;
    };
    int scs[2], ms[2] = {0, 0};
    const int nsc = cands(sf[j].s, d, k.sc_lo, k.sc_hi, scs);
    const int nm = k.has_min ? cands(sf[j].mn, dmin, 0, k.m_hi, ms) : 1;
    double best = INFINITY;
    for (int a = 0; a < nsc; ++a)
      for (int b = 0; b < nm; ++b) {
        GroupFit g;
        g.d = d; g.dmin = k.has_min ? dmin : 0;
        g.sc = int16_t(scs[a]); g.m = int16_t(ms[b]);
        g.scale = d * float(g.sc);
        g.zero = k.has_min ? dmin * float(g.m) : 0.0f;
        const double e = sse(k, xj, len, g.scale, g.zero);
        if (e < best) { best = e; out[j] = g; }
      }
    total += best;
  }
  return total;
}

// Least-squares (d, dmin) for fixed integer sub-scales/mins and the codes they give.
bool refit_super(const KSpec& k, const float* x, int64_t n, const GroupFit* fits, float& d, float& dmin) {
  double saa = 0, sab = 0, sbb = 0, sxa = 0, sxb = 0;
  for (int64_t i = 0; i < n; ++i) {
    const GroupFit& g = fits[i / k.group];
    const double a = double(g.sc) * double(nearest_code(k, x[i], g.scale, g.zero) - k.qoff), b = -double(g.m);
    saa += a * a; sab += a * b; sbb += b * b; sxa += x[i] * a; sxb += x[i] * b;
  }
  if (!(saa > 0)) return false;
  double dd = sxa / saa, dm = 0;
  if (k.has_min && sbb > 0) {
    const double D = saa * sbb - sab * sab;
    if (D > 0) {
      dd = (sxa * sbb - sxb * sab) / D;
      dm = (saa * sxb - sab * sxa) / D;
    }
    if (dm < 0) { dm = 0; dd = sxa / saa; }
  }
  if (k.has_min && !(dd > 0)) return false;
  d = f16_sat(float(dd));
  dmin = f16_sat(float(dm));
  return true;
}

class KQuant : public Codec {
 public:
  explicit KQuant(DType t) : t_(t), k_(spec_of(t)) {}
  DType type() const override { return t_; }
  int64_t group() const override { return k_.group; }
  bool tail_ok() const override { return false; }
  int64_t fit_span() const override { return kQK; }
  GroupFit fit(const float* x, int64_t n, float clip) const override {
    GroupFit f;
    fit_span(x, std::min<int64_t>(n, k_.group), &f, &clip);
    return f;
  }
  void fit_span(const float* x, int64_t n, GroupFit* out, const float* clip) const override;
  int code(float x, const GroupFit& f) const override { return nearest_code(k_, x, f.scale, f.zero); }
  float value(int q, const GroupFit& f) const override { return code_value(k_, q, f.scale, f.zero); }
  void encode_row(const uint8_t* codes, const GroupFit* fits, int64_t n, uint8_t* dst) const override;

 private:
  DType t_;
  KSpec k_;
};

void KQuant::fit_span(const float* x, int64_t n, GroupFit* out, const float* clip) const {
  const int64_t G = k_.group, ng = (n + G - 1) / G;
  SubFit sf[16], naive[16];
  GroupFit cur[16];
  for (int64_t j = 0; j < ng; ++j) {
    const int64_t len = std::min(G, n - j * G);
    sf[j] = fit_group(k_, x + j * G, len, clip ? clip[j] : 1.0f, true);
    naive[j] = fit_group(k_, x + j * G, len, 1.0f, false);
  }
  // Super-scale candidates: the extreme sub-scale onto the end of the integer range, or a little inside.
  auto extreme = [&](const SubFit* f, bool mins) {
    float e = 0;
    for (int64_t j = 0; j < ng; ++j) {
      const float v = mins ? f[j].mn : f[j].s;
      if (std::fabs(v) > std::fabs(e)) e = v;
    }
    return e;
  };
  double best = INFINITY;
  auto consider = [&](const SubFit* f, float d, float dmin) {
    const double e = choose_ints(k_, x, n, f, d, dmin, cur);
    if (e < best) { best = e; std::copy(cur, cur + ng, out); }
  };
  const float ns = extreme(naive, false), nm = extreme(naive, true);
  const float end = k_.has_min ? float(k_.sc_hi) : float(k_.sc_lo);  // q3_K/q6_K: the negative end is wider
  consider(naive, f16_sat(ns / end), k_.has_min ? f16_sat(nm / float(k_.m_hi)) : 0.f);
  const float es = extreme(sf, false), em = extreme(sf, true);
  for (float a : {0.f, 0.5f, 1.f, 2.f}) {
    const float mins[2] = {k_.has_min ? f16_sat(em / float(k_.m_hi)) : 0.f, k_.has_min ? f16_sat(em / (float(k_.m_hi) - 1.f)) : 0.f};
    for (int b = 0; b < (k_.has_min ? 2 : 1); ++b) {
      consider(sf, f16_sat(es / (end - (end > 0 ? a : -a))), mins[b]);
      if (!k_.has_min) consider(sf, f16_sat(es / (float(k_.sc_hi) - a)), 0.f);
    }
  }
  for (int it = 0; it < 2; ++it) {
    float d = 0, dmin = 0;
    if (!refit_super(k_, x, n, out, d, dmin)) break;
    const double before = best;
    consider(sf, d, dmin);
    if (!(best < before)) break;
  }
}

void KQuant::encode_row(const uint8_t* codes, const GroupFit* fits, int64_t n, uint8_t* dst) const {
  if (n % kQK != 0) fail(name(), " needs rows that are a multiple of 256, not ", n);
  const size_t bb = traits(t_).block_bytes;
  const int64_t nsub = kQK / k_.group;
  for (int64_t blk = 0; blk < n / kQK; ++blk) {
    uint8_t* p = dst + size_t(blk) * bb;
    std::memset(p, 0, bb);
    const uint8_t* c = codes + blk * kQK;
    const GroupFit* f = fits + blk * nsub;
    // Q2_K and Q3_K: 2-bit codes, byte l of each 32-byte half-block holds elements l, l+32, l+64, l+96.
    auto put2 = [&](uint8_t* qs, int e, int v) { qs[32 * (e / 128) + e % 32] |= uint8_t((v & 3) << (2 * (e % 128 / 32))); };
    switch (t_) {
      case DType::Q2_K:
        for (int s = 0; s < 16; ++s) p[s] = uint8_t(f[s].sc | f[s].m << 4);
        for (int e = 0; e < kQK; ++e) put2(p + 16, e, c[e]);
        put_f16(p + 80, f[0].d); put_f16(p + 82, f[0].dmin);
        break;
      case DType::Q3_K:
        for (int e = 0; e < kQK; ++e) {
          put2(p + 32, e, c[e]);
          if (c[e] & 4) p[e % 32] |= uint8_t(1 << (e / 32));
        }
        for (int s = 0; s < 16; ++s) {
          const int v = f[s].sc + 32;
          p[96 + s % 8] |= uint8_t((v & 15) << (s < 8 ? 0 : 4));
          p[96 + 8 + s % 4] |= uint8_t((v >> 4) << (2 * (s / 4)));
        }
        put_f16(p + 108, f[0].d);
        break;
      case DType::Q4_K:
      case DType::Q5_K: {
        const bool hi = t_ == DType::Q5_K;
        put_f16(p, f[0].d); put_f16(p + 2, f[0].dmin);
        uint8_t* sc = p + 4;
        for (int j = 0; j < 4; ++j) {
          sc[j] = uint8_t(f[j].sc | (f[j + 4].sc >> 4) << 6);
          sc[j + 4] = uint8_t(f[j].m | (f[j + 4].m >> 4) << 6);
          sc[j + 8] = uint8_t((f[j + 4].sc & 15) | (f[j + 4].m & 15) << 4);
        }
        uint8_t* qs = p + (hi ? 48 : 16);
        for (int e = 0; e < kQK; ++e) {
          const int s = e / 32, l = e % 32;
          qs[32 * (s / 2) + l] |= uint8_t((c[e] & 15) << (4 * (s % 2)));
          if (hi && (c[e] & 16)) p[16 + l] |= uint8_t(1 << s);
        }
        break;
      }
      case DType::Q6_K:
        for (int e = 0; e < kQK; ++e) {
          const int half = e / 128, kk = e % 128 / 32, l = e % 32;
          p[64 * half + l + 32 * (kk % 2)] |= uint8_t((c[e] & 15) << (4 * (kk / 2)));
          p[128 + 32 * half + l] |= uint8_t((c[e] >> 4) << (2 * kk));
        }
        for (int s = 0; s < 16; ++s) p[192 + s] = uint8_t(int8_t(f[s].sc));
        put_f16(p + 208, f[0].d);
        break;
      default: SLIMLM_ASSERT(false);
    }
  }
}
}  // namespace

std::unique_ptr<Codec> k_codec(DType t) { return std::make_unique<KQuant>(t); }

}  // namespace slimlm::quant
