// SmoothQuant (src/quant/smoothquant.cpp) and the shared scale folding (src/quant/scaling.cpp):
// the smoothing factors follow Eq. 4; folding them into a real model with unquantized (f32)
// weights leaves its logits unchanged up to float rounding — on stories260K (grouped-query
// attention: o's scales tied per kv head), SmolLM2 and Gemma 3 (QK-norm, post-norms, GeLU),
// the latter two cut to their first two blocks. A control shows the check can fail: the same
// model with one fold left out moves the logits by far more than the tolerance.
#include "core/error.h"
#include "kernels/qdot.h"
#include "model/forward.h"
#include "quant/methods.h"
#include "quant/random_rows.h"
#include "test_util.h"
#include <gtest/gtest.h>
#include <cmath>
#include <random>

using namespace slimlm;
using slimlm::test::max_abs;

TEST(SmoothQuant, ScalesFollowEquation4) {
  const auto s = quant::smooth_scales({4.f, 1.f, 0.f, 9.f, 2.f}, {1.f, 4.f, 1.f, 0.f, 2.f}, 0.5);
  EXPECT_FLOAT_EQ(s[0], 2.f);    // sqrt(4) / sqrt(1)
  EXPECT_FLOAT_EQ(s[1], 0.5f);   // sqrt(1) / sqrt(4)
  EXPECT_EQ(s[2], 1.f);          // channel never active: left alone
  EXPECT_EQ(s[3], 1.f);          // weight column all zero: left alone
  EXPECT_FLOAT_EQ(s[4], 1.f);
  const auto a = quant::smooth_scales({8.f}, {2.f}, 0.75);
  EXPECT_NEAR(a[0], std::pow(8.0, 0.75) / std::pow(2.0, 0.25), 1e-5);
  // after smoothing, max|X_j / s_j| and max|W_j · s_j| meet at sqrt(max|X_j| · max|W_j|) for α = 0.5
  EXPECT_FLOAT_EQ(4.f / s[0], 1.f * s[0]);
}

namespace {
std::vector<std::vector<int32_t>> random_ids(int64_t vocab, int n_seq, int len, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> d(1, int32_t(vocab) - 1);
  std::vector<std::vector<int32_t>> out(static_cast<size_t>(n_seq), std::vector<int32_t>(static_cast<size_t>(len)));
  for (auto& s : out) for (auto& v : s) v = d(rng);
  return out;
}

std::unique_ptr<Model> load_cut(const std::string& path, int64_t n_layers) {
  auto m = load_model(path);
  if (n_layers < m->hp.n_layer) { m->blocks.resize(size_t(n_layers)); m->hp.n_layer = n_layers; }
  return m;
}

// Smooths every block (weights stored back as f32, not rounded); returns the largest |log s|.
double smooth_unquantized(Model& m, const std::vector<std::vector<int32_t>>& calib, double alpha) {
  quant::SmoothOptions so;
  so.alpha = alpha;
  double spread = 0;
  quant::run_layerwise(m, calib, quant::Wants{}, [&](Model& mm, int64_t l, quant::BlockStats& st) {
    quant::ScaledBlock sb = quant::smoothquant_block(mm, l, st, so);
    Block& b = mm.blocks[size_t(l)];
    for (int s = 0; s < kLinearSites; ++s) {
      EXPECT_FALSE(sb.scale[s].empty()) << "site " << s << " not smoothed";
      for (float v : sb.scale[s]) spread = std::max(spread, std::fabs(std::log(double(v))));
      auto ws = quant::site_weights(b, LinearSite(s));
      for (size_t i = 0; i < ws.size(); ++i) *ws[i] = Tensor::from_f32(ws[i]->name, ws[i]->ne, sb.w[s][i].data());
    }
  }, false);
  return spread;
}

std::vector<float> logits(const Model& m, const std::vector<int32_t>& ids) {
  Session s(m, int64_t(ids.size()));
  std::vector<float> out;
  s.forward(ids.data(), int64_t(ids.size()), 0, out);
  return out;
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

void expect_fold_exact(const std::string& path, int64_t n_layers, double alpha, double rel_tol) {
  SLIMLM_REQUIRE_FILE(path);
  const kernels::ExactScope exact(true);
  auto ref = load_cut(path, n_layers), sm = load_cut(path, n_layers);
  const auto calib = random_ids(ref->hp.n_vocab, 3, 48, 7);
  const double spread = smooth_unquantized(*sm, calib, alpha);
  EXPECT_GT(spread, std::log(2.0)) << "smoothing factors too close to 1 to test the folding";
  const auto ids = random_ids(ref->hp.n_vocab, 1, 40, 99)[0];
  const auto a = logits(*ref, ids), b = logits(*sm, ids);
  const double scale = max_abs(a), diff = max_diff(a, b);
  std::printf("  %s: max|s| spread e^%.2f, max|Δlogit| %.3g of max|logit| %.3g\n", path.c_str(), spread, diff, scale);
  EXPECT_LT(diff, rel_tol * scale);
  // control: drop the attn_norm fold of block 0 (weights stay scaled) -> far off
  sm->blocks[0].attn_norm = ref->blocks[0].attn_norm;
  EXPECT_GT(max_diff(a, logits(*sm, ids)), 100 * rel_tol * scale);
}
}  // namespace

TEST(SmoothQuant, FoldingKeepsLogitsStories260K) { expect_fold_exact(test::stories(), 99, 0.5, 2e-5); }
TEST(SmoothQuant, FoldingKeepsLogitsSmolLM2FirstBlocks) { expect_fold_exact(test::model_path(test::kSmol), 2, 0.8, 2e-5); }
TEST(SmoothQuant, FoldingKeepsLogitsGemma3FirstBlocks) { expect_fold_exact(test::model_path(test::kGemma), 2, 0.5, 2e-5); }

TEST(SmoothQuant, RejectsAlphaOutsideUnitInterval) {
  SLIMLM_REQUIRE_FILE(test::stories());
  auto m = load_model(test::stories());
  quant::BlockStats st;
  quant::SmoothOptions so;
  so.alpha = 1.5;
  EXPECT_THROW(quant::smoothquant_block(*m, 0, st, so), Error);
}
