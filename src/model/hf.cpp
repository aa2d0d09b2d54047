// Hugging Face folder loader: config.json + one or many *.safetensors + tokenizer.json.
// Maps HF names and conventions onto slimlm's (GGUF's): shapes reversed, llama q/k rows
// permuted for adjacent-pair RoPE, gemma norm weights stored as (1 + w).
#include "core/error.h"
#include "core/text.h"
#include "io/safetensors.h"
#include "model/arch.h"
#include "model/model.h"
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

namespace slimlm {

namespace {
namespace fs = std::filesystem;

std::string hf_arch(const std::string& model_type) {
  if (model_type == "llama" || model_type == "mistral") return "llama";
  if (model_type == "qwen2") return "qwen2";
  if (model_type == "qwen3") return "qwen3";
  if (model_type == "gemma3_text" || model_type == "gemma3") return "gemma3";
  fail("unsupported Hugging Face model_type '", model_type, "' (supported: llama, mistral, qwen2, qwen3, gemma3_text)");
}

struct Loader {
  std::vector<std::shared_ptr<safetensors::File>> files;
  Tensor get(const std::string& name, bool required) const {
    for (const auto& f : files)
      if (const safetensors::Entry* e = f->find(name)) {
        Tensor t;
        t.name = name;
        t.type = e->type;
        t.ne.assign(e->shape.rbegin(), e->shape.rend());
        if (t.ne.empty()) t.ne = {1};
        t.data = e->data;
        t.nbytes = e->nbytes;
        t.keep = f;
        if (reinterpret_cast<uintptr_t>(t.data) % 4 != 0) {  // safetensors does not align data
          auto buf = std::make_shared<std::vector<uint8_t>>(t.data, t.data + t.nbytes);
          t.data = buf->data();
          t.keep = buf;
        }
        return t;
      }
    if (required) fail("Hugging Face model: missing tensor '", name, "'");
    return {};
  }
};

// Reorders rows so that HF's rotate-half RoPE becomes adjacent-pair RoPE (as GGUF llama).
Tensor permute_rows(const Tensor& t, int64_t n_head) {
  const int64_t rows = t.rows(), hd = rows / n_head, half = hd / 2;
  const size_t rb = row_bytes(t.type, t.cols());
  auto buf = std::make_shared<std::vector<uint8_t>>(t.nbytes);
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t j = 0; j < 2; ++j)
      for (int64_t i = 0; i < half; ++i)
        std::copy_n(t.row(h * hd + j * half + i), rb, buf->data() + size_t(h * hd + 2 * i + j) * rb);
  Tensor r = t;
  r.data = buf->data();
  r.keep = buf;
  return r;
}

Tensor norm_f32(const Tensor& t, float shift) {
  if (t.empty()) return t;
  std::vector<float> v = t.to_f32();
  for (float& x : v) x += shift;
  return Tensor::from_f32(t.name, t.ne, v.data());
}
// The hyper-parameters in config.json (or its text_config); `dir` names the folder in errors.
void read_hparams(nlohmann::json c, const std::string& dir, HParams& hp) {
  try {
    if (c.contains("text_config")) c = c["text_config"];
    hp.arch = hf_arch(c.value("model_type", std::string("?")));
    const ArchInfo& a = arch_info(hp.arch);
    hp.n_embd = c.at("hidden_size").get<int64_t>();
    hp.n_layer = c.at("num_hidden_layers").get<int64_t>();
    hp.n_ff = c.at("intermediate_size").get<int64_t>();
    hp.n_head = c.at("num_attention_heads").get<int64_t>();
    hp.n_head_kv = c.value("num_key_value_heads", hp.n_head);
    hp.n_vocab = c.at("vocab_size").get<int64_t>();
    if (hp.n_head <= 0 || hp.n_embd <= 0 || hp.n_head_kv <= 0 || hp.n_layer <= 0 || hp.n_layer > 1024 || hp.n_head % hp.n_head_kv)
      fail(dir, "/config.json: impossible hyper-parameters");
    hp.head_dim = c.contains("head_dim") && !c["head_dim"].is_null() ? c["head_dim"].get<int64_t>() : hp.n_embd / hp.n_head;
    hp.n_ctx_train = c.value("max_position_embeddings", int64_t(2048));
    hp.norm_eps = c.value("rms_norm_eps", 1e-6f);
    hp.rope_theta = c.value("rope_theta", 10000.0f);
    hp.rope_theta_swa = c.value("rope_local_base_freq", 10000.0f);
    if (c.contains("rope_scaling") && !c["rope_scaling"].is_null()) {
      const auto& rs = c["rope_scaling"];
      const std::string type = rs.value("rope_type", rs.value("type", std::string("?")));
      if (type != "linear") fail(dir, "/config.json: rope scaling '", type, "' is not supported yet");
      hp.rope_scale = rs.at("factor").get<float>();
    }
    hp.rope = a.rope; hp.act = a.act; hp.qk_norm = a.qk_norm; hp.post_norms = a.post_norms; hp.embed_scale = a.embed_scale;
    if (a.swa_pattern > 0) {
      hp.sliding_window = c.value("sliding_window", int64_t(0));
      const int pattern = c.value("sliding_window_pattern", a.swa_pattern);
      hp.swa_layer.assign(size_t(hp.n_layer), 0);
      for (int64_t l = 0; l < hp.n_layer && hp.sliding_window > 0; ++l) hp.swa_layer[size_t(l)] = (l + 1) % pattern != 0;
      hp.attn_scale = 1.0f / std::sqrt(c.value("query_pre_attn_scalar", float(hp.head_dim)));
    }
  } catch (const nlohmann::json::exception& e) {
    fail(dir, "/config.json: ", e.what());
  }
}

// Block l's tensors under HF names: llama q/k rows permuted, gemma norms shifted by one.
Block load_block(const Loader& L, const HParams& hp, int64_t l) {
  const bool gemma = hp.arch == "gemma3", permute = hp.rope == RopeType::Norm;
  const float shift = gemma ? 1.0f : 0.0f;
  const ArchInfo& a = arch_info(hp.arch);
  const std::string p = cat("model.layers.", l, ".");
  Block b;
  b.attn_norm = norm_f32(L.get(p + "input_layernorm.weight", true), shift);
  b.wq = L.get(p + "self_attn.q_proj.weight", true);
  b.wk = L.get(p + "self_attn.k_proj.weight", true);
  if (permute) { b.wq = permute_rows(b.wq, hp.n_head); b.wk = permute_rows(b.wk, hp.n_head_kv); }
  b.wv = L.get(p + "self_attn.v_proj.weight", true);
  b.wo = L.get(p + "self_attn.o_proj.weight", true);
  if (a.qkv_bias) {
    b.bq = norm_f32(L.get(p + "self_attn.q_proj.bias", true), 0);
    b.bk = norm_f32(L.get(p + "self_attn.k_proj.bias", true), 0);
    b.bv = norm_f32(L.get(p + "self_attn.v_proj.bias", true), 0);
  }
  if (a.qk_norm) {
    b.q_norm = norm_f32(L.get(p + "self_attn.q_norm.weight", true), shift);
    b.k_norm = norm_f32(L.get(p + "self_attn.k_norm.weight", true), shift);
  }
  if (gemma) {
    b.attn_post_norm = norm_f32(L.get(p + "post_attention_layernorm.weight", true), shift);
    b.ffn_norm = norm_f32(L.get(p + "pre_feedforward_layernorm.weight", true), shift);
    b.ffn_post_norm = norm_f32(L.get(p + "post_feedforward_layernorm.weight", true), shift);
  } else {
    b.ffn_norm = norm_f32(L.get(p + "post_attention_layernorm.weight", true), 0);
  }
  b.w_gate = L.get(p + "mlp.gate_proj.weight", true);
  b.w_up = L.get(p + "mlp.up_proj.weight", true);
  b.w_down = L.get(p + "mlp.down_proj.weight", true);
  return b;
}
}  // namespace

