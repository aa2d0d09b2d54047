// W8A8 kernels (src/kernels/w8a8.h) and the w8a8 storage type: per-token int8 quantization
// against its definition, the AVX2 GEMM against the scalar reference bit for bit on ragged
// sizes and extreme codes, the reference against a float64 sum of the dequantized values, and
// matmul's W8A8 path: thread counts and SIMD on/off give the same bits, the result stays within
// the activation-rounding bound of the exact (dequantized f32) path.
#include "core/dtype_custom.h"
#include "kernels/kernels.h"
#include "kernels/qdot.h"
#include "kernels/w8a8.h"
#include "quant/codec.h"
#include "quant/methods.h"
#include "../quant/random_rows.h"
#include <gtest/gtest.h>
#include <cmath>
#include <cstring>
#include <omp.h>
#include <random>

using namespace slimlm;
using namespace slimlm::kernels;
using slimlm::test::random_x;

namespace {

// rows of a w8a8 matrix: random scales and codes in [-127, 127]; `extreme`: all codes ±127.
std::vector<uint8_t> random_w8a8(int64_t rows, int64_t k, uint32_t seed, bool extreme = false) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> code(-127, 127);
  std::uniform_real_distribution<float> sc(1e-4f, 2e-2f);
  std::vector<uint8_t> w(size_t(rows) * size_t(4 + k));
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* p = w.data() + size_t(r) * size_t(4 + k);
    const float s = sc(rng);
    std::memcpy(p, &s, 4);
    for (int64_t c = 0; c < k; ++c) p[4 + c] = uint8_t(int8_t(extreme ? (rng() & 1 ? 127 : -127) : code(rng)));
  }
  return w;
}
std::vector<int8_t> random_codes(int64_t n, uint32_t seed, bool extreme = false) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> code(-127, 127);
  std::vector<int8_t> q(static_cast<size_t>(n));
  for (auto& v : q) v = int8_t(extreme ? 127 : code(rng));
  return q;
}
Tensor w8a8_tensor(std::vector<uint8_t>& bytes, int64_t k, int64_t rows) {
  Tensor t;
  t.name = "w";
  t.type = w8a8_type();
  t.ne = {k, rows};
  t.data = bytes.data();
  t.nbytes = bytes.size();
  return t;
}
}  // namespace

TEST(W8A8, TypeIdLayoutAndDequantization) {
  const DType t = w8a8_type();
  EXPECT_TRUE(is_custom(t));
  EXPECT_TRUE(is_w8a8(t));
  EXPECT_TRUE(valid_custom_id(uint32_t(t)));
  EXPECT_EQ(type_name(t), "w8a8");
  EXPECT_EQ(custom_layout(t).kind, CustomKind::RowInt8);
  EXPECT_EQ(row_bytes(t, 577), 4u + 577u);
  EXPECT_FALSE(is_w8a8(custom_type(CustomLayout{CustomKind::Uniform, 8, true, 32})));
  EXPECT_FALSE(valid_custom_id(uint32_t(t) | 32));                  // a group size
  EXPECT_FALSE(valid_custom_id((uint32_t(t) & ~(15u << 23)) | 4u << 23));  // 4 bits
  EXPECT_FALSE(valid_custom_id(uint32_t(t) | 1u << 27));            // sym flag
  auto w = random_w8a8(2, 37, 5);
  std::vector<float> f(37);
  row_to_f32(t, w.data() + 41, f.data(), 37);
  float s;
  std::memcpy(&s, w.data() + 41, 4);
  for (int c = 0; c < 37; ++c) EXPECT_EQ(f[size_t(c)], s * float(int8_t(w[size_t(41 + 4 + c)])));
}

