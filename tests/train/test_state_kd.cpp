// Feature and relation distillation (train/state_kd.h): the layer map and its refusals, each
// part's gradient against float64 central differences, and the whole loss — forward KL of the
// logits + α·feature + β·relation — differentiated through the engine with respect to every
// student tensor and the projection, on both families, with a teacher of two layers and a student
// of one (cut), then with a student narrower in width and in heads (sliced) than the teacher.
#include "core/error.h"
#include "engine_models.h"
#include "finite_diff.h"
#include "model/plan.h"
#include "train/distill.h"
#include "train/engine.h"
#include "train/state_kd.h"
#include <gtest/gtest.h>
#include <cmath>
#include <random>

using namespace slimlm;
using namespace slimlm::test;
using namespace slimlm::train;

namespace {
// The first `rows` x `cols` corner of a row-major matrix of width w.
std::vector<double> corner(const std::vector<double>& v, int64_t w, int64_t rows, int64_t cols) {
  std::vector<double> out;
  for (int64_t r = 0; r < rows; ++r) out.insert(out.end(), v.begin() + r * w, v.begin() + r * w + cols);
  return out;
}

// A one-layer student E wide with H / HKV heads, sliced from the two-layer model's first block.
std::unique_ptr<Model> narrow_student(bool gemma, int64_t E, int64_t H, int64_t HKV, Weights<double>& w) {
  auto m = two_layers(gemma);
  const Weights<double> full = Weights<double>::from_model(*m);
  const int64_t E0 = m->hp.n_embd, D = m->hp.head_dim, F = m->hp.n_ff, V = m->hp.n_vocab;
  m->blocks.resize(1);
  m->hp.n_layer = 1;
  m->hp.n_embd = E;
  m->hp.n_head = H;
  m->hp.n_head_kv = HKV;
  const auto& L = full.layers[0];
  Weights<double>::Layer s = L;
  for (auto* t : {&s.attn_norm, &s.ffn_norm, &s.attn_post_norm, &s.ffn_post_norm})
    if (!t->empty()) t->resize(size_t(E));
  s.wq = corner(L.wq, E0, H * D, E);
  s.wk = corner(L.wk, E0, HKV * D, E);
  s.wv = corner(L.wv, E0, HKV * D, E);
  s.wo = corner(L.wo, int64_t(L.wq.size()) / E0, E, H * D);  // E0 x q_width
  s.w_gate = corner(L.w_gate, E0, F, E);
  s.w_up = corner(L.w_up, E0, F, E);
  s.w_down = corner(L.w_down, F, E, F);
  w = {};
  w.tok_embd = corner(full.tok_embd, E0, V, E);
  w.out_norm = std::vector<double>(full.out_norm.begin(), full.out_norm.begin() + E);
  w.layers = {s};
  return m;
}

// Every student tensor (sampled) and the projections against central differences of f.
void check_gradient(Weights<double>& w, Weights<double>& g, const std::function<double()>& f, const std::string& what) {
  std::vector<std::vector<double>*> grads;
  g.each([&](const std::string&, std::vector<double>& t) { grads.push_back(&t); });
  size_t i = 0;
  std::mt19937 rng(11);
  int proj = 0;
  w.each([&](const std::string& name, std::vector<double>& t) {
    std::vector<double>& gt = *grads[i++];
    ASSERT_EQ(gt.size(), t.size()) << name;
    if (name == "token_embd.weight") return;  // checked by TrainEngine; here only the ids' rows move
    if (name == "output_norm.weight" && what == "state loss alone") return;  // the states are before it
    std::vector<size_t> idx;
    for (int s = 0; s < 12; ++s) idx.push_back(rng() % t.size());
    EXPECT_LT(fd_error(t, gt, f, idx, 1e-5), 1e-4) << what << ": " << name;
    proj += name.rfind("kd.", 0) == 0;
  });
  EXPECT_EQ(proj, 1) << what;
}

// The full loss of a student against a teacher's states and logits, checked in float64.
void check_full_loss(const Model& sm, Weights<double>& w, const Model& tm, const StateKdOptions& o, bool logits) {
  const auto ids = engine_ids(8);
  const int64_t n = int64_t(ids.size());
  const auto ps = make_plan(sm, KvType::F32, n), pt = make_plan(tm, KvType::F32, n);
  const StateKdPlan plan = plan_state_kd(o, sm, ps, tm, pt);
  ASSERT_TRUE(plan.projection);
  const auto tw = Weights<double>::from_model(tm);
  const States<double> ts = forward_states(tm, pt, tw, ids.data(), n, plan.want_teacher);
  DistillOptions kd;
  const LogitLoss<double> fkl = [&](const double* z, int64_t rows, int64_t V, double* dz) {
    return logits ? distill(kd, z, ts.logits.data(), rows, V, nullptr, dz) : 0.0;
  };
  auto g = w.zeros_like();
  StateKdParts parts;
  const double loss = loss_and_grad(sm, ps, w, ids.data(), n, fkl, state_kd_loss(plan, ts, w, &g, &parts), &g);
  EXPECT_GT(parts.feature, 1e-3);
  EXPECT_GT(parts.relation, 1e-4);
  auto f = [&] { return loss_and_grad<double>(sm, ps, w, ids.data(), n, fkl, state_kd_loss<double>(plan, ts, w, nullptr, nullptr), nullptr); };
  EXPECT_NEAR(f(), loss, 1e-12);
  check_gradient(w, g, f, logits ? "full loss" : "state loss alone");
}
}  // namespace

