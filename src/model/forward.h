// The forward pass of every supported family: one loop over blocks with small switches for
// family differences (QK-norm, post-norms, sliding-window layers, activation). A Session
// owns the KV cache (f32, f16, int8 or int4) and scratch; batched prefill and single-token
// decode share code.
#pragma once
#include "model/kv_cache.h"
#include "model/model.h"
#include <cstdint>
#include <functional>
#include <vector>

namespace slimlm {

// Where a block's linear layers read their input (q/k/v share one, gate/up share one); the
// layer-wise calibration pipeline observes these to collect statistics.
enum class LinearSite { AttnIn = 0, AttnOut = 1, FfnIn = 2, FfnDown = 3 };
constexpr int kLinearSites = 4;
using LinearObserver = std::function<void(int64_t layer, LinearSite site, const float* x, int64_t n, int64_t ld)>;

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

 private:
  void block(int64_t l, int64_t n);
  const Model& m_;
  LinearObserver obs_;
  int64_t n_ctx_, pos_ = 0;
  KvType kv_;
  size_t rec_;                                      // bytes of one cached head vector
  std::vector<uint8_t> k_, v_;                      // [layer][pos][n_head_kv(layer)] records
  std::vector<size_t> layer_off_;                   // byte offset of each layer's records
  std::vector<float> x_, xn_, q_, kn_, vn_, att_, o_, g_, u_;  // scratch, grown on demand
  std::vector<float> kf_, vf_;  // an f16 cache layer as f32, for prompt batches
};

}  // namespace slimlm
