// K-quant codecs (q2_K..q6_K): the encoder's bytes dequantize (src/core/dtype_blocks.cpp, tested
// bit-exact against gguf-py) to exactly the codec's values; the fit is never worse than a naive
// min-max fit written here independently; GPTQ still beats RTN with a K codec; llama.cpp's
// file-type mixtures pick the per-tensor types llama-quantize picked for SmolLM2.
#include "core/error.h"
#include "quant/methods.h"
#include "quant/mixture.h"
#include "random_rows.h"
#include <gtest/gtest.h>
#include <cmath>
#include <random>

using namespace slimlm;

namespace {
const char* kKTypes[] = {"q2_K", "q3_K", "q4_K", "q5_K", "q6_K"};

// Rows that stress the fit: gaussian, heavy-tailed, zeros, constants, a huge outlier, tiny values,
// one-signed, and a row whose sub-blocks have very different ranges.
std::vector<std::vector<float>> test_rows(int64_t n, uint32_t seed) {
  std::vector<std::vector<float>> rows;
  rows.push_back(test::gaussian(size_t(n), seed, 0.02f));
  auto heavy = test::gaussian(size_t(n), seed + 1, 0.02f);
  for (size_t i = 0; i < heavy.size(); i += 37) heavy[i] *= 8;
  rows.push_back(heavy);
  rows.push_back(std::vector<float>(size_t(n), 0.0f));
  rows.push_back(std::vector<float>(size_t(n), 0.37f));
  rows.push_back(std::vector<float>(size_t(n), -1.5f));
  auto outlier = test::gaussian(size_t(n), seed + 2, 0.01f);
  outlier[3] = 1000.0f;
  outlier[size_t(n) - 7] = -250.0f;
  rows.push_back(outlier);
  rows.push_back(test::gaussian(size_t(n), seed + 3, 1e-6f));
  auto pos = test::gaussian(size_t(n), seed + 4, 0.05f);
  for (auto& v : pos) v = std::fabs(v);
  rows.push_back(pos);
  auto ranges = test::gaussian(size_t(n), seed + 5, 1.0f);
  for (size_t i = 0; i < ranges.size(); ++i) ranges[i] *= std::pow(10.0f, float(int(i / 16) % 5 - 3));
  rows.push_back(ranges);
  return rows;
}

struct KRef { int group, qmax, qoff; bool has_min; int sc_lo, sc_hi, m_hi; };
KRef ref_spec(const std::string& t) {  // from ggml's block layouts (docs/formats.md)
  if (t == "q2_K") return {16, 3, 0, true, 0, 15, 15};
  if (t == "q3_K") return {16, 7, 4, false, -32, 31, 0};
  if (t == "q4_K") return {32, 15, 0, true, 0, 63, 63};
  if (t == "q5_K") return {32, 31, 0, true, 0, 63, 63};
  return {16, 63, 32, false, -128, 127, 0};
}
float f16(float x) { return f16_to_f32(f32_to_f16(x)); }

// Squared error of a naive K fit of one 256 super-block: per group min-max (mins types: [min(x,0),
// max x] onto 0..qmax; signed types: the largest magnitude onto the −qoff end), super-scales
// = the extreme sub-scale over the integer range end, rounded to f16; integers and codes nearest.
double naive_sse(const std::string& type, const float* x) {
  const KRef k = ref_spec(type);
  const int ng = 256 / k.group;
  std::vector<double> s(static_cast<size_t>(ng)), mn(static_cast<size_t>(ng));
  for (int j = 0; j < ng; ++j) {
    const float* g = x + j * k.group;
    if (k.has_min) {
      float lo = 0, hi = g[0];
      for (int i = 0; i < k.group; ++i) { lo = std::min(lo, g[i]); hi = std::max(hi, g[i]); }
      s[size_t(j)] = hi > lo ? (hi - lo) / float(k.qmax) : 0.f;
      mn[size_t(j)] = -lo;
    } else {
      float m = 0;
      for (int i = 0; i < k.group; ++i) if (std::fabs(g[i]) > std::fabs(m)) m = g[i];
      s[size_t(j)] = m / -float(k.qoff);
    }
  }
  double es = 0, em = 0;
  for (int j = 0; j < ng; ++j) {
    if (std::fabs(s[size_t(j)]) > std::fabs(es)) es = s[size_t(j)];
    em = std::max(em, mn[size_t(j)]);
  }
  const float d = f16(float(es / (k.has_min ? k.sc_hi : k.sc_lo))), dmin = f16(float(em / std::max(1, k.m_hi)));
  double e = 0;
  for (int j = 0; j < ng; ++j) {
    const int sc = d == 0 ? 0 : int(std::clamp<long>(std::lround(s[size_t(j)] / d), k.sc_lo, k.sc_hi));
    const int m = dmin == 0 ? 0 : int(std::clamp<long>(std::lround(mn[size_t(j)] / dmin), 0, k.m_hi));
    const double scale = double(d) * sc, zero = double(dmin) * m;
    for (int i = 0; i < k.group; ++i) {
      const double xv = x[j * k.group + i];
      double best = INFINITY;
      for (int c = 0; c <= k.qmax; ++c) best = std::min(best, std::pow(xv - (scale * (c - k.qoff) - zero), 2));
      e += best;
    }
  }
  return e;
}

double sse(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0;
  for (size_t i = 0; i < a.size(); ++i) e += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return e;
}
}  // namespace

