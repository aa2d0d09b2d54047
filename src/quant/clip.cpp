#include "quant/clip.h"
#include "core/error.h"
#include <algorithm>
#include <cmath>

namespace slimlm::quant {

float percentile(const float* x, int64_t n, double p) {
  if (n <= 0) fail("percentile of an empty array");
  if (!(p >= 0 && p <= 100)) fail("percentile ", p, " is out of range (0..100)");
  std::vector<float> a(x, x + n);
  const double h = double(n - 1) * p / 100.0;
  const int64_t k = std::min<int64_t>(int64_t(std::floor(h)), n - 1);
  std::nth_element(a.begin(), a.begin() + k, a.end());
  const float lo = a[size_t(k)];
  if (k + 1 >= n || h == double(k)) return lo;
  const float hi = *std::min_element(a.begin() + k + 1, a.end());
  return float(double(lo) + (h - double(k)) * (double(hi) - double(lo)));
}

float clip_percentile(const float* x, int64_t n, double p, bool sym) {
  constexpr float kMinRatio = 1e-6f;
  if (n <= 0) return 1.0f;
  float r = 0;
  if (sym) {
    std::vector<float> a(static_cast<size_t>(n));
    float m = 0;
    for (int64_t i = 0; i < n; ++i) { a[size_t(i)] = std::fabs(x[i]); m = std::max(m, a[size_t(i)]); }
    if (m == 0) return 1.0f;
    r = percentile(a.data(), n, p) / m;
  } else {
    float lo = 0, hi = 0;
    for (int64_t i = 0; i < n; ++i) { lo = std::min(lo, x[i]); hi = std::max(hi, x[i]); }
    if (lo == 0 && hi == 0) return 1.0f;
    const float phi = percentile(x, n, p), plo = percentile(x, n, 100.0 - p);
    if (hi > 0 && phi > 0) r = std::max(r, phi / hi);
    if (lo < 0 && plo < 0) r = std::max(r, plo / lo);
  }
  return std::clamp(r, kMinRatio, 1.0f);
}

std::vector<float> ClipGrid::ratios() const {
  if (!(step > 0) || !(min > 0) || max > 1.0 || min > max) fail("clip grid ", max, "..", min, " step ", step, " is invalid");
  std::vector<float> r;
  for (int64_t k = 0;; ++k) {
    const double v = max - double(k) * step;
    if (v < min - 1e-9) break;
    r.push_back(float(v));
  }
  return r;
}

double roundtrip_sse(const Codec& c, const float* x, int64_t n, float clip, const float* importance) {
  const GroupFit f = c.fit(x, n, clip);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = double(x[i]) - double(c.round(x[i], f));
    s += (importance ? double(importance[i]) : 1.0) * d * d;
  }
  return s;
}

float clip_mse(const Codec& c, const float* x, int64_t n, const float* importance, const ClipGrid& grid) {
  float best = 1.0f;
  double best_err = INFINITY;
  for (float r : grid.ratios()) {
    const double e = roundtrip_sse(c, x, n, r, importance);
    if (e < best_err) { best_err = e; best = r; }
  }
  return best;
}

std::vector<float> clip_mse_row(const Codec& c, const float* w, int64_t n, const float* importance, const ClipGrid& grid) {
  const int64_t g = c.group(), ng = (n + g - 1) / g;
  std::vector<float> out(static_cast<size_t>(ng));
  for (int64_t k = 0; k < ng; ++k) {
    const int64_t i0 = k * g, len = std::min(g, n - i0);
    out[size_t(k)] = clip_mse(c, w + i0, len, importance ? importance + i0 : nullptr, grid);
  }
  return out;
}

// ---- activations ----------------------------------------------------------------------------

AbsHistogram::AbsHistogram(int bins) {
  if (bins < 2 || bins % 2 != 0) fail("histogram needs an even number of bins >= 2, not ", bins);
  counts_.assign(size_t(bins), 0.0);
}

void AbsHistogram::add(const float* x, int64_t n) {
  float m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  if (!std::isfinite(m)) fail("activation histogram: non-finite value");
  max_seen_ = std::max(max_seen_, m);
  if (amax_ == 0) amax_ = m;  // zeros seen so far sit in bin 0 whatever the range
  const int nb = bins();
  while (m > amax_) {  // double the range: bin j of the new histogram = bins 2j, 2j+1 of the old
    for (int j = 0; j < nb / 2; ++j) counts_[size_t(j)] = counts_[size_t(2 * j)] + counts_[size_t(2 * j + 1)];
    std::fill(counts_.begin() + nb / 2, counts_.end(), 0.0);
    amax_ *= 2;
  }
  if (amax_ == 0) { counts_[0] += double(n); return; }
  const double inv = double(nb) / double(amax_);
  for (int64_t i = 0; i < n; ++i)
    counts_[size_t(std::min<int64_t>(int64_t(double(std::fabs(x[i])) * inv), nb - 1))] += 1.0;
}

