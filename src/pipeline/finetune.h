// Training as a job (the `slimlm train` / `distill` verbs and recipe steps): any text file (or
// token ids, in a file or in memory) packed into sequences with a held-out split, full
// fine-tuning or LoRA, optionally distilling from a teacher model, with a progress bar (loss,
// tokens/s, ETA), periodic held-out evaluation and checkpoints, and a loss-curve plot. The
// trained weights end up in the model.
#pragma once
#include "model/model.h"
#include "train/trainer.h"
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace slimlm::pipeline {

struct FinetuneJob {
  std::string data;                // text file (tokenized with the model's tokenizer)
  std::string ids;                 // or a file of token ids
  std::vector<int32_t> tokens;     // or token ids in memory (e.g. pipeline/teacher_data.h)
  int64_t seq = 256, steps = 100;
  double heldout = 0.05;           // fraction of the sequences held out
  int64_t heldout_max = 16;        // at most this many of them are evaluated (the first ones)
  train::TrainOptions train;       // optimizer, accumulation, LoRA, teacher and loss mix
  int64_t eval_every = 0;          // held-out loss every N steps (0: at the start and the end)
  std::string checkpoint;          // written every checkpoint_every steps and at the end
  int64_t checkpoint_every = 0;
  std::string resume;              // checkpoint to continue from
  std::string curve;               // SVG of the train and held-out loss curves
  bool progress = true;
};

struct FinetuneResult {
  int64_t steps = 0, tokens = 0, params_trained = 0;
  double seconds = 0, tokens_per_s = 0;
  std::vector<train::StepLog> log;
  std::vector<double> step_seconds;                 // wall time of each step
  std::vector<std::pair<int64_t, double>> heldout;  // (step, loss)
  std::vector<train::LossParts> heldout_parts;      // the same evaluations, part by part
  train::StateKdPlan state_kd;                      // the resolved feature / relation distillation
  train::RolloutStats on_policy;                    // the sequences the student wrote (on-policy)
};

FinetuneResult finetune(Model& m, const FinetuneJob& job);

}  // namespace slimlm::pipeline
