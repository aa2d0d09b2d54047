// SparseGPT against float64 references written here: with a fixed mask it is sequential OBS
// (prune column j, re-solve the columns after it, downdate H⁻¹), which for a mask covering a
// prefix of the columns equals the closed-form masked least squares; adaptive masks hit the
// exact sparsity / N:M pattern and beat magnitude and Wanda masks on the layer-output error.
#include "core/error.h"
#include "prune/prune.h"
#include "quant/random_rows.h"
#include <Eigen/Dense>
#include <gtest/gtest.h>
#include <omp.h>
#include <random>

using namespace slimlm;
using namespace slimlm::prune;
using slimlm::test::max_abs;
using test::make_stats;
using test::output_error;
using test::random_weights;

namespace {
using MatD = Eigen::MatrixXd;

// The objective SparseGPT minimises: H = 2XᵀX/n + damp · mean(diag) · I.
MatD damped_hessian(const quant::SiteStats& st, double damp) {
  MatD H(st.k, st.k);
  for (int64_t i = 0; i < st.k; ++i)
    for (int64_t j = 0; j < st.k; ++j) H(i, j) = st.xtx[size_t(i * st.k + j)] * 2.0 / double(st.count);
  H.diagonal().array() += damp * H.diagonal().mean();
  return H;
}

// Sequential OBS in float64 (Hassibi & Stork; SparseGPT Alg. 1 without batching): column j is set
// to 0 (pruned) or left (kept), the others after it absorb δ = −(w_j − q_j)/[H⁻¹]_jj · H⁻¹_{:,j},
// and j leaves the inverse Hessian.
std::vector<double> sequential_obs(const std::vector<float>& w, const Mask& keep, int64_t rows, int64_t k, const MatD& H) {
  std::vector<double> out(w.size());
  for (int64_t r = 0; r < rows; ++r) {
    MatD Hinv = H.inverse();
    Eigen::VectorXd wr(k);
    for (int64_t j = 0; j < k; ++j) wr(j) = w[size_t(r * k + j)];
    for (int64_t j = 0; j < k; ++j) {
      const double q = keep[size_t(r * k + j)] ? wr(j) : 0.0;
      const Eigen::VectorXd col = Hinv.col(j);
      wr -= (wr(j) - q) / Hinv(j, j) * col;
      Hinv -= col * col.transpose() / col(j);
      out[size_t(r * k + j)] = q;
    }
  }
  return out;
}

// Closed-form optimum of min (w' − w)ᵀ H (w' − w) subject to w'_P = 0: w'_K = w_K + H_KK⁻¹ H_KP w_P.
std::vector<double> masked_least_squares(const std::vector<float>& w, const Mask& keep, int64_t rows, int64_t k, const MatD& H) {
  std::vector<double> out(w.size(), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<int64_t> K, P;
    for (int64_t j = 0; j < k; ++j) (keep[size_t(r * k + j)] ? K : P).push_back(j);
    MatD HKK(K.size(), K.size()), HKP(K.size(), P.size());
    for (size_t a = 0; a < K.size(); ++a) {
      for (size_t b = 0; b < K.size(); ++b) HKK(a, b) = H(K[a], K[b]);
      for (size_t b = 0; b < P.size(); ++b) HKP(a, b) = H(K[a], P[b]);
    }
    Eigen::VectorXd wP(P.size());
    for (size_t b = 0; b < P.size(); ++b) wP(b) = w[size_t(r * k + P[b])];
    const Eigen::VectorXd dK = HKK.ldlt().solve(HKP * wP);
    for (size_t a = 0; a < K.size(); ++a) out[size_t(r * k + K[a])] = w[size_t(r * k + K[a])] + dK(a);
  }
  return out;
}

// Σ_rows (w − w')ᵀ H (w − w').
template <class V>
double quad_error(const std::vector<float>& w, const V& q, int64_t rows, int64_t k, const MatD& H) {
  double e = 0;
  for (int64_t r = 0; r < rows; ++r) {
    Eigen::VectorXd d(k);
    for (int64_t j = 0; j < k; ++j) d(j) = double(w[size_t(r * k + j)]) - double(q[size_t(r * k + j)]);
    e += d.dot(H * d);
  }
  return e;
}

Mask random_mask(int64_t n, double p_prune, uint32_t seed) {
  std::mt19937 rng(seed);
  std::bernoulli_distribution d(p_prune);
  Mask m(static_cast<size_t>(n));
  for (auto& v : m) v = d(rng) ? 0 : 1;
  return m;
}
}  // namespace

