// Sparse formats (N:M and bitmap, core/dtype_sparse.h): type ids round-trip, rows decode to the
// f16-rounded dense row for every format incl. ragged lengths, encoders refuse rows that do not
// fit with an error naming the columns, and tensors survive a GGUF write/read.
#include "core/dtype_custom.h"
#include "core/dtype_sparse.h"
#include "core/error.h"
#include "io/gguf.h"
#include "model/model.h"
#include "test_util.h"
#include <cstring>
#include <random>

using namespace slimlm;

namespace {
// A row with at most `keep` nonzeros per group of m (random positions and count), or, with m = 0,
// unstructured zeros at rate `zero_rate`.
std::vector<float> sparse_row(int64_t n, int keep, int m, double zero_rate, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<float> x(size_t(n), 0.f);
  if (m == 0) {
    for (auto& v : x) v = u(rng) < zero_rate ? 0.f : d(rng);
    return x;
  }
  for (int64_t g0 = 0; g0 < n; g0 += m) {
    const int len = int(std::min<int64_t>(m, n - g0));
    std::vector<int> pos(static_cast<size_t>(len));
    for (int i = 0; i < len; ++i) pos[size_t(i)] = i;
    std::shuffle(pos.begin(), pos.end(), rng);
    const int k = int(rng() % uint32_t(keep + 1));  // 0..keep nonzeros: exercises padding
    for (int i = 0; i < std::min(k, len); ++i) x[size_t(g0 + pos[size_t(i)])] = d(rng);
  }
  return x;
}
std::vector<float> f16_rounded(std::vector<float> x) {
  for (auto& v : x) v = f16_to_f32(f32_to_f16(v));
  return x;
}
}  // namespace

TEST(SparseFormat, TypeIdsRoundTrip) {
  for (auto [n, m] : std::vector<std::pair<int, int>>{{2, 4}, {4, 8}, {1, 4}, {1, 2}, {8, 16}}) {
    const DType t = nm_type(n, m);
    ASSERT_TRUE(valid_custom_id(uint32_t(t)));
    const CustomLayout l = custom_layout(t);
    EXPECT_EQ(l.kind, CustomKind::NM);
    EXPECT_EQ(l.keep, n);
    EXPECT_EQ(l.group, m);
    EXPECT_EQ(custom_type(l), t);
    EXPECT_EQ(type_name(t), "nm" + std::to_string(n) + ":" + std::to_string(m));
    EXPECT_TRUE(is_sparse(t));
  }
  const DType b = bitmap_type(320);
  EXPECT_EQ(custom_layout(b).cap, 320);
  EXPECT_EQ(custom_type(custom_layout(b)), b);
  EXPECT_EQ(type_name(b), "bm320");
  EXPECT_FALSE(is_sparse(custom_type({CustomKind::Uniform, 4, false, 128})));
  EXPECT_THROW(nm_type(4, 4), Error);
  EXPECT_THROW(nm_type(2, 17), Error);
  EXPECT_THROW(bitmap_type(0), Error);
  EXPECT_FALSE(valid_custom_id(0x80000000u | 4u << 28 | 4u << 8 | 4u));  // 4:4
  EXPECT_FALSE(valid_custom_id(0x80000000u | 5u << 28));                  // bitmap with no slots
}

TEST(SparseFormat, RowBytes) {
  // 2:4 f16: per 4 weights 2 values (4 bytes) + 4 index bits = 1.125 bytes per weight.
  EXPECT_EQ(row_bytes(nm_type(2, 4), 576), size_t(576 / 4 * 4 + 576 / 8));
  EXPECT_EQ(row_bytes(nm_type(4, 8), 64), size_t(8 * 8 + (8 * 4 * 3 + 7) / 8));
  EXPECT_EQ(row_bytes(nm_type(2, 4), 5), size_t(2 * 4 + 1));  // two groups, the last of length 1
  EXPECT_EQ(row_bytes(bitmap_type(10), 17), size_t(3 + 20));
}

