// DSnoT (Zhang et al., ICLR 2024, "Dynamic Sparse No Training: Training-Free Fine-tuning for
// Sparse LLMs"): a pruning mask refined without training by swapping pruned and kept weights of
// an output row so that the row's output over the calibration inputs moves back toward the dense
// one. DSnoT drives the expected reconstruction error to zero with a variance-aware criterion;
// here both are one objective, the mean squared output error of row i under a model of the
// inputs with per-channel means μ_j and variances σ_j² (channels taken as uncorrelated):
//     L_i = E[(Σ_{j pruned} W_ij x_j)²] = ε_i² + Σ_{j pruned} W_ij² σ_j²,   ε_i = Σ_{j pruned} W_ij μ_j
// (ε_i is DSnoT's expected error; with μ = 0 this is Wanda's criterion, W²·E[x²]). Each cycle
// makes one swap, keeping the row's count (N:M: inside the grown weight's group of M):
//     grow   g = argmax_{j pruned} gain_j,  gain_j = ε² − (ε − W_ij μ_j)² + W_ij² σ_j²
//     prune  k = argmin_{j kept, j ≠ g} cost_j,  cost_j = (ε' + W_ij μ_j)² − ε'² + W_ij² σ_j²,  ε' = ε − W_ig μ_g
// and is made only when gain_g > cost_k (L_i drops). A row stops after max_cycles swaps, when
// no swap lowers L_i, or when |ε_i| falls to tol times its starting value.
#include "core/error.h"
#include "prune/prune.h"
#include <algorithm>
#include <cmath>

namespace slimlm::prune {

DsnotReport dsnot_refine(const float* w, int64_t rows, int64_t cols, const quant::SiteStats& st, const Pattern& p,
                         Mask& keep, const DsnotOptions& o) {
  if (int64_t(keep.size()) != rows * cols) fail("DSnoT: mask has ", keep.size(), " entries, the weight ", rows * cols);
  if (st.k != cols || int64_t(st.sum.size()) != cols || int64_t(st.sum_sq.size()) != cols || st.count <= 0)
    fail("DSnoT needs the input means and norms of the layer (calibration statistics)");
  std::vector<double> mu(static_cast<size_t>(cols)), var(static_cast<size_t>(cols));
  for (int64_t j = 0; j < cols; ++j) {
    mu[size_t(j)] = st.sum[size_t(j)] / double(st.count);
    var[size_t(j)] = std::max(0.0, st.sum_sq[size_t(j)] / double(st.count) - mu[size_t(j)] * mu[size_t(j)]);
  }
  double before = 0, after = 0;
  int64_t swaps = 0;
#pragma omp parallel for schedule(dynamic, 8) reduction(+ : before, after, swaps)
  for (int64_t i = 0; i < rows; ++i) {
    const float* wr = w + i * cols;
    uint8_t* kr = keep.data() + i * cols;
    double eps = 0;
    for (int64_t j = 0; j < cols; ++j)
      if (!kr[j]) eps += double(wr[j]) * mu[size_t(j)];
    const double eps0 = std::fabs(eps);
    before += eps0;
    for (int cycle = 0; cycle < o.max_cycles && std::fabs(eps) > o.tol * eps0 && eps != 0; ++cycle) {
      int64_t g = -1;  // grow
      double gain = 0;
      for (int64_t j = 0; j < cols; ++j) {
        if (kr[j]) continue;
        const double c = double(wr[j]) * mu[size_t(j)];
        const double gj = eps * eps - (eps - c) * (eps - c) + double(wr[j]) * double(wr[j]) * var[size_t(j)];
        if (gj > gain) { g = j; gain = gj; }
      }
      if (g < 0) break;
      const double eps1 = eps - double(wr[g]) * mu[size_t(g)];
      const int64_t lo = p.nm() ? g / p.m * p.m : 0, hi = p.nm() ? std::min<int64_t>(lo + p.m, cols) : cols;
      int64_t k = -1;  // prune
      double cost = gain;
      for (int64_t j = lo; j < hi; ++j) {
        if (!kr[j] || j == g) continue;
        const double c = double(wr[j]) * mu[size_t(j)];
        const double cj = (eps1 + c) * (eps1 + c) - eps1 * eps1 + double(wr[j]) * double(wr[j]) * var[size_t(j)];
        if (cj < cost) { k = j; cost = cj; }
      }
      if (k < 0) break;  // no kept weight is cheaper to lose than g is to revive
      kr[g] = 1;
      kr[k] = 0;
      eps = eps1 + double(wr[k]) * mu[size_t(k)];
      ++swaps;
    }
    after += std::fabs(eps);
  }
  DsnotReport rep;
  rep.swaps = swaps;
  rep.err_before = before;
  rep.err_after = after;
  return rep;
}

}  // namespace slimlm::prune