TEST(TrainStateKd, LayerMapParsingAndRefusals) {
  EXPECT_EQ(uniform_teacher_layer(0, 3, 5), 1);  // round(5/3) − 1
  EXPECT_EQ(uniform_teacher_layer(1, 3, 5), 2);  // round(10/3) − 1
  EXPECT_EQ(uniform_teacher_layer(2, 3, 5), 4);
  EXPECT_EQ(uniform_teacher_layer(0, 1, 2), 1);
  EXPECT_EQ(uniform_teacher_layer(0, 4, 2), 0);
  const auto p = parse_layer_pairs("0,2:4");
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].student, 0);
  EXPECT_EQ(p[0].teacher, -1);
  EXPECT_EQ(p[1].teacher, 4);
  EXPECT_TRUE(parse_layer_pairs("").empty());
  for (const char* bad : {"x", "1,", "-1", "1:", "1:2:3"}) EXPECT_THROW(parse_layer_pairs(bad), Error) << bad;
  auto teacher = load_model(stories());
  auto student = two_layers(false);
  const auto pt = make_plan(*teacher, KvType::F32, 8), ps = make_plan(*student, KvType::F32, 8);
  StateKdOptions o;
  o.feature_weight = 1;
  o.relation_weight = 1;
  const StateKdPlan plan = plan_state_kd(o, *student, ps, *teacher, pt);
  ASSERT_EQ(plan.feature.size(), 2u);
  EXPECT_EQ(plan.feature[0].teacher, 2);  // round(5/2) − 1, halves up
  EXPECT_EQ(plan.feature[1].teacher, 4);
  ASSERT_EQ(plan.relation.size(), 1u);
  EXPECT_EQ(plan.relation[0].student, 1);
  EXPECT_EQ(plan.relation[0].teacher, 4);
  EXPECT_EQ(plan.relation_heads, 4);  // the KV heads
  EXPECT_FALSE(plan.projection);      // equal widths
  EXPECT_EQ(plan.want_teacher, (std::vector<uint8_t>{0, 0, kHiddenState, 0, kHiddenState | kQkvState}));
  auto refused = [&](StateKdOptions bad, const char* says) {
    try {
      plan_state_kd(bad, *student, ps, *teacher, pt);
      ADD_FAILURE() << says;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
    }
  };
  StateKdOptions b = o;
  b.feature_layers = {{2, -1}};
  refused(b, "feature layer 2 is out of range");
  b = o;
  b.relation_layers = {{0, 5}};
  refused(b, "relation teacher layer 5 is out of range");
  b = o;
  b.feature_layers = {{0, 1}, {0, 2}};
  refused(b, "twice");
  b = o;
  b.relation_heads = 3;
  refused(b, "relation heads do not divide");
  b = o;
  b.feature_weight = -1;
  refused(b, "feature distillation weight -1");
  b = o;
  b.relation_weight = NAN;
  refused(b, "relation distillation weight");
}

