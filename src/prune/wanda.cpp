// Wanda — Sun, Liu, Bair, Kolter, "A Simple and Effective Pruning Approach for Large Language
// Models", ICLR 2024 (arXiv 2306.11695). Importance of a weight is its magnitude times the norm
// of the input feature it multiplies (Eq. 1), compared within each output row:
//   S_ij = |W_ij| · ‖X_j‖₂,   ‖X_j‖₂ = sqrt(Σ_t x_tj²) over all calibration tokens.
// No weight update; N:M takes the N largest S_ij of every M consecutive inputs.
#include "core/error.h"
#include "prune/prune.h"
#include <cmath>

namespace slimlm::prune {

std::vector<float> wanda_scores(const float* w, int64_t rows, int64_t cols, const quant::SiteStats& st) {
  if (st.k != cols || int64_t(st.sum_sq.size()) != cols) fail("Wanda: statistics do not match a ", cols, "-column weight");
  std::vector<float> norm(static_cast<size_t>(cols)), s(static_cast<size_t>(rows * cols));
  for (int64_t j = 0; j < cols; ++j) norm[size_t(j)] = float(std::sqrt(st.sum_sq[size_t(j)]));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) s[size_t(r * cols + j)] = std::fabs(w[r * cols + j]) * norm[size_t(j)];
  return s;
}

}  // namespace slimlm::prune
