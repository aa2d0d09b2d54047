// Dense-and-sparse decomposition: exact counts, top-k selection vs a full sort, D + S = W,
// y = Q(D)x + Sx within the dense part's quantization error, LLM.int8() outlier columns, and the
// CSR round trip through a GGUF file (with the i32 tensor type it needs).
#include "core/dtype.h"
#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_csr.h"
#include "quant/codec.h"
#include "kernels/kernels.h"
#include "kernels/qdot.h"
#include "model/model.h"
#include "quant/outliers.h"
#include "test_util.h"
#include <gtest/gtest.h>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

using namespace slimlm;
using namespace slimlm::quant;

namespace {
std::vector<float> outlier_matrix(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 0.02f);
  std::vector<float> w(size_t(rows * cols));
  for (auto& v : w) v = nd(rng);
  for (int64_t k = 0; k < rows * cols / 100; ++k) w[size_t((k * 7919 + 13) % (rows * cols))] = (k % 2 ? 1 : -1) * (0.3f + 0.01f * float(k % 17));
  return w;
}
// Keeps the entries of S at the positions it names, zero elsewhere (for checks by position).
std::vector<float> dense_of(const CsrF16& s) {
  std::vector<float> d(size_t(s.rows * s.cols), 0.0f);
  s.add_dense(d.data());
  return d;
}
}  // namespace

TEST(Outliers, CountIsTheFloorOfTheFraction) {
  EXPECT_EQ(outlier_count(100, 0.29), 29);
  EXPECT_EQ(outlier_count(1000, 0.005), 5);
  EXPECT_EQ(outlier_count(7, 0.5), 3);
  EXPECT_EQ(outlier_count(10, 1.0), 10);
  EXPECT_EQ(outlier_count(10, 0.0), 0);
  EXPECT_EQ(outlier_count(576 * 1536, 0.0045), 3981);  // 3981.312
  EXPECT_THROW(outlier_count(10, -0.1), Error);
  EXPECT_THROW(outlier_count(10, 1.5), Error);
}

TEST(Outliers, SplitKeepsTheTopMagnitudesAndDensePlusSparseIsExact) {
  const int64_t rows = 48, cols = 80;
  const auto w0 = outlier_matrix(rows, cols, 1);
  auto w = w0;
  const CsrF16 s = split_outliers(w.data(), rows, cols, 0.0125);
  ASSERT_NO_THROW(s.validate());
  EXPECT_EQ(s.nnz(), 48);  // ⌊0.0125 · 3840⌋
  // kept = the 48 largest |w| (a full sort, ties by index)
  std::vector<int64_t> idx(w0.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = int64_t(i);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return std::fabs(w0[size_t(a)]) > std::fabs(w0[size_t(b)]); });
  const auto sd = dense_of(s);
  for (size_t k = 0; k < idx.size(); ++k) {
    const size_t i = size_t(idx[k]);
    if (k < 48) EXPECT_EQ(sd[i], f16_to_f32(f32_to_f16(w0[i]))) << k;
    else EXPECT_EQ(sd[i], 0.0f) << k;
  }
  // D + S == W exactly; the dense range shrank
  float dense_max = 0;
  for (size_t i = 0; i < w.size(); ++i) { EXPECT_EQ(w[i] + sd[i], w0[i]) << i; dense_max = std::max(dense_max, std::fabs(w[i])); }
  EXPECT_LT(dense_max, 0.3f);
}

