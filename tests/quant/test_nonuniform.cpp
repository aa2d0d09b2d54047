// NF codec and sensitivity-weighted k-means codebooks: NF encode -> decode equals its values and
// picks the nearest grid point; k-means against an exhaustive search over contiguous partitions
// (the optimal 1-D clusters are contiguous), monotone Lloyd objective, and k-means vs uniform RTN.
#include "core/dtype_custom.h"
#include "core/error.h"
#include "quant/codec.h"
#include "quant/nonuniform.h"
#include "random_rows.h"
#include <gtest/gtest.h>
#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <random>

using namespace slimlm;
using namespace slimlm::quant;
using slimlm::test::gaussian;

namespace {
// The exact optimum of weighted 1-D k-means: every split of the sorted values into <= k runs.
double brute_force_kmeans(const std::vector<float>& w, const std::vector<float>& s, int k) {
  std::vector<size_t> o(w.size());
  std::iota(o.begin(), o.end(), size_t(0));
  std::sort(o.begin(), o.end(), [&](size_t a, size_t b) { return w[a] < w[b]; });
  auto cost = [&](size_t a, size_t b) {  // weighted SSE of sorted run [a, b) about its weighted mean
    double sw = 0, swx = 0;
    for (size_t i = a; i < b; ++i) { sw += s[o[i]]; swx += s[o[i]] * w[o[i]]; }
    const double mean = sw > 0 ? swx / sw : w[o[a]];
    double e = 0;
    for (size_t i = a; i < b; ++i) e += s[o[i]] * (w[o[i]] - mean) * (w[o[i]] - mean);
    return e;
  };
  double best = INFINITY;
  std::function<void(size_t, int, double)> rec = [&](size_t start, int left, double acc) {
    if (start == w.size()) { best = std::min(best, acc); return; }
    if (left == 0) return;
    for (size_t end = start + 1; end <= w.size(); ++end) rec(end, left - 1, acc + cost(start, end));
  };
  rec(0, k, 0.0);
  return best;
}
double mse(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0;
  for (size_t i = 0; i < a.size(); ++i) e += double(a[i] - b[i]) * double(a[i] - b[i]);
  return e / double(a.size());
}
}  // namespace

TEST(NfCodec, EncodedRowsDecodeToItsValuesAndCodesAreNearest) {
  for (auto [bits, group] : {std::pair{4, 64}, std::pair{3, 32}, std::pair{2, 16}, std::pair{4, 7}}) {
    auto c = nf_codec(bits, group);
    EXPECT_EQ(c->name(), "nf" + std::to_string(bits) + "g" + std::to_string(group));
    EXPECT_EQ(custom_layout(c->type()).kind, CustomKind::Grid);
    const int nq = 1 << bits;
    for (int64_t n : {int64_t(64), int64_t(100)}) {
      std::vector<RowQuant> rows;
      for (int r = 0; r < 3; ++r) {
        auto w = gaussian(size_t(n), uint32_t(r + 10 * bits + n), 0.05f);
        if (r == 1) w[3] = 0.8f;
        if (r == 2) std::fill(w.begin(), w.begin() + std::min<int64_t>(group, n), 0.0f);  // an all-zero group
        rows.push_back(rtn_row(*c, w.data(), n, nullptr));
        const RowQuant& q = rows.back();
        for (int64_t i = 0; i < n; ++i) {
          const GroupFit& f = q.fits[size_t(i / group)];
          double best = INFINITY;
          for (int k = 0; k < nq; ++k) best = std::min(best, std::fabs(double(w[size_t(i)]) - c->value(k, f)));
          EXPECT_NEAR(std::fabs(double(w[size_t(i)]) - q.deq[size_t(i)]), best, 1e-7 + 1e-6 * std::fabs(w[size_t(i)]))
              << bits << " bits, i=" << i;
        }
      }
      const auto bytes = encode_matrix(*c, rows, n);
      std::vector<float> back(static_cast<size_t>(n));
      for (size_t r = 0; r < rows.size(); ++r) {
        row_to_f32(c->type(), bytes.data() + r * row_bytes(c->type(), n), back.data(), n);
        EXPECT_EQ(back, rows[r].deq) << "nf" << bits << " row " << r;
      }
    }
  }
  EXPECT_EQ(make_codec("nf4g64")->type(), nf_codec(4, 64)->type());
  EXPECT_THROW(make_codec("nf9g64"), Error);
}

