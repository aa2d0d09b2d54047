// The small models the training engine's checks run on: stories260K cut to two blocks (llama),
// or the same weights dressed as gemma3 (QK-norm, post-norms, GeGLU, scaled embeddings, a local
// sliding-window layer before a global one, random norm weights).
#pragma once
#include "model/model.h"
#include "test_util.h"
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace slimlm::test {
inline std::unique_ptr<Model> two_layers(bool gemma) {
  auto m = load_model(stories());
  m->blocks.resize(2);
  m->hp.n_layer = 2;
  if (!gemma) return m;
  HParams& hp = m->hp;
  hp.arch = "gemma3";
  hp.qk_norm = hp.post_norms = hp.embed_scale = true;
  hp.act = Activation::GeLU;
  hp.rope = RopeType::Neox;
  hp.sliding_window = 3;
  hp.swa_layer = {1, 0};
  hp.rope_theta_swa = 10000.f;
  hp.rope_theta = 1e6f;
  hp.attn_scale = 0.3f;
  std::mt19937 rng(7);
  std::normal_distribution<float> d(1.0f, 0.2f);
  auto norm = [&](const std::string& name, int64_t w) {
    std::vector<float> v(static_cast<size_t>(w));
    for (auto& x : v) x = d(rng);
    return Tensor::from_f32(name, {w}, v.data());
  };
  for (Block& b : m->blocks) {
    b.q_norm = norm("q_norm", hp.head_dim);
    b.k_norm = norm("k_norm", hp.head_dim);
    b.attn_post_norm = norm("attn_post_norm", hp.n_embd);
    b.ffn_post_norm = norm("ffn_post_norm", hp.n_embd);
  }
  return m;
}
// n token ids: 1, then a fixed spread over the vocabulary.
inline std::vector<int32_t> engine_ids(int n) {
  std::vector<int32_t> ids = {1};
  for (int i = 1; i < n; ++i) ids.push_back(int32_t((i * 97 + 13) % 509 + 2));
  return ids;
}
}  // namespace slimlm::test
