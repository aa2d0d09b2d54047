// `slimlm recipe`: a JSON chain of steps (prune → quantize, prune → distill → quantize) run end
// to end on stories260K, the per-step report, no intermediate files left behind, the distill
// step's teacher defaulting to the source model, and bad recipes / failing steps.
#include "test_util.h"
#include <fstream>
#include <nlohmann/json.hpp>

using namespace slimlm::test;
namespace fs = std::filesystem;

namespace {
std::string write_recipe(const std::string& name, const std::string& text) {
  const std::string path = temp_path(name);
  std::ofstream(path) << text;
  return path;
}
// Files in the folder of `out` whose names start with out's file name (intermediates included).
int files_like(const std::string& out) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(fs::path(out).parent_path()))
    n += e.path().filename().string().starts_with(fs::path(out).filename().string());
  return n;
}
}  // namespace

TEST(Recipe, PruneThenQuantizeOnStories260K) {
  const std::string src = stories();
  SLIMLM_REQUIRE_FILE(src);
  const std::string calib = stories_ids_file("stories-calib.txt", 1, 8), held = stories_ids_file("stories-eval.txt", 100, 2);
  const std::string recipe = write_recipe("r24.json", R"({"name": "wanda-2of4+gptq-u4g32", "steps": [
      {"prune": {"method": "wanda", "nm": "2:4", "calib-ids": ")" + calib + R"(", "calib-samples": 8, "calib-len": 128, "no-progress": true}},
      {"quantize": {"method": "gptq", "type": "u4g32", "calib-ids": ")" + calib + R"(", "calib-samples": 8, "calib-len": 128, "no-progress": true}}]})");
  const std::string out = temp_path("recipe-out.gguf");
  fs::remove(out);
  const CmdResult r = run_cli("recipe " + recipe + " " + src + " -o " + out + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["recipe"], "wanda-2of4+gptq-u4g32");
  ASSERT_EQ(j["steps"].size(), 2u);
  EXPECT_EQ(j["steps"][0]["verb"], "prune");
  EXPECT_EQ(j["steps"][1]["verb"], "quantize");
  EXPECT_EQ(j["steps"][1]["result"]["type"], "u4g32");
  EXPECT_NE(r.err.find("step 2/2"), std::string::npos) << r.err;
  EXPECT_EQ(files_like(out), 1);  // the output only: the intermediate is gone
  // The chain equals running the two verbs by hand.
  const std::string mid = temp_path("by-hand-mid.gguf"), hand = temp_path("by-hand.gguf");
  ASSERT_EQ(run_cli("prune " + src + " -o " + mid + " --method wanda --nm 2:4 --calib-ids " + calib +
                    " --calib-samples 8 --calib-len 128 --no-progress").code, 0);
  ASSERT_EQ(run_cli("quantize " + mid + " -o " + hand + " --method gptq --type u4g32 --calib-ids " + calib +
                    " --calib-samples 8 --calib-len 128 --no-progress").code, 0);
  auto eval = [&](const std::string& m) {
    const CmdResult e = run_cli("eval " + m + " --ids " + held + " --ref " + src + " --ctx 128 --json --no-progress");
    EXPECT_EQ(e.code, 0) << e.err;
    return nlohmann::json::parse(e.out);
  };
  const auto a = eval(out), b = eval(hand);
  EXPECT_EQ(a["kld_mean"], b["kld_mean"]);
  EXPECT_GT(a["kld_mean"].get<double>(), 0.0);
  for (const auto& f : {out, mid, hand}) fs::remove(f);
}

TEST(Recipe, BadRecipesAndFailingStepsLeaveNoOutput) {
  const std::string src = stories();
  SLIMLM_REQUIRE_FILE(src);
  const std::string out = temp_path("recipe-never.gguf");
  fs::remove(out);
  auto expect_error = [&](const std::string& text, const std::string& fragment) {
    SCOPED_TRACE(text);
    const CmdResult r = run_cli("recipe " + write_recipe("bad.json", text) + " " + src + " -o " + out);
    EXPECT_NE(r.code, 0);
    EXPECT_LT(r.code, 128) << r.err;
    EXPECT_TRUE(r.err.find("slimlm: error:") != std::string::npos) << r.err;
    EXPECT_NE(r.err.find(fragment), std::string::npos) << "wanted '" << fragment << "' in: " << r.err;
    EXPECT_EQ(files_like(out), 0);
    return r;
  };
  expect_error("{\"steps\": [", "not valid JSON");
  expect_error("{\"steps\": []}", "non-empty \"steps\"");
  expect_error("{\"steps\": [{\"finetune\": {}}]}", "unknown verb 'finetune'");
  expect_error("{\"steps\": [{\"quantize\": {\"output\": \"x.gguf\"}}]}", "set by the recipe runner");
  expect_error("{\"steps\": [{\"quantize\": {\"bits\": [4]}}]}", "string, number or boolean");
  // The first step works, the second fails in its own flag check: no output, no intermediate.
  expect_error("{\"steps\": [{\"quantize\": {\"method\": \"rtn\", \"type\": \"u8g32\"}}, {\"quantize\": {\"method\": \"foo\"}}]}",
               "unknown --method");
}

