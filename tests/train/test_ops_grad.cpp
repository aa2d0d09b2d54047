// Every training operator's backward against float64 central finite differences of its forward:
// the scalar L = Σ c ⊙ forward(inputs) with fixed random c, so dL/doutput = c.
#include "finite_diff.h"
#include "train/ops.h"
#include <gtest/gtest.h>
#include <cmath>
#include <functional>
#include <random>
#include <vector>

using namespace slimlm;
using namespace slimlm::train;
using Vec = std::vector<double>;

namespace {
using test::randn;
double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}
double grad_error(Vec& x, const Vec& analytic, const std::function<double()>& loss) {
  return slimlm::test::fd_error(x, analytic, loss);
}
constexpr double kBar = 1e-4;
}  // namespace

TEST(TrainGrad, RmsNorm) {
  const int64_t n = 3, E = 8;
  Vec x = randn(n * E, 1), w = randn(E, 2), c = randn(n * E, 3), y(n * E), r(n);
  auto loss = [&] { rmsnorm_fwd(x.data(), w.data(), n, E, 1e-5, y.data(), r.data()); return dot(c, y); };
  loss();
  Vec dx(n * E), dw(E);
  rmsnorm_bwd(c.data(), x.data(), w.data(), r.data(), n, E, dx.data(), dw.data());
  EXPECT_LT(grad_error(x, dx, loss), kBar);
  EXPECT_LT(grad_error(w, dw, loss), kBar);
}

TEST(TrainGrad, LinearWithBias) {
  const int64_t n = 4, k = 5, rows = 3;
  Vec x = randn(n * k, 1), W = randn(rows * k, 2), b = randn(rows, 3), c = randn(n * rows, 4), y(n * rows);
  auto loss = [&] { linear_fwd(x.data(), W.data(), b.data(), n, k, rows, y.data()); return dot(c, y); };
  Vec dx(n * k), dW(rows * k), db(rows);
  linear_bwd(c.data(), x.data(), W.data(), n, k, rows, dx.data(), dW.data(), db.data());
  EXPECT_LT(grad_error(x, dx, loss), kBar);
  EXPECT_LT(grad_error(W, dW, loss), kBar);
  EXPECT_LT(grad_error(b, db, loss), kBar);
}

TEST(TrainGrad, EmbeddingAccumulatesRepeatedIds) {
  const int64_t V = 6, E = 4;
  const std::vector<int32_t> ids = {2, 5, 2, 0};
  const int64_t n = int64_t(ids.size());
  Vec W = randn(V * E, 1), c = randn(n * E, 2), y(n * E);
  auto loss = [&] { embedding_fwd(W.data(), ids.data(), n, E, y.data()); return dot(c, y); };
  Vec dW(V * E);
  embedding_bwd(c.data(), ids.data(), n, E, dW.data());
  EXPECT_LT(grad_error(W, dW, loss), kBar);
}

TEST(TrainGrad, RopeBothLayouts) {
  for (RopeType type : {RopeType::Norm, RopeType::Neox}) {
    const int64_t n = 3, heads = 2, d = 8;
    Vec x = randn(n * heads * d, 1), c = randn(n * heads * d, 2), y;
    auto loss = [&] { y = x; rope_fwd(y.data(), n, heads, d, 5, 10000.0, 1.0, type); return dot(c, y); };
    Vec dx = c;
    rope_bwd(dx.data(), n, heads, d, 5, 10000.0, 1.0, type);
    EXPECT_LT(grad_error(x, dx, loss), kBar) << (type == RopeType::Norm ? "norm" : "neox");
  }
}

TEST(TrainGrad, GroupedCausalAttentionWithAndWithoutWindow) {
  for (int64_t window : {0, 2}) {
    AttnShape s{5, 4, 2, 3, window, 0.7};
    Vec q = randn(s.n * s.H * s.D, 1), k = randn(s.n * s.HKV * s.D, 2), v = randn(s.n * s.HKV * s.D, 3);
    Vec c = randn(s.n * s.H * s.D, 4), out(q.size()), P(s.H * s.n * s.n);
    auto loss = [&] { attention_fwd(q.data(), k.data(), v.data(), s, out.data(), P.data()); return dot(c, out); };
    loss();
    Vec dq(q.size()), dk(k.size()), dv(v.size());
    attention_bwd(c.data(), q.data(), k.data(), v.data(), P.data(), s, dq.data(), dk.data(), dv.data());
    EXPECT_LT(grad_error(q, dq, loss), kBar) << "window " << window;
    EXPECT_LT(grad_error(k, dk, loss), kBar) << "window " << window;
    EXPECT_LT(grad_error(v, dv, loss), kBar) << "window " << window;
    if (window)  // token 4 sees only tokens 3 and 4
      for (int64_t h = 0; h < s.H; ++h) EXPECT_EQ(P[size_t((h * s.n + 4) * s.n + 2)], 0.0);
  }
}

