// Visiting the nonzeros of one sparse row (N:M or bitmap) in column order: f(col, f16 bits).
// Shared by the scalar reference and the AVX2 batched kernel (which includes it after its
// target pragma so the visitor is compiled for AVX2 there).
#pragma once
#include "core/dtype_sparse.h"
#include <algorithm>
#include <cstring>
#include <vector>

namespace slimlm::kernels {

template <class F>
inline void for_each_nonzero(const CustomLayout& l, const uint8_t* row, int64_t n, F&& f) {
  auto u16 = [](const uint8_t* p) { uint16_t h; std::memcpy(&h, p, 2); return h; };
  if (l.kind == CustomKind::Bitmap) {
    const int64_t nb = (n + 7) / 8;
    const uint8_t* vals = row + nb;
    int64_t p = 0;
    for (int64_t j = 0; j < nb; j += 8) {
      uint64_t m = 0;
      std::memcpy(&m, row + j, size_t(std::min<int64_t>(8, nb - j)));  // little-endian: bit i = column 8j + i
      for (; m != 0 && p < l.cap; m &= m - 1) {
        const int64_t c = 8 * j + __builtin_ctzll(m);
        if (c >= n) break;
        f(c, u16(vals + 2 * p++));
      }
    }
    return;
  }
  const int keep = l.keep, mm = int(l.group), ib = nm_index_bits(mm);
  const int64_t ng = (n + mm - 1) / mm;
  uint8_t idx[kNmChunk * 16];
  for (int64_t g0 = 0; g0 < ng; g0 += kNmChunk) {  // chunks: indices, then values (dtype_sparse.h)
    const int64_t gl = std::min<int64_t>(kNmChunk, ng - g0), slots = gl * keep;
    const int64_t ibytes = (slots * ib + 7) / 8;
    const uint8_t* vals = row + ibytes;
    if (ibytes <= 8) {  // e.g. 2:4 (32 bits per chunk): shift the indices out of one word
      uint64_t w = 0;
      std::memcpy(&w, row, size_t(ibytes));
      const uint64_t mask = (uint64_t(1) << ib) - 1;
      for (int64_t g = 0, s = 0; g < gl; ++g)
        for (int k = 0; k < keep; ++k, ++s, w >>= ib) {
          const int64_t c = (g0 + g) * mm + int64_t(w & mask);
          if (c < n) f(c, u16(vals + 2 * s));
        }
    } else {
      unpack_codes(row, slots, ib, idx);
      for (int64_t g = 0, s = 0; g < gl; ++g)
        for (int k = 0; k < keep; ++k, ++s) {
          const int64_t c = (g0 + g) * mm + idx[s];
          if (c < n) f(c, u16(vals + 2 * s));
        }
    }
    row = vals + 2 * slots;
  }
}

}  // namespace slimlm::kernels
