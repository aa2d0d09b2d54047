#include "train/engine.h"
#include "core/error.h"
#include "train/ops.h"
#include <cmath>
#include <random>

namespace slimlm::train {

namespace {
template <class T> std::vector<T> master(const Tensor& t) {
  if (t.empty()) return {};
  const std::vector<float> f = t.to_f32();
  return std::vector<T>(f.begin(), f.end());
}
bool tied(const Model& m) { return m.output.empty() || m.output.data == m.tok_embd.data; }
}  // namespace

template <class T> std::vector<T>& Weights<T>::Layer::linear(int i) {
  std::vector<T>* all[7] = {&wq, &wk, &wv, &wo, &w_gate, &w_up, &w_down};
  return *all[i];
}

namespace {
const char* const kLinearNames[7] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
const char* const kLoraTargets[7] = {"q", "k", "v", "o", "gate", "up", "down"};
// A gradient output, or null where the tensor does not train.
template <class T> T* ptr(std::vector<T>& v) { return v.empty() ? nullptr : v.data(); }
}  // namespace

template <class T> Weights<T> Weights<T>::from_model(const Model& m) {
  Weights w;
  w.tok_embd = master<T>(m.tok_embd);
  w.out_norm = master<T>(m.out_norm);
  if (!tied(m)) w.output = master<T>(m.output);
  for (const Block& b : m.blocks) {
    if (!b.bq.empty() || !b.bo.empty() || !b.b_down.empty()) fail("training models with linear biases is not supported");
    w.layers.push_back({master<T>(b.attn_norm), master<T>(b.wq), master<T>(b.wk), master<T>(b.wv), master<T>(b.wo),
                        master<T>(b.q_norm), master<T>(b.k_norm), master<T>(b.attn_post_norm), master<T>(b.ffn_norm),
                        master<T>(b.w_gate), master<T>(b.w_up), master<T>(b.w_down), master<T>(b.ffn_post_norm), {}});
  }
  return w;
}

template <class T> void Weights<T>::each(const std::function<void(const std::string&, std::vector<T>&)>& f) {
  if (!tok_embd.empty()) f("token_embd.weight", tok_embd);
  for (size_t l = 0; l < layers.size(); ++l) {
    Layer& L = layers[l];
    const std::string p = "blk." + std::to_string(l) + ".";
    const std::pair<const char*, std::vector<T>*> named[] = {
        {"attn_norm", &L.attn_norm}, {"attn_q", &L.wq}, {"attn_k", &L.wk}, {"attn_v", &L.wv},
        {"attn_output", &L.wo}, {"attn_q_norm", &L.q_norm}, {"attn_k_norm", &L.k_norm},
        {"post_attention_norm", &L.attn_post_norm}, {"ffn_norm", &L.ffn_norm}, {"ffn_gate", &L.w_gate},
        {"ffn_up", &L.w_up}, {"ffn_down", &L.w_down}, {"post_ffw_norm", &L.ffn_post_norm}};
    for (const auto& [name, t] : named)
      if (!t->empty()) f(p + name + ".weight", *t);
    for (int i = 0; i < 7; ++i) {
      Adapter& a = L.lora[size_t(i)];
      if (!a.A.empty()) f(p + kLinearNames[i] + ".lora_a", a.A);
      if (!a.B.empty()) f(p + kLinearNames[i] + ".lora_b", a.B);
    }
  }
  if (!out_norm.empty()) f("output_norm.weight", out_norm);
  if (!output.empty()) f("output.weight", output);
  for (auto& [name, t] : aux) f(name, t);
}

void store_weights(Weights<float>& w, Model& m) {
  if (w.layers.size() != m.blocks.size()) fail("the weights have ", w.layers.size(), " layers, the model ", m.blocks.size());
  auto put = [](Tensor& t, const std::vector<float>& v) {
    if (v.empty()) return;
    if (size_t(t.nelements()) != v.size()) fail("tensor ", t.name, " has ", t.nelements(), " values, the weights ", v.size());
    t = Tensor::from_f32(t.name, t.ne, v.data());
  };
  const bool was_tied = tied(m);
  put(m.tok_embd, w.tok_embd);
  put(m.out_norm, w.out_norm);
  if (was_tied) m.output = m.tok_embd;
  else put(m.output, w.output);
  for (size_t l = 0; l < m.blocks.size(); ++l) {
    Block& b = m.blocks[l];
    const auto& L = w.layers[l];
    Tensor* dst[] = {&b.attn_norm, &b.wq, &b.wk, &b.wv, &b.wo, &b.q_norm, &b.k_norm, &b.attn_post_norm,
                     &b.ffn_norm, &b.w_gate, &b.w_up, &b.w_down, &b.ffn_post_norm};
    const std::vector<float>* src[] = {&L.attn_norm, &L.wq, &L.wk, &L.wv, &L.wo, &L.q_norm, &L.k_norm,
                                       &L.attn_post_norm, &L.ffn_norm, &L.w_gate, &L.w_up, &L.w_down, &L.ffn_post_norm};
    for (size_t i = 0; i < std::size(dst); ++i) put(*dst[i], *src[i]);
  }
}

template <class T> void Weights<T>::each_trainable(const std::function<void(const std::string&, std::vector<T>&)>& f) {
  each([&](const std::string& name, std::vector<T>& t) {
    if (!frozen_base || name.find(".lora_") != std::string::npos || name.rfind("kd.", 0) == 0) f(name, t);
  });
}

template <class T> Weights<T> Weights<T>::zeros_like() const {
  Weights z;
  if (frozen_base) {  // gradients of the adapters only
    z.frozen_base = true;
    z.lora_scale = lora_scale;
    z.layers.resize(layers.size());
    for (size_t l = 0; l < layers.size(); ++l)
      for (size_t i = 0; i < 7; ++i) {
        z.layers[l].lora[i].A.assign(layers[l].lora[i].A.size(), T(0));
        z.layers[l].lora[i].B.assign(layers[l].lora[i].B.size(), T(0));
      }
    for (const auto& [name, t] : aux) z.aux.emplace_back(name, std::vector<T>(t.size(), T(0)));
    return z;
  }
  z = *this;
  z.each([](const std::string&, std::vector<T>& t) { std::fill(t.begin(), t.end(), T(0)); });
  return z;
}

namespace {
// Input width of linear i of layer l: the residual width, except o (q heads) and down (FFN).
template <class T> int64_t lora_in_width(const Weights<T>& w, size_t l, int i) {
  const int64_t E = int64_t(w.out_norm.size());
  const auto& L = w.layers[l];
  if (i == 3) return int64_t(L.wq.size()) / E;
  if (i == 6) return int64_t(L.w_gate.size()) / E;
  return E;
}
}  // namespace

template <class T> void add_lora(Weights<T>& w, const LoraOptions& o) {
  if (o.rank < 1 || o.rank > 4096) fail("LoRA rank ", o.rank, " is out of range [1, 4096]");
  if (!(o.alpha > 0 && o.alpha <= 1e4)) fail("LoRA alpha ", o.alpha, " is out of range (0, 1e4]");
  if (o.targets.empty()) fail("LoRA needs at least one target linear");
  std::vector<int> which;
  for (const std::string& t : o.targets) {
    const auto* it = std::find(std::begin(kLoraTargets), std::end(kLoraTargets), t);
    if (it == std::end(kLoraTargets)) fail("unknown LoRA target '", t, "' (known: q, k, v, o, gate, up, down)");
    which.push_back(int(it - std::begin(kLoraTargets)));
  }
  std::mt19937_64 rng(o.seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  for (size_t l = 0; l < w.layers.size(); ++l) {
    auto& L = w.layers[l];
    for (int i : which) {
      auto& a = L.lora[size_t(i)];
      const int64_t in = lora_in_width(w, l, i);
      const int64_t out = int64_t(L.linear(i).size()) / in;
      a.A.resize(size_t(o.rank * in));
      for (T& x : a.A) x = T(nd(rng) / std::sqrt(double(in)));
      a.B.assign(size_t(out * o.rank), T(0));
    }
  }
  w.lora_scale = o.alpha / double(o.rank);
  w.frozen_base = true;
}

template <class T> void merge_lora(Weights<T>& w) {
  for (size_t l = 0; l < w.layers.size(); ++l)
    for (int i = 0; i < 7; ++i) {
      auto& L = w.layers[l];
      auto& a = L.lora[size_t(i)];
      if (a.A.empty()) continue;
      const int64_t in = lora_in_width(w, l, i), out = int64_t(L.linear(i).size()) / in;
      const int64_t r = int64_t(a.A.size()) / in;
      std::vector<T>& W = L.linear(i);
      for (int64_t o = 0; o < out; ++o)
        for (int64_t c = 0; c < in; ++c) {
          double acc = 0;
          for (int64_t j = 0; j < r; ++j) acc += double(a.B[size_t(o * r + j)]) * double(a.A[size_t(j * in + c)]);
          W[size_t(o * in + c)] += T(w.lora_scale * acc);
        }
      a = {};
    }
  w.lora_scale = 0;
  w.frozen_base = false;
}

template <class T> size_t Weights<T>::n_params() {
  size_t n = 0;
  each([&](const std::string&, std::vector<T>& t) { n += t.size(); });
  return n;
}

namespace {
// What one block's backward needs from its forward.
template <class T> struct LayerActs {
  std::vector<T> x0, xn1, r1, q_pre, rq, k_pre, rk, q, k, v, P, att, o, rpo, x1, xn2, r2, g, u, h, d, rpd;
  std::array<std::vector<T>, 7> ax;  // A·x of each adapted linear
};

template <class T> using Vec = std::vector<T>;

// y = W x (+ scale · B (A x) when linear i has an adapter; A x is kept for the backward).
template <class T> void lin_fwd(const typename Weights<T>::Layer& L, int i, double ls, const T* x, int64_t n, int64_t k,
                                int64_t rows, T* y, Vec<T>& ax) {
  linear_fwd(x, L.linear(i).data(), (const T*)nullptr, n, k, rows, y);
  const auto& ad = L.lora[size_t(i)];
  if (ad.A.empty()) return;
  const int64_t r = int64_t(ad.A.size()) / k;
  ax.assign(size_t(n * r), T(0));
  linear_fwd(x, ad.A.data(), (const T*)nullptr, n, k, r, ax.data());
  Vec<T> bax(size_t(n * rows));
  linear_fwd(ax.data(), ad.B.data(), (const T*)nullptr, n, r, rows, bax.data());
  for (size_t j = 0; j < bax.size(); ++j) y[j] += T(ls) * bax[j];
}

// The backward of lin_fwd: dx += dyᵀ·W (+ the adapter's path); dW, dA, dB where they train.
template <class T> void lin_bwd(const typename Weights<T>::Layer& L, typename Weights<T>::Layer& G, int i, double ls,
                                const T* dy, const T* x, int64_t n, int64_t k, int64_t rows, T* dx, const Vec<T>& ax) {
  linear_bwd(dy, x, L.linear(i).data(), n, k, rows, dx, ptr(G.linear(i)), (T*)nullptr);
  const auto& ad = L.lora[size_t(i)];
  if (ad.A.empty()) return;
  const int64_t r = int64_t(ad.A.size()) / k;
  Vec<T> sdy(dy, dy + n * rows), dax(size_t(n * r), T(0));
  for (T& v : sdy) v *= T(ls);
  linear_bwd(sdy.data(), ax.data(), ad.B.data(), n, r, rows, dax.data(), ptr(G.lora[size_t(i)].B), (T*)nullptr);
  linear_bwd(dax.data(), x, ad.A.data(), n, k, r, dx, ptr(G.lora[size_t(i)].A), (T*)nullptr);
}

// Per-head RMSNorm of rows (n x heads x D) when the family has QK-norm; saves the inputs.
template <class T> void qk_norm_fwd(Vec<T>& x, const Vec<T>& w, int64_t rows, int64_t D, T eps, Vec<T>& pre,
                                    Vec<T>& rstd) {
  if (w.empty()) return;
  pre = x;
  rstd.assign(size_t(rows), T(0));
  rmsnorm_fwd(pre.data(), w.data(), rows, D, eps, x.data(), rstd.data());
}

template <class T> void block_fwd(const Model& m, const LayerPlan& p, const typename Weights<T>::Layer& L, double ls,
                                  const Vec<T>& x, int64_t n, LayerActs<T>& a) {
  const HParams& hp = m.hp;
  const int64_t E = hp.n_embd, D = p.head_dim, F = p.n_ff;
  const T eps = T(hp.norm_eps);
  a.x0 = x;
  a.xn1.assign(size_t(n * E), T(0)); a.r1.assign(size_t(n), T(0));
  rmsnorm_fwd(x.data(), L.attn_norm.data(), n, E, eps, a.xn1.data(), a.r1.data());
  a.q.assign(size_t(n * p.q_width), T(0)); a.k.assign(size_t(n * p.kv_width), T(0)); a.v = a.k;
  lin_fwd(L, 0, ls, a.xn1.data(), n, E, p.q_width, a.q.data(), a.ax[0]);
  lin_fwd(L, 1, ls, a.xn1.data(), n, E, p.kv_width, a.k.data(), a.ax[1]);
  lin_fwd(L, 2, ls, a.xn1.data(), n, E, p.kv_width, a.v.data(), a.ax[2]);
  qk_norm_fwd(a.q, L.q_norm, n * p.n_head, D, eps, a.q_pre, a.rq);
  qk_norm_fwd(a.k, L.k_norm, n * p.n_head_kv, D, eps, a.k_pre, a.rk);
  rope_fwd(a.q.data(), n, p.n_head, D, 0, p.rope_theta, hp.rope_scale, hp.rope);
  rope_fwd(a.k.data(), n, p.n_head_kv, D, 0, p.rope_theta, hp.rope_scale, hp.rope);
  const AttnShape s{n, p.n_head, p.n_head_kv, D, p.window, p.attn_scale};
  a.att.assign(a.q.size(), T(0)); a.P.assign(size_t(p.n_head * n * n), T(0));
  attention_fwd(a.q.data(), a.k.data(), a.v.data(), s, a.att.data(), a.P.data());
  a.o.assign(size_t(n * E), T(0));
  lin_fwd(L, 3, ls, a.att.data(), n, p.q_width, E, a.o.data(), a.ax[3]);
  Vec<T> o2 = a.o;
  if (!L.attn_post_norm.empty()) {
    a.rpo.assign(size_t(n), T(0));
    rmsnorm_fwd(a.o.data(), L.attn_post_norm.data(), n, E, eps, o2.data(), a.rpo.data());
  }
  a.x1 = x;
  for (size_t i = 0; i < a.x1.size(); ++i) a.x1[i] += o2[i];
  a.xn2.assign(size_t(n * E), T(0)); a.r2.assign(size_t(n), T(0));
  rmsnorm_fwd(a.x1.data(), L.ffn_norm.data(), n, E, eps, a.xn2.data(), a.r2.data());
  a.g.assign(size_t(n * F), T(0)); a.u = a.g; a.h = a.g;
  lin_fwd(L, 4, ls, a.xn2.data(), n, E, F, a.g.data(), a.ax[4]);
  lin_fwd(L, 5, ls, a.xn2.data(), n, E, F, a.u.data(), a.ax[5]);
  glu_fwd(a.g.data(), a.u.data(), n * F, hp.act, a.h.data());
  a.d.assign(size_t(n * E), T(0));
  lin_fwd(L, 6, ls, a.h.data(), n, F, E, a.d.data(), a.ax[6]);
}

// The block's output: x1 + post_norm(d).
template <class T> Vec<T> block_out(const Model& m, const typename Weights<T>::Layer& L, int64_t n, LayerActs<T>& a) {
  const int64_t E = m.hp.n_embd;
  Vec<T> d2 = a.d;
  if (!L.ffn_post_norm.empty()) {
    a.rpd.assign(size_t(n), T(0));
    rmsnorm_fwd(a.d.data(), L.ffn_post_norm.data(), n, E, T(m.hp.norm_eps), d2.data(), a.rpd.data());
  }
  Vec<T> x2 = a.x1;
  for (size_t i = 0; i < x2.size(); ++i) x2[i] += d2[i];
  return x2;
}

// dy through an optional RMSNorm (post-norms): the gradient of its input.
template <class T> Vec<T> post_norm_bwd(const Vec<T>& dy, const Vec<T>& x, const Vec<T>& w, const Vec<T>& rstd,
                                        int64_t n, int64_t E, Vec<T>& dw) {
  if (w.empty()) return dy;
  Vec<T> dx(dy.size(), T(0));
  rmsnorm_bwd(dy.data(), x.data(), w.data(), rstd.data(), n, E, dx.data(), ptr(dw));
  return dx;
}

template <class T> void ffn_bwd(const Model& m, const LayerPlan& p, const typename Weights<T>::Layer& L,
                                typename Weights<T>::Layer& G, double ls, int64_t n, const LayerActs<T>& a, Vec<T>& dx) {
  const int64_t E = m.hp.n_embd, F = p.n_ff;
  const Vec<T> dd = post_norm_bwd(dx, a.d, L.ffn_post_norm, a.rpd, n, E, G.ffn_post_norm);
  Vec<T> dh(size_t(n * F), T(0)), dg = dh, du = dh, dxn2(size_t(n * E), T(0));
  lin_bwd(L, G, 6, ls, dd.data(), a.h.data(), n, F, E, dh.data(), a.ax[6]);
  glu_bwd(dh.data(), a.g.data(), a.u.data(), n * F, m.hp.act, dg.data(), du.data());
  lin_bwd(L, G, 4, ls, dg.data(), a.xn2.data(), n, E, F, dxn2.data(), a.ax[4]);
  lin_bwd(L, G, 5, ls, du.data(), a.xn2.data(), n, E, F, dxn2.data(), a.ax[5]);
  rmsnorm_bwd(dxn2.data(), a.x1.data(), L.ffn_norm.data(), a.r2.data(), n, E, dx.data(), ptr(G.ffn_norm));
}

// Gradient through rope and the optional QK-norm: dq holds d(rotated q) in, d(projection) out.
template <class T> void qk_bwd(Vec<T>& dq, int64_t n, int64_t heads, const LayerPlan& p, const Model& m,
                               const Vec<T>& w, const Vec<T>& pre, const Vec<T>& rstd, Vec<T>& dw) {
  rope_bwd(dq.data(), n, heads, p.head_dim, 0, p.rope_theta, m.hp.rope_scale, m.hp.rope);
  if (w.empty()) return;
  Vec<T> d(dq.size(), T(0));
  rmsnorm_bwd(dq.data(), pre.data(), w.data(), rstd.data(), n * heads, p.head_dim, d.data(), ptr(dw));
  dq = std::move(d);
}

// acc += add, when add is not empty.
template <class T> void add_grad(Vec<T>& acc, const Vec<T>& add) {
  if (add.empty()) return;
  if (add.size() != acc.size()) fail("a state gradient has ", add.size(), " values, the state ", acc.size());
  for (size_t i = 0; i < acc.size(); ++i) acc[i] += add[i];
}

// extra (may be null): gradients of the attention's inputs q, k, v from a state loss.
template <class T> void attn_bwd(const Model& m, const LayerPlan& p, const typename Weights<T>::Layer& L,
                                 typename Weights<T>::Layer& G, double ls, int64_t n, const LayerActs<T>& a, Vec<T>& dx,
                                 const typename States<T>::Layer* extra = nullptr) {
  const int64_t E = m.hp.n_embd;
  const Vec<T> dout = post_norm_bwd(dx, a.o, L.attn_post_norm, a.rpo, n, E, G.attn_post_norm);
  Vec<T> datt(a.att.size(), T(0)), dq(a.q.size(), T(0)), dk(a.k.size(), T(0)), dv(a.v.size(), T(0));
  lin_bwd(L, G, 3, ls, dout.data(), a.att.data(), n, p.q_width, E, datt.data(), a.ax[3]);
  const AttnShape s{n, p.n_head, p.n_head_kv, p.head_dim, p.window, p.attn_scale};
  attention_bwd(datt.data(), a.q.data(), a.k.data(), a.v.data(), a.P.data(), s, dq.data(), dk.data(), dv.data());
  if (extra) { add_grad(dq, extra->q); add_grad(dk, extra->k); add_grad(dv, extra->v); }
  qk_bwd(dq, n, p.n_head, p, m, L.q_norm, a.q_pre, a.rq, G.q_norm);
  qk_bwd(dk, n, p.n_head_kv, p, m, L.k_norm, a.k_pre, a.rk, G.k_norm);
  Vec<T> dxn1(size_t(n * E), T(0));
  lin_bwd(L, G, 0, ls, dq.data(), a.xn1.data(), n, E, p.q_width, dxn1.data(), a.ax[0]);
  lin_bwd(L, G, 1, ls, dk.data(), a.xn1.data(), n, E, p.kv_width, dxn1.data(), a.ax[1]);
  lin_bwd(L, G, 2, ls, dv.data(), a.xn1.data(), n, E, p.kv_width, dxn1.data(), a.ax[2]);
  rmsnorm_bwd(dxn1.data(), a.x0.data(), L.attn_norm.data(), a.r1.data(), n, E, dx.data(), ptr(G.attn_norm));
}

template <class T> struct Run {
  std::vector<LayerActs<T>> acts;
  Vec<T> xl, xf, rf, logits;
};

template <class T> void check_plan(const Model& m, const std::vector<LayerPlan>& plan, const Weights<T>& w, int64_t n) {
  if (int64_t(plan.size()) != m.hp.n_layer || w.layers.size() != plan.size())
    fail("the training plan has ", plan.size(), " layers, the model ", m.hp.n_layer, " and the weights ", w.layers.size());
  if (n <= 0) fail("nothing to train on");
}

template <class T> Run<T> run_forward(const Model& m, const std::vector<LayerPlan>& plan, const Weights<T>& w,
                                      const int32_t* ids, int64_t n) {
  check_plan(m, plan, w, n);
  const HParams& hp = m.hp;
  const int64_t E = hp.n_embd, V = hp.n_vocab;
  for (int64_t t = 0; t < n; ++t)
    if (ids[t] < 0 || ids[t] >= V) fail("token id ", ids[t], " is outside the vocabulary (", V, ")");
  Run<T> r;
  Vec<T> x = embed(m, w, ids, n);
  r.acts.resize(plan.size());
  for (size_t l = 0; l < plan.size(); ++l) {
    block_fwd<T>(m, plan[l], w.layers[l], w.lora_scale, x, n, r.acts[l]);
    x = block_out<T>(m, w.layers[l], n, r.acts[l]);
  }
  r.xl = std::move(x);
  r.xf.assign(size_t(n * E), T(0)); r.rf.assign(size_t(n), T(0));
  rmsnorm_fwd(r.xl.data(), w.out_norm.data(), n, E, T(hp.norm_eps), r.xf.data(), r.rf.data());
  r.logits.assign(size_t(n * V), T(0));
  const Vec<T>& out = w.output.empty() ? w.tok_embd : w.output;
  linear_fwd(r.xf.data(), out.data(), (const T*)nullptr, n, E, V, r.logits.data());
  return r;
}

// The states `want` asks for, copied out of a forward pass.
template <class T> States<T> collect_states(const Run<T>& r, const std::vector<uint8_t>& want) {
  if (want.size() > r.acts.size()) fail("states asked of ", want.size(), " layers; the model has ", r.acts.size());
  States<T> s;
  s.n = int64_t(r.rf.size());
  s.layers.resize(r.acts.size());
  for (size_t l = 0; l < want.size(); ++l) {
    auto& o = s.layers[l];
    if (want[l] & kHiddenState) o.h = l + 1 < r.acts.size() ? r.acts[l + 1].x0 : r.xl;
    if (want[l] & kQkvState) { o.q = r.acts[l].q; o.k = r.acts[l].k; o.v = r.acts[l].v; }
  }
  return s;
}

// Zero gradients shaped like the states s holds.
template <class T> States<T> zero_grads(const States<T>& s) {
  States<T> z;
  z.n = s.n;
  z.layers.resize(s.layers.size());
  for (size_t l = 0; l < s.layers.size(); ++l) {
    const auto& a = s.layers[l];
    auto& b = z.layers[l];
    b.h.assign(a.h.size(), T(0)); b.q.assign(a.q.size(), T(0)); b.k.assign(a.k.size(), T(0)); b.v.assign(a.v.size(), T(0));
  }
  return z;
}
}  // namespace

template <class T> States<T> forward_states(const Model& m, const std::vector<LayerPlan>& plan, const Weights<T>& w,
                                            const int32_t* ids, int64_t n, const std::vector<uint8_t>& want) {
  Run<T> r = run_forward(m, plan, w, ids, n);
  States<T> s = collect_states(r, want);
  s.logits = std::move(r.logits);
  return s;
}

template <class T> std::vector<T> embed(const Model& m, const Weights<T>& w, const int32_t* ids, int64_t n) {
  const int64_t E = m.hp.n_embd;
  Vec<T> x(size_t(n * E));
  embedding_fwd(w.tok_embd.data(), ids, n, E, x.data());
  if (m.hp.embed_scale) for (T& v : x) v *= T(std::sqrt(double(E)));
  return x;
}

template <class T> std::vector<T> block_output(const Model& m, const LayerPlan& p, const typename Weights<T>::Layer& L,
                                               const std::vector<T>& x, int64_t n) {
  if (int64_t(x.size()) != n * m.hp.n_embd) fail("block input has ", x.size(), " values, not ", n, " x ", m.hp.n_embd);
  LayerActs<T> a;
  block_fwd<T>(m, p, L, 0.0, x, n, a);
  return block_out<T>(m, L, n, a);
}

template <class T> double block_mse(const Model& m, const LayerPlan& p, const typename Weights<T>::Layer& L,
                                    const std::vector<T>& x, const std::vector<T>& target, int64_t n,
                                    typename Weights<T>::Layer* grad) {
  if (int64_t(x.size()) != n * m.hp.n_embd || target.size() != x.size())
    fail("block input/target have ", x.size(), "/", target.size(), " values, not ", n, " x ", m.hp.n_embd);
  LayerActs<T> a;
  block_fwd<T>(m, p, L, 0.0, x, n, a);
  const Vec<T> y = block_out<T>(m, L, n, a);
  const double inv = 1.0 / double(y.size());
  double loss = 0;
  Vec<T> dy(y.size());
  for (size_t i = 0; i < y.size(); ++i) {
    const double e = double(y[i]) - double(target[i]);
    loss += e * e;
    dy[i] = T(2 * e * inv);
  }
  if (!grad) return loss * inv;
  ffn_bwd<T>(m, p, L, *grad, 0.0, n, a, dy);    // dy: the block output's gradient in, its input's out
  attn_bwd<T>(m, p, L, *grad, 0.0, n, a, dy);
  return loss * inv;
}

template <class T> std::vector<T> logits(const Model& m, const std::vector<LayerPlan>& plan, const Weights<T>& w,
                                         const int32_t* ids, int64_t n) {
  return run_forward(m, plan, w, ids, n).logits;
}

template <class T> double loss_and_grad(const Model& m, const std::vector<LayerPlan>& plan, const Weights<T>& w,
                                        const int32_t* ids, int64_t n, const LogitLoss<T>& loss_fn,
                                        const StateLoss<T>& states, Weights<T>* grad) {
  Run<T> r = run_forward(m, plan, w, ids, n);
  const HParams& hp = m.hp;
  const int64_t E = hp.n_embd, V = hp.n_vocab;
  const States<T> st = states.fn ? collect_states(r, states.want) : States<T>{};
  if (!grad) return loss_fn(r.logits.data(), n, V, nullptr) + (states.fn ? states.fn(st, nullptr) : 0.0);
  States<T> ds = zero_grads(st);
  Vec<T> dlogits(r.logits.size(), T(0)), dxf(size_t(n * E), T(0)), dx(size_t(n * E), T(0));
  double loss = loss_fn(r.logits.data(), n, V, dlogits.data());
  if (states.fn) loss += states.fn(st, &ds);
  const bool is_tied = w.output.empty();
  linear_bwd(dlogits.data(), r.xf.data(), (is_tied ? w.tok_embd : w.output).data(), n, E, V, dxf.data(),
             ptr(is_tied ? grad->tok_embd : grad->output), (T*)nullptr);
  rmsnorm_bwd(dxf.data(), r.xl.data(), w.out_norm.data(), r.rf.data(), n, E, dx.data(), ptr(grad->out_norm));
  for (size_t l = plan.size(); l-- > 0;) {
    const auto* extra = l < ds.layers.size() ? &ds.layers[l] : nullptr;
    if (extra) add_grad(dx, extra->h);  // dx: the gradient of block l's output
    ffn_bwd<T>(m, plan[l], w.layers[l], grad->layers[l], w.lora_scale, n, r.acts[l], dx);
    attn_bwd<T>(m, plan[l], w.layers[l], grad->layers[l], w.lora_scale, n, r.acts[l], dx, extra);
  }
  if (hp.embed_scale) for (T& v : dx) v *= T(std::sqrt(double(E)));
  if (!grad->tok_embd.empty()) embedding_bwd(dx.data(), ids, n, E, grad->tok_embd.data());
  return loss;
}

template <class T> double loss_and_grad(const Model& m, const std::vector<LayerPlan>& plan, const Weights<T>& w,
                                        const int32_t* ids, int64_t n, const LogitLoss<T>& loss_fn, Weights<T>* grad) {
  return loss_and_grad(m, plan, w, ids, n, loss_fn, StateLoss<T>{}, grad);
}

template <class T> double loss_and_grad(const Model& m, const std::vector<LayerPlan>& plan, const Weights<T>& w,
                                        const int32_t* ids, const int32_t* targets, int64_t n, Weights<T>* grad) {
  const LogitLoss<T> ce = [&](const T* z, int64_t rows, int64_t V, T* dz) { return cross_entropy(z, targets, rows, V, dz); };
  return loss_and_grad(m, plan, w, ids, n, ce, grad);
}

template struct Weights<float>;
template struct Weights<double>;
template void add_lora<float>(Weights<float>&, const LoraOptions&);
template void add_lora<double>(Weights<double>&, const LoraOptions&);
template void merge_lora<float>(Weights<float>&);
template void merge_lora<double>(Weights<double>&);
template double loss_and_grad<float>(const Model&, const std::vector<LayerPlan>&, const Weights<float>&,
                                     const int32_t*, int64_t, const LogitLoss<float>&, Weights<float>*);
template double loss_and_grad<double>(const Model&, const std::vector<LayerPlan>&, const Weights<double>&,
                                      const int32_t*, int64_t, const LogitLoss<double>&, Weights<double>*);
template double loss_and_grad<float>(const Model&, const std::vector<LayerPlan>&, const Weights<float>&, const int32_t*,
                                     const int32_t*, int64_t, Weights<float>*);
template double loss_and_grad<double>(const Model&, const std::vector<LayerPlan>&, const Weights<double>&,
                                      const int32_t*, const int32_t*, int64_t, Weights<double>*);
#define SLIMLM_STATES_API(T)                                                                                    \
  template States<T> forward_states<T>(const Model&, const std::vector<LayerPlan>&, const Weights<T>&, const int32_t*, \
                                       int64_t, const std::vector<uint8_t>&);                                        \
  template double loss_and_grad<T>(const Model&, const std::vector<LayerPlan>&, const Weights<T>&, const int32_t*,    \
                                   int64_t, const LogitLoss<T>&, const StateLoss<T>&, Weights<T>*);
SLIMLM_STATES_API(float)
SLIMLM_STATES_API(double)
#undef SLIMLM_STATES_API
#define SLIMLM_BLOCK_API(T)                                                                                      \
  template std::vector<T> embed<T>(const Model&, const Weights<T>&, const int32_t*, int64_t);                     \
  template std::vector<T> block_output<T>(const Model&, const LayerPlan&, const Weights<T>::Layer&,                \
                                          const std::vector<T>&, int64_t);                                         \
  template double block_mse<T>(const Model&, const LayerPlan&, const Weights<T>::Layer&, const std::vector<T>&,    \
                               const std::vector<T>&, int64_t, Weights<T>::Layer*);
SLIMLM_BLOCK_API(float)
SLIMLM_BLOCK_API(double)
#undef SLIMLM_BLOCK_API
template std::vector<float> logits<float>(const Model&, const std::vector<LayerPlan>&, const Weights<float>&,
                                          const int32_t*, int64_t);
template std::vector<double> logits<double>(const Model&, const std::vector<LayerPlan>&, const Weights<double>&,
                                            const int32_t*, int64_t);

}  // namespace slimlm::train
