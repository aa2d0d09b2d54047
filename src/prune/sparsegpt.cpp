// SparseGPT — Frantar & Alistarh, "SparseGPT: Massive Language Models Can Be Accurately Pruned
// in One-Shot", ICML 2023. Optimal Brain Surgeon applied column by column with the lazy-batch
// Cholesky sweep GPTQ uses (quant/obs.h): with H = 2XᵀX + λI and U = chol(H⁻¹) upper, column j
// is fixed to q_j (0 if pruned, w_j or its quantized value if kept) and the error is spread
// over the columns still free (Alg. 1):
//   e = (w_j − q_j) / U_jj,    w_{j+1:} −= e · U_{j, j+1:}
// where U_jj² = [H_F⁻¹]_jj is the OBS inverse-Hessian diagonal over the columns not yet fixed.
// Adaptive mask selection (Sec. 3.3): at the start of every block of B_s = 128 columns the
// weights with the smallest OBS error  ε_ij = w_ij² / [H⁻¹]_jj, taken as w_ij² / U_jj² (the
// paper's code) in that rows x B_s block are pruned (cumulative quota: exactly floor(s·rows·cols)
// over the matrix);
// for N:M, every M columns each row prunes the M−N smallest ε. With a codec the kept weights are
// rounded in the same sweep (Sec. 3.5, joint sparsification and quantization = GPTQ).
#include "core/error.h"
#include "prune/prune.h"
#include "quant/obs.h"
#include <numeric>

namespace slimlm::prune {

SparseGptResult sparsegpt(const float* w, int64_t rows, int64_t cols, const quant::SiteStats& st, const Pattern& p,
                          const SparseGptOptions& o) {
  using quant::MatD;
  using quant::MatF;
  MatD H = quant::layer_hessian(st, cols, "SparseGPT");
  if (p.nm() && (p.n <= 0 || p.n > p.m)) fail("SparseGPT: N:M needs 0 < N <= M, not ", p.n, ":", p.m);
  if (!p.nm() && !(p.sparsity >= 0 && p.sparsity < 1)) fail("SparseGPT: sparsity must be in [0, 1), not ", p.sparsity);
  if (o.fixed && int64_t(o.fixed->size()) != rows * cols) fail("SparseGPT: the fixed mask does not match ", rows, " x ", cols);
  const quant::Codec* c = o.codec;
  if (c && !c->tail_ok() && cols % c->group() != 0) fail(c->name(), " needs rows that are a multiple of ", c->group(), ", not ", cols);

  SparseGptResult res;
  MatF W = Eigen::Map<const MatF>(w, rows, cols);
  res.dead = quant::drop_dead_columns(H, W);
  const MatF U = quant::inverse_hessian_factor(H, o.damp, "SparseGPT");
  res.keep = o.fixed ? *o.fixed : Mask(size_t(rows * cols), 1);
  res.w.assign(size_t(rows * cols), 0.f);
  const int64_t G = c ? c->group() : 1, M = p.nm() ? p.m : 1;
  if (c) {
    res.q.rows = rows; res.q.cols = cols; res.q.r.resize(size_t(rows));
    for (auto& r : res.q.r) { r.codes.assign(size_t(cols), 0); r.deq.assign(size_t(cols), 0.f); r.fits.resize(size_t((cols + G - 1) / G)); }
  }
  // Batches hold whole quantization groups and whole N:M groups.
  const int64_t L = std::lcm(G, M);
  const int64_t B = std::max<int64_t>(1, o.block / L) * L;

  auto err_score = [&](const float* wr, int64_t j) { const double d = U(j, j); return float(double(wr[j]) * wr[j] / (d * d)); };
  const int64_t total_pruned = p.nm() ? 0 : prune_count(p.sparsity, rows * cols);
  auto choose_block = [&](int64_t i1, int64_t i2) {  // unstructured: the block's share of the quota
    if (o.fixed || p.nm()) return;
    const int64_t nb = i2 - i1, quota = total_pruned * i2 / cols - total_pruned * i1 / cols;
    std::vector<float> s(static_cast<size_t>(rows * nb));
    Mask keep(size_t(rows * nb), 1);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = i1; j < i2; ++j) s[size_t(r * nb + j - i1)] = err_score(W.data() + r * cols, j);
    prune_lowest(s.data(), rows * nb, quota, keep.data());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = i1; j < i2; ++j) res.keep[size_t(r * cols + j)] = keep[size_t(r * nb + j - i1)];
  };
  auto fix = [&](int64_t r, int64_t i, const float* wr) {
    uint8_t* keep = res.keep.data() + r * cols;
    if (!o.fixed && p.nm() && i % M == 0) {  // N:M: this row's next M columns, as updated so far
      const int64_t len = std::min(M, cols - i);
      float s[64];
      std::vector<float> big;
      float* sp = len <= 64 ? s : (big.resize(size_t(len)), big.data());
      for (int64_t j = 0; j < len; ++j) sp[j] = err_score(wr, i + j);
      prune_lowest(sp, len, len - std::min<int64_t>(p.n, len), keep + i);
    }
    float v = keep[i] ? wr[i] : 0.f;
    if (c) {  // joint quantization: fit a group when it starts (pruned weights count as 0), then round
      quant::RowQuant& rq = res.q.r[size_t(r)];
      const int64_t g = i / G;
      if (i % G == 0) {
        const int64_t len = std::min(G, cols - i);
        std::vector<float> seg(wr + i, wr + i + len);
        for (int64_t j = 0; j < len; ++j)
          if (!keep[i + j]) seg[size_t(j)] = 0.f;
        rq.fits[size_t(g)] = c->fit(seg.data(), len);
      }
      const int code = c->code(v, rq.fits[size_t(g)]);
      rq.codes[size_t(i)] = uint8_t(code);
      v = rq.deq[size_t(i)] = c->value(code, rq.fits[size_t(g)]);
    }
    res.w[size_t(r * cols + i)] = v;
    return v;
  };
  res.err = quant::lazy_obs_sweep(W, U, B, choose_block, fix) / 2;
  return res;
}

}  // namespace slimlm::prune
