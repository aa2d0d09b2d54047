// `slimlm quantize` end to end on SmolLM2-135M: re-quantizing to the model's own grid is
// lossless, RTN/GPTQ/AWQ outputs load and run, and bad input is one line with no output file.
#include "test_util.h"
#include <map>
#include <nlohmann/json.hpp>

using namespace slimlm::test;
namespace fs = std::filesystem;

namespace {

nlohmann::json eval_vs(const std::string& model, const std::string& ref) {
  const CmdResult r = run_cli("eval " + model + " -f " + shared_data("wikitext-2-raw/wiki.test.raw") + " --ref " + ref +
                              " --chunks 1 --ctx 256 --json --no-progress -t 2");
  EXPECT_EQ(r.code, 0) << r.err;
  return nlohmann::json::parse(r.out);
}

// stories260K quantized with `args` (calibrated on `calib` ids), its JSON summary in *summary
// and the KL divergence of the result against the original on the held-out ids.
double stories_kld(const std::string& args, const std::string& calib, const std::string& held, const std::string& out,
                   nlohmann::json* summary) {
  const CmdResult q = run_cli("quantize " + stories() + " -o " + out + " " + args + " --calib-ids " + calib +
                              " --calib-samples 8 --calib-len 128 --no-progress --json");
  EXPECT_EQ(q.code, 0) << q.err;
  if (q.code != 0) return -1;
  *summary = nlohmann::json::parse(q.out);
  const CmdResult e = run_cli("eval " + out + " --ids " + held + " --ref " + stories() + " --ctx 128 --json --no-progress");
  EXPECT_EQ(e.code, 0) << e.err;
  return e.code == 0 ? nlohmann::json::parse(e.out)["kld_mean"].get<double>() : -1;
}

}  // namespace

TEST(Quantize, RequantizingToTheOwnGridIsLossless) {
  const std::string src = model_path(kSmol);
  SLIMLM_REQUIRE_FILE(src);
  const std::string out = temp_path("smol-q4_1.gguf");
  const CmdResult q = run_cli("quantize " + src + " -o " + out + " --method rtn --type q4_1 --no-progress --json");
  ASSERT_EQ(q.code, 0) << q.err;
  const auto j = eval_vs(out, src);
  EXPECT_EQ(j["kld_mean"].get<double>(), 0.0);
  EXPECT_EQ(j["top1_agree"].get<double>(), 1.0);
  fs::remove(out);
}

// stories260K (llama2.c, no tokenizer): calibration and evaluation ids are the model's own
// sampled stories. Every method and a ragged group (hidden 172 is not a multiple of 64) must
// produce a loadable model close to the original; GPTQ and AWQ must beat RTN at 3 bits.
TEST(Quantize, MethodsRunEndToEndOnStories260K) {
  const std::string src = stories();
  SLIMLM_REQUIRE_FILE(src);
  const std::string calib = stories_ids_file("stories-calib.txt", 1, 8), held = stories_ids_file("stories-eval.txt", 100, 2);
  std::map<std::string, double> kld;
  for (const std::string method : {"rtn", "gptq", "awq", "awq+gptq"}) {
    for (const std::string type : {"u4g32", "u3g64"}) {
      SCOPED_TRACE(method + " " + type);
      const std::string out = temp_path("stories-" + method + "-" + type + ".gguf");
      const CmdResult q = run_cli("quantize " + src + " -o " + out + " --method " + method + " --type " + type +
                                  " --calib-ids " + calib + " --calib-samples 8 --calib-len 128 --no-progress --json");
      ASSERT_EQ(q.code, 0) << q.err;
      const auto qj = nlohmann::json::parse(q.out);
      EXPECT_EQ(qj["type"], type);
      EXPECT_GT(qj["bpw_linear"].get<double>(), type[1] - '0');
      EXPECT_LT(qj["bpw_linear"].get<double>(), type[1] - '0' + 1.0);
      const CmdResult e = run_cli("eval " + out + " --ids " + held + " --ref " + src + " --ctx 128 --json --no-progress");
      ASSERT_EQ(e.code, 0) << e.err;
      const auto j = nlohmann::json::parse(e.out);
      kld[method + type] = j["kld_mean"].get<double>();
      EXPECT_GT(kld[method + type], 0.0);
      // A 260K-parameter model is fragile: RTN u4g32 costs ~2 nats, u3g64 ~5 (u8g32: 0.016).
      EXPECT_LT(kld[method + type], type == "u4g32" ? 2.5 : 6.0);
      fs::remove(out);
    }
  }
  EXPECT_LT(kld["gptqu3g64"], kld["rtnu3g64"]);
  EXPECT_LT(kld["awqu3g64"], kld["rtnu3g64"]);
  EXPECT_LT(kld["gptqu4g32"], kld["rtnu4g32"]);
  for (const auto& [k, v] : kld) std::printf("  KLD %-14s %.5f\n", k.c_str(), v);
}

