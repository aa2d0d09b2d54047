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

}  // namespace slimlm::test