TEST(PruneSparseGpt, FixedMaskIsSequentialObs) {
  const int64_t rows = 8, k = 16;
  const auto st = make_stats(200, k, 31);
  const auto w = random_weights(rows, k, 32);
  const Mask keep = random_mask(rows * k, 0.25, 33);  // a few pruned weights per row
  SparseGptOptions o;
  o.block = 8;  // two lazy batches: the GEMM update between them is exercised
  o.fixed = &keep;
  const SparseGptResult r = sparsegpt(w.data(), rows, k, st, Pattern{}, o);
  const MatD H = damped_hessian(st, o.damp);
  const auto ref = sequential_obs(w, keep, rows, k, H);
  const double wmax = max_abs(w);
  for (int64_t i = 0; i < rows * k; ++i) {
    if (!keep[size_t(i)]) { EXPECT_EQ(r.w[size_t(i)], 0.f); }
    EXPECT_NEAR(r.w[size_t(i)], ref[size_t(i)], 2e-5 * wmax) << "weight " << i;
  }
  EXPECT_EQ(r.keep, keep);
  // Sequential OBS cannot move columns before a pruned one, so it sits between the masked
  // least-squares optimum and no compensation at all; its loss estimate is the true loss / 2.
  const double e_sgpt = quad_error(w, r.w, rows, k, H);
  std::vector<float> plain = w;
  apply_mask(plain.data(), keep);
  EXPECT_GE(e_sgpt, quad_error(w, masked_least_squares(w, keep, rows, k, H), rows, k, H) * (1 - 1e-4));
  EXPECT_LT(e_sgpt, quad_error(w, plain, rows, k, H));
  EXPECT_NEAR(r.err, e_sgpt / 2, 1e-3 * e_sgpt);
}

TEST(PruneSparseGpt, PrefixMaskIsTheClosedFormOptimum) {
  const int64_t rows = 8, k = 16;
  const auto st = make_stats(200, k, 41);
  const auto w = random_weights(rows, k, 42);
  Mask keep(size_t(rows * k), 1);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < 1 + r % 5; ++j) keep[size_t(r * k + j)] = 0;  // each row prunes its first 1..5 inputs
  SparseGptOptions o;
  o.block = 4;
  o.fixed = &keep;
  const SparseGptResult r = sparsegpt(w.data(), rows, k, st, Pattern{}, o);
  const MatD H = damped_hessian(st, o.damp);
  const auto opt = masked_least_squares(w, keep, rows, k, H);
  const double wmax = max_abs(w);
  for (int64_t i = 0; i < rows * k; ++i) EXPECT_NEAR(r.w[size_t(i)], opt[size_t(i)], 2e-5 * wmax) << "weight " << i;
  EXPECT_NEAR(quad_error(w, r.w, rows, k, H), quad_error(w, opt, rows, k, H), 1e-4 * quad_error(w, opt, rows, k, H));
}

