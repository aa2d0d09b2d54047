// Attention of one group of query heads sharing a KV head over an f32 cache (see kernels.h):
// each cached key and value row is read once for the whole group. AVX2+FMA for head sizes that
// are a multiple of 8, else (and on the baseline path) the scalar loop, which is the reference.
#include "kernels/kernels.h"
#include "kernels/qdot.h"
#include <immintrin.h>
#include <algorithm>
#include <cmath>
#include <vector>

namespace slimlm::kernels {

namespace {
void attend_scalar(const float* q, int g_n, int64_t D, const float* k, const float* v, int64_t stride, int64_t m,
                   float scale, float* s, float* out) {
  for (int64_t j = 0; j < m; ++j)
    for (int g = 0; g < g_n; ++g) {
      float acc = 0;
      for (int64_t i = 0; i < D; ++i) acc += q[g * D + i] * k[j * stride + i];
      s[g * m + j] = acc * scale;
    }
  for (int g = 0; g < g_n; ++g) {
    softmax(s + g * m, m);
    float* o = out + g * D;
    std::fill(o, o + D, 0.f);
    for (int64_t j = 0; j < m; ++j)
      for (int64_t i = 0; i < D; ++i) o[i] += s[g * m + j] * v[j * stride + i];
  }
}

__attribute__((target("avx2,fma"))) inline float hsum(__m256 a) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

__attribute__((target("avx2,fma"))) void attend_avx2(const float* q, int g_n, int64_t D, const float* k, const float* v,
                                                      int64_t stride, int64_t m, float scale, float* s, float* out) {
  for (int64_t j = 0; j < m; ++j) {
    const float* kj = k + j * stride;
    for (int g = 0; g < g_n; ++g) {
      const float* qg = q + g * D;
      // one 8-lane accumulator, then a pairwise horizontal sum: the order of llama.cpp's f32 GEMM
      // (tinyBLAS), so last-bit rounding follows the reference implementation's
      __m256 a0 = _mm256_setzero_ps();
      for (int64_t i = 0; i < D; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(qg + i), _mm256_loadu_ps(kj + i), a0);
      s[g * m + j] = hsum(a0) * scale;
    }
  }
  for (int g = 0; g < g_n; ++g) softmax(s + g * m, m);
  for (int g = 0; g < g_n; ++g) {
    const float* sg = s + g * m;
    for (int64_t i0 = 0; i0 < D; i0 += 32) {  // 32 output floats in four registers over all j
      const int64_t w = std::min<int64_t>(32, D - i0);
      __m256 o0 = _mm256_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
      for (int64_t j = 0; j < m; ++j) {
        const __m256 p = _mm256_set1_ps(sg[j]);
        const float* vj = v + j * stride + i0;
        o0 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vj), o0);
        if (w > 8) o1 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vj + 8), o1);
        if (w > 16) o2 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vj + 16), o2);
        if (w > 24) o3 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vj + 24), o3);
      }
      float* o = out + g * D + i0;
      _mm256_storeu_ps(o, o0);
      if (w > 8) _mm256_storeu_ps(o + 8, o1);
      if (w > 16) _mm256_storeu_ps(o + 16, o2);
      if (w > 24) _mm256_storeu_ps(o + 24, o3);
    }
  }
}
}  // namespace

void attend(const float* q, int g_n, int64_t D, const float* k, const float* v, int64_t stride, int64_t m, float scale,
            float* s, float* out) {
  if (D % 8 == 0 && simd_enabled()) return attend_avx2(q, g_n, D, k, v, stride, m, scale, s, out);
  attend_scalar(q, g_n, D, k, v, stride, m, scale, s, out);
}

namespace ref {
void attend(const float* q, int g_n, int64_t D, const float* k, const float* v, int64_t stride, int64_t m, float scale,
            double* out) {
  std::vector<double> s(static_cast<size_t>(m));
  for (int g = 0; g < g_n; ++g) {
    double mx = -1e300;
    for (int64_t j = 0; j < m; ++j) {
      double acc = 0;
      for (int64_t i = 0; i < D; ++i) acc += double(q[g * D + i]) * k[j * stride + i];
      s[size_t(j)] = acc * scale;
      mx = std::max(mx, s[size_t(j)]);
    }
    double sum = 0;
    for (auto& e : s) { e = std::exp(e - mx); sum += e; }
    for (int64_t i = 0; i < D; ++i) {
      double o = 0;
      for (int64_t j = 0; j < m; ++j) o += s[size_t(j)] / sum * v[j * stride + i];
      out[g * D + i] = o;
    }
  }
}
}  // namespace ref

}  // namespace slimlm::kernels
