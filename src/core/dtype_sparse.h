// Row codecs of the sparse weight formats (CustomKind::NM and ::Bitmap, layouts in
// core/dtype_custom.h): size, exact decoding to f32, and encoders from dense f32 rows that refuse
// rows which do not fit (a group of M with more than N nonzeros; more nonzeros than slots).
#pragma once
#include "core/dtype_custom.h"
#include <cstdint>

namespace slimlm {

// N:M rows are chunks of kNmChunk groups, each its indices (kNmChunk·N·nm_index_bits(M) bits,
// a whole number of bytes) followed by its values, so a row is read as one stream (2:4: 4 index
// bytes + 16 f16 values per 32 inputs). The last chunk holds the remaining groups.
constexpr int kNmChunk = 8;
inline size_t nm_chunk_bytes(const CustomLayout& l, int64_t groups) {
  const size_t slots = size_t(groups) * size_t(l.keep);
  return (slots * size_t(nm_index_bits(int(l.group))) + 7) / 8 + 2 * slots;
}

size_t sparse_row_bytes(const CustomLayout& l, int64_t n);
// Decodes one row; indices past the row end (a short last N:M group) are skipped.
void sparse_row_to_f32(const CustomLayout& l, const uint8_t* src, float* dst, int64_t n);
// Encodes one dense row (values rounded to f16). Throws Error naming the offending columns.
void sparse_row_from_f32(const CustomLayout& l, const float* src, uint8_t* dst, int64_t n);

// Largest number of nonzeros in any group of m consecutive inputs (the last group may be short).
int max_group_nonzeros(const float* src, int64_t n, int m);
int64_t count_nonzeros(const float* src, int64_t n);

}  // namespace slimlm
