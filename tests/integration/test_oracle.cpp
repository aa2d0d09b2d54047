// SmolLM2-135M and Gemma 3 270M against llama.cpp (the oracle, built outside CI; its numbers
// are committed in tests/data/oracle with the commands that made them): perplexity on the
// same scored WikiText-2 positions, top-1 agreement with its argmax, logit differences on its
// top-10 tokens. Bounds: ppl within the 0.5% (1% Gemma); agreement >= 99% on f32
// weights, on quantized files what was measured minus a small margin (see below).
#include "core/text.h"
#include "eval/eval.h"
#include "model/model.h"
#include "test_util.h"
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

using namespace slimlm;
using namespace slimlm::test;

namespace {
struct OracleRecord {
  uint32_t chunk, pos, target, argmax;
  float target_logprob, logsumexp;
  std::vector<std::pair<uint32_t, float>> top;
};

std::vector<OracleRecord> read_oracle(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<OracleRecord> out;
  if (!in) return out;
  uint32_t h[4];
  in.read(reinterpret_cast<char*>(h), sizeof h);
  if (std::memcmp(&h[0], "SLOR", 4) != 0 || h[1] != 1) throw std::runtime_error(path + ": bad oracle header");
  for (uint32_t i = 0; i < h[2]; ++i) {
    OracleRecord r;
    uint32_t a[3];
    in.read(reinterpret_cast<char*>(a), 12);
    r.chunk = a[0]; r.pos = a[1]; r.target = a[2];
    in.read(reinterpret_cast<char*>(&r.target_logprob), 4);
    in.read(reinterpret_cast<char*>(&r.argmax), 4);
    in.read(reinterpret_cast<char*>(&r.logsumexp), 4);
    for (uint32_t k = 0; k < h[3]; ++k) {
      std::pair<uint32_t, float> p;
      in.read(reinterpret_cast<char*>(&p.first), 4);
      in.read(reinterpret_cast<char*>(&p.second), 4);
      r.top.push_back(p);
    }
    if (!in) throw std::runtime_error(path + ": truncated oracle file");
    out.push_back(std::move(r));
  }
  return out;
}

// Names are files in tests/data/oracle and models/, or absolute paths (the ORACLE_* variables).
std::string oracle_file(const std::string& f) { return f[0] == '/' ? f : source_dir() + "/tests/data/oracle/" + f; }
std::string model_file(const std::string& f) { return f[0] == '/' ? f : model_path(f); }

// One llama.cpp run of the same file: its records, the agreement it must reach, and optionally
// the same run of llama.cpp built for another CPU (AVX without AVX2/FMA: the same program, other
// kernels, so other f32 summation orders): slimlm must agree with the run within a point of how
// well llama.cpp agrees with itself across the two builds.
struct OracleRun { const char* file; double min_agree; const char* peer = nullptr; };
struct Param { const char* model; std::vector<OracleRun> runs; double ppl_tol; bool make_f32; };

// Sums over the scored positions of one oracle run.
struct Tally {
  std::vector<OracleRecord> recs, peer;
  size_t idx = 0, agree = 0, n = 0;
  double nll = 0, oracle_nll = 0, max_diff = 0, sum_diff = 0;
  int64_t max_diff_pos = -1;
};

// slimlm's logits are computed once per model and compared with every llama.cpp run of it.
void check_against_oracle(const Param& p) {
  SLIMLM_REQUIRE_FILE(model_file(p.model));
  SLIMLM_REQUIRE_FILE(shared_data("wikitext-2-raw/wiki.test.raw"));
  std::vector<Tally> t(p.runs.size());
  for (size_t i = 0; i < p.runs.size(); ++i) {
    const std::string path = oracle_file(p.runs[i].file);
    t[i].recs = read_oracle(path);
    ASSERT_FALSE(t[i].recs.empty()) << "missing oracle data " << path;
    if (p.runs[i].peer != nullptr) {
      const std::string pp = oracle_file(p.runs[i].peer);
      t[i].peer = read_oracle(pp);
      ASSERT_EQ(t[i].peer.size(), t[i].recs.size()) << "missing or short oracle data " << pp;
    }
  }
  if (p.make_f32) {  // the f32 copy of the model is made by slimlm convert (exact: Q4_1 -> f32)
    const std::string f32 = temp_path("oracle-f32.gguf");
    auto r = run_cli(std::string("convert ") + model_file(p.model) + " -o " + f32 + " --type f32");
    ASSERT_EQ(r.code, 0) << r.err;
  }
  auto m = load_model(p.make_f32 ? temp_path("oracle-f32.gguf") : model_file(p.model));
  auto tokens = m->tok->encode(read_text_file(shared_data("wikitext-2-raw/wiki.test.raw")), true, false);
  eval::PplOptions o;
  o.ctx = 512;
#ifdef SLIMLM_SANITIZE
  o.max_chunks = 1;  // the sanitizer build checks the plumbing; the Release build checks all 8
#else
  o.max_chunks = int64_t(t[0].recs.back().chunk) + 1;
#endif
  o.progress = false;
  const int64_t V = m->hp.n_vocab;
  o.on_scored = [&](int64_t chunk, int64_t pos, const float* lg) {
    const int32_t target = tokens[size_t(chunk * 512 + pos + 1)];
    const double lse = eval::logsumexp(lg, V);
    const uint32_t argmax = uint32_t(std::max_element(lg, lg + V) - lg);
    for (Tally& a : t) {
      ASSERT_LT(a.idx, a.recs.size());
      const OracleRecord& r = a.recs[a.idx++];
      ASSERT_EQ(int64_t(r.chunk), chunk);
      ASSERT_EQ(int64_t(r.pos), pos);
      ASSERT_EQ(int32_t(r.target), target) << "token ids differ from llama.cpp's at " << chunk * 512 + pos + 1;
      a.nll += lse - lg[target];
      a.oracle_nll += -double(r.target_logprob);
      a.agree += argmax == r.argmax;
      for (const auto& [id, logit] : r.top) {
        const double d = std::fabs(double(lg[id]) - double(logit));
        a.sum_diff += d;
        if (d > a.max_diff) { a.max_diff = d; a.max_diff_pos = chunk * 512 + pos; }
      }
      ++a.n;
    }
  };
  auto res = eval::perplexity(*m, tokens, o);
  m.reset();
  if (p.make_f32) std::filesystem::remove(temp_path("oracle-f32.gguf"));
  for (size_t i = 0; i < t.size(); ++i) {
    const Tally& a = t[i];
    ASSERT_EQ(a.n, size_t(res.n_scored));
    const double ppl = std::exp(a.nll / double(a.n)), oppl = std::exp(a.oracle_nll / double(a.n));
    const double agreement = double(a.agree) / double(a.n);
    std::printf("[ oracle ] %s%s vs %s: %zu positions, ppl %.4f vs llama.cpp %.4f (%+.3f%%), top-1 agreement %.2f%%, "
                "top-10 logit |diff| mean %.4f max %.4f at token %lld\n",
                p.model, p.make_f32 ? " (as f32)" : "", p.runs[i].file, a.n, ppl, oppl, 100 * (ppl / oppl - 1),
                100 * agreement, a.sum_diff / double(a.n * a.recs[0].top.size()), a.max_diff, (long long)a.max_diff_pos);
#ifdef SLIMLM_SANITIZE
    // One window (255 positions) of a quantized model moves by ~1-2% with last-bit changes in
    // the activations (the -O1 sanitizer build: Gemma 3 +2.0% here vs +0.8% in Release; the
    // exact path agrees to 1e-5 between the two builds); the Release build checks 8 windows.
    EXPECT_NEAR(ppl / oppl, 1.0, 3 * p.ppl_tol) << p.runs[i].file;
#else
    EXPECT_NEAR(ppl / oppl, 1.0, p.ppl_tol) << p.runs[i].file;
#endif
#ifdef SLIMLM_SANITIZE
    EXPECT_GE(agreement, p.runs[i].min_agree - 0.05) << p.runs[i].file;  // one window (255 positions): coarser
#else
    EXPECT_GE(agreement, p.runs[i].min_agree) << p.runs[i].file;
    if (!a.peer.empty()) {  // llama.cpp (AVX build) vs llama.cpp (AVX2 build) on the same positions
      size_t same = 0;
      for (size_t j = 0; j < a.recs.size(); ++j) {
        ASSERT_EQ(a.peer[j].pos, a.recs[j].pos);
        same += a.peer[j].argmax == a.recs[j].argmax;
      }
      const double self = double(same) / double(a.recs.size());
      std::printf("[ oracle ] llama.cpp AVX build vs AVX2 build (%s): top-1 agreement %.2f%%\n", p.runs[i].peer,
                  100 * self);
      EXPECT_GE(agreement, self - 0.01) << p.runs[i].file;
    }
#endif
  }
}
}  // namespace

