// Logit distillation losses between a student's and a teacher's next-token distributions,
// p = softmax(z / τ) row by row, averaged over the rows (survey §5.1):
//   ForwardKL  KL(p_t ‖ p_s)                         (Hinton et al.; the usual KD)
//   ReverseKL  KL(p_s ‖ p_t)                         (MiniLLM: mode-seeking)
//   JSD        β·KL(p_t ‖ m) + (1−β)·KL(p_s ‖ m), m = β·p_t + (1−β)·p_s   (GKD's generalized JSD)
//   SkewKL     KL(p_t ‖ α·p_t + (1−α)·p_s)           (DistiLLM's skew KL, α = beta)
//   SkewRKL    KL(p_s ‖ α·p_s + (1−α)·p_t)           (DistiLLM's skew reverse KL)
// The gradient goes to the student's logits only; the teacher is fixed.
#pragma once
#include <cstdint>
#include <string>

namespace slimlm::train {

enum class DistillLoss { ForwardKL, ReverseKL, JSD, SkewKL, SkewRKL };
DistillLoss parse_distill_loss(const std::string& s);  // "fkl" | "rkl" | "jsd" | "skl" | "srkl"

struct DistillOptions {
  DistillLoss loss = DistillLoss::ForwardKL;
  double temperature = 1.0;  // τ > 0
  double beta = 0.5;         // JSD's β / the skew α, in (0, 1)
  void validate() const;
};

// Mean loss over n rows of V logits; when dzs is not null, adds dLoss/dz_s to it. Rows with
// mask[r] == 0 (mask may be null) are skipped and not counted.
template <class T> double distill(const DistillOptions& o, const T* zs, const T* zt, int64_t n, int64_t V,
                                  const uint8_t* mask, T* dzs);

}  // namespace slimlm::train