TEST(W8A8, CodecRoundsPerChannelAndStoresWhatItReports) {
  const auto c = quant::w8a8_codec();
  EXPECT_EQ(c->name(), "w8a8");
  EXPECT_EQ(quant::make_codec("w8a8")->type(), c->type());
  const int64_t rows = 5, k = 45;
  auto w = random_x(rows * k, 3, 0.05f);
  w[7] = 0.9f;  // one large weight in row 0 sets its scale alone
  const quant::QMatrix q = quant::rtn(w.data(), rows, k, *c);
  Tensor like = quant::f32_view(w.data(), rows, k);
  like.name = "w";
  const Tensor t = quant::to_tensor(q, *c, like);
  EXPECT_EQ(t.nbytes, size_t(rows * (4 + k)));
  const std::vector<float> deq = t.to_f32(), qd = q.deq();
  for (int64_t r = 0; r < rows; ++r) {
    float amax = 0;
    for (int64_t j = 0; j < k; ++j) amax = std::max(amax, std::fabs(w[size_t(r * k + j)]));
    const float step = amax / 127.f;
    for (int64_t j = 0; j < k; ++j) {
      const size_t i = size_t(r * k + j);
      EXPECT_EQ(deq[i], qd[i]);
      EXPECT_LE(std::fabs(deq[i] - w[i]), 0.5f * step * 1.0001f) << r << "," << j;
    }
  }
}

TEST(W8A8, QuantizeRowI8MatchesDefinition) {
  for (uint32_t seed = 0; seed < 6; ++seed) {
    const int64_t n = 37 + seed * 50;
    auto x = random_x(n, seed, seed % 2 ? 1.f : 30.f);
    if (seed == 2) x[3] = -1000.f;  // negative maximum
    std::vector<int8_t> q(static_cast<size_t>(n));
    const float d = ref::quantize_row_i8(x.data(), q.data(), n);
    float amax = 0;
    for (float v : x) amax = std::max(amax, std::fabs(v));
    EXPECT_EQ(d, amax / 127.f);
    int top = 0;
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_EQ(q[size_t(i)], int(std::nearbyint(x[size_t(i)] * (127.f / amax)))) << i;
      top = std::max(top, std::abs(int(q[size_t(i)])));
    }
    EXPECT_EQ(top, 127);
  }
  std::vector<float> z(19, 0.f);
  std::vector<int8_t> q(19, 5);
  EXPECT_EQ(ref::quantize_row_i8(z.data(), q.data(), 19), 0.f);
  for (int8_t v : q) EXPECT_EQ(v, 0);
  // ties go to even: amax 127 makes the multiplier 1
  std::vector<float> t = {127.f, 0.5f, 1.5f, 2.5f, -0.5f, -2.5f};
  std::vector<int8_t> qt(6);
  ref::quantize_row_i8(t.data(), qt.data(), 6);
  EXPECT_EQ(qt[1], 0); EXPECT_EQ(qt[2], 2); EXPECT_EQ(qt[3], 2); EXPECT_EQ(qt[4], 0); EXPECT_EQ(qt[5], -2);
}

TEST(W8A8, ReferenceGemmMatchesFloat64Sum) {
  const int64_t rows = 7, k = 300, n_tok = 3, ldy = 9;
  auto w = random_w8a8(rows, k, 1);
  auto qx = random_codes(n_tok * k, 2);
  const float dx[3] = {0.5f, 0.01f, 3.f};
  std::vector<float> y(size_t(ldy * n_tok), -1.f);
  ref::gemm_w8a8(w.data(), rows, k, qx.data(), dx, n_tok, y.data(), ldy);
  std::vector<float> wf(static_cast<size_t>(k));
  for (int64_t r = 0; r < rows; ++r) {
    row_to_f32(w8a8_type(), w.data() + size_t(r * (4 + k)), wf.data(), k);
    for (int64_t t = 0; t < n_tok; ++t) {
      double s = 0;
      for (int64_t c = 0; c < k; ++c) s += double(wf[size_t(c)]) * double(dx[t]) * qx[size_t(t * k + c)];
      EXPECT_NEAR(y[size_t(t * ldy + r)], s, 1e-5 * std::fabs(s) + 1e-9);
    }
  }
  for (int64_t t = 0; t < n_tok; ++t) EXPECT_EQ(y[size_t(t * ldy + rows)], -1.f);  // padding untouched
}