TEST(PruneSparseGpt, AdaptiveMasksAreExactAndBeatScoreMasks) {
  const int64_t rows = 24, k = 300;  // 300 = 128 + 128 + 44: ragged last block
  std::vector<float> xs;
  const auto st = make_stats(600, k, 51, &xs);
  const auto w = random_weights(rows, k, 52);
  for (const Pattern p : {Pattern{0.5, 0, 0}, Pattern{0.3, 0, 0}, Pattern{0.77, 0, 0}, Pattern{0, 2, 4}, Pattern{0, 3, 8}}) {
    SCOPED_TRACE(testing::Message() << p.sparsity << " " << p.n << ":" << p.m);
    const SparseGptResult r = sparsegpt(w.data(), rows, k, st, p);
    const int64_t zeros = count_zeros(r.w.data(), rows * k);
    for (int64_t i = 0; i < rows * k; ++i)
      if (!r.keep[size_t(i)]) { EXPECT_EQ(r.w[size_t(i)], 0.f); }
    if (p.nm()) {
      EXPECT_TRUE(satisfies_nm(r.w.data(), rows, k, p.n, p.m));
      EXPECT_EQ(std::count(r.keep.begin(), r.keep.end(), 0), rows * (k / p.m) * (p.m - p.n) + rows * (k % p.m - std::min<int64_t>(p.n, k % p.m)));
    } else {
      EXPECT_EQ(zeros, prune_count(p.sparsity, rows * k));
    }
    const double e = output_error(w, r.w, xs, rows, k);
    const auto mag = magnitude_scores(w.data(), rows * k), wan = wanda_scores(w.data(), rows, k, st);
    for (const auto* sc : {&mag, &wan}) {
      std::vector<float> q = w;
      apply_mask(q.data(), select_mask(sc->data(), rows, k, p, Group::Row));
      EXPECT_LT(e, 0.8 * output_error(w, q, xs, rows, k));
    }
  }
}

TEST(PruneSparseGpt, JointQuantizationBeatsPruneThenRound) {
  const int64_t rows = 16, k = 96;
  std::vector<float> xs;
  const auto st = make_stats(300, k, 61, &xs);
  const auto w = random_weights(rows, k, 62);
  auto c = quant::make_codec("u4g32");
  SparseGptOptions o;
  o.codec = c.get();
  const Pattern p{0.5, 0, 0};
  const SparseGptResult joint = sparsegpt(w.data(), rows, k, st, p, o);
  ASSERT_EQ(joint.q.r.size(), size_t(rows));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < k; ++j) {
      const float v = joint.w[size_t(r * k + j)];
      EXPECT_EQ(v, joint.q.r[size_t(r)].deq[size_t(j)]);
      EXPECT_EQ(v, c->value(joint.q.r[size_t(r)].codes[size_t(j)], joint.q.r[size_t(r)].fits[size_t(j / 32)]));
      if (!joint.keep[size_t(r * k + j)]) { EXPECT_EQ(v, 0.f); }  // 0 is on every group's grid (the fit includes it)
    }
  EXPECT_GE(count_zeros(joint.w.data(), rows * k), prune_count(0.5, rows * k));
  const SparseGptResult sparse = sparsegpt(w.data(), rows, k, st, p);
  const auto rounded = quant::rtn(sparse.w.data(), rows, k, *c).deq();
  EXPECT_LT(output_error(w, joint.w, xs, rows, k), output_error(w, rounded, xs, rows, k));
}

TEST(PruneSparseGpt, DeterministicAcrossThreadsAndDeadInputs) {
  const int64_t rows = 12, k = 40;
  auto st = make_stats(150, k, 71);
  for (int64_t j = 0; j < k; ++j) { st.xtx[size_t(3 * k + j)] = 0; st.xtx[size_t(j * k + 3)] = 0; }  // input 3 never active
  const auto w = random_weights(rows, k, 72);
  const int prev = omp_get_max_threads();
  omp_set_num_threads(1);
  const SparseGptResult a = sparsegpt(w.data(), rows, k, st, Pattern{0.5, 0, 0});
  omp_set_num_threads(2);
  const SparseGptResult b = sparsegpt(w.data(), rows, k, st, Pattern{0.5, 0, 0});
  omp_set_num_threads(prev);
  EXPECT_EQ(a.w, b.w);
  EXPECT_EQ(a.dead, 1);
  for (int64_t r = 0; r < rows; ++r) EXPECT_EQ(a.keep[size_t(r * k + 3)], 0);  // zeroed dead weights score 0: pruned first
  EXPECT_EQ(count_zeros(a.w.data(), rows * k), rows * k / 2);
  quant::SiteStats wrong = st;
  wrong.k = 16;
  EXPECT_THROW(sparsegpt(w.data(), rows, k, wrong, Pattern{}), Error);
  EXPECT_THROW(sparsegpt(w.data(), rows, k, st, Pattern{1.0, 0, 0}), Error);
  EXPECT_THROW(sparsegpt(w.data(), rows, k, st, Pattern{0, 5, 4}), Error);
}
