// `slimlm train` / `slimlm distill` on stories260K (its own sampled stories as token ids): the
// JSON summary, the written model, the loss plot, checkpoints and resume; one-line errors with
// nothing written for bad input.
#include "core/text.h"
#include "model/model.h"
#include "pipeline/registry.h"
#include "test_util.h"
#include <gtest/gtest.h>
#include <filesystem>
#include <nlohmann/json.hpp>

using namespace slimlm::test;

namespace {
int lines(const std::string& s) { return int(std::count(s.begin(), s.end(), '\n')); }

struct Case { std::string args, says; };
// Each command line (with -o out) fails with exit code 1, a one-line error that says `says`, and
// writes nothing.
void expect_one_line_errors(const std::vector<Case>& cases, const std::string& out) {
  for (const Case& c : cases) {
    const auto r = run_cli(c.args + " -o " + out);
    EXPECT_EQ(r.code, 1) << c.args;
    EXPECT_EQ(lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(out)) << c.args;
  }
}
}  // namespace

TEST(TrainCli, TrainsWritesAModelAPlotAndResumes) {
  const std::string ids = stories_ids_file("train-cli.ids", 1, 8), out = temp_path("trained.gguf");
  const std::string svg = temp_path("curve.svg"), ckpt = temp_path("train.ckpt");
  const std::string common = stories() + " --ids " + ids + " --seq 64 --heldout 0.25 --lr 3e-3 --json";
  auto r = run_cli("train " + common + " --steps 4 --eval-every 2 -o " + out + " --curve " + svg + " --checkpoint " + ckpt);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["steps"], 4);
  EXPECT_EQ(j["mode"], "full");
  EXPECT_EQ(j["log"].size(), 4u);
  EXPECT_EQ(j["heldout"].size(), 3u);
  EXPECT_EQ(j["heldout"][1]["step"], 2);
  for (const auto& h : j["heldout"]) EXPECT_GT(h["loss"].get<double>(), 0.5);  // finite, and not memorised
  EXPECT_TRUE(std::filesystem::exists(svg));
  // the written model scores the held-out text as the trainer did (eval on the stories ids)
  auto e = run_cli("eval " + out + " --ids " + ids + " --ctx 64 --chunks 1 --json");
  ASSERT_EQ(e.code, 0) << e.err;
  // resume two more steps from the checkpoint
  r = run_cli("train " + common + " --steps 6 --resume " + ckpt);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["steps"], 2);
  // LoRA: far fewer trained parameters
  r = run_cli("train " + common + " --steps 2 --lora-rank 4");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto jl = nlohmann::json::parse(r.out);
  EXPECT_EQ(jl["mode"], "lora");
  EXPECT_LT(jl["params_trained"].get<int64_t>() * 5, j["params_trained"].get<int64_t>());
  for (const auto& p : {ids, out, svg, ckpt}) std::filesystem::remove(p);
}

TEST(TrainCli, DistillsAndRefusesBadInput) {
  const std::string ids = stories_ids_file("distill-cli.ids", 20, 4), out = temp_path("student.gguf");
  auto r = run_cli("distill " + stories() + " --teacher " + stories() + " --ids " + ids +
                   " --seq 64 --steps 2 --kd rkl --heldout 0.25 --json -o " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["teacher"], stories());
  std::filesystem::remove(out);
  const std::string gemma = model_path(slimlm::test::kGemma);
  const std::vector<Case> cases = {
      {"distill " + stories() + " --ids " + ids + " --steps 1", "--teacher"},
      {"train " + stories() + " --ids " + ids + " --seq 4096 --steps 1", "shorter than one sequence"},
      {"train " + stories() + " --ids " + ids + " --steps 1 --lr -1", "learning rate"},
      {"train " + stories() + " --ids " + ids + " --steps 1 --kd xyz --teacher " + stories(), "distillation loss"},
      {"train " + stories() + " --ids " + ids + " --steps 1 --resume " + ids, "not a slimlm training checkpoint"},
      {"train " + stories() + " --ids " + ids + " --steps 1 --lora-rank 2 --lora-targets qkv", "unknown LoRA target"},
  };
  expect_one_line_errors(cases, out);
  if (std::filesystem::exists(gemma)) {
    r = run_cli("distill " + stories() + " --teacher " + gemma + " --ids " + ids + " --seq 64 --steps 1 -o " + out);
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("vocabularies differ"), std::string::npos) << r.err;
  }
  std::filesystem::remove(ids);
}

