// A model is data plus a family description: hyper-parameters, per-block weights of any
// storage type (mmapped when usable as is), and the tokenizer. Loaders fill it from GGUF,
// llama2.c .bin or a Hugging Face folder (model_io.cpp); forward.cpp runs it.
#pragma once
#include "core/dtype.h"
#include "core/tensor.h"
#include "io/tokenizer/tokenizer.h"
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace slimlm {

namespace gguf { class File; struct Value; }

enum class Activation { SiLU, GeLU };

struct HParams {
  std::string arch;             // "llama", "gemma3", "qwen2", ...
  int64_t n_vocab = 0, n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_ff = 0;
  int64_t n_ctx_train = 0;
  float norm_eps = 1e-5f;
  float rope_theta = 10000.f, rope_theta_swa = 10000.f, rope_scale = 1.f;  // scale: linear factor
  RopeType rope = RopeType::Norm;
  Activation act = Activation::SiLU;
  float attn_scale = 0;         // multiplies q·k; 0 means 1/sqrt(head_dim)
  bool embed_scale = false;     // multiply embeddings by sqrt(n_embd) (gemma)
  bool qk_norm = false, post_norms = false;
  int64_t sliding_window = 0;   // 0: none
  std::vector<uint8_t> swa_layer;  // per layer: 1 if sliding-window (local) attention
  // Per-layer shapes after structured pruning (empty: every layer has n_head / n_head_kv /
  // n_ff). When set, the scalars hold the largest value over the layers (buffer sizes).
  std::vector<int64_t> head_l, head_kv_l, ff_l;
  int64_t n_head_at(int64_t l) const { return head_l.empty() ? n_head : head_l[size_t(l)]; }
  int64_t n_head_kv_at(int64_t l) const { return head_kv_l.empty() ? n_head_kv : head_kv_l[size_t(l)]; }
  int64_t n_ff_at(int64_t l) const { return ff_l.empty() ? n_ff : ff_l[size_t(l)]; }
  bool uniform() const;         // every layer has the same head counts and FFN width
  // Sets per-layer shapes (one entry per layer); collapses to scalars when uniform.
  void set_layer_shapes(std::vector<int64_t> heads, std::vector<int64_t> heads_kv, std::vector<int64_t> ff);
};

struct Block {
  Tensor attn_norm, wq, wk, wv, wo, bq, bk, bv, bo;  // bo: output-projection bias (FLAP)
  Tensor q_norm, k_norm, attn_post_norm;
  Tensor ffn_norm, w_gate, w_up, w_down, b_down, ffn_post_norm;  // b_down: down bias (FLAP)
  // The seven matrix weights (q, k, v, o, gate, up, down), in that order.
  std::array<Tensor*, 7> linears() { return {&wq, &wk, &wv, &wo, &w_gate, &w_up, &w_down}; }
  std::array<const Tensor*, 7> linears() const { return {&wq, &wk, &wv, &wo, &w_gate, &w_up, &w_down}; }
};

struct Model {
  HParams hp;
  std::vector<Block> blocks;
  Tensor tok_embd, out_norm, output;  // output may alias tok_embd (tied)
  std::unique_ptr<Tokenizer> tok;     // null for llama2.c files (ids only)
  std::shared_ptr<gguf::File> gguf;   // source file when loaded from GGUF (metadata for convert)
  std::string path, format;           // format: "gguf", "llama2c", "hf"
  size_t weight_bytes() const;        // bytes of all weights as stored
  int64_t n_params() const;
};

// Detects the format (GGUF magic, HF folder with config.json, llama2.c header) and loads.
std::unique_ptr<Model> load_model(const std::string& path);
std::unique_ptr<Model> load_gguf(const std::string& path);
std::unique_ptr<Model> load_llama2c(const std::string& path);
std::unique_ptr<Model> load_hf(const std::string& dir);

// A matrix in `type` when its rows fit the type's blocks, otherwise f16 (llama.cpp's fallback
// for odd shapes); vectors (norms, biases) as f32. Returns `t` itself when nothing changes.
Tensor convert_tensor(const Tensor& t, DType type);
// Writes `m` as GGUF with every matrix weight converted to `type` (norms stay f32);
// keeps the source's tokenizer metadata when there is one.
void save_gguf(const Model& m, const std::string& path, DType type);
// Writes `m` with every tensor in its current storage type (e.g. after quantization), plus
// extra metadata keys (e.g. slimlm.quant.*).
void save_gguf_as_is(const Model& m, const std::string& path,
                     const std::vector<std::pair<std::string, gguf::Value>>& extra);

}  // namespace slimlm
