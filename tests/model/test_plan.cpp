// The per-layer plan the forward pass reads: windows and RoPE bases of local layers, the cache
// layout, and which attention kernel a batch gets; and a windowed model run through the plan's
// kernels against the float64 reference forward.
#include "kernels/kernels.h"
#include "model/forward.h"
#include "model/plan.h"
#include "reference_forward.h"
#include "test_util.h"
#include <gtest/gtest.h>
#include <cmath>
#include <filesystem>

using namespace slimlm;
using namespace slimlm::test;

TEST(Plan, Gemma3LocalLayersGetTheWindowAndTheLocalRopeBase) {
  const std::string path = model_path(slimlm::test::kGemma);
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " missing (scripts/fetch-models.sh)";
  auto m = load_model(path);
  const HParams& hp = m->hp;
  const int64_t n_ctx = 2048;
  const auto plan = make_plan(*m, KvType::F16, n_ctx);
  ASSERT_EQ(int64_t(plan.size()), hp.n_layer);
  size_t off = 0;
  int local = 0;
  for (int64_t l = 0; l < hp.n_layer; ++l) {
    const LayerPlan& p = plan[size_t(l)];
    const bool swa = hp.swa_layer[size_t(l)] != 0;
    local += swa;
    EXPECT_EQ(p.window, swa ? hp.sliding_window : 0) << "layer " << l;
    EXPECT_EQ(p.rope_theta, swa ? hp.rope_theta_swa : hp.rope_theta) << "layer " << l;
    EXPECT_EQ(p.first_key(1000), swa ? 1000 - hp.sliding_window + 1 : 0);
    EXPECT_EQ(p.first_key(10), 0);
    EXPECT_EQ(p.kv_off, off) << "layers' records follow each other";
    EXPECT_EQ(p.record(3, 1) - p.record(3, 0), p.kv_rec);
    EXPECT_EQ(p.q_width, p.n_head * hp.head_dim);
    off += size_t(n_ctx) * size_t(p.n_head_kv) * p.kv_rec;
  }
  EXPECT_GT(local, 0);
  EXPECT_LT(local, hp.n_layer);
  EXPECT_EQ(Session(*m, n_ctx, KvType::F16).kv_bytes(), 2 * off);
}

TEST(Plan, KernelFollowsBatchSizeCacheTypeAndHeadSize) {
  auto m = load_model(stories());  // head_dim 8: not a multiple of the GEMM tile
  for (KvType kv : {KvType::F32, KvType::F16, KvType::Q8, KvType::Q4}) {
    const LayerPlan p = make_plan(*m, kv, 64)[0];
    const AttnKernel small = kv == KvType::Q8 || kv == KvType::Q4 ? AttnKernel::PerHead : AttnKernel::Grouped;
    EXPECT_FALSE(p.batch_ok);
    EXPECT_EQ(p.kernel(1), small);
    EXPECT_EQ(p.kernel(64), small);
  }
  m->hp.head_dim = 16;  // now the GEMM path applies to f32 / f16 caches when SIMD is on
  const bool simd = std::string(kernels::use_simd(true)) != "baseline";
  for (KvType kv : {KvType::F32, KvType::F16, KvType::Q8}) {
    const LayerPlan p = make_plan(*m, kv, 64)[0];
    EXPECT_EQ(p.batch_ok, simd && kv != KvType::Q8);
    EXPECT_EQ(p.kernel(15), kv == KvType::Q8 ? AttnKernel::PerHead : AttnKernel::Grouped);
    EXPECT_EQ(p.kernel(16), p.batch_ok ? AttnKernel::Batch : p.kernel(15));
  }
}

TEST(Plan, UnevenHeadGroupsAreRefused) {
  auto m = load_model(stories());
  m->hp.n_head_kv = 3;  // 8 query heads cannot share 3 KV heads
  EXPECT_THROW(make_plan(*m, KvType::F32, 16), Error);
}

// A sliding window shorter than the sequence on every layer: the grouped kernel (f32 and f16
// caches, prefill and decode) and the per-head kernel (int8 cache) against the float64 reference.
TEST(Plan, WindowedAttentionMatchesReferenceOnEveryKernel) {
  auto m = load_model(stories());
  m->hp.sliding_window = 6;
  m->hp.swa_layer.assign(size_t(m->hp.n_layer), 1);
  m->hp.rope_theta_swa = m->hp.rope_theta;
  std::vector<int32_t> ids = {1};
  for (int i = 1; i < 24; ++i) ids.push_back(int32_t((i * 37) % 500 + 2));
  const auto ref = reference_logits(*m, ids);
  const int64_t V = m->hp.n_vocab, n = int64_t(ids.size());
  for (KvType kv : {KvType::F32, KvType::F16, KvType::Q8}) {
    for (bool decode : {false, true}) {
      Session s(*m, n, kv);
      std::vector<float> logits, all;
      if (decode)
        for (int64_t t = 0; t < n; ++t) { s.forward(&ids[size_t(t)], 1, 0, logits); all.insert(all.end(), logits.begin(), logits.end()); }
      else
        s.forward(ids.data(), n, 0, all);
      double worst = 0;
      for (size_t i = 0; i < all.size(); ++i) worst = std::max(worst, std::fabs(all[i] - ref[i]));
      // f32: summation order only; f16 / int8 caches: their rounding of k and v
      const double bar = kv == KvType::F32 ? 1e-3 : kv == KvType::F16 ? 0.1 : 1.0;
      EXPECT_LT(worst, bar) << kv_type_name(kv) << (decode ? " decode" : " prefill");
      EXPECT_EQ(int64_t(all.size()), n * V);
    }
  }
  // the bars tell a window apart: with the full context the last position's logits move by far more
  m->hp.swa_layer.assign(size_t(m->hp.n_layer), 0);
  const auto full = reference_logits(*m, ids);
  double moved = 0;
  for (int64_t v = 0; v < V; ++v) moved = std::max(moved, std::fabs(full[size_t((n - 1) * V + v)] - ref[size_t((n - 1) * V + v)]));
  EXPECT_GT(moved, 5.0);  // 14.4 here, against worst errors of 5e-4 / 0.05 / 0.49
}
