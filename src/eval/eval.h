// Evaluation as a library: perplexity in non-overlapping windows scored on their second half
// (the llama.cpp protocol), KL divergence and top-1 agreement against a reference model,
// teacher-forced per-token output, and pp/tg speed with peak memory. The CLI prints these.
#pragma once
#include "model/kv_cache.h"
#include "model/model.h"
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace slimlm::eval {

struct PplOptions {
  int64_t ctx = 512;
  int64_t max_chunks = 0;  // 0: all
  bool progress = true;
  KvType kv = KvType::F32;  // KV-cache storage of the model under test (the reference keeps f32)
  // Called for every scored position with its logits (n_vocab floats); for external checks.
  std::function<void(int64_t chunk, int64_t pos, const float* logits)> on_scored;
};

struct PplResult {
  int64_t ctx = 0, n_tokens = 0, n_chunks = 0, n_scored = 0;
  double ppl = 0, ppl_err = 0, nll_mean = 0;
  // against a reference model (when given)
  bool has_ref = false;
  double ref_ppl = 0, kld_mean = 0, kld_err = 0, kld_max = 0, top1_agree = 0;
  double max_abs_logit_diff = 0;
  int64_t max_diff_pos = -1;
};

// Windows [i*ctx, (i+1)*ctx); the first token of each window is replaced by BOS when the
// model adds one; logits at positions ctx/2 .. ctx-2 are scored against the next token.
PplResult perplexity(const Model& m, const std::vector<int32_t>& tokens, const PplOptions& o,
                     const Model* ref = nullptr);

struct TokenScore { int32_t id, argmax; float logprob_next, max_logit; };
// Teacher-forced: feeds `ids` in one pass; entry i has the argmax of logits i and the
// log-probability of ids[i+1] (NaN for the last position).
std::vector<TokenScore> per_token(const Model& m, const std::vector<int32_t>& ids);

struct BenchResult {
  std::string model, type;
  int threads = 0;
  int64_t n_prompt = 0, n_gen = 0, depth = 0;
  double pp_tps = 0, pp_tps_sd = 0, tg_tps = 0, tg_tps_sd = 0;
  double peak_rss_mb = 0, weights_mb = 0, kv_mb = 0;
  std::string kv_type = "f32";
};
BenchResult bench(const Model& m, int64_t n_prompt, int64_t n_gen, int reps, KvType kv = KvType::F32,
                  int64_t depth = 0);

double peak_rss_mb();
// Log-sum-exp of a row of logits (double accumulation).
double logsumexp(const float* x, int64_t n);

}  // namespace slimlm::eval
