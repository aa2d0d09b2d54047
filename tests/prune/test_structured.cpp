// Structured pruning on stories260K (5 layers, 8 query / 4 KV heads of dim 8, FFN 172):
// removing units whose weights are zero keeps the output; pruned models have the expected
// per-layer shapes and parameter counts, survive a GGUF round trip (per-layer arrays), and
// prefill equals decode; FLAP's bias compensation lowers the error; bad input is an Error.
#include "core/error.h"
#include "io/gguf.h"
#include "model/forward.h"
#include "model/model.h"
#include "prune/structured.h"
#include "test_util.h"
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

using namespace slimlm;
using namespace slimlm::test;
namespace fs = std::filesystem;

namespace {

std::vector<int32_t> some_ids(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  ids[0] = 1;
  for (int64_t i = 1; i < n; ++i) ids[size_t(i)] = int32_t(rng() % 500) + 2;
  return ids;
}

std::vector<float> logits_all(const Model& m, const std::vector<int32_t>& ids) {
  Session s(m, int64_t(ids.size()));
  std::vector<float> out;
  s.forward(ids.data(), int64_t(ids.size()), 0, out);
  return out;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) d = std::max(d, double(std::fabs(a[i] - b[i])));
  return d;
}

// Replaces t by an owned f32 copy with the given rows or columns set to zero.
void zero(Tensor& t, const std::vector<int64_t>& idx, bool cols) {
  std::vector<float> f = t.to_f32();
  for (int64_t r = 0; r < t.rows(); ++r)
    for (int64_t j : idx) {
      if (cols) f[size_t(r * t.cols() + j)] = 0.f;
      else if (r == j) std::fill(f.begin() + r * t.cols(), f.begin() + (r + 1) * t.cols(), 0.f);
    }
  t = Tensor::from_f32(t.name, t.ne, f.data());
}

// stories260K with layer 0's KV group 1 (query heads 2, 3) and layer 3's neurons {3, 50, 171}
// writing zeros, and block 2 an identity (zero o and down).
std::unique_ptr<Model> zeroed_stories() {
  auto m = load_model(stories());
  const int64_t D = m->hp.head_dim;
  std::vector<int64_t> cols;
  for (int64_t i = 2 * D; i < 4 * D; ++i) cols.push_back(i);
  zero(m->blocks[0].wo, cols, true);
  zero(m->blocks[3].w_down, {3, 50, 171}, true);
  std::vector<int64_t> all_o(size_t(m->blocks[2].wo.cols())), all_d(size_t(m->blocks[2].w_down.cols()));
  std::iota(all_o.begin(), all_o.end(), 0);
  std::iota(all_d.begin(), all_d.end(), 0);
  zero(m->blocks[2].wo, all_o, true);
  zero(m->blocks[2].w_down, all_d, true);
  return m;
}

std::vector<prune::LayerKeep> plan_zeroed(const Model& m) {
  auto keep = prune::keep_all(m);
  keep[0].q_heads = {0, 1, 4, 5, 6, 7};
  keep[0].kv_heads = {0, 2, 3};
  keep[3].neurons = prune::complement({3, 50, 171}, m.hp.n_ff);
  return keep;
}

}  // namespace

TEST(StructuredPrune, RemovingZeroUnitsKeepsTheOutput) {
  SLIMLM_REQUIRE_FILE(stories());
  auto m = zeroed_stories();
  const auto ids = some_ids(48, 7);
  const std::vector<float> ref = logits_all(*m, ids);
  const int64_t p0 = m->n_params(), l0 = prune::block_linear_params(*m);
  prune::apply_keep(*m, plan_zeroed(*m));
  // Removed: one KV group (2 query heads: q rows + o columns, 1 KV head: k, v rows) and 3 neurons.
  const int64_t E = m->hp.n_embd, D = m->hp.head_dim;
  const int64_t removed = 2 * 2 * D * E + 2 * D * E + 3 * 3 * E;
  EXPECT_EQ(m->n_params(), p0 - removed);
  EXPECT_EQ(prune::block_linear_params(*m), l0 - removed);
  EXPECT_FALSE(m->hp.uniform());
  EXPECT_EQ(m->hp.n_head_at(0), 6);
  EXPECT_EQ(m->hp.n_head_kv_at(0), 3);
  EXPECT_EQ(m->hp.n_head_at(1), 8);
  EXPECT_EQ(m->hp.n_ff_at(3), 169);
  EXPECT_EQ(m->blocks[0].wq.ne, (std::vector<int64_t>{E, 6 * D}));
  EXPECT_EQ(m->blocks[0].wk.ne, (std::vector<int64_t>{E, 3 * D}));
  EXPECT_EQ(m->blocks[0].wo.ne, (std::vector<int64_t>{6 * D, E}));
  EXPECT_EQ(m->blocks[3].w_down.ne, (std::vector<int64_t>{169, E}));
  // Same sums without the zero terms: equal up to float summation order.
  EXPECT_LT(max_abs_diff(logits_all(*m, ids), ref), 1e-4);
  prune::drop_blocks(*m, {2});
  EXPECT_EQ(m->hp.n_layer, 4);
  EXPECT_EQ(m->hp.n_ff_at(2), 169);  // old layer 3
  EXPECT_LT(max_abs_diff(logits_all(*m, ids), ref), 1e-4);
  // A non-zero unit does change the output (the comparison above can fail).
  auto keep = prune::keep_all(*m);
  keep[1].neurons.erase(keep[1].neurons.begin());
  prune::apply_keep(*m, keep);
  EXPECT_GT(max_abs_diff(logits_all(*m, ids), ref), 1e-4);
}