TEST(SparseFormat, RoundTripEveryFormatRaggedRows) {
  for (int64_t n : {1, 2, 3, 4, 5, 7, 15, 16, 17, 31, 33, 64, 100, 173}) {
    for (auto [keep, m] : std::vector<std::pair<int, int>>{{2, 4}, {4, 8}, {1, 4}, {3, 16}}) {
      SCOPED_TRACE(std::to_string(keep) + ":" + std::to_string(m) + " n=" + std::to_string(n));
      const auto x = sparse_row(n, keep, m, 0, uint32_t(n * 7 + m));
      const DType t = nm_type(keep, m);
      std::vector<uint8_t> buf(row_bytes(t, n));
      sparse_row_from_f32(custom_layout(t), x.data(), buf.data(), n);
      std::vector<float> y(size_t(n), -7.f);
      row_to_f32(t, buf.data(), y.data(), n);
      EXPECT_EQ(y, f16_rounded(x));
    }
    for (double zr : {0.0, 0.5, 0.9, 1.0}) {
      SCOPED_TRACE("bitmap n=" + std::to_string(n) + " zeros " + std::to_string(zr));
      const auto x = sparse_row(n, 0, 0, zr, uint32_t(n * 3 + int(zr * 10)));
      const int64_t nz = count_nonzeros(x.data(), n);
      for (int64_t cap : {std::max<int64_t>(1, nz), nz + 9}) {
        const DType t = bitmap_type(cap);
        std::vector<uint8_t> buf(row_bytes(t, n));
        sparse_row_from_f32(custom_layout(t), x.data(), buf.data(), n);
        std::vector<float> y(size_t(n), -7.f);
        row_to_f32(t, buf.data(), y.data(), n);
        EXPECT_EQ(y, f16_rounded(x));
      }
    }
  }
}

TEST(SparseFormat, EncoderRefusesRowsThatDoNotFit) {
  std::vector<float> x(12, 0.f);
  x[4] = 1.f; x[6] = -2.f; x[7] = 3.f;  // the group at columns 4..7 has 3 nonzeros
  std::vector<uint8_t> buf(row_bytes(nm_type(2, 4), 12));
  try {
    sparse_row_from_f32(custom_layout(nm_type(2, 4)), x.data(), buf.data(), 12);
    FAIL() << "3 nonzeros in a group of 4 accepted by the 2:4 encoder";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("2:4"), std::string::npos) << msg;
    EXPECT_NE(msg.find("columns 4..7"), std::string::npos) << msg;
    EXPECT_NE(msg.find("3 nonzeros"), std::string::npos) << msg;
  }
  // 4:8 accepts the same row; a bitmap with too few slots refuses it.
  std::vector<uint8_t> b48(row_bytes(nm_type(4, 8), 12));
  EXPECT_NO_THROW(sparse_row_from_f32(custom_layout(nm_type(4, 8)), x.data(), b48.data(), 12));
  std::vector<uint8_t> bb(row_bytes(bitmap_type(2), 12));
  EXPECT_THROW(sparse_row_from_f32(custom_layout(bitmap_type(2)), x.data(), bb.data(), 12), Error);
  // Tensor-level encoding names the tensor and the row.
  std::vector<float> w(24, 0.f);
  w[12 + 0] = 1; w[12 + 1] = 1; w[12 + 2] = 1;
  try {
    Tensor::from_f32("blk.0.ffn_up.weight", {12, 2}, w.data(), nm_type(2, 4));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'blk.0.ffn_up.weight' row 1"), std::string::npos) << e.what();
  }
}

TEST(SparseFormat, GgufRoundTrip) {
  const int64_t cols = 37, rows = 5;
  std::vector<float> w;
  for (int64_t r = 0; r < rows; ++r) {
    const auto x = sparse_row(cols, 2, 4, 0, uint32_t(r + 1));
    w.insert(w.end(), x.begin(), x.end());
  }
  const Tensor a = Tensor::from_f32("a", {cols, rows}, w.data(), nm_type(2, 4));
  const Tensor b = Tensor::from_f32("b", {cols, rows}, w.data(), bitmap_type(40));
  const std::string path = test::temp_path("sparse.gguf");
  gguf::Writer wr;
  wr.set("general.architecture", gguf::Value::of_str("llama"));
  wr.add_tensor("a", a.type, a.ne, a.data, a.nbytes);
  wr.add_tensor("b", b.type, b.ne, b.data, b.nbytes);
  wr.write(path);
  auto f = gguf::File::open(path);
  for (const Tensor* t : {&a, &b}) {
    const gguf::TensorInfo* ti = f->tensor(t->name);
    ASSERT_NE(ti, nullptr);
    EXPECT_EQ(ti->type, t->type);
    ASSERT_EQ(ti->nbytes, t->nbytes);
    EXPECT_EQ(std::memcmp(ti->data, t->data, t->nbytes), 0);
    EXPECT_EQ(t->to_f32(), f16_rounded(w));
  }
  std::filesystem::remove(path);
}