// W8A8 on stories260K: naive per-channel int8 weights + per-token int8 activations, SmoothQuant
// at two strengths, and SmoothQuant with GPTQ rounding. All load and run close to the original;
// `--method rtn --type w8a8` is the same model as `--method w8a8`.
TEST(Quantize, W8A8AndSmoothQuantOnStories260K) {
  const std::string src = stories();
  SLIMLM_REQUIRE_FILE(src);
  const std::string calib = stories_ids_file("stories-calib.txt", 1, 8), held = stories_ids_file("stories-eval.txt", 100, 2);
  std::map<std::string, double> kld;
  for (const std::string args : {"--method w8a8", "--method rtn --type w8a8", "--method smoothquant --alpha 0.5",
                                 "--method smoothquant --alpha 0.8", "--method smoothquant+gptq --alpha 0.5"}) {
    SCOPED_TRACE(args);
    const std::string out = temp_path("stories-w8a8.gguf");
    nlohmann::json qj;
    kld[args] = stories_kld(args, calib, held, out, &qj);
    EXPECT_EQ(qj["type"], "w8a8");
    EXPECT_GT(qj["bpw_linear"].get<double>(), 8.0);
    EXPECT_LT(qj["bpw_linear"].get<double>(), 8.5);
    if (args.find("smoothquant") != std::string::npos) {
      const CmdResult info = run_cli("info " + out + " --meta");
      ASSERT_EQ(info.code, 0) << info.err;
      EXPECT_NE(info.out.find("slimlm.quant.alpha"), std::string::npos);
      EXPECT_NE(info.out.find("block weights w8a8"), std::string::npos) << info.out;
    }
    EXPECT_GT(kld[args], 0.0);
    EXPECT_LT(kld[args], 0.1);  // u8g32 weights alone cost ~0.016 nats on this model
    fs::remove(out);
  }
  EXPECT_EQ(kld["--method w8a8"], kld["--method rtn --type w8a8"]);
  // Even this tiny model has uneven activation channels: migrating them into the weights helps
  // (measured 0.051 vs 0.075 nats).
  EXPECT_LT(kld["--method smoothquant --alpha 0.5"], kld["--method w8a8"]);
  for (const auto& [k, v] : kld) std::printf("  KLD %-40s %.5f\n", k.c_str(), v);
}

TEST(Quantize, GgufFormatIsAStandardBlockType) {
  const std::string src = model_path(kSmol);
  SLIMLM_REQUIRE_FILE(src);
  const std::string out = temp_path("smol-q4_0.gguf");
  const CmdResult q = run_cli("quantize " + src + " -o " + out + " --method rtn --bits 4 --group 32 --sym --format gguf --json --no-progress");
  ASSERT_EQ(q.code, 0) << q.err;
  EXPECT_EQ(nlohmann::json::parse(q.out)["type"], "q4_0");
  const CmdResult info = run_cli("info " + out + " --json");
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_NE(info.out.find("q4_0"), std::string::npos);
  fs::remove(out);
}

