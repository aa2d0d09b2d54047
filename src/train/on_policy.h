// On-policy distillation (GKD, Agarwal et al. 2024; MiniLLM): a training sequence whose tail the
// student writes itself. The first `prompt` tokens of a data sequence stay; the student samples
// the rest of the record (temperature τ, 0: greedy) from a scratch copy of its weights, refreshed
// at most once per optimizer step; the distillation loss is then scored on the rows that predict
// the generated tokens. Which sequences are generated, and their samples, are a function of the
// seed and the sequence's index, so runs and resumed runs stay identical.
#pragma once
#include "model/forward.h"
#include "model/model.h"
#include "train/engine.h"
#include <cstdint>
#include <memory>
#include <vector>

namespace slimlm::train {

// One-line errors for a rate outside [0, 1], a temperature outside [0, 100], a prompt under one
// token and, when seq > 0 and the rate is not zero, a prompt that leaves nothing to generate.
void check_on_policy(double rate, int64_t prompt, double temperature, int64_t seq);

// Whether draw k (the k-th training sequence of the run) is generated, and its sampler's seed.
struct OnPolicyDraw { bool generated = false; uint64_t sampler_seed = 0; };
OnPolicyDraw draw_on_policy(double rate, uint64_t seed, int64_t k);

struct RolloutStats { int64_t sequences = 0, tokens = 0; double seconds = 0; };

class Rollout {
 public:
  // Sequences of seq inputs (records of seq + 1 tokens) from the student m.
  Rollout(const Model& m, int64_t seq, int64_t prompt, double temperature);
  // The record s with tokens [prompt, seq] sampled by the student whose master weights are w
  // (adapters merged); the scratch model is rewritten only when `version` changes.
  std::vector<int32_t> generate(Weights<float>& w, int64_t version, const std::vector<int32_t>& s, uint64_t seed);
  // The rows scored on a generated record: those predicting a generated token (prompt − 1 on).
  const std::vector<uint8_t>& mask() const { return mask_; }
  const RolloutStats& stats() const { return stats_; }

 private:
  void refresh(Weights<float>& w);
  Model scratch_;
  std::unique_ptr<Session> session_;
  int64_t seq_, prompt_;
  float temperature_;
  int64_t version_ = -1;
  std::vector<uint8_t> mask_;
  std::vector<float> logits_;
  RolloutStats stats_;
};

}  // namespace slimlm::train
