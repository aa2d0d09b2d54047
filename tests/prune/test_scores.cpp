// Importance scores against brute-force re-implementations on a tiny layer: magnitude, Wanda
// (‖X_j‖₂ from the raw inputs, not from the stats), RIA, and OWL's outlier ratio and sparsities.
#include "core/error.h"
#include "prune/prune.h"
#include "quant/random_rows.h"
#include <gtest/gtest.h>
#include <cmath>
#include <numeric>

using namespace slimlm;
using namespace slimlm::prune;

namespace {
constexpr int64_t kRows = 4, kCols = 6, kTokens = 9;

struct Tiny {
  std::vector<float> w = test::gaussian(size_t(kRows * kCols), 21);
  std::vector<float> x;  // kTokens x kCols
  quant::SiteStats st = test::make_stats(kTokens, kCols, 22, &x);
  double col_norm(int64_t j) const {  // ‖X_j‖₂ straight from the inputs
    double s = 0;
    for (int64_t t = 0; t < kTokens; ++t) s += double(x[size_t(t * kCols + j)]) * x[size_t(t * kCols + j)];
    return std::sqrt(s);
  }
};
}  // namespace

TEST(PruneScores, MagnitudeAndWanda) {
  const Tiny t;
  const auto mag = magnitude_scores(t.w.data(), kRows * kCols);
  const auto wanda = wanda_scores(t.w.data(), kRows, kCols, t.st);
  for (int64_t i = 0; i < kRows; ++i)
    for (int64_t j = 0; j < kCols; ++j) {
      const double a = std::fabs(double(t.w[size_t(i * kCols + j)]));
      EXPECT_EQ(mag[size_t(i * kCols + j)], float(a));
      EXPECT_NEAR(wanda[size_t(i * kCols + j)], a * t.col_norm(j), 1e-5 * a * t.col_norm(j)) << i << "," << j;
    }
  quant::SiteStats wrong = t.st;
  wrong.k = 5;
  EXPECT_THROW(wanda_scores(t.w.data(), kRows, kCols, wrong), Error);
}

TEST(PruneScores, Ria) {
  const Tiny t;
  for (double a : {0.5, 1.0, 0.0}) {
    const auto ria = ria_scores(t.w.data(), kRows, kCols, t.st, a);
    for (int64_t i = 0; i < kRows; ++i)
      for (int64_t j = 0; j < kCols; ++j) {
        double row = 0, col = 0;
        for (int64_t k = 0; k < kCols; ++k) row += std::fabs(double(t.w[size_t(i * kCols + k)]));
        for (int64_t k = 0; k < kRows; ++k) col += std::fabs(double(t.w[size_t(k * kCols + j)]));
        const double v = std::fabs(double(t.w[size_t(i * kCols + j)]));
        const double want = (v / row + v / col) * std::pow(t.col_norm(j), a);
        EXPECT_NEAR(ria[size_t(i * kCols + j)], want, 1e-5 * want) << "a=" << a << " " << i << "," << j;
      }
  }
}

TEST(PruneScores, OwlOutlierRatio) {
  // mean of {1 x 18, 10, 30} is 2.9: with M = 3 the cut is 8.7, so 2 of 20 are outliers; with M = 5, 1.
  std::vector<std::vector<float>> s = {std::vector<float>(10, 1.f), std::vector<float>(8, 1.f), {10.f, 30.f}};
  EXPECT_EQ(count_outliers(s, 3).outliers, 2);
  EXPECT_EQ(count_outliers(s, 5).outliers, 1);
  EXPECT_EQ(count_outliers(s, 5).total, 20);
}

TEST(PruneScores, OwlSparsitiesAverageToTheTarget) {
  const std::vector<double> ratios = {0.01, 0.03, 0.02, 0.10, 0.01, 0.05};
  const double S = 0.7, lambda = 0.08;
  const auto s = owl_sparsities(ratios, S, lambda);
  ASSERT_EQ(s.size(), ratios.size());
  EXPECT_NEAR(std::accumulate(s.begin(), s.end(), 0.0) / double(s.size()), S, 1e-12);
  for (size_t i = 0; i < s.size(); ++i) {
    EXPECT_GE(s[i], S - 2 * lambda - 1e-12);
    EXPECT_LE(s[i], S + 2 * lambda + 1e-12);
    for (size_t j = 0; j < s.size(); ++j)
      if (ratios[i] > ratios[j]) { EXPECT_LT(s[i], s[j]); }  // more outliers, fewer weights removed
  }
  // Spread: the extremes are exactly 2λ apart (d = 0 and d = 1).
  EXPECT_NEAR(*std::max_element(s.begin(), s.end()) - *std::min_element(s.begin(), s.end()), 2 * lambda, 1e-12);
  for (double v : owl_sparsities({0.02, 0.02, 0.02}, S, lambda)) EXPECT_EQ(v, S);
}
