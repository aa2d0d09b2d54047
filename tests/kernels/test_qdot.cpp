// Integer dot products (src/kernels/qdot.h): q8_0/q8_1/q8_K activation quantization against a
// plain reimplementation; every AVX2 dot against its scalar reference on random and real
// model blocks; integer dot against the float dot within the quantization error bound; matmul.
#include "core/dtype.h"
#include "kernels/kernels.h"
#include "kernels/gemm.h"
#include "kernels/qdot.h"
#include "model/model.h"
#include "test_util.h"
#include <gtest/gtest.h>
#include <cmath>
#include <cstring>
#include <omp.h>
#include <random>
#include <stdexcept>
#include <thread>

using namespace slimlm;
using namespace slimlm::kernels;

namespace {
const DType kTypes[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,
                        DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};
bool is_k(DType t) { return traits(t).block == 256; }

// f16 fields of each block (d, and m / dmin where the type has one): byte offsets.
std::vector<int> f16_fields(DType t) {
  switch (t) {
    case DType::Q4_1: case DType::Q5_1: case DType::Q4_K: case DType::Q5_K: return {0, 2};
    case DType::Q2_K: return {80, 82};
    case DType::Q3_K: return {108};
    case DType::Q6_K: return {208};
    default: return {0};
  }
}

// Random bytes with finite, moderate scales: every bit pattern of the codes is a valid block.
std::vector<uint8_t> random_blocks(DType t, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> b(row_bytes(t, n));
  for (auto& v : b) v = uint8_t(rng());
  std::uniform_real_distribution<float> d(-0.05f, 0.05f);
  const size_t bb = traits(t).block_bytes;
  for (size_t i = 0; i < b.size(); i += bb)
    for (int off : f16_fields(t)) { const uint16_t h = f32_to_f16(d(rng)); std::memcpy(&b[i + size_t(off)], &h, 2); }
  return b;
}

std::vector<float> random_act(int64_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = d(rng);
  if (n > 40) x[7] = 0.f, x[39] = -x[38];  // a zero and (often) a tie in |max|
  return x;
}

std::vector<uint8_t> quantize(DType act, const std::vector<float>& x) {
  std::vector<uint8_t> a(act_row_bytes(act, int64_t(x.size())));
  quantize_act(act, x.data(), a.data(), int64_t(x.size()));
  return a;
}

// SIMD dot vs scalar reference: K-quants are bit-identical by construction, legacy blocks sum
// in a different float order (bounded by 1e-5 of the sum of |terms|).
void expect_simd_matches_ref(DType t, const uint8_t* w, const std::vector<float>& x, const std::string& what) {
  const QDotTraits* q = find_qdot(t);
  ASSERT_NE(q, nullptr);
  ASSERT_NE(q->dot_avx2, nullptr);
  const int64_t n = int64_t(x.size());
  auto a = quantize(q->act, x);
  const float r = q->dot_ref(w, a.data(), n), s = q->dot_avx2(w, a.data(), n);
  if (is_k(t)) {
    EXPECT_EQ(r, s) << traits(t).name << " " << what;
  } else {
    std::vector<float> wf(static_cast<size_t>(n));
    traits(t).to_f32(w, wf.data(), n);
    double mag = 0;
    for (int64_t i = 0; i < n; ++i) mag += std::fabs(double(wf[size_t(i)]) * x[size_t(i)]);
    EXPECT_NEAR(r, s, 1e-5 * mag + 1e-30) << traits(t).name << " " << what;
  }
}

// |integer dot - sum_i w_i x_i| is at most sum_i |w_i| (+|m|) * err(x_i), err = the
// activation's rounding error; for q8_1 also |m| * the error of the f16 block sum s.
double quantization_bound(DType t, const uint8_t* w, const std::vector<float>& x) {
  const QDotTraits* q = find_qdot(t);
  const int64_t n = int64_t(x.size());
  std::vector<float> wf(static_cast<size_t>(n));
  traits(t).to_f32(w, wf.data(), n);
  auto a = quantize(q->act, x);
  double bound = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float xi = x[size_t(i)];
    double ea = 0, m = 0;
    if (q->act == DType::Q8_K) {
      ea = 0.5001 * std::fabs(reinterpret_cast<const BlockQ8_K*>(a.data())[i / 256].d);
    } else {
      const size_t bb = q->act == DType::Q8_0 ? 34 : 36;
      uint16_t dh;
      std::memcpy(&dh, &a[size_t(i / 32) * bb], 2);
      float amax = 0;
      for (int64_t j = i / 32 * 32; j < i / 32 * 32 + 32; ++j) amax = std::max(amax, std::fabs(x[size_t(j)]));
      const double d = amax / 127.0, d16 = f16_to_f32(dh);
      ea = 0.5001 * d16 + 127 * std::fabs(d16 - d);
      if (q->act == DType::Q8_1) {
        uint16_t mh, sh;
        const size_t wb = traits(t).block_bytes;
        std::memcpy(&mh, w + size_t(i / 32) * wb + 2, 2);
        std::memcpy(&sh, &a[size_t(i / 32) * bb + 2], 2);
        m = std::fabs(f16_to_f32(mh));
        if (i % 32 == 0) bound += m * std::fabs(f16_to_f32(sh)) * 1e-3;  // f16 rounding of s
      }
    }
    bound += (std::fabs(wf[size_t(i)]) + m) * (ea + 1e-6 * std::fabs(xi)) + 1e-6 * std::fabs(wf[size_t(i)] * xi);
  }
  return bound;
}