namespace {
// A stories260K recipe: prune 40% of the FFN neurons (activation scores on `calib`), then, per
// flag, distill from the source on `ids` and quantize to u4g32 (stories260K's FFN width is no
// multiple of 32, so q4_0 does not apply to it).
std::string neurons_recipe(const std::string& calib, const std::string& ids, bool distill, bool quantize) {
  const std::string c = R"("calib-ids": ")" + calib + R"(", "calib-samples": 8, "calib-len": 128, "no-progress": true)";
  std::string steps = R"({"prune": {"method": "neurons", "sparsity": 0.4, )" + c + "}}";
  if (distill)
    steps += R"(, {"distill": {"ids": ")" + ids + R"(", "seq": 64, "steps": 40, "lr": 3e-3, "kd": "fkl", "heldout": 0.25, "no-progress": true}})";
  if (quantize) steps += R"(, {"quantize": {"method": "awq+gptq", "type": "u4g32", )" + c + "}}";
  return R"({"name": "neurons40-kd", "steps": [)" + steps + "]}";
}

double kl_to(const std::string& model, const std::string& ref, const std::string& ids) {
  const CmdResult e = run_cli("eval " + model + " --ids " + ids + " --ref " + ref + " --ctx 128 --json --no-progress");
  EXPECT_EQ(e.code, 0) << e.err;
  return e.code == 0 ? nlohmann::json::parse(e.out)["kld_mean"].get<double>() : -1.0;
}
}  // namespace

TEST(Recipe, PruneDistillQuantizeOnStories260K) {
  const std::string src = stories();
  SLIMLM_REQUIRE_FILE(src);
  const std::string calib = stories_ids_file("kd-calib.txt", 1, 8), held = stories_ids_file("kd-eval.txt", 100, 2);
  const std::string out = temp_path("recipe-kd.gguf");
  fs::remove(out);
  const CmdResult r = run_cli("recipe " + write_recipe("kd.json", neurons_recipe(calib, calib, true, true)) + " " + src +
                              " -o " + out + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["steps"].size(), 3u);
  EXPECT_EQ(j["steps"][1]["verb"], "distill");
  const auto& kd = j["steps"][1]["result"];
  EXPECT_EQ(kd["teacher"], src);  // the recipe's source model
  EXPECT_EQ(kd["kd"], "fkl");
  EXPECT_EQ(kd["steps"], 40);
  EXPECT_EQ(kd["tokens"], 40 * 64);
  EXPECT_GT(kd["seconds"].get<double>(), 0.0);
  EXPECT_LT(kd["loss_last"].get<double>(), kd["loss_first"].get<double>());
  EXPECT_EQ(kd["heldout"].size(), 2u);
  EXPECT_EQ(j["steps"][2]["result"]["type"], "u4g32");
  EXPECT_NE(r.err.find("step 3/3"), std::string::npos) << r.err;
  EXPECT_EQ(files_like(out), 1);  // the output only: the intermediates are gone
  // Distillation from the source brings the pruned model closer to it.
  const std::string pruned = temp_path("recipe-pruned.gguf"), recovered = temp_path("recipe-recovered.gguf");
  ASSERT_EQ(run_cli("recipe " + write_recipe("p.json", neurons_recipe(calib, calib, false, false)) + " " + src + " -o " + pruned).code, 0);
  ASSERT_EQ(run_cli("recipe " + write_recipe("pd.json", neurons_recipe(calib, calib, true, false)) + " " + src + " -o " + recovered).code, 0);
  const double kl_pruned = kl_to(pruned, src, held), kl_recovered = kl_to(recovered, src, held);
  EXPECT_LT(kl_recovered, kl_pruned);
  EXPECT_GT(kl_recovered, 0.0);
  for (const auto& f : {out, pruned, recovered, calib, held}) fs::remove(f);
}

