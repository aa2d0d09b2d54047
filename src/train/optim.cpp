#include "train/optim.h"
#include "core/error.h"
#include <cmath>
#include <string>

namespace slimlm::train {

void AdamWOptions::validate() const {
  auto in = [](double x, double lo, double hi) { return std::isfinite(x) && x >= lo && x <= hi; };
  if (!in(lr, 0, 1) || lr == 0) fail("learning rate ", lr, " is out of range (0, 1]");
  if (!in(beta1, 0, 1) || beta1 == 1) fail("beta1 ", beta1, " is out of range [0, 1)");
  if (!in(beta2, 0, 1) || beta2 == 1) fail("beta2 ", beta2, " is out of range [0, 1)");
  if (!in(eps, 0, 1) || eps == 0) fail("eps ", eps, " is out of range (0, 1]");
  if (!in(weight_decay, 0, 1)) fail("weight decay ", weight_decay, " is out of range [0, 1]");
  if (!in(min_lr_ratio, 0, 1)) fail("minimum learning-rate ratio ", min_lr_ratio, " is out of range [0, 1]");
  if (!in(clip, 0, 1e9)) fail("gradient clip ", clip, " is out of range [0, 1e9]");
  if (warmup < 0 || total < 0) fail("warm-up and total steps must not be negative");
  if (total > 0 && warmup > total) fail("warm-up (", warmup, " steps) is longer than the run (", total, ")");
}

double lr_at(const AdamWOptions& o, int64_t step) {
  if (step < o.warmup) return o.lr * double(step + 1) / double(o.warmup);
  if (o.total <= 0) return o.lr;
  const double span = double(std::max<int64_t>(1, o.total - o.warmup));
  const double progress = std::min(1.0, double(step - o.warmup) / span);
  const double lo = o.lr * o.min_lr_ratio;
  return lo + 0.5 * (o.lr - lo) * (1.0 + std::cos(M_PI * progress));
}

namespace {
// Σ x² in double, in fixed chunks summed in order: the same result for any thread count.
double sum_squares(const std::vector<float>& t) {
  constexpr int64_t kChunk = 1 << 16;
  const int64_t n = int64_t(t.size()), chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> part(static_cast<size_t>(chunks), 0.0);
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    double s = 0;
    for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) s += double(t[size_t(i)]) * double(t[size_t(i)]);
    part[size_t(c)] = s;
  }
  double ss = 0;
  for (double v : part) ss += v;
  return ss;
}
}  // namespace

double clip_grad_norm(Weights<float>& g, double max_norm) {
  double ss = 0;
  g.each([&](const std::string&, std::vector<float>& t) { ss += sum_squares(t); });
  const double norm = std::sqrt(ss);
  if (max_norm > 0 && norm > max_norm) {
    const float s = float(max_norm / norm);
    g.each([&](const std::string&, std::vector<float>& t) {
  #pragma omp parallel for schedule(static) if (t.size() > 65536)
      for (size_t j = 0; j < t.size(); ++j) t[j] *= s;
    });
  }
  return norm;
}

namespace {
bool decays(const std::string& name) { return name.find("norm") == std::string::npos; }
}  // namespace

void adam_update(std::vector<float>& p, const std::vector<float>& g, std::vector<float>& m, std::vector<float>& v,
                 double lr, int64_t t, double beta1, double beta2, double eps, double wd) {
  if (g.size() != p.size() || m.size() != p.size() || v.size() != p.size()) fail("optimizer state does not match its tensor");
  const double c1 = 1.0 - std::pow(beta1, double(t)), c2 = 1.0 - std::pow(beta2, double(t));
  const float b1 = float(beta1), b2 = float(beta2), fwd = float(wd);
  float *tp = p.data(), *mp = m.data(), *vp = v.data();
  const float* gp = g.data();
  const int64_t n = int64_t(p.size());
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t j = 0; j < n; ++j) {
    mp[j] = b1 * mp[j] + (1 - b1) * gp[j];
    vp[j] = b2 * vp[j] + (1 - b2) * gp[j] * gp[j];
    const double upd = (double(mp[j]) / c1) / (std::sqrt(double(vp[j]) / c2) + eps) + double(fwd) * double(tp[j]);
    tp[j] = float(double(tp[j]) - lr * upd);
  }
}

double AdamW::step(Weights<float>& w, Weights<float>& g) {
  const double lr = lr_at(o_, t_);
  ++t_;
  std::vector<std::vector<float>*> grads;
  g.each_trainable([&](const std::string&, std::vector<float>& t) { grads.push_back(&t); });
  size_t i = 0;
  w.each_trainable([&](const std::string& name, std::vector<float>& t) {
    if (i >= grads.size()) fail("the gradient has fewer tensors than the trainable weights");
    if (m_.size() <= i) { m_.emplace_back(t.size(), 0.f); v_.emplace_back(t.size(), 0.f); }
    if (grads[i]->size() != t.size() || m_[i].size() != t.size()) fail("optimizer state does not match tensor ", name);
    adam_update(t, *grads[i], m_[i], v_[i], lr, t_, o_.beta1, o_.beta2, o_.eps, decays(name) ? o_.weight_decay : 0.0);
    ++i;
  });
  return lr;
}

}  // namespace slimlm::train
