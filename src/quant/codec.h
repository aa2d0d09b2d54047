// The quantization target of one weight tensor, as a codec: how a group of weights is fitted
// (scale/zero/min chosen), how one weight rounds onto the grid, and how a row of rounded weights
// is written in a storage format (slimlm's intN layouts or a ggml block type llama.cpp runs).
#pragma once
#include "core/dtype.h"
#include "core/dtype_custom.h"
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace slimlm::quant {

// Parameters of one group: x ≈ scale * (q - zero) for uniform grids (q integer in [0, qmax]);
// Grid kinds use `scale` only. Values are exactly what is stored (scales already rounded to f16).
struct GroupFit {
  float scale = 0;
  float zero = 0;   // integer-valued zero point for uniform codes
  // K-quants (codec_k.cpp): the stored integers behind scale/zero, scale = d·sc, zero = dmin·m,
  // where d, dmin are the super-block's f16 scales (repeated in every group of the super-block).
  float d = 0, dmin = 0;
  int16_t sc = 0, m = 0;
};

class Codec {
 public:
  virtual ~Codec() = default;
  virtual DType type() const = 0;        // storage type of the result
  virtual int64_t group() const = 0;     // elements per group along a row (ragged tail allowed if tail_ok)
  virtual bool tail_ok() const { return true; }
  // Fits a group x[0..n) (n <= group()). `clip` in (0, 1] shrinks the range (clip search).
  virtual GroupFit fit(const float* x, int64_t n, float clip = 1.0f) const = 0;
  // Elements whose groups are fitted together (a K-quant super-block of 256 couples its 8 or 16
  // groups through quantized sub-scales); a multiple of group(). Default: one group.
  virtual int64_t fit_span() const { return group(); }
  // Fits every group of x[0..n) (n <= fit_span(); groups of group(), the last one may be short)
  // into out[0..ceil(n/group())). clip: one ratio per group (nullptr: 1). Default: fit() per group.
  virtual void fit_span(const float* x, int64_t n, GroupFit* out, const float* clip = nullptr) const;
  virtual int code(float x, const GroupFit& f) const = 0;      // nearest code
  virtual float value(int q, const GroupFit& f) const = 0;     // dequantized code
  float round(float x, const GroupFit& f) const { return value(code(x, f), f); }
  // Writes one row from its codes and group fits (fits.size() == ceil(n / group())).
  virtual void encode_row(const uint8_t* codes, const GroupFit* fits, int64_t n, uint8_t* dst) const = 0;
  std::string name() const { return type_name(type()); }
  // Bits per weight of a row of n elements as stored.
  double bpw(int64_t n) const { return 8.0 * double(row_bytes(type(), n)) / double(n); }
};

// Uniform asymmetric/symmetric intN with f16 scales (slimlm custom layout "u4g128"/"s4g128").
std::unique_ptr<Codec> uniform_codec(int bits, int64_t group, bool sym);
// ggml block types with a fixed group of 32: q4_0, q4_1, q5_0, q5_1, q8_0 (stock llama.cpp runs them).
std::unique_ptr<Codec> block_codec(DType t);
// W8A8 weights (slimlm type "w8a8"): per output channel symmetric int8, f32 scale; group() is
// kWholeRow (one group per row). The runtime multiplies them with per-token int8 activations.
constexpr int64_t kWholeRow = int64_t(1) << 40;
std::unique_ptr<Codec> w8a8_codec();
// ggml K-quants q2_K..q6_K: super-blocks of 256 (src/quant/codec_k.cpp).
std::unique_ptr<Codec> k_codec(DType t);
// By name: "q4_0".."q8_0", "q2_K".."q6_K", a uniform spec such as "u4g128" / "s3g64", an NF grid "nf4g64", or "w8a8".
std::unique_ptr<Codec> make_codec(const std::string& name);

// Round-to-nearest of a whole row with fits made span by span (Codec::fit_span): codes, fits and the dequantized row.
struct RowQuant {
  std::vector<uint8_t> codes;
  std::vector<GroupFit> fits;
  std::vector<float> deq;
};
RowQuant rtn_row(const Codec& c, const float* w, int64_t n, const float* clip = nullptr /* per group */);
// Encodes a full matrix (rows x n) of codes/fits into a buffer of row_bytes(type, n) * rows.
std::vector<uint8_t> encode_matrix(const Codec& c, const std::vector<RowQuant>& rows, int64_t n);

}  // namespace slimlm::quant