// The bar: on the f32 weights (llama.cpp's f32 path has no activation quantization,
// f32 KV cache) agreement >= 99% (measured 99.95%). The sanitizer pass skips it: the same
// plumbing as the quantized runs below, ~3 minutes of f32 matmuls under ASan.
TEST(Oracle, SmolLM2F32AgainstLlamaCpp) {
#ifdef SLIMLM_SANITIZE
  GTEST_SKIP() << "Release build only";
#endif
  check_against_oracle({kSmol, {{"smollm2-f32.logits_top10.kvf32.bin", 0.99}}, 0.005, true});
}
// Quantized files, default path (8-bit activations and integer dots as llama.cpp), against
// llama.cpp's defaults (flash attention, f16 K/V) and its f32-K/V run without flash attention
// (the attention numerics closest to slimlm's f32 KV cache). Measured (8 windows, 2,040
// positions): SmolLM2 Q4_1 ppl -0.003% / -0.04%, agreement 96.91% / 96.72% (exact path:
// -0.37%, 96.72%); Gemma 3 Q4_K_M ppl +0.42% / +0.17%, 95.54% / 95.98% (exact path: +0.01%,
// 96.27%). The 99% bar is not reached: the quantized models amplify last-bit differences (an
// activation that lands on the other side of a rounding boundary), and llama.cpp's own two
// runs agree with each other only 96.2% (SmolLM2) / 95.3% (Gemma 3) — so matching the dots
// alone cannot get there (docs/design.md). How noisy the figure is: four variants of slimlm that
// differ only in f32 summation order (attention dot with one or two 8-lane accumulators, prompt
// matmuls on the integer kernel or the GEMM) gave SmolLM2 agreement 95.7-97.1% and ppl -0.41% to
// +0.18% (session 5); the floors below sit under that band, so they catch real errors only.
// Session 6 (q4_1 prompt batches on the GEMM with the min-term correction): SmolLM2 ppl -0.12% /
// -0.15%, agreement 96.18% / 95.88%. Session 7: llama.cpp built for AVX (no AVX2/FMA) agrees with
// its AVX2 build on these positions only 96.37% / 95.93% (SmolLM2), 95.69% / ...% (Gemma 3), with
// ppl -0.34% / +0.03% / +0.41%: the bar slimlm is held to is that self-agreement, minus a point.
TEST(Oracle, SmolLM2Q41AgainstLlamaCpp) {
  check_against_oracle({kSmol,
                        {{"smollm2.logits_top10.bin", 0.955, "smollm2.logits_top10.avx.bin"},
                         {"smollm2.logits_top10.kvf32.bin", 0.955, "smollm2.logits_top10.kvf32.avx.bin"}},
                        0.005, false});
}
TEST(Oracle, Gemma3AgainstLlamaCpp) {
  check_against_oracle({kGemma,
                        {{"gemma3.logits_top10.bin", 0.95, "gemma3.logits_top10.avx.bin"},
                         {"gemma3.logits_top10.kvf32.bin", 0.95, "gemma3.logits_top10.kvf32.avx.bin"}},
                        0.01, false});
}

// Any GGUF against llama.cpp records made outside the tests (bench/oracle_exported.sh: the files
// slimlm's quantizer exports): ORACLE_MODEL, ORACLE_BIN (llama.cpp, AVX2 build), ORACLE_PEER (the
// AVX build), absolute paths. Skipped unless set. Same bars as above (ppl 0.5%, agreement within a
// point of llama.cpp's self-agreement); no floor of its own.
TEST(Oracle, ExportedFileAgainstLlamaCpp) {
  const char* model = std::getenv("ORACLE_MODEL");
  const char* bin = std::getenv("ORACLE_BIN");
  const char* peer = std::getenv("ORACLE_PEER");
  if (model == nullptr || bin == nullptr) GTEST_SKIP() << "ORACLE_MODEL / ORACLE_BIN not set";
  check_against_oracle({model, {{bin, 0.0, peer}}, 0.005, false});
}
