#include "quant/nonuniform.h"
#include "core/error.h"
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace slimlm::quant {

namespace {

// Midpoints between consecutive sorted levels; the nearest level of t is the number of midpoints
// strictly below t (a tie goes to the lower level).
std::vector<double> midpoints(const std::vector<float>& levels) {
  std::vector<double> m;
  for (size_t k = 0; k + 1 < levels.size(); ++k) m.push_back(0.5 * (double(levels[k]) + double(levels[k + 1])));
  return m;
}
int nearest(const std::vector<double>& mids, double t) {
  return int(std::lower_bound(mids.begin(), mids.end(), t) - mids.begin());
}

class Nf : public Codec {
 public:
  Nf(int bits, int64_t group)
      : l_{CustomKind::Grid, bits, false, group}, type_(custom_type(l_)), grid_(nf_grid(bits)), mids_(midpoints(grid_)) {
    zero_code_ = int(std::find(grid_.begin(), grid_.end(), 0.0f) - grid_.begin());
  }
  DType type() const override { return type_; }
  int64_t group() const override { return l_.group; }
  GroupFit fit(const float* x, int64_t n, float clip) const override {
    float m = 0;
    for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
    return GroupFit{f16_round(m * clip), 0.0f};
  }
  int code(float x, const GroupFit& f) const override {
    if (f.scale == 0) return zero_code_;
    return nearest(mids_, double(x) / double(f.scale));
  }
  float value(int q, const GroupFit& f) const override { return f.scale * grid_[size_t(q)]; }
  void encode_row(const uint8_t* codes, const GroupFit* fits, int64_t n, uint8_t* dst) const override {
    const int64_t ng = (n + l_.group - 1) / l_.group;
    for (int64_t g = 0; g < ng; ++g) put_f16(dst + 2 * g, fits[g].scale);
    pack_codes(codes, n, l_.bits, dst + 2 * ng);
  }
 private:
  CustomLayout l_;
  DType type_;
  const std::vector<float>& grid_;
  std::vector<double> mids_;
  int zero_code_ = 0;
};

class Lut : public Codec {
 public:
  Lut(int bits, const std::vector<float>& centroids) : bits_(bits), type_(custom_type({CustomKind::Codebook, bits, false, 0})) {
    if (centroids.size() != size_t(1) << bits) fail("codebook: ", centroids.size(), " centroids for ", bits, " bits");
    for (float c : centroids) lut_.push_back(f16_round(c));
    std::sort(lut_.begin(), lut_.end());
    mids_ = midpoints(lut_);
  }
  DType type() const override { return type_; }
  int64_t group() const override { return int64_t(1) << 30; }
  GroupFit fit(const float*, int64_t, float) const override { return {}; }
  int code(float x, const GroupFit&) const override { return nearest(mids_, double(x)); }
  float value(int q, const GroupFit&) const override { return lut_[size_t(q)]; }
  void encode_row(const uint8_t* codes, const GroupFit*, int64_t n, uint8_t* dst) const override {
    for (size_t c = 0; c < lut_.size(); ++c) put_f16(dst + 2 * c, lut_[c]);
    pack_codes(codes, n, bits_, dst + 2 * lut_.size());
  }
 private:
  int bits_;
  DType type_;
  std::vector<float> lut_;
  std::vector<double> mids_;
};

void check_bits(int bits) {
  if (bits < 2 || bits > 8) fail("codebook: ", bits, " bits is out of range (2..8)");
}

// Unit weights for nullptr or all-zero sensitivities; an Error for negative or non-finite ones.
std::vector<double> sensitivities(const float* weight, int64_t n) {
  std::vector<double> s(size_t(n), 1.0);
  if (!weight) return s;
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!(weight[i] >= 0) || !std::isfinite(weight[i])) fail("k-means: sensitivity ", weight[i], " at ", i, " is not >= 0");
    total += weight[i];
  }
  if (total > 0) for (int64_t i = 0; i < n; ++i) s[size_t(i)] = weight[i];
  return s;
}

// The row sorted by value (ties by index) with its weights.
struct Sorted {
  std::vector<int64_t> order;
  std::vector<double> v, s;
};
Sorted sort_row(const float* w, const std::vector<double>& s, int64_t n) {
  Sorted r;
  r.order.resize(size_t(n));
  std::iota(r.order.begin(), r.order.end(), int64_t(0));
  std::stable_sort(r.order.begin(), r.order.end(), [&](int64_t a, int64_t b) { return w[a] < w[b]; });
  for (int64_t i : r.order) { r.v.push_back(w[i]); r.s.push_back(s[size_t(i)]); }
  return r;
}

