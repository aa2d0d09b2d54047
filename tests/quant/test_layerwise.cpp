// The layer-wise pipeline's statistics against a brute-force float64 recomputation from the same
// block inputs (captured with a plain Session observer), on the real stories260K model: XᵀX
// (computed blockwise on the upper triangle with the f32 GEMM, then mirrored), per-channel sums,
// squares, absolute sums and maxima, token count.
#include "model/forward.h"
#include "model/model.h"
#include "quant/layerwise.h"
#include "test_util.h"
#include <gtest/gtest.h>
#include <cmath>
#include <random>

using namespace slimlm;

TEST(Layerwise, StatsMatchBruteForceOnStories260K) {
  auto m = load_model(test::stories());
  const int64_t E = m->hp.n_embd;
  std::mt19937 rng(4);
  std::uniform_int_distribution<int32_t> tok(1, int32_t(m->hp.n_vocab - 1));
  std::vector<std::vector<int32_t>> calib(3, std::vector<int32_t>(40));  // 3 x 40 tokens: ragged GEMM panels
  for (auto& s : calib) for (auto& t : s) t = tok(rng);

  // Brute force: block 0's inputs at every site, from the embeddings (block 0 sees no compressed block).
  std::array<std::vector<std::vector<float>>, kLinearSites> seen;
  {
    Session sess(*m, 40);
    sess.set_observer([&](int64_t layer, LinearSite site, const float* x, int64_t n, int64_t ld) {
      if (layer != 0) return;
      for (int64_t t = 0; t < n; ++t) {
        const int64_t k = site == LinearSite::AttnOut ? m->hp.n_head_at(0) * m->hp.head_dim
                          : site == LinearSite::FfnDown ? m->hp.n_ff_at(0) : E;
        seen[size_t(site)].emplace_back(x + t * ld, x + t * ld + k);
      }
    });
    for (const auto& s : calib) {
      std::vector<float> x(s.size() * size_t(E));
      embed_tokens(*m, s.data(), int64_t(s.size()), x.data());
      sess.run_block(0, x.data(), int64_t(s.size()));
    }
  }

  quant::Wants wants;
  wants.hessian = true;
  bool checked = false;
  quant::run_layerwise(*m, calib, wants, [&](Model&, int64_t l, quant::BlockStats& stats) {
    if (l != 0) return;
    checked = true;
    for (int s = 0; s < kLinearSites; ++s) {
      const auto& st = stats[size_t(s)];
      const auto& rows = seen[size_t(s)];
      ASSERT_EQ(st.count, 120);
      ASSERT_EQ(int64_t(rows.size()), 120);
      const int64_t k = st.k;
      ASSERT_EQ(int64_t(rows[0].size()), k);
      for (int64_t i = 0; i < k; ++i) {
        double sq = 0, sm = 0, sa = 0;
        float mx = 0;
        for (const auto& r : rows) {
          const double v = r[size_t(i)];
          sq += v * v; sm += v; sa += std::fabs(v); mx = std::max(mx, std::fabs(r[size_t(i)]));
        }
        ASSERT_NEAR(st.sum_sq[size_t(i)], sq, 1e-9 * (1 + sq)) << "site " << s << " ch " << i;
        ASSERT_NEAR(st.sum[size_t(i)], sm, 1e-9 * (1 + sa));
        ASSERT_NEAR(st.sum_abs[size_t(i)], sa, 1e-9 * (1 + sa));
        ASSERT_EQ(st.absmax[size_t(i)], mx);
        for (int64_t j = 0; j < k; ++j) {
          double h = 0, mag = 0;
          for (const auto& r : rows) {
            h += double(r[size_t(i)]) * r[size_t(j)];
            mag += std::fabs(double(r[size_t(i)]) * r[size_t(j)]);
          }
          const double got = st.xtx[size_t(i * k + j)];
          ASSERT_NEAR(got, h, 1e-5 * (1 + mag)) << "site " << s << " H(" << i << "," << j << ")";
          ASSERT_EQ(got, st.xtx[size_t(j * k + i)]);  // exactly symmetric
        }
      }
    }
  }, false);
  EXPECT_TRUE(checked);
}
