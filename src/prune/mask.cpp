#include "prune/mask.h"
#include "core/error.h"
#include <algorithm>
#include <cmath>
#include <numeric>

namespace slimlm::prune {

int64_t prune_count(double sparsity, int64_t n) {
  return std::min<int64_t>(n, int64_t(std::floor(sparsity * double(n) + 1e-9)));
}

void prune_lowest(const float* score, int64_t n, int64_t count, uint8_t* keep) {
  count = std::clamp<int64_t>(count, 0, n);
  if (count == 0) return;
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  // A strict total order: (score, index). NaN scores sort first (pruned) rather than breaking the order.
  auto less = [score](int64_t a, int64_t b) {
    const float sa = std::isnan(score[a]) ? -INFINITY : score[a], sb = std::isnan(score[b]) ? -INFINITY : score[b];
    return sa < sb || (sa == sb && a < b);
  };
  if (count < n) std::nth_element(idx.begin(), idx.begin() + (count - 1), idx.end(), less);
  // After nth_element the first `count` entries are exactly the `count` smallest under `less`.
  for (int64_t i = 0; i < count; ++i) keep[idx[size_t(i)]] = 0;
}

Mask mask_per_row(const float* score, int64_t rows, int64_t cols, double sparsity) {
  Mask keep(size_t(rows * cols), 1);
  const int64_t count = prune_count(sparsity, cols);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) prune_lowest(score + r * cols, cols, count, keep.data() + r * cols);
  return keep;
}

Mask mask_per_layer(const float* score, int64_t rows, int64_t cols, double sparsity) {
  Mask keep(size_t(rows * cols), 1);
  prune_lowest(score, rows * cols, prune_count(sparsity, rows * cols), keep.data());
  return keep;
}

Mask mask_nm(const float* score, int64_t rows, int64_t cols, int n, int m) {
  if (n <= 0 || m <= 0 || n > m) fail("N:M sparsity needs 0 < N <= M, not ", n, ":", m);
  Mask keep(size_t(rows * cols), 1);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; c += m) {
      const int64_t len = std::min<int64_t>(m, cols - c);
      prune_lowest(score + r * cols + c, len, len - std::min<int64_t>(n, len), keep.data() + r * cols + c);
    }
  return keep;
}

Mask mask_threshold(const float* score, int64_t n, float t, int64_t ties) {
  Mask keep(size_t(n), 1);
  for (int64_t i = 0; i < n; ++i)
    if (score[i] < t || (score[i] == t && ties-- > 0)) keep[size_t(i)] = 0;
  return keep;
}

void apply_mask(float* w, const Mask& keep) {
  for (size_t i = 0; i < keep.size(); ++i)
    if (!keep[i]) w[i] = 0.f;
}

int64_t count_zeros(const float* w, int64_t n) {
  int64_t z = 0;
  for (int64_t i = 0; i < n; ++i) z += w[i] == 0.f;
  return z;
}

bool satisfies_nm(const float* w, int64_t rows, int64_t cols, int n, int m) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; c += m) {
      int nz = 0;
      for (int64_t j = c; j < std::min<int64_t>(cols, c + m); ++j) nz += w[r * cols + j] != 0.f;
      if (nz > n) return false;
    }
  return true;
}

}  // namespace slimlm::prune

#include "prune/prune.h"

namespace slimlm::prune {

Mask select_mask(const float* score, int64_t rows, int64_t cols, const Pattern& p, Group g) {
  if (p.nm()) return mask_nm(score, rows, cols, p.n, p.m);
  return g == Group::Row ? mask_per_row(score, rows, cols, p.sparsity) : mask_per_layer(score, rows, cols, p.sparsity);
}

}  // namespace slimlm::prune