double float_dot(DType t, const uint8_t* w, const std::vector<float>& x) {
  std::vector<float> wf(x.size());
  traits(t).to_f32(w, wf.data(), int64_t(x.size()));
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) s += double(wf[i]) * x[i];
  return s;
}

// The values a quantized activation row stands for: d · q (d f16 for q8_0/q8_1, f32 for q8_K).
std::vector<double> act_values(DType act, const std::vector<uint8_t>& a, int64_t n) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (act == DType::Q8_K) {
      const auto& b = reinterpret_cast<const BlockQ8_K*>(a.data())[i / 256];
      v[size_t(i)] = double(b.d) * b.qs[i % 256];
    } else if (act == DType::Q8_1) {
      const auto& b = reinterpret_cast<const BlockQ8_1*>(a.data())[i / 32];
      v[size_t(i)] = double(f16_to_f32(b.d)) * b.qs[i % 32];
    } else {
      const auto& b = reinterpret_cast<const BlockQ8_0*>(a.data())[i / 32];
      v[size_t(i)] = double(f16_to_f32(b.d)) * b.qs[i % 32];
    }
  }
  return v;
}

Tensor tensor_of(DType t, int64_t cols, int64_t rows, uint32_t seed) {
  auto bytes = std::make_shared<std::vector<uint8_t>>(random_blocks(t, cols * rows, seed));
  Tensor w;
  w.name = "w";
  w.type = t;
  w.ne = {cols, rows};
  w.data = bytes->data();
  w.nbytes = bytes->size();
  w.keep = bytes;
  return w;
}

}  // namespace

TEST(QDot, TableCoversTheGgmlBlockTypes) {
  for (DType t : kTypes) {
    const QDotTraits* q = find_qdot(t);
    ASSERT_NE(q, nullptr) << traits(t).name;
    EXPECT_EQ(act_block(q->act), traits(t).block) << traits(t).name;
  }
  EXPECT_EQ(find_qdot(DType::F32), nullptr);
  EXPECT_EQ(find_qdot(DType::F16), nullptr);
  EXPECT_EQ(find_qdot(DType::BF16), nullptr);
}

