// Every matmul dispatch path (AVX2+FMA, baseline) and weight type against the float64 scalar
// reference, on ragged sizes, on the exact path (the integer path: test_qdot.cpp); thread-count
// determinism.
#include "kernels/kernels.h"
#include "kernels/qdot.h"
#include "model/model.h"
#include "quant/random_rows.h"
#include <gtest/gtest.h>
#include <cmath>
#include <omp.h>
#include <random>

using namespace slimlm;
using slimlm::test::random_x;

namespace {
Tensor random_weight(DType t, int64_t cols, int64_t rows, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, 0.5f);
  std::vector<float> w(size_t(cols * rows));
  for (auto& v : w) v = d(rng);
  return Tensor::from_f32("w", {cols, rows}, w.data(), t);
}

struct Case { DType type; int64_t cols, rows, ntok; };
}  // namespace

class MatmulVsRef : public ::testing::TestWithParam<bool> {};

TEST_P(MatmulVsRef, AllTypesRaggedSizes) {
  const char* path = kernels::use_simd(GetParam());
  SCOPED_TRACE(path);
  const kernels::ExactScope exact(true);  // dequantized weights, f32 activations
  const DType types[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1};
  const int64_t shapes[][3] = {{32, 1, 1}, {64, 7, 3}, {96, 13, 5}, {256, 9, 1}, {160, 33, 4}, {288, 17, 11},
                              // from kGemmMinTok tokens on: the GEMM, ragged panels, several k-slices
                              {64, 16, 16}, {288, 37, 23}, {1056, 21, 17}};
  for (DType t : types) {
    for (const auto& s : shapes) {
      const int64_t cols = s[0], rows = s[1], ntok = s[2];
      Tensor w = random_weight(t, cols, rows, uint32_t(cols * 31 + rows));
      // ldx > cols and ldy > rows exercise the strides
      const int64_t ldx = cols + 3, ldy = rows + 2;
      auto x = random_x(ldx * ntok, 7);
      std::vector<float> y(size_t(ldy * ntok), -1.f);
      std::vector<double> yr(size_t(ldy * ntok), 0.0);
      kernels::matmul(w, x.data(), ldx, ntok, y.data(), ldy);
      kernels::ref::matmul(w, x.data(), ldx, ntok, yr.data(), ldy);
      for (int64_t tk = 0; tk < ntok; ++tk)
        for (int64_t r = 0; r < rows; ++r) {
          const double ref = yr[size_t(tk * ldy + r)];
          ASSERT_NEAR(y[size_t(tk * ldy + r)], ref, 1e-5 * (1 + std::fabs(ref)) * std::sqrt(double(cols)))
              << traits(t).name << " " << cols << "x" << rows << " tok " << tk << " row " << r;
        }
      for (int64_t tk = 0; tk < ntok; ++tk)  // padding untouched
        for (int64_t r = rows; r < ldy; ++r) ASSERT_EQ(y[size_t(tk * ldy + r)], -1.f);
    }
  }
  kernels::use_simd(true);
}

INSTANTIATE_TEST_SUITE_P(Paths, MatmulVsRef, ::testing::Values(true, false));

TEST(Matmul, DeterministicAcrossThreadCounts) {
  Tensor w = random_weight(DType::Q4_0, 256, 100, 3);
  auto x = random_x(256 * 9, 5);
  std::vector<float> a(900), b(900);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  kernels::matmul(w, x.data(), 256, 9, a.data(), 100);
  omp_set_num_threads(2);
  kernels::matmul(w, x.data(), 256, 9, b.data(), 100);
  omp_set_num_threads(saved);
  EXPECT_EQ(a, b);
}

TEST(Ops, RmsNormSoftmaxRope) {
  std::vector<float> x = {1, -2, 3, 0.5f}, w = {1, 1, 2, 1}, y(4);
  kernels::rmsnorm(x.data(), w.data(), 4, 0.f, y.data());
  const double rms = std::sqrt((1 + 4 + 9 + 0.25) / 4.0);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(y[size_t(i)], x[size_t(i)] / rms * w[size_t(i)], 1e-6);
  std::vector<float> s = {1000, 1001, 999};
  kernels::softmax(s.data(), 3);
  EXPECT_NEAR(s[0] + s[1] + s[2], 1.0, 1e-6);
  EXPECT_GT(s[1], s[0]);
  // RoPE at position 0 is the identity; rotations preserve the norm of each pair.
  std::vector<float> v = {1, 2, 3, 4, 5, 6, 7, 8}, v0 = v;
  kernels::rope(v.data(), 8, 0, 10000, 1, RopeType::Norm);
  EXPECT_EQ(v, v0);
  kernels::rope(v.data(), 8, 5, 10000, 1, RopeType::Neox);
  for (int i = 0; i < 4; ++i)
    EXPECT_NEAR(v[size_t(i)] * v[size_t(i)] + v[size_t(i + 4)] * v[size_t(i + 4)],
                v0[size_t(i)] * v0[size_t(i)] + v0[size_t(i + 4)] * v0[size_t(i + 4)], 1e-4);
}

