// Seeded random test data for the quantization and pruning tests: Gaussian rows, weights,
// correlated calibration inputs with their layer statistics, and the layer-output error.
#pragma once
#include "quant/layerwise.h"
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace slimlm::test {

// n samples of N(0, sigma²) from mt19937(seed).
inline std::vector<float> gaussian(size_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

// n activations x from N(0, sigma²) (the kernel tests' input vectors).
inline std::vector<float> random_x(int64_t n, uint32_t seed, float sigma = 1.0f) { return gaussian(size_t(n), seed, sigma); }

// max |v|, in double.
inline double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, double(std::fabs(x)));
  return m;
}

// n correlated calibration inputs X (n x k, uneven channel scales) and their stats (XᵀX, Σx²).
inline quant::SiteStats make_stats(int64_t n, int64_t k, uint32_t seed, std::vector<float>* xs = nullptr) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  std::vector<float> mix(static_cast<size_t>(k * k));
  for (auto& v : mix) v = nd(rng) * 0.3f;
  quant::SiteStats st;
  st.k = k;
  st.xtx.assign(size_t(k * k), 0.0);
  st.sum_sq.assign(size_t(k), 0.0);
  std::vector<float> z(static_cast<size_t>(k)), x(static_cast<size_t>(k));
  for (int64_t t = 0; t < n; ++t) {
    for (auto& v : z) v = nd(rng);
    for (int64_t i = 0; i < k; ++i) {
      x[size_t(i)] = z[size_t(i)] * (1.0f + float(i % 5));
      for (int64_t j = 0; j < k; ++j) x[size_t(i)] += mix[size_t(i * k + j)] * z[size_t(j)];
    }
    for (int64_t i = 0; i < k; ++i) {
      st.sum_sq[size_t(i)] += double(x[size_t(i)]) * x[size_t(i)];
      for (int64_t j = 0; j < k; ++j) st.xtx[size_t(i * k + j)] += double(x[size_t(i)]) * x[size_t(j)];
    }
    if (xs) xs->insert(xs->end(), x.begin(), x.end());
  }
  st.count = n;
  return st;
}

// rows x k weights from N(0, 0.02²).
inline std::vector<float> random_weights(int64_t rows, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 0.02f);
  std::vector<float> w(static_cast<size_t>(rows * k));
  for (auto& v : w) v = nd(rng);
  return w;
}

// Σ over rows and tokens of ((w − q) · x)², in double.
inline double output_error(const std::vector<float>& w, const std::vector<float>& q, const std::vector<float>& xs, int64_t rows, int64_t k) {
  const int64_t n = int64_t(xs.size()) / k;
  double e = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t t = 0; t < n; ++t) {
      double d = 0;
      for (int64_t j = 0; j < k; ++j) d += (double(w[size_t(r * k + j)]) - q[size_t(r * k + j)]) * xs[size_t(t * k + j)];
      e += d * d;
    }
  return e;
}

}  // namespace slimlm::test
