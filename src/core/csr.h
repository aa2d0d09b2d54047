// A row-sorted CSR matrix of f16 values: the side matrix S of dense-and-sparse weights,
// W = dequant(D) + S (a Tensor's `outliers`). This is storage and arithmetic only; which
// entries go into S is chosen by quant/outliers.h, and GGUF keeps S as <weight>.outl_*
// tensors (io/gguf_csr.h).
#pragma once
#include <cstdint>
#include <vector>

namespace slimlm {

// rows x cols sparse matrix in CSR form; columns ascend within each row.
struct CsrF16 {
  int64_t rows = 0, cols = 0;
  std::vector<int32_t> row_ptr{0};  // rows + 1 offsets into col / val
  std::vector<int32_t> col;         // nnz column indices
  std::vector<uint16_t> val;        // nnz f16 values (bits)
  int64_t nnz() const { return int64_t(col.size()); }
  void validate() const;            // throws Error naming what is inconsistent

  // y[t·ldy + i] += Σ_k S_ik · x[t·ldx + k] for t < n_tok, i < rows (OpenMP over rows; each y
  // element is summed by one thread in CSR order, so the result does not depend on thread count).
  void apply(const float* x, int64_t ldx, int64_t n_tok, float* y, int64_t ldy) const;
  // w[i·cols + k] += S_ik: folds S back into a dense (e.g. dequantized) row-major matrix.
  void add_dense(float* w) const;
};

}  // namespace slimlm
