// Clipping calibration against brute-force references: percentile vs a sorted array, MSE grid
// search vs an exhaustive loop over the same grid, KL calibration on a Gaussian with outliers,
// and static / dynamic activation fake quantization.
#include "core/error.h"
#include "quant/clip.h"
#include "quant/codec.h"
#include "random_rows.h"
#include <gtest/gtest.h>
#include <algorithm>
#include <cmath>
#include <random>

using namespace slimlm;
using namespace slimlm::quant;
using slimlm::test::gaussian;

namespace {
double ref_percentile(std::vector<float> a, double p) {  // numpy's 'linear' method
  std::sort(a.begin(), a.end());
  const double h = double(a.size() - 1) * p / 100.0;
  const size_t k = size_t(std::floor(h));
  if (k + 1 >= a.size()) return a.back();
  return double(a[k]) + (h - double(k)) * (double(a[k + 1]) - double(a[k]));
}
double sym_mse(const std::vector<float>& x, float threshold, int bits) {  // fake-quant MSE at a static scale
  std::vector<float> y(x);
  fake_quant_act(y.data(), int64_t(y.size()), bits, act_scale(threshold, bits));
  double e = 0;
  for (size_t i = 0; i < x.size(); ++i) e += double(x[i] - y[i]) * double(x[i] - y[i]);
  return e / double(x.size());
}
}  // namespace

TEST(Clip, PercentileEqualsSortedArrayPercentile) {
  for (size_t n : {size_t(1), size_t(2), size_t(7), size_t(100), size_t(1001)}) {
    auto x = gaussian(n, uint32_t(n));
    if (n > 10) x[3] = x[5];  // a repeated value
    for (double p : {0.0, 1.0, 12.5, 37.5, 50.0, 99.0, 99.9, 100.0})
      EXPECT_FLOAT_EQ(percentile(x.data(), int64_t(n), p), float(ref_percentile(x, p))) << "n=" << n << " p=" << p;
  }
  std::vector<float> x = {1, 2, 3, 4};
  EXPECT_FLOAT_EQ(percentile(x.data(), 4, 50), 2.5f);
  EXPECT_THROW(percentile(x.data(), 4, 101), Error);
  EXPECT_THROW(percentile(x.data(), 0, 50), Error);
}

TEST(Clip, PercentileRatioClipsTheRangeToThePercentile) {
  auto x = gaussian(512, 3);
  x[10] = 9.0f;  // outlier
  std::vector<float> ax(x.size());
  for (size_t i = 0; i < x.size(); ++i) ax[i] = std::fabs(x[i]);
  const float r = clip_percentile(x.data(), 512, 99.0, true);
  EXPECT_NEAR(r * 9.0f, ref_percentile(ax, 99.0), 1e-5);
  EXPECT_LT(r, 0.5f);
  EXPECT_EQ(clip_percentile(x.data(), 512, 100.0, true), 1.0f);
  // asym: both percentiles stay inside [min, max]·r, one of them on its edge
  const float ra = clip_percentile(x.data(), 512, 99.0, false);
  const float lo = *std::min_element(x.begin(), x.end()), hi = *std::max_element(x.begin(), x.end());
  const double phi = ref_percentile(x, 99.0), plo = ref_percentile(x, 1.0);
  EXPECT_GE(ra * hi, phi - 1e-5);
  EXPECT_LE(ra * lo, plo + 1e-5);
  EXPECT_TRUE(std::fabs(ra * hi - phi) < 1e-5 || std::fabs(ra * lo - plo) < 1e-5);
  std::vector<float> zeros(8, 0.0f);
  EXPECT_EQ(clip_percentile(zeros.data(), 8, 90, false), 1.0f);
}

TEST(Clip, GridHasTheRequestedRatios) {
  const auto r = ClipGrid{}.ratios();
  ASSERT_EQ(r.size(), 51u);
  EXPECT_EQ(r.front(), 1.0f);
  EXPECT_FLOAT_EQ(r[1], 0.99f);
  EXPECT_FLOAT_EQ(r.back(), 0.5f);
  EXPECT_THROW((ClipGrid{1.0, 0.5, 0.0}.ratios()), Error);
}

TEST(Clip, MseGridSearchEqualsExhaustiveSearch) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> ud(0.1f, 2.0f);
  for (const char* name : {"u4g32", "s4g32", "u3g64", "nf4g32", "q4_0", "q4_1"}) {
    auto c = make_codec(name);
    const int64_t g = c->group();
    for (int trial = 0; trial < 20; ++trial) {
      auto x = gaussian(size_t(g), uint32_t(100 * trial + g));
      if (trial % 2) x[size_t(trial) % size_t(g)] *= 8;  // an outlier
      std::vector<float> imp(static_cast<size_t>(g));
      for (auto& v : imp) v = ud(rng);
      for (const float* s : {static_cast<const float*>(nullptr), static_cast<const float*>(imp.data())}) {
        // exhaustive: every ratio 1.00, 0.99, ..., 0.50, error by an explicit round trip
        float best = 0;
        double best_err = INFINITY;
        for (int k = 0; k <= 50; ++k) {
          const float r = float(1.0 - 0.01 * k);
          const GroupFit f = c->fit(x.data(), g, r);
          double e = 0;
          for (int64_t i = 0; i < g; ++i) {
            const double d = x[size_t(i)] - c->value(c->code(x[size_t(i)], f), f);
            e += (s ? s[i] : 1.0) * d * d;
          }
          if (e < best_err) { best_err = e; best = r; }
        }
        const float got = clip_mse(*c, x.data(), g, s);
        EXPECT_EQ(got, best) << name << " trial " << trial;
        EXPECT_LE(roundtrip_sse(*c, x.data(), g, got, s), roundtrip_sse(*c, x.data(), g, 1.0f, s));
      }
    }
  }
}

