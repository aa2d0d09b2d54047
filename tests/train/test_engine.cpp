// The training engine on whole models: its forward pass against the independent float64
// reference forward, and its gradient of the next-token loss against float64 central
// differences, on two-layer models of both families (llama: stories260K cut to two blocks;
// gemma3: the same weights with Gemma's QK-norm, post-norms, GeGLU, scaled embeddings and a
// local (sliding-window) layer before a global one).
#include "core/error.h"
#include "engine_models.h"
#include "finite_diff.h"
#include "model/plan.h"
#include "reference_forward.h"
#include "test_util.h"
#include "train/engine.h"
#include <gtest/gtest.h>
#include <cmath>
#include <random>

using namespace slimlm;
using namespace slimlm::test;

class TrainEngine : public ::testing::TestWithParam<bool> {};

TEST_P(TrainEngine, ForwardMatchesFloat64Reference) {
  auto m = two_layers(GetParam());
  const auto ids = engine_ids(9);
  const auto plan = make_plan(*m, KvType::F32, int64_t(ids.size()));
  const auto w = train::Weights<double>::from_model(*m);
  const auto got = train::logits(*m, plan, w, ids.data(), int64_t(ids.size()));
  const auto ref = reference_logits(*m, ids);
  ASSERT_EQ(got.size(), ref.size());
  double worst = 0, scale = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    worst = std::max(worst, std::fabs(got[i] - ref[i]));
    scale = std::max(scale, std::fabs(ref[i]));
  }
  // 5e-9 relative on llama: the plan holds 1/sqrt(head_dim) in float (as the runtime uses it),
  // the reference in double
  EXPECT_LT(worst, 1e-7 * scale) << "largest logit " << scale;
  // float master weights: the same up to float rounding
  const auto wf = train::Weights<float>::from_model(*m);
  const auto gf = train::logits(*m, plan, wf, ids.data(), int64_t(ids.size()));
  for (size_t i = 0; i < ref.size(); ++i) ASSERT_NEAR(gf[i], ref[i], 1e-3 * scale);
}

TEST_P(TrainEngine, GradientMatchesFiniteDifferences) {
  auto m = two_layers(GetParam());
  auto ids = engine_ids(8);
  std::vector<int32_t> tgt(ids.begin() + 1, ids.end());
  tgt.push_back(-1);
  tgt[2] = -1;  // an unscored position
  const int64_t n = int64_t(ids.size());
  const auto plan = make_plan(*m, KvType::F32, n);
  auto w = train::Weights<double>::from_model(*m);
  auto g = w.zeros_like();
  const double loss = train::loss_and_grad(*m, plan, w, ids.data(), tgt.data(), n, &g);
  EXPECT_GT(loss, 0.5);
  auto f = [&] { return train::loss_and_grad<double>(*m, plan, w, ids.data(), tgt.data(), n, nullptr); };
  EXPECT_NEAR(f(), loss, 1e-12);
  std::vector<std::vector<double>*> grads;
  g.each([&](const std::string&, std::vector<double>& t) { grads.push_back(&t); });
  size_t i = 0, tensors = 0;
  std::mt19937 rng(3);
  w.each([&](const std::string& name, std::vector<double>& t) {
    std::vector<double>& gt = *grads[i++];
    ASSERT_EQ(gt.size(), t.size()) << name;
    std::vector<size_t> idx;
    for (int s = 0; s < 24; ++s)  // embeddings: half the samples in rows of the tokens used
      idx.push_back(name == "token_embd.weight" && s % 2 == 0
                        ? size_t(ids[size_t(s / 2) % ids.size()]) * size_t(m->hp.n_embd) + size_t(s)
                        : rng() % t.size());
    EXPECT_LT(fd_error(t, gt, f, idx, 1e-5), 1e-4) << name;
    ++tensors;
  });
  EXPECT_EQ(tensors, GetParam() ? 2u * 13 + 2 : 2u * 9 + 2);  // tied output: no output.weight
}

