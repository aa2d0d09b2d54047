#include "pipeline/jobs.h"
#include "core/error.h"
#include "eval/eval.h"
#include <filesystem>

namespace slimlm::pipeline {

namespace {
ConvertOptions convert_options(const Args& a) {
  ConvertOptions o;
  o.type_name = a.text("type");
  o.type = type_from_name(o.type_name);
  if (!traits(o.type).from_f32) fail("cannot write weights of type ", o.type_name, " (writable: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1)");
  const std::string sparse = a.text("sparse");
  if (!sparse.empty()) o.sparse = parse_sparse_mode(sparse);
  o.threads = a.integer("threads");
  return o;
}

Compressed convert_model(Model& m, const ConvertOptions& o) {
  const ThreadScope threads(o.threads);
  Compressed c;
  c.summary = {{"type", traits(o.type).name}};
  if (!o.sparse) {
    c.convert_to = o.type;
    return c;
  }
  const SparseStats st = sparsify_model(m, o.type, *o.sparse);
  c.summary["sparse"] = {{"nm", st.n_nm}, {"bitmap", st.n_bitmap}, {"dense", st.n_dense},
                         {"linear_bytes", st.linear_bytes}, {"linear_bytes_dense", st.linear_bytes_dense}};
  return c;
}
}  // namespace

Job make_job(Verb v, const Params& params) {
  const Args a(v, params);
  Job j;
  j.verb = v;
  switch (v) {
    case Verb::Quantize: j.quantize = quantize_options(a); break;
    case Verb::Prune: j.prune = prune_options(a); break;
    case Verb::Convert: j.convert = convert_options(a); break;
    case Verb::Train: case Verb::Distill: j.train = train_options(v, a); break;
  }
  return j;
}

Compressed run_job(Model& m, const Job& job) {
  switch (job.verb) {
    case Verb::Quantize: return quantize_model(m, job.quantize);
    case Verb::Prune: return prune_model(m, job.prune);
    case Verb::Convert: return convert_model(m, job.convert);
    case Verb::Train: case Verb::Distill: return train_model(m, job.train);
  }
  fail("internal: unknown verb");
}

nlohmann::json run_job_file(const Job& job, const std::string& model, const std::string& out) {
  check_model_path(model);
  if (out.empty() && !trains(job.verb)) fail(verb_info(job.verb).name, " needs an output file (-o)");
  check_output_folder(out);  // fail before the work when the output cannot be written
  if (job.verb == Verb::Quantize) pick_type(job.quantize);  // flag errors before loading
  if (trains(job.verb)) check_train_inputs(job.verb, job.train);
  auto m = load_model(model);
  const Compressed c = run_job(*m, job);
  nlohmann::json j = c.summary;
  j["model"] = model;
  j["output"] = out;
  if (!out.empty()) {
    save_compressed(*m, out, c);
    const auto bytes = std::filesystem::file_size(out);
    j["file_mb"] = double(bytes) / (1024.0 * 1024.0);
    j["bpw_file"] = 8.0 * double(bytes) / double(m->n_params());
  }
  j["peak_rss_mb"] = eval::peak_rss_mb();
  return j;
}

}  // namespace slimlm::pipeline
