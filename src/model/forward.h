// The forward pass of every supported family, written as the math reads: each block is
//   x += post_norm_attn(Wo · attention(rope(Wq·n), rope(Wk·n), Wv·n))   with n = rmsnorm(x)
//   x += post_norm_ffn(Wdown · (act(Wgate·n) ⊙ Wup·n))                  with n = rmsnorm(x)
// split into named steps that read the session's per-layer plan (model/plan.h). A Session owns
// the KV cache (f32, f16, int8 or int4) and scratch; batched prefill and single-token decode
// share the steps.
#pragma once
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/plan.h"
#include "model/sampler.h"
#include <cstdint>
#include <vector>

namespace slimlm {

// Token embeddings (scaled for families that scale them) into x (n x n_embd).
void embed_tokens(const Model& m, const int32_t* tokens, int64_t n, float* x);

class Session {
 public:
  Session(const Model& m, int64_t n_ctx, KvType kv = KvType::F32);
  // Runs tokens at positions pos()..pos()+n-1 and advances pos(). Writes logits of tokens
  // [logits_from, n) to `logits` ((n - logits_from) x n_vocab, row-major).
  void forward(const int32_t* tokens, int64_t n, int64_t logits_from, std::vector<float>& logits);
  int64_t pos() const { return pos_; }
  int64_t n_ctx() const { return n_ctx_; }
  void reset() { pos_ = 0; }
  // Drops cached positions >= pos (e.g. to re-run a rejected draft).
  void truncate(int64_t pos);
  const Model& model() const { return m_; }
  // Runs block `l` alone on the residual stream x (n x n_embd, updated in place) at positions
  // 0..n-1; for layer-wise calibration. Calls the observer (if set) at every linear input.
  void run_block(int64_t l, float* x, int64_t n);
  void set_observer(LinearObserver f) { obs_ = std::move(f); }
  size_t kv_bytes() const { return k_.size() + v_.size(); }
  KvType kv_type() const { return kv_; }
  // The per-layer plan the steps read (decided when the session was opened).
  const std::vector<LayerPlan>& plan() const { return plan_; }

 private:
  // One block on the residual stream x_ (n tokens at positions pos_..pos_+n-1), in steps.
  void block(int64_t l, int64_t n);
  void norm_rows(const Tensor& w, int64_t n);                             // xn_ = rmsnorm(x_)
  void observe(int64_t l, LinearSite s, const float* x, int64_t n, int64_t ld) const;
  void qkv(int64_t l, int64_t n);                                          // q_, kn_, vn_ from xn_
  void rope_and_cache(int64_t l, int64_t n);                               // rotate q/k, store k/v
  void attention(int64_t l, int64_t n);                                    // att_ from q_ and the cache
  void attend_grouped(const LayerPlan& p, int64_t n);
  void attend_per_head(const LayerPlan& p, int64_t n);
  bool attend_batch(const LayerPlan& p, int64_t n);
  void ffn_hidden(int64_t l, int64_t n);                                   // g_ = act(gate) ⊙ up
  // x_ += post_norm(o_ + bias) over n tokens (bias / post_norm may be empty).
  void residual(const Tensor& bias, const Tensor& post_norm, int64_t n);

  const Model& m_;
  LinearObserver obs_;
  int64_t n_ctx_, pos_ = 0;
  KvType kv_;
  std::vector<LayerPlan> plan_;
  std::vector<uint8_t> k_, v_;                      // [layer][pos][n_head_kv(layer)] records
  std::vector<float> x_, xn_, q_, kn_, vn_, att_, o_, g_, u_;  // scratch, grown on demand
  std::vector<float> kf_, vf_;  // an f16 cache layer as f32, for prompt batches
};

// One step of generation: runs `feed` (the tokens not yet in the session) and samples the next
// token. Returns -1 at an end-of-generation token; otherwise appends the token to history and
// makes it the next feed.
int32_t decode_step(Session& s, Sampler& smp, std::vector<int32_t>& feed, std::vector<int32_t>& history,
                    std::vector<float>& logits);

}  // namespace slimlm
