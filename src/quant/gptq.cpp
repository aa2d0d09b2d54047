// GPTQ — Frantar, Ashkboos, Hoefler, Alistarh, "GPTQ: Accurate Post-Training Quantization for
// Generative Pre-trained Transformers", ICLR 2023. Columns are quantized one at a time and the
// rounding error is spread over the not-yet-quantized columns with the inverse Hessian:
//   H = 2XᵀX + λI,  U = chol(H⁻¹)ᵀ (upper),  for column j:  q_j = quant(w_j),
//   e = (w_j − q_j) / U_jj,   w_{j+1:} −= e · U_{j, j+1:}                      (Alg. 1)
// Lazy batches of B columns apply the update to later blocks as one GEMM: W_{:,i2:} −= E · U_{i1:i2, i2:}.
// Group fits come from the current (error-updated) columns when a fit span starts (one group, or
// a K-quant super-block of 256 whose groups share quantized sub-scales); with act-order (columns by
// decreasing H_jj) they are fitted on the original weights first ("static groups").
#include "core/error.h"
#include "quant/methods.h"
#include "quant/obs.h"
#include <algorithm>
#include <numeric>

namespace slimlm::quant {

QMatrix gptq(const float* w, int64_t rows, int64_t cols, const SiteStats& st, const Codec& c,
             const GptqOptions& o, GptqReport* rep) {
  MatD H = layer_hessian(st, cols, "GPTQ");
  if (!c.tail_ok() && cols % c.fit_span() != 0) fail(c.name(), " needs rows that are a multiple of ", c.fit_span(), ", not ", cols);
  // A group at least as long as the row (per-channel codecs such as w8a8) is one group per row.
  const int64_t G = std::min(c.group(), cols), S = std::min(c.fit_span(), cols), ng = (cols + G - 1) / G;

  MatF W = Eigen::Map<const MatF>(w, rows, cols);
  const int64_t dead = drop_dead_columns(H, W);

  // Column order (act-order: decreasing H_jj) and, with it, static group fits.
  std::vector<int64_t> perm(static_cast<size_t>(cols));
  std::iota(perm.begin(), perm.end(), 0);
  QMatrix q;
  q.rows = rows; q.cols = cols; q.r.resize(size_t(rows));
  for (auto& r : q.r) { r.codes.assign(size_t(cols), 0); r.deq.assign(size_t(cols), 0.f); r.fits.resize(size_t(ng)); }
  if (o.act_order) {
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return H(a, a) > H(b, b); });
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t s0 = 0; s0 < cols; s0 += S)
        c.fit_span(W.data() + i * cols + s0, std::min(S, cols - s0), q.r[size_t(i)].fits.data() + s0 / G);
    MatF Wp(rows, cols);
    MatD Hp(cols, cols);
    for (int64_t a = 0; a < cols; ++a) {
      Wp.col(a) = W.col(perm[size_t(a)]);
      for (int64_t b = 0; b < cols; ++b) Hp(a, b) = H(perm[size_t(a)], perm[size_t(b)]);
    }
    W = std::move(Wp); H = std::move(Hp);
  }
  const MatF U = inverse_hessian_factor(H, o.damp, "GPTQ");

  // Without act-order a fit span never straddles a lazy batch: B is a multiple of S (or S itself).
  // A whole-row span is fitted at column 0, before any update, so any B works for it.
  const int64_t B = S == cols ? std::min(cols, o.block) : S >= o.block ? S : std::max<int64_t>(1, o.block / S) * S;
  auto round_column = [&](int64_t r, int64_t i, const float* wr) {
    RowQuant& rq = q.r[size_t(r)];
    const int64_t col = perm[size_t(i)], g = col / G;
    if (!o.act_order && col % S == 0) c.fit_span(wr + i, std::min(S, cols - col), rq.fits.data() + g);
    const GroupFit& f = rq.fits[size_t(g)];
    const int code = c.code(wr[i], f);
    rq.codes[size_t(col)] = uint8_t(code);
    return rq.deq[size_t(col)] = c.value(code, f);
  };
  const double err = lazy_obs_sweep(W, U, B, [](int64_t, int64_t) {}, round_column);
  if (rep) { rep->err = err / 2; rep->dead = dead; }
  return q;
}

}  // namespace slimlm::quant
