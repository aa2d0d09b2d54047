// The per-layer plan of the forward pass: everything about layer l that does not change from one
// call to the next (head counts, widths, the attention window, RoPE base, where its KV records
// live and in which type, which attention kernel a batch uses) decided once, when a session is
// opened on a loaded model. The forward pass (model/forward.cpp) reads only this plan and the
// block's weights; a backward pass, layer skipping or early exit read the same plan, so they
// cannot drift from it.
#pragma once
#include "model/kv_cache.h"
#include "model/model.h"
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace slimlm {

// The points of a block where its linear layers read their input (q/k/v share one, gate/up
// share one). The forward pass reports each to an observer; layer-wise calibration collects
// statistics there.
enum class LinearSite { AttnIn = 0, AttnOut = 1, FfnIn = 2, FfnDown = 3 };
constexpr int kLinearSites = 4;
using LinearObserver = std::function<void(int64_t layer, LinearSite site, const float* x, int64_t n, int64_t ld)>;

// How a layer's attention runs over its cache.
enum class AttnKernel {
  Batch,    // prompt batch on the GEMM micro-kernel (kernels::attend_batch); f32 or f16 cache
  Grouped,  // one work item per (token, KV head): its query heads read each cached row once
  PerHead,  // one (token, head) at a time, each cached vector dequantized (int8 / int4 caches)
};

struct LayerPlan {
  int64_t n_head = 0, n_head_kv = 0, head_dim = 0, n_ff = 0;
  int64_t q_width = 0, kv_width = 0;  // n_head · head_dim, n_head_kv · head_dim
  int64_t window = 0;                  // sliding-window size; 0: full causal attention
  float rope_theta = 10000.f;          // the local (sliding-window) base on local layers
  float attn_scale = 0;                // multiplies q·k
  KvType kv = KvType::F32;
  size_t kv_rec = 0;                   // bytes of one cached head vector
  size_t kv_off = 0;                   // byte offset of the layer's records in the cache
  bool batch_ok = false;               // attend_batch applies (AVX2, head_dim a multiple of 16, f32/f16 cache)

  // The first position that position p attends to.
  int64_t first_key(int64_t p) const { return window > 0 && p - window + 1 > 0 ? p - window + 1 : 0; }
  // The kernel for a batch of n tokens.
  AttnKernel kernel(int64_t n) const;
  // Byte offset, inside the layer's records, of position pos, KV head h.
  size_t record(int64_t pos, int64_t h) const { return size_t(pos * n_head_kv + h) * kv_rec; }
};

// One LayerPlan per block, KV records laid out layer after layer for n_ctx positions.
std::vector<LayerPlan> make_plan(const Model& m, KvType kv, int64_t n_ctx);

}  // namespace slimlm
