// `slimlm quantize` with llama.cpp K-quant file types. K-quants need rows that are whole
// super-blocks of 256; like llama-quantize, weights whose rows do not fit fall back (q4_K -> q5_0,
// q6_K -> q8_0, ...; f16 when not even 32 fits), so stories260K (dim 64, hidden 172) still
// quantizes. The K codecs themselves run on a tiny random llama2.c model with 256-wide rows.
#include "test_util.h"
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

using namespace slimlm::test;
namespace fs = std::filesystem;

namespace {
// llama2.c checkpoint (docs/formats.md): header, then f32 arrays; norms 1, the rest N(0, 0.05²).
std::string write_tiny_llama2c(int dim, int hidden, int layers, int heads, int kv_heads, int vocab, int seq) {
  const std::string path = temp_path("tiny256.bin");
  std::ofstream f(path, std::ios::binary);
  const int32_t hdr[7] = {dim, hidden, layers, heads, kv_heads, vocab, seq};
  f.write(reinterpret_cast<const char*>(hdr), sizeof hdr);
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 0.05f);
  auto put = [&](int64_t n, bool ones) {
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = ones ? 1.0f : nd(rng);
    f.write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * 4));
  };
  const int64_t kv = int64_t(dim) / heads * kv_heads, L = layers;
  put(int64_t(vocab) * dim, false);
  put(L * dim, true);
  put(L * dim * dim, false);
  put(L * dim * kv, false);
  put(L * dim * kv, false);
  put(L * dim * dim, false);
  put(L * dim, true);
  put(L * hidden * dim, false);
  put(L * dim * hidden, false);
  put(L * hidden * dim, false);
  put(dim, true);
  put(int64_t(seq) * (dim / heads / 2) * 2, true);
  return path;
}

std::string write_ids(const std::string& name, int lines, int len, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s;
  for (int l = 0; l < lines; ++l) {
    for (int i = 0; i < len; ++i) s += std::to_string(rng() % uint32_t(vocab)) + " ";
    s += "\n";
  }
  const std::string path = temp_path(name);
  std::ofstream(path) << s;
  return path;
}
}  // namespace

TEST(QuantizeK, MixtureWritesKTypesThatDequantizeAndRun) {
  const std::string src = write_tiny_llama2c(256, 512, 2, 4, 2, 64, 64);
  const std::string calib = write_ids("tiny-calib.txt", 8, 64, 64, 1), held = write_ids("tiny-held.txt", 2, 64, 64, 2);
  std::map<std::string, double> kld;
  for (const std::string method : {"rtn", "gptq", "awq", "awq+gptq"}) {
    SCOPED_TRACE(method);
    const std::string out = temp_path("tiny-" + method + ".gguf");
    const CmdResult q = run_cli("quantize " + src + " -o " + out + " --method " + method + " --format gguf --type q4_K --calib-ids " +
                                calib + " --calib-samples 8 --calib-len 64 --no-progress --json");
    ASSERT_EQ(q.code, 0) << q.err;
    const auto j = nlohmann::json::parse(q.out);
    EXPECT_EQ(j["type"], "q4_K_M");  // llama-quantize's alias
    // 2 layers: layer 1 is in the last eighth, so its attn_v and ffn_down are q6_K; the tied
    // embedding (the output) is q6_K; everything else q4_K.
    const int64_t d = 256, kv = 128, h = 512;
    EXPECT_EQ(j["types"]["q6_K"].get<int64_t>(), d * kv + h * d + 64 * d);
    EXPECT_EQ(j["types"]["q4_K"].get<int64_t>(), 2 * (2 * d * d + d * kv + 2 * h * d) + d * kv + h * d);
    const CmdResult e = run_cli("eval " + out + " --ids " + held + " --ref " + src + " --ctx 64 --json --no-progress");
    ASSERT_EQ(e.code, 0) << e.err;
    kld[method] = nlohmann::json::parse(e.out)["kld_mean"].get<double>();
    EXPECT_GT(kld[method], 0.0);
    EXPECT_LT(kld[method], 0.05);
    fs::remove(out);
  }
  EXPECT_LT(kld["gptq"], kld["rtn"]);
}

TEST(QuantizeK, RowsThatFitNoSuperBlockFallBackAsLlamaCppDoes) {
  const std::string src = stories();
  SLIMLM_REQUIRE_FILE(src);
  const std::string calib = write_ids("stories-k-calib.txt", 4, 64, 512, 3);
  const std::string out = temp_path("stories-q4_K_M.gguf");
  const CmdResult q = run_cli("quantize " + src + " -o " + out + " --method gptq --type q4_K_M --calib-ids " + calib +
                              " --calib-samples 4 --calib-len 64 --no-progress --json");
  ASSERT_EQ(q.code, 0) << q.err;
  const auto j = nlohmann::json::parse(q.out);
  // dim 64: q4_K -> q5_0 (attn_v / ffn_down's q6_K -> q8_0); hidden 172 fits no block: f16.
  EXPECT_FALSE(j["types"].contains("q4_K"));
  EXPECT_TRUE(j["types"].contains("q5_0"));
  EXPECT_TRUE(j["types"].contains("f16"));
  EXPECT_TRUE(j["types"].contains("q8_0"));  // the tied embedding: q6_K does not fit 64 -> q8_0
  const CmdResult info = run_cli("info " + out);
  EXPECT_EQ(info.code, 0) << info.err;
  fs::remove(out);
  // --pure without a llama.cpp file type is one line of error and no file
  const CmdResult bad = run_cli("quantize " + src + " -o " + out + " --method rtn --type u4g32 --pure");
  EXPECT_NE(bad.code, 0);
  EXPECT_TRUE(bad.err.starts_with("slimlm: error:")) << bad.err;
  EXPECT_EQ(bad.err.find('\n'), bad.err.size() - 1) << bad.err;
  EXPECT_FALSE(fs::exists(out));
}