TEST(Outliers, SensitivityScoresAndTiesAreDeterministic) {
  const int64_t rows = 6, cols = 10;
  const auto w0 = outlier_matrix(rows, cols, 2);
  std::vector<float> c(static_cast<size_t>(cols));
  for (int64_t j = 0; j < cols; ++j) c[size_t(j)] = 0.5f + float(j);
  for (OutlierScore sc : {OutlierScore::ActNorm, OutlierScore::Hessian}) {
    auto w = w0;
    const CsrF16 s = split_outliers(w.data(), rows, cols, 0.1, sc, c.data());
    ASSERT_EQ(s.nnz(), 6);
    std::vector<std::pair<float, int64_t>> all;
    for (int64_t i = 0; i < rows * cols; ++i) {
      const float a = std::fabs(w0[size_t(i)]), cj = c[size_t(i % cols)];
      all.push_back({sc == OutlierScore::ActNorm ? a * cj : w0[size_t(i)] * w0[size_t(i)] * cj, i});
    }
    std::sort(all.begin(), all.end(), [](auto a, auto b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
    const auto sd = dense_of(s);
    for (int k = 0; k < 6; ++k) EXPECT_NE(sd[size_t(all[size_t(k)].second)], 0.0f);
  }
  std::vector<float> flat(12, 0.5f);  // all tied: the lowest flat indices win
  const CsrF16 t = split_outliers(flat.data(), 3, 4, 0.25);
  EXPECT_EQ(t.row_ptr, (std::vector<int32_t>{0, 3, 3, 3}));
  EXPECT_EQ(t.col, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_THROW(split_outliers(flat.data(), 3, 4, 0.25, OutlierScore::Hessian, nullptr), Error);
}

TEST(Outliers, SplitPlusApplyReproducesTheMatVecUpToDenseQuantization) {
  const int64_t rows = 64, cols = 128, n_tok = 3, ldx = cols + 5, ldy = rows + 3;
  const auto w0 = outlier_matrix(rows, cols, 3);
  std::mt19937 rng(4);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(size_t(n_tok * ldx));
  for (auto& v : x) v = nd(rng);
  auto ref = [&](const std::vector<float>& m, int64_t t, int64_t i) {
    double a = 0;
    for (int64_t j = 0; j < cols; ++j) a += double(m[size_t(i * cols + j)]) * x[size_t(t * ldx + j)];
    return a;
  };
  auto c = make_codec("u4g32");
  auto quantize = [&](const std::vector<float>& m) {
    std::vector<float> q(m.size());
    for (int64_t i = 0; i < rows; ++i) {
      const RowQuant r = rtn_row(*c, m.data() + i * cols, cols, nullptr);
      std::copy(r.deq.begin(), r.deq.end(), q.begin() + i * cols);
    }
    return q;
  };
  auto d = w0;
  const CsrF16 s = split_outliers(d.data(), rows, cols, 0.01);
  const auto dq = quantize(d), plain = quantize(w0);
  std::vector<float> y(size_t(n_tok * ldy), 0.0f);
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t i = 0; i < rows; ++i) y[size_t(t * ldy + i)] = float(ref(dq, t, i));
  s.apply(x.data(), ldx, n_tok, y.data(), ldy);
  double err_split = 0, err_plain = 0;
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t i = 0; i < rows; ++i) {
      double bound = 1e-4;  // float rounding of the sums
      for (int64_t j = 0; j < cols; ++j) bound += std::fabs(dq[size_t(i * cols + j)] - d[size_t(i * cols + j)]) * std::fabs(x[size_t(t * ldx + j)]);
      const double e = std::fabs(y[size_t(t * ldy + i)] - ref(w0, t, i));
      EXPECT_LE(e, bound) << t << "," << i;
      err_split += e * e;
      err_plain += std::pow(ref(plain, t, i) - ref(w0, t, i), 2);
    }
  EXPECT_LT(err_split, 0.25 * err_plain);  // the point of the split: the dense range shrinks
  // unquantized dense part: exact up to float rounding
  std::vector<float> y2(size_t(n_tok * ldy), 0.0f);
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t i = 0; i < rows; ++i) y2[size_t(t * ldy + i)] = float(ref(d, t, i));
  s.apply(x.data(), ldx, n_tok, y2.data(), ldy);
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t i = 0; i < rows; ++i) EXPECT_NEAR(y2[size_t(t * ldy + i)], ref(w0, t, i), 1e-5) << t << "," << i;
}

TEST(Outliers, LlmInt8OutlierColumnsStayInHalfPrecision) {
  const int64_t rows = 16, cols = 40;
  std::vector<float> amax(size_t(cols), 1.0f);
  amax[3] = 7.0f; amax[31] = 20.0f; amax[8] = 6.0f;  // 6.0 itself is not above the threshold
  const auto ch = outlier_channels(amax.data(), cols);
  EXPECT_EQ(ch, (std::vector<int32_t>{3, 31}));
  const auto w0 = outlier_matrix(rows, cols, 5);
  auto w = w0;
  const CsrF16 s = split_columns(w.data(), rows, cols, {31, 3, 31});
  ASSERT_NO_THROW(s.validate());
  EXPECT_EQ(s.nnz(), rows * 2);
  const auto sd = dense_of(s);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      const size_t k = size_t(i * cols + j);
      EXPECT_EQ(w[k] + sd[k], w0[k]);
      if (j == 3 || j == 31) EXPECT_LE(std::fabs(w[k]), std::fabs(w0[k]) * 1e-3f);
      else EXPECT_EQ(sd[k], 0.0f);
    }
  EXPECT_THROW(split_columns(w.data(), rows, cols, {40}), Error);
}

