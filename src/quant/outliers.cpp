#include "quant/outliers.h"
#include "core/dtype.h"
#include "core/error.h"
#include <algorithm>
#include <climits>
#include <cmath>
#include <functional>

namespace slimlm::quant {

int64_t outlier_count(int64_t total, double frac) {
  if (!(frac >= 0 && frac <= 1)) fail("outlier fraction ", frac, " is out of range (0..1)");
  return std::min(total, int64_t(std::floor(frac * double(total) * (1 + 1e-12))));
}

namespace {
// Builds the CSR of the entries at sorted flat indices `at` (row-major) and leaves the f16
// residual in w there.
CsrF16 extract(float* w, int64_t rows, int64_t cols, const std::vector<int64_t>& at) {
  if (rows > INT32_MAX || cols > INT32_MAX || int64_t(at.size()) > INT32_MAX)
    fail("sparse matrix: ", rows, " x ", cols, " with ", at.size(), " entries does not fit 32-bit indices");
  CsrF16 s;
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

CsrF16 split_outliers(float* w, int64_t rows, int64_t cols, double frac, OutlierScore score, const float* channel_stats) {
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

CsrF16 split_columns(float* w, int64_t rows, int64_t cols, const std::vector<int32_t>& channels) {
  std::vector<int32_t> ch(channels);
  std::sort(ch.begin(), ch.end());
  ch.erase(std::unique(ch.begin(), ch.end()), ch.end());
  for (int32_t c : ch) if (c < 0 || c >= cols) fail("outlier channel ", c, " is out of range (cols ", cols, ")");
  std::vector<int64_t> at;
  at.reserve(size_t(rows) * ch.size());
  for (int64_t i = 0; i < rows; ++i) for (int32_t c : ch) at.push_back(i * cols + c);
  return extract(w, rows, cols, at);
}

}  // namespace slimlm::quant