// Prefix sums of s, s·v, s·v² over the sorted row (double) and the weighted SSE of a run.
struct Prefix {
  std::vector<double> s0, s1, s2;
  explicit Prefix(const Sorted& r) : s0(r.v.size() + 1, 0.0), s1(s0), s2(s0) {
    for (size_t i = 0; i < r.v.size(); ++i) {
      s0[i + 1] = s0[i] + r.s[i];
      s1[i + 1] = s1[i] + r.s[i] * r.v[i];
      s2[i + 1] = s2[i] + r.s[i] * r.v[i] * r.v[i];
    }
  }
  double cost(size_t a, size_t b) const {  // Σ s (v − mean)² over [a, b) = Σ s v² − (Σ s v)² / Σ s
    const double w = s0[b] - s0[a];
    return w > 0 ? std::max(0.0, s2[b] - s2[a] - (s1[b] - s1[a]) * (s1[b] - s1[a]) / w) : 0.0;
  }
};

// One DP layer: cur[i] = min_{j <= i} prev[j] + cost(j, i) for i in [lo, hi], the best j known to
// lie in [jlo, jhi] (monotone split points), recorded in arg.
void dp_layer(const Prefix& p, const std::vector<double>& prev, std::vector<double>& cur, std::vector<int32_t>& arg,
              int64_t lo, int64_t hi, int64_t jlo, int64_t jhi) {
  if (lo > hi) return;
  const int64_t mid = (lo + hi) / 2;
  double best = INFINITY;
  int64_t bj = jlo;
  for (int64_t j = jlo; j <= std::min(mid, jhi); ++j) {
    const double v = prev[size_t(j)] + p.cost(size_t(j), size_t(mid));
    if (v < best) { best = v; bj = j; }
  }
  cur[size_t(mid)] = best;
  arg[size_t(mid)] = int32_t(bj);
  dp_layer(p, prev, cur, arg, lo, mid - 1, jlo, bj);
  dp_layer(p, prev, cur, arg, mid + 1, hi, bj, jhi);
}

// The exact optimum: k contiguous runs of the sorted row (empty runs allowed), centroids = their
// weighted means; an empty run repeats its left neighbour (or right, at the start).
std::vector<float> optimal_centroids(const Sorted& r, int k) {
  const Prefix p(r);
  const int64_t n = int64_t(r.v.size());
  std::vector<std::vector<int32_t>> arg(size_t(k), std::vector<int32_t>(size_t(n) + 1, 0));
  std::vector<double> prev(size_t(n) + 1), cur(size_t(n) + 1);
  for (int64_t i = 0; i <= n; ++i) prev[size_t(i)] = p.cost(0, size_t(i));
  for (int m = 1; m < k; ++m) {
    dp_layer(p, prev, cur, arg[size_t(m)], 0, n, 0, n);
    std::swap(prev, cur);
  }
  std::vector<float> c(size_t(k), NAN);
  int64_t i = n;
  for (int m = k - 1; m >= 0; --m) {
    const int64_t j = m > 0 ? arg[size_t(m)][size_t(i)] : 0;
    const double w = p.s0[size_t(i)] - p.s0[size_t(j)];
    if (i > j) c[size_t(m)] = float(w > 0 ? (p.s1[size_t(i)] - p.s1[size_t(j)]) / w : r.v[size_t(j)]);
    i = j;
  }
  for (int m = 1; m < k; ++m) if (std::isnan(c[size_t(m)])) c[size_t(m)] = c[size_t(m) - 1];
  for (int m = k - 2; m >= 0; --m) if (std::isnan(c[size_t(m)])) c[size_t(m)] = c[size_t(m) + 1];
  std::sort(c.begin(), c.end());
  return c;
}

std::vector<float> weighted_quantiles(const Sorted& r, int k) {
  const double total = std::accumulate(r.s.begin(), r.s.end(), 0.0);
  std::vector<float> c(static_cast<size_t>(k));
  double cum = 0;
  size_t i = 0;
  for (int m = 0; m < k; ++m) {
    const double target = (double(m) + 0.5) / double(k) * total;
    while (i + 1 < r.v.size() && cum + r.s[i] < target) cum += r.s[i++];
    c[size_t(m)] = float(r.v[i]);
  }
  return c;
}
}  // namespace

std::unique_ptr<Codec> nf_codec(int bits, int64_t group) { return std::make_unique<Nf>(bits, group); }

std::unique_ptr<Codec> codebook_codec(int bits, const std::vector<float>& centroids) {
  check_bits(bits);
  return std::make_unique<Lut>(bits, centroids);
}

std::vector<float> kmeans_init(const float* w, const float* weight, int64_t n, int bits, KmeansInit init) {
  check_bits(bits);
  if (n <= 0) return std::vector<float>(size_t(1) << bits, 0.0f);
  const Sorted r = sort_row(w, sensitivities(weight, n), n);
  return init == KmeansInit::Optimal ? optimal_centroids(r, 1 << bits) : weighted_quantiles(r, 1 << bits);
}