// The rounding llama.cpp uses on x86: multiplier 127/amax, ties to even.
// Both paths: quantize_act runs the AVX2 quantizer when SIMD is on, the scalar one when off.
TEST(QDot, Q8_0AndQ8_1MatchPlainReimplementation) {
  for (bool simd : {true, false}) {
    SCOPED_TRACE(kernels::use_simd(simd));
    std::vector<float> ties(64, 0.f);
    const float tv[] = {127.f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.49f};
    std::copy(std::begin(tv), std::end(tv), ties.begin());
    for (uint32_t seed = 0; seed < 20; ++seed) {
      auto x = seed == 0 ? ties : random_act(32 * 9, seed, seed % 2 ? 1.f : 30.f);
      if (seed == 1) std::fill(x.begin() + 32, x.begin() + 64, 0.f);  // an all-zero block
      const int64_t n = int64_t(x.size());
      auto a0 = quantize(DType::Q8_0, x), a1 = quantize(DType::Q8_1, x);
      for (int64_t b = 0; b < n / 32; ++b) {
        float amax = 0;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[size_t(b * 32 + j)]));
        const float d = amax / 127.f, id = amax != 0 ? 127.f / amax : 0.f;
        const auto* q0 = reinterpret_cast<const BlockQ8_0*>(a0.data()) + b;
        const auto* q1 = reinterpret_cast<const BlockQ8_1*>(a1.data()) + b;
        EXPECT_EQ(q0->d, f32_to_f16(d));
        EXPECT_EQ(q1->d, f32_to_f16(d));
        int sum = 0;
        for (int j = 0; j < 32; ++j) {
          const int q = int(std::nearbyint(x[size_t(b * 32 + j)] * id));
          ASSERT_EQ(q0->qs[j], q) << "seed " << seed << " block " << b << " elem " << j;
          ASSERT_EQ(q1->qs[j], q);
          sum += q;
        }
        EXPECT_EQ(q1->s, f32_to_f16(d * float(sum)));
      }
      if (seed == 0) {  // ties to even: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2
        const auto* q0 = reinterpret_cast<const BlockQ8_0*>(a0.data());
        EXPECT_EQ(q0->qs[1], 0); EXPECT_EQ(q0->qs[2], 2); EXPECT_EQ(q0->qs[3], 2);
        EXPECT_EQ(q0->qs[4], 0); EXPECT_EQ(q0->qs[5], -2); EXPECT_EQ(q0->qs[6], -2); EXPECT_EQ(q0->qs[7], 3);
      }
    }
  }
  kernels::use_simd(true);
}

// Both paths, as above.
TEST(QDot, Q8_KMatchesPlainReimplementation) {
  for (bool simd : {true, false}) {
    SCOPED_TRACE(kernels::use_simd(simd));
    for (uint32_t seed = 0; seed < 12; ++seed) {
      auto x = random_act(256 * 3, seed + 100, seed % 2 ? 1.f : 7.f);
      if (seed == 3) std::fill(x.begin() + 256, x.begin() + 512, 0.f);
      if (seed == 4) x[5] = 50.f;   // positive maximum
      if (seed == 5) x[5] = -50.f;  // negative maximum
      if (seed == 6) { x[5] = 50.f; x[9] = -50.f; }  // a tie: the first one sets the sign
      auto a = quantize(DType::Q8_K, x);
      for (int64_t b = 0; b < 3; ++b) {
        const auto* q = reinterpret_cast<const BlockQ8_K*>(a.data()) + b;
        const float* xb = x.data() + b * 256;
        float amax = 0, max = 0;
        for (int j = 0; j < 256; ++j) if (std::fabs(xb[j]) > amax) { amax = std::fabs(xb[j]); max = xb[j]; }
        if (amax == 0) { EXPECT_EQ(q->d, 0.f); for (int j = 0; j < 256; ++j) ASSERT_EQ(q->qs[j], 0); continue; }
        const float iscale = -127.f / max;
        EXPECT_EQ(q->d, 1.f / iscale);
        for (int s = 0; s < 16; ++s) {
          int sum = 0;
          for (int j = 16 * s; j < 16 * s + 16; ++j) {
            const int v = std::min(127, int(std::nearbyint(iscale * xb[j])));
            ASSERT_EQ(q->qs[j], v) << "seed " << seed << " elem " << j;
            sum += v;
          }
          EXPECT_EQ(q->bsums[s], sum);
        }
      }
    }
  }
  kernels::use_simd(true);
}

TEST(QDot, SimdMatchesReferenceOnRandomBlocks) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2";
  for (DType t : kTypes) {
    const int64_t blk = traits(t).block;
    for (int64_t nb : {1, 2, 3, 7, 18}) {  // odd block counts exercise the 2-block unroll's tail
      const int64_t n = nb * blk;
      for (uint32_t seed = 0; seed < 4; ++seed) {
        auto w = random_blocks(t, n, seed * 7 + uint32_t(nb));
        auto x = random_act(n, seed + 11, seed == 3 ? 100.f : 1.f);
        expect_simd_matches_ref(t, w.data(), x, "n " + std::to_string(n) + " seed " + std::to_string(seed));
      }
    }
  }
}

