// Visiting the nonzeros of one sparse row (N:M or bitmap) in column order: f(col, f16 bits).
// Shared by the scalar reference and the AVX2 batched kernel (which includes it after its
// target pragma so the visitor is compiled for AVX2 there).
#pragma once
#include "core/dtype_custom.h"
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
  const int keep = l.keep, mm = int(l.group);
  const int64_t ng = (n + mm - 1) / mm, slots = ng * keep;
  thread_local std::vector<uint8_t> idx;
  if (idx.size() < size_t(slots)) idx.resize(size_t(slots));
  unpack_codes(row + 2 * slots, slots, nm_index_bits(mm), idx.data());
  for (int64_t g = 0, s = 0; g < ng; ++g)
    for (int k = 0; k < keep; ++k, ++s) {
      const int64_t c = g * mm + idx[size_t(s)];
      if (c < n) f(c, u16(row + 2 * s));
    }
}

}  // namespace slimlm::kernels
