// slimlm's own weight formats (not ggml's): group-wise uniform intN with f16 scales and
// integer zero points, per-row codebooks (LUT), scaled fixed grids (NF), and sparse f16 rows
// (N:M structured, bitmap; codecs in core/dtype_sparse.h). The 32-bit type id encodes the whole
// layout, so a GGUF tensor with such an id is self-describing (slimlm only).
#pragma once
#include "core/dtype.h"
#include <cstdint>
#include <string>
#include <vector>

namespace slimlm {

enum class CustomKind : uint32_t {
  Uniform = 1,   // per group: f16 scale, u8 zero (asym only); x = scale * (q - zero)
  Codebook = 2,  // per row: 2^bits f16 centroids; x = lut[q]   (SqueezeLLM-style, k-means)
  Grid = 3,      // per group: f16 absmax scale; x = scale * nf_grid(bits)[q]   (NF4-style)
  NM = 4,        // N:M structured sparsity: per group of M (= group) inputs, `keep` f16 values + indices
  Bitmap = 5,    // unstructured sparsity: 1 bit per input + `cap` f16 value slots per row
  RowInt8 = 6,   // per row (output channel): f32 scale, int8 codes; x = scale * q   (W8A8,
                 // multiplied by int8 activations in kernels/w8a8.h; bits 8, no group, no sym bit)
};

// Row layout (n = row length, ng = ceil(n / group), the last group may be shorter):
//   Uniform:  ng x f16 scale | ng x u8 zero (asym only) | codes
//   Codebook: 2^bits x f16 centroids | codes
//   Grid:     ng x f16 scale | codes
//   NM:       ng x keep f16 values | ng x keep indices (each < M, nm_index_bits(M) bits, ascending
//             within a group; a short group pads with value 0 at unused indices)
//   Bitmap:   ceil(n/8) bytes, bit i of byte j set = input 8j+i is nonzero | cap f16 values
//             (the nonzeros in column order, then zeros)
//   RowInt8:  f32 scale | n x int8 (two's complement, in [-127, 127])
// codes: n codes of `bits` bits as a little-endian bit stream, padded to a whole byte.
struct CustomLayout {
  CustomKind kind = CustomKind::Uniform;
  int bits = 4;         // 2..8
  bool sym = false;     // Uniform only: zero fixed at 2^(bits-1), no zeros stored
  int64_t group = 128;  // elements per group along a row (Uniform, Grid; NM: M, 2..16); 1..2^20
  int keep = 0;         // NM only: nonzeros kept per group (N of N:M), 1..M-1
  int64_t cap = 0;      // Bitmap only: f16 value slots per row, 1..2^28-1

  bool operator==(const CustomLayout&) const = default;
};

constexpr uint32_t kCustomTypeBit = 0x80000000u;
inline bool is_custom(DType t) { return (uint32_t(t) & kCustomTypeBit) != 0; }
// Throws Error when the layout is out of range (bits 2..8, group 1..2^20).
DType custom_type(const CustomLayout& l);
// The W8A8 type: RowInt8, 8 bits (name "w8a8").
DType w8a8_type();
inline bool is_w8a8(DType t) { return is_custom(t) && ((uint32_t(t) >> 28) & 7) == uint32_t(CustomKind::RowInt8); }
CustomLayout custom_layout(DType t);        // throws Error for ids that decode to nothing valid
bool valid_custom_id(uint32_t id);
std::string custom_name(const CustomLayout& l);  // e.g. "u4g128", "s3g64", "lut4", "nf4g64", "nm2:4", "bm320", "w8a8"
inline bool is_sparse(const CustomLayout& l) { return l.kind == CustomKind::NM || l.kind == CustomKind::Bitmap; }
bool is_sparse(DType t);
DType nm_type(int keep, int m);      // N:M with f16 values, e.g. nm_type(2, 4)
DType bitmap_type(int64_t cap);      // bitmap + `cap` f16 values per row
int nm_index_bits(int m);            // bits per stored index: ceil(log2 m)

size_t custom_row_bytes(const CustomLayout& l, int64_t n);
void custom_row_to_f32(const CustomLayout& l, const uint8_t* src, float* dst, int64_t n);

// Bit-stream packing of n codes (each < 2^bits) into ceil(n*bits/8) bytes, and back.
void pack_codes(const uint8_t* codes, int64_t n, int bits, uint8_t* dst);
void unpack_codes(const uint8_t* src, int64_t n, int bits, uint8_t* codes);

// The normal-float grid of QLoRA generalised to `bits`: 2^bits values in [-1, 1], sorted,
// with an exact 0, built from quantiles of N(0,1) (for bits = 4 this is QLoRA's NF4 table).
const std::vector<float>& nf_grid(int bits);

}  // namespace slimlm