TEST(Clip, MseRowClipsFeedRtnAndNeverHurt) {
  auto c = make_codec("u4g32");
  auto w = gaussian(200, 9);  // ragged: 6 full groups + 8
  w[40] = 6.0f;
  const auto clips = clip_mse_row(*c, w.data(), 200);
  ASSERT_EQ(clips.size(), 7u);
  EXPECT_LT(*std::min_element(clips.begin(), clips.end()), 1.0f);
  const RowQuant a = rtn_row(*c, w.data(), 200, nullptr), b = rtn_row(*c, w.data(), 200, clips.data());
  double ea = 0, eb = 0;
  for (size_t i = 0; i < w.size(); ++i) { ea += std::pow(a.deq[i] - w[i], 2); eb += std::pow(b.deq[i] - w[i], 2); }
  EXPECT_LT(eb, ea);
}

TEST(Clip, KlClipsOutliersAndBeatsMinMax) {
  auto x = gaussian(1000000, 21);
  x[123] = 40.0f; x[4567] = -35.0f;  // a few big outliers
  const float t = kl_threshold(x.data(), int64_t(x.size()), 8);
  EXPECT_LT(t, 35.0f);  // the outliers are clipped
  EXPECT_GT(t, 3.0f);   // the Gaussian bulk is kept
  EXPECT_LT(sym_mse(x, t, 8), sym_mse(x, 40.0f, 8));
  // 4 bits: fewer levels, a tighter threshold, still far better than min-max
  const float t4 = kl_threshold(x.data(), int64_t(x.size()), 4);
  EXPECT_LT(t4, t);
  EXPECT_LT(sym_mse(x, t4, 4), 0.5 * sym_mse(x, 40.0f, 4));
  EXPECT_EQ(kl_threshold(x.data(), 0, 8), 0.0f);
}

TEST(Clip, HistogramGrowsByMergingBins) {
  // dyadic values (exact bin arithmetic): the grown histogram equals a direct one over the final
  // range, except that the first range's top value 1.0 (closed last bin) sits one bin lower
  std::vector<float> a = {1.0f}, b;
  for (int i = 0; i < 63; ++i) a.push_back((float(i) + 0.5f) / 64.0f);
  for (int j = 0; j < 28; ++j) b.push_back(-(float(j) + 0.5f) / 8.0f);  // max 3.4375: range 1 -> 2 -> 4
  AbsHistogram h(16);
  h.add(a.data(), 64);
  EXPECT_EQ(h.amax(), 1.0f);
  h.add(b.data(), 28);
  EXPECT_EQ(h.amax(), 4.0f);
  EXPECT_EQ(h.max_seen(), 3.4375f);
  AbsHistogram direct(16);
  const float four = 4.0f;
  direct.add(&four, 1);
  direct.add(a.data(), 64);
  direct.add(b.data(), 28);
  std::vector<double> want = direct.counts();
  want.back() -= 1;  // the 4.0 that set the range
  want[4] -= 1; want[3] += 1;
  EXPECT_EQ(h.counts(), want);
  double total = 0;
  for (double c : h.counts()) total += c;
  EXPECT_EQ(total, 92.0);
  EXPECT_THROW(AbsHistogram(7), Error);
}

TEST(ActQuant, DynamicPerTokenAndStaticScales) {
  std::vector<float> x = gaussian(4 * 96, 4);
  for (int64_t t = 0; t < 4; ++t) x[size_t(t * 96)] = 10.0f * float(t + 1);  // a different absmax per token
  // dynamic: per-row absmax / 127; values stay within half a step; the max is exact
  std::vector<float> y(x);
  fake_quant_act_rows(y.data(), 4, 96, 96, 8, kDynamicScale);
  for (int64_t t = 0; t < 4; ++t) {
    float m = 0;
    for (int64_t i = 0; i < 96; ++i) m = std::max(m, std::fabs(x[size_t(t * 96 + i)]));
    const float s = m / 127;
    EXPECT_FLOAT_EQ(y[size_t(t * 96)], x[size_t(t * 96)]);
    for (int64_t i = 0; i < 96; ++i) {
      const float v = y[size_t(t * 96 + i)];
      EXPECT_LE(std::fabs(v - x[size_t(t * 96 + i)]), 0.5f * s * 1.0001f);
      EXPECT_FLOAT_EQ(v, s * std::nearbyint(x[size_t(t * 96 + i)] / s));
    }
    std::vector<float> row(x.begin() + t * 96, x.begin() + (t + 1) * 96);
    EXPECT_EQ(fake_quant_act(row.data(), 96, 8), s);
    EXPECT_TRUE(std::equal(row.begin(), row.end(), y.begin() + t * 96));
  }
  // static: one scale for every row, values past the threshold saturate at ±127·s
  const float s = act_scale(3.0f, 8);
  std::vector<float> z(x);
  fake_quant_act_rows(z.data(), 4, 96, 96, 8, s);
  for (size_t i = 0; i < x.size(); ++i) {
    const float want = s * std::clamp(std::nearbyint(x[i] / s), -127.0f, 127.0f);
    EXPECT_EQ(z[i], want) << i;
  }
  EXPECT_FLOAT_EQ(z[3 * 96], 3.0f);  // 40.0 clipped to the threshold
  std::vector<float> zero(5, 0.0f);
  EXPECT_EQ(fake_quant_act(zero.data(), 5, 8), 0.0f);
  EXPECT_THROW(fake_quant_act(zero.data(), 5, 1), Error);
  EXPECT_THROW(fake_quant_act(zero.data(), 5, 8, -1.0f), Error);
}
