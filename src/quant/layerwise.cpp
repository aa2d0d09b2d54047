#include "quant/layerwise.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/text.h"
#include "kernels/kernels.h"
#include "kernels/qdot.h"
#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

namespace slimlm::quant {

std::vector<Tensor*> site_weights(Block& b, LinearSite s) {
  switch (s) {
    case LinearSite::AttnIn: return {&b.wq, &b.wk, &b.wv};
    case LinearSite::AttnOut: return {&b.wo};
    case LinearSite::FfnIn: return {&b.w_gate, &b.w_up};
    case LinearSite::FfnDown: return {&b.w_down};
  }
  return {};
}

namespace {
void init_stats(SiteStats& st, int64_t k, const Wants& w) {
  st = SiteStats{};
  st.k = k;
  st.sum_sq.assign(size_t(k), 0.0);
  st.sum.assign(size_t(k), 0.0);
  st.sum_abs.assign(size_t(k), 0.0);
  st.absmax.assign(size_t(k), 0.f);
  if (w.hessian) st.xtx.assign(size_t(k * k), 0.0);
  if (w.sample_tokens > 0) st.sample.reserve(size_t(w.sample_tokens * k));
}

// Adds n rows of x (stride ld) to the stats; `stride` keeps every stride-th token as a sample.
void accumulate(SiteStats& st, const float* x, int64_t n, int64_t ld, const Wants& w, int64_t stride) {
  const int64_t k = st.k;
  const bool par = n * k > 65536;
#pragma omp parallel for schedule(static) if (par)
  for (int64_t j = 0; j < k; ++j) {  // per channel, tokens in order (same sums at any thread count)
    double sq = 0, sm = 0, sa = 0;
    float mx = st.absmax[size_t(j)];
    for (int64_t t = 0; t < n; ++t) {
      const float f = x[t * ld + j];
      const double v = f;
      sq += v * v; sm += v; sa += std::fabs(v);
      mx = std::max(mx, std::fabs(f));
    }
    st.sum_sq[size_t(j)] += sq; st.sum[size_t(j)] += sm; st.sum_abs[size_t(j)] += sa;
    st.absmax[size_t(j)] = mx;
  }
  for (int64_t t = 0; t < n; ++t)
    if (w.sample_tokens > 0 && st.n_sample < w.sample_tokens && (st.count + t) % stride == 0) {
      st.sample.insert(st.sample.end(), x + t * ld, x + t * ld + k);
      ++st.n_sample;
    }
  if (w.hessian) {
    // XᵀX of this batch, upper triangle only (mirror() completes it), with the f32 GEMM: row
    // block [r0, r1) of Xᵀ against columns 0..r1-1; summed into double.
    std::vector<float> xt_buf(size_t(k * n)), h_buf(size_t(k * k), 0.f);
    float *xt = xt_buf.data(), *h = h_buf.data();
#pragma omp parallel for schedule(static) if (par)
    for (int64_t j = 0; j < k; ++j)
      for (int64_t t = 0; t < n; ++t) xt[j * n + t] = x[t * ld + j];
    constexpr int64_t kBlock = 128;
    for (int64_t r0 = 0; r0 < k; r0 += kBlock) {
      const int64_t r1 = std::min(k, r0 + kBlock);
      kernels::matmul_f32_rows(xt + r0 * n, r1 - r0, n, xt, n, r1, h + r0, k);
    }
#pragma omp parallel for schedule(static) if (par)
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = i; j < k; ++j) st.xtx[size_t(i * k + j)] += double(h[i * k + j]);
  }
  st.count += n;
}

void mirror(SiteStats& st) {  // exact symmetry (the kernel's two triangles may differ in the last bit)
  if (st.xtx.empty()) return;
  for (int64_t i = 0; i < st.k; ++i)
    for (int64_t j = 0; j < i; ++j) st.xtx[size_t(i * st.k + j)] = st.xtx[size_t(j * st.k + i)];
}
}  // namespace

StatsCollector::StatsCollector(Session& s, const Wants& w, int64_t total_tokens)
    : s_(s), w_(w), stride_(w.sample_tokens > 0 ? std::max<int64_t>(1, total_tokens / w.sample_tokens) : 1) {
  const int64_t L = s.model().hp.n_layer;
  layers_.resize(size_t(L));
  open_.assign(size_t(L), 0);
  s_.set_observer([this](int64_t layer, LinearSite site, const float* x, int64_t n, int64_t ld) {
    if (open_[size_t(layer)]) accumulate(layers_[size_t(layer)][size_t(site)], x, n, ld, w_, stride_);
  });
}

StatsCollector::~StatsCollector() { s_.set_observer(nullptr); }

void StatsCollector::begin(int64_t l) {
  const HParams& hp = s_.model().hp;
  const int64_t site_k[kLinearSites] = {hp.n_embd, hp.n_head_at(l) * hp.head_dim, hp.n_embd, hp.n_ff_at(l)};
  for (int s = 0; s < kLinearSites; ++s) init_stats(layers_[size_t(l)][size_t(s)], site_k[s], w_);
  open_[size_t(l)] = 1;
}

BlockStats StatsCollector::finish(int64_t l) {
  open_[size_t(l)] = 0;
  BlockStats out = std::move(layers_[size_t(l)]);
  for (auto& st : out) mirror(st);
  return out;
}

RunInfo run_layerwise(Model& m, const std::vector<std::vector<int32_t>>& calib, const Wants& wants,
                      const CompressFn& compress, bool progress) {
  const auto t0 = std::chrono::steady_clock::now();
  const HParams& hp = m.hp;
  const int64_t E = hp.n_embd;
  int64_t len = 0, total = 0;
  for (const auto& s : calib) { len = std::max<int64_t>(len, int64_t(s.size())); total += int64_t(s.size()); }
  // Activations of every calibration sequence: the residual stream entering the current block.
  std::vector<std::vector<float>> xs;
  if (wants.stats) {
    if (calib.empty()) fail("calibration needs at least one sequence");
    for (const auto& s : calib) {
      xs.emplace_back(s.size() * size_t(E));
      embed_tokens(m, s.data(), int64_t(s.size()), xs.back().data());
    }
  }
  Session sess(m, std::max<int64_t>(len, 1));
  // Calibration activations on the exact path (dequantized weights, f32): for long batches it is
  // also the faster one. The previous mode comes back when this function returns.
  const kernels::ExactScope exact(true);
  std::optional<StatsCollector> collect;
  if (wants.stats) collect.emplace(sess, wants, total);
  Progress bar("compress", hp.n_layer, progress);
  std::vector<float> tmp;
  for (int64_t l = 0; l < hp.n_layer; ++l) {
    BlockStats stats;
    if (wants.stats) {
      collect->begin(l);
      for (auto& x : xs) {
        tmp = x;
        sess.run_block(l, tmp.data(), int64_t(x.size()) / E);
      }
      stats = collect->finish(l);
    }
    compress(m, l, stats);
    if (wants.stats)
      for (auto& x : xs) sess.run_block(l, x.data(), int64_t(x.size()) / E);
    bar.update(l + 1, cat("block ", l + 1, "/", hp.n_layer));
  }
  bar.finish();
  RunInfo info;
  info.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  info.tokens = wants.stats ? total : 0;
  return info;
}

}  // namespace slimlm::quant
