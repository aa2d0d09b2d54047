// The float path of the training engine's attention on the register-blocked GEMM
// (kernels::matmul_f32_rows): per query head, S = Q·Kᵀ over all n x n pairs, the causal (and
// window) mask applied in the softmax, O = P·V; the backward as four more products. The same
// math as the reference loops of train/ops.cpp (tested against them).
#pragma once
#include "train/ops.h"

namespace slimlm::train {
void attention_fwd_gemm(const float* q, const float* k, const float* v, const AttnShape& s, float* out, float* P);
void attention_bwd_gemm(const float* dout, const float* q, const float* k, const float* v, const float* P,
                        const AttnShape& s, float* dq, float* dk, float* dv);
}  // namespace slimlm::train
