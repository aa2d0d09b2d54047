// AWQ — Lin et al., "AWQ: Activation-aware Weight Quantization for LLM Compression and
// Acceleration", MLSys 2024. Salient input channels (large mean |x|) are protected by scaling:
//   Q(W·diag(s))·diag(s)⁻¹ X,  s = s_X^α / sqrt(max s_X^α · min s_X^α),  s_X = mean_t |x_tj|   (Eq. 4-5)
//   α* = argmin_α ‖W X − Q(W·diag(s)) (diag(s)⁻¹ X)‖²  over a grid α ∈ [0, 1)
// diag(s)⁻¹ is folded into the op that produces X (the RMSNorm weight; the up projection's rows
// for the down projection's input; the value projection for the output projection when the
// head counts allow; quant/scaling.cpp). Then, per group, the clipping ratio minimising the group's output error on
// calibration tokens (the paper's auto-clip; skipped for q/k, whose errors the softmax reshapes).
#include "core/error.h"
#include "kernels/kernels.h"
#include "quant/methods.h"
#include <algorithm>
#include <cmath>
#include <limits>

namespace slimlm::quant {

namespace {
// Σ_t Σ_r ((W − Ŵ) x_t)_r² over the sample rows X (n x k).
double output_error(const std::vector<float>& w, const std::vector<float>& wq, int64_t rows, int64_t k,
                    const float* X, int64_t n) {
  std::vector<float> d(w.size()), y(size_t(n * rows));
  for (size_t i = 0; i < w.size(); ++i) d[i] = w[i] - wq[i];
  kernels::matmul(f32_view(d.data(), rows, k), X, k, n, y.data(), rows);
  double s = 0;
  for (float v : y) s += double(v) * v;
  return s;
}

std::vector<float> scaled_rtn(const std::vector<float>& w, int64_t rows, int64_t k, const std::vector<float>& s, const Codec& c) {
  std::vector<float> ws(w.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < k; ++j) ws[size_t(r * k + j)] = w[size_t(r * k + j)] * s[size_t(j)];
  std::vector<float> q = rtn(ws.data(), rows, k, c).deq();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < k; ++j) q[size_t(r * k + j)] /= s[size_t(j)];
  return q;
}

std::vector<float> alpha_scales(const SiteStats& st, double alpha) {
  const int64_t k = st.k;
  std::vector<float> s(static_cast<size_t>(k));
  float mx = 0, mn = std::numeric_limits<float>::max();
  for (int64_t j = 0; j < k; ++j) {
    s[size_t(j)] = std::max(1e-4f, float(std::pow(std::max(st.mean_abs(j), 1e-8), alpha)));
    mx = std::max(mx, s[size_t(j)]); mn = std::min(mn, s[size_t(j)]);
  }
  const float norm = std::sqrt(mx * mn);
  for (auto& v : s) v /= norm;
  return s;
}

// Per (row, fit span): clip ratio in {1, 1 − 0.5/n, ...} minimising Σ_t (Δw_span · x_t,span)² on the
// sample. A span is one group, or a K-quant super-block whose groups are fitted together (one ratio
// for all its groups). The result has one ratio per (row, group).
std::vector<float> clip_search(const std::vector<float>& w, int64_t rows, int64_t k, const float* X, int64_t n,
                               const Codec& c, int grid) {
  const int64_t G = c.group(), S = c.fit_span(), ng = (k + G - 1) / G;
  std::vector<float> best(size_t(rows * ng), 1.0f);
  std::vector<double> best_err(static_cast<size_t>(rows));
  std::vector<float> D(size_t(rows * std::min(S, k))), Y(size_t(n * rows));
  for (int64_t j0 = 0; j0 < k; j0 += S) {
    const int64_t len = std::min(S, k - j0), nsg = (len + G - 1) / G;
    std::fill(best_err.begin(), best_err.end(), std::numeric_limits<double>::max());
    for (int i = 0; i < grid; ++i) {
      const float ratio = 1.0f - 0.5f * float(i) / float(grid);
      // rounding error of every row's span at this clip ratio, then its effect on the sample
      // outputs for all rows at once: Y = D · X_spanᵀ on the GEMM
#pragma omp parallel
      {
        std::vector<float> ratios(size_t(S / G + 1), ratio);
        std::vector<GroupFit> fits(size_t(S / G + 1));
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; ++r) {
          const float* wg = w.data() + r * k + j0;
          c.fit_span(wg, len, fits.data(), ratios.data());
          for (int64_t j = 0; j < len; ++j) D[size_t(r * len + j)] = wg[j] - c.round(wg[j], fits[size_t(j / G)]);
        }
      }
      kernels::matmul_f32_rows(D.data(), rows, len, X + j0, k, n, Y.data(), rows);
#pragma omp parallel for schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        double err = 0;
        for (int64_t t = 0; t < n; ++t) err += double(Y[size_t(t * rows + r)]) * Y[size_t(t * rows + r)];
        if (err < best_err[size_t(r)]) {
          best_err[size_t(r)] = err;
          std::fill_n(best.begin() + r * ng + j0 / G, nsg, ratio);
        }
      }
    }
  }
  return best;
}
}  // namespace