TEST(Recipe, DryRunShowsTheDistillTeacher) {
  const std::string src = stories();
  SLIMLM_REQUIRE_FILE(src);
  const std::string ids = temp_path("dry-ids.txt"), out = temp_path("recipe-dry.gguf");
  std::ofstream(ids) << "1 2 3\n";
  fs::remove(out);
  const CmdResult r = run_cli("recipe " + write_recipe("dry.json", neurons_recipe(ids, ids, true, true)) + " " + src +
                              " -o " + out + " --dry-run");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("slimlm prune '" + src + "'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("slimlm distill '" + out + ".step1.tmp.gguf'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("'--teacher' '" + src + "'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("slimlm quantize"), std::string::npos) << r.out;
  EXPECT_EQ(files_like(out), 0);
  // A teacher given in the recipe stays.
  const CmdResult t = run_cli("recipe " + write_recipe("dry-t.json", R"({"steps": [{"distill": {"teacher": ")" + ids + R"("}}]})") +
                              " " + src + " -o " + out + " --dry-run");
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.out.find("'--teacher' '" + ids + "'"), std::string::npos) << t.out;
  EXPECT_EQ(t.out.find(src + "' '--teacher'"), std::string::npos) << t.out;
  // Feature and relation distillation flags are step flags too.
  const CmdResult f = run_cli("recipe " + write_recipe("dry-f.json", R"({"steps": [{"distill": {"feature-weight": 2, )"
                              R"("relation-weight": 0.5, "relation-layers": "4:4", "feature-proj": true}}]})") + " " + src +
                              " -o " + out + " --dry-run");
  ASSERT_EQ(f.code, 0) << f.err;
  EXPECT_NE(f.out.find("'--feature-weight' '2'"), std::string::npos) << f.out;
  EXPECT_NE(f.out.find("'--relation-layers' '4:4'"), std::string::npos) << f.out;
  fs::remove(ids);
}

TEST(Recipe, BadTrainingStepsFailBeforeAnyStep) {
  const std::string src = stories();
  SLIMLM_REQUIRE_FILE(src);
  const std::string out = temp_path("recipe-kd-never.gguf");
  fs::remove(out);
  const std::string prune = R"({"prune": {"method": "magnitude", "sparsity": 0.5}}, )";
  auto expect_refused = [&](const std::string& distill, const std::string& fragment) {
    SCOPED_TRACE(distill);
    const std::string recipe = write_recipe("bad-kd.json", R"({"steps": [)" + prune + distill + "]}");
    const CmdResult r = run_cli("recipe " + recipe + " " + src + " -o " + out);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;  // one line, no step ran
    EXPECT_NE(r.err.find(recipe + ": step 2 (distill)"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(fragment), std::string::npos) << "wanted '" << fragment << "' in: " << r.err;
    EXPECT_EQ(files_like(out), 0);
  };
  expect_refused(R"({"distill": {"epochs": 3}})", "unknown flag '--epochs'");
  expect_refused(R"({"distill": {"steps": 0}})", "--steps must be in [1, 10000000], not 0");
  expect_refused(R"({"distill": {"steps": 2.5}})", "--steps must be an integer");
  expect_refused(R"({"distill": {"teacher": "/no/such/teacher.gguf"}})", "/no/such/teacher.gguf: no such file");
  expect_refused(R"({"distill": {"kd": "kl2"}})", "distillation loss");
  expect_refused(R"({"distill": {"ids": "/no/such/ids.txt"}})", "/no/such/ids.txt: no such file");
  expect_refused(R"({"distill": {"feature-weight": -1}})", "--feature-weight must be in [0, 1000000], not -1");
  expect_refused(R"({"distill": {"feature-weight": 1, "feature-layers": "1,x"}})", "not a layer number");
  expect_refused(R"({"distill": {"relation-weight": 1, "black-box": true}})", "no --black-box");
}

// Every recipe shipped in recipes/ passes the registry's checks (a dry run loads no model).
TEST(Recipe, ShippedRecipesPassTheChecks) {
  const std::string src = stories();
  SLIMLM_REQUIRE_FILE(src);
  int n = 0;
  for (const auto& e : fs::directory_iterator(fs::path(SLIMLM_SOURCE_DIR) / "recipes")) {
    if (e.path().extension() != ".json") continue;
    const CmdResult r = run_cli("recipe " + e.path().string() + " " + src + " -o " + temp_path("shipped.gguf") + " --dry-run");
    EXPECT_EQ(r.code, 0) << e.path() << ": " << r.err;
    ++n;
  }
  EXPECT_GE(n, 3);
}
