#include "quant/outliers.h"
#include "core/dtype.h"
#include "core/error.h"
#include <algorithm>
#include <climits>
#include <cmath>
#include <functional>

namespace slimlm::quant {

void Sparse::validate() const {
  if (rows < 0 || cols < 0 || rows > INT32_MAX || cols > INT32_MAX) fail("sparse matrix: bad shape ", rows, " x ", cols);
  if (int64_t(row_ptr.size()) != rows + 1) fail("sparse matrix: ", row_ptr.size(), " row offsets for ", rows, " rows");
  if (row_ptr[0] != 0 || row_ptr.back() != nnz()) fail("sparse matrix: row offsets do not span the ", nnz(), " entries");
  if (val.size() != col.size()) fail("sparse matrix: ", col.size(), " columns but ", val.size(), " values");
  for (int64_t i = 0; i < rows; ++i) {
    const int32_t a = row_ptr[size_t(i)], b = row_ptr[size_t(i) + 1];
    if (b < a || b > nnz()) fail("sparse matrix: row offsets decrease at row ", i);
    for (int32_t k = a; k < b; ++k) {
      const int32_t c = col[size_t(k)];
      if (c < 0 || c >= cols || (k > a && c <= col[size_t(k) - 1]))
        fail("sparse matrix: row ", i, " has column ", c, " out of range or order (cols ", cols, ")");
    }
  }
}

int64_t outlier_count(int64_t total, double frac) {
  if (!(frac >= 0 && frac <= 1)) fail("outlier fraction ", frac, " is out of range (0..1)");
  return std::min(total, int64_t(std::floor(frac * double(total) * (1 + 1e-12))));
}

namespace {
// Builds the CSR of the entries at sorted flat indices `at` (row-major) and leaves the f16
// residual in w there.
Sparse extract(float* w, int64_t rows, int64_t cols, const std::vector<int64_t>& at) {
  if (rows > INT32_MAX || cols > INT32_MAX || int64_t(at.size()) > INT32_MAX)
    fail("sparse matrix: ", rows, " x ", cols, " with ", at.size(), " entries does not fit 32-bit indices");
  Sparse s;
  s.rows = rows; s.cols = cols;
  s.row_ptr.assign(size_t(rows) + 1, 0);
  s.col.reserve(at.size()); s.val.reserve(at.size());
  for (int64_t f : at) {
    const uint16_t h = f32_to_f16(w[f]);
    s.col.push_back(int32_t(f % cols));
    s.val.push_back(h);
    ++s.row_ptr[size_t(f / cols) + 1];
    w[f] -= f16_to_f32(h);
  }
  for (int64_t i = 0; i < rows; ++i) s.row_ptr[size_t(i) + 1] += s.row_ptr[size_t(i)];
  return s;
}

// Flat indices of the k largest scores, ascending; ties at the k-th score go to lower indices.
std::vector<int64_t> top_k(const std::vector<float>& score, int64_t k) {
  std::vector<int64_t> at;
  if (k <= 0) return at;
  float thr;
  {
    std::vector<float> tmp(score);
    std::nth_element(tmp.begin(), tmp.begin() + (k - 1), tmp.end(), std::greater<float>());
    thr = tmp[size_t(k - 1)];
  }
  int64_t above = 0;
  for (float v : score) above += v > thr;
  int64_t ties = k - above;
  at.reserve(size_t(k));
  for (size_t i = 0; i < score.size(); ++i)
    if (score[i] > thr || (score[i] == thr && ties-- > 0)) at.push_back(int64_t(i));
  return at;
}
}  // namespace

Sparse split_outliers(float* w, int64_t rows, int64_t cols, double frac, OutlierScore score, const float* channel_stats) {
  const int64_t total = rows * cols, k = outlier_count(total, frac);
  if (score != OutlierScore::Magnitude && !channel_stats) fail("outlier split: this score needs per-channel statistics");
  std::vector<float> sc(static_cast<size_t>(total));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      const float v = w[i * cols + j];
      if (!std::isfinite(v)) fail("outlier split: non-finite weight at row ", i, ", column ", j);
      const float a = std::fabs(v);
      sc[size_t(i * cols + j)] = score == OutlierScore::Magnitude ? a
                                 : score == OutlierScore::ActNorm ? a * channel_stats[j]
                                                                  : v * v * channel_stats[j];
    }
  return extract(w, rows, cols, top_k(sc, k));
}

