#include "model/forward.h"
#include "core/error.h"
#include "kernels/kernels.h"
#include <cmath>
#include <omp.h>

namespace slimlm {

namespace k = kernels;

void embed_tokens(const Model& m, const int32_t* tokens, int64_t n, float* x) {
  const HParams& hp = m.hp;
  const int64_t E = hp.n_embd;
  const float emb_scale = hp.embed_scale ? std::sqrt(float(E)) : 1.0f;
  for (int64_t t = 0; t < n; ++t) {
    if (tokens[t] < 0 || tokens[t] >= hp.n_vocab) fail("token id ", tokens[t], " is outside the vocabulary (", hp.n_vocab, ")");
    float* xt = x + t * E;
    row_to_f32(m.tok_embd.type, m.tok_embd.row(tokens[t]), xt, E);
    if (hp.embed_scale) for (int64_t i = 0; i < E; ++i) xt[i] *= emb_scale;
  }
}

Session::Session(const Model& m, int64_t n_ctx, KvType kv) : m_(m), n_ctx_(n_ctx), kv_(kv) {
  if (n_ctx <= 0 || n_ctx > (1 << 20)) fail("context size ", n_ctx, " is out of range");
  plan_ = make_plan(m, kv, n_ctx);
  size_t bytes = 0;  // layers may have different KV-head counts: the plan lays them out
  for (const LayerPlan& p : plan_) bytes += size_t(n_ctx) * size_t(p.n_head_kv) * p.kv_rec;
  k_.assign(bytes, 0);
  v_.assign(bytes, 0);
}

void Session::truncate(int64_t pos) {
  if (pos < 0 || pos > pos_) fail("cannot truncate the cache to position ", pos);
  pos_ = pos;
}

static void grow(std::vector<float>& v, size_t n) { if (v.size() < n) v.resize(n); }

void Session::forward(const int32_t* tokens, int64_t n, int64_t logits_from, std::vector<float>& logits) {
  const HParams& hp = m_.hp;
  const int64_t E = hp.n_embd;
  if (n <= 0) fail("nothing to evaluate");
  if (pos_ + n > n_ctx_) fail("context overflow: ", pos_ + n, " tokens > context size ", n_ctx_);
  if (logits_from < 0 || logits_from > n) fail("bad logits range");
  grow(x_, size_t(n * E));
  embed_tokens(m_, tokens, n, x_.data());
  for (int64_t l = 0; l < hp.n_layer; ++l) block(l, n);
  const int64_t nl = n - logits_from;
  grow(xn_, size_t(n * E));
  for (int64_t t = logits_from; t < n; ++t)
    k::rmsnorm(x_.data() + t * E, reinterpret_cast<const float*>(m_.out_norm.data),
               E, hp.norm_eps, xn_.data() + (t - logits_from) * E);
  logits.resize(size_t(nl * hp.n_vocab));
  if (nl > 0) k::matmul(m_.output, xn_.data(), E, nl, logits.data(), hp.n_vocab);
  pos_ += n;
}

void Session::run_block(int64_t l, float* x, int64_t n) {
  if (l < 0 || l >= m_.hp.n_layer) fail("no block ", l);
  if (n <= 0 || n > n_ctx_) fail("run_block: ", n, " tokens do not fit the context of ", n_ctx_);
  const int64_t E = m_.hp.n_embd;
  grow(x_, size_t(n * E));
  std::copy(x, x + n * E, x_.data());
  pos_ = 0;
  block(l, n);
  std::copy(x_.data(), x_.data() + n * E, x);
}

namespace {
const float* f32(const Tensor& t) { return reinterpret_cast<const float*>(t.data); }
}  // namespace

// The block as the math reads; each step below works on the session's scratch buffers.
void Session::block(int64_t l, int64_t n) {
  const LayerPlan& p = plan_[size_t(l)];
  const Block& b = m_.blocks[size_t(l)];
  const int64_t E = m_.hp.n_embd;
  grow(xn_, size_t(n * E)); grow(q_, size_t(n * p.q_width)); grow(kn_, size_t(n * p.kv_width));
  grow(vn_, size_t(n * p.kv_width)); grow(att_, size_t(n * p.q_width)); grow(o_, size_t(n * E));
  grow(g_, size_t(n * p.n_ff)); grow(u_, size_t(n * p.n_ff));
  // attention: x += post_norm(Wo · attend(q, cached k, cached v) + bo)
  norm_rows(b.attn_norm, n);
  observe(l, LinearSite::AttnIn, xn_.data(), n, E);
  qkv(l, n);
  rope_and_cache(l, n);
  attention(l, n);
  observe(l, LinearSite::AttnOut, att_.data(), n, p.q_width);
  k::matmul(b.wo, att_.data(), p.q_width, n, o_.data(), E);
  residual(b.bo, b.attn_post_norm, n);
  // feed-forward: x += post_norm(Wdown · (act(Wgate · xn) ⊙ Wup · xn) + b_down)
  norm_rows(b.ffn_norm, n);
  observe(l, LinearSite::FfnIn, xn_.data(), n, E);
  ffn_hidden(l, n);
  observe(l, LinearSite::FfnDown, g_.data(), n, p.n_ff);
  k::matmul(b.w_down, g_.data(), p.n_ff, n, o_.data(), E);
  residual(b.b_down, b.ffn_post_norm, n);
}

// Per-token loops run in parallel for batches; each token's result is the same either way.
void Session::norm_rows(const Tensor& w, int64_t n) {
  const int64_t E = m_.hp.n_embd;
  const float eps = m_.hp.norm_eps;
  const float *x = x_.data(), *g = f32(w);
  float* xn = xn_.data();
#pragma omp parallel for schedule(static) if (n >= 16)
  for (int64_t t = 0; t < n; ++t) k::rmsnorm(x + t * E, g, E, eps, xn + t * E);
}

void Session::observe(int64_t l, LinearSite s, const float* x, int64_t n, int64_t ld) const {
  if (obs_) obs_(l, s, x, n, ld);
}

void Session::qkv(int64_t l, int64_t n) {
  const LayerPlan& p = plan_[size_t(l)];
  const Block& b = m_.blocks[size_t(l)];
  const int64_t E = m_.hp.n_embd;
  k::matmul(b.wq, xn_.data(), E, n, q_.data(), p.q_width);
  k::matmul(b.wk, xn_.data(), E, n, kn_.data(), p.kv_width);
  k::matmul(b.wv, xn_.data(), E, n, vn_.data(), p.kv_width);
}

// Biases, QK-norm and RoPE on each token's q and k, then k and v into the cache at its position.
void Session::rope_and_cache(int64_t l, int64_t n) {
  const LayerPlan& p = plan_[size_t(l)];
  const Block& b = m_.blocks[size_t(l)];
  const HParams& hp = m_.hp;
  const int64_t D = p.head_dim, Q = p.q_width, KV = p.kv_width;
  uint8_t* kc = k_.data() + p.kv_off;
  uint8_t* vc = v_.data() + p.kv_off;
#pragma omp parallel for schedule(static) if (n > 1)
  for (int64_t t = 0; t < n; ++t) {
    float *q = q_.data() + t * Q, *kk = kn_.data() + t * KV, *vv = vn_.data() + t * KV;
    thread_local std::vector<float> cs;  // the position's RoPE angles, shared by its heads
    cs.resize(size_t(D));
    k::rope_table(D, pos_ + t, p.rope_theta, hp.rope_scale, cs.data());
    if (!b.bq.empty()) {
      for (int64_t i = 0; i < Q; ++i) q[i] += f32(b.bq)[i];
      for (int64_t i = 0; i < KV; ++i) { kk[i] += f32(b.bk)[i]; vv[i] += f32(b.bv)[i]; }
    }
    for (int64_t h = 0; h < p.n_head; ++h) {
      if (hp.qk_norm) k::rmsnorm(q + h * D, f32(b.q_norm), D, hp.norm_eps, q + h * D);
      k::rope_apply(q + h * D, D, cs.data(), hp.rope);
    }
    for (int64_t h = 0; h < p.n_head_kv; ++h) {
      if (hp.qk_norm) k::rmsnorm(kk + h * D, f32(b.k_norm), D, hp.norm_eps, kk + h * D);
      k::rope_apply(kk + h * D, D, cs.data(), hp.rope);
    }
    for (int64_t h = 0; h < p.n_head_kv; ++h) {
      kv_store(p.kv, kk + h * D, D, kc + p.record(pos_ + t, h));
      kv_store(p.kv, vv + h * D, D, vc + p.record(pos_ + t, h));
    }
  }
}

// att_ (n x q_width): each query head over the cached positions it sees, with the plan's kernel.
void Session::attention(int64_t l, int64_t n) {
  const LayerPlan& p = plan_[size_t(l)];
  switch (p.kernel(n)) {
    case AttnKernel::Batch:
      if (attend_batch(p, n)) return;
      [[fallthrough]];  // the kernel declined (SIMD switched off since the plan was made)
    case AttnKernel::Grouped: attend_grouped(p, n); return;
    case AttnKernel::PerHead: attend_per_head(p, n); return;
  }
}

// Prompt batch: scores and P·V on the GEMM micro-kernel. An f16 cache is first converted to f32
// (exactly) for positions [0, pos_ + n).
bool Session::attend_batch(const LayerPlan& p, int64_t n) {
  const int64_t D = p.head_dim;
  const uint8_t *kc = k_.data() + p.kv_off, *vc = v_.data() + p.kv_off;
  const float *kf = reinterpret_cast<const float*>(kc), *vf = reinterpret_cast<const float*>(vc);
  if (p.kv == KvType::F16) {
    const int64_t rows = (pos_ + n) * p.n_head_kv;
    kf_.resize(size_t(rows * D));
    vf_.resize(size_t(rows * D));
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      kv_load(p.kv, kc + size_t(r) * p.kv_rec, D, kf_.data() + r * D);
      kv_load(p.kv, vc + size_t(r) * p.kv_rec, D, vf_.data() + r * D);
    }
    kf = kf_.data();
    vf = vf_.data();
  }
  return k::attend_batch(q_.data(), p.q_width, n, pos_, p.n_head, p.n_head_kv, D, kf, vf, p.kv_width, D,
                         p.attn_scale, p.window, att_.data());
}

