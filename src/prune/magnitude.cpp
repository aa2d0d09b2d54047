// Magnitude pruning — the classic baseline (Han et al., "Learning both Weights and Connections
// for Efficient Neural Networks", NeurIPS 2015; for LLMs the baseline of SparseGPT and Wanda):
//   S_ij = |W_ij|,  prune the smallest S_ij per layer, or over all block linears of the model
//   at once (global: one threshold t, W_ij = 0 where |W_ij| < t).
// The global threshold is found by a radix select on the bit patterns of |w| (monotone for
// non-negative floats), streaming over the tensors instead of holding every score at once.
#include "core/error.h"
#include "prune/prune.h"
#include <cmath>
#include <cstring>

namespace slimlm::prune {

std::vector<float> magnitude_scores(const float* w, int64_t n) {
  std::vector<float> s(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) s[size_t(i)] = std::fabs(w[i]);
  return s;
}

namespace {
uint32_t abs_bits(float x) {
  x = std::fabs(x);
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}

// Calls fn(tensor index, |w| bits of each element) over every tensor, dequantizing one at a time.
template <class Fn>
void each_abs_bits(const std::vector<const Tensor*>& ts, Fn&& fn) {
  for (size_t i = 0; i < ts.size(); ++i) {
    const std::vector<float> w = ts[i]->to_f32();
    for (float x : w) fn(i, abs_bits(x));
  }
}
}  // namespace

GlobalThreshold global_magnitude_threshold(const std::vector<const Tensor*>& ts, double sparsity) {
  int64_t total = 0;
  for (const Tensor* t : ts) total += t->nelements();
  const int64_t count = prune_count(sparsity, total);
  GlobalThreshold g;
  g.ties.assign(ts.size(), 0);
  if (count == 0) { g.t = -1.f; return g; }  // nothing is below -1 and nothing equals it
  // The count-th smallest |w| (1-based): high 16 bits first, then the low 16 within that bucket.
  std::vector<int64_t> hist(65536, 0);
  each_abs_bits(ts, [&](size_t, uint32_t u) { ++hist[u >> 16]; });
  int64_t before = 0;
  uint32_t hi = 0;
  while (before + hist[hi] < count) before += hist[hi++];
  std::fill(hist.begin(), hist.end(), 0);
  each_abs_bits(ts, [&](size_t, uint32_t u) { if ((u >> 16) == hi) ++hist[u & 0xffff]; });
  uint32_t lo = 0;
  while (before + hist[lo] < count) before += hist[lo++];
  const uint32_t tb = (hi << 16) | lo;
  std::memcpy(&g.t, &tb, 4);
  // `before` weights are below t; the rest of the count are ties at t, taken in tensor order.
  int64_t need = count - before;
  std::vector<int64_t> eq(ts.size(), 0);
  each_abs_bits(ts, [&](size_t i, uint32_t u) { eq[i] += u == tb; });
  for (size_t i = 0; i < ts.size(); ++i) { g.ties[i] = std::min(need, eq[i]); need -= g.ties[i]; }
  return g;
}

}  // namespace slimlm::prune
