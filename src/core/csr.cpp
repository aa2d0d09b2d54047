#include "core/csr.h"
#include "core/dtype.h"
#include "core/error.h"
#include <climits>

namespace slimlm {

void CsrF16::validate() const {
  if (rows < 0 || cols < 0 || rows > INT32_MAX || cols > INT32_MAX) fail("sparse matrix: bad shape ", rows, " x ", cols);
  if (int64_t(row_ptr.size()) != rows + 1) fail("sparse matrix: ", row_ptr.size(), " row offsets for ", rows, " rows");
  if (row_ptr[0] != 0 || row_ptr.back() != nnz()) fail("sparse matrix: row offsets do not span the ", nnz(), " entries");
  if (val.size() != col.size()) fail("sparse matrix: ", col.size(), " columns but ", val.size(), " values");
  for (int64_t i = 0; i < rows; ++i) {
    const int32_t a = row_ptr[size_t(i)], b = row_ptr[size_t(i) + 1];
    if (b < a || b > nnz()) fail("sparse matrix: row offsets decrease at row ", i);
    for (int32_t k = a; k < b; ++k) {
      const int32_t c = col[size_t(k)];
      if (c < 0 || c >= cols || (k > a && c <= col[size_t(k) - 1]))
        fail("sparse matrix: row ", i, " has column ", c, " out of range or order (cols ", cols, ")");
    }
  }
}

void CsrF16::apply(const float* x, int64_t ldx, int64_t n_tok, float* y, int64_t ldy) const {
#pragma omp parallel for schedule(dynamic, 64)
  for (int64_t i = 0; i < rows; ++i) {
    const int32_t a = row_ptr[size_t(i)], b = row_ptr[size_t(i) + 1];
    if (a == b) continue;
    for (int64_t t = 0; t < n_tok; ++t) {
      const float* xt = x + t * ldx;
      float acc = 0;
      for (int32_t k = a; k < b; ++k) acc += f16_to_f32(val[size_t(k)]) * xt[col[size_t(k)]];
      y[t * ldy + i] += acc;
    }
  }
}

void CsrF16::add_dense(float* w) const {
  for (int64_t i = 0; i < rows; ++i)
    for (int32_t k = row_ptr[size_t(i)]; k < row_ptr[size_t(i) + 1]; ++k)
      w[i * cols + col[size_t(k)]] += f16_to_f32(val[size_t(k)]);
}

}  // namespace slimlm
