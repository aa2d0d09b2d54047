#include "train/distill.h"
#include "core/error.h"
#include <algorithm>
#include <cmath>
#include <vector>

namespace slimlm::train {

DistillLoss parse_distill_loss(const std::string& s) {
  if (s == "fkl") return DistillLoss::ForwardKL;
  if (s == "rkl") return DistillLoss::ReverseKL;
  if (s == "jsd") return DistillLoss::JSD;
  if (s == "skl") return DistillLoss::SkewKL;
  if (s == "srkl") return DistillLoss::SkewRKL;
  fail("unknown distillation loss '", s, "' (known: fkl, rkl, jsd, skl, srkl)");
}

void DistillOptions::validate() const {
  if (!(temperature > 0 && temperature <= 100)) fail("temperature ", temperature, " is out of range (0, 100]");
  if (!(beta > 0 && beta < 1)) fail("beta ", beta, " is out of range (0, 1)");
}

namespace {
// log softmax(z / τ) of one row, in double.
void log_softmax(const double* z, int64_t V, double tau, double* out) {
  double mx = -INFINITY;
  for (int64_t i = 0; i < V; ++i) mx = std::max(mx, z[i] / tau);
  double sum = 0;
  for (int64_t i = 0; i < V; ++i) sum += std::exp(z[i] / tau - mx);
  const double lse = mx + std::log(sum);
  for (int64_t i = 0; i < V; ++i) out[i] = z[i] / tau - lse;
}

// One row: the loss, and g = dLoss/dp_s (up to a constant added to every entry).
double row_loss(const DistillOptions& o, const double* ls, const double* lt, int64_t V, double* g) {
  const double b = o.beta;
  double loss = 0;
  for (int64_t i = 0; i < V; ++i) {
    const double ps = std::exp(ls[i]), pt = std::exp(lt[i]);
    switch (o.loss) {
      case DistillLoss::ForwardKL: loss += pt * (lt[i] - ls[i]); g[i] = -pt / std::max(ps, 1e-300); break;
      case DistillLoss::ReverseKL: loss += ps * (ls[i] - lt[i]); g[i] = ls[i] - lt[i]; break;
      case DistillLoss::JSD: {
        const double m = b * pt + (1 - b) * ps, lm = std::log(std::max(m, 1e-300));
        loss += b * pt * (lt[i] - lm) + (1 - b) * ps * (ls[i] - lm);
        g[i] = -b * (1 - b) * pt / m + (1 - b) * (ls[i] - lm - (1 - b) * ps / m);
        break;
      }
      case DistillLoss::SkewKL: {
        const double m = b * pt + (1 - b) * ps;
        loss += pt * (lt[i] - std::log(std::max(m, 1e-300)));
        g[i] = -(1 - b) * pt / m;
        break;
      }
      case DistillLoss::SkewRKL: {
        const double m = b * ps + (1 - b) * pt, lm = std::log(std::max(m, 1e-300));
        loss += ps * (ls[i] - lm);
        g[i] = ls[i] - lm - b * ps / m;
        break;
      }
    }
  }
  return loss;
}
}  // namespace

template <class T> double distill(const DistillOptions& o, const T* zs, const T* zt, int64_t n, int64_t V,
                                  const uint8_t* mask, T* dzs) {
  o.validate();
  int64_t counted = 0;
  for (int64_t r = 0; r < n; ++r) counted += !mask || mask[r];
  if (counted == 0) return 0;
  const size_t nv = static_cast<size_t>(V);
  std::vector<double> zs_d(nv), zt_d(nv), ls(nv), lt(nv), g(nv);
  double total = 0;
  for (int64_t r = 0; r < n; ++r) {
    if (mask && !mask[r]) continue;
    std::copy(zs + r * V, zs + (r + 1) * V, zs_d.begin());
    std::copy(zt + r * V, zt + (r + 1) * V, zt_d.begin());
    log_softmax(zs_d.data(), V, o.temperature, ls.data());
    log_softmax(zt_d.data(), V, o.temperature, lt.data());
    total += row_loss(o, ls.data(), lt.data(), V, g.data());
    if (!dzs) continue;
    if (o.loss == DistillLoss::ForwardKL) {  // the closed form (p_s − p_t) / τ: no division by a tiny p_s
      for (int64_t i = 0; i < V; ++i)
        dzs[r * V + i] += T((std::exp(ls[size_t(i)]) - std::exp(lt[size_t(i)])) / o.temperature / double(counted));
      continue;
    }
    // through the softmax: dz_i = p_i (g_i − Σ_j p_j g_j) / τ
    double pg = 0;
    for (int64_t i = 0; i < V; ++i) pg += std::exp(ls[size_t(i)]) * g[size_t(i)];
    for (int64_t i = 0; i < V; ++i)
      dzs[r * V + i] += T(std::exp(ls[size_t(i)]) * (g[size_t(i)] - pg) / o.temperature / double(counted));
  }
  return total / double(counted);
}

template double distill<float>(const DistillOptions&, const float*, const float*, int64_t, int64_t, const uint8_t*,
                               float*);
template double distill<double>(const DistillOptions&, const double*, const double*, int64_t, int64_t,
                                const uint8_t*, double*);

}  // namespace slimlm::train
