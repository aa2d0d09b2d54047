// GPTQ against the closed-form OBQ/OBS update it accelerates (float64, one column at a time,
// explicit inverse-Hessian downdate), and against RTN on the layer-output error it minimises.
#include "core/error.h"
#include "quant/methods.h"
#include "random_rows.h"
#include <Eigen/Dense>
#include <gtest/gtest.h>
#include <random>

using namespace slimlm;
using test::make_stats;
using test::output_error;
using test::random_weights;

TEST(Gptq, MatchesTheClosedFormObqUpdate) {
  const int64_t rows = 6, k = 40;  // k > lazy batch (16) so the blocked update is exercised
  const quant::SiteStats st = make_stats(400, k, 3);
  const std::vector<float> w = random_weights(rows, k, 4);
  const int64_t G = 8;  // groups fitted from the error-updated weights when they start
  auto c = quant::uniform_codec(4, G, false);
  quant::GptqOptions o;
  o.block = 16;
  o.damp = 0.01;
  const quant::QMatrix q = quant::gptq(w.data(), rows, k, st, *c, o);

  Eigen::MatrixXd H = Eigen::Map<const Eigen::Matrix<double, -1, -1, Eigen::RowMajor>>(st.xtx.data(), k, k) * (2.0 / double(st.count));
  H.diagonal().array() += o.damp * H.diagonal().mean();
  for (int64_t r = 0; r < rows; ++r) {
    Eigen::MatrixXd Hinv = H.inverse();
    Eigen::VectorXd wr(k);
    for (int64_t j = 0; j < k; ++j) wr(j) = w[size_t(r * k + j)];
    quant::GroupFit f;
    int mismatches = 0;
    for (int64_t j = 0; j < k; ++j) {
      if (j % G == 0) {
        std::vector<float> seg(static_cast<size_t>(G));
        for (int64_t i = 0; i < G; ++i) seg[size_t(i)] = float(wr(j + i));
        f = c->fit(seg.data(), G);
      }
      const int code = c->code(float(wr(j)), f);
      const double qv = c->value(code, f);
      // OBQ (Frantar & Alistarh 2022, Eq. 2-3): δ = −(w_j − q_j)/[H⁻¹]_jj · H⁻¹_{:,j}, then drop j from H⁻¹.
      const double e = (wr(j) - qv) / Hinv(j, j);
      wr -= e * Hinv.col(j);
      Hinv -= Hinv.col(j) * Hinv.row(j) / Hinv(j, j);
      if (code != q.r[size_t(r)].codes[size_t(j)]) ++mismatches;
      else EXPECT_FLOAT_EQ(float(qv), q.r[size_t(r)].deq[size_t(j)]);
    }
    EXPECT_LE(mismatches, 1) << "row " << r << ": codes differ from the float64 OBQ reference";
  }
}

TEST(Gptq, BeatsRtnOnTheLayerOutputError) {
  const int64_t rows = 24, k = 64;
  std::vector<float> xs;
  const quant::SiteStats st = make_stats(256, k, 5, &xs);
  const std::vector<float> w = random_weights(rows, k, 6);
  for (const char* fmt : {"u3g32", "s4g64", "u2g16", "q4_0", "q4_1"}) {
    auto c = quant::make_codec(fmt);
    const double e_rtn = output_error(w, quant::rtn(w.data(), rows, k, *c).deq(), xs, rows, k);
    const double e_gptq = output_error(w, quant::gptq(w.data(), rows, k, st, *c, {}).deq(), xs, rows, k);
    quant::GptqOptions act;
    act.act_order = true;
    const double e_act = output_error(w, quant::gptq(w.data(), rows, k, st, *c, act).deq(), xs, rows, k);
    EXPECT_LT(e_gptq, 0.8 * e_rtn) << fmt;
    EXPECT_LT(e_act, e_rtn) << fmt << " (act-order)";
  }
}

TEST(Gptq, DeadColumnsAndBadStats) {
  const int64_t rows = 4, k = 32;
  quant::SiteStats st = make_stats(100, k, 7);
  for (int64_t j = 0; j < k; ++j) { st.xtx[size_t(3 * k + j)] = 0; st.xtx[size_t(j * k + 3)] = 0; }  // channel 3 never active
  const std::vector<float> w = random_weights(rows, k, 8);
  auto c = quant::make_codec("u4g32");
  quant::GptqReport rep;
  const quant::QMatrix q = quant::gptq(w.data(), rows, k, st, *c, {}, &rep);
  EXPECT_EQ(rep.dead, 1);
  for (int64_t r = 0; r < rows; ++r) EXPECT_EQ(q.r[size_t(r)].deq[3], c->round(0.f, q.r[size_t(r)].fits[0]));
  quant::SiteStats wrong = st;
  wrong.k = 16;
  EXPECT_THROW(quant::gptq(w.data(), rows, k, wrong, *c, {}), Error);
}