TEST(Quantize, BadInputIsOneLineAndNoOutput) {
  const std::string src = model_path(kSmol);
  SLIMLM_REQUIRE_FILE(src);
  const std::string out = temp_path("never.gguf");
  auto expect_error = [&](const std::string& args, const std::string& fragment, const std::string& path) {
    SCOPED_TRACE(args);
    const CmdResult r = run_cli(args);
    EXPECT_NE(r.code, 0);
    EXPECT_LT(r.code, 128) << r.err;
    EXPECT_TRUE(r.err.starts_with("slimlm: error:")) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
    EXPECT_NE(r.err.find(fragment), std::string::npos) << "wanted '" << fragment << "' in: " << r.err;
    EXPECT_FALSE(fs::exists(path));
    EXPECT_FALSE(fs::exists(path + ".tmp"));
  };
  expect_error("quantize " + src + " -o " + out + " --bits 3 --group 32 --format gguf", "no llama.cpp block type", out);
  expect_error("quantize " + src + " -o " + out + " --method foo", "unknown --method", out);
  expect_error("quantize " + src + " -o " + out + " --type u9g32", "unknown quantization format", out);
  expect_error("quantize " + src + " -o " + out + " --method smoothquant --type q4_0", "writes w8a8 weights", out);
  expect_error("quantize " + src + " -o " + out + " --method awq --type w8a8", "use --method smoothquant", out);
  expect_error("quantize " + src + " -o " + out + " --method smoothquant --alpha 1.5", "", out);
  expect_error("quantize " + src + " -o /nonexistent-dir/x.gguf --method rtn", "does not exist", "/nonexistent-dir/x.gguf");
  const std::string short_text = temp_path("short.txt");
  { std::FILE* f = std::fopen(short_text.c_str(), "w"); std::fputs("Just a few words.", f); std::fclose(f); }
  expect_error("quantize " + src + " -o " + out + " --method gptq --calib " + short_text, "calibration text has", out);
  expect_error("quantize " + stories() + " -o " + out + " --method gptq", "tokenizer", out);
  expect_error("quantize " + stories() + " -o " + out + " --method rtn --type q4_0 --bits 2", "", out);
}

// The non-uniform and dense-and-sparse variants end to end on stories260K: per-row k-means
// codebooks (SqueezeLLM), the NF grid, and --outliers (f16 side matrix, applied by the runtime's
// matmul and stored as <weight>.outl_* tensors). Keeping 1% of the weights in f16 must lower
// RTN's error; the k-means codebook has the freedom of a uniform grid and more.
TEST(Quantize, KmeansNfAndOutliersOnStories260K) {
  const std::string src = stories();
  SLIMLM_REQUIRE_FILE(src);
  const std::string calib = stories_ids_file("stories-calib.txt", 1, 8), held = stories_ids_file("stories-eval.txt", 100, 2);
  std::map<std::string, double> kld;
  std::map<std::string, nlohmann::json> info;
  for (const std::string args : {"--method rtn --type u3g64", "--method rtn --type u3g64 --outliers 1",
                                 "--method gptq --type u3g64 --outliers 1", "--method kmeans --bits 3",
                                 "--method kmeans --bits 3 --outliers 1", "--method nf --bits 3 --group 64"}) {
    SCOPED_TRACE(args);
    const std::string out = temp_path("stories-variant.gguf");
    kld[args] = stories_kld(args, calib, held, out, &info[args]);
    EXPECT_GT(kld[args], 0.0);
    fs::remove(out);
  }
  for (const auto& [k, v] : kld) std::printf("  KLD %-42s %.5f  (%.3f bpw)\n", k.c_str(), v, info[k]["bpw_linear"].get<double>());
  const auto& ro = info["--method rtn --type u3g64 --outliers 1"];
  EXPECT_GT(ro["outliers"].get<int64_t>(), 0);
  EXPECT_EQ(ro["outlier_score"], "magnitude");
  EXPECT_EQ(info["--method gptq --type u3g64 --outliers 1"]["outlier_score"], "hessian");
  // 1% of the weights at 6 bytes each (f16 value + i32 column) costs ~0.5 bpw more.
  EXPECT_GT(ro["bpw_linear"].get<double>(), info["--method rtn --type u3g64"]["bpw_linear"].get<double>() + 0.4);
  EXPECT_LT(kld["--method rtn --type u3g64 --outliers 1"], kld["--method rtn --type u3g64"]);
  EXPECT_LT(kld["--method kmeans --bits 3 --outliers 1"], kld["--method kmeans --bits 3"]);
  EXPECT_LT(kld["--method kmeans --bits 3"], kld["--method rtn --type u3g64"]);
  EXPECT_EQ(info["--method kmeans --bits 3"]["type"], "lut3");
  EXPECT_EQ(info["--method nf --bits 3 --group 64"]["type"], "nf3g64");
}

