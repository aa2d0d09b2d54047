// The public interface (include/slimlm/slimlm.h) over the library.
#include "slimlm/slimlm.h"
#include "core/error.h"
#include "eval/eval.h"
#include "model/forward.h"
#include "model/model.h"
#include "model/sampler.h"
#include <algorithm>
#include "pipeline/jobs.h"
#include "pipeline/recipe.h"

namespace slimlm::api {

struct Model::Impl {
  std::unique_ptr<slimlm::Model> m;
  pipeline::Compressed last;  // how to save: metadata / conversion of the last compression
};

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

Model load(const std::string& path) {
  pipeline::check_model_path(path);
  auto impl = std::make_unique<Model::Impl>();
  impl->m = load_model(path);
  return Model(std::move(impl));
}

ModelInfo info(const Model& model) {
  const slimlm::Model& m = *model.impl().m;
  return {m.hp.arch, m.hp.n_layer, m.hp.n_embd, m.hp.n_vocab, m.n_params(), double(m.weight_bytes()) / 1048576.0, m.tok != nullptr};
}

namespace {
const Tokenizer& tokenizer(const Model& model) {
  const slimlm::Model& m = *model.impl().m;
  if (!m.tok) fail(m.path, " has no tokenizer: use token ids");
  return *m.tok;
}
}  // namespace

std::vector<int32_t> tokenize(const Model& m, const std::string& text) { return tokenizer(m).encode(text, true, false); }

std::string detokenize(const Model& m, const std::vector<int32_t>& ids) { return tokenizer(m).decode(ids); }

EvalResult evaluate(const Model& m, const std::vector<int32_t>& ids, const EvalOptions& o, const Model* ref) {
  eval::PplOptions po;
  po.ctx = o.ctx;
  po.max_chunks = o.max_chunks;
  po.progress = false;
  const eval::PplResult r = eval::perplexity(*m.impl().m, ids, po, ref ? ref->impl().m.get() : nullptr);
  return {r.n_scored, r.ppl, r.ppl_err, r.has_ref, r.ref_ppl, r.kld_mean, r.top1_agree};
}

std::vector<int32_t> generate(const Model& model, const std::vector<int32_t>& prompt, const GenerateOptions& o) {
  const slimlm::Model& m = *model.impl().m;
  for (int32_t id : prompt)
    if (id < 0 || id >= m.hp.n_vocab) fail("prompt token id ", id, " is outside the vocabulary (", m.hp.n_vocab, ")");
  const int64_t ctx = o.ctx > 0 ? o.ctx : std::min<int64_t>(m.hp.n_ctx_train, 4096);
  if (prompt.empty() || int64_t(prompt.size()) >= ctx) fail("the prompt needs 1 to ", ctx - 1, " tokens, not ", prompt.size());
  Session s(m, ctx);
  SamplerParams sp;
  sp.temp = o.temp;
  sp.seed = o.seed;
  Sampler smp(sp);
  std::vector<int32_t> history = prompt, feed = prompt, out;
  std::vector<float> logits;
  for (int i = 0; i < o.n && s.pos() + int64_t(feed.size()) <= s.n_ctx(); ++i) {
    const int32_t id = decode_step(s, smp, feed, history, logits);
    if (id < 0) break;
    out.push_back(id);
  }
  return out;
}

std::vector<std::string> methods(const std::string& verb) {
  const pipeline::VerbInfo* v = pipeline::find_verb(verb);
  if (!v) fail("unknown verb '", verb, "' (", pipeline::verb_list(), ")");
  std::vector<std::string> out;
  for (const pipeline::MethodInfo* mi : pipeline::methods_of(v->verb)) out.push_back(mi->name);
  return out;
}

namespace {
std::string compress(Model& m, pipeline::Verb v, const std::string& method, pipeline::Params p) {
  p["method"] = method;
  if (!p.count("no-progress")) p["no-progress"] = "true";
  const pipeline::Job job = pipeline::make_job(v, p);
  pipeline::Compressed c = pipeline::run_job(*m.impl().m, job);
  pipeline::Compressed& last = m.impl().last;  // metadata accumulates; the last step decides conversion
  for (auto& kv : c.meta) {
    std::erase_if(last.meta, [&](const auto& old) { return old.first == kv.first; });
    last.meta.push_back(std::move(kv));
  }
  last.convert_to = c.convert_to;
  last.summary = c.summary;
  return c.summary.dump();
}
}  // namespace

std::string quantize(Model& m, const std::string& method, const Params& params) {
  return compress(m, pipeline::Verb::Quantize, method, params);
}

std::string prune(Model& m, const std::string& method, const Params& params) {
  return compress(m, pipeline::Verb::Prune, method, params);
}

void save(const Model& m, const std::string& path) {
  pipeline::check_output_folder(path);
  pipeline::save_compressed(*m.impl().m, path, m.impl().last);
}

std::string run_recipe(const std::string& recipe, const std::string& model_path, const std::string& out_path) {
  return pipeline::run_recipe(pipeline::load_recipe(recipe), model_path, out_path).dump();
}

}  // namespace slimlm::api
