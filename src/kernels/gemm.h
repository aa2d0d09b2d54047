// Register-blocked f32 GEMM for many tokens (prefill, calibration, Hessians): Y = W Xᵀ with
// both operands k-contiguous. Activations are packed once into panels of kGemmNr tokens, each
// thread packs panels of kGemmMr weight rows (dequantized by the caller), and an AVX2+FMA
// micro-kernel keeps a kGemmMr x kGemmNr block of outputs in registers over a k-slice.
#pragma once
#include <cstdint>
#include <functional>

namespace slimlm::kernels {

constexpr int kGemmMr = 16;           // weight rows per micro-tile (two 8-float registers)
constexpr int kGemmNr = 6;            // tokens per micro-tile (12 accumulators)
constexpr int64_t kGemmKc = 512;      // k-slice: a packed row panel of 32 KiB stays near L1
constexpr int64_t kGemmMinTok = 16;   // below this the row-tile path of matmul.cpp is used

// Fills `dst` (n floats each) with rows r0..r0+nr-1 of the weight, as f32; returns pointers to
// the rows (either into dst or straight into the weight's own f32 storage).
using RowSource = std::function<void(int64_t r0, int nr, float* dst, const float** rows)>;

// y[t * ldy + r] = sum_i W[r][i] * x[t * ldx + i] for r < rows, t < n_tok (AVX2+FMA; the caller
// checks the CPU). Each output is summed in i order by one thread: the result does not depend on
// the thread count.
// The micro-kernel alone: for r < nr, j < nt, y[j * ldy + r] = [y[j * ldy + r] +]
// sum_{i < kc} a[i * lda + r] * b[i * kGemmNr + j], each output summed in i order. a is read for all
// kGemmMr lanes (they must be readable), b for all kGemmNr. AVX2+FMA (the caller checks the CPU).
void gemm_micro(const float* a, int64_t lda, const float* b, int64_t kc, bool accumulate, float* y, int64_t ldy,
                int nr, int nt);

void gemm_f32(const RowSource& src, int64_t rows, int64_t k, const float* x, int64_t ldx, int64_t n_tok,
              float* y, int64_t ldy);

}  // namespace slimlm::kernels
