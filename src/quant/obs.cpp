#include "quant/obs.h"
#include "core/error.h"
#include <Eigen/Cholesky>
#include <algorithm>

namespace slimlm::quant {

MatD layer_hessian(const SiteStats& st, int64_t cols, const char* who) {
  if (st.k != cols || int64_t(st.xtx.size()) != cols * cols) fail(who, ": statistics do not match a ", cols, "-column weight");
  if (st.count <= 0) fail(who, ": no calibration tokens");
  return Eigen::Map<const MatD>(st.xtx.data(), cols, cols) * (2.0 / double(st.count));
}

int64_t drop_dead_columns(MatD& H, MatF& W) {
  int64_t dead = 0;
  for (int64_t j = 0; j < H.cols(); ++j)
    if (H(j, j) == 0) { H(j, j) = 1; W.col(j).setZero(); ++dead; }
  return dead;
}

namespace {
// U = chol(A⁻¹) (upper) without forming A⁻¹: with P the order-reversing permutation and
// PAP = LLᵀ, A⁻¹ = (P L⁻¹ P)ᵀ (P L⁻¹ P) and P L⁻¹ P is upper triangular with a positive
// diagonal, so it is the factor. One Cholesky and one triangular solve instead of a Cholesky,
// a full inverse and a second Cholesky. Returns false when A is not positive definite.
bool upper_factor_of_inverse(const MatD& A, MatF& U) {
  const int64_t k = A.rows();
  MatD R(k, k);
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) R(i, j) = A(k - 1 - i, k - 1 - j);
  Eigen::LLT<MatD> llt(R);
  if (llt.info() != Eigen::Success) return false;
  // L⁻¹ by blocks of columns in parallel: column block [c0, c1) is zero above row c0, so it solves
  // only the trailing system L[c0:, c0:] X = I[c0:, c0:c1].
  const MatD L = llt.matrixL();
  MatD Linv = MatD::Zero(k, k);
  constexpr int64_t kCols = 64;
  const int64_t nb = (k + kCols - 1) / kCols;
#pragma omp parallel for schedule(dynamic) if (k >= 256)
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t c0 = b * kCols, w = std::min(kCols, k - c0);
    MatD x = MatD::Identity(k - c0, w);
    L.bottomRightCorner(k - c0, k - c0).triangularView<Eigen::Lower>().solveInPlace(x);
    Linv.block(c0, c0, k - c0, w) = x;
  }
  U.resize(k, k);
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) U(i, j) = float(Linv(k - 1 - i, k - 1 - j));
  return Linv.allFinite();
}
}  // namespace

MatF inverse_hessian_factor(MatD H, double damp, const char* who) {
  // The weights that read one site (q/k/v, gate/up) share its Hessian: the last factor is kept
  // and reused when the same matrix and damping come again.
  thread_local MatD last_h;
  thread_local double last_damp = -1;
  thread_local MatF last_u;
  if (damp == last_damp && H.rows() == last_h.rows() && H == last_h) return last_u;
  const double damp0 = damp;
  double mean_diag = H.diagonal().mean();
  if (!(mean_diag > 0)) mean_diag = 1;
  MatF U;
  for (int attempt = 0; attempt < 6; ++attempt, damp *= 10) {
    MatD Hd = H;
    Hd.diagonal().array() += damp * mean_diag;
    if (!upper_factor_of_inverse(Hd, U)) continue;
    last_h = std::move(H);
    last_damp = damp0;
    last_u = U;
    return U;
  }
  fail(who, ": the calibration Hessian is not positive definite even with strong damping");
}

}  // namespace slimlm::quant
