// The f16-valued weight kernels (kernels/sparse.h) against the float64 reference
// (kernels::ref::matmul, which decodes rows with row_to_f32): dense f16 decode, 2:4 and other N:M,
// bitmap; both dispatch paths (AVX2, scalar), decode (1..3 tokens) and batched (>= 4 tokens: the
// f32 tile, the transposed kernel for bitmap, the GEMM for N:M from 16) on ragged sizes;
// bit-identical results for 1 and 2 threads.
#include "core/dtype_custom.h"
#include "core/dtype_sparse.h"
#include "kernels/kernels.h"
#include "kernels/sparse.h"
#include "model/model.h"
#include "../quant/random_rows.h"
#include <gtest/gtest.h>
#include <cmath>
#include <omp.h>
#include <random>

using namespace slimlm;
using slimlm::test::random_x;

namespace {
// Dense f32 weights with zeros that fit `t`: magnitude-free random N:M patterns or unstructured.
std::vector<float> weights_for(DType t, int64_t cols, int64_t rows, uint32_t seed) {
  std::vector<float> w = test::gaussian(size_t(cols * rows), seed, 0.5f);
  std::mt19937 rng(seed + 1);
  if (!is_sparse(t)) return w;
  const CustomLayout l = custom_layout(t);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = w.data() + r * cols;
    if (l.kind == CustomKind::Bitmap) {  // ~70% zeros
      for (int64_t c = 0; c < cols; ++c) if (rng() % 10 < 7) row[c] = 0.f;
      continue;
    }
    for (int64_t g0 = 0; g0 < cols; g0 += l.group) {
      const int64_t len = std::min<int64_t>(l.group, cols - g0);
      int kept = 0;
      for (int64_t i = 0; i < len; ++i)  // keep a random subset of at most `keep`
        if (kept < l.keep && rng() % 2) ++kept; else row[g0 + i] = 0.f;
    }
  }
  return w;
}
DType bitmap_for(const std::vector<float>& w, int64_t cols, int64_t rows) {
  int64_t most = 1;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t nz = 0;
    for (int64_t c = 0; c < cols; ++c) nz += w[size_t(r * cols + c)] != 0.f;
    most = std::max(most, nz);
  }
  return bitmap_type(most + 3);  // spare slots: the kernels must stop at the row's real values
}
Tensor make(DType t, int64_t cols, int64_t rows, uint32_t seed) {
  const DType proto = t == DType::Q8_0 ? bitmap_type(1) : t;  // Q8_0 stands for "a bitmap type"
  auto w = weights_for(proto, cols, rows, seed);
  return Tensor::from_f32("w", {cols, rows}, w.data(), t == DType::Q8_0 ? bitmap_for(w, cols, rows) : t);
}
}  // namespace

class SparseMatmul : public ::testing::TestWithParam<bool> {};

TEST_P(SparseMatmul, MatchesFloat64ReferenceOnRaggedSizes) {
  SCOPED_TRACE(kernels::use_simd(GetParam()));
  const DType types[] = {DType::F16, nm_type(2, 4), nm_type(4, 8), nm_type(1, 4), DType::Q8_0 /* bitmap */};
  const int64_t shapes[][2] = {{1, 3}, {5, 2}, {16, 9}, {17, 5}, {31, 4}, {32, 33}, {47, 7}, {64, 17}, {173, 19}, {576, 3}};
  for (DType t : types)
    for (const auto& s : shapes)
      for (int64_t ntok : {1, 2, 3, 4, 5, 33, 40}) {
        const int64_t cols = s[0], rows = s[1];
        const Tensor w = make(t, cols, rows, uint32_t(cols * 131 + rows));
        SCOPED_TRACE(type_name(w.type) + " " + std::to_string(cols) + "x" + std::to_string(rows) + " tok " + std::to_string(ntok));
        const int64_t ldx = cols + 3, ldy = rows + 2;
        const auto x = random_x(ldx * ntok, uint32_t(ntok));
        std::vector<float> y(size_t(ldy * ntok), -1.f);
        std::vector<double> yr(size_t(ldy * ntok), 0.0);
        kernels::matmul(w, x.data(), ldx, ntok, y.data(), ldy);
        kernels::ref::matmul(w, x.data(), ldx, ntok, yr.data(), ldy);
        for (int64_t tk = 0; tk < ntok; ++tk) {
          for (int64_t r = 0; r < rows; ++r) {
            const double ref = yr[size_t(tk * ldy + r)];
            ASSERT_NEAR(y[size_t(tk * ldy + r)], ref, 1e-5 * (1 + std::fabs(ref)) * std::sqrt(double(cols))) << "row " << r << " tok " << tk;
          }
          for (int64_t r = rows; r < ldy; ++r) ASSERT_EQ(y[size_t(tk * ldy + r)], -1.f);  // padding untouched
        }
      }
  kernels::use_simd(true);
}

