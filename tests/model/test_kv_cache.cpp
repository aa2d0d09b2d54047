// KV-cache quantization: per-record round-trip bounds, and on stories260K (a real model) the
// int8 cache stays close to the f32 one while int4 drifts further — never the other way round.
#include "core/error.h"
#include "eval/eval.h"
#include "model/forward.h"
#include "model/kv_cache.h"
#include "test_util.h"
#include <gtest/gtest.h>
#include <algorithm>
#include <cmath>
#include <random>

using namespace slimlm;
using namespace slimlm::test;

namespace {
std::vector<float> random_head(int64_t d, uint32_t seed, float spread) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.3f, spread);
  std::vector<float> x(static_cast<size_t>(d));
  for (auto& v : x) v = n(rng);
  return x;
}
}  // namespace

TEST(KvCache, RecordsRoundTripWithinHalfAStep) {
  for (int64_t d : {1, 7, 64, 128, 256}) {
    for (uint32_t seed = 0; seed < 5; ++seed) {
      auto x = random_head(d, seed, seed == 4 ? 50.f : 1.f);
      const float lo = *std::min_element(x.begin(), x.end()), hi = *std::max_element(x.begin(), x.end());
      float amax = 0;
      for (float v : x) amax = std::max(amax, std::fabs(v));
      for (KvType t : {KvType::F32, KvType::F16, KvType::Q8, KvType::Q4}) {
        std::vector<uint8_t> rec(kv_record_bytes(t, d));
        std::vector<float> y(static_cast<size_t>(d));
        kv_store(t, x.data(), d, rec.data());
        kv_load(t, rec.data(), d, y.data());
        // the bound on |x - y| each format promises: exact, f16 rounding, half an int8 / int4 step
        const double bound = t == KvType::F32 ? 0.0
                           : t == KvType::F16 ? amax * 0x1p-11
                           : t == KvType::Q8  ? amax / 127.0 * 0.5 * 1.0001
                                              : (hi - lo) / 15.0 * 0.5 * 1.001 + (std::fabs(lo) + std::fabs(hi)) * 0x1p-10;
        for (int64_t i = 0; i < d; ++i)
          ASSERT_LE(std::fabs(double(x[size_t(i)]) - double(y[size_t(i)])), bound + 1e-7)
              << kv_type_name(t) << " d=" << d << " seed=" << seed << " i=" << i;
      }
    }
  }
  // a zero vector comes back exactly in both, a constant one exactly in int4 (it is the minimum)
  for (KvType t : {KvType::Q8, KvType::Q4}) {
    for (float c : {0.0f, -2.5f}) {
      std::vector<float> x(64, c), y(64);
      std::vector<uint8_t> rec(kv_record_bytes(t, 64));
      kv_store(t, x.data(), 64, rec.data());
      kv_load(t, rec.data(), 64, y.data());
      for (float v : y) {
        if (c == 0 || t == KvType::Q4) ASSERT_EQ(v, c) << kv_type_name(t);
        else ASSERT_NEAR(v, c, 1e-6);
      }
    }
  }
  EXPECT_EQ(kv_record_bytes(KvType::Q8, 64), 68u);
  EXPECT_EQ(kv_record_bytes(KvType::Q4, 64), 40u);
  EXPECT_EQ(kv_record_bytes(KvType::Q4, 8), 8u);
  EXPECT_THROW(parse_kv_type("q3"), Error);
}

TEST(KvCache, QuantizedCacheOnStories260K) {
  SLIMLM_REQUIRE_FILE(stories());
  auto m = load_model(stories());
  // the model's own greedy continuation of BOS: text it finds likely, so attention matters
  std::vector<int32_t> ids{1};
  {
    Session s(*m, 256);
    std::vector<float> lg;
    s.forward(ids.data(), 1, 0, lg);
    while (ids.size() < 256) {
      ids.push_back(int32_t(std::max_element(lg.begin(), lg.end()) - lg.begin()));
      s.forward(&ids.back(), 1, 0, lg);
    }
  }
  const int64_t n = int64_t(ids.size()), V = m->hp.n_vocab;
  auto logits = [&](KvType t, size_t* bytes) {
    Session s(*m, n, t);
    std::vector<float> lg;
    s.forward(ids.data(), n, 0, lg);
    *bytes = s.kv_bytes();
    return lg;
  };
  size_t b32, b16, b8, b4;
  auto l32 = logits(KvType::F32, &b32), l16 = logits(KvType::F16, &b16), l8 = logits(KvType::Q8, &b8), l4 = logits(KvType::Q4, &b4);
  auto kld = [&](const std::vector<float>& a) {  // mean KL(f32 || a) over positions
    double sum = 0;
    for (int64_t t = 0; t < n; ++t) {
      const float* p = l32.data() + t * V;
      const float* q = a.data() + t * V;
      const double lp = eval::logsumexp(p, V), lq = eval::logsumexp(q, V);
      for (int64_t i = 0; i < V; ++i) {
        const double pi = std::exp(double(p[i]) - lp);
        sum += pi * ((double(p[i]) - lp) - (double(q[i]) - lq));
      }
    }
    return sum / double(n);
  };
  const double k16 = kld(l16), k8 = kld(l8), k4 = kld(l4);
  std::printf("[ kv ] stories260K, %lld positions: KLD vs f32 cache f16 %.2e, q8 %.2e, q4 %.2e; bytes %zu/%zu/%zu/%zu\n",
              (long long)n, k16, k8, k4, b32, b16, b8, b4);
  // head_dim is 8 here, so one scale per 8 values: coarser than on real-sized heads (64+)
  EXPECT_LT(k16, 1e-4);
  EXPECT_LT(k8, 1e-2);
  EXPECT_LT(k4, 1.0);
  EXPECT_LE(k16, k8);
  EXPECT_LT(k8, k4);
  EXPECT_GT(k4, 0.0);
  const size_t records = size_t(m->hp.n_layer * n * m->hp.n_head_kv) * 2;  // K and V
  const int64_t D = m->hp.head_dim;
  EXPECT_EQ(b32, records * size_t(4 * D));
  EXPECT_EQ(b16, records * size_t(2 * D));
  EXPECT_EQ(b8, records * size_t(D + 4));
  EXPECT_EQ(b4, records * size_t(D / 2 + 4 * ((D + 31) / 32)));
}
