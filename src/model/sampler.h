// Token sampling: greedy, temperature, top-k, top-p, min-p, repetition penalty. Seeded
// (std::mt19937_64), so the same logits, settings and seed give the same tokens.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace slimlm {

struct SamplerParams {
  float temp = 0.8f;         // 0: greedy
  int top_k = 40;            // 0: off
  float top_p = 0.95f;       // 1: off
  float min_p = 0.05f;       // 0: off
  float repeat_penalty = 1.0f;  // 1: off (llama.cpp style: divide positive logits, multiply negative)
  int repeat_last_n = 64;
  uint64_t seed = 42;
};

class Sampler {
 public:
  explicit Sampler(SamplerParams p);
  // `history`: tokens so far (for the repetition penalty). `logits` is modified.
  int32_t sample(float* logits, int64_t n_vocab, const std::vector<int32_t>& history);
  static int32_t argmax(const float* logits, int64_t n_vocab);
 private:
  SamplerParams p_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> cand_;
};

}  // namespace slimlm
