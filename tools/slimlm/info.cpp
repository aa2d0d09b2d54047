// `slimlm info MODEL`: architecture, sizes, tensor types and metadata of a model file.
#include "common.h"
#include "core/error.h"
#include "io/gguf.h"
#include "model/model.h"
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

namespace slimlm::cli {

void add_info(CLI::App* sub) {
  sub->footer("Example: slimlm info models/SmolLM2-135M-Instruct.Q4_1.gguf --json");
  static std::string path;
  static bool json = false, all_meta = false;
  sub->add_option("model", path, "model file (GGUF, llama2.c .bin) or Hugging Face folder")->required();
  sub->add_flag("--json", json, "machine-readable output on stdout");
  sub->add_flag("--meta", all_meta, "print every metadata key (GGUF)");
  sub->callback([] {
    check_model_path(path);
    auto m = load_model(path);
    const HParams& hp = m->hp;
    std::map<std::string, int64_t> types;
    for (const Block& b : m->blocks)
      for (const Tensor* t : b.linears()) types[type_name(t->type)] += t->nelements();
    const double bpw = 8.0 * double(m->weight_bytes()) / double(m->n_params());
    nlohmann::json j = {{"path", path}, {"format", m->format}, {"arch", hp.arch}, {"n_vocab", hp.n_vocab},
                        {"n_embd", hp.n_embd}, {"n_layer", hp.n_layer}, {"n_head", hp.n_head},
                        {"n_head_kv", hp.n_head_kv}, {"head_dim", hp.head_dim}, {"n_ff", hp.n_ff},
                        {"n_ctx_train", hp.n_ctx_train}, {"rope_theta", hp.rope_theta},
                        {"n_params", m->n_params()}, {"weight_bytes", m->weight_bytes()}, {"bits_per_weight", bpw},
                        {"block_weight_types", types}, {"tokenizer", m->tok != nullptr},
                        {"tied_output", m->output.data == m->tok_embd.data}};
    if (!hp.uniform()) {  // structurally pruned: per-layer shapes
      std::vector<int64_t> h, hk, ff;
      for (int64_t l = 0; l < hp.n_layer; ++l) { h.push_back(hp.n_head_at(l)); hk.push_back(hp.n_head_kv_at(l)); ff.push_back(hp.n_ff_at(l)); }
      j["n_head_per_layer"] = h; j["n_head_kv_per_layer"] = hk; j["n_ff_per_layer"] = ff;
    }
    if (json) { std::printf("%s\n", j.dump(2).c_str()); return; }
    std::printf("%s (%s): %s, %lld layers, embd %lld, heads %lld/%lld (dim %lld), ff %lld, vocab %lld\n",
                path.c_str(), m->format.c_str(), hp.arch.c_str(), (long long)hp.n_layer, (long long)hp.n_embd,
                (long long)hp.n_head, (long long)hp.n_head_kv, (long long)hp.head_dim, (long long)hp.n_ff,
                (long long)hp.n_vocab);
    if (!hp.uniform()) std::printf("per-layer shapes (structured pruning): heads, KV heads and ff are maxima over layers\n");
    std::printf("params %.1fM, weights %.1f MiB, %.2f bits/weight, tied output: %s, tokenizer: %s\n",
                double(m->n_params()) / 1e6, double(m->weight_bytes()) / 1048576.0, bpw,
                m->output.data == m->tok_embd.data ? "yes" : "no", m->tok ? "yes" : "no (token ids only)");
    for (const auto& [t, n] : types) std::printf("  block weights %-5s %.1fM\n", t.c_str(), double(n) / 1e6);
    if (all_meta && m->gguf)
      for (const auto& [k, v] : m->gguf->kv()) std::printf("  %s = %s\n", k.c_str(), v.to_string().c_str());
  });
}

}  // namespace slimlm::cli