// One work item per (token, KV head) over an f32 or f16 cache: its query heads read each row once.
void Session::attend_grouped(const LayerPlan& p, int64_t n) {
  const int64_t D = p.head_dim, Q = p.q_width, HKV = p.n_head_kv;
  const int G = int(p.n_head / HKV);
  const bool half = p.kv == KvType::F16;
  const int64_t stride = p.kv_width;  // elements between one position's records and the next
  const uint8_t *kc = k_.data() + p.kv_off, *vc = v_.data() + p.kv_off;
#pragma omp parallel
  {
    std::vector<float> s(size_t(G * (pos_ + n)));
#pragma omp for collapse(2) schedule(static)
    for (int64_t t = 0; t < n; ++t)
      for (int64_t kvh = 0; kvh < HKV; ++kvh) {
        const int64_t pos = pos_ + t, start = p.first_key(pos);
        const size_t off = p.record(start, kvh);
        const float* qh = q_.data() + t * Q + kvh * G * D;
        float* oh = att_.data() + t * Q + kvh * G * D;
        if (half)
          k::attend_f16(qh, G, D, reinterpret_cast<const uint16_t*>(kc + off),
                        reinterpret_cast<const uint16_t*>(vc + off), stride, pos - start + 1, p.attn_scale,
                        s.data(), oh);
        else
          k::attend(qh, G, D, reinterpret_cast<const float*>(kc + off), reinterpret_cast<const float*>(vc + off),
                    stride, pos - start + 1, p.attn_scale, s.data(), oh);
      }
  }
}

