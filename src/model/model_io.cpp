#include "core/dtype_custom.h"
#include "core/dtype_sparse.h"
#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_csr.h"
#include "model/arch.h"
#include "model/model.h"
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace slimlm {

size_t Model::weight_bytes() const {
  size_t n = tok_embd.nbytes + out_norm.nbytes + (output.data == tok_embd.data ? 0 : output.nbytes);
  for (const Block& b : blocks)
    for (const Tensor* t : {&b.attn_norm, &b.wq, &b.wk, &b.wv, &b.wo, &b.bq, &b.bk, &b.bv, &b.bo, &b.q_norm, &b.k_norm,
                            &b.attn_post_norm, &b.ffn_norm, &b.w_gate, &b.w_up, &b.w_down, &b.b_down, &b.ffn_post_norm})
      n += t->nbytes;
  return n;
}

int64_t Model::n_params() const {
  int64_t n = tok_embd.nelements() + out_norm.nelements() + (output.data == tok_embd.data ? 0 : output.nelements());
  for (const Block& b : blocks)
    for (const Tensor* t : {&b.attn_norm, &b.wq, &b.wk, &b.wv, &b.wo, &b.bq, &b.bk, &b.bv, &b.bo, &b.q_norm, &b.k_norm,
                            &b.attn_post_norm, &b.ffn_norm, &b.w_gate, &b.w_up, &b.w_down, &b.b_down, &b.ffn_post_norm})
      n += t->empty() ? 0 : t->nelements();
  return n;
}

bool HParams::uniform() const {
  for (int64_t l = 0; l < n_layer; ++l)
    if (n_head_at(l) != n_head || n_head_kv_at(l) != n_head_kv || n_ff_at(l) != n_ff) return false;
  return true;
}

void HParams::set_layer_shapes(std::vector<int64_t> heads, std::vector<int64_t> heads_kv, std::vector<int64_t> ff) {
  if (int64_t(heads.size()) != n_layer || int64_t(heads_kv.size()) != n_layer || int64_t(ff.size()) != n_layer)
    fail("per-layer shapes need ", n_layer, " entries");
  head_l = std::move(heads); head_kv_l = std::move(heads_kv); ff_l = std::move(ff);
  if (n_layer == 0) return;
  n_head = *std::max_element(head_l.begin(), head_l.end());
  n_head_kv = *std::max_element(head_kv_l.begin(), head_kv_l.end());
  n_ff = *std::max_element(ff_l.begin(), ff_l.end());
  if (uniform()) { head_l.clear(); head_kv_l.clear(); ff_l.clear(); }
}

namespace {

// Vectors (norm weights, biases) are converted to f32 once at load: they are tiny.
Tensor vector_f32(const Tensor& t) {
  if (t.empty() || t.type == DType::F32 || t.ne.size() != 1) return t;
  std::vector<float> v = t.to_f32();
  return Tensor::from_f32(t.name, t.ne, v.data());
}

Tensor view(const std::shared_ptr<gguf::File>& f, const std::string& name, bool required) {
  const gguf::TensorInfo* ti = f->tensor(name);
  if (!ti) {
    if (required) fail(f->path(), ": missing tensor '", name, "'");
    return {};
  }
  Tensor t;
  t.name = name;
  t.type = ti->type;
  t.ne = ti->ne;
  t.data = ti->data;
  t.nbytes = ti->nbytes;
  t.keep = f;
  if (t.ne.size() == 2)
    if (auto s = gguf::read_csr_tensors(*f, name, t.rows(), t.cols())) t.outliers = std::make_shared<const CsrF16>(std::move(*s));
  return vector_f32(t);
}

}  // namespace

std::unique_ptr<Model> load_gguf(const std::string& path) {
  std::shared_ptr<gguf::File> f = gguf::File::open(path);
  auto m = std::make_unique<Model>();
  m->path = path;
  m->format = "gguf";
  m->gguf = f;
  read_hparams(*f, m->hp);
  const ArchInfo& a = arch_info(m->hp.arch);
  m->tok_embd = view(f, "token_embd.weight", true);
  m->hp.n_vocab = m->tok_embd.ne.size() == 2 ? m->tok_embd.ne[1] : 0;
  m->out_norm = view(f, "output_norm.weight", true);
  m->output = view(f, "output.weight", false);
  if (m->output.empty()) m->output = m->tok_embd;
  for (int64_t l = 0; l < m->hp.n_layer; ++l) {
    const std::string p = cat("blk.", l, ".");
    Block b;
    b.attn_norm = view(f, p + "attn_norm.weight", true);
    b.wq = view(f, p + "attn_q.weight", true);
    b.wk = view(f, p + "attn_k.weight", true);
    b.wv = view(f, p + "attn_v.weight", true);
    b.wo = view(f, p + "attn_output.weight", true);
    b.bo = view(f, p + "attn_output.bias", false);
    if (a.qkv_bias) {
      b.bq = view(f, p + "attn_q.bias", true);
      b.bk = view(f, p + "attn_k.bias", true);
      b.bv = view(f, p + "attn_v.bias", true);
    }
    b.q_norm = view(f, p + "attn_q_norm.weight", a.qk_norm);
    b.k_norm = view(f, p + "attn_k_norm.weight", a.qk_norm);
    b.attn_post_norm = view(f, p + "post_attention_norm.weight", a.post_norms);
    b.ffn_norm = view(f, p + "ffn_norm.weight", true);
    b.w_gate = view(f, p + "ffn_gate.weight", true);
    b.w_up = view(f, p + "ffn_up.weight", true);
    b.w_down = view(f, p + "ffn_down.weight", true);
    b.b_down = view(f, p + "ffn_down.bias", false);
    b.ffn_post_norm = view(f, p + "post_ffw_norm.weight", a.post_norms);
    m->blocks.push_back(std::move(b));
  }
  validate_shapes(*m);
  if (f->find("tokenizer.ggml.model")) {
    m->tok = Tokenizer::from_gguf(*f);
    if (m->tok->n_vocab() != m->hp.n_vocab)
      fail(path, ": tokenizer has ", m->tok->n_vocab(), " tokens but the embedding has ", m->hp.n_vocab, " rows");
  }
  return m;
}

std::unique_ptr<Model> load_llama2c(const std::string& path) {
  auto map = std::make_shared<MappedFile>(path);
  if (map->size() < 28) fail(path, ": too small for a llama2.c checkpoint");
  int32_t h[7];
  std::memcpy(h, map->data(), sizeof(h));
  const int64_t dim = h[0], hidden = h[1], n_layer = h[2], n_head = h[3], n_kv = h[4], seq = h[6];
  const bool shared = h[5] > 0;
  const int64_t vocab = std::abs(int64_t(h[5]));
  if (dim <= 0 || hidden <= 0 || n_layer <= 0 || n_head <= 0 || n_kv <= 0 || vocab <= 0 || seq <= 0 ||
      dim > 65536 || hidden > 1 << 20 || n_layer > 1024 || vocab > 1 << 24 || seq > 1 << 24 ||
      dim % n_head != 0 || n_head % n_kv != 0 || (dim / n_head) % 2 != 0)
    fail(path, ": not a llama2.c checkpoint (impossible header ", dim, " ", hidden, " ", n_layer, " ", n_head,
         " ", n_kv, " ", h[5], " ", seq, ")");
  const int64_t hd = dim / n_head, kv = n_kv * hd;
  const int64_t floats = vocab * dim + n_layer * (2 * dim + dim * dim * 2 + dim * kv * 2 + 3 * dim * hidden) + dim +
                         seq * hd + (shared ? 0 : vocab * dim);
  if (map->size() != 28 + size_t(floats) * 4)
    fail(path, ": size ", map->size(), " does not match the llama2.c header (expected ", 28 + floats * 4, " bytes)");
  auto m = std::make_unique<Model>();
  m->path = path;
  m->format = "llama2c";
  HParams& hp = m->hp;
  hp.arch = "llama";
  hp.n_vocab = vocab; hp.n_embd = dim; hp.n_layer = n_layer; hp.n_head = n_head; hp.n_head_kv = n_kv;
  hp.head_dim = hd; hp.n_ff = hidden; hp.n_ctx_train = seq;
  hp.norm_eps = 1e-5f; hp.rope_theta = 10000.f; hp.rope = RopeType::Norm; hp.act = Activation::SiLU;
  const uint8_t* p = map->data() + 28;
  auto take = [&](const std::string& name, std::vector<int64_t> ne) {
    Tensor t;
    t.name = name; t.type = DType::F32; t.ne = std::move(ne);
    t.data = p; t.nbytes = size_t(t.nelements()) * 4; t.keep = map;
    p += t.nbytes;
    return t;
  };
  m->tok_embd = take("token_embd.weight", {dim, vocab});
  m->blocks.resize(size_t(n_layer));
  // llama2.c stores each kind of weight for all layers together.
  auto per_layer = [&](const char* n, std::vector<int64_t> ne, Tensor Block::*field) {
    for (int64_t l = 0; l < n_layer; ++l) m->blocks[size_t(l)].*field = take(cat("blk.", l, ".", n, ".weight"), ne);
  };
  per_layer("attn_norm", {dim}, &Block::attn_norm);
  per_layer("attn_q", {dim, dim}, &Block::wq);
  per_layer("attn_k", {dim, kv}, &Block::wk);
  per_layer("attn_v", {dim, kv}, &Block::wv);
  per_layer("attn_output", {dim, dim}, &Block::wo);
  per_layer("ffn_norm", {dim}, &Block::ffn_norm);
  per_layer("ffn_gate", {dim, hidden}, &Block::w_gate);
  per_layer("ffn_down", {hidden, dim}, &Block::w_down);
  per_layer("ffn_up", {dim, hidden}, &Block::w_up);
  m->out_norm = take("output_norm.weight", {dim});
  p += size_t(seq * hd) * 4;  // freq_cis_real and freq_cis_imag (unused)
  m->output = shared ? m->tok_embd : take("output.weight", {dim, vocab});
  validate_shapes(*m);
  return m;
}

std::unique_ptr<Model> load_model(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) fail(path, ": no such file or directory");
  if (fs::is_directory(path, ec)) {
    if (!fs::exists(fs::path(path) / "config.json")) fail(path, ": directory has no config.json (not a Hugging Face model folder)");
    return load_hf(path);
  }
  char magic[4] = {};
  std::ifstream in(path, std::ios::binary);
  in.read(magic, 4);
  if (in.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0) return load_gguf(path);
  if (path.size() >= 4 && path.substr(path.size() - 4) == ".bin") return load_llama2c(path);
  fail(path, ": unknown model format (expected GGUF, a llama2.c .bin or a Hugging Face folder)");
}

}  // namespace slimlm
