// Pruning masks: exact counts per row / per layer, the N:M pattern on ragged widths, ties broken
// by position, and the global magnitude threshold against a brute-force sort.
#include "core/error.h"
#include "prune/prune.h"
#include <gtest/gtest.h>
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

using namespace slimlm;
using namespace slimlm::prune;

namespace {
// Scores with many ties: small integers.
std::vector<float> tied_scores(int64_t n, uint32_t seed, int levels = 4) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(0, levels - 1);
  std::vector<float> s(static_cast<size_t>(n));
  for (auto& v : s) v = float(d(rng));
  return s;
}

// Checks that in score[0..n) exactly `count` entries are pruned and they are the first `count`
// in (score, index) order, computed by a full sort.
void expect_lowest_pruned(const float* score, const uint8_t* keep, int64_t n, int64_t count) {
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return score[a] < score[b]; });
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(keep[idx[size_t(i)]], i < count ? 0 : 1) << "position " << idx[size_t(i)];
}
}  // namespace

TEST(PruneMask, PerRowAndPerLayerCountsAreExact) {
  for (int64_t rows : {1, 3, 7})
    for (int64_t cols : {1, 5, 13, 64, 173})
      for (double s : {0.0, 0.3, 0.5, 0.7, 0.99}) {
        SCOPED_TRACE(testing::Message() << rows << "x" << cols << " s=" << s);
        const auto score = tied_scores(rows * cols, uint32_t(rows * 1000 + cols));
        const int64_t per_row = int64_t(std::floor(s * double(cols) + 1e-9));
        const Mask row = mask_per_row(score.data(), rows, cols, s);
        for (int64_t r = 0; r < rows; ++r) expect_lowest_pruned(score.data() + r * cols, row.data() + r * cols, cols, per_row);
        const int64_t per_layer = int64_t(std::floor(s * double(rows * cols) + 1e-9));
        const Mask layer = mask_per_layer(score.data(), rows, cols, s);
        expect_lowest_pruned(score.data(), layer.data(), rows * cols, per_layer);
        EXPECT_EQ(std::count(layer.begin(), layer.end(), 0), per_layer);
      }
  EXPECT_EQ(prune_count(0.7, 10), 7);   // 0.7 * 10 is 7.000000000000001 in double
  EXPECT_EQ(prune_count(0.29, 100), 29);  // 0.29 * 100 is 28.999999999999996
}

TEST(PruneMask, TiesArePrunedInIndexOrder) {
  const std::vector<float> same(10, 1.0f);
  const Mask k = mask_per_layer(same.data(), 1, 10, 0.4);
  EXPECT_EQ(k, Mask({0, 0, 0, 0, 1, 1, 1, 1, 1, 1}));
}

TEST(PruneMask, NmPatternOnRaggedWidths) {
  for (auto [n, m] : std::vector<std::pair<int, int>>{{2, 4}, {1, 4}, {4, 8}, {3, 3}, {1, 1}, {2, 3}})
    for (int64_t cols : {3, 4, 13, 64, 70}) {
      SCOPED_TRACE(testing::Message() << n << ":" << m << " cols " << cols);
      const int64_t rows = 5;
      const auto score = tied_scores(rows * cols, uint32_t(cols * 10 + m), 3);
      const Mask keep = mask_nm(score.data(), rows, cols, n, m);
      std::vector<float> w(score.size(), 1.f);
      apply_mask(w.data(), keep);
      EXPECT_TRUE(satisfies_nm(w.data(), rows, cols, n, m));
      int64_t kept = 0;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; c += m) {
          const int64_t len = std::min<int64_t>(m, cols - c), off = r * cols + c;
          expect_lowest_pruned(score.data() + off, keep.data() + off, len, len - std::min<int64_t>(n, len));
          kept += std::min<int64_t>(n, len);
        }
      EXPECT_EQ(std::count(keep.begin(), keep.end(), 1), kept);
      if (cols % m == 0) { EXPECT_EQ(kept * m, rows * cols * n); }
    }
  std::vector<float> w = {1, 1, 1, 0, 1, 0, 0, 0};
  EXPECT_FALSE(satisfies_nm(w.data(), 1, 8, 2, 4));
  EXPECT_TRUE(satisfies_nm(w.data(), 1, 8, 3, 4));
  EXPECT_THROW(mask_nm(w.data(), 1, 8, 3, 2), Error);
}

TEST(PruneMask, ThresholdAndSelect) {
  const std::vector<float> s = {3, 1, 2, 1, 5, 1};
  EXPECT_EQ(mask_threshold(s.data(), 6, 1.f, 2), Mask({1, 0, 1, 0, 1, 1}));
  EXPECT_EQ(mask_threshold(s.data(), 6, 2.f, 0), Mask({1, 0, 1, 0, 1, 0}));
  Pattern p;
  p.sparsity = 0.5;
  EXPECT_EQ(select_mask(s.data(), 2, 3, p, Group::Row), Mask({1, 0, 1, 0, 1, 1}));
  EXPECT_EQ(select_mask(s.data(), 2, 3, p, Group::Layer), Mask({1, 0, 1, 0, 1, 0}));
  p.n = 1; p.m = 3;
  EXPECT_EQ(select_mask(s.data(), 2, 3, p, Group::Row), Mask({1, 0, 0, 0, 1, 0}));
}

// Global magnitude: the threshold and tie quotas reproduce pruning the smallest |w| of all tensors
// in (|w|, tensor, index) order, found here by sorting everything.
TEST(PruneMask, GlobalMagnitudeMatchesASortOfAllWeights) {
  std::vector<Tensor> ts;
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> d(-6, 6);
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{3, 8}, {5, 4}, {2, 16}};  // (rows, cols)
  for (size_t i = 0; i < shapes.size(); ++i) {
    std::vector<float> w(static_cast<size_t>(shapes[i].first * shapes[i].second));
    for (auto& v : w) v = 0.25f * float(d(rng));  // many exact ties, both signs, zeros
    ts.push_back(Tensor::from_f32("t" + std::to_string(i), {shapes[i].second, shapes[i].first}, w.data(), DType::F16));
  }
  std::vector<const Tensor*> ptrs;
  for (const auto& t : ts) ptrs.push_back(&t);
  for (double s : {0.0, 0.1, 0.5, 0.77, 0.95}) {
    SCOPED_TRACE(s);
    const GlobalThreshold g = global_magnitude_threshold(ptrs, s);
    struct E { float a; size_t t; int64_t i; };
    std::vector<E> all;
    std::vector<Mask> masks;
    for (size_t t = 0; t < ts.size(); ++t) {
      const auto w = ts[t].to_f32();
      const auto sc = magnitude_scores(w.data(), int64_t(w.size()));
      for (size_t i = 0; i < w.size(); ++i) all.push_back({std::fabs(w[i]), t, int64_t(i)});
      masks.push_back(mask_threshold(sc.data(), int64_t(sc.size()), g.t, g.ties[t]));
    }
    std::stable_sort(all.begin(), all.end(), [](const E& a, const E& b) { return a.a < b.a; });
    const int64_t count = int64_t(std::floor(s * double(all.size()) + 1e-9));
    for (int64_t k = 0; k < int64_t(all.size()); ++k)
      EXPECT_EQ(masks[all[size_t(k)].t][size_t(all[size_t(k)].i)], k < count ? 0 : 1) << k;
  }
}
