// Sparse f16 row formats: N:M structured (NVIDIA's 2:4 metadata idea: the kept values of each
// group of M plus their in-group indices; Mishra et al. 2021, "Accelerating Sparse Deep Neural
// Networks", sec. 2) and a bitmap of nonzeros with the values in column order. A value counts as
// nonzero when the f32 input is != 0 (a tiny value that rounds to f16 zero is stored as 0).
#include "core/dtype_sparse.h"
#include "core/error.h"
#include <algorithm>
#include <cstring>

namespace slimlm {
namespace {
int64_t n_groups(const CustomLayout& l, int64_t n) { return (n + l.group - 1) / l.group; }
size_t bitmap_bytes(int64_t n) { return size_t((n + 7) / 8); }
float get_f16(const uint8_t* p) { uint16_t h; std::memcpy(&h, p, 2); return f16_to_f32(h); }
}  // namespace

size_t sparse_row_bytes(const CustomLayout& l, int64_t n) {
  if (l.kind == CustomKind::Bitmap) return bitmap_bytes(n) + 2 * size_t(l.cap);
  const int64_t ng = n_groups(l, n);
  return size_t(ng / kNmChunk) * nm_chunk_bytes(l, kNmChunk) + nm_chunk_bytes(l, ng % kNmChunk);
}

int max_group_nonzeros(const float* src, int64_t n, int m) {
  int most = 0;
  for (int64_t g0 = 0; g0 < n; g0 += m) {
    int nz = 0;
    for (int64_t i = g0; i < std::min(n, g0 + m); ++i) nz += src[i] != 0.0f;
    most = std::max(most, nz);
  }
  return most;
}

int64_t count_nonzeros(const float* src, int64_t n) {
  int64_t nz = 0;
  for (int64_t i = 0; i < n; ++i) nz += src[i] != 0.0f;
  return nz;
}

void sparse_row_to_f32(const CustomLayout& l, const uint8_t* src, float* dst, int64_t n) {
  std::fill(dst, dst + n, 0.0f);
  if (l.kind == CustomKind::Bitmap) {
    const uint8_t* vals = src + bitmap_bytes(n);
    int64_t p = 0;
    for (int64_t i = 0; i < n && p < l.cap; ++i)
      if (src[i >> 3] >> (i & 7) & 1) dst[i] = get_f16(vals + 2 * p++);
    return;
  }
  const int64_t ng = n_groups(l, n), ib = nm_index_bits(int(l.group));
  uint8_t idx[kNmChunk * 16];
  for (int64_t g0 = 0; g0 < ng; g0 += kNmChunk) {
    const int64_t gl = std::min<int64_t>(kNmChunk, ng - g0), slots = gl * l.keep;
    const uint8_t* vals = src + (slots * ib + 7) / 8;
    unpack_codes(src, slots, int(ib), idx);
    for (int64_t s = 0; s < slots; ++s) {
      const int64_t c = (g0 + s / l.keep) * l.group + idx[s];
      if (c < n) dst[c] += get_f16(vals + 2 * s);  // += : a corrupt file with repeated indices sums, as the kernels do
    }
    src += nm_chunk_bytes(l, gl);
  }
}

void sparse_row_from_f32(const CustomLayout& l, const float* src, uint8_t* dst, int64_t n) {
  std::memset(dst, 0, sparse_row_bytes(l, n));
  if (l.kind == CustomKind::Bitmap) {
    const int64_t nz = count_nonzeros(src, n);
    if (nz > l.cap) fail("bitmap format: row has ", nz, " nonzeros but only ", l.cap, " value slots");
    uint8_t* vals = dst + bitmap_bytes(n);
    int64_t p = 0;
    for (int64_t i = 0; i < n; ++i)
      if (src[i] != 0.0f) { dst[i >> 3] |= uint8_t(1u << (i & 7)); put_f16(vals + 2 * p++, src[i]); }
    return;
  }
  const int m = int(l.group), keep = l.keep;
  const int64_t ng = n_groups(l, n), slots = ng * keep;
  std::vector<uint8_t> idx(size_t(slots), 0), staged(size_t(2 * slots), 0);  // slot order, then chunked
  uint8_t* out = dst;
  dst = staged.data();
  for (int64_t g = 0; g < ng; ++g) {
    const int64_t g0 = g * m, len = std::min<int64_t>(m, n - g0);
    int used = 0;
    uint32_t taken = 0;  // bit i: index i holds a kept value
    for (int i = 0; i < len; ++i) {
      if (src[g0 + i] == 0.0f) continue;
      if (used == keep)
        fail(keep, ":", m, " format: the group at columns ", g0, "..", g0 + len - 1, " has ",
             max_group_nonzeros(src + g0, len, m), " nonzeros (at most ", keep, " allowed)");
      taken |= 1u << i;
      ++used;
    }
    for (int i = 0; used < keep && i < m; ++i)  // pad with zeros at the lowest free indices
      if (!(taken >> i & 1)) { taken |= 1u << i; ++used; }
    int s = int(g * keep);
    for (int i = 0; i < m; ++i) {
      if (!(taken >> i & 1)) continue;
      idx[size_t(s)] = uint8_t(i);
      put_f16(dst + 2 * s, i < len ? src[g0 + i] : 0.0f);
      ++s;
    }
  }
  const int ib = nm_index_bits(m);
  for (int64_t g0 = 0; g0 < ng; g0 += kNmChunk) {  // regroup: indices then values per chunk
    const int64_t gl = std::min<int64_t>(kNmChunk, ng - g0), cs = gl * keep;
    const size_t ibytes = size_t(cs * ib + 7) / 8;
    pack_codes(idx.data() + g0 * keep, cs, ib, out);
    std::memcpy(out + ibytes, staged.data() + 2 * g0 * keep, size_t(2 * cs));
    out += ibytes + size_t(2 * cs);
  }
}

}  // namespace slimlm
