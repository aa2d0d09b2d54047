// `slimlm convert` end to end: stories260K.bin to f32/f16/bf16/q8_0/q4_0 GGUF through the CLI;
// the f32 file reproduces the .bin's logits bit for bit, lossy types get worse in the order of
// their precision, `info --json` reports the type; SmolLM2 Q4_1 -> q8_0 keeps its greedy
// continuation; a failed convert leaves no output or temporary file behind.
#include "core/text.h"
#include "model/forward.h"
#include "model/model.h"
#include "test_util.h"
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

using namespace slimlm;
using namespace slimlm::test;
namespace fs = std::filesystem;

namespace {

const std::vector<int32_t> kConvertIds = {1, 461, 17, 300, 42, 7, 99, 256, 3, 511, 128, 64, 2, 400};

std::vector<float> convert_logits(const Model& m) {
  Session s(m, 64);
  std::vector<float> lg;
  s.forward(kConvertIds.data(), int64_t(kConvertIds.size()), 0, lg);
  return lg;
}

double mean_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += std::fabs(double(a[i]) - double(b[i]));
  return s / double(a.size());
}

// Files in the directory of `path` whose names start with the file name of `path`.
std::vector<std::string> leftovers(const std::string& path) {
  std::vector<std::string> out;
  const fs::path p(path);
  std::error_code ec;
  if (!fs::is_directory(p.parent_path(), ec)) return out;
  for (const auto& e : fs::directory_iterator(p.parent_path()))
    if (e.path().filename().string().starts_with(p.filename().string())) out.push_back(e.path().string());
  return out;
}

std::string one_line(const std::string& err) {
  return err.find('\n') + 1 == err.size() ? "" : "stderr is not exactly one line: " + err;
}

}  // namespace

TEST(Convert, StoriesToEveryWritableTypeThroughTheCli) {
  SLIMLM_REQUIRE_FILE(stories());
  auto ref = load_model(stories());
  const auto base = convert_logits(*ref);
  std::map<std::string, double> err;
  for (const std::string type : {"f32", "f16", "bf16", "q8_0", "q4_0"}) {
    SCOPED_TRACE(type);
    const std::string out = temp_path("stories." + type + ".gguf");
    fs::remove(out);
    auto r = run_cli("convert " + stories() + " -o " + out + " --type " + type);
    ASSERT_EQ(r.code, 0) << r.err;
    ASSERT_TRUE(fs::exists(out));
    EXPECT_EQ(leftovers(out), std::vector<std::string>{out}) << "temporary file left behind";
    auto m = load_model(out);
    EXPECT_EQ(m->format, "gguf");
    EXPECT_EQ(m->hp.n_layer, ref->hp.n_layer);
    EXPECT_EQ(m->hp.n_ff, ref->hp.n_ff);
    EXPECT_EQ(m->hp.norm_eps, ref->hp.norm_eps);
    EXPECT_EQ(m->output.data, m->tok_embd.data) << "shared classifier must stay tied";
    const auto lg = convert_logits(*m);
    err[type] = mean_abs_diff(base, lg);
    if (type == "f32") {
      ASSERT_EQ(lg.size(), base.size());
      EXPECT_EQ(std::memcmp(lg.data(), base.data(), lg.size() * sizeof(float)), 0) << "f32 logits are not bit-identical";
    }
    // info --json: every block matrix has the requested type, except rows that do not fit its
    // blocks (stories260K's n_ff = 172 is not a multiple of 32), which fall back to f16.
    auto info = run_cli("info " + out + " --json");
    ASSERT_EQ(info.code, 0) << info.err;
    const auto j = nlohmann::json::parse(info.out);
    const int64_t E = ref->hp.n_embd, F = ref->hp.n_ff, KV = ref->hp.n_head_kv * ref->hp.head_dim;
    const int block = traits(type_from_name(type)).block;
    std::map<std::string, int64_t> want;
    const std::pair<int64_t, int64_t> mats[] = {{E, E}, {E, KV}, {E, KV}, {E, E}, {E, F}, {E, F}, {F, E}};  // {cols, rows}
    for (const auto& [cols, rows] : mats) want[cols % block == 0 ? type : "f16"] += cols * rows * ref->hp.n_layer;
    EXPECT_EQ(j.at("block_weight_types").get<decltype(want)>(), want) << info.out;
    EXPECT_EQ(j.at("n_params").get<int64_t>(), ref->n_params());
  }
  for (const auto& [t, e] : err) RecordProperty("mean_abs_logit_diff_" + t, std::to_string(e));
  EXPECT_EQ(err["f32"], 0.0);
  EXPECT_LT(err["f32"], err["f16"]);
  EXPECT_LT(err["f16"], err["bf16"]);  // 10 vs 7 mantissa bits
  EXPECT_LT(err["f16"], err["q8_0"]);
  EXPECT_LT(err["bf16"], err["q4_0"]);
  EXPECT_LT(err["bf16"], err["q8_0"]);  // measured ~0.006 < ~0.06 < ~0.25 < ~1.7
  EXPECT_LT(err["q8_0"], err["q4_0"]);
  double mean_abs = 0;
  for (float x : base) mean_abs += std::fabs(x);
  EXPECT_LT(err["q4_0"], mean_abs / double(base.size())) << "q4_0 logits should still track the model's";
}

