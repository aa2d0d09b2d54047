#include "model/arch.h"
#include "core/error.h"
#include "io/gguf.h"
#include <cmath>

namespace slimlm {

namespace {
//                       name      rope            act               qkn    post   emb    bias   swa
const ArchInfo kArchs[] = {
    {"llama",  RopeType::Norm, Activation::SiLU, false, false, false, false, 0},
    {"qwen2",  RopeType::Neox, Activation::SiLU, false, false, false, true,  0},
    {"qwen3",  RopeType::Neox, Activation::SiLU, true,  false, false, false, 0},
    {"gemma3", RopeType::Neox, Activation::GeLU, true,  true,  true,  false, 6},
};
}  // namespace

std::string known_archs() {
  std::string s;
  for (const auto& a : kArchs) s += (s.empty() ? "" : ", ") + std::string(a.name);
  return s;
}

const ArchInfo& arch_info(const std::string& name) {
  for (const auto& a : kArchs) if (name == a.name) return a;
  fail("unsupported architecture '", name, "' (supported: ", known_archs(), ")");
}

void read_hparams(const gguf::File& f, HParams& hp) {
  hp.arch = f.get_str("general.architecture");
  const ArchInfo& a = arch_info(hp.arch);
  const std::string p = hp.arch + ".";
  hp.n_embd = f.get_int(p + "embedding_length");
  hp.n_layer = f.get_int(p + "block_count");
  hp.n_ff = f.get_int(p + "feed_forward_length");
  hp.n_head = f.get_int(p + "attention.head_count");
  hp.n_head_kv = f.opt_int(p + "attention.head_count_kv").value_or(hp.n_head);
  hp.n_ctx_train = f.opt_int(p + "context_length").value_or(2048);
  if (hp.n_embd <= 0 || hp.n_layer <= 0 || hp.n_head <= 0 || hp.n_head_kv <= 0 || hp.n_ff <= 0 ||
      hp.n_embd > (1 << 16) || hp.n_layer > 1024 || hp.n_head > 1024 || hp.n_head % hp.n_head_kv != 0)
    fail(f.path(), ": impossible hyper-parameters (n_embd ", hp.n_embd, ", n_layer ", hp.n_layer,
         ", n_head ", hp.n_head, ", n_head_kv ", hp.n_head_kv, ")");
  hp.head_dim = f.opt_int(p + "attention.key_length").value_or(hp.n_embd / hp.n_head);
  hp.norm_eps = float(f.opt_float(p + "attention.layer_norm_rms_epsilon").value_or(1e-5));
  hp.rope_theta = float(f.opt_float(p + "rope.freq_base").value_or(10000.0));
  hp.rope_theta_swa = float(f.opt_float(p + "rope.freq_base_swa").value_or(10000.0));
  if (auto t = f.opt_str(p + "rope.scaling.type"); t && *t == "linear")
    hp.rope_scale = float(f.opt_float(p + "rope.scaling.factor").value_or(1.0));
  else if (t && *t != "none")
    fail(f.path(), ": rope scaling '", *t, "' is not supported yet");
  hp.rope = a.rope;
  hp.act = a.act;
  hp.qk_norm = a.qk_norm;
  hp.post_norms = a.post_norms;
  hp.embed_scale = a.embed_scale;
  if (a.swa_pattern > 0) {
    hp.sliding_window = f.opt_int(p + "attention.sliding_window").value_or(0);
    hp.swa_layer.assign(size_t(hp.n_layer), 0);
    if (hp.sliding_window > 0)
      for (int64_t l = 0; l < hp.n_layer; ++l) hp.swa_layer[size_t(l)] = (l + 1) % a.swa_pattern != 0;
  }
  if (hp.arch == "gemma3") {
    // Gemma 3 scales queries by query_pre_attn_scalar^-1/2 = head_dim^-1/2 for the small models.
    hp.attn_scale = 1.0f / std::sqrt(float(hp.head_dim));
  }
}

namespace {
void check(const Tensor& t, std::vector<int64_t> ne, const std::string& what) {
  if (t.empty()) fail("missing tensor ", what);
  if (t.ne != ne) {
    std::string got, want;
    for (auto d : t.ne) got += cat(d, " ");
    for (auto d : ne) want += cat(d, " ");
    fail("tensor '", t.name, "' has shape [ ", got, "], expected [ ", want, "]");
  }
}
}  // namespace

void validate_shapes(const Model& m) {
  const HParams& hp = m.hp;
  const int64_t E = hp.n_embd, Q = hp.n_head * hp.head_dim, KV = hp.n_head_kv * hp.head_dim;
  if (hp.head_dim <= 0 || hp.head_dim % 2 != 0) fail("impossible head dimension ", hp.head_dim);
  check(m.tok_embd, {E, hp.n_vocab}, "token_embd.weight");
  check(m.out_norm, {E}, "output_norm.weight");
  check(m.output, {E, hp.n_vocab}, "output.weight");
  if (int64_t(m.blocks.size()) != hp.n_layer) fail("model has ", m.blocks.size(), " blocks, expected ", hp.n_layer);
  for (size_t l = 0; l < m.blocks.size(); ++l) {
    const Block& b = m.blocks[l];
    const std::string p = cat("blk.", l, ".");
    check(b.attn_norm, {E}, p + "attn_norm");
    check(b.wq, {E, Q}, p + "attn_q");
    check(b.wk, {E, KV}, p + "attn_k");
    check(b.wv, {E, KV}, p + "attn_v");
    check(b.wo, {Q, E}, p + "attn_output");
    check(b.ffn_norm, {E}, p + "ffn_norm");
    check(b.w_gate, {E, hp.n_ff}, p + "ffn_gate");
    check(b.w_up, {E, hp.n_ff}, p + "ffn_up");
    check(b.w_down, {hp.n_ff, E}, p + "ffn_down");
    if (hp.qk_norm) { check(b.q_norm, {hp.head_dim}, p + "attn_q_norm"); check(b.k_norm, {hp.head_dim}, p + "attn_k_norm"); }
    if (hp.post_norms) { check(b.attn_post_norm, {E}, p + "post_attention_norm"); check(b.ffn_post_norm, {E}, p + "post_ffw_norm"); }
    if (!b.bq.empty()) { check(b.bq, {Q}, p + "attn_q.bias"); check(b.bk, {KV}, p + "attn_k.bias"); check(b.bv, {KV}, p + "attn_v.bias"); }
  }
}

}  // namespace slimlm
