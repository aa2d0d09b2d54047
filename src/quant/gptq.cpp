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
#include <Eigen/Cholesky>
#include <Eigen/Dense>
#include <algorithm>
#include <numeric>

namespace slimlm::quant {

namespace {
using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Upper Cholesky factor of (H + λI)⁻¹, retrying with more damping if H is not positive definite.
MatF inverse_hessian_factor(MatD H, double damp) {
  const int64_t k = H.rows();
  double mean_diag = H.diagonal().mean();
  if (!(mean_diag > 0)) mean_diag = 1;
  for (int attempt = 0; attempt < 6; ++attempt, damp *= 10) {
    MatD Hd = H;
    Hd.diagonal().array() += damp * mean_diag;
    Eigen::LLT<MatD> llt(Hd);
    if (llt.info() != Eigen::Success) continue;
    MatD Hinv = llt.solve(MatD::Identity(k, k));
    Eigen::LLT<MatD> llt2(Hinv);
    if (llt2.info() != Eigen::Success) continue;
    return MatD(llt2.matrixU()).cast<float>();
  }
  fail("GPTQ: the calibration Hessian is not positive definite even with strong damping");
}
}  // namespace

QMatrix gptq(const float* w, int64_t rows, int64_t cols, const pipeline::SiteStats& st, const Codec& c,
             const GptqOptions& o, GptqReport* rep) {
  if (st.k != cols || int64_t(st.xtx.size()) != cols * cols) fail("GPTQ: statistics do not match a ", cols, "-column weight");
  if (st.count <= 0) fail("GPTQ: no calibration tokens");
  if (!c.tail_ok() && cols % c.fit_span() != 0) fail(c.name(), " needs rows that are a multiple of ", c.fit_span(), ", not ", cols);
  const int64_t G = c.group(), S = c.fit_span(), ng = (cols + G - 1) / G;

  MatF W = Eigen::Map<const MatF>(w, rows, cols);
  MatD H = Eigen::Map<const MatD>(st.xtx.data(), cols, cols) * (2.0 / double(st.count));
  int64_t dead = 0;
  for (int64_t j = 0; j < cols; ++j)
    if (H(j, j) == 0) { H(j, j) = 1; W.col(j).setZero(); ++dead; }

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
  const MatF U = inverse_hessian_factor(H, o.damp);

  // Without act-order a fit span never straddles a lazy batch: B is a multiple of S (or S itself).
  const int64_t B = S >= o.block ? S : std::max<int64_t>(1, o.block / S) * S;
  double err_total = 0;
  MatF E(rows, B);
  for (int64_t i1 = 0; i1 < cols; i1 += B) {
    const int64_t i2 = std::min(cols, i1 + B), nb = i2 - i1;
    double err_block = 0;
#pragma omp parallel for schedule(static) reduction(+ : err_block)
    for (int64_t r = 0; r < rows; ++r) {
      float* wr = W.data() + r * cols;
      RowQuant& rq = q.r[size_t(r)];
      for (int64_t i = i1; i < i2; ++i) {
        const int64_t col = perm[size_t(i)], g = col / G;
        if (!o.act_order && col % S == 0) c.fit_span(wr + i, std::min(S, cols - col), rq.fits.data() + g);
        const GroupFit& f = rq.fits[size_t(g)];
        const int code = c.code(wr[i], f);
        const float v = c.value(code, f);
        rq.codes[size_t(col)] = uint8_t(code);
        rq.deq[size_t(col)] = v;
        const float d = U(i, i);
        const float e = (wr[i] - v) / d;
        err_block += double(wr[i] - v) * double(wr[i] - v) / (double(d) * d);
        const float* u = U.data() + i * cols;
        for (int64_t j = i + 1; j < i2; ++j) wr[j] -= e * u[j];
        E(r, i - i1) = e;
      }
    }
    err_total += err_block;
    if (i2 < cols) W.rightCols(cols - i2).noalias() -= E.leftCols(nb) * U.block(i1, i2, nb, cols - i2);
  }
  if (rep) { rep->err = err_total / 2; rep->dead = dead; }
  return q;
}

}  // namespace slimlm::quant
