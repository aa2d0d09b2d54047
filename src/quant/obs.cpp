#include "quant/obs.h"
#include "core/error.h"
#include <Eigen/Cholesky>

namespace slimlm::quant {

MatD layer_hessian(const pipeline::SiteStats& st, int64_t cols, const char* who) {
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

MatF inverse_hessian_factor(MatD H, double damp, const char* who) {
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
  fail(who, ": the calibration Hessian is not positive definite even with strong damping");
}

}  // namespace slimlm::quant
