#include "reference_forward.h"
#include <cmath>

namespace slimlm::test {

namespace {
using Vec = std::vector<double>;
Vec deq(const Tensor& t) { auto f = t.to_f32(); return Vec(f.begin(), f.end()); }

Vec rms(const Vec& x, size_t off, size_t n, const Vec& w, double eps) {
  double ss = 0;
  for (size_t i = 0; i < n; ++i) ss += x[off + i] * x[off + i];
  const double s = 1.0 / std::sqrt(ss / double(n) + eps);
  Vec y(n);
  for (size_t i = 0; i < n; ++i) y[i] = x[off + i] * s * w[i];
  return y;
}
// y = W x with W [rows][cols] row-major
Vec mv(const Vec& W, size_t rows, size_t cols, const Vec& x) {
  Vec y(rows, 0.0);
  for (size_t r = 0; r < rows; ++r) {
    double s = 0;
    for (size_t c = 0; c < cols; ++c) s += W[r * cols + c] * x[c];
    y[r] = s;
  }
  return y;
}
void rope(double* v, size_t d, size_t pos, double theta, double scale, bool neox) {
  for (size_t i = 0; i < d / 2; ++i) {
    const double a = double(pos) / scale * std::pow(theta, -2.0 * double(i) / double(d));
    double* p = neox ? v + i : v + 2 * i;
    double* q = neox ? v + i + d / 2 : v + 2 * i + 1;
    const double x0 = *p, x1 = *q;
    *p = x0 * std::cos(a) - x1 * std::sin(a);
    *q = x0 * std::sin(a) + x1 * std::cos(a);
  }
}
}  // namespace

std::vector<double> reference_logits(const Model& m, const std::vector<int32_t>& ids) {
  const HParams& hp = m.hp;
  const size_t E = size_t(hp.n_embd), D = size_t(hp.head_dim), H = size_t(hp.n_head), HK = size_t(hp.n_head_kv);
  const size_t F = size_t(hp.n_ff), V = size_t(hp.n_vocab), n = ids.size(), G = H / HK;
  const double eps = hp.norm_eps;
  Vec emb = deq(m.tok_embd);
  Vec x(n * E);
  for (size_t t = 0; t < n; ++t)
    for (size_t i = 0; i < E; ++i)
      x[t * E + i] = emb[size_t(ids[t]) * E + i] * (hp.embed_scale ? std::sqrt(double(E)) : 1.0);
  for (size_t l = 0; l < size_t(hp.n_layer); ++l) {
    const Block& b = m.blocks[l];
    Vec wq = deq(b.wq), wk = deq(b.wk), wv = deq(b.wv), wo = deq(b.wo), an = deq(b.attn_norm), fn = deq(b.ffn_norm);
    Vec wg = deq(b.w_gate), wu = deq(b.w_up), wd = deq(b.w_down);
    const bool swa = !hp.swa_layer.empty() && hp.swa_layer[l];
    const double theta = swa ? hp.rope_theta_swa : hp.rope_theta;
    const double scale = hp.attn_scale > 0 ? hp.attn_scale : 1.0 / std::sqrt(double(D));
    std::vector<Vec> Q(n), K(n), Vv(n);
    for (size_t t = 0; t < n; ++t) {
      Vec xn = rms(x, t * E, E, an, eps);
      Q[t] = mv(wq, H * D, E, xn); K[t] = mv(wk, HK * D, E, xn); Vv[t] = mv(wv, HK * D, E, xn);
      if (!b.bq.empty()) {
        Vec bq = deq(b.bq), bk = deq(b.bk), bv = deq(b.bv);
        for (size_t i = 0; i < H * D; ++i) Q[t][i] += bq[i];
        for (size_t i = 0; i < HK * D; ++i) { K[t][i] += bk[i]; Vv[t][i] += bv[i]; }
      }
      for (size_t h = 0; h < H; ++h) {
        if (hp.qk_norm) { Vec r = rms(Q[t], h * D, D, deq(b.q_norm), eps); std::copy(r.begin(), r.end(), Q[t].begin() + long(h * D)); }
        rope(Q[t].data() + h * D, D, t, theta, hp.rope_scale, hp.rope == RopeType::Neox);
      }
      for (size_t h = 0; h < HK; ++h) {
        if (hp.qk_norm) { Vec r = rms(K[t], h * D, D, deq(b.k_norm), eps); std::copy(r.begin(), r.end(), K[t].begin() + long(h * D)); }
        rope(K[t].data() + h * D, D, t, theta, hp.rope_scale, hp.rope == RopeType::Neox);
      }
    }
    for (size_t t = 0; t < n; ++t) {
      Vec att(H * D, 0.0);
      for (size_t h = 0; h < H; ++h) {
        const size_t kh = h / G;
        const size_t start = swa && hp.sliding_window > 0 && t + 1 > size_t(hp.sliding_window) ? t + 1 - size_t(hp.sliding_window) : 0;
        Vec s;
        double mx = -1e300;
        for (size_t j = start; j <= t; ++j) {
          double d = 0;
          for (size_t i = 0; i < D; ++i) d += Q[t][h * D + i] * K[j][kh * D + i];
          s.push_back(d * scale);
          mx = std::max(mx, s.back());
        }
        double sum = 0;
        for (double& v : s) { v = std::exp(v - mx); sum += v; }
        for (size_t j = start; j <= t; ++j)
          for (size_t i = 0; i < D; ++i) att[h * D + i] += s[j - start] / sum * Vv[j][kh * D + i];
      }
      Vec o = mv(wo, E, H * D, att);
      if (hp.post_norms) o = rms(o, 0, E, deq(b.attn_post_norm), eps);
      for (size_t i = 0; i < E; ++i) x[t * E + i] += o[i];
    }
    for (size_t t = 0; t < n; ++t) {
      Vec xn = rms(x, t * E, E, fn, eps);
      Vec g = mv(wg, F, E, xn), u = mv(wu, F, E, xn);
      for (size_t i = 0; i < F; ++i) {
        const double a = g[i];
        const double act = hp.act == Activation::SiLU
                               ? a / (1.0 + std::exp(-a))
                               : 0.5 * a * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (a + 0.044715 * a * a * a)));
        g[i] = act * u[i];
      }
      Vec o = mv(wd, E, F, g);
      if (hp.post_norms) o = rms(o, 0, E, deq(b.ffn_post_norm), eps);
      for (size_t i = 0; i < E; ++i) x[t * E + i] += o[i];
    }
  }
  Vec on = deq(m.out_norm), out = deq(m.output);
  std::vector<double> logits(n * V);
  for (size_t t = 0; t < n; ++t) {
    Vec xn = rms(x, t * E, E, on, eps);
    Vec lg = mv(out, V, E, xn);
    std::copy(lg.begin(), lg.end(), logits.begin() + long(t * V));
  }
  return logits;
}

}  // namespace slimlm::test