TEST(KQuant, EncodedRowsDequantizeToTheCodecsValues) {
  for (const char* name : kKTypes) {
    auto c = quant::make_codec(name);
    EXPECT_EQ(c->name(), name);
    EXPECT_EQ(c->fit_span(), 256);
    const int64_t n = 512;
    std::vector<quant::RowQuant> rows;
    for (const auto& w : test_rows(n, 21)) rows.push_back(quant::rtn_row(*c, w.data(), n));
    const std::vector<uint8_t> bytes = quant::encode_matrix(*c, rows, n);
    ASSERT_EQ(bytes.size(), rows.size() * row_bytes(c->type(), n));
    std::vector<float> back(static_cast<size_t>(n));
    for (size_t r = 0; r < rows.size(); ++r) {
      row_to_f32(c->type(), bytes.data() + r * row_bytes(c->type(), n), back.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_EQ(back[size_t(i)], rows[r].deq[size_t(i)]) << name << " row " << r << " i " << i;
        EXPECT_EQ(rows[r].deq[size_t(i)], c->value(rows[r].codes[size_t(i)], rows[r].fits[size_t(i / c->group())]));
        if (back[size_t(i)] != rows[r].deq[size_t(i)]) break;
      }
    }
  }
}

TEST(KQuant, ExactCasesAndBadShapes) {
  for (const char* name : kKTypes) {
    auto c = quant::make_codec(name);
    std::vector<float> zeros(256, 0.0f);
    const auto q = quant::rtn_row(*c, zeros.data(), 256);
    for (float v : q.deq) EXPECT_EQ(v, 0.0f) << name;
    std::vector<float> odd(576, 0.1f);  // 576 = 2.25 super-blocks
    EXPECT_THROW(quant::rtn_row(*c, odd.data(), 576), Error) << name;
  }
  // Constant rows: within the f16 precision of the super-scales (subnormal for small rows: d ≈ c/2000).
  for (const char* name : kKTypes)
    for (float v0 : {-0.5f, 0.37f, 3e-3f}) {
      auto c = quant::make_codec(name);
      std::vector<float> w(256, v0);
      const auto q = quant::rtn_row(*c, w.data(), 256);
      for (float v : q.deq) EXPECT_NEAR(v, v0, 5e-3f * std::fabs(v0)) << name << " " << v0;
    }
}

