// Scalar reference of the sparse row kernels (src/kernels/sparse.h): visit each stored nonzero
// in column order and accumulate value * x in float.
#include "kernels/sparse.h"
#include "kernels/sparse_iter.h"

namespace slimlm::kernels::ref {

float dot_sparse(const CustomLayout& l, const uint8_t* row, const float* x, int64_t n) {
  float s = 0;
  for_each_nonzero(l, row, n, [&](int64_t c, uint16_t h) { s += f16_to_f32(h) * x[c]; });
  return s;
}

}  // namespace slimlm::kernels::ref
