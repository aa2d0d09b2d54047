#include "core/dtype_custom.h"
#include "core/dtype_sparse.h"
#include "core/error.h"
#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

namespace slimlm {

// id = bit31 | kind << 28 | sym << 27 | bits << 23 | group (21 bits)   (Uniform, Codebook, Grid)
// id = bit31 | 4 << 28 | keep << 8 | M                                  (NM, f16 values)
// id = bit31 | 5 << 28 | cap (28 bits)                                  (Bitmap, f16 values)
namespace {
constexpr uint32_t kCapMax = (1u << 28) - 1;
bool valid_nm(uint32_t keep, uint32_t m) { return m >= 2 && m <= 16 && keep >= 1 && keep < m; }
}  // namespace

DType nm_type(int keep, int m) {
  if (!valid_nm(uint32_t(keep), uint32_t(m))) fail("sparse format ", keep, ":", m, " is out of range (N:M with 2 <= M <= 16, 1 <= N < M)");
  return DType(kCustomTypeBit | uint32_t(CustomKind::NM) << 28 | uint32_t(keep) << 8 | uint32_t(m));
}

DType bitmap_type(int64_t cap) {
  if (cap < 1 || cap > int64_t(kCapMax)) fail("bitmap format: ", cap, " value slots per row is out of range (1..", kCapMax, ")");
  return DType(kCustomTypeBit | uint32_t(CustomKind::Bitmap) << 28 | uint32_t(cap));
}

int nm_index_bits(int m) { int b = 1; while ((1 << b) < m) ++b; return b; }

bool is_sparse(DType t) { return is_custom(t) && is_sparse(custom_layout(t)); }

DType custom_type(const CustomLayout& l) {
  if (l.kind == CustomKind::NM) return nm_type(l.keep, int(l.group));
  if (l.kind == CustomKind::Bitmap) return bitmap_type(l.cap);
  if (l.bits < 2 || l.bits > 8) fail("custom format: ", l.bits, " bits is out of range (2..8)");
  if (l.kind == CustomKind::RowInt8 && (l.bits != 8 || l.sym)) fail("custom format: per-row int8 has 8 bits and no sym flag");
  const bool grouped = l.kind != CustomKind::Codebook && l.kind != CustomKind::RowInt8;
  if (grouped && (l.group < 1 || l.group > (1 << 20))) fail("custom format: group size ", l.group, " is out of range (1..1048576)");
  if (l.sym && l.kind != CustomKind::Uniform) fail("custom format: only uniform formats have a symmetric variant");
  return DType(kCustomTypeBit | uint32_t(l.kind) << 28 | uint32_t(l.sym) << 27 | uint32_t(l.bits) << 23 |
               uint32_t(grouped ? l.group : 0));
}

DType w8a8_type() { return custom_type(CustomLayout{CustomKind::RowInt8, 8, false, 0}); }

bool valid_custom_id(uint32_t id) {
  if (!(id & kCustomTypeBit)) return false;
  const uint32_t kind = (id >> 28) & 7, sym = (id >> 27) & 1, bits = (id >> 23) & 15, group = id & 0x1fffff;
  if (kind == uint32_t(CustomKind::NM)) return (id & 0x0fff0000u) == 0 && valid_nm((id >> 8) & 0xff, id & 0xff);
  if (kind == uint32_t(CustomKind::Bitmap)) return (id & kCapMax) != 0;
  if (kind == uint32_t(CustomKind::RowInt8)) return bits == 8 && group == 0 && !sym;
  if (kind < 1 || kind > 3 || bits < 2 || bits > 8) return false;
  if (kind == uint32_t(CustomKind::Codebook)) return group == 0 && !sym;
  if (sym && kind != uint32_t(CustomKind::Uniform)) return false;
  return group >= 1 && group <= (1u << 20);
}

CustomLayout custom_layout(DType t) {
  const uint32_t id = uint32_t(t);
  if (!valid_custom_id(id)) fail("unknown tensor type id ", id);
  CustomLayout l;
  l.kind = CustomKind((id >> 28) & 7);
  if (is_sparse(l)) {  // canonical form: 16-bit (f16) values
    l.bits = 16;
    l.group = l.kind == CustomKind::NM ? int64_t(id & 0xff) : 0;
    l.keep = l.kind == CustomKind::NM ? int((id >> 8) & 0xff) : 0;
    l.cap = l.kind == CustomKind::Bitmap ? int64_t(id & kCapMax) : 0;
    return l;
  }
  l.sym = (id >> 27) & 1;
  l.bits = int((id >> 23) & 15);
  l.group = int64_t(id & 0x1fffff);
  return l;
}

std::string custom_name(const CustomLayout& l) {
  const std::string b = std::to_string(l.bits);
  switch (l.kind) {
    case CustomKind::Uniform: return (l.sym ? "s" : "u") + b + "g" + std::to_string(l.group);
    case CustomKind::Codebook: return "lut" + b;
    case CustomKind::Grid: return "nf" + b + "g" + std::to_string(l.group);
    case CustomKind::NM: return "nm" + std::to_string(l.keep) + ":" + std::to_string(l.group);
    case CustomKind::Bitmap: return "bm" + std::to_string(l.cap);
    case CustomKind::RowInt8: return "w8a8";
  }
  return "?";
}

size_t custom_row_bytes(const CustomLayout& l, int64_t n) {
  if (n < 0) fail("negative row length");
  if (is_sparse(l)) return sparse_row_bytes(l, n);
  const size_t codes = (size_t(n) * size_t(l.bits) + 7) / 8;
  if (l.kind == CustomKind::RowInt8) return 4 + size_t(n);
  if (l.kind == CustomKind::Codebook) return (size_t(1) << l.bits) * 2 + codes;
  const size_t ng = size_t((n + l.group - 1) / l.group);
  const size_t per_group = l.kind == CustomKind::Uniform && !l.sym ? 3 : 2;
  return ng * per_group + codes;
}

void pack_codes(const uint8_t* codes, int64_t n, int bits, uint8_t* dst) {
  std::memset(dst, 0, (size_t(n) * size_t(bits) + 7) / 8);
  uint64_t bitpos = 0;
  for (int64_t i = 0; i < n; ++i, bitpos += uint64_t(bits)) {
    const uint32_t v = uint32_t(codes[i]) << (bitpos & 7);  // at most 8 + 7 bits: spans <= 2 bytes
    dst[bitpos >> 3] |= uint8_t(v);
    if ((bitpos & 7) + uint64_t(bits) > 8) dst[(bitpos >> 3) + 1] |= uint8_t(v >> 8);
  }
}

void unpack_codes(const uint8_t* src, int64_t n, int bits, uint8_t* codes) {
  const uint32_t mask = (1u << bits) - 1;
  if (bits == 4) {  // the common case: two codes per byte
    for (int64_t i = 0; i + 1 < n; i += 2) { codes[i] = src[i >> 1] & 15; codes[i + 1] = src[i >> 1] >> 4; }
    if (n & 1) codes[n - 1] = src[n >> 1] & 15;
    return;
  }
  if (bits == 8) { std::memcpy(codes, src, size_t(n)); return; }
  uint64_t bitpos = 0;
  for (int64_t i = 0; i < n; ++i, bitpos += uint64_t(bits)) {
    const size_t b = bitpos >> 3;
    uint32_t v = src[b];
    if ((bitpos & 7) + uint64_t(bits) > 8) v |= uint32_t(src[b + 1]) << 8;
    codes[i] = uint8_t((v >> (bitpos & 7)) & mask);
  }
}

void custom_row_to_f32(const CustomLayout& l, const uint8_t* src, float* dst, int64_t n) {
  if (is_sparse(l)) return sparse_row_to_f32(l, src, dst, n);
  thread_local std::vector<uint8_t> codes;
  if (codes.size() < size_t(n)) codes.resize(size_t(n));
  uint16_t h;
  if (l.kind == CustomKind::RowInt8) {
    float s;
    std::memcpy(&s, src, 4);
    const int8_t* q = reinterpret_cast<const int8_t*>(src + 4);
    for (int64_t i = 0; i < n; ++i) dst[i] = s * float(q[i]);
    return;
  }
  if (l.kind == CustomKind::Codebook) {
    const int nc = 1 << l.bits;
    float lut[256];
    for (int c = 0; c < nc; ++c) { std::memcpy(&h, src + 2 * c, 2); lut[c] = f16_to_f32(h); }
    unpack_codes(src + 2 * nc, n, l.bits, codes.data());
    for (int64_t i = 0; i < n; ++i) dst[i] = lut[codes[size_t(i)]];
    return;
  }
  const int64_t ng = (n + l.group - 1) / l.group;
  const bool zeros = l.kind == CustomKind::Uniform && !l.sym;
  const uint8_t* zp = src + 2 * ng;
  unpack_codes(src + (zeros ? 3 : 2) * ng, n, l.bits, codes.data());
  const std::vector<float>* grid = l.kind == CustomKind::Grid ? &nf_grid(l.bits) : nullptr;
  const int sym_zero = 1 << (l.bits - 1);
  for (int64_t g = 0; g < ng; ++g) {
    std::memcpy(&h, src + 2 * g, 2);
    const float s = f16_to_f32(h);
    const int64_t i0 = g * l.group, i1 = std::min(n, i0 + l.group);
    if (grid) {
      for (int64_t i = i0; i < i1; ++i) dst[i] = s * (*grid)[codes[size_t(i)]];
    } else {
      const int z = zeros ? zp[g] : sym_zero;
      for (int64_t i = i0; i < i1; ++i) dst[i] = s * float(int(codes[size_t(i)]) - z);
    }
  }
}

namespace {
double norm_ppf(double p) {  // inverse of the standard normal CDF by bisection (64 steps: exact in double)
  double lo = -40, hi = 40;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p) lo = mid; else hi = mid;
  }
  return 0.5 * (lo + hi);
}
std::vector<float> build_nf(int bits) {
  // QLoRA (Dettmers et al. 2023, appendix E): 2^(b-1) positive quantiles and 2^(b-1)-1 negative
  // ones of N(0,1) between offset and 1/2, plus an exact zero, normalised to [-1, 1].
  const double offset = 1 - 0.5 * (1.0 / 32 + 1.0 / 30);  // 0.9677: QLoRA's outermost quantile
  const int np = 1 << (bits - 1), nn = np - 1;
  std::vector<double> v;
  for (int i = 0; i < np; ++i) v.push_back(norm_ppf(offset + (0.5 - offset) * double(i) / double(np)));
  for (int i = 0; i < nn; ++i) v.push_back(-norm_ppf(offset + (0.5 - offset) * double(i) / double(nn)));
  v.push_back(0.0);
  std::sort(v.begin(), v.end());
  const double mx = v.back();
  std::vector<float> out;
  for (double x : v) out.push_back(float(x / mx));
  return out;
}
}  // namespace

const std::vector<float>& nf_grid(int bits) {
  if (bits < 2 || bits > 8) fail("nf grid: ", bits, " bits is out of range (2..8)");
  static std::vector<float> grids[9];
  static std::once_flag once[9];
  std::call_once(once[bits], [bits] { grids[bits] = build_nf(bits); });
  return grids[bits];
}

}  // namespace slimlm