TEST(StructuredPrune, PerLayerShapesSurviveGgufAndPrefillEqualsDecode) {
  SLIMLM_REQUIRE_FILE(stories());
  auto m = zeroed_stories();
  prune::apply_keep(*m, plan_zeroed(*m));
  // Layer 1 down to one KV group, then its query heads are the units: keep one of its two.
  auto keep = prune::keep_all(*m);
  keep[1].q_heads = {4, 5};
  keep[1].kv_heads = {2};
  prune::apply_keep(*m, keep);
  ASSERT_EQ(prune::head_units(m->hp, 1).size(), 2u);
  EXPECT_LT(prune::head_units(m->hp, 1)[0].kv, 0);
  keep = prune::keep_all(*m);
  prune::keep_heads_except(m->hp, 1, {0}, keep[1]);
  prune::apply_keep(*m, keep);
  EXPECT_EQ(m->hp.n_head_at(1), 1);
  EXPECT_EQ(m->hp.n_head_kv_at(1), 1);
  prune::drop_blocks(*m, {4});

  const std::string out = temp_path("stories-structured.gguf");
  save_gguf(*m, out, DType::F32);
  {
    auto f = gguf::File::open(out);
    const gguf::Value* v = f->find("llama.attention.head_count");
    ASSERT_NE(v, nullptr);
    ASSERT_EQ(v->type, gguf::VType::ARRAY);
    ASSERT_EQ(v->arr.size(), 4u);
    EXPECT_EQ(v->arr[0].as_int(), 6);
    EXPECT_EQ(v->arr[1].as_int(), 1);
    EXPECT_EQ(f->find("llama.feed_forward_length")->arr[3].as_int(), 169);
    EXPECT_EQ(f->get_int("llama.block_count"), 4);
  }
  auto r = load_model(out);
  ASSERT_EQ(r->hp.n_layer, 4);
  for (int64_t l = 0; l < 4; ++l) {
    EXPECT_EQ(r->hp.n_head_at(l), m->hp.n_head_at(l));
    EXPECT_EQ(r->hp.n_head_kv_at(l), m->hp.n_head_kv_at(l));
    EXPECT_EQ(r->hp.n_ff_at(l), m->hp.n_ff_at(l));
  }
  EXPECT_EQ(r->n_params(), m->n_params());
  const auto ids = some_ids(24, 3);
  const std::vector<float> a = logits_all(*m, ids), b = logits_all(*r, ids);
  EXPECT_EQ(max_abs_diff(a, b), 0.0);  // f32 round trip: the same weights
  // Decode one token at a time through the per-layer KV cache: the same logits as prefill.
  Session s(*r, 24);
  std::vector<float> step, dec;
  for (int32_t id : ids) {
    s.forward(&id, 1, 0, step);
    dec.insert(dec.end(), step.begin(), step.end());
  }
  EXPECT_LT(max_abs_diff(dec, b), 1e-4);
  fs::remove(out);
}

// Sliding-window flags follow the kept blocks and survive the file (slimlm metadata), and the
// windows change the output (so a lost flag would show).
TEST(StructuredPrune, SlidingWindowFlagsFollowKeptBlocks) {
  SLIMLM_REQUIRE_FILE(stories());
  auto m = load_model(stories());
  const auto ids = some_ids(40, 11);
  const std::vector<float> full = logits_all(*m, ids);
  m->hp.sliding_window = 4;
  m->hp.swa_layer = {1, 0, 1, 1, 0};
  EXPECT_GT(max_abs_diff(logits_all(*m, ids), full), 1e-3);
  prune::drop_blocks(*m, {1});
  EXPECT_EQ(m->hp.swa_layer, (std::vector<uint8_t>{1, 1, 1, 0}));
  const std::string out = temp_path("stories-swa.gguf");
  save_gguf(*m, out, DType::F32);
  auto r = load_model(out);
  EXPECT_EQ(r->hp.swa_layer, m->hp.swa_layer);
  EXPECT_EQ(r->hp.sliding_window, 4);
  EXPECT_EQ(max_abs_diff(logits_all(*m, ids), logits_all(*r, ids)), 0.0);
  fs::remove(out);
}