double codebook_objective(const float* w, const float* weight, int64_t n, const std::vector<float>& centroids) {
  const std::vector<double> s = sensitivities(weight, n), mids = midpoints(centroids);
  double e = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = double(w[i]) - double(centroids[size_t(nearest(mids, w[i]))]);
    e += s[size_t(i)] * d * d;
  }
  return e;
}

KmeansResult kmeans_row(const float* w, const float* weight, int64_t n, int bits, const KmeansOptions& opt) {
  check_bits(bits);
  const int k = 1 << bits;
  KmeansResult res;
  if (n <= 0) { res.centroids.assign(size_t(k), 0.0f); return res; }
  const std::vector<double> s = sensitivities(weight, n);
  const Sorted r = sort_row(w, s, n);
  const Prefix p(r);
  const std::vector<double>&s0 = p.s0, &s1 = p.s1;
  std::vector<float> c = opt.init == KmeansInit::Optimal ? optimal_centroids(r, k) : weighted_quantiles(r, k);
  std::vector<size_t> end(static_cast<size_t>(k)), prev_end;
  for (int it = 0; it < opt.iters; ++it) {
    // Assignment: in 1-D with sorted centroids every cluster is a contiguous run of sorted values.
    const std::vector<double> mids = midpoints(c);
    for (int m = 0; m + 1 < k; ++m)
      end[size_t(m)] = size_t(std::upper_bound(r.v.begin(), r.v.end(), mids[size_t(m)]) - r.v.begin());
    end[size_t(k) - 1] = size_t(n);
    if (end == prev_end) break;
    prev_end = end;
    // Update: each non-empty cluster's centroid moves to its weighted mean.
    std::vector<int> empty;
    std::vector<int> owner(static_cast<size_t>(n));
    size_t b = 0;
    for (int m = 0; m < k; ++m) {
      const size_t e = std::max(b, end[size_t(m)]);
      const double sw = s0[e] - s0[b];
      if (e > b && sw > 0) c[size_t(m)] = float((s1[e] - s1[b]) / sw); else empty.push_back(m);
      for (size_t i = b; i < e; ++i) owner[i] = m;
      b = e;
    }
    // An empty cluster re-seeds on the value with the largest weighted error (ties: the lowest),
    // whose error then drops to 0: the objective still never increases.
    if (!empty.empty()) {
      std::vector<double> err(static_cast<size_t>(n));
      for (size_t i = 0; i < size_t(n); ++i) err[i] = r.s[i] * std::pow(r.v[i] - double(c[size_t(owner[i])]), 2);
      for (int m : empty) {
        const size_t i = size_t(std::max_element(err.begin(), err.end()) - err.begin());
        if (err[i] <= 0) break;
        c[size_t(m)] = float(r.v[i]);
        for (size_t j = 0; j < size_t(n); ++j) if (r.v[j] == r.v[i]) err[j] = 0;
      }
    }
    std::sort(c.begin(), c.end());
  }
  if (opt.f16_centroids) {
    for (float& v : c) v = f16_round(v);
    std::sort(c.begin(), c.end());
  }
  const std::vector<double> mids = midpoints(c);
  res.codes.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) {
    const int q = nearest(mids, w[i]);
    res.codes[size_t(i)] = uint8_t(q);
    const double d = double(w[i]) - double(c[size_t(q)]);
    res.objective += s[size_t(i)] * d * d;
  }
  res.centroids = std::move(c);
  return res;
}

void encode_codebook_row(const KmeansResult& r, int bits, int64_t n, uint8_t* dst) {
  check_bits(bits);
  if (r.centroids.size() != size_t(1) << bits || r.codes.size() != size_t(n))
    fail("codebook row: ", r.centroids.size(), " centroids / ", r.codes.size(), " codes for ", bits, " bits and n=", n);
  for (size_t c = 0; c < r.centroids.size(); ++c) put_f16(dst + 2 * c, r.centroids[c]);
  pack_codes(r.codes.data(), n, bits, dst + 2 * r.centroids.size());
}

std::vector<uint8_t> codebook_quantize_matrix(const float* w, int64_t rows, int64_t n, const float* sensitivity,
                                              int bits, std::vector<float>* deq, const KmeansOptions& opt) {
  check_bits(bits);
  if (sensitivity) sensitivities(sensitivity, n);  // validate once, outside the parallel region
  const size_t rb = row_bytes(custom_type({CustomKind::Codebook, bits, false, 0}), n);
  std::vector<uint8_t> out(rb * size_t(rows));
  if (deq) deq->assign(size_t(rows * n), 0.0f);
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t r = 0; r < rows; ++r) {
    const KmeansResult k = kmeans_row(w + r * n, sensitivity, n, bits, opt);
    encode_codebook_row(k, bits, n, out.data() + size_t(r) * rb);
    if (deq)
      for (int64_t i = 0; i < n; ++i) (*deq)[size_t(r * n + i)] = f16_round(k.centroids[k.codes[size_t(i)]]);
  }
  return out;
}

}  // namespace slimlm::quant
