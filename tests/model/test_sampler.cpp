// Sampler: greedy, seeded determinism, and that top-k / top-p / min-p / repetition penalty
// restrict the candidates as specified.
#include "model/sampler.h"
#include "core/error.h"
#include <gtest/gtest.h>
#include <cmath>
#include <set>

using namespace slimlm;

namespace {
std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(float(std::log(p)));
  return l;
}
std::set<int32_t> draws(SamplerParams p, const std::vector<float>& base, int n = 2000, std::vector<int32_t> hist = {}) {
  Sampler s(p);
  std::set<int32_t> seen;
  for (int i = 0; i < n; ++i) {
    auto l = base;
    seen.insert(s.sample(l.data(), int64_t(l.size()), hist));
  }
  return seen;
}
}  // namespace

TEST(Sampler, GreedyTakesArgmax) {
  SamplerParams p; p.temp = 0;
  Sampler s(p);
  std::vector<float> l = {0.1f, 3.f, 2.9f, -1.f};
  EXPECT_EQ(s.sample(l.data(), 4, {}), 1);
}

TEST(Sampler, SameSeedSameTokens) {
  SamplerParams p; p.temp = 1.0f; p.top_k = 0; p.top_p = 1; p.min_p = 0; p.seed = 7;
  auto base = logits_of({0.2, 0.3, 0.1, 0.25, 0.15});
  Sampler a(p), b(p);
  p.seed = 8;
  Sampler c(p);
  int differ = 0;
  for (int i = 0; i < 200; ++i) {
    auto la = base, lb = base, lc = base;
    const int32_t x = a.sample(la.data(), 5, {}), y = b.sample(lb.data(), 5, {});
    EXPECT_EQ(x, y);
    differ += x != c.sample(lc.data(), 5, {});
  }
  EXPECT_GT(differ, 0);
}

TEST(Sampler, TopKTopPMinPRestrictCandidates) {
  auto base = logits_of({0.4, 0.3, 0.15, 0.1, 0.05});
  SamplerParams p; p.temp = 1.0f; p.top_k = 0; p.top_p = 1; p.min_p = 0;
  EXPECT_EQ(draws(p, base).size(), 5u);
  p.top_k = 2;
  EXPECT_EQ(draws(p, base), (std::set<int32_t>{0, 1}));
  p.top_k = 0; p.top_p = 0.8f;  // 0.4 + 0.3 + 0.15 = 0.85 >= 0.8
  EXPECT_EQ(draws(p, base), (std::set<int32_t>{0, 1, 2}));
  p.top_p = 1; p.min_p = 0.3f;  // keep p >= 0.12
  EXPECT_EQ(draws(p, base), (std::set<int32_t>{0, 1, 2}));
}

TEST(Sampler, RepetitionPenaltyDemotesSeenTokens) {
  SamplerParams p; p.temp = 0; p.repeat_penalty = 2.0f;
  Sampler s(p);
  std::vector<float> l = {3.f, 2.f, 1.f};
  EXPECT_EQ(s.sample(l.data(), 3, {0}), 1);  // 3/2 = 1.5 < 2
}

TEST(Sampler, RejectsBadParameters) {
  SamplerParams p; p.top_p = 0;
  EXPECT_THROW(Sampler{p}, Error);
  p = {}; p.temp = -1;
  EXPECT_THROW(Sampler{p}, Error);
}
