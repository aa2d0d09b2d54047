// Full fine-tuning on next-token prediction: token streams packed into sequences with a
// held-out split, gradient accumulation, AdamW, checkpoints that resume exactly (the order of
// the sequences is a function of the seed and the step alone), and a stop with a one-line error
// naming the step when the loss or the gradient stops being finite.
#pragma once
#include "model/model.h"
#include "model/plan.h"
#include "train/distill.h"
#include "train/engine.h"
#include "train/optim.h"
#include <cstdint>
#include <functional>
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
  bool lora = false;         // train LoRA adapters on a frozen base instead of every weight
  LoraOptions lora_opt;
  void validate() const;
};

// Throws Error when the two models' vocabularies differ (distillation needs the same token ids).
void check_same_vocabulary(const Model& teacher, const Model& student);

struct StepLog { int64_t step = 0; double loss = 0, lr = 0, grad_norm = 0; };

class Trainer {
 public:
  Trainer(const Model& m, const TrainOptions& o, Packed data);
  // Runs optimizer steps until steps_done() == until; calls log after each step.
  void run(int64_t until, const std::function<void(const StepLog&)>& log = {});
  double heldout_loss();     // mean next-token loss over the held-out sequences
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
  // Loss (and gradient into g_ when grad) of one sequence: CE, or the distillation mix.
  double sequence_loss(const std::vector<int32_t>& s, bool grad);
  const Model& m_;
  TrainOptions o_;
  Packed data_;
  std::vector<LayerPlan> plan_;
  Weights<float> w_, g_;
  AdamW opt_;
};

}  // namespace slimlm::train