TEST(W8A8, SimdGemmMatchesReferenceBitForBit) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2";
  int cases = 0;
  for (int64_t k : {1, 15, 16, 17, 31, 33, 100, 257, 581})
    for (int64_t rows : {1, 3, 4, 5, 11})
      for (int64_t n_tok : {1, 2, 3, 7})
        for (bool extreme : {false, true}) {
          SCOPED_TRACE(testing::Message() << "k " << k << " rows " << rows << " tokens " << n_tok << " extreme " << extreme);
          auto w = random_w8a8(rows, k, uint32_t(k * 31 + rows), extreme);
          auto qx = random_codes(n_tok * k, uint32_t(k + n_tok), extreme);
          std::vector<float> dx = random_x(n_tok, uint32_t(n_tok));
          const int64_t ldy = rows + 2;
          std::vector<float> a(size_t(ldy * n_tok), -1.f), b = a;
          ref::gemm_w8a8(w.data(), rows, k, qx.data(), dx.data(), n_tok, a.data(), ldy);
          avx2::gemm_w8a8(w.data(), rows, k, qx.data(), dx.data(), n_tok, b.data(), ldy);
          ASSERT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4));
          ++cases;
        }
  EXPECT_EQ(cases, 9 * 5 * 4 * 2);
}

// matmul on w8a8 weights: every path and thread count the same bits; within the bound of
// the activation rounding (Σ_c |w_c| · d_x / 2) of the exact f32 path.
TEST(W8A8, MatmulDeterministicAndWithinActivationRoundingOfExact) {
  const int64_t rows = 67, k = 203, n_tok = 9, ldx = k + 3, ldy = rows + 1;
  auto wb = random_w8a8(rows, k, 9);
  const Tensor w = w8a8_tensor(wb, k, rows);
  auto x = random_x(ldx * n_tok, 4, 2.f);
  x[5] = 40.f;  // an outlier channel in token 0
  auto run = [&](bool simd, int threads) {
    use_simd(simd);
    omp_set_num_threads(threads);
    std::vector<float> y(size_t(ldy * n_tok), -7.f);
    matmul(w, x.data(), ldx, n_tok, y.data(), ldy);
    return y;
  };
  const ExactScope g(false);
  const int saved = omp_get_max_threads();
  const auto base = run(false, 1);
  for (bool simd : {false, true})
    for (int threads : {1, 2, 3}) {
      const auto y = run(simd, threads);
      EXPECT_EQ(0, std::memcmp(y.data(), base.data(), y.size() * 4)) << "simd " << simd << " threads " << threads;
    }
  use_simd(true);
  omp_set_num_threads(saved);
  std::vector<float> ex(size_t(ldy * n_tok));
  {
    const ExactScope e(true);
    matmul(w, x.data(), ldx, n_tok, ex.data(), ldy);
  }
  std::vector<float> wf(static_cast<size_t>(k));
  double worst = 0;
  for (int64_t t = 0; t < n_tok; ++t) {
    float amax = 0;
    for (int64_t c = 0; c < k; ++c) amax = std::max(amax, std::fabs(x[size_t(t * ldx + c)]));
    for (int64_t r = 0; r < rows; ++r) {
      row_to_f32(w.type, w.row(r), wf.data(), k);
      double l1 = 0;
      for (float v : wf) l1 += std::fabs(v);
      const double bound = 0.5 * l1 * amax / 127.0 * 1.001 + 1e-5;
      const double err = std::fabs(base[size_t(t * ldy + r)] - ex[size_t(t * ldy + r)]);
      EXPECT_LE(err, bound) << t << "," << r;
      worst = std::max(worst, err / bound);
    }
    EXPECT_EQ(base[size_t(t * ldy + rows)], -7.f);
  }
  EXPECT_GT(worst, 0.0);  // the activations really were rounded
}