TEST(KQuant, FitIsNeverWorseThanNaiveMinMax) {
  for (const char* name : kKTypes) {
    auto c = quant::make_codec(name);
    double ours_total = 0, naive_total = 0;
    for (uint32_t seed = 1; seed <= 6; ++seed)
      for (const auto& w : test_rows(256, seed * 7)) {
        const auto q = quant::rtn_row(*c, w.data(), 256);
        const double ours = sse(w, q.deq), naive = naive_sse(name, w.data());
        EXPECT_LE(ours, naive * (1 + 1e-9) + 1e-30) << name << " seed " << seed;
        ours_total += ours; naive_total += naive;
      }
    // The searched fit should gain clearly over min-max on these rows overall.
    EXPECT_LT(ours_total, 0.9 * naive_total) << name;
    std::printf("  %s: SSE searched / naive = %.3f\n", name, ours_total / naive_total);
  }
}

TEST(KQuant, GptqBeatsRtnWithAKCodec) {
  const int64_t rows = 16, k = 512, n = 600;
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  // correlated inputs with uneven channel scales: x = A z
  std::vector<float> A(size_t(k * 4)), xs(size_t(n * k));
  for (auto& v : A) v = nd(rng);
  quant::SiteStats st;
  st.k = k;
  st.xtx.assign(size_t(k * k), 0.0);
  for (int64_t t = 0; t < n; ++t) {
    float z[4];
    for (auto& v : z) v = nd(rng);
    for (int64_t i = 0; i < k; ++i) {
      float x = nd(rng) * 0.3f * (1.0f + float(i % 7));
      for (int r = 0; r < 4; ++r) x += A[size_t(i * 4 + r)] * z[r];
      xs[size_t(t * k + i)] = x;
    }
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j) st.xtx[size_t(i * k + j)] += double(xs[size_t(t * k + i)]) * xs[size_t(t * k + j)];
  }
  st.count = n;
  const std::vector<float> w = test::gaussian(size_t(rows * k), 9, 0.02f);
  auto out_err = [&](const std::vector<float>& q) { return test::output_error(w, q, xs, rows, k); };
  for (const char* name : kKTypes) {
    auto c = quant::make_codec(name);
    const double e_rtn = out_err(quant::rtn(w.data(), rows, k, *c).deq());
    const quant::QMatrix g = quant::gptq(w.data(), rows, k, st, *c, {});
    const double e_gptq = out_err(g.deq());
    quant::GptqOptions act;
    act.act_order = true;
    const double e_act = out_err(quant::gptq(w.data(), rows, k, st, *c, act).deq());
    EXPECT_LT(e_gptq, 0.8 * e_rtn) << name;
    EXPECT_LT(e_act, e_rtn) << name << " (act-order)";
    // GPTQ's codes still encode to bytes that dequantize to its values
    const std::vector<uint8_t> bytes = quant::encode_matrix(*c, g.r, k);
    std::vector<float> back(static_cast<size_t>(k));
    row_to_f32(c->type(), bytes.data() + 3 * row_bytes(c->type(), k), back.data(), k);
    EXPECT_EQ(back, g.r[3].deq) << name;
  }
}

// Expected types: llama-quantize (llama.cpp b-0.3.36 vendored in llama-cpp-python) on SmolLM2-135M
// f32 — 30 layers, n_gqa 3, tied embedding, rows of 576 (ffn_down: 1536).
TEST(Mixture, MatchesLlamaQuantizeOnSmolLM2Shapes) {
  const quant::MixModel mm{30, 3, true};
  using R = quant::TensorRole;
  auto count = [&](const char* ftype, R role, int64_t cols, DType t) {
    int c = 0;
    for (int64_t l = 0; l < 30; ++l) c += *quant::mixture_type(*quant::find_mixture(ftype), role, l, cols, mm) == t;
    return c;
  };
  EXPECT_EQ(count("q4_K_M", R::AttnV, 576, DType::Q8_0), 14);
  EXPECT_EQ(count("q4_K_M", R::AttnV, 576, DType::Q5_0), 16);
  EXPECT_EQ(count("q4_K_M", R::FfnDown, 1536, DType::Q6_K), 14);
  EXPECT_EQ(count("q4_K_M", R::FfnDown, 1536, DType::Q4_K), 16);
  for (R r : {R::AttnQ, R::AttnK, R::AttnOut, R::FfnGate, R::FfnUp}) EXPECT_EQ(count("q4_K_M", r, 576, DType::Q5_0), 30);
  for (const char* f : {"q3_K_S", "q2_K"}) {
    for (R r : {R::AttnQ, R::AttnK, R::AttnV, R::AttnOut, R::FfnGate, R::FfnUp}) EXPECT_EQ(count(f, r, 576, DType::Q4_0), 30) << f;
    EXPECT_EQ(count(f, R::FfnDown, 1536, DType::Q3_K), 30) << f;
  }
  for (const char* f : {"q4_0", "q4_K_M", "q3_K_S", "q2_K"})
    EXPECT_EQ(*quant::mixture_type(*quant::find_mixture(f), R::TokenEmbd, 0, 576, mm), DType::Q8_0) << f;
  EXPECT_EQ(count("q4_0", R::FfnDown, 1536, DType::Q4_0), 30);
}