TEST(Quantize, OutlierAndVariantFlagErrors) {
  const std::string src = stories();
  SLIMLM_REQUIRE_FILE(src);
  const std::string out = temp_path("never.gguf");
  for (const std::string args : {"--method rtn --type q4_0 --outliers 1 --format gguf", "--method rtn --outliers 60",
                                 "--method rtn --outliers 1 --outlier-score foo", "--method kmeans --bits 3 --type u3g64",
                                 "--method nf --type u4g64"}) {
    SCOPED_TRACE(args);
    const CmdResult r = run_cli("quantize " + src + " -o " + out + " " + args);
    EXPECT_NE(r.code, 0);
    EXPECT_LT(r.code, 128) << r.err;
    EXPECT_TRUE(r.err.starts_with("slimlm: error:")) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
    EXPECT_FALSE(fs::exists(out));
  }
}

// --method qat through the CLI on stories260K: Block-AP and the end-to-end phase lower the KL
// divergence of u3g64 below round to nearest's on held-out stories, the summary reports both
// phases, and QAT's own bad input is one line with no output file.
TEST(Quantize, QatThroughTheCliOnStories260K) {
  SLIMLM_REQUIRE_FILE(stories());
  const std::string calib = stories_ids_file("qat-cli-calib.txt", 1, 8), held = stories_ids_file("qat-cli-eval.txt", 100, 2);
  nlohmann::json sr, sq;
  const double rtn = stories_kld("--method rtn --type u3g64", calib, held, temp_path("qat-rtn.gguf"), &sr);
  const double qat = stories_kld("--method qat --type u3g64 --qat-epochs 6 --qat-lr 2e-3 --qat-scale-lr 5e-3 "
                                 "--qat-e2e-steps 8 --qat-e2e-lr 1e-3", calib, held, temp_path("qat-qat.gguf"), &sq);
  EXPECT_LT(qat, 0.9 * rtn) << "rtn " << rtn << " qat " << qat;
  EXPECT_EQ(sq["method"], "qat");
  EXPECT_EQ(sq["type"], "u3g64");
  EXPECT_EQ(sq["mse_qat"].size(), 5u);
  EXPECT_EQ(sq["e2e_loss"].size(), 8u);
  std::printf("  KLD u3g64: rtn %.4f, qat %.4f\n", rtn, qat);
  const std::string out = temp_path("never-qat.gguf");
  for (const auto& [args, fragment] : std::vector<std::pair<std::string, std::string>>{
           {"--type q4_K_M", "not the mixture"}, {"--type nf4g64", "uniform grids"}, {"--qat-epochs -1", "qat-epochs"},
           {"--outliers 1", "outliers"}}) {
    const CmdResult r = run_cli("quantize " + stories() + " -o " + out + " --method qat --calib-ids " + calib +
                                " --calib-len 128 --no-progress " + args);
    EXPECT_NE(r.code, 0) << args;
    EXPECT_TRUE(r.err.starts_with("slimlm: error:")) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
    EXPECT_NE(r.err.find(fragment), std::string::npos) << "wanted '" << fragment << "' in: " << r.err;
    EXPECT_FALSE(fs::exists(out));
  }
}