TEST(QDot, IntegerDotWithinQuantizationErrorOfFloatDot) {
  for (DType t : kTypes) {
    const int64_t n = traits(t).block == 256 ? 768 : 576;
    for (uint32_t seed = 0; seed < 6; ++seed) {
      auto w = random_blocks(t, n, seed + 1000);
      auto x = random_act(n, seed + 2000);
      const QDotTraits* q = find_qdot(t);
      auto a = quantize(q->act, x);
      const double exact = float_dot(t, w.data(), x), bound = quantization_bound(t, w.data(), x);
      EXPECT_NEAR(q->dot_ref(w.data(), a.data(), n), exact, bound) << traits(t).name << " seed " << seed;
      // The bound is tight enough to mean something: far below the size of the result terms.
      double mag = 0;
      std::vector<float> wf(static_cast<size_t>(n));
      traits(t).to_f32(w.data(), wf.data(), n);
      for (int64_t i = 0; i < n; ++i) mag += std::fabs(double(wf[size_t(i)]) * x[size_t(i)]);
      EXPECT_LT(bound, 0.05 * mag) << traits(t).name;
    }
  }
}

// Real rows of the models' weights, every block type they contain, with activation-like inputs.
TEST(QDot, SimdMatchesReferenceOnModelBlocks) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2";
  int checked = 0;
  for (const char* file : {test::kSmol, test::kGemma}) {
    if (!std::filesystem::exists(test::model_path(file))) continue;
    auto m = load_model(test::model_path(file));
    std::vector<const Tensor*> ts = {&m->tok_embd};
    for (const Block& b : m->blocks) for (const Tensor* t : {&b.wq, &b.wk, &b.wv, &b.wo, &b.w_gate, &b.w_up, &b.w_down}) ts.push_back(t);
    for (const Tensor* t : ts) {
      if (find_qdot(t->type) == nullptr) continue;
      auto x = random_act(t->cols(), uint32_t(checked), 3.f);
      for (int64_t r : {int64_t(0), t->rows() / 2, t->rows() - 1}) {
        expect_simd_matches_ref(t->type, t->row(r), x, t->name + " row " + std::to_string(r));
        EXPECT_NEAR(find_qdot(t->type)->dot_ref(t->row(r), quantize(find_qdot(t->type)->act, x).data(), t->cols()),
                    float_dot(t->type, t->row(r), x), quantization_bound(t->type, t->row(r), x)) << t->name;
      }
      ++checked;
    }
  }
  if (checked == 0) GTEST_SKIP() << "models not fetched";
}

// matmul's integer path: each dispatch path against the scalar reference dots, ragged rows and
// tokens, strides, untouched padding; the exact path still matches dequantized f32.
class MatmulQ8 : public ::testing::TestWithParam<bool> {};

TEST_P(MatmulQ8, RaggedSizesAgainstReferenceDots) {
  const char* path = use_simd(GetParam());
  SCOPED_TRACE(path);
  const ExactScope guard(false);
  // from kGemmMinTok tokens on, the AVX2 path multiplies the 8-bit-rounded activations with the
  // f32 GEMM (q4_1/q5_1: plus the min-term correction): checked against the same math in float64
  const int64_t shapes[][2] = {{1, 1}, {7, 3}, {33, 5}, {45, 1}, {64, 11}, {3, 4}, {40, 17}, {21, 23}};
  for (DType t : kTypes) {
    const int64_t cols = traits(t).block == 256 ? 512 : 96;
    for (const auto& s : shapes) {
      const int64_t rows = s[0], ntok = s[1], ldx = cols + 5, ldy = rows + 3;
      Tensor w = tensor_of(t, cols, rows, uint32_t(rows * 13 + ntok));
      auto x = random_act(ldx * ntok, uint32_t(rows + ntok));
      std::vector<float> y(size_t(ldy * ntok), -1.f);
      matmul(w, x.data(), ldx, ntok, y.data(), ldy);
      const QDotTraits* q = find_qdot(t);
      for (int64_t tk = 0; tk < ntok; ++tk) {
        std::vector<float> xt(x.begin() + tk * ldx, x.begin() + tk * ldx + cols);
        auto a = quantize(q->act, xt);
        const bool gemm = GetParam() && ntok >= kGemmMinTok;
        const bool min_term = t == DType::Q4_1 || t == DType::Q5_1;  // + m_w · (s_a − d_a Σq_a) per block
        for (int64_t r = 0; r < rows; ++r) {
          const float ref = q->dot_ref(w.row(r), a.data(), cols), got = y[size_t(tk * ldy + r)];
          if (gemm) {
            std::vector<float> wr(static_cast<size_t>(cols));
            row_to_f32(t, w.row(r), wr.data(), cols);
            const auto xq = act_values(q->act, a, cols);
            double exact = 0, mag = 0;
            for (int64_t i = 0; i < cols; ++i) {
              exact += double(wr[size_t(i)]) * xq[size_t(i)];
              mag += std::fabs(double(wr[size_t(i)]) * xq[size_t(i)]);
            }
            if (min_term) {
              const uint8_t* row = w.row(r);
              const size_t bb = t == DType::Q4_1 ? 20 : 24;
              const auto* ab = reinterpret_cast<const BlockQ8_1*>(a.data());
              for (int64_t b = 0; b < cols / 32; ++b) {
                uint16_t m;
                std::memcpy(&m, row + size_t(b) * bb + 2, 2);
                double sum = 0;
                for (int j = 0; j < 32; ++j) sum += ab[b].qs[j];
                exact += double(f16_to_f32(m)) * (double(f16_to_f32(ab[b].s)) - double(f16_to_f32(ab[b].d)) * sum);
              }
            }
            ASSERT_NEAR(got, exact, 1e-6 * mag * std::sqrt(double(cols))) << traits(t).name << " row " << r << " tok " << tk;
            ASSERT_NEAR(got, ref, 1e-5 * (1 + mag)) << traits(t).name << ": the integer kernel's value";
          } else if (!GetParam() || is_k(t)) ASSERT_EQ(got, ref) << traits(t).name << " row " << r << " tok " << tk;
          else ASSERT_NEAR(got, ref, 1e-5 * (1 + std::fabs(ref)) * std::sqrt(double(cols))) << traits(t).name;
        }
        for (int64_t r = rows; r < ldy; ++r) ASSERT_EQ(y[size_t(tk * ldy + r)], -1.f);
      }
    }
  }
  use_simd(true);
}

