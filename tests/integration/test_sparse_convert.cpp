// `slimlm convert --sparse` end to end on stories260K: block linears magnitude-pruned here (a
// test utility; the pruning methods live in src/prune) and stored dense f16 must give the same
// logits when stored 2:4 or bitmap (KL divergence ~ 0, top-1 agreement 100%), in a smaller
// file; an unpruned model stays dense; bad --sparse values are one-line errors.
// SparseBench.DISABLED_MagnitudePrune is the same utility for bench/sparse_bench.sh.
#include "model/model.h"
#include "test_util.h"
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

using namespace slimlm;
using namespace slimlm::test;
namespace fs = std::filesystem;

namespace {
// Zeros the smallest-magnitude weights of every block linear: 2 of each group of 4 inputs
// ("2:4"), or the `frac` smallest of each row (unstructured, frac in (0, 1)).
void magnitude_prune(Model& m, const std::string& mode) {
  const bool nm = mode == "2:4";
  const double frac = nm ? 0.5 : std::stod(mode);
  for (Block& b : m.blocks)
    for (Tensor* t : b.linears()) {
      std::vector<float> w = t->to_f32();
      const int64_t cols = t->cols(), span = nm ? 4 : cols;
      for (int64_t r = 0; r < t->rows(); ++r)
        for (int64_t g0 = 0; g0 < cols; g0 += span) {
          float* g = w.data() + r * cols + g0;
          const int64_t len = std::min(span, cols - g0), drop = nm ? std::max<int64_t>(0, len - 2) : int64_t(frac * double(len));
          std::vector<int64_t> order(static_cast<size_t>(len));
          for (int64_t i = 0; i < len; ++i) order[size_t(i)] = i;
          std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t c) { return std::fabs(g[a]) < std::fabs(g[c]); });
          for (int64_t i = 0; i < drop; ++i) g[order[size_t(i)]] = 0.f;
        }
      *t = Tensor::from_f32(t->name, t->ne, w.data(), DType::F32);
    }
}

std::string held_out_ids(const std::string& model) {
  std::string ids;
  for (int s : {100, 101}) {
    const CmdResult g = run_cli("generate " + model + " --prompt-ids 1 -n 255 --temp 1 --seed " + std::to_string(s) + " --print-ids");
    EXPECT_EQ(g.code, 0) << g.err;
    ids += "1 " + g.out + "\n";
  }
  const std::string path = temp_path("sparse-eval-ids.txt");
  std::FILE* f = std::fopen(path.c_str(), "w");
  std::fputs(ids.c_str(), f);
  std::fclose(f);
  return path;
}
}  // namespace

TEST(SparseConvert, SparseStorageKeepsTheLogitsOfTheDenseZeros) {
  const std::string src = stories();
  SLIMLM_REQUIRE_FILE(src);
  const std::string ids = held_out_ids(src);
  const std::vector<std::array<std::string, 3>> cases = {  // pruning, --sparse, stored type
      {"2:4", "2:4", "nm2:4"}, {"2:4", "auto", "nm2:4"}, {"0.7", "bitmap", "bm"}, {"0.7", "auto", "bm"}};
  for (const auto& [prune, sparse, type] : cases) {
    SCOPED_TRACE(prune + " stored as " + sparse);
    auto m = load_model(src);
    magnitude_prune(*m, prune);
    const std::string dense = temp_path("pruned-dense.gguf"), out = temp_path("pruned-sparse.gguf");
    save_gguf(*m, dense, DType::F16);
    const CmdResult c = run_cli("convert " + dense + " -o " + out + " --type f16 --sparse " + sparse);
    ASSERT_EQ(c.code, 0) << c.err;
    EXPECT_NE(c.err.find(" 0 dense"), std::string::npos) << c.err;  // every linear went sparse
    const CmdResult info = run_cli("info " + out + " --json");
    ASSERT_EQ(info.code, 0) << info.err;
    EXPECT_NE(info.out.find("\"" + type), std::string::npos) << info.out.substr(0, 2000);
    EXPECT_LT(fs::file_size(out), fs::file_size(dense));
    const CmdResult e = run_cli("eval " + out + " --ids " + ids + " --ref " + dense + " --ctx 128 --json --no-progress");
    ASSERT_EQ(e.code, 0) << e.err;
    const auto j = nlohmann::json::parse(e.out);
    EXPECT_LT(j["kld_mean"].get<double>(), 1e-6);  // same weights, only the summation order differs
    EXPECT_EQ(j["top1_agree"].get<double>(), 1.0);
    fs::remove(dense);
    fs::remove(out);
  }
}

TEST(SparseConvert, UnprunedStaysDenseAndBadModesAreErrors) {
  const std::string src = stories();
  SLIMLM_REQUIRE_FILE(src);
  const std::string out = temp_path("unpruned.gguf");
  const CmdResult c = run_cli("convert " + src + " -o " + out + " --type f16 --sparse auto");
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_NE(c.err.find("0 N:M, 0 bitmap"), std::string::npos) << c.err;
  fs::remove(out);
  for (const std::string bad : {"3:3", "2:4x", "csr", "0:4", "2:32"}) {
    const CmdResult r = run_cli("convert " + src + " -o " + out + " --sparse " + bad);
    EXPECT_EQ(r.code, 1) << bad;
    EXPECT_TRUE(r.err.starts_with("slimlm: error:")) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
    EXPECT_FALSE(fs::exists(out));
  }
}

// Utility for bench/sparse_bench.sh (run explicitly): SLIMLM_PRUNE_IN -> magnitude-pruned
// SLIMLM_PRUNE_OUT (f16), SLIMLM_PRUNE_MODE "2:4" or a fraction.
TEST(SparseBench, DISABLED_MagnitudePrune) {
  const char *in = std::getenv("SLIMLM_PRUNE_IN"), *out = std::getenv("SLIMLM_PRUNE_OUT"), *mode = std::getenv("SLIMLM_PRUNE_MODE");
  ASSERT_TRUE(in && out) << "set SLIMLM_PRUNE_IN and SLIMLM_PRUNE_OUT";
  auto m = load_model(in);
  magnitude_prune(*m, mode ? mode : "2:4");
  save_gguf(*m, out, DType::F16);
}
