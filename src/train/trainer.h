// Full fine-tuning on next-token prediction: token streams packed into sequences with a
// held-out split, gradient accumulation, AdamW, checkpoints that resume exactly (the order of
// the sequences is a function of the seed and the step alone), and a stop with a one-line error
// naming the step when the loss or the gradient stops being finite.
#pragma once
#include "model/model.h"
#include "model/plan.h"
#include "train/distill.h"
#include "train/engine.h"
#include "train/on_policy.h"
#include "train/optim.h"
#include "train/state_kd.h"
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace slimlm::train {

// Sequences of seq + 1 tokens (inputs and their next tokens), cut without overlap from the
// stream; the last ⌈heldout · count⌉ of them (at least one when heldout > 0) are held out.
struct Packed {
  int64_t seq = 0;
  std::vector<std::vector<int32_t>> train, heldout;
};
Packed pack(const std::vector<int32_t>& tokens, int64_t seq, double heldout);

struct TrainOptions {
  int64_t accum = 1;         // sequences per optimizer step
  uint64_t seed = 1;         // order of the sequences
  AdamWOptions opt;
  // Distillation: with a teacher (same vocabulary; any depth, width or storage type, run by the
  // inference runtime), the loss is (1 − ce_weight) · distill(student, teacher) + ce_weight · CE.
  const Model* teacher = nullptr;
  DistillOptions kd;
  double ce_weight = 0;
  // Feature and relation distillation on top (train/state_kd.h): the loss gains
  // α·feature + β·relation, the teacher's states coming from the engine's forward pass in float.
  StateKdOptions state_kd;
  // On-policy distillation (train/on_policy.h): with probability on_policy per training sequence
  // (a function of the seed and the sequence's index), the student writes the sequence after its
  // first on_policy_prompt tokens, sampling at on_policy_temp (0: greedy) from its weights at the
  // step's start; the distillation loss is scored on the generated rows alone (no CE there: the
  // data's next tokens are gone). Held-out losses stay on the data.
  double on_policy = 0;
  int64_t on_policy_prompt = 16;
  double on_policy_temp = 1;
  bool lora = false;         // train LoRA adapters on a frozen base instead of every weight
  LoraOptions lora_opt;
  void validate() const;
};

// Throws Error when the two models' vocabularies differ (distillation needs the same token ids).
void check_same_vocabulary(const Model& teacher, const Model& student);

// A sequence's loss and its parts: logit (the CE or the distillation mix) and the unweighted
// feature and relation parts (zero without state distillation); loss = logit + α·feature + β·relation.
struct LossParts { double loss = 0, logit = 0, feature = 0, relation = 0; };

struct StepLog { int64_t step = 0; double loss = 0, lr = 0, grad_norm = 0; LossParts parts; };

class Trainer {
 public:
  Trainer(const Model& m, const TrainOptions& o, Packed data);
  // Runs optimizer steps until steps_done() == until; calls log after each step.
  void run(int64_t until, const std::function<void(const StepLog&)>& log = {});
  double heldout_loss() { return heldout_parts().loss; }  // mean loss over the held-out sequences
  LossParts heldout_parts();  // the same, with its parts
  // The resolved feature / relation distillation (empty pairs when off).
  const StateKdPlan& state_kd_plan() const { return kdp_; }
  // The record the student writes for draw k from data record s with the current weights (what
  // training uses when draw k is on-policy), and the counts and time of the generation so far.
  std::vector<int32_t> rollout(const std::vector<int32_t>& s, int64_t k);
  RolloutStats rollout_stats() const { return roll_ ? roll_->stats() : RolloutStats{}; }
  int64_t steps_done() const { return opt_.steps_done(); }
  Weights<float>& weights() { return w_; }
  // Writes the trained weights into `m` (adapters merged first), ready to run or save.
  void export_to(Model& m);
  // Writes weights, optimizer state and step (to a temporary file, then renamed).
  void save(const std::string& path);
  // Reads a checkpoint written by save() for the same model shape; throws Error otherwise.
  void resume(const std::string& path);

 private:
  const std::vector<int32_t>& sequence(int64_t k) const;  // k-th sequence drawn (epochs reshuffled)
  // Loss (and gradient into g_ when grad) of one sequence: CE, or the distillation mix; with a
  // mask, the distillation loss alone on the rows it marks.
  LossParts sequence_loss(const std::vector<int32_t>& s, bool grad, const uint8_t* mask = nullptr);
  LossParts train_sequence(int64_t k);  // draw k, from the data or written by the student
  // The logit loss of the distillation mix against the teacher's logits zt.
  LogitLoss<float> logit_mix(const std::vector<int32_t>& s, const std::vector<float>& zt, const uint8_t* mask) const;
  const Model& m_;
  TrainOptions o_;
  Packed data_;
  std::vector<LayerPlan> plan_;
  Weights<float> w_, g_;
  AdamW opt_;
  StateKdPlan kdp_;               // feature / relation distillation, when on:
  std::vector<LayerPlan> tplan_;  // the teacher's plan and float weights
  Weights<float> tw_;
  std::unique_ptr<Rollout> roll_;  // on-policy generation, when on
};

}  // namespace slimlm::train
