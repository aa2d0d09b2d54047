// Seeded random test data for the quantization tests.
#pragma once
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

// Σ_r Σ_t ((W − Q) x_t)_r² for rows x k weights and samples xs (n x k), in double.
inline double output_error(const std::vector<float>& w, const std::vector<float>& q, const std::vector<float>& xs,
                           int64_t rows, int64_t k) {
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