TEST(TrainGrad, GatedUnitsSiluAndGelu) {
  for (Activation a : {Activation::SiLU, Activation::GeLU}) {
    const int64_t m = 12;
    Vec g = randn(m, 1, 2.0), u = randn(m, 2), c = randn(m, 3), h(m);
    auto loss = [&] { glu_fwd(g.data(), u.data(), m, a, h.data()); return dot(c, h); };
    Vec dg(m), du(m);
    glu_bwd(c.data(), g.data(), u.data(), m, a, dg.data(), du.data());
    EXPECT_LT(grad_error(g, dg, loss), kBar);
    EXPECT_LT(grad_error(u, du, loss), kBar);
  }
}

TEST(TrainGrad, CrossEntropyIgnoresMaskedTargets) {
  const int64_t n = 4, V = 7;
  const std::vector<int32_t> tgt = {3, -1, 0, 6};
  Vec z = randn(n * V, 1, 3.0);
  auto loss = [&] { return cross_entropy<double>(z.data(), tgt.data(), n, V, nullptr); };
  Vec dz(n * V);
  const double l = cross_entropy(z.data(), tgt.data(), n, V, dz.data());
  EXPECT_NEAR(l, loss(), 1e-15);
  EXPECT_LT(grad_error(z, dz, loss), kBar);
  for (int64_t i = 0; i < V; ++i) EXPECT_EQ(dz[size_t(V + i)], 0.0) << "the masked row has no gradient";
}

// The float path (GEMM attention for 16 tokens or more, GEMM linears) against the double loops.
TEST(TrainFloatPath, AttentionAndLinearMatchTheDoubleReference) {
  for (int64_t window : {0, 7}) {
    AttnShape s{37, 6, 2, 16, window, 0.25};
    Vec q = randn(s.n * s.H * s.D, 1), k = randn(s.n * s.HKV * s.D, 2), v = randn(s.n * s.HKV * s.D, 3);
    Vec dout = randn(q.size(), 4), out(q.size()), P(s.H * s.n * s.n);
    Vec dq(q.size()), dk(k.size()), dv(v.size());
    attention_fwd(q.data(), k.data(), v.data(), s, out.data(), P.data());
    attention_bwd(dout.data(), q.data(), k.data(), v.data(), P.data(), s, dq.data(), dk.data(), dv.data());
    auto f = [](const Vec& x) { return std::vector<float>(x.begin(), x.end()); };
    std::vector<float> qf = f(q), kf = f(k), vf = f(v), df = f(dout), of(q.size()), Pf(P.size());
    std::vector<float> dqf(q.size()), dkf(k.size(), 1.f), dvf(v.size(), 1.f);  // dk, dv start at 1: backward adds
    attention_fwd(qf.data(), kf.data(), vf.data(), s, of.data(), Pf.data());
    attention_bwd(df.data(), qf.data(), kf.data(), vf.data(), Pf.data(), s, dqf.data(), dkf.data(), dvf.data());
    auto worst = [](const Vec& a, const std::vector<float>& b, double offset) {
      double w = 0;
      for (size_t i = 0; i < a.size(); ++i) w = std::max(w, std::fabs(a[i] + offset - double(b[i])));
      return w;
    };
    EXPECT_LT(worst(out, of, 0), 1e-5) << window;
    EXPECT_LT(worst(P, Pf, 0), 1e-6) << window;
    EXPECT_LT(worst(dq, dqf, 0), 1e-4) << window;
    EXPECT_LT(worst(dk, dkf, 1), 1e-4) << window;
    EXPECT_LT(worst(dv, dvf, 1), 1e-4) << window;
  }
  const int64_t n = 20, k = 24, rows = 18;
  Vec x = randn(n * k, 5), W = randn(rows * k, 6), dy = randn(n * rows, 7), y(n * rows), dx(n * k), dW(rows * k);
  linear_fwd(x.data(), W.data(), (const double*)nullptr, n, k, rows, y.data());
  linear_bwd(dy.data(), x.data(), W.data(), n, k, rows, dx.data(), dW.data(), (double*)nullptr);
  std::vector<float> xf(x.begin(), x.end()), Wf(W.begin(), W.end()), dyf(dy.begin(), dy.end());
  std::vector<float> yf(y.size()), dxf(dx.size()), dWf(dW.size());
  linear_fwd(xf.data(), Wf.data(), (const float*)nullptr, n, k, rows, yf.data());
  linear_bwd(dyf.data(), xf.data(), Wf.data(), n, k, rows, dxf.data(), dWf.data(), (float*)nullptr);
  for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(yf[i], y[i], 1e-4);
  for (size_t i = 0; i < dx.size(); ++i) ASSERT_NEAR(dxf[i], dx[i], 1e-4);
  for (size_t i = 0; i < dW.size(); ++i) ASSERT_NEAR(dWf[i], dW[i], 1e-4);
}
