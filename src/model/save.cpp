#include "core/dtype_custom.h"
#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_csr.h"
#include "model/arch.h"
#include "model/model.h"

namespace slimlm {

Tensor convert_tensor(const Tensor& t, DType type) {
  if (t.ne.size() < 2) return t.type == DType::F32 ? t : Tensor::from_f32(t.name, t.ne, t.to_f32().data());
  DType dst = t.cols() % traits(type).block == 0 ? type : DType::F16;
  if (t.type == dst && !t.outliers) return t;
  std::vector<float> f = t.to_f32();
  return Tensor::from_f32(t.name, t.ne, f.data(), dst);
}

namespace {

uint32_t file_type(DType t) {  // 0 also for types without an ftype of their own  // llama_ftype values
  switch (t) {
    case DType::F32: return 0; case DType::F16: return 1; case DType::Q4_0: return 2; case DType::Q4_1: return 3;
    case DType::Q8_0: return 7; case DType::Q5_0: return 8; case DType::Q5_1: return 9; case DType::BF16: return 32;
    default: return 0;
  }
}

void save_gguf_impl(const Model& m, const std::string& path, const DType* type,
                    const std::vector<std::pair<std::string, gguf::Value>>& extra);
}  // namespace

void save_gguf(const Model& m, const std::string& path, DType type) { save_gguf_impl(m, path, &type, {}); }

void save_gguf_as_is(const Model& m, const std::string& path, const std::vector<std::pair<std::string, gguf::Value>>& extra) {
  save_gguf_impl(m, path, nullptr, extra);
}

namespace {
// The architecture and hyper-parameter keys.
void set_hparams(gguf::Writer& w, const Model& m) {
  const HParams& hp = m.hp;
  const std::string a = hp.arch + ".";
  w.set("general.architecture", gguf::Value::of_str(hp.arch));
  if (!m.gguf) w.set("general.name", gguf::Value::of_str(m.path));
  w.set(a + "context_length", gguf::Value::of_u32(uint32_t(hp.n_ctx_train)));
  w.set(a + "embedding_length", gguf::Value::of_u32(uint32_t(hp.n_embd)));
  w.set(a + "block_count", gguf::Value::of_u32(uint32_t(hp.n_layer)));
  // Per-layer shapes (structured pruning) as arrays of one entry per layer, as llama.cpp reads
  // these keys ("key or array"); scalars when every layer has the same shape.
  auto per_layer = [&](const std::string& key, int64_t (HParams::*at)(int64_t) const, int64_t uniform_value) {
    if (hp.uniform()) { w.set(key, gguf::Value::of_u32(uint32_t(uniform_value))); return; }
    std::vector<int32_t> v;
    for (int64_t l = 0; l < hp.n_layer; ++l) v.push_back(int32_t((hp.*at)(l)));
    w.set(key, gguf::Value::of_i32s(v));
  };
  per_layer(a + "feed_forward_length", &HParams::n_ff_at, hp.n_ff);
  per_layer(a + "attention.head_count", &HParams::n_head_at, hp.n_head);
  per_layer(a + "attention.head_count_kv", &HParams::n_head_kv_at, hp.n_head_kv);
  w.set(a + "attention.layer_norm_rms_epsilon", gguf::Value::of_f32(hp.norm_eps));
  w.set(a + "rope.freq_base", gguf::Value::of_f32(hp.rope_theta));
  // Sliding-window flags that no longer follow the family's pattern (blocks were removed).
  if (!hp.swa_layer.empty()) {
    const int pattern = arch_info(hp.arch).swa_pattern;
    bool derived = hp.sliding_window > 0 && pattern > 0;
    for (int64_t l = 0; l < hp.n_layer && derived; ++l) derived = hp.swa_layer[size_t(l)] == ((l + 1) % pattern != 0);
    if (derived || hp.sliding_window <= 0) w.remove("slimlm.attention.sliding_window_layers");
    else {
      std::vector<int32_t> v(hp.swa_layer.begin(), hp.swa_layer.end());
      w.set("slimlm.attention.sliding_window_layers", gguf::Value::of_i32s(v));
      w.set(a + "attention.sliding_window", gguf::Value::of_u32(uint32_t(hp.sliding_window)));
    }
  }
  if (!hp.uniform() || hp.head_dim != hp.n_embd / hp.n_head) {
    w.set(a + "attention.key_length", gguf::Value::of_u32(uint32_t(hp.head_dim)));
    w.set(a + "attention.value_length", gguf::Value::of_u32(uint32_t(hp.head_dim)));
  }
}

void set_file_type(gguf::Writer& w, const Model& m, const DType* type) {
  if (type) {
    w.set("general.file_type", gguf::Value::of_u32(file_type(*type)));
  } else {  // tensors keep their types; the file type names the block matrices' common type
    const DType t0 = m.blocks.empty() ? m.tok_embd.type : m.blocks[0].wq.type;
    bool same = true;
    for (const Block& b : m.blocks)
      for (const Tensor* t : b.linears()) same &= t->type == t0;
    if (same && !is_custom(t0) && file_type(t0) != 0) w.set("general.file_type", gguf::Value::of_u32(file_type(t0)));
    else w.remove("general.file_type");
  }
}

// Adds every tensor (converted to *type when given) under its GGUF name; `keep` holds the
// converted tensors and their side matrices, which must outlive w.write().
void add_tensors(gguf::Writer& w, const Model& m, const DType* type, std::vector<Tensor>& keep) {
  keep.reserve(4 + m.blocks.size() * 16);
  auto add = [&](const Tensor& t, const std::string& name) {
    if (t.empty()) return;
    keep.push_back(type ? convert_tensor(t, *type) : t);
    const Tensor& c = keep.back();
    w.add_tensor(name, c.type, c.ne, c.data, c.nbytes);
    if (c.outliers) gguf::add_csr_tensors(w, name, *c.outliers);  // `keep` holds it until write()
  };
  add(m.tok_embd, "token_embd.weight");
  add(m.out_norm, "output_norm.weight");
  if (m.output.data != m.tok_embd.data) add(m.output, "output.weight");
  for (size_t l = 0; l < m.blocks.size(); ++l) {
    const Block& b = m.blocks[l];
    const std::string p = cat("blk.", l, ".");
    add(b.attn_norm, p + "attn_norm.weight");
    add(b.wq, p + "attn_q.weight");
    add(b.wk, p + "attn_k.weight");
    add(b.wv, p + "attn_v.weight");
    add(b.bq, p + "attn_q.bias");
    add(b.bk, p + "attn_k.bias");
    add(b.bv, p + "attn_v.bias");
    add(b.q_norm, p + "attn_q_norm.weight");
    add(b.k_norm, p + "attn_k_norm.weight");
    add(b.wo, p + "attn_output.weight");
    add(b.bo, p + "attn_output.bias");
    add(b.attn_post_norm, p + "post_attention_norm.weight");
    add(b.ffn_norm, p + "ffn_norm.weight");
    add(b.w_gate, p + "ffn_gate.weight");
    add(b.w_up, p + "ffn_up.weight");
    add(b.w_down, p + "ffn_down.weight");
    add(b.b_down, p + "ffn_down.bias");
    add(b.ffn_post_norm, p + "post_ffw_norm.weight");
  }
}

void save_gguf_impl(const Model& m, const std::string& path, const DType* type,
                    const std::vector<std::pair<std::string, gguf::Value>>& extra) {
  gguf::Writer w = m.gguf ? gguf::writer_from(*m.gguf) : gguf::Writer();
  set_hparams(w, m);
  set_file_type(w, m, type);
  for (const auto& [k, v] : extra) w.set(k, v);
  w.set("general.quantization_version", gguf::Value::of_u32(2));
  std::vector<Tensor> keep;
  add_tensors(w, m, type, keep);
  w.write(path);
}

}  // namespace

}  // namespace slimlm
