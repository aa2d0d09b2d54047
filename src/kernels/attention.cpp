// Attention of one group of query heads sharing a KV head over an f32 cache (see kernels.h):
// each cached key and value row is read once for the whole group. AVX2+FMA for head sizes that
// are a multiple of 8, else (and on the baseline path) the scalar loop, which is the reference.
#include "core/dtype.h"
#include "kernels/cpu.h"
#include "kernels/gemm.h"
#include "kernels/kernels.h"
#include <immintrin.h>
#include <omp.h>
#include <algorithm>
#include <cmath>
#include <vector>

namespace slimlm::kernels {

namespace {
inline float to_f32(float x) { return x; }
inline float to_f32(uint16_t h) { return f16_to_f32(h); }

template <class T>
void attend_scalar(const float* q, int g_n, int64_t D, const T* k, const T* v, int64_t stride, int64_t m, float scale,
                   float* s, float* out) {
  for (int64_t j = 0; j < m; ++j)
    for (int g = 0; g < g_n; ++g) {
      float acc = 0;
      for (int64_t i = 0; i < D; ++i) acc += q[g * D + i] * to_f32(k[j * stride + i]);
      s[g * m + j] = acc * scale;
    }
  for (int g = 0; g < g_n; ++g) {
    softmax(s + g * m, m);
    float* o = out + g * D;
    std::fill(o, o + D, 0.f);
    for (int64_t j = 0; j < m; ++j)
      for (int64_t i = 0; i < D; ++i) o[i] += s[g * m + j] * to_f32(v[j * stride + i]);
  }
}

// eight cached values as floats: f32 as stored, f16 through F16C
__attribute__((target("avx2,fma,f16c"))) inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
__attribute__((target("avx2,fma,f16c"))) inline __m256 load8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

__attribute__((target("avx2,fma"))) inline float hsum(__m256 a) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

// e^x for x <= 0 (softmax arguments after the max is subtracted), 8 lanes: x = n·ln2 + r with
// |r| <= ln2/2 (ln2 in two parts), e^r by Cephes' degree-7 polynomial, 2^n into the exponent
// bits. Relative error ~2 ulp; x below -87 gives ~e^-87 (the caller's sum is >= 1, so it is 0).
__attribute__((target("avx2,fma"))) inline __m256 exp_neg(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// x[0..n) <- softmax(scale · x) in place.
__attribute__((target("avx2,fma"))) void softmax_avx2(float* x, int64_t n, float scale) {
  int64_t i = 0;
  __m256 vm = _mm256_set1_ps(-INFINITY);
  for (; i + 8 <= n; i += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vm), _mm256_extractf128_ps(vm, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  float mx = _mm_cvtss_f32(m4);
  for (; i < n; ++i) mx = std::max(mx, x[i]);
  const __m256 vs = _mm256_set1_ps(scale), vms = _mm256_set1_ps(-mx * scale);
  __m256 acc = _mm256_setzero_ps();
  for (i = 0; i + 8 <= n; i += 8) {
    const __m256 e = exp_neg(_mm256_fmadd_ps(_mm256_loadu_ps(x + i), vs, vms));
    _mm256_storeu_ps(x + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  float sum = hsum(acc);
  for (; i < n; ++i) { x[i] = std::exp(std::fma(x[i], scale, -mx * scale)); sum += x[i]; }
  const __m256 inv = _mm256_set1_ps(1.0f / sum);
  for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
  for (; i < n; ++i) x[i] *= 1.0f / sum;
}

template <class T>
__attribute__((target("avx2,fma,f16c"))) void attend_avx2(const float* q, int g_n, int64_t D, const T* k, const T* v,
                                                           int64_t stride, int64_t m, float scale, float* s, float* out) {
  // Scores eight keys at a time: eight independent 8-lane accumulators, reduced together by a
  // horizontal-add tree (9 instructions for 8 dots instead of a dependent horizontal sum each);
  // the last m % 8 keys one at a time.
  const __m256 vscale = _mm256_set1_ps(scale);
  for (int g = 0; g < g_n; ++g) {
    const float* qg = q + g * D;
    float* sg = s + g * m;
    int64_t j = 0;
    for (; j + 8 <= m; j += 8) {
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
      const T* kj = k + j * stride;
      for (int64_t i = 0; i < D; i += 8) {
        const __m256 qv = _mm256_loadu_ps(qg + i);
        a0 = _mm256_fmadd_ps(qv, load8(kj + i), a0);
        a1 = _mm256_fmadd_ps(qv, load8(kj + stride + i), a1);
        a2 = _mm256_fmadd_ps(qv, load8(kj + 2 * stride + i), a2);
        a3 = _mm256_fmadd_ps(qv, load8(kj + 3 * stride + i), a3);
        a4 = _mm256_fmadd_ps(qv, load8(kj + 4 * stride + i), a4);
        a5 = _mm256_fmadd_ps(qv, load8(kj + 5 * stride + i), a5);
        a6 = _mm256_fmadd_ps(qv, load8(kj + 6 * stride + i), a6);
        a7 = _mm256_fmadd_ps(qv, load8(kj + 7 * stride + i), a7);
      }
      // per 128-bit half: hadd pairs, then pairs of pairs -> [d0 d1 d2 d3 | d0' d1' d2' d3'] (low/high
      // halves' partial sums); adding the halves gives the eight dots in key order
      const __m256 t0 = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
      const __m256 t1 = _mm256_hadd_ps(_mm256_hadd_ps(a4, a5), _mm256_hadd_ps(a6, a7));
      const __m256 d = _mm256_add_ps(_mm256_permute2f128_ps(t0, t1, 0x20), _mm256_permute2f128_ps(t0, t1, 0x31));
      _mm256_storeu_ps(sg + j, _mm256_mul_ps(d, vscale));
    }
    for (; j < m; ++j) {
      const T* kj = k + j * stride;
      __m256 a0 = _mm256_setzero_ps();
      for (int64_t i = 0; i < D; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(qg + i), load8(kj + i), a0);
      sg[j] = hsum(a0) * scale;
    }
  }
  for (int g = 0; g < g_n; ++g) softmax_avx2(s + g * m, m, 1.0f);
  for (int g = 0; g < g_n; ++g) {
    const float* sg = s + g * m;
    for (int64_t i0 = 0; i0 < D; i0 += 32) {  // 32 output floats in four registers over all j
      const int64_t w = std::min<int64_t>(32, D - i0);
      __m256 o0 = _mm256_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
      for (int64_t j = 0; j < m; ++j) {
        const __m256 p = _mm256_set1_ps(sg[j]);
        const T* vj = v + j * stride + i0;
        o0 = _mm256_fmadd_ps(p, load8(vj), o0);
        if (w > 8) o1 = _mm256_fmadd_ps(p, load8(vj + 8), o1);
        if (w > 16) o2 = _mm256_fmadd_ps(p, load8(vj + 16), o2);
        if (w > 24) o3 = _mm256_fmadd_ps(p, load8(vj + 24), o3);
      }
      float* o = out + g * D + i0;
      _mm256_storeu_ps(o, o0);
      if (w > 8) _mm256_storeu_ps(o + 8, o1);
      if (w > 16) _mm256_storeu_ps(o + 16, o2);
      if (w > 24) _mm256_storeu_ps(o + 24, o3);
    }
  }
}
// The prompt-batch kernel (see kernels.h). Keys of one KV head are packed transposed in panels
// of 16 positions once per call, so scores come out of the GEMM micro-kernel 16 keys x 6 query
// rows at a time; values are read in place, 16 dimensions at a time, for P·V.
__attribute__((target("avx2,fma"))) void attend_batch_avx2(const float* q, int64_t ldq, int64_t n_tok, int64_t p0,
                                                            int64_t n_head, int64_t n_kv, int64_t D, const float* kc,
                                                            const float* vc, int64_t row_stride, int64_t head_stride,
                                                            float scale, int64_t window, float* out) {
  constexpr int KP = kGemmMr, QR = kGemmNr;  // keys per panel, query rows per tile
  const int64_t P = p0 + n_tok, n_jp = (P + KP - 1) / KP, G = n_head / n_kv;
  std::vector<float> kt(size_t(n_kv * n_jp * D * KP));
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t kvh = 0; kvh < n_kv; ++kvh)
    for (int64_t jp = 0; jp < n_jp; ++jp) {
      float* dst = kt.data() + (kvh * n_jp + jp) * D * KP;
      for (int jj = 0; jj < KP; ++jj) {
        const int64_t j = jp * KP + jj;
        const float* kr = kc + j * row_stride + kvh * head_stride;
        for (int64_t i = 0; i < D; ++i) dst[i * KP + jj] = j < P ? kr[i] : 0.f;
      }
    }
  const int64_t n_tt = (n_tok + QR - 1) / QR;
#pragma omp parallel
  {
    std::vector<float> qb(size_t(D * QR)), sc, pt;
    // the last tiles see the most keys: hand them out first
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int64_t it = 0; it < n_tt; ++it)
      for (int64_t h = 0; h < n_head; ++h) {
        const int64_t t0 = (n_tt - 1 - it) * QR, kvh = h / G;
        const int nt = int(std::min<int64_t>(QR, n_tok - t0));
        const int64_t pf = p0 + t0, pl = pf + nt - 1;
        const int64_t jp0 = (window > 0 ? std::max<int64_t>(0, pf - window + 1) : 0) / KP, jp1 = pl / KP;
        const int64_t jlo = jp0 * KP, mp = (jp1 - jp0 + 1) * KP, m = pl - jlo + 1;
        sc.resize(size_t(QR * mp));
        pt.resize(size_t(mp * QR));
        for (int64_t i = 0; i < D; ++i)
          for (int r = 0; r < QR; ++r) qb[size_t(i * QR + r)] = r < nt ? q[(t0 + r) * ldq + h * D + i] : 0.f;
        for (int64_t jp = jp0; jp <= jp1; ++jp)
          gemm_micro(kt.data() + (kvh * n_jp + jp) * D * KP, KP, qb.data(), D, false, sc.data() + (jp - jp0) * KP, mp,
                     KP, QR);
        for (int r = 0; r < QR; ++r) {
          float* row = sc.data() + r * mp;
          int64_t lo = 0, hi = -1;  // the row's keys, relative to jlo
          if (r < nt) {
            const int64_t p = pf + r;
            lo = (window > 0 ? std::max<int64_t>(0, p - window + 1) : 0) - jlo;
            hi = p - jlo;
            softmax_avx2(row + lo, hi - lo + 1, scale);
          }
          for (int64_t j = 0; j < m; ++j) pt[size_t(j * QR + r)] = j >= lo && j <= hi ? row[j] : 0.f;
        }
        for (int64_t d0 = 0; d0 < D; d0 += KP)
          gemm_micro(vc + jlo * row_stride + kvh * head_stride + d0, row_stride, pt.data(), m, false,
                     out + t0 * ldq + h * D + d0, ldq, KP, nt);
      }
  }
}
}  // namespace

bool attend_batch(const float* q, int64_t ldq, int64_t n_tok, int64_t p0, int64_t n_head, int64_t n_kv, int64_t D,
                  const float* kcache, const float* vcache, int64_t row_stride, int64_t head_stride, float scale,
                  int64_t window, float* out) {
  if (!simd_enabled() || D % kGemmMr != 0 || n_head % n_kv != 0) return false;
  attend_batch_avx2(q, ldq, n_tok, p0, n_head, n_kv, D, kcache, vcache, row_stride, head_stride, scale, window, out);
  return true;
}

void attend(const float* q, int g_n, int64_t D, const float* k, const float* v, int64_t stride, int64_t m, float scale,
            float* s, float* out) {
  if (D % 8 == 0 && simd_enabled()) return attend_avx2(q, g_n, D, k, v, stride, m, scale, s, out);
  attend_scalar(q, g_n, D, k, v, stride, m, scale, s, out);
}

void attend_f16(const float* q, int g_n, int64_t D, const uint16_t* k, const uint16_t* v, int64_t stride, int64_t m,
                float scale, float* s, float* out) {
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
