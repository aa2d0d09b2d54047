// Distillation losses: each gradient against float64 central differences, their values against
// their definitions at known points, and the properties that tell them apart.
#include "core/error.h"
#include "finite_diff.h"
#include "train/distill.h"
#include <gtest/gtest.h>
#include <cmath>
#include <random>

using namespace slimlm;
using namespace slimlm::train;

namespace {
using test::randn;
const DistillLoss kAll[] = {DistillLoss::ForwardKL, DistillLoss::ReverseKL, DistillLoss::JSD, DistillLoss::SkewKL,
                            DistillLoss::SkewRKL};
}  // namespace

TEST(Distill, GradientsMatchFiniteDifferences) {
  const int64_t n = 3, V = 9;
  const uint8_t mask[3] = {1, 0, 1};
  for (DistillLoss l : kAll)
    for (double tau : {1.0, 2.0}) {
      DistillOptions o{l, tau, 0.3};
      auto zs = randn(n * V, 1, 2.0), zt = randn(n * V, 2, 2.0);
      std::vector<double> g(zs.size(), 0.0);
      const double loss = distill(o, zs.data(), zt.data(), n, V, mask, g.data());
      EXPECT_GT(loss, 0.0);
      auto f = [&] { return distill<double>(o, zs.data(), zt.data(), n, V, mask, nullptr); };
      EXPECT_LT(test::fd_error(zs, g, f), 1e-4) << int(l) << " tau " << tau;
      for (int64_t i = 0; i < V; ++i) EXPECT_EQ(g[size_t(V + i)], 0.0) << "masked row";
    }
}

TEST(Distill, ValuesAtKnownPoints) {
  const int64_t V = 2;
  // p_s = (1/2, 1/2), p_t = (0.8, 0.2): logits log p
  const double zs[2] = {0, 0}, zt[2] = {std::log(0.8), std::log(0.2)};
  auto at = [&](DistillLoss l, double beta) { return distill<double>({l, 1.0, beta}, zs, zt, 1, V, nullptr, nullptr); };
  const double fkl = 0.8 * std::log(0.8 / 0.5) + 0.2 * std::log(0.2 / 0.5);
  const double rkl = 0.5 * std::log(0.5 / 0.8) + 0.5 * std::log(0.5 / 0.2);
  EXPECT_NEAR(at(DistillLoss::ForwardKL, 0.5), fkl, 1e-12);
  EXPECT_NEAR(at(DistillLoss::ReverseKL, 0.5), rkl, 1e-12);
  const double m0 = 0.65, m1 = 0.35;  // β = 0.5 mixture
  const double jsd = 0.5 * (0.8 * std::log(0.8 / m0) + 0.2 * std::log(0.2 / m1)) +
                     0.5 * (0.5 * std::log(0.5 / m0) + 0.5 * std::log(0.5 / m1));
  EXPECT_NEAR(at(DistillLoss::JSD, 0.5), jsd, 1e-12);
  const double s0 = 0.1 * 0.8 + 0.9 * 0.5, s1 = 0.1 * 0.2 + 0.9 * 0.5;  // α = 0.1
  EXPECT_NEAR(at(DistillLoss::SkewKL, 0.1), 0.8 * std::log(0.8 / s0) + 0.2 * std::log(0.2 / s1), 1e-12);
  // equal distributions: every loss is zero
  for (DistillLoss l : kAll) EXPECT_NEAR(distill<double>({l, 1.0, 0.5}, zt, zt, 1, V, nullptr, nullptr), 0.0, 1e-15);
}

TEST(Distill, ForwardKlGradientSurvivesUnderflow) {
  // the student gives token 0 a probability that underflows; the teacher wants it
  const double zs[3] = {-800, 0, 0}, zt[3] = {0, 0, 0};
  double g[3] = {0, 0, 0};
  distill<double>({DistillLoss::ForwardKL, 1.0, 0.5}, zs, zt, 1, 3, nullptr, g);
  EXPECT_NEAR(g[0], -1.0 / 3, 1e-12);
  EXPECT_NEAR(g[1], 0.5 - 1.0 / 3, 1e-12);
}

TEST(Distill, TemperatureAndRangeChecks) {
  const double zs[3] = {0, 1, 2}, zt[3] = {2, 1, 0};
  // a higher temperature flattens both distributions: a smaller divergence
  EXPECT_LT(distill<double>({DistillLoss::ForwardKL, 4.0, 0.5}, zs, zt, 1, 3, nullptr, nullptr),
            distill<double>({DistillLoss::ForwardKL, 1.0, 0.5}, zs, zt, 1, 3, nullptr, nullptr));
  EXPECT_THROW(distill<double>({DistillLoss::JSD, 0.0, 0.5}, zs, zt, 1, 3, nullptr, nullptr), Error);
  EXPECT_THROW(distill<double>({DistillLoss::JSD, 1.0, 1.0}, zs, zt, 1, 3, nullptr, nullptr), Error);
  EXPECT_THROW(parse_distill_loss("kl"), Error);
  EXPECT_EQ(parse_distill_loss("srkl"), DistillLoss::SkewRKL);
}