// One block alone (block-wise reconstruction): its output equals the whole forward pass's, and
// the gradient of its output MSE matches float64 central differences for every tensor of the
// block (norms included), on both families; a grad that holds the linears alone trains those.
TEST_P(TrainEngine, BlockMseGradientMatchesFiniteDifferences) {
  auto m = two_layers(GetParam());
  const auto ids = engine_ids(7);
  const int64_t n = int64_t(ids.size()), E = m->hp.n_embd;
  const auto plan = make_plan(*m, KvType::F32, n);
  auto w = train::Weights<double>::from_model(*m);
  const std::vector<double> x0 = train::embed(*m, w, ids.data(), n);
  const std::vector<double> x1 = train::block_output(*m, plan[0], w.layers[0], x0, n);
  std::vector<double> target = train::block_output(*m, plan[1], w.layers[1], x1, n);
  const std::vector<double> noise = randn(target.size(), 5, 0.5);
  for (size_t i = 0; i < target.size(); ++i) target[i] += noise[i];
  auto& L = w.layers[1];
  train::Weights<double>::Layer g = L;
  for (auto* t : {&g.attn_norm, &g.wq, &g.wk, &g.wv, &g.wo, &g.q_norm, &g.k_norm, &g.attn_post_norm, &g.ffn_norm,
                  &g.w_gate, &g.w_up, &g.w_down, &g.ffn_post_norm})
    std::fill(t->begin(), t->end(), 0.0);
  const double loss = train::block_mse(*m, plan[1], L, x1, target, n, &g);
  EXPECT_NEAR(loss, 0.25, 0.05);  // the noise's variance
  auto f = [&] { return train::block_mse<double>(*m, plan[1], L, x1, target, n, nullptr); };
  std::mt19937 rng(4);
  int checked = 0;
  for (int i = 0; i < 13; ++i) {
    std::vector<double>* ws[] = {&L.attn_norm, &L.wq, &L.wk, &L.wv, &L.wo, &L.q_norm, &L.k_norm, &L.attn_post_norm,
                                 &L.ffn_norm, &L.w_gate, &L.w_up, &L.w_down, &L.ffn_post_norm};
    std::vector<double>* gs[] = {&g.attn_norm, &g.wq, &g.wk, &g.wv, &g.wo, &g.q_norm, &g.k_norm, &g.attn_post_norm,
                                 &g.ffn_norm, &g.w_gate, &g.w_up, &g.w_down, &g.ffn_post_norm};
    if (ws[i]->empty()) continue;
    std::vector<size_t> idx;
    for (int s = 0; s < 16; ++s) idx.push_back(rng() % ws[i]->size());
    EXPECT_LT(fd_error(*ws[i], *gs[i], f, idx, 1e-5), 1e-4) << "tensor " << i;
    ++checked;
  }
  EXPECT_EQ(checked, GetParam() ? 13 : 9);
  // a gradient of the linears alone: the same values there
  train::Weights<double>::Layer lin;
  for (int i = 0; i < 7; ++i) lin.linear(i).assign(L.linear(i).size(), 0.0);
  EXPECT_NEAR(train::block_mse(*m, plan[1], L, x1, target, n, &lin), loss, 1e-12);
  for (int i = 0; i < 7; ++i)
    for (size_t j = 0; j < lin.linear(i).size(); j += 97) ASSERT_DOUBLE_EQ(lin.linear(i)[j], g.linear(i)[j]);
  EXPECT_EQ(int64_t(x1.size()), n * E);
  EXPECT_THROW(train::block_mse<double>(*m, plan[1], L, x1, std::vector<double>(3), n, nullptr), Error);
}

INSTANTIATE_TEST_SUITE_P(Families, TrainEngine, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "gemma3" : "llama"; });

TEST(TrainEngineErrors, BadTokenAndShapeMismatchAreRefused) {
  auto m = two_layers(false);
  const auto plan = make_plan(*m, KvType::F32, 4);
  auto w = train::Weights<float>::from_model(*m);
  const int32_t bad[2] = {1, 100000}, ok[2] = {1, 5}, tgt[2] = {5, -1};
  EXPECT_THROW(train::loss_and_grad<float>(*m, plan, w, bad, tgt, 2, nullptr), Error);
  w.layers.pop_back();
  EXPECT_THROW(train::loss_and_grad<float>(*m, plan, w, ok, tgt, 2, nullptr), Error);
}

