// SmoothQuant — Xiao et al., "SmoothQuant: Accurate and Efficient Post-Training Quantization for
// Large Language Models", ICML 2023. Activation outliers sit in a few input channels; migrating
// them into the weights makes both easy to quantize to int8 (W8A8):
//   Y = (X diag(s)⁻¹)(diag(s) W),   s_j = max|X_j|^α / max|W_j|^(1−α)        (Eq. 4)
// max|X_j| over the calibration tokens (SiteStats::absmax), max|W_j| over every output row of
// every weight reading the site (q/k/v together, gate/up together), α the migration strength
// (0.5 in the paper; larger for models with stronger outliers). diag(s)⁻¹ is folded into the
// preceding RMSNorm weight or linear (quant/scaling.cpp), so the smoothed model is the same
// function; the weights are then rounded per output channel to int8 and the activations are
// quantized per token at run time (kernels/w8a8.h) — the paper's per-token dynamic setting.
#include "core/error.h"
#include "quant/methods.h"
#include <algorithm>
#include <cmath>

namespace slimlm::quant {

std::vector<float> smooth_scales(const std::vector<float>& x_absmax, const std::vector<float>& w_absmax, double alpha) {
  SLIMLM_ASSERT(x_absmax.size() == w_absmax.size());
  std::vector<float> s(x_absmax.size(), 1.0f);
  for (size_t j = 0; j < s.size(); ++j) {
    const double ax = x_absmax[j], aw = w_absmax[j];
    if (ax > 0 && aw > 0)  // a channel dead in the calibration data or the weights keeps s = 1
      s[j] = float(std::max(1e-5, std::pow(ax, alpha) / std::pow(aw, 1.0 - alpha)));
  }
  return s;
}

namespace {
// max_r |W[r][j]| over all weights of a site (each rows x k, row-major).
std::vector<float> column_absmax(const std::vector<std::vector<float>>& ws, int64_t k) {
  std::vector<float> m(static_cast<size_t>(k), 0.f);
  for (const auto& w : ws)
    for (size_t i = 0; i < w.size(); ++i) m[i % size_t(k)] = std::max(m[i % size_t(k)], std::fabs(w[i]));
  return m;
}

// o's input channel h·D + d of the query heads sharing one kv head must share s (one v row feeds
// them): take the maxima over the group, so s is the same function of the group's extremes.
void tie_over_kv_groups(const HParams& hp, std::vector<float>& v) {
  const int64_t D = hp.head_dim, group = hp.n_head / hp.n_head_kv;
  for (int64_t g = 0; g < hp.n_head_kv; ++g)
    for (int64_t d = 0; d < D; ++d) {
      float m = 0;
      for (int64_t h = g * group; h < (g + 1) * group; ++h) m = std::max(m, v[size_t(h * D + d)]);
      for (int64_t h = g * group; h < (g + 1) * group; ++h) v[size_t(h * D + d)] = m;
    }
}
}  // namespace

ScaledBlock smoothquant_block(Model& m, int64_t layer, const BlockStats& st, const SmoothOptions& o) {
  if (o.alpha < 0 || o.alpha > 1) fail("SmoothQuant: alpha ", o.alpha, " is outside [0, 1]");
  Block& b = m.blocks[size_t(layer)];
  ScaledBlock out = f32_weights(b);
  // Every site's s from the block's original weights and activations, then all folds.
  std::vector<float> scales[kLinearSites];
  for (int s = 0; s < kLinearSites; ++s) {
    const SiteStats& ss = st[size_t(s)];
    if (!o.site[s] || ss.count == 0) continue;
    std::vector<float> ax = ss.absmax, aw = column_absmax(out.w[s], ss.k);
    if (LinearSite(s) == LinearSite::AttnOut) { tie_over_kv_groups(m.hp, ax); tie_over_kv_groups(m.hp, aw); }
    scales[s] = smooth_scales(ax, aw, o.alpha);
  }
  for (int s = 0; s < kLinearSites; ++s)
    if (!scales[s].empty()) apply_input_scales(b, m.hp, out, LinearSite(s), scales[s]);
  return out;
}

}  // namespace slimlm::quant