// Rules read from llama.cpp's llama_tensor_get_type_impl for a 256-aligned 32-layer model.
TEST(Mixture, RulesOnAlignedShapesAndFallbacks) {
  using R = quant::TensorRole;
  const quant::MixModel gqa8{32, 8, false}, mha{32, 1, false};
  auto type = [](const char* f, R r, int64_t l, const quant::MixModel& mm) {
    return *quant::mixture_type(*quant::find_mixture(f), r, l, 4096, mm);
  };
  EXPECT_EQ(type("q4_K_M", R::Output, 0, mha), DType::Q6_K);
  EXPECT_EQ(type("q4_K_M", R::TokenEmbd, 0, mha), DType::Q4_K);  // untied embedding: the base type
  EXPECT_EQ(type("q4_K_M", R::AttnV, 0, mha), DType::Q6_K);      // first eighth
  EXPECT_EQ(type("q4_K_M", R::AttnV, 4, mha), DType::Q4_K);
  EXPECT_EQ(type("q4_K_M", R::AttnV, 6, mha), DType::Q6_K);      // (6 − 4) % 3 == 2
  EXPECT_EQ(type("q4_K_M", R::FfnDown, 31, mha), DType::Q6_K);   // last eighth
  EXPECT_EQ(type("q2_K", R::AttnV, 3, gqa8), DType::Q4_K);
  EXPECT_EQ(type("q2_K", R::AttnV, 3, mha), DType::Q3_K);
  EXPECT_EQ(type("q2_K", R::AttnOut, 3, mha), DType::Q3_K);
  EXPECT_EQ(type("q2_K", R::AttnQ, 3, mha), DType::Q2_K);
  EXPECT_EQ(type("q3_K_M", R::AttnV, 1, mha), DType::Q5_K);
  EXPECT_EQ(type("q3_K_M", R::FfnDown, 1, mha), DType::Q5_K);
  EXPECT_EQ(type("q3_K_M", R::FfnDown, 2, mha), DType::Q4_K);
  EXPECT_EQ(type("q8_0", R::Output, 0, mha), DType::Q8_0);
  EXPECT_EQ(quant::find_mixture("Q4_K")->name, "q4_K_M");  // llama-quantize's alias
  EXPECT_FALSE(quant::find_mixture("u4g128"));
  EXPECT_TRUE(quant::is_k_mixture_name("q3_K_S"));
  EXPECT_FALSE(quant::is_k_mixture_name("q4_0"));
  EXPECT_EQ(quant::fit_row(DType::Q3_K, 576), DType::Q4_0);
  EXPECT_EQ(quant::fit_row(DType::Q4_K, 576), DType::Q5_0);
  EXPECT_EQ(quant::fit_row(DType::Q5_K, 576), DType::Q5_1);
  EXPECT_EQ(quant::fit_row(DType::Q6_K, 576), DType::Q8_0);
  EXPECT_EQ(quant::fit_row(DType::Q4_K, 172), DType::F16);
  EXPECT_EQ(quant::fit_row(DType::Q4_K, 512), DType::Q4_K);
}