TEST(StructuredPrune, FlapBiasCompensationLowersTheError) {
  // y = W x on a tiny layer whose inputs have non-zero channel means.
  const int64_t rows = 8, cols = 16, n = 400;
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> w(static_cast<size_t>(rows * cols)), mu(static_cast<size_t>(cols)), x(static_cast<size_t>(n * cols));
  for (auto& v : w) v = g(rng);
  for (auto& v : mu) v = 2.f * g(rng);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t j = 0; j < cols; ++j) x[size_t(t * cols + j)] = mu[size_t(j)] + (j == 5 ? 0.f : 0.3f * g(rng));
  quant::SiteStats st;
  st.k = cols;
  st.sum.assign(size_t(cols), 0.0);
  st.sum_sq.assign(size_t(cols), 0.0);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t j = 0; j < cols; ++j) { st.sum[size_t(j)] += x[size_t(t * cols + j)]; st.sum_sq[size_t(j)] += double(x[size_t(t * cols + j)]) * x[size_t(t * cols + j)]; }
  st.count = n;
  EXPECT_NEAR(st.variance(5), 0.0, 1e-6);
  auto err = [&](const std::vector<int64_t>& removed, bool comp) {
    const std::vector<float> b = comp ? prune::bias_compensation(w.data(), rows, cols, removed, st) : std::vector<float>(size_t(rows), 0.f);
    double e = 0;
    for (int64_t t = 0; t < n; ++t)
      for (int64_t i = 0; i < rows; ++i) {
        double full = 0, kept = b[size_t(i)];
        for (int64_t j = 0; j < cols; ++j) {
          const double p = double(w[size_t(i * cols + j)]) * x[size_t(t * cols + j)];
          full += p;
          if (!std::binary_search(removed.begin(), removed.end(), j)) kept += p;
        }
        e += (full - kept) * (full - kept);
      }
    return e;
  };
  const std::vector<int64_t> removed = {2, 9, 11};
  EXPECT_LT(err(removed, true), 0.5 * err(removed, false));
  // A constant channel is replaced exactly by its bias.
  EXPECT_LT(err({5}, true), 1e-6 * err({5}, false));
}

TEST(StructuredPrune, FlapAndBlockMethodsOnStories260K) {
  SLIMLM_REQUIRE_FILE(stories());
  auto m = load_model(stories());
  std::vector<std::vector<int32_t>> calib;
  for (uint32_t s = 0; s < 4; ++s) calib.push_back(some_ids(64, 100 + s));
  const prune::CalibStats st = prune::calibrate(*m, calib, 2);
  EXPECT_EQ(st.tokens, 256);
  ASSERT_EQ(st.cos1.size(), 5u);
  ASSERT_EQ(st.ang_span.size(), 4u);
  for (double c : st.cos1) { EXPECT_GT(c, -1.0); EXPECT_LT(c, 1.0); }
  // The statistics are the layer-wise pipeline's: every per-channel field filled (absmax and
  // sum_abs too) and equal to what run_layerwise collects from the same sequences.
  std::vector<quant::BlockStats> piped;
  quant::run_layerwise(*m, calib, quant::Wants{}, [&](Model&, int64_t, quant::BlockStats& b) { piped.push_back(b); }, false);
  ASSERT_EQ(piped.size(), st.attn_out.size());
  ASSERT_EQ(piped.size(), st.ffn_down.size());
  for (size_t l = 0; l < piped.size(); ++l) {
    const quant::SiteStats* ours[] = {&st.attn_out[l], &st.ffn_down[l]};
    const quant::SiteStats* theirs[] = {&piped[l][size_t(LinearSite::AttnOut)], &piped[l][size_t(LinearSite::FfnDown)]};
    for (int i = 0; i < 2; ++i) {
      const quant::SiteStats& s = *ours[i];
      EXPECT_EQ(s.count, 256);
      ASSERT_EQ(s.absmax.size(), size_t(s.k));
      ASSERT_EQ(s.sum_abs.size(), size_t(s.k));
      EXPECT_GT(*std::max_element(s.absmax.begin(), s.absmax.end()), 0.f) << "layer " << l;
      EXPECT_GT(std::accumulate(s.sum_abs.begin(), s.sum_abs.end(), 0.0), 0.0) << "layer " << l;
      EXPECT_EQ(s.sum, theirs[i]->sum);
      EXPECT_EQ(s.sum_sq, theirs[i]->sum_sq);
      EXPECT_EQ(s.sum_abs, theirs[i]->sum_abs);
      EXPECT_EQ(s.absmax, theirs[i]->absmax);
    }
  }
  const int64_t before = prune::block_linear_params(*m);
  const int64_t target = before * 3 / 10;
  auto keep = prune::keep_all(*m);
  prune::plan_flap(*m, st, target, true, keep);
  bool any_bias = false;
  for (const auto& k : keep) {
    EXPECT_FALSE(k.q_heads.empty());
    EXPECT_FALSE(k.neurons.empty());
    any_bias |= !k.bo.empty() || !k.b_down.empty();
  }
  EXPECT_TRUE(any_bias);
  prune::apply_keep(*m, keep);
  const int64_t after = prune::block_linear_params(*m);
  EXPECT_LE(after, before - target);
  EXPECT_GT(after, before - target - 2 * prune::head_unit_params(m->hp, prune::HeadUnit{{0, 1}, 0}));
  const std::string out = temp_path("stories-flap.gguf");
  save_gguf(*m, out, DType::F32);
  auto r = load_model(out);
  const auto ids = some_ids(16, 9);
  EXPECT_EQ(max_abs_diff(logits_all(*m, ids), logits_all(*r, ids)), 0.0);
  fs::remove(out);

  auto m2 = load_model(stories());
  const auto bi = prune::pick_blocks_influence(st, 2);
  ASSERT_EQ(bi.size(), 2u);
  const auto span = prune::pick_blocks_span(st, 2);
  ASSERT_EQ(span.size(), 2u);
  EXPECT_EQ(span[1], span[0] + 1);
  prune::drop_blocks(*m2, bi);
  EXPECT_EQ(m2->hp.n_layer, 3);
  EXPECT_EQ(int64_t(m2->blocks.size()), 3);
}