TEST(Kmeans, MatchesBruteForceOptimumOnTinyInputs) {
  std::mt19937 rng(17);
  std::uniform_real_distribution<float> ud(0.1f, 3.0f);
  int lloyd_hits = 0, trials = 0;
  for (int bits : {2, 3})
    for (int n = 1; n <= 10; ++n)
      for (int rep = 0; rep < 12; ++rep, ++trials) {
        auto w = gaussian(size_t(n), uint32_t(1000 * n + rep));
        if (rep % 3 == 0 && n > 2) w[1] = w[0];  // repeated values
        std::vector<float> s(static_cast<size_t>(n));
        for (auto& v : s) v = ud(rng);
        if (rep % 4 == 1) s[0] = 0.0f;  // a weight of zero
        const double opt = brute_force_kmeans(w, s, 1 << bits), tol = 1e-9 * (1 + opt);
        // the default (DP init) is the optimum, before and after Lloyd
        for (int iters : {0, 30}) {
          const KmeansResult r = kmeans_row(w.data(), s.data(), n, bits, {iters, KmeansInit::Optimal, false});
          EXPECT_NEAR(r.objective, opt, tol) << bits << " bits, n=" << n << " rep " << rep << " iters " << iters;
          EXPECT_NEAR(r.objective, codebook_objective(w.data(), s.data(), n, r.centroids), tol);
        }
        // Lloyd from weighted quantiles: a local method, never below the optimum
        const KmeansResult q = kmeans_row(w.data(), s.data(), n, bits, {30, KmeansInit::Quantiles, false});
        EXPECT_GE(q.objective, opt - tol) << "brute force is not the optimum?";
        lloyd_hits += q.objective <= opt + tol;
      }
  EXPECT_GT(lloyd_hits, trials / 2) << lloyd_hits << " of " << trials;
  // well-separated clusters: Lloyd from quantiles finds the optimum too
  for (int rep = 0; rep < 20; ++rep) {
    auto w = gaussian(10, uint32_t(rep), 0.05f);
    for (size_t i = 0; i < w.size(); ++i) w[i] += float(i % 4) * 3.0f;
    std::vector<float> s(10, 1.0f);
    const KmeansResult r = kmeans_row(w.data(), s.data(), 10, 2, {30, KmeansInit::Quantiles, false});
    EXPECT_NEAR(r.objective, brute_force_kmeans(w, s, 4), 1e-9) << rep;
  }
}

TEST(Kmeans, ObjectiveNeverIncreasesFromTheInit) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    auto w = gaussian(300, seed);
    w[7] = 9.0f; w[8] = -7.0f;
    std::vector<float> s(w.size());
    for (size_t i = 0; i < s.size(); ++i) s[i] = 0.1f + float((i * 37) % 11);
    const double init =
        codebook_objective(w.data(), s.data(), 300, kmeans_init(w.data(), s.data(), 300, 3, KmeansInit::Quantiles));
    double prev = INFINITY;
    for (int it = 0; it <= 12; ++it) {
      const KmeansResult r = kmeans_row(w.data(), s.data(), 300, 3, {it, KmeansInit::Quantiles, false});
      if (it == 0) { EXPECT_NEAR(r.objective, init, 1e-9 * init); }
      EXPECT_LE(r.objective, prev * (1 + 1e-12)) << "iteration " << it;
      prev = r.objective;
    }
    EXPECT_LT(prev, 0.9 * init);
    // the DP optimum is at least as good as Lloyd's local optimum
    const KmeansResult best = kmeans_row(w.data(), s.data(), 300, 3, {0, KmeansInit::Optimal, false});
    EXPECT_LE(best.objective, prev * (1 + 1e-12));
    // f16 centroids: the stored values, sorted, and codes nearest to them
    const KmeansResult h = kmeans_row(w.data(), s.data(), 300, 3);
    for (float c : h.centroids) EXPECT_EQ(c, f16_to_f32(f32_to_f16(c)));
    EXPECT_TRUE(std::is_sorted(h.centroids.begin(), h.centroids.end()));
    EXPECT_NEAR(h.objective, codebook_objective(w.data(), s.data(), 300, h.centroids), 1e-9 * h.objective);
  }
}