INSTANTIATE_TEST_SUITE_P(Paths, MatmulQ8, ::testing::Values(true, false));

TEST(MatmulQ8, ExactSwitchSelectsDequantizedPath) {
  Tensor w = tensor_of(DType::Q4_K, 256, 9, 5);
  auto x = random_act(256 * 2, 6);
  std::vector<float> yq(18), ye(18);
  std::vector<double> yr(18);
  {
    const ExactScope g(false);
    matmul(w, x.data(), 256, 2, yq.data(), 9);
  }
  {
    const ExactScope g(true);
    EXPECT_TRUE(exact());
    matmul(w, x.data(), 256, 2, ye.data(), 9);
  }
  ref::matmul(w, x.data(), 256, 2, yr.data(), 9);
  double differ = 0;
  for (size_t i = 0; i < 18; ++i) {
    EXPECT_NEAR(ye[i], yr[i], 1e-4 * (1 + std::fabs(yr[i])));
    differ = std::max(differ, std::fabs(double(yq[i]) - double(ye[i])));
  }
  EXPECT_GT(differ, 0.0) << "the integer path should round activations";
}

// The mode is scoped: it comes back however the scope ends (here an exception, as a failed
// ASSERT_* returns early), nested scopes unwind in order, and it belongs to the calling thread.
TEST(MatmulQ8, ExactScopeCannotLeak) {
  const bool before = exact();
  try {
    const ExactScope s(!before);
    EXPECT_EQ(exact(), !before);
    throw std::runtime_error("leave the scope early");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(exact(), before);
  {
    const ExactScope outer(true);
    {
      const ExactScope inner(false);
      EXPECT_FALSE(exact());
    }
    EXPECT_TRUE(exact());
    bool other = true;
    std::thread([&] { other = exact(); }).join();
    EXPECT_EQ(other, before) << "another thread starts from the default mode, not this thread's scope";
  }
  EXPECT_EQ(exact(), before);
}

TEST(MatmulQ8, DeterministicAcrossThreadCounts) {
  for (DType t : {DType::Q4_1, DType::Q6_K}) {
    Tensor w = tensor_of(t, 512, 100, 3);
    auto x = random_act(512 * 9, 5);
    std::vector<float> a(900), b(900);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    matmul(w, x.data(), 512, 9, a.data(), 100);
    omp_set_num_threads(2);
    matmul(w, x.data(), 512, 9, b.data(), 100);
    omp_set_num_threads(saved);
    EXPECT_EQ(a, b) << traits(t).name;
  }
}