std::unique_ptr<Model> load_hf(const std::string& dir) {
  nlohmann::json c;
  try {
    c = nlohmann::json::parse(read_text_file((fs::path(dir) / "config.json").string()));
  } catch (const nlohmann::json::exception& e) {
    fail(dir, "/config.json: invalid JSON (", e.what(), ")");
  }
  auto m = std::make_unique<Model>();
  m->path = dir;
  m->format = "hf";
  HParams& hp = m->hp;
  read_hparams(std::move(c), dir, hp);
  Loader L;
  std::vector<fs::path> st;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") st.push_back(e.path());
  if (st.empty()) fail(dir, ": no *.safetensors files");
  std::sort(st.begin(), st.end());
  for (const auto& p : st) L.files.push_back(safetensors::File::open(p.string()));
  const float shift = hp.arch == "gemma3" ? 1.0f : 0.0f;
  m->tok_embd = L.get("model.embed_tokens.weight", true);
  m->out_norm = norm_f32(L.get("model.norm.weight", true), shift);
  m->output = L.get("lm_head.weight", false);
  if (m->output.empty()) m->output = m->tok_embd;
  for (int64_t l = 0; l < hp.n_layer; ++l) m->blocks.push_back(load_block(L, hp, l));
  validate_shapes(*m);
  const fs::path tj = fs::path(dir) / "tokenizer.json", tc = fs::path(dir) / "tokenizer_config.json";
  if (fs::exists(tj)) m->tok = Tokenizer::from_hf_json(tj.string(), fs::exists(tc) ? tc.string() : "");
  return m;
}

}  // namespace slimlm