// The prompt-batch kernel: every (token, head) against the float64 reference over its causal
// (and sliding-window) range; ragged token tiles, a cache already holding p0 positions, GQA.
TEST(Attention, BatchKernelMatchesFloat64Reference) {
  struct Case { int64_t D, n_head, n_kv, n_tok, p0, window; };
  for (const Case c : {Case{16, 3, 3, 1, 0, 0}, Case{64, 9, 3, 40, 0, 0}, Case{64, 9, 3, 23, 21, 0},
                       Case{32, 4, 1, 37, 5, 10}, Case{16, 2, 2, 50, 0, 17}, Case{256, 4, 1, 17, 3, 0}}) {
    SCOPED_TRACE("D " + std::to_string(c.D) + " heads " + std::to_string(c.n_head) + "/" + std::to_string(c.n_kv) +
                 " tokens " + std::to_string(c.n_tok) + " p0 " + std::to_string(c.p0) + " window " +
                 std::to_string(c.window));
    const int64_t P = c.p0 + c.n_tok, hs = c.D + 8, row = c.n_kv * hs, ldq = c.n_head * c.D + 4;
    auto q = random_x(c.n_tok * ldq, uint32_t(c.D + c.n_tok));
    auto kc = random_x(P * row, uint32_t(P)), vc = random_x(P * row, uint32_t(P + 1));
    std::vector<float> out(size_t(c.n_tok * ldq), -7.f);
    ASSERT_TRUE(kernels::attend_batch(q.data(), ldq, c.n_tok, c.p0, c.n_head, c.n_kv, c.D, kc.data(), vc.data(), row,
                                      hs, 0.3f, c.window, out.data()));
    std::vector<double> ref(size_t(c.D));
    for (int64_t t = 0; t < c.n_tok; ++t)
      for (int64_t h = 0; h < c.n_head; ++h) {
        const int64_t p = c.p0 + t, lo = c.window > 0 ? std::max<int64_t>(0, p - c.window + 1) : 0;
        const int64_t kvh = h / (c.n_head / c.n_kv);
        kernels::ref::attend(q.data() + t * ldq + h * c.D, 1, c.D, kc.data() + lo * row + kvh * hs,
                             vc.data() + lo * row + kvh * hs, row, p - lo + 1, 0.3f, ref.data());
        for (int64_t i = 0; i < c.D; ++i)
          ASSERT_NEAR(out[size_t(t * ldq + h * c.D + i)], ref[size_t(i)], 2e-5 * (1 + std::fabs(ref[size_t(i)])))
              << "token " << t << " head " << h << " i " << i;
      }
    for (int64_t t = 0; t < c.n_tok; ++t)  // the padding between rows is not written
      for (int64_t i = c.n_head * c.D; i < ldq; ++i) ASSERT_EQ(out[size_t(t * ldq + i)], -7.f);
  }
  kernels::use_simd(false);
  std::vector<float> x(64, 1.f), y(64);
  EXPECT_FALSE(kernels::attend_batch(x.data(), 16, 1, 0, 1, 1, 16, x.data(), x.data(), 16, 16, 1.f, 0, y.data()));
  kernels::use_simd(true);
}

// attend over an f32 cache and attend_f16 over an f16 one (against the reference on the f16 values).
TEST(Attention, GroupKernelMatchesFloat64Reference) {
  for (bool simd : {true, false})
    for (bool half : {false, true}) {
    SCOPED_TRACE(std::string(kernels::use_simd(simd)) + (half ? " f16 cache" : " f32 cache"));
    // head sizes: AVX2 multiples of 16 and of 8 only, and one the scalar path takes
    for (int64_t D : {8, 64, 72, 20})
      for (int g_n : {1, 3})
        for (int64_t m : {1, 7, 50}) {
          const int64_t stride = 2 * D + 4;
          auto q = random_x(g_n * D, uint32_t(D + g_n));
          auto kv = random_x(m * stride + D, uint32_t(m));
          std::vector<float> s(size_t(g_n * m)), out(size_t(g_n * D));
          std::vector<double> ref(size_t(g_n * D));
          if (half) {
            std::vector<uint16_t> kh(kv.size());
            for (size_t i = 0; i < kv.size(); ++i) { kh[i] = f32_to_f16(kv[i]); kv[i] = f16_to_f32(kh[i]); }
            kernels::attend_f16(q.data(), g_n, D, kh.data(), kh.data() + D, stride, m, 0.3f, s.data(), out.data());
          } else {
            kernels::attend(q.data(), g_n, D, kv.data(), kv.data() + D, stride, m, 0.3f, s.data(), out.data());
          }
          kernels::ref::attend(q.data(), g_n, D, kv.data(), kv.data() + D, stride, m, 0.3f, ref.data());
          for (size_t i = 0; i < out.size(); ++i)
            ASSERT_NEAR(out[i], ref[i], 2e-5 * (1 + std::fabs(ref[i]))) << "D " << D << " g " << g_n << " m " << m << " i " << i;
        }
  }
  kernels::use_simd(true);
}