TEST(Outliers, CsrRoundTripsThroughGguf) {
  const int64_t rows = 30, cols = 50;
  auto w = outlier_matrix(rows, cols, 6);
  const CsrF16 s = split_outliers(w.data(), rows, cols, 0.02);
  CsrF16 none;
  none.rows = 4; none.cols = 8; none.row_ptr.assign(5, 0);
  gguf::Writer wr;
  wr.set("general.architecture", gguf::Value::of_str("test"));
  wr.add_tensor("blk.0.w", DType::F32, {cols, rows}, w.data(), w.size() * 4);
  gguf::add_csr_tensors(wr, "blk.0.w", s);
  gguf::add_csr_tensors(wr, "blk.1.w", none);
  const std::string path = test::temp_path("outliers.gguf");
  wr.write(path);
  auto f = gguf::File::open(path);
  ASSERT_NE(f->tensor("blk.0.w.outl_col"), nullptr);
  EXPECT_EQ(f->tensor("blk.0.w.outl_col")->type, DType::I32);
  EXPECT_EQ(f->tensor("blk.0.w.outl_val")->type, DType::F16);
  const auto back = gguf::read_csr_tensors(*f, "blk.0.w", rows, cols);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->row_ptr, s.row_ptr);
  EXPECT_EQ(back->col, s.col);
  EXPECT_EQ(back->val, s.val);
  const auto empty = gguf::read_csr_tensors(*f, "blk.1.w", 4, 8);
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->nnz(), 0);
  EXPECT_EQ(f->tensor("blk.1.w.outl_col"), nullptr);
  EXPECT_FALSE(gguf::read_csr_tensors(*f, "blk.2.w", 4, 8).has_value());
  EXPECT_THROW(gguf::read_csr_tensors(*f, "blk.0.w", rows + 1, cols), Error);  // shape mismatch
  EXPECT_THROW(gguf::read_csr_tensors(*f, "blk.0.w", rows, 3), Error);         // columns out of range
  // the i32 tensor type reads as f32 like any other row
  std::vector<float> ptr(size_t(rows + 1));
  row_to_f32(DType::I32, f->tensor("blk.0.w.outl_rowptr")->data, ptr.data(), rows + 1);
  for (int64_t i = 0; i <= rows; ++i) EXPECT_EQ(ptr[size_t(i)], float(s.row_ptr[size_t(i)]));
  EXPECT_EQ(type_from_name("i32"), DType::I32);
  EXPECT_EQ(row_bytes(DType::I32, 7), 28u);
  EXPECT_EQ(traits(DType::I32).from_f32, nullptr);  // an index type, not a weight type
  // a corrupt CSR is an Error at read time
  std::vector<int32_t> bad_ptr = {0, 2, 1};
  gguf::Writer wb;
  wb.add_tensor("m.outl_rowptr", DType::I32, {3}, bad_ptr.data(), 12);
  wb.add_tensor("m.outl_col", DType::I32, {1}, bad_ptr.data(), 4);
  wb.add_tensor("m.outl_val", DType::F16, {1}, bad_ptr.data(), 2);
  const std::string bad = test::temp_path("outliers_bad.gguf");
  wb.write(bad);
  EXPECT_THROW(gguf::read_csr_tensors(*gguf::File::open(bad), "m", 2, 4), Error);
}

// A weight with a side matrix is one matrix to the runtime: kernels::matmul (every storage
// path: f32, a block type with integer dots, the exact path) and Tensor::to_f32 both include S.
TEST(Outliers, TensorWithSideMatrixMultipliesAsTheSum) {
  const int64_t rows = 48, cols = 256, n_tok = 3;
  auto w = outlier_matrix(rows, cols, 9);
  const auto w0 = w;
  auto s = std::make_shared<const CsrF16>(split_outliers(w.data(), rows, cols, 0.02));
  ASSERT_GT(s->nnz(), 0);
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(size_t(n_tok * cols));
  for (auto& v : x) v = nd(rng);
  for (DType type : {DType::F32, DType::Q8_0, DType::Q4_0}) {
    for (bool exact : {false, true}) {
      SCOPED_TRACE(std::string(type_name(type)) + (exact ? " exact" : ""));
      const kernels::ExactScope mode(exact);
      Tensor t = Tensor::from_f32("w", {cols, rows}, w.data(), type);
      const std::vector<float> dense = t.to_f32();  // before the side matrix is attached
      t.outliers = s;
      const std::vector<float> full = t.to_f32();
      std::vector<float> y(size_t(n_tok * rows)), y_dense(size_t(n_tok * rows));
      kernels::matmul(t, x.data(), cols, n_tok, y.data(), rows);
      Tensor plain = t;
      plain.outliers.reset();
      kernels::matmul(plain, x.data(), cols, n_tok, y_dense.data(), rows);
      double moved = 0;
      for (int64_t i = 0; i < rows * cols; ++i) {
        EXPECT_FLOAT_EQ(full[size_t(i)], dense[size_t(i)] + dense_of(*s)[size_t(i)]) << i;
        if (type == DType::F32) {
          EXPECT_NEAR(full[size_t(i)], w0[size_t(i)], 1e-3f * std::fabs(w0[size_t(i)]) + 1e-7f);
        }
      }
      for (int64_t tk = 0; tk < n_tok; ++tk)
        for (int64_t i = 0; i < rows; ++i) {
          double side = 0;  // S·x, and the full product in float64 for the f32 case
          for (int32_t e = s->row_ptr[size_t(i)]; e < s->row_ptr[size_t(i) + 1]; ++e)
            side += double(f16_to_f32(s->val[size_t(e)])) * x[size_t(tk * cols + s->col[size_t(e)])];
          moved += std::fabs(side);
          EXPECT_NEAR(y[size_t(tk * rows + i)], y_dense[size_t(tk * rows + i)] + side, 1e-4) << tk << "," << i;
        }
      EXPECT_GT(moved, 1.0);  // the side matrix carries real weight
    }
  }
}
