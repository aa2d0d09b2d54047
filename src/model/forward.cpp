#include "model/forward.h"
#include "core/error.h"
#include "kernels/gemm.h"
#include "kernels/kernels.h"
#include "kernels/qdot.h"
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

Session::Session(const Model& m, int64_t n_ctx, KvType kv)
    : m_(m), n_ctx_(n_ctx), kv_(kv), rec_(kv_record_bytes(kv, m.hp.head_dim)) {
  if (n_ctx <= 0 || n_ctx > (1 << 20)) fail("context size ", n_ctx, " is out of range");
  const HParams& hp = m.hp;
  // Layer l's records start at layer_off_[l]: layers may have different KV-head counts.
  layer_off_.assign(size_t(hp.n_layer) + 1, 0);
  for (int64_t l = 0; l < hp.n_layer; ++l)
    layer_off_[size_t(l) + 1] = layer_off_[size_t(l)] + size_t(n_ctx) * size_t(hp.n_head_kv_at(l)) * rec_;
  const size_t bytes = layer_off_.back();
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

void Session::block(int64_t l, int64_t n) {
  const HParams& hp = m_.hp;
  const Block& b = m_.blocks[size_t(l)];
  const int64_t E = hp.n_embd, D = hp.head_dim, H = hp.n_head_at(l), HKV = hp.n_head_kv_at(l);
  const int64_t Q = H * D, KV = HKV * D, F = hp.n_ff_at(l);
  const bool swa = !hp.swa_layer.empty() && hp.swa_layer[size_t(l)];
  const float theta = swa ? hp.rope_theta_swa : hp.rope_theta;
  const float scale = hp.attn_scale > 0 ? hp.attn_scale : 1.0f / std::sqrt(float(D));
  auto f32 = [](const Tensor& t) { return reinterpret_cast<const float*>(t.data); };
  grow(xn_, size_t(n * E)); grow(q_, size_t(n * Q)); grow(kn_, size_t(n * KV)); grow(vn_, size_t(n * KV));
  grow(att_, size_t(n * Q)); grow(o_, size_t(n * E)); grow(g_, size_t(n * F)); grow(u_, size_t(n * F));
  float *x = x_.data(), *xn = xn_.data();

  // attention (per-token loops run in parallel for batches; each token's result is the same)
#pragma omp parallel for schedule(static) if (n >= 16)
  for (int64_t t = 0; t < n; ++t) k::rmsnorm(x + t * E, f32(b.attn_norm), E, hp.norm_eps, xn + t * E);
  if (obs_) obs_(l, LinearSite::AttnIn, xn, n, E);
  k::matmul(b.wq, xn, E, n, q_.data(), Q);
  k::matmul(b.wk, xn, E, n, kn_.data(), KV);
  k::matmul(b.wv, xn, E, n, vn_.data(), KV);
  const size_t rec = rec_;
  uint8_t* kc = k_.data() + layer_off_[size_t(l)];   // record of (pos j, head h): (j * HKV + h) * rec
  uint8_t* vc = v_.data() + layer_off_[size_t(l)];
#pragma omp parallel for schedule(static) if (n > 1)
  for (int64_t t = 0; t < n; ++t) {
    float *q = q_.data() + t * Q, *kk = kn_.data() + t * KV, *vv = vn_.data() + t * KV;
    thread_local std::vector<float> cs;  // the position's RoPE angles, shared by its heads
    cs.resize(size_t(D));
    k::rope_table(D, pos_ + t, theta, hp.rope_scale, cs.data());
    if (!b.bq.empty()) {
      for (int64_t i = 0; i < Q; ++i) q[i] += f32(b.bq)[i];
      for (int64_t i = 0; i < KV; ++i) { kk[i] += f32(b.bk)[i]; vv[i] += f32(b.bv)[i]; }
    }
    for (int64_t h = 0; h < H; ++h) {
      if (hp.qk_norm) k::rmsnorm(q + h * D, f32(b.q_norm), D, hp.norm_eps, q + h * D);
      k::rope_apply(q + h * D, D, cs.data(), hp.rope);
    }
    for (int64_t h = 0; h < HKV; ++h) {
      if (hp.qk_norm) k::rmsnorm(kk + h * D, f32(b.k_norm), D, hp.norm_eps, kk + h * D);
      k::rope_apply(kk + h * D, D, cs.data(), hp.rope);
    }
    for (int64_t h = 0; h < HKV; ++h) {
      kv_store(kv_, kk + h * D, D, kc + size_t((pos_ + t) * HKV + h) * rec);
      kv_store(kv_, vv + h * D, D, vc + size_t((pos_ + t) * HKV + h) * rec);
    }
  }
  const int64_t window = swa && hp.sliding_window > 0 ? hp.sliding_window : 0;
  const bool batch = n >= k::kGemmMinTok && D % k::kGemmMr == 0 && k::simd_enabled();
  if (kv_ == KvType::F32 && batch &&
      k::attend_batch(q_.data(), Q, n, pos_, H, HKV, D, reinterpret_cast<const float*>(kc),
                      reinterpret_cast<const float*>(vc), int64_t(HKV * rec) / 4, int64_t(rec) / 4, scale, window,
                      att_.data())) {
    // prompt batch: scores and P·V on the GEMM micro-kernel (kernels.h)
  } else if (kv_ == KvType::F16 && batch) {
    // the same over the layer's cache converted to f32 once (exact), [0, pos_ + n) x HKV x D
    const int64_t P = pos_ + n;
    kf_.resize(size_t(P * HKV * D));
    vf_.resize(size_t(P * HKV * D));
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < P * HKV; ++r) {
      kv_load(kv_, kc + size_t(r) * rec, D, kf_.data() + r * D);
      kv_load(kv_, vc + size_t(r) * rec, D, vf_.data() + r * D);
    }
    const bool done = k::attend_batch(q_.data(), Q, n, pos_, H, HKV, D, kf_.data(), vf_.data(), HKV * D, D, scale,
                                      window, att_.data());
    SLIMLM_ASSERT(done);
  } else if (kv_ == KvType::F32 || kv_ == KvType::F16) {
    // one work item per (token, KV head): its query heads read each row once
    const int G = int(H / HKV);
    const int64_t stride = int64_t(HKV * rec) / (kv_ == KvType::F32 ? 4 : 2);  // in elements
#pragma omp parallel
    {
      std::vector<float> s(size_t(G * (pos_ + n)));
#pragma omp for collapse(2) schedule(static)
      for (int64_t t = 0; t < n; ++t)
        for (int64_t kvh = 0; kvh < HKV; ++kvh) {
          const int64_t p = pos_ + t;
          const int64_t start = swa && hp.sliding_window > 0 ? std::max<int64_t>(0, p - hp.sliding_window + 1) : 0;
          const size_t off = size_t(start * HKV + kvh) * rec;
          const float* qh = q_.data() + t * Q + kvh * G * D;
          float* oh = att_.data() + t * Q + kvh * G * D;
          if (kv_ == KvType::F32)
            k::attend(qh, G, D, reinterpret_cast<const float*>(kc + off), reinterpret_cast<const float*>(vc + off),
                      stride, p - start + 1, scale, s.data(), oh);
          else
            k::attend_f16(qh, G, D, reinterpret_cast<const uint16_t*>(kc + off),
                          reinterpret_cast<const uint16_t*>(vc + off), stride, p - start + 1, scale, s.data(), oh);
        }
    }
  } else {
#pragma omp parallel
    {
      std::vector<float> s(static_cast<size_t>(pos_ + n)), kbuf(static_cast<size_t>(D)), vbuf(static_cast<size_t>(D));
      // One cached head vector as floats: the record itself for an f32 cache, else dequantized.
      auto head = [&](const uint8_t* cache, int64_t j, int64_t kvh, std::vector<float>& buf) -> const float* {
        const uint8_t* r = cache + size_t(j * HKV + kvh) * rec;
        if (kv_ == KvType::F32) return reinterpret_cast<const float*>(r);
        kv_load(kv_, r, D, buf.data());
        return buf.data();
      };
#pragma omp for collapse(2) schedule(static)
      for (int64_t t = 0; t < n; ++t) {
        for (int64_t h = 0; h < H; ++h) {
          const int64_t p = pos_ + t, kvh = h / (H / HKV);
          const int64_t start = swa && hp.sliding_window > 0 ? std::max<int64_t>(0, p - hp.sliding_window + 1) : 0;
          const float* q = q_.data() + t * Q + h * D;
          for (int64_t j = start; j <= p; ++j) s[size_t(j - start)] = k::dot(q, head(kc, j, kvh, kbuf), D) * scale;
          const int64_t m = p - start + 1;
          k::softmax(s.data(), m);
          float* out = att_.data() + t * Q + h * D;
          std::fill(out, out + D, 0.f);
          for (int64_t j = 0; j < m; ++j) {
            const float w = s[size_t(j)];
            const float* v = head(vc, start + j, kvh, vbuf);
            for (int64_t i = 0; i < D; ++i) out[i] += w * v[i];
          }
        }
      }
    }
  }
  if (obs_) obs_(l, LinearSite::AttnOut, att_.data(), n, Q);
  k::matmul(b.wo, att_.data(), Q, n, o_.data(), E);
#pragma omp parallel for schedule(static) if (n >= 16)
  for (int64_t t = 0; t < n; ++t) {
    float* o = o_.data() + t * E;
    if (!b.bo.empty()) for (int64_t i = 0; i < E; ++i) o[i] += f32(b.bo)[i];
    if (hp.post_norms) k::rmsnorm(o, f32(b.attn_post_norm), E, hp.norm_eps, o);
    for (int64_t i = 0; i < E; ++i) x[t * E + i] += o[i];
  }

  // feed-forward: down(act(gate(x)) * up(x))
#pragma omp parallel for schedule(static) if (n >= 16)
  for (int64_t t = 0; t < n; ++t) k::rmsnorm(x + t * E, f32(b.ffn_norm), E, hp.norm_eps, xn + t * E);
  if (obs_) obs_(l, LinearSite::FfnIn, xn, n, E);
  k::matmul(b.w_gate, xn, E, n, g_.data(), F);
  k::matmul(b.w_up, xn, E, n, u_.data(), F);
  float *g = g_.data(), *u = u_.data();
  const bool silu = hp.act == Activation::SiLU;
#pragma omp parallel for schedule(static) if (n >= 16)
  for (int64_t i = 0; i < n * F; ++i) g[i] = (silu ? k::silu(g[i]) : k::gelu_tanh(g[i])) * u[i];
  if (obs_) obs_(l, LinearSite::FfnDown, g, n, F);
  k::matmul(b.w_down, g, F, n, o_.data(), E);
#pragma omp parallel for schedule(static) if (n >= 16)
  for (int64_t t = 0; t < n; ++t) {
    float* o = o_.data() + t * E;
    if (!b.b_down.empty()) for (int64_t i = 0; i < E; ++i) o[i] += f32(b.b_down)[i];
    if (hp.post_norms) k::rmsnorm(o, f32(b.ffn_post_norm), E, hp.norm_eps, o);
    for (int64_t i = 0; i < E; ++i) x[t * E + i] += o[i];
  }
}

}  // namespace slimlm
