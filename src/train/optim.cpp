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

double clip_grad_norm(Weights<float>& g, double max_norm) {
  double ss = 0;
  g.each([&](const std::string&, std::vector<float>& t) {
    for (float x : t) ss += double(x) * double(x);
  });
  const double norm = std::sqrt(ss);
  if (max_norm > 0 && norm > max_norm) {
    const float s = float(max_norm / norm);
    g.each([&](const std::string&, std::vector<float>& t) {
      for (float& x : t) x *= s;
    });
  }
  return norm;
}

namespace {
bool decays(const std::string& name) { return name.find("norm") == std::string::npos; }
}  // namespace

double AdamW::step(Weights<float>& w, Weights<float>& g) {
  const double lr = lr_at(o_, t_);
  ++t_;
  const double c1 = 1.0 - std::pow(o_.beta1, double(t_)), c2 = 1.0 - std::pow(o_.beta2, double(t_));
  std::vector<std::vector<float>*> grads;
  g.each_trainable([&](const std::string&, std::vector<float>& t) { grads.push_back(&t); });
  size_t i = 0;
  w.each_trainable([&](const std::string& name, std::vector<float>& t) {
    if (i >= grads.size()) fail("the gradient has fewer tensors than the trainable weights");
    if (m_.size() <= i) { m_.emplace_back(t.size(), 0.f); v_.emplace_back(t.size(), 0.f); }
    std::vector<float>&gt = *grads[i], &m = m_[i], &v = v_[i];
    if (gt.size() != t.size() || m.size() != t.size()) fail("optimizer state does not match tensor ", name);
    const float b1 = float(o_.beta1), b2 = float(o_.beta2), wd = decays(name) ? float(o_.weight_decay) : 0.f;
    for (size_t j = 0; j < t.size(); ++j) {
      m[j] = b1 * m[j] + (1 - b1) * gt[j];
      v[j] = b2 * v[j] + (1 - b2) * gt[j] * gt[j];
      const double upd = (double(m[j]) / c1) / (std::sqrt(double(v[j]) / c2) + o_.eps) + double(wd) * double(t[j]);
      t[j] = float(double(t[j]) - lr * upd);
    }
    ++i;
  });
  return lr;
}

}  // namespace slimlm::train
