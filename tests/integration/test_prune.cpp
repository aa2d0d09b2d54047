// `slimlm prune` end to end on stories260K (ids sampled by the model itself): every linear hits
// exactly 50% (or the 2:4 pattern), Wanda and SparseGPT stay closer to the dense model than
// magnitude (KL divergence on held-out stories), OWL keeps the mean sparsity, metadata is
// written; bad input is one line, exit 1, no output file.
#include "io/gguf.h"
#include "model/model.h"
#include "prune/prune.h"
#include "test_util.h"
#include <map>
#include <nlohmann/json.hpp>

using namespace slimlm::test;
namespace fs = std::filesystem;

namespace {
struct StoriesData {
  std::string calib = stories_ids_file("prune-calib.txt", 1, 8), held = stories_ids_file("prune-eval.txt", 100, 2);
};

nlohmann::json prune_json(const std::string& out, const std::string& args, const StoriesData& d) {
  const CmdResult r = run_cli("prune " + stories() + " -o " + out + " " + args + " --calib-ids " + d.calib +
                              " --calib-samples 8 --calib-len 128 --no-progress --json");
  EXPECT_EQ(r.code, 0) << r.err;
  return r.code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json{};
}

double kld_vs_dense(const std::string& model, const StoriesData& d) {
  const CmdResult e = run_cli("eval " + model + " --ids " + d.held + " --ref " + stories() + " --ctx 128 --json --no-progress");
  EXPECT_EQ(e.code, 0) << e.err;
  return e.code == 0 ? nlohmann::json::parse(e.out)["kld_mean"].get<double>() : 1e9;
}
}  // namespace

TEST(PruneCli, HalfSparseOnStories260K) {
  SLIMLM_REQUIRE_FILE(stories());
  const StoriesData d;
  std::map<std::string, double> kld;
  for (const std::string method : {"magnitude", "wanda", "ria", "sparsegpt"}) {
    SCOPED_TRACE(method);
    const std::string out = temp_path("prune-" + method + ".gguf");
    const auto j = prune_json(out, "--method " + method + " --sparsity 0.5", d);
    ASSERT_FALSE(j.empty());
    EXPECT_EQ(j["linears"].size(), 5u * 7u);  // stories260K: 5 blocks
    for (const auto& l : j["linears"]) EXPECT_EQ(2 * l["zeros"].get<int64_t>(), l["n"].get<int64_t>()) << l["name"];
    EXPECT_EQ(j["achieved_sparsity"].get<double>(), 0.5);
    // The file itself: f16 block linears with exactly half zeros; embeddings untouched.
    auto m = slimlm::load_model(out);
    for (const auto& b : m->blocks)
      for (const slimlm::Tensor* t : b.linears()) {
        EXPECT_EQ(t->type, slimlm::DType::F16);
        const auto w = t->to_f32();
        EXPECT_EQ(2 * slimlm::prune::count_zeros(w.data(), t->nelements()), t->nelements()) << t->name;
      }
    EXPECT_EQ(m->gguf->get_str("slimlm.prune.method"), method);
    EXPECT_NEAR(m->gguf->get_float("slimlm.prune.achieved"), 0.5, 1e-7);
    auto dense = slimlm::load_model(stories());
    EXPECT_EQ(m->tok_embd.to_f32(), dense->tok_embd.to_f32());
    kld[method] = kld_vs_dense(out, d);
    fs::remove(out);
  }
  for (const auto& [k, v] : kld) std::printf("  KLD 50%% %-10s %.5f\n", k.c_str(), v);
  EXPECT_GT(kld["magnitude"], 0.0);
  EXPECT_LT(kld["wanda"], kld["magnitude"]);
  EXPECT_LT(kld["sparsegpt"], kld["magnitude"]);
}

