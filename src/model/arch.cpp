#include "model/arch.h"
#include "core/error.h"
#include "io/gguf.h"
#include <cmath>
#include <optional>

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

namespace {
// A per-layer key stored as one integer or as an array of one integer per layer (llama.cpp's
// "key or array" convention for models with per-layer shapes).
std::vector<int64_t> key_or_arr(const gguf::File& f, const std::string& key, int64_t n_layer, std::optional<int64_t> dflt) {
  const gguf::Value* v = f.find(key);
  if (!v) {
    if (!dflt) fail(f.path(), ": missing key '", key, "'");
    return std::vector<int64_t>(size_t(n_layer), *dflt);
  }
  if (v->type != gguf::VType::ARRAY) return std::vector<int64_t>(size_t(n_layer), v->as_int());
  if (int64_t(v->arr.size()) != n_layer)
    fail(f.path(), ": key '", key, "' has ", v->arr.size(), " entries for ", n_layer, " layers");
  std::vector<int64_t> out;
  for (const auto& e : v->arr) out.push_back(e.as_int());
  return out;
}
}  // namespace

void read_hparams(const gguf::File& f, HParams& hp) {
  hp.arch = f.get_str("general.architecture");
  const ArchInfo& a = arch_info(hp.arch);
  const std::string p = hp.arch + ".";
  hp.n_embd = f.get_int(p + "embedding_length");
  hp.n_layer = f.get_int(p + "block_count");
  if (hp.n_layer <= 0 || hp.n_layer > 1024) fail(f.path(), ": impossible layer count ", hp.n_layer);
  std::vector<int64_t> ff = key_or_arr(f, p + "feed_forward_length", hp.n_layer, std::nullopt);
  std::vector<int64_t> heads = key_or_arr(f, p + "attention.head_count", hp.n_layer, std::nullopt);
  std::vector<int64_t> heads_kv = f.find(p + "attention.head_count_kv") ? key_or_arr(f, p + "attention.head_count_kv", hp.n_layer, 0) : heads;
  hp.n_ctx_train = f.opt_int(p + "context_length").value_or(2048);
  for (int64_t l = 0; l < hp.n_layer; ++l) {
    const int64_t h = heads[size_t(l)], hk = heads_kv[size_t(l)], fw = ff[size_t(l)];
    if (hp.n_embd <= 0 || h <= 0 || hk <= 0 || fw <= 0 || hp.n_embd > (1 << 16) || h > 1024 || fw > (1 << 24) || h % hk != 0)
      fail(f.path(), ": impossible hyper-parameters (n_embd ", hp.n_embd, ", n_layer ", hp.n_layer, ", layer ", l,
           ": n_head ", h, ", n_head_kv ", hk, ", n_ff ", fw, ")");
  }
  hp.n_head = heads[0]; hp.n_head_kv = heads_kv[0]; hp.n_ff = ff[0];
  hp.set_layer_shapes(heads, heads_kv, ff);
  // head_dim defaults to n_embd / n_head of the (unpruned) model; pruned files store key_length.
  hp.head_dim = f.opt_int(p + "attention.key_length").value_or(hp.n_embd / heads[0]);
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
  // After whole blocks were removed the family's pattern no longer holds: the file lists the flags.
  if (const gguf::Value* v = f.find("slimlm.attention.sliding_window_layers")) {
    if (v->type != gguf::VType::ARRAY || int64_t(v->arr.size()) != hp.n_layer)
      fail(f.path(), ": slimlm.attention.sliding_window_layers must hold one flag per layer");
    hp.sliding_window = f.opt_int(p + "attention.sliding_window").value_or(0);
    hp.swa_layer.assign(size_t(hp.n_layer), 0);
    for (int64_t l = 0; l < hp.n_layer; ++l) hp.swa_layer[size_t(l)] = v->arr[size_t(l)].as_int() != 0;
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
  const int64_t E = hp.n_embd;
  if (hp.head_dim <= 0 || hp.head_dim % 2 != 0) fail("impossible head dimension ", hp.head_dim);
  check(m.tok_embd, {E, hp.n_vocab}, "token_embd.weight");
  check(m.out_norm, {E}, "output_norm.weight");
  check(m.output, {E, hp.n_vocab}, "output.weight");
  if (!hp.swa_layer.empty() && int64_t(hp.swa_layer.size()) != hp.n_layer) fail("sliding-window flags do not match the layer count");
  if (int64_t(m.blocks.size()) != hp.n_layer) fail("model has ", m.blocks.size(), " blocks, expected ", hp.n_layer);
  for (size_t l = 0; l < m.blocks.size(); ++l) {
    const Block& b = m.blocks[l];
    const std::string p = cat("blk.", l, ".");
    const int64_t H = hp.n_head_at(int64_t(l)), HKV = hp.n_head_kv_at(int64_t(l)), F = hp.n_ff_at(int64_t(l));
    const int64_t Q = H * hp.head_dim, KV = HKV * hp.head_dim;
    if (H <= 0 || HKV <= 0 || F <= 0 || H % HKV != 0)
      fail("layer ", l, ": impossible shape (n_head ", H, ", n_head_kv ", HKV, ", n_ff ", F, ")");
    check(b.attn_norm, {E}, p + "attn_norm");
    check(b.wq, {E, Q}, p + "attn_q");
    check(b.wk, {E, KV}, p + "attn_k");
    check(b.wv, {E, KV}, p + "attn_v");
    check(b.wo, {Q, E}, p + "attn_output");
    check(b.ffn_norm, {E}, p + "ffn_norm");
    check(b.w_gate, {E, F}, p + "ffn_gate");
    check(b.w_up, {E, F}, p + "ffn_up");
    check(b.w_down, {F, E}, p + "ffn_down");
    if (!b.bo.empty()) check(b.bo, {E}, p + "attn_output.bias");
    if (!b.b_down.empty()) check(b.b_down, {E}, p + "ffn_down.bias");
    if (hp.qk_norm) { check(b.q_norm, {hp.head_dim}, p + "attn_q_norm"); check(b.k_norm, {hp.head_dim}, p + "attn_k_norm"); }
    if (hp.post_norms) { check(b.attn_post_norm, {E}, p + "post_attention_norm"); check(b.ffn_post_norm, {E}, p + "post_ffw_norm"); }
    if (!b.bq.empty()) { check(b.bq, {Q}, p + "attn_q.bias"); check(b.bk, {KV}, p + "attn_k.bias"); check(b.bv, {KV}, p + "attn_v.bias"); }
  }
}

}  // namespace slimlm
