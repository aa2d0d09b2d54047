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
