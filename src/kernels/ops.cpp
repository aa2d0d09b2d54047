#include "kernels/kernels.h"
#include <algorithm>
#include <cmath>
#include <vector>

namespace slimlm::kernels {

void rmsnorm(const float* x, const float* w, int64_t n, float eps, float* y) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += double(x[i]) * x[i];
  const float s = float(1.0 / std::sqrt(ss / double(n) + eps));
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * s * w[i];
}

void rope_table(int64_t d, int64_t pos, float theta, float scale, float* cs) {
  const double p = double(pos) / scale;
  for (int64_t i = 0; i < d / 2; ++i) {
    const double freq = std::pow(double(theta), -2.0 * double(i) / double(d));
    cs[2 * i] = float(std::cos(p * freq));
    cs[2 * i + 1] = float(std::sin(p * freq));
  }
}

void rope_apply(float* v, int64_t d, const float* cs, RopeType type) {
  const int64_t half = d / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float c = cs[2 * i], s = cs[2 * i + 1];
    float* a = type == RopeType::Norm ? v + 2 * i : v + i;
    float* b = type == RopeType::Norm ? v + 2 * i + 1 : v + i + half;
    const float x0 = *a, x1 = *b;
    *a = x0 * c - x1 * s;
    *b = x0 * s + x1 * c;
  }
}

void rope(float* v, int64_t d, int64_t pos, float theta, float scale, RopeType type) {
  std::vector<float> cs(static_cast<size_t>(d));
  rope_table(d, pos, theta, scale, cs.data());
  rope_apply(v, d, cs.data(), type);
}


void softmax(float* x, int64_t n) {
  const float mx = *std::max_element(x, x + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) { x[i] = std::exp(x[i] - mx); sum += x[i]; }
  const float inv = float(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

float gelu_tanh(float x) {
  const float k = 0.7978845608028654f;  // sqrt(2/pi)
  return 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x)));
}

}  // namespace slimlm::kernels

namespace slimlm::kernels::ref {

void matmul(const Tensor& w, const float* x, int64_t ldx, int64_t n_tok, double* y, int64_t ldy) {
  const int64_t k = w.cols();
  std::vector<float> row(static_cast<size_t>(k));
  for (int64_t r = 0; r < w.rows(); ++r) {
    row_to_f32(w.type, w.row(r), row.data(), k);
    if (w.outliers)  // the f16 side entries of this row
      for (int32_t e = w.outliers->row_ptr[size_t(r)]; e < w.outliers->row_ptr[size_t(r) + 1]; ++e)
        row[size_t(w.outliers->col[size_t(e)])] += f16_to_f32(w.outliers->val[size_t(e)]);
    for (int64_t t = 0; t < n_tok; ++t) {
      double s = 0;
      for (int64_t i = 0; i < k; ++i) s += double(row[size_t(i)]) * x[t * ldx + i];
      y[t * ldy + r] = s;
    }
  }
}

}  // namespace slimlm::kernels::ref
