// `slimlm recipe`: a JSON chain of steps (prune → quantize) run end to end on stories260K, the
// per-step report, no intermediate files left behind, and bad recipes / failing steps.
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
  };
  expect_error("{\"steps\": [", "not valid JSON");
  expect_error("{\"steps\": []}", "non-empty \"steps\"");
  expect_error("{\"steps\": [{\"distill\": {}}]}", "unknown verb 'distill'");
  expect_error("{\"steps\": [{\"quantize\": {\"output\": \"x.gguf\"}}]}", "set by the recipe runner");
  expect_error("{\"steps\": [{\"quantize\": {\"bits\": [4]}}]}", "string, number or boolean");
  // The first step works, the second fails in its own flag check: no output, no intermediate.
  expect_error("{\"steps\": [{\"quantize\": {\"method\": \"rtn\", \"type\": \"u8g32\"}}, {\"quantize\": {\"method\": \"foo\"}}]}",
               "unknown --method");
}
