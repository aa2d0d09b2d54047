#include "train/on_policy.h"
#include "core/error.h"
#include <chrono>
#include <random>

namespace slimlm::train {

void check_on_policy(double rate, int64_t prompt, double temperature, int64_t seq) {
  if (!(rate >= 0 && rate <= 1)) fail("on-policy rate ", rate, " is out of range [0, 1]");
  if (!(temperature >= 0 && temperature <= 100)) fail("on-policy temperature ", temperature, " is out of range [0, 100]");
  if (prompt < 1) fail("on-policy prompt of ", prompt, " tokens: it needs at least one");
  if (rate > 0 && seq > 0 && prompt >= seq)
    fail("on-policy prompt of ", prompt, " tokens leaves nothing to generate in sequences of ", seq, " (need prompt < seq)");
}

OnPolicyDraw draw_on_policy(double rate, uint64_t seed, int64_t k) {
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull ^ (uint64_t(k) + 1) * 0xD1B54A32D192ED03ull);
  const double u = double(rng() >> 11) * 0x1.0p-53;  // uniform in [0, 1)
  return {u < rate, rng()};
}

Rollout::Rollout(const Model& m, int64_t seq, int64_t prompt, double temperature)
    : seq_(seq), prompt_(prompt), temperature_(float(temperature)) {
  check_on_policy(1, prompt, temperature, seq);
  scratch_.hp = m.hp;  // shares the tensors until the first refresh (no tokenizer: ids only)
  scratch_.blocks = m.blocks;
  scratch_.tok_embd = m.tok_embd;
  scratch_.out_norm = m.out_norm;
  scratch_.output = m.output;
  scratch_.format = m.format;
  session_ = std::make_unique<Session>(scratch_, seq);
  mask_.assign(static_cast<size_t>(seq), 0);
  for (int64_t r = prompt - 1; r < seq; ++r) mask_[size_t(r)] = 1;
}

void Rollout::refresh(Weights<float>& w) {
  if (!w.frozen_base) return store_weights(w, scratch_);
  Weights<float> merged = w;  // LoRA: the adapters folded into a copy
  merge_lora(merged);
  store_weights(merged, scratch_);
}

std::vector<int32_t> Rollout::generate(Weights<float>& w, int64_t version, const std::vector<int32_t>& s,
                                       uint64_t seed) {
  if (int64_t(s.size()) != seq_ + 1) fail("internal: on-policy record of ", s.size(), " tokens, not ", seq_ + 1);
  const auto start = std::chrono::steady_clock::now();
  if (version != version_) {
    refresh(w);
    version_ = version;
  }
  SamplerParams sp;
  sp.temp = temperature_;
  sp.top_k = 0;
  sp.top_p = 1;
  sp.min_p = 0;
  sp.seed = seed;
  Sampler smp(sp);
  std::vector<int32_t> out(s.begin(), s.begin() + prompt_), feed = out;
  session_->reset();
  while (int64_t(out.size()) <= seq_) {  // an end-of-text token is kept like any other
    session_->forward(feed.data(), int64_t(feed.size()), int64_t(feed.size()) - 1, logits_);
    out.push_back(smp.sample(logits_.data(), scratch_.hp.n_vocab, out));
    feed.assign(1, out.back());
  }
  stats_.sequences += 1;
  stats_.tokens += seq_ + 1 - prompt_;
  stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace slimlm::train