// LoRA on a frozen base: only adapters get gradients, and those match finite differences.
TEST_P(TrainEngine, LoraGradientMatchesFiniteDifferences) {
  auto m = two_layers(GetParam());
  auto ids = engine_ids(8);
  std::vector<int32_t> tgt(ids.begin() + 1, ids.end());
  tgt.push_back(-1);
  const int64_t n = int64_t(ids.size());
  const auto plan = make_plan(*m, KvType::F32, n);
  auto w = train::Weights<double>::from_model(*m);
  train::LoraOptions lo;
  lo.rank = 2;
  train::add_lora(w, lo);
  std::mt19937 rng(5);
  std::normal_distribution<double> nd(0, 0.05);
  w.each([&](const std::string& name, std::vector<double>& t) {  // B away from zero, so A has a gradient
    if (name.find(".lora_b") != std::string::npos) for (double& x : t) x = nd(rng);
  });
  auto g = w.zeros_like();
  train::loss_and_grad(*m, plan, w, ids.data(), tgt.data(), n, &g);
  std::vector<std::vector<double>*> grads;
  std::vector<std::string> names;
  g.each([&](const std::string& name, std::vector<double>& t) { grads.push_back(&t); names.push_back(name); });
  EXPECT_EQ(names.size(), 2u * 7 * 2) << "adapters only";
  auto f = [&] { return train::loss_and_grad<double>(*m, plan, w, ids.data(), tgt.data(), n, nullptr); };
  size_t i = 0;
  w.each_trainable([&](const std::string& name, std::vector<double>& t) {
    ASSERT_EQ(name, names[i]);
    std::vector<size_t> idx;
    for (int s = 0; s < 12; ++s) idx.push_back(rng() % t.size());
    EXPECT_LT(fd_error(t, *grads[i++], f, idx, 1e-5), 1e-4) << name;
  });
}

TEST_P(TrainEngine, LoraStartsAtTheBaseAndMergesIntoIt) {
  auto m = two_layers(GetParam());
  const auto ids = engine_ids(7);
  const int64_t n = int64_t(ids.size());
  const auto plan = make_plan(*m, KvType::F32, n);
  auto w = train::Weights<double>::from_model(*m);
  const auto base = train::logits(*m, plan, w, ids.data(), n);
  train::LoraOptions lo;
  lo.rank = 3;
  lo.targets = {"q", "o", "down"};
  train::add_lora(w, lo);
  EXPECT_EQ(train::logits(*m, plan, w, ids.data(), n), base) << "B starts at zero";
  std::mt19937 rng(9);
  std::normal_distribution<double> nd(0, 0.1);
  w.each([&](const std::string& name, std::vector<double>& t) {
    if (name.find(".lora_b") != std::string::npos) for (double& x : t) x = nd(rng);
  });
  const auto adapted = train::logits(*m, plan, w, ids.data(), n);
  train::merge_lora(w);
  const auto merged = train::logits(*m, plan, w, ids.data(), n);
  double moved = 0, worst = 0;
  for (size_t i = 0; i < base.size(); ++i) {
    moved = std::max(moved, std::fabs(adapted[i] - base[i]));
    worst = std::max(worst, std::fabs(merged[i] - adapted[i]));
  }
  EXPECT_GT(moved, 1e-3);
  EXPECT_LT(worst, 1e-10);
  bool any = false;
  w.each([&](const std::string& name, std::vector<double>&) { any = any || name.find(".lora_") != std::string::npos; });
  EXPECT_FALSE(any) << "merged adapters are gone";
  train::LoraOptions bad;
  bad.targets = {"qkv"};
  EXPECT_THROW(train::add_lora(w, bad), Error);
  bad = {};
  bad.rank = 0;
  EXPECT_THROW(train::add_lora(w, bad), Error);
}