INSTANTIATE_TEST_SUITE_P(Paths, SparseMatmul, ::testing::Values(true, false));

TEST(SparseMatmul, ZeroWeightsGiveZeroAndSparseEqualsDenseWithZeros) {
  // The same zeros stored dense (f16) and 2:4 give the same products up to summation order.
  const int64_t cols = 576, rows = 64;
  auto w = weights_for(nm_type(2, 4), cols, rows, 9);
  const Tensor d = Tensor::from_f32("d", {cols, rows}, w.data(), DType::F16);
  const Tensor s = Tensor::from_f32("s", {cols, rows}, w.data(), nm_type(2, 4));
  EXPECT_LT(s.nbytes * 16, d.nbytes * 9 + 1);  // 1.125 vs 2 bytes per weight
  const auto x = random_x(cols * 5, 3);
  std::vector<float> yd(size_t(rows * 5)), ys(size_t(rows * 5));
  for (int64_t ntok : {1, 5}) {
    kernels::matmul(d, x.data(), cols, ntok, yd.data(), rows);
    kernels::matmul(s, x.data(), cols, ntok, ys.data(), rows);
    for (size_t i = 0; i < size_t(rows * ntok); ++i) ASSERT_NEAR(ys[i], yd[i], 1e-4 * (1 + std::fabs(yd[i])));
  }
  std::vector<float> zeros(size_t(cols * rows), 0.f);
  const Tensor z = Tensor::from_f32("z", {cols, rows}, zeros.data(), bitmap_type(1));
  kernels::matmul(z, x.data(), cols, 5, ys.data(), rows);
  for (size_t i = 0; i < size_t(rows * 5); ++i) ASSERT_EQ(ys[i], 0.f);
}

TEST(SparseMatmul, DeterministicAcrossThreadCounts) {
  const int64_t cols = 288, rows = 300;
  const auto x = random_x(cols * 9, 5);
  for (DType t : {DType::F16, nm_type(2, 4), DType::Q8_0}) {
    const Tensor w = make(t, cols, rows, 4);
    for (int64_t ntok : {1, 9}) {
      std::vector<float> a(size_t(rows * ntok)), b(size_t(rows * ntok));
      const int saved = omp_get_max_threads();
      omp_set_num_threads(1);
      kernels::matmul(w, x.data(), cols, ntok, a.data(), rows);
      omp_set_num_threads(2);
      kernels::matmul(w, x.data(), cols, ntok, b.data(), rows);
      omp_set_num_threads(saved);
      EXPECT_EQ(a, b) << type_name(w.type) << " tok " << ntok;
    }
  }
}

// The AVX2 2:4 row decoder that feeds the prompt GEMM against the scalar codec
// (sparse_row_to_f32): full 32-input chunks, a short last chunk, and a row of one group.
TEST(SparseMatmul, Nm24RowDecoderMatchesScalarCodec) {
  if (!kernels::cpu_has_avx2()) GTEST_SKIP() << "no AVX2/F16C";
  const DType t = nm_type(2, 4);
  for (int64_t cols : {4, 31, 32, 33, 96, 173, 576}) {
    Tensor w = make(t, cols, 3, uint32_t(cols));
    for (int64_t r = 0; r < 3; ++r) {
      std::vector<float> fast(size_t(cols), -7.f), ref(size_t(cols), -7.f);
      kernels::avx2::nm24_row_to_f32(custom_layout(t), w.row(r), fast.data(), cols);
      sparse_row_to_f32(custom_layout(t), w.row(r), ref.data(), cols);
      ASSERT_EQ(fast, ref) << cols << " columns, row " << r;
      int64_t nz = 0;
      for (float v : fast) nz += v != 0.f;
      ASSERT_GT(nz, 0) << "the weights should not all be zero";
    }
  }
}
