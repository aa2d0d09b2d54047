// Dense-and-sparse decomposition W = D + S: the few weights that would stretch the quantization
// range (or matter most to the loss) leave the dense matrix D before it is quantized and are kept
// in 16 bits in a row-sorted CSR side matrix S; y = Q(D)·x + S·x at inference.
//
// Sparse weights (SqueezeLLM, Kim et al. 2023, "Dense-and-Sparse Quantization"; SpQR, Dettmers
// et al. 2023, "unstructured outliers"): keep the top fraction of weights by a score, one of
//     |w_ij|                (magnitude, SqueezeLLM's outliers),
//     |w_ij|·‖x_j‖₂         (activation-aware magnitude, as Wanda's score),
//     w_ij²·H_jj            (sensitivity with the diagonal of H = XᵀX, SqueezeLLM's Fisher-weighted
//                            sensitivity / the numerator of SpQR's OBS error w²/[H⁻¹]_jj).
// Outlier input channels (LLM.int8(), Dettmers et al. 2022, "mixed-precision decomposition"): columns j whose
// activation magnitude max_t |x_tj| exceeds a threshold (6.0 in the paper) stay in 16 bits whole:
//     X·Wᵀ = Σ_{j ∈ O} x_j w_jᵀ (f16) + Σ_{j ∉ O} x_j w_jᵀ (quantized).
// Both produce the same CSR side matrix. Entries moved to S are stored as f16; D keeps the f16
// rounding residual w − f16(w) there, so D + S equals W exactly before D is quantized.
#pragma once
#include "io/gguf.h"
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace slimlm::quant {

// rows x cols sparse matrix in CSR form; columns ascend within each row.
struct Sparse {
  int64_t rows = 0, cols = 0;
  std::vector<int32_t> row_ptr{0};  // rows + 1 offsets into col / val
  std::vector<int32_t> col;         // nnz column indices
  std::vector<uint16_t> val;        // nnz f16 values (bits)
  int64_t nnz() const { return int64_t(col.size()); }
  void validate() const;            // throws Error naming what is inconsistent
};

enum class OutlierScore {
  Magnitude,  // |w_ij|                              (channel stats unused)
  ActNorm,    // |w_ij| · c_j, c_j = ‖x_j‖₂           (channel stats required)
  Hessian,    // w_ij² · c_j,  c_j = H_jj = Σ_t x_tj²  (channel stats required)
};

// How many entries a fraction keeps: ⌊frac·total⌋, computed with a 1e-12 relative tolerance so a
// decimal fraction gives the count it spells (0.29 of 100 → 29, 0.005 of 1000 → 5). frac in [0, 1].
int64_t outlier_count(int64_t total, double frac);

// Moves the outlier_count(rows·cols, frac) highest-scoring entries of the row-major matrix w
// (rows x cols) into the returned Sparse (f16) and leaves w − f16(w) in w at those positions.
// Ties at the threshold score go to the lower flat index (row-major), so the result is deterministic.
Sparse split_outliers(float* w, int64_t rows, int64_t cols, double frac, OutlierScore score = OutlierScore::Magnitude,
                      const float* channel_stats = nullptr);

// LLM.int8(): the input channels j with act_absmax[j] > threshold, ascending.
std::vector<int32_t> outlier_channels(const float* act_absmax, int64_t cols, float threshold = 6.0f);
// Moves whole columns (any order, duplicates ignored) of w into a Sparse, as split_outliers does.
Sparse split_columns(float* w, int64_t rows, int64_t cols, const std::vector<int32_t>& channels);

// y[t·ldy + i] += Σ_k S_ik · x[t·ldx + k] for t < n_tok, i < rows (OpenMP over rows; each y
// element is summed by one thread in CSR order, so the result does not depend on thread count).
void apply(const Sparse& s, const float* x, int64_t ldx, int64_t n_tok, float* y, int64_t ldy);
// w[i·cols + k] += S_ik: folds S back into a dense (e.g. dequantized) row-major matrix.
void add_dense(const Sparse& s, float* w);

// GGUF storage next to the weight tensor `weight`: `<weight>.outl_rowptr` (i32, [rows + 1]),
// `<weight>.outl_col` (i32, [nnz]) and `<weight>.outl_val` (f16, [nnz]); with nnz = 0 only the
// row pointer is written (GGUF has no empty tensors). The writer keeps pointers into s: s must
// outlive w.write().
void add_sparse_tensors(gguf::Writer& w, const std::string& weight, const Sparse& s);
// The side matrix of `weight` (rows x cols, the weight's shape), or nullopt when the file has
// none. Throws Error for tensors of the wrong type or size and for an inconsistent CSR.
std::optional<Sparse> read_sparse(const gguf::File& f, const std::string& weight, int64_t rows, int64_t cols);

}  // namespace slimlm::quant
