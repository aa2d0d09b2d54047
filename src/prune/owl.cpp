// OWL — Yin, Wu, Zhang, et al., "Outlier Weighed Layerwise Sparsity (OWL): A Missing Secret
// Sauce for Pruning LLMs to High Sparsity", ICML 2024. Layers with more outliers keep more
// weights. The layer outlier ratio (Sec. 4) over the Wanda scores A_ij = |W_ij|·‖X_j‖₂ of all
// linears of block l:
//   D_l = #{A_ij > M · mean(A)} / #A            (M = 5)
// and the per-layer sparsity, with d_l the ratios scaled to [0, 1] (as in the paper's code):
//   s_l = S − 2λ·(d_l − mean_l d_l)      (λ = 0.08)
// so mean_l s_l = S and max s − min s = 2λ (the paper's s_l ∈ [S − λ, S + λ] when mean d = ½).
// The ratios come from a stats-only first pass over the dense model (prune_model).
#include "core/error.h"
#include "prune/prune.h"
#include <algorithm>
#include <numeric>

namespace slimlm::prune {

OutlierCount count_outliers(const std::vector<std::vector<float>>& scores, double m) {
  OutlierCount c;
  double sum = 0;
  for (const auto& s : scores) {
    for (float v : s) sum += v;
    c.total += int64_t(s.size());
  }
  if (c.total == 0) return c;
  const double cut = m * sum / double(c.total);
  for (const auto& s : scores)
    for (float v : s) c.outliers += double(v) > cut;
  return c;
}

std::vector<double> owl_sparsities(const std::vector<double>& ratios, double sparsity, double lambda) {
  std::vector<double> s(ratios.size(), sparsity);
  if (ratios.empty()) return s;
  const auto [lo, hi] = std::minmax_element(ratios.begin(), ratios.end());
  if (!(*hi > *lo)) return s;
  std::vector<double> d(ratios.size());
  for (size_t i = 0; i < d.size(); ++i) d[i] = (ratios[i] - *lo) / (*hi - *lo);
  const double mean = std::accumulate(d.begin(), d.end(), 0.0) / double(d.size());
  for (size_t i = 0; i < d.size(); ++i) s[i] = std::clamp(sparsity - 2 * lambda * (d[i] - mean), 0.0, 0.99);
  return s;
}

}  // namespace slimlm::prune
