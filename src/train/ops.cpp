#include "train/ops.h"
#include "kernels/kernels.h"
#include "train/attention_gemm.h"
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

namespace slimlm::train {

template <class T> void embedding_fwd(const T* W, const int32_t* ids, int64_t n, int64_t E, T* y) {
  for (int64_t t = 0; t < n; ++t) std::copy(W + ids[t] * E, W + (ids[t] + 1) * E, y + t * E);
}
template <class T> void embedding_bwd(const T* dy, const int32_t* ids, int64_t n, int64_t E, T* dW) {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < E; ++i) dW[ids[t] * E + i] += dy[t * E + i];
}

template <class T> void rmsnorm_fwd(const T* x, const T* w, int64_t n, int64_t E, T eps, T* y, T* rstd) {
  for (int64_t t = 0; t < n; ++t) {
    const T* xt = x + t * E;
    double ss = 0;
    for (int64_t i = 0; i < E; ++i) ss += double(xt[i]) * double(xt[i]);
    const T r = T(1.0 / std::sqrt(ss / double(E) + double(eps)));
    rstd[t] = r;
    for (int64_t i = 0; i < E; ++i) y[t * E + i] = xt[i] * r * w[i];
  }
}
// With x̂ = x·r: dx = r · (dy⊙w − x̂ · mean(dy⊙w⊙x̂)), dw = Σ_t dy⊙x̂.
template <class T> void rmsnorm_bwd(const T* dy, const T* x, const T* w, const T* rstd, int64_t n, int64_t E, T* dx,
                                    T* dw) {
  for (int64_t t = 0; t < n; ++t) {
    const T *xt = x + t * E, *dyt = dy + t * E;
    const T r = rstd[t];
    double dot = 0;
    for (int64_t i = 0; i < E; ++i) dot += double(dyt[i]) * double(w[i]) * double(xt[i]) * double(r);
    const T mean = T(dot / double(E));
    for (int64_t i = 0; i < E; ++i) {
      const T xh = xt[i] * r;
      dx[t * E + i] += r * (dyt[i] * w[i] - xh * mean);
      if (dw) dw[i] += dyt[i] * xh;
    }
  }
}

namespace {
// a (r x c, row-major) transposed into out (c x r).
void transpose(const float* a, int64_t r, int64_t c, std::vector<float>& out) {
  out.resize(size_t(r * c));
#pragma omp parallel for schedule(static) if (r * c > 65536)
  for (int64_t j = 0; j < c; ++j)
    for (int64_t i = 0; i < r; ++i) out[size_t(j * r + i)] = a[i * c + j];
}
// acc += add over m values.
void add_into(float* acc, const std::vector<float>& add, int64_t m) {
#pragma omp parallel for schedule(static) if (m > 65536)
  for (int64_t i = 0; i < m; ++i) acc[i] += add[size_t(i)];
}
// The float path on the register-blocked GEMM (kernels::matmul_f32_rows, multi-threaded):
// dx += dy·W as (Wᵀ)·dy per token, dW += dyᵀ·x as (xᵀ)·(dyᵀ) per output row.
void linear_bwd_gemm(const float* dy, const float* x, const float* W, int64_t n, int64_t k, int64_t rows, float* dx,
                     float* dW) {
  std::vector<float> tr, tmp;
  if (dx) {
    transpose(W, rows, k, tr);
    tmp.resize(size_t(n * k));
    kernels::matmul_f32_rows(tr.data(), k, rows, dy, rows, n, tmp.data(), k);
    add_into(dx, tmp, n * k);
  }
  if (dW) {
    std::vector<float> dyt;
    transpose(x, n, k, tr);
    transpose(dy, n, rows, dyt);
    tmp.resize(size_t(rows * k));
    kernels::matmul_f32_rows(tr.data(), k, n, dyt.data(), n, rows, tmp.data(), k);
    add_into(dW, tmp, rows * k);
  }
}
}  // namespace

