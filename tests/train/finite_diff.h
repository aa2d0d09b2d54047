// Float64 central finite differences against an analytic gradient.
#pragma once
#include <gtest/gtest.h>
#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <vector>

namespace slimlm::test {
// n normal(0, sd) values from a seeded generator.
inline std::vector<double> randn(size_t n, uint32_t seed, double sd = 1.0) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> d(0.0, sd);
  std::vector<double> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}
// ‖analytic − numeric‖ / max(‖analytic‖, ‖numeric‖) over the entries idx of x (all when idx is
// empty), numeric = (loss(x + h) − loss(x − h)) / 2h. Fails the test when both are zero there.
inline double fd_error(std::vector<double>& x, const std::vector<double>& analytic, const std::function<double()>& loss,
                       const std::vector<size_t>& idx = {}, double h = 1e-6) {
  double diff = 0, na = 0, nn = 0;
  for (size_t s = 0; s < (idx.empty() ? x.size() : idx.size()); ++s) {
    const size_t i = idx.empty() ? s : idx[s];
    const double keep = x[i];
    x[i] = keep + h;
    const double up = loss();
    x[i] = keep - h;
    const double down = loss();
    x[i] = keep;
    const double num = (up - down) / (2 * h);
    diff += (num - analytic[i]) * (num - analytic[i]);
    na += analytic[i] * analytic[i];
    nn += num * num;
  }
  EXPECT_GT(std::max(na, nn), 1e-20) << "a zero gradient checks nothing";
  return std::sqrt(diff / std::max({na, nn, 1e-300}));
}
}  // namespace slimlm::test
