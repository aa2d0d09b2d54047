#include "quant/codec.h"
#include "core/error.h"
#include "quant/nonuniform.h"
#include <algorithm>
#include <cmath>
#include <cstring>
#include <regex>

namespace slimlm::quant {

namespace {
int clampi(long v, int lo, int hi) { return int(std::clamp<long>(v, lo, hi)); }
float signed_absmax(const float* x, int64_t n) {
  float m = 0;
  for (int64_t i = 0; i < n; ++i) if (std::fabs(x[i]) > std::fabs(m)) m = x[i];
  return m;
}

// Asymmetric: range [min(x,0), max(x,0)] * clip onto 0..qmax with an integer zero point (GPTQ's
// convention). Symmetric: the largest-magnitude value maps to code 0 (the -2^(b-1) end), as
// llama.cpp's q4_0 does, so no level is wasted; zero point 2^(b-1).
class Uniform : public Codec {
 public:
  Uniform(int bits, int64_t group, bool sym) : l_{CustomKind::Uniform, bits, sym, group}, qmax_((1 << bits) - 1) {
    type_ = custom_type(l_);
  }
  DType type() const override { return type_; }
  int64_t group() const override { return l_.group; }
  GroupFit fit(const float* x, int64_t n, float clip) const override {
    GroupFit f;
    if (l_.sym) {
      const float m = signed_absmax(x, n) * clip;
      f.scale = f16_round(m / -float(1 << (l_.bits - 1)));
      f.zero = float(1 << (l_.bits - 1));
      return f;
    }
    float lo = 0, hi = 0;
    for (int64_t i = 0; i < n; ++i) { lo = std::min(lo, x[i]); hi = std::max(hi, x[i]); }
    lo *= clip; hi *= clip;
    f.scale = f16_round((hi - lo) / float(qmax_));
    f.zero = f.scale > 0 ? float(clampi(std::lround(-lo / f.scale), 0, qmax_)) : 0.f;
    return f;
  }
  int code(float x, const GroupFit& f) const override {
    if (f.scale == 0) return int(f.zero);
    return clampi(std::lround(x / f.scale + f.zero), 0, qmax_);
  }
  float value(int q, const GroupFit& f) const override { return f.scale * (float(q) - f.zero); }
  void encode_row(const uint8_t* codes, const GroupFit* fits, int64_t n, uint8_t* dst) const override {
    const int64_t ng = (n + l_.group - 1) / l_.group;
    for (int64_t g = 0; g < ng; ++g) put_f16(dst + 2 * g, fits[g].scale);
    uint8_t* p = dst + 2 * ng;
    if (!l_.sym) { for (int64_t g = 0; g < ng; ++g) p[g] = uint8_t(fits[g].zero); p += ng; }
    pack_codes(codes, n, l_.bits, p);
  }
 private:
  CustomLayout l_;
  int qmax_;
  DType type_;
};

// ggml's legacy blocks of 32: q4_0/q5_0 (d, symmetric, d = max/-2^(b-1)), q4_1/q5_1 (d, m:
// x = d*q + m, here zero holds m), q8_0 (d = amax/127). Codes are unsigned (q8_0: q + 128).
class Block32 : public Codec {
 public:
  explicit Block32(DType t) : t_(t) {
    switch (t) {
      case DType::Q4_0: bits_ = 4; affine_ = false; break;
      case DType::Q4_1: bits_ = 4; affine_ = true; break;
      case DType::Q5_0: bits_ = 5; affine_ = false; break;
      case DType::Q5_1: bits_ = 5; affine_ = true; break;
      case DType::Q8_0: bits_ = 8; affine_ = false; break;
      default: fail("no block codec for ", type_name(t));
    }
  }
  DType type() const override { return t_; }
  int64_t group() const override { return 32; }
  bool tail_ok() const override { return false; }
  GroupFit fit(const float* x, int64_t n, float clip) const override {
    GroupFit f;
    if (affine_) {
      float lo = x[0], hi = x[0];
      for (int64_t i = 1; i < n; ++i) { lo = std::min(lo, x[i]); hi = std::max(hi, x[i]); }
      const float mid = 0.5f * (lo + hi), half = 0.5f * (hi - lo) * clip;  // clip shrinks around the middle
      lo = mid - half; hi = mid + half;
      f.scale = f16_round((hi - lo) / float((1 << bits_) - 1));
      f.zero = f16_round(lo);
      return f;
    }
    if (bits_ == 8) {
      float a = 0;
      for (int64_t i = 0; i < n; ++i) a = std::max(a, std::fabs(x[i]));
      f.scale = f16_round(a * clip / 127.f);
      f.zero = 128;
      return f;
    }
    f.scale = f16_round(signed_absmax(x, n) * clip / -float(1 << (bits_ - 1)));
    f.zero = float(1 << (bits_ - 1));
    return f;
  }
  int code(float x, const GroupFit& f) const override {
    const int qmax = bits_ == 8 ? 255 : (1 << bits_) - 1;
    if (f.scale == 0) return affine_ ? 0 : int(f.zero);
    if (affine_) return clampi(std::lround((x - f.zero) / f.scale), 0, qmax);
    const int lo = bits_ == 8 ? 1 : 0;  // q8_0 codes are int8 in [-127, 127]
    return clampi(std::lround(x / f.scale + f.zero), lo, qmax);
  }
  float value(int q, const GroupFit& f) const override {
    return affine_ ? f.scale * float(q) + f.zero : f.scale * (float(q) - f.zero);
  }
  void encode_row(const uint8_t* codes, const GroupFit* fits, int64_t n, uint8_t* dst) const override {
    if (n % 32 != 0) fail(name(), " needs rows that are a multiple of 32, not ", n);
    const size_t bb = traits(t_).block_bytes;
    for (int64_t b = 0; b < n / 32; ++b) {
      uint8_t* p = dst + size_t(b) * bb;
      const uint8_t* q = codes + b * 32;
      put_f16(p, fits[b].scale); p += 2;
      if (affine_) { put_f16(p, fits[b].zero); p += 2; }
      if (bits_ == 8) { for (int i = 0; i < 32; ++i) p[i] = uint8_t(int8_t(int(q[i]) - 128)); continue; }
      if (bits_ == 5) {
        uint32_t qh = 0;
        for (int i = 0; i < 32; ++i) qh |= uint32_t((q[i] >> 4) & 1) << i;
        std::memcpy(p, &qh, 4); p += 4;
      }
      for (int i = 0; i < 16; ++i) p[i] = uint8_t((q[i] & 15) | (q[i + 16] & 15) << 4);
    }
  }
 private:
  DType t_;
  int bits_ = 4;
  bool affine_ = false;
};
// W8A8 weights: one symmetric int8 grid per row (output channel), f32 scale absmax / 127
// (clip shrinks it); codes are stored as q + 128 in 1..255 like q8_0's, written as int8 q.
class RowInt8 : public Codec {
 public:
  DType type() const override { return w8a8_type(); }
  int64_t group() const override { return kWholeRow; }
  GroupFit fit(const float* x, int64_t n, float clip) const override {
    float a = 0;
    for (int64_t i = 0; i < n; ++i) a = std::max(a, std::fabs(x[i]));
    return GroupFit{a * clip / 127.f, 128.f};
  }
  int code(float x, const GroupFit& f) const override {
    return f.scale == 0 ? 128 : clampi(std::lround(x / f.scale) + 128, 1, 255);
  }
  float value(int q, const GroupFit& f) const override { return f.scale * float(q - 128); }
  void encode_row(const uint8_t* codes, const GroupFit* fits, int64_t n, uint8_t* dst) const override {
    std::memcpy(dst, &fits[0].scale, 4);
    for (int64_t i = 0; i < n; ++i) dst[4 + i] = uint8_t(int8_t(int(codes[i]) - 128));
  }
};
}  // namespace

std::unique_ptr<Codec> w8a8_codec() { return std::make_unique<RowInt8>(); }

void Codec::fit_span(const float* x, int64_t n, GroupFit* out, const float* clip) const {
  const int64_t g = group();
  for (int64_t k = 0; k * g < n; ++k) out[k] = fit(x + k * g, std::min(g, n - k * g), clip ? clip[k] : 1.0f);
}

std::unique_ptr<Codec> uniform_codec(int bits, int64_t group, bool sym) { return std::make_unique<Uniform>(bits, group, sym); }
std::unique_ptr<Codec> block_codec(DType t) { return std::make_unique<Block32>(t); }

std::unique_ptr<Codec> make_codec(const std::string& name) {
  std::smatch m;
  static const std::regex re("([us])([2-8])g([0-9]+)");
  if (std::regex_match(name, m, re)) return uniform_codec(std::stoi(m[2]), std::stoll(m[3]), m[1] == "s");
  static const std::regex nf("nf([2-8])g([0-9]+)");
  if (std::regex_match(name, m, nf)) return nf_codec(std::stoi(m[1]), std::stoll(m[2]));
  if (name == "w8a8") return w8a8_codec();
  for (const char* b : {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0"})
    if (name == b) return block_codec(type_from_name(name));
  for (const char* b : {"q2_K", "q3_K", "q4_K", "q5_K", "q6_K"})
    if (name == b) return k_codec(type_from_name(name));
  fail("unknown quantization format '", name, "' (use q4_0 q4_1 q5_0 q5_1 q8_0 q2_K q3_K q4_K q5_K q6_K, uBgG / sBgG such as u4g128, nfBgG such as nf4g64, or w8a8)");
}

RowQuant rtn_row(const Codec& c, const float* w, int64_t n, const float* clip) {
  const int64_t g = c.group(), ng = (n + g - 1) / g;
  if (!c.tail_ok() && n % c.fit_span() != 0) fail(c.name(), " needs rows that are a multiple of ", c.fit_span(), ", not ", n);
  RowQuant r;
  r.codes.resize(size_t(n)); r.deq.resize(size_t(n)); r.fits.resize(size_t(ng));
  const int64_t span = c.fit_span();
  for (int64_t s0 = 0; s0 < n; s0 += span)
    c.fit_span(w + s0, std::min(span, n - s0), r.fits.data() + s0 / g, clip ? clip + s0 / g : nullptr);
  for (int64_t k = 0; k < ng; ++k) {
    const int64_t i0 = k * g, len = std::min(g, n - i0);
    for (int64_t i = i0; i < i0 + len; ++i) {
      const int q = c.code(w[i], r.fits[size_t(k)]);
      r.codes[size_t(i)] = uint8_t(q);
      r.deq[size_t(i)] = c.value(q, r.fits[size_t(k)]);
    }
  }
  return r;
}

std::vector<uint8_t> encode_matrix(const Codec& c, const std::vector<RowQuant>& rows, int64_t n) {
  const size_t rb = row_bytes(c.type(), n);
  std::vector<uint8_t> out(rb * rows.size());
  for (size_t r = 0; r < rows.size(); ++r) c.encode_row(rows[r].codes.data(), rows[r].fits.data(), n, out.data() + r * rb);
  return out;
}

}  // namespace slimlm::quant