namespace {
// KL(P ‖ Q) of two unnormalised histograms. Bins where P > 0 but Q = 0 get probability eps and the
// other bins of Q shrink by (1 − eps·#those), so such a candidate is penalised, not excluded.
double kl_divergence(const std::vector<double>& p, const std::vector<double>& q) {
  constexpr double eps = 1e-4;
  double sp = 0, sq = 0;
  int64_t q_zero = 0;
  for (size_t j = 0; j < p.size(); ++j) {
    sp += p[j]; sq += q[j];
    q_zero += p[j] > 0 && q[j] <= 0;
  }
  if (sp <= 0 || sq <= 0) return INFINITY;
  const double shrink = std::max(0.0, 1.0 - eps * double(q_zero)) / sq;
  double kl = 0;
  for (size_t j = 0; j < p.size(); ++j) {
    if (p[j] <= 0) continue;
    const double pj = p[j] / sp, qj = q[j] > 0 ? q[j] * shrink : eps;
    kl += pj * std::log(pj / std::max(qj, 1e-300));
  }
  return kl;
}
}  // namespace

float kl_threshold(const AbsHistogram& h, int bits) {
  if (bits < 2 || bits > 16) fail("kl calibration: ", bits, " bits is out of range (2..16)");
  const int levels = 1 << (bits - 1), nb = h.bins();
  if (h.amax() == 0) return 0.0f;
  if (nb < levels) return h.max_seen();
  const std::vector<double>& hist = h.counts();
  std::vector<double> suffix(size_t(nb) + 1, 0.0);  // suffix[i] = Σ_{j >= i} hist[j]
  for (int j = nb - 1; j >= 0; --j) suffix[size_t(j)] = suffix[size_t(j) + 1] + hist[size_t(j)];
  double best_kl = INFINITY;
  int best_i = nb;
  std::vector<double> p, q;
  for (int i = levels; i <= nb; ++i) {
    p.assign(hist.begin(), hist.begin() + i);
    p[size_t(i) - 1] += suffix[size_t(i)];  // the clipped tail lands in the last kept bin
    q.assign(size_t(i), 0.0);
    for (int l = 0; l < levels; ++l) {  // level l covers bins [i·l/levels, i·(l+1)/levels)
      const int b0 = int(int64_t(i) * l / levels), b1 = int(int64_t(i) * (l + 1) / levels);
      double mass = 0;
      int nonzero = 0;
      for (int j = b0; j < b1; ++j) { mass += hist[size_t(j)]; nonzero += p[size_t(j)] > 0; }
      if (nonzero == 0) continue;
      for (int j = b0; j < b1; ++j) if (p[size_t(j)] > 0) q[size_t(j)] = mass / nonzero;
    }
    const double kl = kl_divergence(p, q);
    if (kl < best_kl) { best_kl = kl; best_i = i; }
  }
  return float(double(best_i) * double(h.amax()) / double(nb));
}

float kl_threshold(const float* x, int64_t n, int bits, int bins) {
  AbsHistogram h(bins);
  h.add(x, n);
  return kl_threshold(h, bits);
}

float act_scale(float threshold, int bits) { return threshold / float((1 << (bits - 1)) - 1); }

float fake_quant_act(float* x, int64_t n, int bits, float scale) {
  if (bits < 2 || bits > 16) fail("activation quantization: ", bits, " bits is out of range (2..16)");
  const float qmax = float((1 << (bits - 1)) - 1);
  if (scale < 0 || !std::isfinite(scale)) fail("activation quantization: invalid scale ", scale);
  if (scale == kDynamicScale) {
    float m = 0;
    for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
    if (m == 0) return 0.0f;
    scale = m / qmax;
  }
  for (int64_t i = 0; i < n; ++i) x[i] = scale * std::clamp(std::nearbyint(x[i] / scale), -qmax, qmax);
  return scale;
}

void fake_quant_act_rows(float* x, int64_t n_tok, int64_t n, int64_t ld, int bits, float scale) {
  if (n_tok > 0) fake_quant_act(x, 0, bits, scale);  // validates once, outside the parallel region
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < n_tok; ++t) fake_quant_act(x + t * ld, n, bits, scale);
}

}  // namespace slimlm::quant