// Feature and relation distillation through the CLI: stories260K (five layers) teaches its first
// three blocks (written as a GGUF); the JSON names the loss parts, and the held-out feature MSE and
// logit KL fall; bad weights and layers fail in one line with nothing written.
TEST(TrainCli, DistillsFeaturesAndRelations) {
  const std::string ids = stories_ids_file("feature-kd.ids", 30, 4), student = temp_path("cut3.gguf");
  const std::string out = temp_path("feature-student.gguf");
  auto cut = slimlm::load_model(stories());
  cut->blocks.resize(3);
  cut->hp.n_layer = 3;
  slimlm::save_gguf(*cut, student, slimlm::DType::F32);
  const std::string base = "distill " + student + " --teacher " + stories() + " --ids " + ids + " --seq 64 --heldout 0.25 ";
  auto r = run_cli(base + "--steps 60 --lr 5e-4 --feature-weight 3 --feature-proj --relation-weight 0.1 --relation-layers 2:4 "
                   "--json -o " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  const auto& parts = j["loss_parts"];
  EXPECT_EQ(parts["logit"], "fkl");
  EXPECT_EQ(parts["feature_weight"], 3.0);
  EXPECT_EQ(parts["feature_projection"], true);
  EXPECT_EQ(parts["relation_weight"], 0.1);
  EXPECT_EQ(parts["feature_layers"], nlohmann::json::parse("[[0,1],[1,2],[2,4]]"));
  EXPECT_EQ(parts["relation_layers"], nlohmann::json::parse("[[2,4]]"));
  EXPECT_EQ(parts["relation_heads"], 4);
  for (const char* k : {"logit", "feature", "relation"}) EXPECT_TRUE(j["log"][0].contains(k)) << k;
  const auto &h0 = j["heldout"].front(), &h1 = j["heldout"].back();
  std::printf("CLI held-out: logit KL %.4f -> %.4f, feature MSE %.4f -> %.4f, relation KL %.4f -> %.4f\n",
              h0["logit"].get<double>(), h1["logit"].get<double>(), h0["feature"].get<double>(),
              h1["feature"].get<double>(), h0["relation"].get<double>(), h1["relation"].get<double>());
  EXPECT_LT(h1["feature"].get<double>(), 0.95 * h0["feature"].get<double>());
  EXPECT_LT(h1["logit"].get<double>(), 0.9 * h0["logit"].get<double>());
  EXPECT_LT(h1["relation"].get<double>(), h0["relation"].get<double>());
  EXPECT_TRUE(std::filesystem::exists(out));
  std::filesystem::remove(out);
  expect_one_line_errors({{base + "--steps 1 --feature-weight -1", "--feature-weight must be in [0, 1000000], not -1"},
                          {base + "--steps 1 --relation-weight -0.5", "--relation-weight must be in [0, 1000000], not -0.5"},
                          {base + "--steps 1 --relation-weight 1 --relation-heads -2", "--relation-heads must be in [0, 4096]"},
                          {base + "--steps 1 --feature-weight 1 --feature-layers 3", "feature layer 3 is out of range"},
                          {base + "--steps 1 --relation-weight 1 --relation-layers 0:5", "relation teacher layer 5"},
                          {base + "--steps 1 --feature-weight 1 --feature-layers 1,x", "not a layer number"},
                          {base + "--steps 1 --relation-weight 1 --relation-heads 3", "relation heads do not divide"},
                          {"train " + student + " --ids " + ids + " --steps 1 --feature-weight 1", "need --teacher"},
                          {"distill " + student + " --teacher " + stories() + " --relation-weight 1 --black-box", "no --black-box"}},
                         out);
  for (const auto& p : {ids, student}) std::filesystem::remove(p);
}

// Black-box distillation: SmolLM2 writes the text (two greedy `continue` samples) and itself as
// the student trains on it with cross-entropy; the written model runs; bad values fail in one line.
TEST(TrainCli, BlackBoxDistillsOnTheTeachersText) {
  const std::string smol = model_path(slimlm::test::kSmol);
  SLIMLM_REQUIRE_FILE(smol);
  const std::string out = temp_path("bb-student.gguf"), text = temp_path("bb-teacher.txt");
  const std::string bb = "distill " + smol + " --teacher " + smol + " --black-box ";
  auto r = run_cli(bb + "--bb-samples 2 --bb-prompt-tokens 16 --bb-new-tokens 16 --bb-text " + text + " --seq 32 --steps 1 --lora-rank 2 --heldout 0 --type q8_0 --json -o " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["steps"], 1);
  EXPECT_EQ(j["black_box"]["style"], "continue");
  EXPECT_EQ(j["black_box"]["samples"], 2);
  const int64_t gen = j["black_box"]["generated_tokens"].get<int64_t>(), tokens = j["black_box"]["tokens"].get<int64_t>();
  EXPECT_GT(gen, 0);
  EXPECT_LE(gen, 32);
  EXPECT_GE(tokens, gen + 2 * 16);  // the prompts and an end-of-text token per sample too
  EXPECT_GT(j["black_box"]["seconds"].get<double>(), 0);
  EXPECT_NE(slimlm::read_text_file(text).find("=== sample 2 (continue) ==="), std::string::npos);
  // the student loads and runs
  auto g = run_cli("generate " + out + " --prompt-ids 1,2,3 -n 1 --temp 0 --print-ids");
  EXPECT_EQ(g.code, 0) << g.err;
  for (const auto& p : {out, text}) std::filesystem::remove(p);
  expect_one_line_errors({{bb + "--bb-samples 0", "teacher samples 0"},
                          {bb + "--bb-new-tokens -3", "new tokens -3"},
                          {bb + "--bb-prompt-tokens -1", "prompt tokens -1"},
                          {bb + "--bb-style essay", "unknown prompt style 'essay'"},
                          {bb + "--bb-temperature -1", "teacher temperature"},
                          {bb + "--ids " + smol, "drop --ids"},
                          {"train " + smol + " --black-box", "--black-box needs --teacher"},
                          {"distill " + stories() + " --teacher " + smol + " --black-box", "vocabularies differ"}},
                         out);
}

// The train and distill verbs' flags are the registry's parameters (recipe steps are checked
// against the same list): every one appears in --help, with its range where it has one.
TEST(TrainCli, FlagsAreTheRegistrysParameters) {
  for (const char* verb : {"train", "distill"}) {
    const auto h = run_cli(std::string(verb) + " --help");
    ASSERT_EQ(h.code, 0) << h.err;
    const slimlm::pipeline::VerbInfo* vi = slimlm::pipeline::find_verb(verb);
    ASSERT_NE(vi, nullptr) << verb;
    EXPECT_GT(vi->params.size(), 30u);
    for (const auto& p : vi->params) EXPECT_NE(h.out.find(std::string("--") + p.name), std::string::npos) << verb << " --" << p.name;
    EXPECT_NE(h.out.find("range [1, 10000000]"), std::string::npos) << h.out;  // --steps
  }
  // An out-of-range value is a one-line error from the registry, nothing written.
  const std::string out = temp_path("never-trained.gguf");
  expect_one_line_errors({{"train " + stories() + " --steps 0", "--steps must be in [1, 10000000], not 0"},
                          {"distill " + stories() + " --teacher " + stories() + " --heldout 1", "--heldout must be in [0, 1)"}},
                         out);
}

// On-policy distillation through the CLI: half the sequences written by the student (seeded), the
// JSON reports how many, their tokens and the generation time; bad settings fail in one line.
TEST(TrainCli, DistillsOnPolicyAndReportsTheCounts) {
  const std::string ids = stories_ids_file("on-policy-cli.ids", 40, 3), out = temp_path("on-policy-student.gguf");
  const std::string base = "distill " + stories() + " --teacher " + stories() + " --ids " + ids + " --seq 64 --heldout 0.25 ";
  auto r = run_cli(base + "--steps 4 --accum 2 --kd jsd --on-policy 0.5 --on-policy-prompt 16 --json -o " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["kd"], "jsd");
  const auto& op = j["on_policy"];
  EXPECT_EQ(op["rate"], 0.5);
  EXPECT_EQ(op["prompt_tokens"], 16);
  EXPECT_EQ(op["temperature"], 1.0);
  EXPECT_EQ(op["sequences_total"], 8);
  const int64_t gen = op["sequences"].get<int64_t>();
  std::printf("CLI on-policy: %lld of 8 sequences generated in %.4f s\n", static_cast<long long>(gen),
              op["seconds"].get<double>());
  EXPECT_GT(gen, 0);
  EXPECT_LT(gen, 8);
  EXPECT_EQ(op["generated_tokens"], gen * (65 - 16));
  EXPECT_GT(op["seconds"].get<double>(), 0);
  EXPECT_TRUE(std::filesystem::exists(out));
  std::filesystem::remove(out);
  expect_one_line_errors({{base + "--steps 1 --on-policy 1.5", "on-policy rate 1.5 is out of range [0, 1]"},
                          {base + "--steps 1 --on-policy 0.5 --on-policy-prompt 64", "leaves nothing to generate"},
                          {base + "--steps 1 --on-policy 0.5 --on-policy-temp -1", "on-policy temperature -1"},
                          {"train " + stories() + " --ids " + ids + " --steps 1 --on-policy 0.5", "--on-policy needs --teacher"},
                          {"distill " + stories() + " --teacher " + stories() + " --on-policy 0.5 --black-box", "no --black-box"}},
                         out);
  std::filesystem::remove(ids);
}
