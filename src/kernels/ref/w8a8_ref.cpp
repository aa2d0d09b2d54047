// Scalar reference of the W8A8 kernels (src/kernels/w8a8.h): per-token int8 quantization of
// activations and the int8 x int8 -> int32 GEMM, element by element. The AVX2 path is tested
// against these bit for bit.
#include "kernels/w8a8.h"
#include <algorithm>
#include <cmath>
#include <cstring>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")  // x · id rounded before the rounding trick, in every build
#endif

namespace slimlm::kernels::ref {

float quantize_row_i8(const float* x, int8_t* q, int64_t n) {
  float amax = 0.f;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float id = amax != 0.f ? 127.f / amax : 0.f;
  for (int64_t i = 0; i < n; ++i) {
    // ties to even, as ggml's AVX2 quantize_row_q8_0 (|x · id| <= 127 < 2^22: the trick is exact)
    const float t = x[i] * id + 12582912.f;
    int32_t b;
    std::memcpy(&b, &t, 4);
    q[i] = int8_t(std::clamp((b & 0x007fffff) - 0x00400000, -127, 127));
  }
  return amax / 127.f;
}

void gemm_w8a8(const uint8_t* w, int64_t rows, int64_t k, const int8_t* qx, const float* dx, int64_t n_tok,
               float* y, int64_t ldy) {
  const size_t rb = 4 + size_t(k);
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = w + size_t(r) * rb;
    float dw;
    std::memcpy(&dw, row, 4);
    const int8_t* qw = reinterpret_cast<const int8_t*>(row + 4);
    for (int64_t t = 0; t < n_tok; ++t) {
      const int8_t* xt = qx + t * k;
      int32_t s = 0;
      for (int64_t c = 0; c < k; ++c) s += int32_t(qw[c]) * int32_t(xt[c]);
      y[t * ldy + r] = dx[t] * dw * float(s);
    }
  }
}

}  // namespace slimlm::kernels::ref