template <class T> void linear_fwd(const T* x, const T* W, const T* b, int64_t n, int64_t k, int64_t rows, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    kernels::matmul_f32_rows(W, rows, k, x, k, n, y, rows);
    if (b)
      for (int64_t t = 0; t < n; ++t)
        for (int64_t r = 0; r < rows; ++r) y[t * rows + r] += b[r];
    return;
  }
  for (int64_t t = 0; t < n; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      T acc = b ? b[r] : T(0);
      for (int64_t c = 0; c < k; ++c) acc += W[r * k + c] * x[t * k + c];
      y[t * rows + r] = acc;
    }
}
template <class T> void linear_bwd(const T* dy, const T* x, const T* W, int64_t n, int64_t k, int64_t rows, T* dx,
                                   T* dW, T* db) {
  if constexpr (std::is_same_v<T, float>) {
    linear_bwd_gemm(dy, x, W, n, k, rows, dx, dW);
    if (db)
      for (int64_t t = 0; t < n; ++t)
        for (int64_t r = 0; r < rows; ++r) db[r] += dy[t * rows + r];
    return;
  }
  for (int64_t t = 0; t < n; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      const T g = dy[t * rows + r];
      if (db) db[r] += g;
      for (int64_t c = 0; c < k; ++c) {
        if (dx) dx[t * k + c] += g * W[r * k + c];
        if (dW) dW[r * k + c] += g * x[t * k + c];
      }
    }
}

namespace {
// Rotates every head vector of n tokens by sign · the angle of its position (sign −1: inverse).
template <class T> void rotate(T* x, int64_t n, int64_t heads, int64_t d, int64_t pos0, double theta, double scale,
                               RopeType type, double sign) {
  const int64_t half = d / 2;
  for (int64_t t = 0; t < n; ++t) {
    const double p = double(pos0 + t) / scale;
    for (int64_t i = 0; i < half; ++i) {
      const double a = p * std::pow(theta, -2.0 * double(i) / double(d));
      const T c = T(std::cos(a)), s = T(sign * std::sin(a));
      for (int64_t h = 0; h < heads; ++h) {
        T* v = x + (t * heads + h) * d;
        T* x0 = type == RopeType::Norm ? v + 2 * i : v + i;
        T* x1 = type == RopeType::Norm ? v + 2 * i + 1 : v + i + half;
        const T a0 = *x0, a1 = *x1;
        *x0 = a0 * c - a1 * s;
        *x1 = a0 * s + a1 * c;
      }
    }
  }
}
}  // namespace

template <class T> void rope_fwd(T* x, int64_t n, int64_t heads, int64_t d, int64_t pos0, double theta, double scale,
                                 RopeType type) {
  rotate(x, n, heads, d, pos0, theta, scale, type, 1.0);
}
template <class T> void rope_bwd(T* dx, int64_t n, int64_t heads, int64_t d, int64_t pos0, double theta, double scale,
                                 RopeType type) {
  rotate(dx, n, heads, d, pos0, theta, scale, type, -1.0);
}

template <class T> void attention_fwd(const T* q, const T* k, const T* v, const AttnShape& s, T* out, T* P) {
  if constexpr (std::is_same_v<T, float>) {
    if (s.n >= 16) return attention_fwd_gemm(q, k, v, s, out, P);
  }
  const int64_t QW = s.H * s.D, KW = s.HKV * s.D, group = s.H / s.HKV;
  std::fill(P, P + s.H * s.n * s.n, T(0));
#pragma omp parallel for schedule(dynamic) if (s.n * s.n * s.D > 65536)
  for (int64_t h = 0; h < s.H; ++h) {
    const int64_t kh = h / group;
    for (int64_t t = 0; t < s.n; ++t) {
      T* p = P + (h * s.n + t) * s.n;
      const T* qt = q + t * QW + h * s.D;
      const int64_t j0 = s.first_key(t);
      T mx = -INFINITY;
      for (int64_t j = j0; j <= t; ++j) {
        T dot = 0;
        for (int64_t i = 0; i < s.D; ++i) dot += qt[i] * k[j * KW + kh * s.D + i];
        p[j] = dot * T(s.scale);
        mx = std::max(mx, p[j]);
      }
      T sum = 0;
      for (int64_t j = j0; j <= t; ++j) sum += (p[j] = std::exp(p[j] - mx));
      T* o = out + t * QW + h * s.D;
      std::fill(o, o + s.D, T(0));
      for (int64_t j = j0; j <= t; ++j) {
        p[j] /= sum;
        for (int64_t i = 0; i < s.D; ++i) o[i] += p[j] * v[j * KW + kh * s.D + i];
      }
    }
  }
}