std::vector<int32_t> outlier_channels(const float* act_absmax, int64_t cols, float threshold) {
  std::vector<int32_t> out;
  for (int64_t j = 0; j < cols; ++j) if (act_absmax[j] > threshold) out.push_back(int32_t(j));
  return out;
}

Sparse split_columns(float* w, int64_t rows, int64_t cols, const std::vector<int32_t>& channels) {
  std::vector<int32_t> ch(channels);
  std::sort(ch.begin(), ch.end());
  ch.erase(std::unique(ch.begin(), ch.end()), ch.end());
  for (int32_t c : ch) if (c < 0 || c >= cols) fail("outlier channel ", c, " is out of range (cols ", cols, ")");
  std::vector<int64_t> at;
  at.reserve(size_t(rows) * ch.size());
  for (int64_t i = 0; i < rows; ++i) for (int32_t c : ch) at.push_back(i * cols + c);
  return extract(w, rows, cols, at);
}

void apply(const Sparse& s, const float* x, int64_t ldx, int64_t n_tok, float* y, int64_t ldy) {
#pragma omp parallel for schedule(dynamic, 64)
  for (int64_t i = 0; i < s.rows; ++i) {
    const int32_t a = s.row_ptr[size_t(i)], b = s.row_ptr[size_t(i) + 1];
    if (a == b) continue;
    for (int64_t t = 0; t < n_tok; ++t) {
      const float* xt = x + t * ldx;
      float acc = 0;
      for (int32_t k = a; k < b; ++k) acc += f16_to_f32(s.val[size_t(k)]) * xt[s.col[size_t(k)]];
      y[t * ldy + i] += acc;
    }
  }
}

void add_dense(const Sparse& s, float* w) {
  for (int64_t i = 0; i < s.rows; ++i)
    for (int32_t k = s.row_ptr[size_t(i)]; k < s.row_ptr[size_t(i) + 1]; ++k)
      w[i * s.cols + s.col[size_t(k)]] += f16_to_f32(s.val[size_t(k)]);
}

// ---- GGUF storage ---------------------------------------------------------------------------

void add_sparse_tensors(gguf::Writer& w, const std::string& weight, const Sparse& s) {
  s.validate();
  w.add_tensor(weight + ".outl_rowptr", DType::I32, {s.rows + 1}, s.row_ptr.data(), s.row_ptr.size() * 4);
  if (s.nnz() == 0) return;
  w.add_tensor(weight + ".outl_col", DType::I32, {s.nnz()}, s.col.data(), s.col.size() * 4);
  w.add_tensor(weight + ".outl_val", DType::F16, {s.nnz()}, s.val.data(), s.val.size() * 2);
}

namespace {
template <class T>
std::vector<T> read_vector(const gguf::File& f, const std::string& name, DType type) {
  const gguf::TensorInfo* t = f.tensor(name);
  if (!t) fail(f.path(), ": tensor '", name, "' is missing");
  if (t->type != type || t->ne.size() != 1)
    fail(f.path(), ": tensor '", name, "' should be a 1-D ", type_name(type), " tensor, not ", type_name(t->type));
  std::vector<T> v(size_t(t->ne[0]));
  std::copy_n(t->data, v.size() * sizeof(T), reinterpret_cast<uint8_t*>(v.data()));
  return v;
}
}  // namespace

std::optional<Sparse> read_sparse(const gguf::File& f, const std::string& weight, int64_t rows, int64_t cols) {
  if (!f.tensor(weight + ".outl_rowptr")) return std::nullopt;
  Sparse s;
  s.rows = rows; s.cols = cols;
  s.row_ptr = read_vector<int32_t>(f, weight + ".outl_rowptr", DType::I32);
  if (int64_t(s.row_ptr.size()) != rows + 1)
    fail(f.path(), ": tensor '", weight, ".outl_rowptr' has ", s.row_ptr.size(), " entries, the weight has ", rows, " rows");
  if (s.row_ptr.back() != 0) {
    s.col = read_vector<int32_t>(f, weight + ".outl_col", DType::I32);
    s.val = read_vector<uint16_t>(f, weight + ".outl_val", DType::F16);
  }
  try {
    s.validate();
  } catch (const Error& e) {
    fail(f.path(), ": outliers of '", weight, "': ", e.what());
  }
  return s;
}

}  // namespace slimlm::quant
