// The training engine's operators, each forward beside its backward (as llm.c lays them out):
// embedding, RMSNorm, RoPE, grouped-query causal attention with an optional sliding window,
// SwiGLU / GeGLU, linear, and cross-entropy. Row-major activations: token t's vector of width
// w starts at t * w. Every backward ADDS into its gradient outputs (so a tied weight, or a
// residual stream read by two branches, accumulates), and reads only what its forward saved.
//
// Instantiated for float (training) and double (the float64 finite-difference checks in
// tests/train). These are the plain reference loops; the fast paths call the same signatures.
#pragma once
#include "model/model.h"  // RopeType, Activation
#include <cstdint>

namespace slimlm::train {

// y[t] = W[ids[t]] (W: vocab x E, f32 rows); dW[ids[t]] += dy[t].
template <class T> void embedding_fwd(const T* W, const int32_t* ids, int64_t n, int64_t E, T* y);
template <class T> void embedding_bwd(const T* dy, const int32_t* ids, int64_t n, int64_t E, T* dW);

// y = x · rstd · w with rstd = 1/sqrt(mean(x²) + eps) per token; saves rstd (n values). dw may be null.
template <class T> void rmsnorm_fwd(const T* x, const T* w, int64_t n, int64_t E, T eps, T* y, T* rstd);
template <class T> void rmsnorm_bwd(const T* dy, const T* x, const T* w, const T* rstd, int64_t n, int64_t E, T* dx,
                                    T* dw);

// y = x · Wᵀ (+ b): x n x k, W rows x k, y n x rows. dx += dy · W, dW += dyᵀ · x, db += Σ dy.
template <class T> void linear_fwd(const T* x, const T* W, const T* b, int64_t n, int64_t k, int64_t rows, T* y);
template <class T> void linear_bwd(const T* dy, const T* x, const T* W, int64_t n, int64_t k, int64_t rows, T* dx,
                                   T* dW, T* db);

// Rotary embedding of n tokens (token t at position pos0 + t), each with `heads` vectors of d:
// in place. The backward rotates the gradient by the opposite angle (the rotation is orthogonal).
template <class T> void rope_fwd(T* x, int64_t n, int64_t heads, int64_t d, int64_t pos0, double theta,
                                 double scale, RopeType type);
template <class T> void rope_bwd(T* dx, int64_t n, int64_t heads, int64_t d, int64_t pos0, double theta,
                                 double scale, RopeType type);

// Causal attention of n tokens: q n x (H·D), k and v n x (HKV·D); query head h reads KV head
// h / (H / HKV) at positions [max(0, t - window + 1), t] (window 0: all of [0, t]).
// out n x (H·D); saves the probabilities P (H x n x n, zero outside the causal window).
struct AttnShape {
  int64_t n = 0, H = 0, HKV = 0, D = 0, window = 0;
  double scale = 1;
  int64_t first_key(int64_t t) const { return window > 0 && t - window + 1 > 0 ? t - window + 1 : 0; }
};
template <class T> void attention_fwd(const T* q, const T* k, const T* v, const AttnShape& s, T* out, T* P);
template <class T> void attention_bwd(const T* dout, const T* q, const T* k, const T* v, const T* P, const AttnShape& s,
                                      T* dq, T* dk, T* dv);

// h = act(g) ⊙ u over m values (act: SiLU or tanh-GELU); dg += dh ⊙ u ⊙ act'(g), du += dh ⊙ act(g).
template <class T> void glu_fwd(const T* g, const T* u, int64_t m, Activation act, T* h);
template <class T> void glu_bwd(const T* dh, const T* g, const T* u, int64_t m, Activation act, T* dg, T* du);

// Mean next-token cross-entropy over n rows of logits (n x V) against targets (a target < 0 is
// ignored and not counted). Returns the loss; dlogits += (softmax − onehot) / counted.
template <class T> double cross_entropy(const T* logits, const int32_t* targets, int64_t n, int64_t V, T* dlogits);

}  // namespace slimlm::train
