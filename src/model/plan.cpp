#include "model/plan.h"
#include "core/error.h"
#include "kernels/gemm.h"
#include "kernels/qdot.h"
#include <cmath>

namespace slimlm {

AttnKernel LayerPlan::kernel(int64_t n) const {
  if (batch_ok && n >= kernels::kGemmMinTok) return AttnKernel::Batch;
  return kv == KvType::F32 || kv == KvType::F16 ? AttnKernel::Grouped : AttnKernel::PerHead;
}

std::vector<LayerPlan> make_plan(const Model& m, KvType kv, int64_t n_ctx) {
  const HParams& hp = m.hp;
  std::vector<LayerPlan> plan(size_t(hp.n_layer));
  size_t off = 0;
  for (int64_t l = 0; l < hp.n_layer; ++l) {
    LayerPlan& p = plan[size_t(l)];
    p.n_head = hp.n_head_at(l);
    p.n_head_kv = hp.n_head_kv_at(l);
    p.head_dim = hp.head_dim;
    p.n_ff = hp.n_ff_at(l);
    if (p.n_head_kv <= 0 || p.n_head % p.n_head_kv != 0)
      fail("layer ", l, ": ", p.n_head, " query heads cannot share ", p.n_head_kv, " KV heads");
    p.q_width = p.n_head * p.head_dim;
    p.kv_width = p.n_head_kv * p.head_dim;
    const bool local = !hp.swa_layer.empty() && hp.swa_layer[size_t(l)];
    p.window = local && hp.sliding_window > 0 ? hp.sliding_window : 0;
    p.rope_theta = local ? hp.rope_theta_swa : hp.rope_theta;
    p.attn_scale = hp.attn_scale > 0 ? hp.attn_scale : 1.0f / std::sqrt(float(hp.head_dim));
    p.kv = kv;
    p.kv_rec = kv_record_bytes(kv, hp.head_dim);
    p.kv_off = off;
    p.batch_ok = (kv == KvType::F32 || kv == KvType::F16) && hp.head_dim % kernels::kGemmMr == 0 &&
                 kernels::simd_enabled();
    off += size_t(n_ctx) * size_t(p.n_head_kv) * p.kv_rec;
  }
  return plan;
}

}  // namespace slimlm
