// CPU kernels of the forward pass. matmul works on weights of any storage type: block types
// with an integer kernel (kernels/qdot.h) use 8-bit activations as llama.cpp does; the others
// (and all in an ExactScope(true)) are dequantized into an f32 tile. AVX2 chosen at run time
// (kernels/cpu.h).
#pragma once
#include "core/tensor.h"
#include "kernels/cpu.h"
#include <cstdint>

namespace slimlm::kernels {

// y[t * ldy + r] = sum_c W[r][c] * x[t * ldx + c] for t < n_tok, r < W.rows(). For q4_0..q8_0
// and q2_K..q6_K weights x is first quantized to q8_0/q8_1/q8_K per token (unless exact()).
void matmul(const Tensor& w, const float* x, int64_t ldx, int64_t n_tok, float* y, int64_t ldy);
// The same for a plain contiguous row-major f32 matrix (rows x k) that is not a Tensor.
void matmul_f32_rows(const float* w, int64_t rows, int64_t k, const float* x, int64_t ldx, int64_t n_tok,
                     float* y, int64_t ldy);
// One float dot product (the SIMD path used by matmul; exposed for tests).
float dot(const float* a, const float* b, int64_t n);

// Attention of g_n query heads (q: g_n x D, contiguous) that share one KV head, over m cached
// rows (key j at k + j * stride, value j at v + j * stride, f32):
// out[g] = softmax_j(scale · q_g·k_j) · v_j. s: scratch of g_n * m floats.
void attend(const float* q, int g_n, int64_t D, const float* k, const float* v, int64_t stride, int64_t m, float scale,
            float* s, float* out);
// The same over an f16 cache (stride in f16 elements); values are converted as they are read.
void attend_f16(const float* q, int g_n, int64_t D, const uint16_t* k, const uint16_t* v, int64_t stride, int64_t m,
                float scale, float* s, float* out);

// Causal attention of a prompt batch over an f32 cache. Token t < n_tok sits at position p0 + t;
// its query head h (q[t * ldq + h * D ..]) attends to the positions j in [lo, p0 + t] (lo = 0, or
// p0 + t - window + 1 when window > 0) of KV head h / (n_head / n_kv), whose key is at
// kcache[j * row_stride + kvh * head_stride ..] (value likewise in vcache); the result goes to
// out[t * ldq + h * D ..]. The same math as attend() (other summation order). Returns false,
// doing nothing, where it does not apply (no AVX2, D not a multiple of 16): use attend().
bool attend_batch(const float* q, int64_t ldq, int64_t n_tok, int64_t p0, int64_t n_head, int64_t n_kv, int64_t D,
                  const float* kcache, const float* vcache, int64_t row_stride, int64_t head_stride, float scale,
                  int64_t window, float* out);

void rmsnorm(const float* x, const float* w, int64_t n, float eps, float* y);  // y may alias x
// Rotates one head vector in place at position `pos`.
void rope(float* v, int64_t head_dim, int64_t pos, float theta, float scale, RopeType type);
// The same in two steps, so the heads of one position share the angles: cs[2i], cs[2i+1] =
// cos, sin of pos/scale · theta^(-2i/d); rope_apply rotates one head vector with them.
void rope_table(int64_t head_dim, int64_t pos, float theta, float scale, float* cs);
void rope_apply(float* v, int64_t head_dim, const float* cs, RopeType type);
void softmax(float* x, int64_t n);
inline float silu(float x) { return x / (1.0f + __builtin_expf(-x)); }
float gelu_tanh(float x);

}  // namespace slimlm::kernels

namespace slimlm::kernels::ref {
// Scalar float64 references: the truth optimized kernels are tested against.
void matmul(const Tensor& w, const float* x, int64_t ldx, int64_t n_tok, double* y, int64_t ldy);
void attend(const float* q, int g_n, int64_t D, const float* k, const float* v, int64_t stride, int64_t m, float scale,
            double* out);
}  // namespace slimlm::kernels::ref