TEST(StructuredPrune, BadInputIsAnError) {
  SLIMLM_REQUIRE_FILE(stories());
  auto m = load_model(stories());
  auto keep = prune::keep_all(*m);
  keep[1].neurons.clear();
  EXPECT_THROW(prune::apply_keep(*m, keep), Error);
  keep = prune::keep_all(*m);
  keep[2].q_heads.clear();
  EXPECT_THROW(prune::apply_keep(*m, keep), Error);
  keep = prune::keep_all(*m);
  keep[0].q_heads = {0, 1, 2};  // three query heads over four KV heads
  EXPECT_THROW(prune::apply_keep(*m, keep), Error);
  keep = prune::keep_all(*m);
  keep[0].q_heads = {0, 1, 6, 7};
  keep[0].kv_heads = {0, 1};  // heads 6, 7 belong to KV group 3
  EXPECT_THROW(prune::apply_keep(*m, keep), Error);
  EXPECT_THROW(prune::drop_blocks(*m, {0, 1, 2, 3, 4}), Error);
  EXPECT_THROW(prune::drop_blocks(*m, {7}), Error);
  // Heads alone cannot remove 40% of the block linears (attention is 27% of them here).
  auto hs = prune::head_scores(*m, nullptr, prune::Score::Magnitude);
  keep = prune::keep_all(*m);
  EXPECT_THROW(prune::plan_uniform_heads(*m, hs, prune::block_linear_params(*m) * 4 / 10, keep), Error);
  EXPECT_THROW(prune::head_scores(*m, nullptr, prune::Score::Fluctuation), Error);

  const std::string out = temp_path("bad.gguf");
  for (const std::string args : {"--method flap --sparsity 1.0", "--method flap --sparsity 1.5", "--method nope --sparsity 0.2",
                                 "--method heads --score magnitude --sparsity 0.6"}) {
    SCOPED_TRACE(args);
    const CmdResult r = run_cli("prune " + stories() + " -o " + out + " " + args);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(out));
  }
}

TEST(StructuredPrune, CliPrunesStories260KEndToEnd) {
  SLIMLM_REQUIRE_FILE(stories());
  const std::string ids = temp_path("stories-prune-ids.txt");
  {
    std::string s;
    for (uint32_t k = 0; k < 4; ++k)
      for (int32_t id : some_ids(64, 200 + k)) s += std::to_string(id) + " ";
    std::FILE* f = std::fopen(ids.c_str(), "w");
    std::fputs(s.c_str(), f);
    std::fclose(f);
  }
  for (const std::string method : {"heads", "neurons", "flap", "block-influence", "layers"}) {
    SCOPED_TRACE(method);
    const std::string out = temp_path("stories-" + method + ".gguf");
    const CmdResult r = run_cli("prune " + stories() + " -o " + out + " --method " + method +
                                " --sparsity 0.2 --calib-ids " + ids + " --calib-samples 4 --calib-len 64 --type f32 --json");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("\"achieved\""), std::string::npos);
    const CmdResult e = run_cli("eval " + out + " --ids " + ids + " --ctx 64 --json --no-progress");
    EXPECT_EQ(e.code, 0) << e.err;
    fs::remove(out);
  }
}