TEST(PruneCli, TwoFourOwlAndGlobalOnStories260K) {
  SLIMLM_REQUIRE_FILE(stories());
  const StoriesData d;
  std::map<std::string, double> kld;
  for (const std::string method : {"magnitude", "wanda", "sparsegpt"}) {
    SCOPED_TRACE(method);
    const std::string out = temp_path("prune24-" + method + ".gguf");
    const auto j = prune_json(out, "--method " + method + " --nm 2:4", d);
    ASSERT_FALSE(j.empty());
    auto m = slimlm::load_model(out);
    for (const auto& b : m->blocks)
      for (const slimlm::Tensor* t : b.linears()) {
        const auto w = t->to_f32();
        EXPECT_TRUE(slimlm::prune::satisfies_nm(w.data(), t->rows(), t->cols(), 2, 4)) << t->name;
        EXPECT_EQ(2 * slimlm::prune::count_zeros(w.data(), t->nelements()), t->nelements()) << t->name;
      }
    EXPECT_EQ(m->gguf->get_str("slimlm.prune.nm"), "2:4");
    kld[method] = kld_vs_dense(out, d);
    fs::remove(out);
  }
  for (const auto& [k, v] : kld) std::printf("  KLD 2:4 %-10s %.5f\n", k.c_str(), v);
  EXPECT_LT(kld["sparsegpt"], kld["magnitude"]);

  // OWL: per-layer targets differ, average 0.6, and each layer achieves its own target.
  const std::string owl = temp_path("prune-owl.gguf");
  const auto jo = prune_json(owl, "--method wanda --sparsity 0.6 --owl", d);
  ASSERT_FALSE(jo.empty());
  double sum = 0, lo = 1, hi = 0;
  for (const auto& l : jo["layers"]) {
    const double t = l["target"].get<double>();
    sum += t; lo = std::min(lo, t); hi = std::max(hi, t);
    EXPECT_NEAR(l["achieved"].get<double>(), t, 0.02);  // per-row floor(s·64) / 64
    EXPECT_GE(l["outlier_ratio"].get<double>(), 0.0);
  }
  EXPECT_NEAR(sum / double(jo["layers"].size()), 0.6, 1e-9);
  EXPECT_NEAR(hi - lo, 2 * 0.08, 1e-9);
  EXPECT_NEAR(jo["achieved_sparsity"].get<double>(), 0.6, 0.01);
  EXPECT_TRUE(slimlm::gguf::File::open(owl)->find("slimlm.prune.owl")->u);
  fs::remove(owl);

  // Global magnitude: exactly 50% over the model, unevenly spread over the linears.
  const std::string glob = temp_path("prune-global.gguf");
  const auto jg = prune_json(glob, "--method magnitude --sparsity 0.5 --global", d);
  ASSERT_FALSE(jg.empty());
  int64_t z = 0, n = 0;
  double amin = 1, amax = 0;
  for (const auto& l : jg["linears"]) {
    z += l["zeros"].get<int64_t>(); n += l["n"].get<int64_t>();
    amin = std::min(amin, l["achieved"].get<double>()); amax = std::max(amax, l["achieved"].get<double>());
  }
  EXPECT_EQ(z, n / 2);
  EXPECT_GT(amax - amin, 0.01);
  fs::remove(glob);
}

// SparseGPT + GPTQ in one pass: the linears are stored in the codec's format, pruned weights
// are exact zeros on the grid (at least half of each linear), and the model still runs.
TEST(PruneCli, SparseGptWithJointQuantization) {
  SLIMLM_REQUIRE_FILE(stories());
  const StoriesData d;
  const std::string out = temp_path("prune-sgpt-u8.gguf");
  const auto j = prune_json(out, "--method sparsegpt --sparsity 0.5 --quant u8g32", d);
  ASSERT_FALSE(j.empty());
  EXPECT_EQ(j["type"], "u8g32");
  auto m = slimlm::load_model(out);
  for (const auto& b : m->blocks)
    for (const slimlm::Tensor* t : b.linears()) {
      EXPECT_EQ(slimlm::type_name(t->type), "u8g32");
      const auto w = t->to_f32();
      EXPECT_GE(2 * slimlm::prune::count_zeros(w.data(), t->nelements()), t->nelements()) << t->name;
    }
  EXPECT_LT(kld_vs_dense(out, d), 6.0);
  fs::remove(out);
}

