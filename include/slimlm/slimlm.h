// slimlm as a library: load a model, evaluate it, generate text, compress it (quantize, prune,
// recipes) and save it. Link the `slimlm` CMake target (or an installed libslimlm.a with its
// dependencies) and include <slimlm/slimlm.h>; nothing else of the source tree is needed.
// Every function throws std::runtime_error with a one-line message on bad input.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace slimlm::api {

// Method parameters by flag name without dashes, as `slimlm quantize --help` lists them:
// {{"bits", "4"}, {"act-order", "true"}, {"calib", "text.txt"}}.
using Params = std::map<std::string, std::string>;

// A model in memory (weights, tokenizer, and what compression did to it). Move-only.
class Model {
 public:
  struct Impl;
  explicit Model(std::unique_ptr<Impl> impl);
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();
  Impl& impl() const { return *impl_; }  // the library's side (opaque here)

 private:
  std::unique_ptr<Impl> impl_;
};

// Loads a GGUF file, a llama2.c .bin file or a Hugging Face folder.
Model load(const std::string& path);

// Architecture and size of a model.
struct ModelInfo {
  std::string arch;
  int64_t n_layer = 0, n_embd = 0, n_vocab = 0, n_params = 0;
  double weight_mib = 0;
  bool has_tokenizer = false;
};
ModelInfo info(const Model& m);

// Text to token ids (with BOS when the model adds one); throws for models without a tokenizer.
std::vector<int32_t> tokenize(const Model& m, const std::string& text);
// Token ids to text; throws for models without a tokenizer.
std::string detokenize(const Model& m, const std::vector<int32_t>& ids);

struct EvalOptions {
  int64_t ctx = 512;         // window size in tokens
  int64_t max_chunks = 0;    // evaluate only the first N windows (0: all)
};
struct EvalResult {
  int64_t n_scored = 0;      // tokens scored
  double ppl = 0, ppl_err = 0;
  bool has_ref = false;      // the rest is filled when a reference was given
  double ref_ppl = 0, kld_mean = 0, top1_agree = 0;
};
// Perplexity of `ids` (llama.cpp's protocol), and KL divergence / top-1 agreement against `ref`.
EvalResult evaluate(const Model& m, const std::vector<int32_t>& ids, const EvalOptions& o = {}, const Model* ref = nullptr);

struct GenerateOptions {
  int n = 64;                // tokens to generate at most (stops early at end of generation)
  float temp = 0;            // 0: greedy
  uint64_t seed = 42;
  int64_t ctx = 0;           // context size (0: min(training context, 4096))
};
// Continues `prompt` (token ids) and returns the generated ids.
std::vector<int32_t> generate(const Model& m, const std::vector<int32_t>& prompt, const GenerateOptions& o = {});

// The methods of a compression verb ("quantize" or "prune"), e.g. {"rtn", "gptq", ...}.
std::vector<std::string> methods(const std::string& verb);
// Quantizes the model's block linears in place with `method`; returns the JSON summary.
std::string quantize(Model& m, const std::string& method, const Params& params = {});
// Prunes the model in place (structured methods make it smaller); returns the JSON summary.
std::string prune(Model& m, const std::string& method, const Params& params = {});
// Writes the model as GGUF (with what quantize / prune recorded).
void save(const Model& m, const std::string& path);
// Runs a recipe file from one model file to another; returns the JSON report.
std::string run_recipe(const std::string& recipe, const std::string& model_path, const std::string& out_path);

}  // namespace slimlm::api