namespace {
// dP_j = dout·v_j; dS_j = P_j (dP_j − Σ_i P_i dP_i); dq += scale Σ_j dS_j k_j; dk_j += scale dS_j q;
// dv_j += P_j dout — for query head h (reading KV head kh) at every token.
template <class T> void attention_bwd_head(const T* dout, const T* q, const T* k, const T* v, const T* P,
                                           const AttnShape& s, int64_t h, int64_t kh, std::vector<T>& dp, T* dq, T* dk,
                                           T* dv) {
  const int64_t QW = s.H * s.D, KW = s.HKV * s.D;
  for (int64_t t = 0; t < s.n; ++t) {
    const T* p = P + (h * s.n + t) * s.n;
    const T *dot = dout + t * QW + h * s.D, *qt = q + t * QW + h * s.D;
    const int64_t j0 = s.first_key(t);
    T pdp = 0;
    for (int64_t j = j0; j <= t; ++j) {
      T acc = 0;
      for (int64_t i = 0; i < s.D; ++i) acc += dot[i] * v[j * KW + kh * s.D + i];
      dp[size_t(j)] = acc;
      pdp += p[j] * acc;
    }
    for (int64_t j = j0; j <= t; ++j) {
      const T ds = p[j] * (dp[size_t(j)] - pdp) * T(s.scale);
      for (int64_t i = 0; i < s.D; ++i) {
        dq[t * QW + h * s.D + i] += ds * k[j * KW + kh * s.D + i];
        dk[j * KW + kh * s.D + i] += ds * qt[i];
        dv[j * KW + kh * s.D + i] += p[j] * dot[i];
      }
    }
  }
}
}  // namespace

template <class T> void attention_bwd(const T* dout, const T* q, const T* k, const T* v, const T* P, const AttnShape& s,
                                      T* dq, T* dk, T* dv) {
  if constexpr (std::is_same_v<T, float>) {
    if (s.n >= 16) return attention_bwd_gemm(dout, q, k, v, P, s, dq, dk, dv);
  }
  const int64_t group = s.H / s.HKV;
  // one KV head per work item: the query heads of its group are the only writers of its dk, dv
#pragma omp parallel for schedule(dynamic) if (s.n * s.n * s.D > 65536)
  for (int64_t kh = 0; kh < s.HKV; ++kh) {
    std::vector<T> dp(static_cast<size_t>(s.n));
    for (int64_t h = kh * group; h < (kh + 1) * group; ++h) attention_bwd_head(dout, q, k, v, P, s, h, kh, dp, dq, dk, dv);
  }
}

namespace {
constexpr double kGeluC = 0.7978845608028654;  // sqrt(2/π)
template <class T> T act_fwd(T x, Activation a) {
  if (a == Activation::SiLU) return x / (T(1) + std::exp(-x));
  return T(0.5) * x * (T(1) + std::tanh(T(kGeluC) * (x + T(0.044715) * x * x * x)));
}
template <class T> T act_grad(T x, Activation a) {
  if (a == Activation::SiLU) {
    const T sg = T(1) / (T(1) + std::exp(-x));
    return sg * (T(1) + x * (T(1) - sg));
  }
  const T u = T(kGeluC) * (x + T(0.044715) * x * x * x), th = std::tanh(u);
  return T(0.5) * (T(1) + th) + T(0.5) * x * (T(1) - th * th) * T(kGeluC) * (T(1) + T(3 * 0.044715) * x * x);
}
}  // namespace