// DSnoT on the masks of magnitude (50%) and Wanda (2:4): same sparsity and pattern, lower KL
// divergence (measured on stories260K: magnitude 4.74 -> 4.45, Wanda 2:4 5.79 -> 5.63; at 70%
// unstructured Wanda it was worse, 5.53 -> 5.90, so that case is not asserted).
TEST(PruneCli, DsnotRefinesMagnitudeAndTwoFourMasks) {
  SLIMLM_REQUIRE_FILE(stories());
  const StoriesData d;
  for (const std::string args : {"--method magnitude --sparsity 0.5", "--method wanda --nm 2:4"}) {
    SCOPED_TRACE(args);
    const std::string a = temp_path("dsnot-a.gguf"), b = temp_path("dsnot-b.gguf");
    const auto ja = prune_json(a, args, d), jb = prune_json(b, args + " --dsnot", d);
    ASSERT_FALSE(ja.empty());
    ASSERT_FALSE(jb.empty());
    EXPECT_EQ(ja["achieved_sparsity"], jb["achieved_sparsity"]);
    EXPECT_GT(jb["dsnot"]["swaps"].get<int64_t>(), 0);
    EXPECT_LT(jb["dsnot"]["expected_err_after"].get<double>(), jb["dsnot"]["expected_err_before"].get<double>());
    if (args.find("2:4") != std::string::npos) {
      auto m = slimlm::load_model(b);
      for (const slimlm::Tensor* t : m->blocks[0].linears()) {
        const auto w = t->to_f32();
        EXPECT_TRUE(slimlm::prune::satisfies_nm(w.data(), t->rows(), t->cols(), 2, 4)) << t->name;
      }
    }
    const double ka = kld_vs_dense(a, d), kb = kld_vs_dense(b, d);
    std::printf("  KLD %s: %.4f, with DSnoT %.4f\n", args.c_str(), ka, kb);
    EXPECT_LT(kb, ka);
    fs::remove(a);
    fs::remove(b);
  }
}

TEST(PruneCli, BadInputIsOneLineAndNoOutput) {
  SLIMLM_REQUIRE_FILE(stories());
  const std::string src = stories(), out = temp_path("never-pruned.gguf");
  const std::string ids = temp_path("few-ids.txt");
  { std::FILE* f = std::fopen(ids.c_str(), "w"); std::fputs("1 2 3 4 5 6 7 8 9 10", f); std::fclose(f); }
  auto expect_error = [&](const std::string& args, const std::string& fragment, const std::string& path) {
    SCOPED_TRACE(args);
    const CmdResult r = run_cli(args);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_TRUE(r.err.starts_with("slimlm: error:")) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
    EXPECT_NE(r.err.find(fragment), std::string::npos) << "wanted '" << fragment << "' in: " << r.err;
    EXPECT_FALSE(fs::exists(path));
  };
  const std::string base = "prune " + src + " -o " + out + " --calib-ids " + ids + " --calib-len 128 --no-progress ";
  expect_error(base + "--sparsity 1.0", "--sparsity must be in [0, 1)", out);
  expect_error(base + "--sparsity -0.1", "--sparsity must be in [0, 1)", out);
  expect_error(base + "--nm 4:2", "0 < N <= M", out);
  expect_error(base + "--nm 0:4", "0 < N <= M", out);
  expect_error(base + "--nm 2:-4", "0 < N <= M", out);
  expect_error(base + "--nm two", "--nm must look like", out);
  expect_error(base + "--method foo", "unknown --method", out);
  expect_error(base + "--owl --nm 2:4", "--owl", out);
  expect_error(base + "--method wanda --global", "--global", out);
  expect_error(base + "--method wanda --quant u4g32", "--quant", out);
  expect_error(base + "--method sparsegpt --dsnot", "--dsnot", out);
  expect_error(base + "--method heads --dsnot", "--dsnot", out);
  expect_error(base + "--type q9_9", "q9_9", out);
  expect_error(base + "--type q8_0", "do not fit", out);  // stories260K's hidden 172 is not a multiple of 32
  expect_error("prune " + src + " -o /nonexistent-dir/x.gguf --method magnitude", "does not exist", "/nonexistent-dir/x.gguf");
  expect_error(base + "--method wanda", "calibration text has", out);
  expect_error("prune " + src + " -o " + out + " --method wanda", "tokenizer", out);
}