// One (token, query head) at a time over an int8 / int4 cache, each cached vector dequantized.
void Session::attend_per_head(const LayerPlan& p, int64_t n) {
  const int64_t D = p.head_dim, H = p.n_head, Q = p.q_width, group = p.n_head / p.n_head_kv;
  const uint8_t *kc = k_.data() + p.kv_off, *vc = v_.data() + p.kv_off;
#pragma omp parallel
  {
    std::vector<float> s(size_t(pos_ + n)), kbuf(static_cast<size_t>(D)), vbuf(static_cast<size_t>(D));
#pragma omp for collapse(2) schedule(static)
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t h = 0; h < H; ++h) {
        const int64_t pos = pos_ + t, kvh = h / group, start = p.first_key(pos), m = pos - start + 1;
        const float* q = q_.data() + t * Q + h * D;
        for (int64_t j = start; j <= pos; ++j) {
          kv_load(p.kv, kc + p.record(j, kvh), D, kbuf.data());
          s[size_t(j - start)] = k::dot(q, kbuf.data(), D) * p.attn_scale;
        }
        k::softmax(s.data(), m);
        float* out = att_.data() + t * Q + h * D;
        std::fill(out, out + D, 0.f);
        for (int64_t j = 0; j < m; ++j) {
          kv_load(p.kv, vc + p.record(start + j, kvh), D, vbuf.data());
          const float w = s[size_t(j)];
          for (int64_t i = 0; i < D; ++i) out[i] += w * vbuf[size_t(i)];
        }
      }
    }
  }
}

