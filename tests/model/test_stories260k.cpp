// stories260K (real llama2.c model) against golden.json from llama2.c's run.c and against the
// float64 reference forward; batched prefill vs decode; eval --per-token vs forward; the CLI.
#include "eval/eval.h"
#include "model/forward.h"
#include "model/model.h"
#include "model/sampler.h"
#include "reference_forward.h"
#include "test_util.h"
#include "core/text.h"
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

using namespace slimlm;
using namespace slimlm::test;

namespace {
nlohmann::json golden() {
  std::ifstream in(shared_data("stories260K/golden.json"));
  return nlohmann::json::parse(in);
}
}  // namespace

TEST(Stories260K, LoadsHeader) {
  SLIMLM_REQUIRE_FILE(stories());
  auto m = load_model(stories());
  EXPECT_EQ(m->hp.n_embd, 64);
  EXPECT_EQ(m->hp.n_layer, 5);
  EXPECT_EQ(m->hp.n_head_kv, 4);
  EXPECT_EQ(m->hp.n_vocab, 512);
  EXPECT_EQ(m->output.data, m->tok_embd.data);  // shared classifier
}

TEST(Stories260K, GreedyMatchesGolden) {
  SLIMLM_REQUIRE_FILE(stories());
  auto m = load_model(stories());
  auto g = golden();
  const auto& steps = g["steps"];
  Session s(*m, 512);
  std::vector<float> logits;
  int32_t tok = 1;
  int checked = 0;
  double max_logit_diff = 0;
  for (size_t i = 0; i < steps.size(); ++i) {
    ASSERT_EQ(steps[i]["input"].get<int32_t>(), tok) << "at step " << i;
    s.forward(&tok, 1, 0, logits);
    if (steps[i].contains("logits")) {
      const auto& gl = steps[i]["logits"];
      for (size_t v = 0; v < gl.size(); ++v) max_logit_diff = std::max(max_logit_diff, std::fabs(gl[v].get<double>() - logits[v]));
    }
    const int32_t am = Sampler::argmax(logits.data(), 512);
    if (steps[i]["margin"].get<double>() < 1e-3) break;  // a near-tie: order may legitimately differ
    ASSERT_EQ(am, steps[i]["argmax"].get<int32_t>()) << "greedy id differs at step " << i;
    tok = am;
    ++checked;
  }
  EXPECT_LT(max_logit_diff, 1e-4);
  EXPECT_GE(checked, 100) << "golden margins fell below 1e-3 too early to be a useful check";
}

TEST(Stories260K, MatchesFloat64Reference) {
  SLIMLM_REQUIRE_FILE(stories());
  auto m = load_model(stories());
  std::vector<int32_t> ids = {1, 461, 17, 300, 42, 7, 99, 256, 3, 511, 128, 64};
  auto ref = reference_logits(*m, ids);
  Session s(*m, 64);
  std::vector<float> logits;
  s.forward(ids.data(), int64_t(ids.size()), 0, logits);
  double worst = 0;
  for (size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, std::fabs(ref[i] - logits[i]));
  EXPECT_LT(worst, 1e-4);
}

TEST(Stories260K, PrefillEqualsDecode) {
  SLIMLM_REQUIRE_FILE(stories());
  auto m = load_model(stories());
  std::vector<int32_t> ids;
  for (int i = 0; i < 37; ++i) ids.push_back((i * 97 + 1) % 512);
  Session a(*m, 64), b(*m, 64);
  std::vector<float> la, lb;
  a.forward(ids.data(), int64_t(ids.size()), 0, la);
  for (size_t t = 0; t < ids.size(); ++t) {
    b.forward(&ids[t], 1, 0, lb);
    // prefill multiplies with the GEMM, decode with dot products: same math, other summation
    // order; the bar of MatchesFloat64Reference (1e-4), far below what a cache error gives
    for (int v = 0; v < 512; ++v) ASSERT_NEAR(la[t * 512 + size_t(v)], lb[size_t(v)], 1e-4) << "pos " << t;
  }
}

TEST(Stories260K, PerTokenMatchesForward) {
  SLIMLM_REQUIRE_FILE(stories());
  auto m = load_model(stories());
  std::vector<int32_t> ids = {1, 461, 17, 300, 42, 7, 99};
  auto scores = eval::per_token(*m, ids);
  Session s(*m, 16);
  std::vector<float> logits;
  s.forward(ids.data(), int64_t(ids.size()), 0, logits);
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(scores[i].argmax, Sampler::argmax(logits.data() + i * 512, 512));
    if (i + 1 < ids.size()) {
      const double lp = logits[i * 512 + size_t(ids[i + 1])] - eval::logsumexp(logits.data() + i * 512, 512);
      EXPECT_NEAR(scores[i].logprob_next, lp, 1e-5);
    }
  }
}

TEST(Stories260K, CliGenerateReproducesGolden) {
  SLIMLM_REQUIRE_FILE(stories());
  auto r = run_cli("generate " + stories() + " --prompt-ids 1 -n 256 --temp 0 --print-ids");
  ASSERT_EQ(r.code, 0) << r.err;
  auto ids = parse_ids(r.out, "cli output");
  auto g = golden();
  size_t i = 0;
  for (; i < ids.size() && i < g["steps"].size(); ++i) {
    if (g["steps"][i]["margin"].get<double>() < 1e-3) break;
    ASSERT_EQ(ids[i], g["steps"][i]["argmax"].get<int32_t>()) << "at " << i;
  }
  EXPECT_GE(i, 100u);
}

TEST(Stories260K, CliTeacherForcedAgreesWithGreedy) {
  SLIMLM_REQUIRE_FILE(stories());
  // Greedy ids fed back teacher-forced must give the same argmax at every position.
  auto gen = run_cli("generate " + stories() + " --prompt-ids 1 -n 64 --temp 0 --print-ids");
  ASSERT_EQ(gen.code, 0) << gen.err;
  auto ids = parse_ids(gen.out, "generated");
  const std::string f = temp_path("ids.txt");
  { std::ofstream o(f); o << "1 " << gen.out; }
  auto r = run_cli("eval " + stories() + " --ids " + f + " --per-token --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), ids.size() + 1);
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(j[i]["argmax"].get<int32_t>(), ids[i]) << "at " << i;
}