AwqBlock awq_block(Model& m, int64_t layer, const BlockStats& stats, const Codec& c, const AwqOptions& o) {
  return awq_block(m, layer, stats, [&c](const Tensor&) { return &c; }, o);
}

AwqBlock awq_block(Model& m, int64_t layer, const BlockStats& stats, const CodecFor& codec_for, const AwqOptions& o) {
  Block& b = m.blocks[size_t(layer)];
  const HParams& hp = m.hp;
  AwqBlock out;
  static_cast<ScaledBlock&>(out) = f32_weights(b);

  // Sites in an order where each fold target is still f32 in `out`: FfnIn before FfnDown (up's rows).
  for (int s : {0, 2, 3, 1}) {
    const SiteStats& st = stats[size_t(s)];
    const bool foldable = s != int(LinearSite::AttnOut) || hp.n_head_at(layer) == hp.n_head_kv_at(layer);
    if (!foldable || o.grid <= 0 || st.n_sample == 0) continue;
    const int64_t k = st.k, n = st.n_sample;
    const auto ws = site_weights(b, LinearSite(s));
    double best_err = std::numeric_limits<double>::max(), best_alpha = 0;
    for (int gi = 0; gi < o.grid; ++gi) {
      const double alpha = double(gi) / o.grid;
      const std::vector<float> sc = alpha_scales(st, alpha);
      double err = 0;
      for (size_t i = 0; i < ws.size(); ++i) {
        const int64_t rows = ws[i]->rows();
        const Codec* c = codec_for(*ws[i]);
        if (c) err += output_error(out.w[s][i], scaled_rtn(out.w[s][i], rows, k, sc, *c), rows, k, st.sample.data(), n);
      }
      if (err < best_err) { best_err = err; best_alpha = alpha; }
    }
    out.alpha[s] = best_alpha;
    apply_input_scales(b, hp, out, LinearSite(s), alpha_scales(st, best_alpha));  // also fold diag(s)⁻¹
  }

  for (int s = 0; s < kLinearSites; ++s) {
    const SiteStats& st = stats[size_t(s)];
    const auto ws = site_weights(b, LinearSite(s));
    out.clip[s].resize(ws.size());
    if (!o.clip || st.n_sample == 0) continue;
    const int64_t k = st.k, n = std::min<int64_t>(st.n_sample, o.clip_tokens);
    std::vector<float> X(st.sample.begin(), st.sample.begin() + n * k);  // inputs as the scaled weights see them
    if (!out.scale[s].empty())
      for (int64_t t = 0; t < n; ++t)
        for (int64_t j = 0; j < k; ++j) X[size_t(t * k + j)] /= out.scale[s][size_t(j)];
    for (size_t i = 0; i < ws.size(); ++i) {
      if (s == int(LinearSite::AttnIn) && i < 2) continue;  // q, k
      if (const Codec* c = codec_for(*ws[i])) out.clip[s][i] = clip_search(out.w[s][i], ws[i]->rows(), k, X.data(), n, *c, o.clip_grid);
    }
  }
  return out;
}

}  // namespace slimlm::quant