TEST(Kmeans, SensitivityWeightingLowersTheWeightedError) {
  auto w = gaussian(512, 8);
  std::vector<float> s(512, 0.01f);
  for (size_t i = 0; i < 512; i += 8) s[i] = 10.0f;  // a few sensitive channels
  const KmeansResult weighted = kmeans_row(w.data(), s.data(), 512, 3), plain = kmeans_row(w.data(), nullptr, 512, 3);
  EXPECT_LT(weighted.objective, codebook_objective(w.data(), s.data(), 512, plain.centroids));
  std::vector<float> zero(512, 0.0f);
  EXPECT_EQ(kmeans_row(w.data(), zero.data(), 512, 3).centroids, plain.centroids);  // all-zero = unit weights
  zero[0] = -1;
  EXPECT_THROW(kmeans_row(w.data(), zero.data(), 512, 3), Error);
}

TEST(Kmeans, FourBitBeatsUniformRtnPerRowOnOutlierRows) {
  auto u4 = uniform_codec(4, 1024, false);  // one group per row
  for (uint32_t seed = 0; seed < 4; ++seed) {
    auto w = gaussian(1024, 50 + seed, 0.02f);
    w[seed * 10] = 0.5f; w[seed * 10 + 500] = -0.3f;
    const KmeansResult k = kmeans_row(w.data(), nullptr, 1024, 4);
    std::vector<float> kd(1024);
    for (size_t i = 0; i < 1024; ++i) kd[i] = k.centroids[k.codes[i]];
    const RowQuant r = rtn_row(*u4, w.data(), 1024, nullptr);
    EXPECT_LT(mse(kd, w), 0.5 * mse(r.deq, w)) << seed;
  }
}

TEST(Kmeans, CodebookRowsDecodeToTheirCentroids) {
  const int64_t rows = 5, n = 77;  // odd n: a partial code byte for 3 bits
  for (int bits : {2, 3, 4}) {
    auto w = gaussian(size_t(rows * n), uint32_t(bits));
    std::vector<float> sens(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) sens[size_t(j)] = 1.0f + float(j % 5);
    std::vector<float> deq;
    const auto bytes = codebook_quantize_matrix(w.data(), rows, n, sens.data(), bits, &deq);
    const DType t = custom_type({CustomKind::Codebook, bits, false, 0});
    ASSERT_EQ(bytes.size(), row_bytes(t, n) * size_t(rows));
    std::vector<float> back(static_cast<size_t>(n));
    for (int64_t r = 0; r < rows; ++r) {
      row_to_f32(t, bytes.data() + size_t(r) * row_bytes(t, n), back.data(), n);
      EXPECT_TRUE(std::equal(back.begin(), back.end(), deq.begin() + r * n)) << bits << " bits, row " << r;
      const KmeansResult k = kmeans_row(w.data() + r * n, sens.data(), n, bits);
      std::vector<uint8_t> one(row_bytes(t, n));
      encode_codebook_row(k, bits, n, one.data());
      EXPECT_TRUE(std::equal(one.begin(), one.end(), bytes.begin() + r * int64_t(one.size())));
      // the same LUT as a Codec: rtn_row + encode_matrix give the same bytes
      auto c = codebook_codec(bits, k.centroids);
      EXPECT_EQ(c->type(), t);
      const RowQuant q = rtn_row(*c, w.data() + r * n, n, nullptr);
      EXPECT_EQ(q.codes, k.codes);
      EXPECT_EQ(encode_matrix(*c, {q}, n), one);
    }
  }
  EXPECT_THROW(codebook_codec(4, {0.f, 1.f}), Error);
  EXPECT_THROW(kmeans_row(nullptr, nullptr, 0, 9), Error);
}
