// The registry verbs' shared command line: flags from the registry, then one job.
#include "common.h"
#include <cstdio>
#include <memory>
#include <vector>

namespace slimlm::cli {

namespace {
struct CompressFlags {
  std::string model, out;
  bool json = false;
  std::map<std::string, std::string> values;                        // registry parameter -> text
  struct Bound { std::string name; CLI::Option* opt; bool flag; };
  std::vector<Bound> options;                                       // registry parameter -> its flag
  pipeline::Params params() const {
    pipeline::Params p;
    for (const Bound& b : options)
      if (b.opt->count() > 0) p[b.name] = b.flag ? "true" : values.at(b.name);
    return p;
  }
};
const char* type_name(pipeline::ParamType t) {
  switch (t) {
    case pipeline::ParamType::Int: return "INT";
    case pipeline::ParamType::Float: return "FLOAT";
    case pipeline::ParamType::Choice: return "CHOICE";
    case pipeline::ParamType::Method: return "METHOD";
    default: return "TEXT";
  }
}
}  // namespace

void add_compress_verb(CLI::App* sub, pipeline::Verb v, const std::string& examples, PrintSummary print) {
  const pipeline::VerbInfo& vi = pipeline::verb_info(v);
  auto f = std::make_shared<CompressFlags>();
  sub->footer("Examples:\n" + examples);
  sub->add_option("model", f->model, "input model file or folder")->required();
  CLI::Option* out = sub->add_option("-o,--output", f->out, "output .gguf path");
  if (!pipeline::trains(v)) out->required();
  for (const pipeline::ParamInfo& p : vi.params) {
    const std::string flag = std::string(p.name) == "threads" ? "-t,--threads" : std::string("--") + p.name;
    const std::string help = pipeline::param_help(v, p);
    const bool is_flag = p.type == pipeline::ParamType::Flag;
    CLI::Option* opt = is_flag ? sub->add_flag(flag, help) : sub->add_option(flag, f->values[p.name], help);
    if (!is_flag) opt->type_name(type_name(p.type));
    f->options.push_back({p.name, opt, is_flag});
  }
  sub->add_flag("--json", f->json, "print a JSON summary on stdout");
  sub->callback([f, v, print] {
    const pipeline::Job job = pipeline::make_job(v, f->params());
    const nlohmann::json j = pipeline::run_job_file(job, f->model, f->out);
    if (f->json) std::printf("%s\n", j.dump(2).c_str());
    else print(job, j);
  });
}

}  // namespace slimlm::cli