// Each part alone: zero on equal inputs, gradients (states and projection) against central differences.
TEST(TrainStateKd, PartsMatchFiniteDifferences) {
  const int64_t n = 6, Es = 5, Et = 7;
  std::vector<double> hs = randn(size_t(n * Es), 1), ht = randn(size_t(n * Et), 2), P = randn(size_t(Et * Es), 3, 0.5);
  std::vector<double> dhs(hs.size(), 0.0), dP(P.size(), 0.0);
  const double scale = 0.7;
  const double l = feature_mse(hs.data(), Es, ht.data(), Et, n, P.data(), scale, dhs.data(), dP.data());
  auto f = [&] { return scale * feature_mse<double>(hs.data(), Es, ht.data(), Et, n, P.data(), 0, nullptr, nullptr); };
  EXPECT_NEAR(f(), scale * l, 1e-14);
  EXPECT_LT(fd_error(hs, dhs, f), 1e-7);
  EXPECT_LT(fd_error(P, dP, f), 1e-7);
  EXPECT_NEAR(feature_mse<double>(hs.data(), Es, hs.data(), Es, n, nullptr, 1, nullptr, nullptr), 0.0, 1e-15);
  EXPECT_THROW(feature_mse<double>(hs.data(), Es, ht.data(), Et, n, nullptr, 1, nullptr, nullptr), Error);
  // relations: student 2 heads of 3 (width 6), teacher 2 heads of 4 (width 8)
  std::vector<double> xs = randn(size_t(n * 6), 4), xt = randn(size_t(n * 8), 5), dxs(xs.size(), 0.0);
  const double r = relation_kl(xs.data(), 6, xt.data(), 8, n, 2, scale, dxs.data());
  EXPECT_GT(r, 0.01);
  auto g = [&] { return scale * relation_kl<double>(xs.data(), 6, xt.data(), 8, n, 2, 0, nullptr); };
  EXPECT_LT(fd_error(xs, dxs, g), 1e-7);
  EXPECT_NEAR(relation_kl<double>(xt.data(), 8, xt.data(), 8, n, 2, 1, nullptr), 0.0, 1e-15);
  EXPECT_THROW(relation_kl<double>(xs.data(), 6, xt.data(), 8, n, 4, 1, nullptr), Error);
}

class TrainStateKdModel : public ::testing::TestWithParam<bool> {};

// Teacher: the two-layer model; student: its first block alone, with an explicit random
// projection on the equal width (student layer 0 ↔ teacher layer 1 for both parts).
TEST_P(TrainStateKdModel, FullLossGradientMatchesFiniteDifferences) {
  auto teacher = two_layers(GetParam());
  auto student = two_layers(GetParam());
  student->blocks.resize(1);
  student->hp.n_layer = 1;
  auto w = Weights<double>::from_model(*student);
  StateKdOptions o;
  o.feature_weight = 0.8;
  o.relation_weight = 0.6;
  o.projection = true;
  const int64_t E = student->hp.n_embd;
  const auto ps = make_plan(*student, KvType::F32, 8), pt = make_plan(*teacher, KvType::F32, 8);
  add_projections(plan_state_kd(o, *student, ps, *teacher, pt), w);
  ASSERT_EQ(w.aux.size(), 1u);
  EXPECT_EQ(w.aux[0].first, "kd.feature_proj.0");
  const std::vector<double> noise = randn(w.aux[0].second.size(), 6, 0.1);
  for (size_t i = 0; i < noise.size(); ++i) w.aux[0].second[i] += noise[i];
  EXPECT_EQ(int64_t(w.aux[0].second.size()), E * E);
  check_full_loss(*student, w, *teacher, o, true);
  check_full_loss(*student, w, *teacher, o, false);
}

// A student 48 wide with 4 query / 2 KV heads against the 64-wide teacher with 8 / 4: the
// projection starts at the truncated identity; relation heads default to gcd(2, 4) = 2.
TEST_P(TrainStateKdModel, WidthMismatchGradientMatchesFiniteDifferences) {
  auto teacher = two_layers(GetParam());
  Weights<double> w;
  auto student = narrow_student(GetParam(), 48, 4, 2, w);
  StateKdOptions o;
  o.feature_weight = 1.5;
  o.relation_weight = 0.5;
  const auto ps = make_plan(*student, KvType::F32, 8), pt = make_plan(*teacher, KvType::F32, 8);
  const StateKdPlan plan = plan_state_kd(o, *student, ps, *teacher, pt);
  EXPECT_EQ(plan.relation_heads, 2);
  add_projections(plan, w);
  const auto& P = w.aux.at(0).second;
  ASSERT_EQ(P.size(), size_t(64 * 48));
  EXPECT_EQ(P[0], 1.0);
  EXPECT_EQ(P[size_t(47 * 48 + 47)], 1.0);
  EXPECT_EQ(P[size_t(48 * 48 + 5)], 0.0);  // rows past the student's width start at zero
  check_full_loss(*student, w, *teacher, o, true);
}

INSTANTIATE_TEST_SUITE_P(Families, TrainStateKdModel, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "gemma3" : "llama"; });