template <class T> void glu_fwd(const T* g, const T* u, int64_t m, Activation act, T* h) {
  for (int64_t i = 0; i < m; ++i) h[i] = act_fwd(g[i], act) * u[i];
}
template <class T> void glu_bwd(const T* dh, const T* g, const T* u, int64_t m, Activation act, T* dg, T* du) {
  for (int64_t i = 0; i < m; ++i) {
    dg[i] += dh[i] * u[i] * act_grad(g[i], act);
    du[i] += dh[i] * act_fwd(g[i], act);
  }
}

template <class T> double cross_entropy(const T* logits, const int32_t* targets, int64_t n, int64_t V, T* dlogits) {
  int64_t counted = 0;
  for (int64_t t = 0; t < n; ++t) counted += targets[t] >= 0;
  if (counted == 0) return 0;
  std::vector<double> row_loss(static_cast<size_t>(n), 0.0);  // summed in order below: thread-count independent
#pragma omp parallel for schedule(static) if (n * V > 65536)
  for (int64_t t = 0; t < n; ++t) {
    if (targets[t] < 0) continue;
    const T* z = logits + t * V;
    const double mx = *std::max_element(z, z + V);
    double sum = 0;
    for (int64_t i = 0; i < V; ++i) sum += std::exp(double(z[i]) - mx);
    row_loss[size_t(t)] = std::log(sum) + mx - double(z[targets[t]]);
    if (!dlogits) continue;
    for (int64_t i = 0; i < V; ++i)
      dlogits[t * V + i] += T((std::exp(double(z[i]) - mx) / sum - (i == targets[t] ? 1.0 : 0.0)) / double(counted));
  }
  double loss = 0;
  for (double l : row_loss) loss += l;
  return loss / double(counted);
}

#define SLIMLM_TRAIN_OPS(T)                                                                                        \
  template void embedding_fwd<T>(const T*, const int32_t*, int64_t, int64_t, T*);                                 \
  template void embedding_bwd<T>(const T*, const int32_t*, int64_t, int64_t, T*);                                 \
  template void rmsnorm_fwd<T>(const T*, const T*, int64_t, int64_t, T, T*, T*);                                  \
  template void rmsnorm_bwd<T>(const T*, const T*, const T*, const T*, int64_t, int64_t, T*, T*);                 \
  template void linear_fwd<T>(const T*, const T*, const T*, int64_t, int64_t, int64_t, T*);                       \
  template void linear_bwd<T>(const T*, const T*, const T*, int64_t, int64_t, int64_t, T*, T*, T*);               \
  template void rope_fwd<T>(T*, int64_t, int64_t, int64_t, int64_t, double, double, RopeType);                    \
  template void rope_bwd<T>(T*, int64_t, int64_t, int64_t, int64_t, double, double, RopeType);                    \
  template void attention_fwd<T>(const T*, const T*, const T*, const AttnShape&, T*, T*);                         \
  template void attention_bwd<T>(const T*, const T*, const T*, const T*, const T*, const AttnShape&, T*, T*, T*); \
  template void glu_fwd<T>(const T*, const T*, int64_t, Activation, T*);                                          \
  template void glu_bwd<T>(const T*, const T*, const T*, int64_t, Activation, T*, T*);                            \
  template double cross_entropy<T>(const T*, const int32_t*, int64_t, int64_t, T*);
SLIMLM_TRAIN_OPS(float)
SLIMLM_TRAIN_OPS(double)
#undef SLIMLM_TRAIN_OPS

}  // namespace slimlm::train
