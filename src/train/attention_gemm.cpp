#include "train/attention_gemm.h"
#include "kernels/kernels.h"
#include <algorithm>
#include <cmath>
#include <vector>

namespace slimlm::train {

namespace {
// Head h's vectors of n tokens (row stride `width`) gathered into a contiguous n x D matrix, or
// its transpose (D x n).
void gather(const float* x, int64_t n, int64_t width, int64_t h, int64_t D, bool transposed, std::vector<float>& out) {
  out.resize(size_t(n * D));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < D; ++i) out[size_t(transposed ? i * n + t : t * D + i)] = x[t * width + h * D + i];
}
void transpose_sq(const float* a, int64_t n, std::vector<float>& out) {
  out.resize(size_t(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) out[size_t(j * n + i)] = a[i * n + j];
}
// y (n x D, head h's columns of a row-major n x width matrix) += src (n x D).
void scatter_add(const std::vector<float>& src, int64_t n, int64_t width, int64_t h, int64_t D, float* y) {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < D; ++i) y[t * width + h * D + i] += src[size_t(t * D + i)];
}
}  // namespace

void attention_fwd_gemm(const float* q, const float* k, const float* v, const AttnShape& s, float* out, float* P) {
  const int64_t n = s.n, D = s.D, QW = s.H * D, KW = s.HKV * D, group = s.H / s.HKV;
  std::vector<float> kh, vt, qh, oh(size_t(n * D));
  for (int64_t h = 0; h < s.H; ++h) {
    if (h % group == 0) { gather(k, n, KW, h / group, D, false, kh); gather(v, n, KW, h / group, D, true, vt); }
    gather(q, n, QW, h, D, false, qh);
    float* p = P + h * n * n;
    kernels::matmul_f32_rows(kh.data(), n, D, qh.data(), D, n, p, n);  // p[t][j] = q_t · k_j
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < n; ++t) {
      float* row = p + t * n;
      const int64_t j0 = s.first_key(t);
      float mx = -INFINITY;
      for (int64_t j = j0; j <= t; ++j) mx = std::max(mx, row[j] *= float(s.scale));
      float sum = 0;
      for (int64_t j = j0; j <= t; ++j) sum += (row[j] = std::exp(row[j] - mx));
      for (int64_t j = 0; j < n; ++j) row[j] = j >= j0 && j <= t ? row[j] / sum : 0.f;
    }
    kernels::matmul_f32_rows(vt.data(), D, n, p, n, n, oh.data(), D);  // o[t][i] = Σ_j P[t][j] v_j[i]
    for (int64_t t = 0; t < n; ++t) std::copy(oh.begin() + t * D, oh.begin() + (t + 1) * D, out + t * QW + h * D);
  }
}

void attention_bwd_gemm(const float* dout, const float* q, const float* k, const float* v, const float* P,
                        const AttnShape& s, float* dq, float* dk, float* dv) {
  const int64_t n = s.n, D = s.D, QW = s.H * D, KW = s.HKV * D, group = s.H / s.HKV;
  std::vector<float> vh, kt, qt, dot, doh, ds(size_t(n * n)), dst, pt, tmp(size_t(n * D));
  for (int64_t h = 0; h < s.H; ++h) {
    if (h % group == 0) { gather(v, n, KW, h / group, D, false, vh); gather(k, n, KW, h / group, D, true, kt); }
    gather(dout, n, QW, h, D, false, doh);
    const float* p = P + h * n * n;
    kernels::matmul_f32_rows(vh.data(), n, D, doh.data(), D, n, ds.data(), n);  // dP[t][j] = dout_t · v_j
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < n; ++t) {  // dS = P ⊙ (dP − Σ_j P dP) · scale
      float* row = ds.data() + t * n;
      const float* pr = p + t * n;
      float pdp = 0;
      for (int64_t j = 0; j < n; ++j) pdp += pr[j] * row[j];
      for (int64_t j = 0; j < n; ++j) row[j] = pr[j] * (row[j] - pdp) * float(s.scale);
    }
    kernels::matmul_f32_rows(kt.data(), D, n, ds.data(), n, n, tmp.data(), D);  // dq[t] = Σ_j dS[t][j] k_j
    scatter_add(tmp, n, QW, h, D, dq);
    gather(q, n, QW, h, D, true, qt);
    transpose_sq(ds.data(), n, dst);
    kernels::matmul_f32_rows(qt.data(), D, n, dst.data(), n, n, tmp.data(), D);  // dk[j] = Σ_t dS[t][j] q_t
    scatter_add(tmp, n, KW, h / group, D, dk);
    gather(dout, n, QW, h, D, true, dot);
    transpose_sq(p, n, pt);
    kernels::matmul_f32_rows(dot.data(), D, n, pt.data(), n, n, tmp.data(), D);  // dv[j] = Σ_t P[t][j] dout_t
    scatter_add(tmp, n, KW, h / group, D, dv);
  }
}

}  // namespace slimlm::train