void Session::ffn_hidden(int64_t l, int64_t n) {
  const Block& b = m_.blocks[size_t(l)];
  const int64_t E = m_.hp.n_embd, F = plan_[size_t(l)].n_ff;
  k::matmul(b.w_gate, xn_.data(), E, n, g_.data(), F);
  k::matmul(b.w_up, xn_.data(), E, n, u_.data(), F);
  float *g = g_.data(), *u = u_.data();
  const bool silu = m_.hp.act == Activation::SiLU;
#pragma omp parallel for schedule(static) if (n >= 16)
  for (int64_t i = 0; i < n * F; ++i) g[i] = (silu ? k::silu(g[i]) : k::gelu_tanh(g[i])) * u[i];
}

void Session::residual(const Tensor& bias, const Tensor& post_norm, int64_t n) {
  const HParams& hp = m_.hp;
  const int64_t E = hp.n_embd;
  float *x = x_.data(), *o_all = o_.data();
#pragma omp parallel for schedule(static) if (n >= 16)
  for (int64_t t = 0; t < n; ++t) {
    float* o = o_all + t * E;
    if (!bias.empty()) for (int64_t i = 0; i < E; ++i) o[i] += f32(bias)[i];
    if (hp.post_norms) k::rmsnorm(o, f32(post_norm), E, hp.norm_eps, o);
    for (int64_t i = 0; i < E; ++i) x[t * E + i] += o[i];
  }
}

int32_t decode_step(Session& s, Sampler& smp, std::vector<int32_t>& feed, std::vector<int32_t>& history,
                    std::vector<float>& logits) {
  const Model& m = s.model();
  s.forward(feed.data(), int64_t(feed.size()), int64_t(feed.size()) - 1, logits);
  const int32_t id = smp.sample(logits.data(), m.hp.n_vocab, history);
  if (m.tok && m.tok->is_eog(id)) return -1;
  history.push_back(id);
  feed.assign(1, id);
  return id;
}

}  // namespace slimlm
