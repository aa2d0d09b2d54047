// examples/compress_and_eval (built against the public header only) on stories260K: it must
// quantize, save, reload and evaluate the model, and its numbers must make sense.
#include "test_util.h"
#include <regex>

using namespace slimlm::test;

#ifdef SLIMLM_EXAMPLE
namespace {
CmdResult run_example(const std::string& args) { return run_command(std::string(SLIMLM_EXAMPLE) + " " + args); }

double number_after(const std::string& text, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(key + " ([-0-9.e+]+)"))) return -1;
  return std::stod(m[1].str());
}
}  // namespace

TEST(Example, CompressAndEvalOnStories260K) {
  SLIMLM_REQUIRE_FILE(stories());
  const std::string held = stories_ids_file("example-eval.txt", 100, 2), out = temp_path("example-u8.gguf");
  std::filesystem::remove(out);
  const CmdResult r = run_example(stories() + " " + out + " --ids " + held);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(out));
  EXPECT_NE(r.out.find("quantize --method rtn"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"type\":\"u8g32\""), std::string::npos) << r.out;
  // 8-bit groups of 32 move the tiny model little: small positive KL, high top-1 agreement,
  // perplexities close to each other.
  const double kld = number_after(r.out, "kld"), top1 = number_after(r.out, "top1");
  EXPECT_GT(kld, 0.0) << r.out;
  EXPECT_LT(kld, 0.1) << r.out;
  EXPECT_GT(top1, 0.8) << r.out;
  const double ppl0 = number_after(r.out, "original"), ppl1 = number_after(r.out, "compressed");
  EXPECT_GT(ppl0, 1.0) << r.out;
  EXPECT_NEAR(ppl1, ppl0, 0.1 * ppl0) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 8) << r.out;
  // A continuation of 16 ids from each model.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("compressed continues: ids ((\\d+ ?){16})\n"))) << r.out;
  // Bad input: one line on stderr, non-zero exit.
  const CmdResult bad = run_example(stories() + " " + out + " --ids " + held + " --method nope");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("unknown --method 'nope'"), std::string::npos) << bad.err;
  std::filesystem::remove(out);
}
#else
TEST(Example, CompressAndEvalOnStories260K) { GTEST_SKIP() << "examples not built (SLIMLM_BUILD_EXAMPLES=OFF)"; }
#endif