TEST(Convert, SmolLM2ToQ8_0KeepsTheGreedyContinuation) {
  const std::string src = model_path(kSmol);
  SLIMLM_REQUIRE_FILE(src);
  const std::string out = temp_path("smol.q8_0.gguf");
  auto r = run_cli("convert " + src + " -o " + out + " --type q8_0 -t 1");
  ASSERT_EQ(r.code, 0) << r.err;
  auto m = load_model(out);
  ASSERT_NE(m->tok, nullptr) << "tokenizer metadata must be kept";
  EXPECT_EQ(m->hp.n_vocab, 49152);
  EXPECT_EQ(m->blocks[0].wq.type, DType::Q8_0);
  m.reset();
  // -t 1: on a busy machine OpenMP's spinning workers make a 2-thread run ~20x slower.
  const std::string gen = " --temp 0 --print-ids -n 8 -p 'The capital of France is' -t 1";
  auto a = run_cli("generate " + src + gen), b = run_cli("generate " + out + gen);
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  auto ia = parse_ids(a.out, "original"), ib = parse_ids(b.out, "q8_0");
  ASSERT_GE(ia.size(), 5u);
  ASSERT_GE(ib.size(), 5u);
  EXPECT_EQ(std::vector<int32_t>(ia.begin(), ia.begin() + 5), std::vector<int32_t>(ib.begin(), ib.begin() + 5))
      << "original: " << a.out << "q8_0: " << b.out;
  fs::remove(out);
}

TEST(Convert, FailureLeavesNothingBehind) {
  SLIMLM_REQUIRE_FILE(stories());
  const std::string out = temp_path("refused.gguf");
  fs::remove(out);
  for (const char* type : {"q2_K", "q4_K", "q9_9"}) {
    auto r = run_cli("convert " + stories() + " -o " + out + " --type " + type);
    EXPECT_NE(r.code, 0) << type;
    EXPECT_TRUE(r.err.starts_with("slimlm: error:")) << r.err;
    EXPECT_EQ(one_line(r.err), "");
    EXPECT_TRUE(leftovers(out).empty()) << type;
  }
  const std::string dir = temp_path("no-such-dir");
  fs::remove_all(dir);
  auto r = run_cli("convert " + stories() + " -o " + dir + "/x.gguf --type f32");
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(one_line(r.err), "");
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(leftovers(dir).empty()) << "stray file next to the missing directory";
  // An unreadable input: no output either.
  const std::string bad = temp_path("garbage.bin");
  { std::ofstream(bad) << "definitely not a model"; }
  r = run_cli("convert " + bad + " -o " + out + " --type f16");
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(one_line(r.err), "");
  EXPECT_TRUE(leftovers(out).empty());
  // An output path that is a directory: refused, the directory untouched and no temporary.
  const std::string outdir = temp_path("out-is-dir.gguf");
  fs::create_directories(outdir);
  r = run_cli("convert " + stories() + " -o " + outdir + " --type f32");
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(one_line(r.err), "");
  EXPECT_TRUE(fs::is_directory(outdir));
  EXPECT_EQ(leftovers(outdir), std::vector<std::string>{outdir});
}
