// The Optimal Brain Surgeon machinery shared by GPTQ (quant/gptq.cpp) and SparseGPT
// (prune/sparsegpt.cpp): the layer Hessian H = 2XᵀX/n from calibration stats, the upper
// Cholesky factor U of H⁻¹, and the lazy-batch sweep that fixes one column at a time
// (rounded or zeroed) and spreads its error over the columns still free:
//   e = (w_j − q_j) / U_jj,   w_{j+1:} −= e · U_{j, j+1:}    (within a batch of B columns)
//   W_{:, i2:} −= E · U_{i1:i2, i2:}                          (once per batch, a GEMM)
#pragma once
#include "quant/layerwise.h"
#include <Eigen/Dense>
#include <algorithm>
#include <cstdint>

namespace slimlm::quant {

using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// H = 2XᵀX / n for a `cols`-wide weight; `who` names the method in errors (stats mismatch, no tokens).
MatD layer_hessian(const SiteStats& st, int64_t cols, const char* who);
// Columns never active (H_jj = 0) get H_jj = 1 and zero weights, as in the reference code; returns their count.
int64_t drop_dead_columns(MatD& H, MatF& W);
// Upper Cholesky factor of (H + damp·mean(diag H)·I)⁻¹, retrying with 10x more damping while
// H is not positive definite.
MatF inverse_hessian_factor(MatD H, double damp, const char* who);

// The lazy-batch sweep over columns 0..cols-1 of W (in place). For each batch [i1, i2):
// on_batch(i1, i2) runs first (serially; e.g. SparseGPT's mask selection from the current W),
// then rows run in parallel, and for each column i in order fix(r, i, wr) returns the value
// column i of row r takes (wr: the row, updated by every earlier column). Returns
// Σ (w_i − q_i)² / U_ii², twice the OBS loss estimate.
template <class OnBatch, class Fix>
double lazy_obs_sweep(MatF& W, const MatF& U, int64_t B, OnBatch&& on_batch, Fix&& fix) {
  const int64_t rows = W.rows(), cols = W.cols();
  double err_total = 0;
  MatF E(rows, B);
  for (int64_t i1 = 0; i1 < cols; i1 += B) {
    const int64_t i2 = std::min(cols, i1 + B), nb = i2 - i1;
    on_batch(i1, i2);
    double err_block = 0;
#pragma omp parallel for schedule(static) reduction(+ : err_block)
    for (int64_t r = 0; r < rows; ++r) {
      float* wr = W.data() + r * cols;
      for (int64_t i = i1; i < i2; ++i) {
        const float v = fix(r, i, wr);
        const float d = U(i, i);
        const float e = (wr[i] - v) / d;
        err_block += double(wr[i] - v) * double(wr[i] - v) / (double(d) * d);
        const float* u = U.data() + i * cols;
        for (int64_t j = i + 1; j < i2; ++j) wr[j] -= e * u[j];
        E(r, i - i1) = e;
      }
    }
    err_total += err_block;
    if (i2 < cols) W.rightCols(cols - i2).noalias() -= E.leftCols(nb) * U.block(i1, i2, nb, cols - i2);
  }
  return err_total;
}

}  // namespace slimlm::quant
