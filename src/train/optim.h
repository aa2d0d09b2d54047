// Optimisation for the training engine: AdamW (decoupled weight decay on the matrices, none on
// norm weights), linear warm-up then cosine decay of the learning rate, and clipping of the
// global gradient norm.
#pragma once
#include "train/engine.h"
#include <cstdint>
#include <vector>

namespace slimlm::train {

struct AdamWOptions {
  double lr = 1e-4, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.0;
  int64_t warmup = 0;        // steps of linear warm-up from lr / warmup
  int64_t total = 0;         // steps of the whole run (cosine to min_lr_ratio · lr); 0: constant after warm-up
  double min_lr_ratio = 0.1;
  double clip = 1.0;         // maximum global gradient L2 norm; 0: no clipping
  void validate() const;     // throws Error naming the first value out of range
};

// Learning rate of (0-based) step `step`.
double lr_at(const AdamWOptions& o, int64_t step);

// Global L2 norm of the gradient; scales it down to max_norm when larger (max_norm > 0).
double clip_grad_norm(Weights<float>& g, double max_norm);

// One Adam update of a parameter vector in place (t: the 1-based step; wd: decoupled weight
// decay): p -= lr · (m̂ / (sqrt(v̂) + eps) + wd · p). Elementwise: the same for any thread count.
void adam_update(std::vector<float>& p, const std::vector<float>& g, std::vector<float>& m, std::vector<float>& v,
                 double lr, int64_t t, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double wd = 0);

class AdamW {
 public:
  explicit AdamW(const AdamWOptions& o) : o_(o) { o.validate(); }
  // One step: w -= lr · (m̂ / (sqrt(v̂) + eps) + wd · w) with bias-corrected moments. Returns lr.
  double step(Weights<float>& w, Weights<float>& g);
  int64_t steps_done() const { return t_; }
  // The moments and step count, for checkpoints.
  std::vector<std::vector<float>>& m() { return m_; }
  std::vector<std::vector<float>>& v() { return v_; }
  void set_steps_done(int64_t t) { t_ = t; }

 private:
  AdamWOptions o_;
  int64_t t_ = 0;
  std::vector<std::vector<float>> m_, v_;
};

}  // namespace slimlm::train
