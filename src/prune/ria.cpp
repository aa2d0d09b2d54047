// RIA — Zhang, Zhao, Lin, et al., "Plug-and-Play: An Efficient Post-training Pruning Method
// for Large Language Models", ICLR 2024. Relative importance (a weight against the other weights
// of its row and of its column) times the input norm to a power a (Eq. 3, a = 0.5):
//   RI_ij = |W_ij| / Σ_k |W_ik|  +  |W_ij| / Σ_k |W_kj|,     S_ij = RI_ij · (‖X_j‖₂)^a.
// The paper's code compares S within the whole layer by default (Wanda compares per row);
// `slimlm prune --group row` switches. No weight update.
#include "core/error.h"
#include "prune/prune.h"
#include <cmath>

namespace slimlm::prune {

std::vector<float> ria_scores(const float* w, int64_t rows, int64_t cols, const quant::SiteStats& st, double a) {
  if (st.k != cols || int64_t(st.sum_sq.size()) != cols) fail("RIA: statistics do not match a ", cols, "-column weight");
  std::vector<double> row_sum(static_cast<size_t>(rows), 0.0), col_sum(static_cast<size_t>(cols), 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) {
      const double v = std::fabs(w[r * cols + j]);
      row_sum[size_t(r)] += v;
      col_sum[size_t(j)] += v;
    }
  std::vector<double> act(static_cast<size_t>(cols));
  for (int64_t j = 0; j < cols; ++j) act[size_t(j)] = std::pow(std::sqrt(st.sum_sq[size_t(j)]), a);
  std::vector<float> s(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) {
      const double v = std::fabs(w[r * cols + j]);
      const double ri = (row_sum[size_t(r)] > 0 ? v / row_sum[size_t(r)] : 0.0) + (col_sum[size_t(j)] > 0 ? v / col_sum[size_t(j)] : 0.0);
      s[size_t(r * cols + j)] = float(ri * act[size_t(j)]);
    }
  return s;
}

}  // namespace slimlm::prune
