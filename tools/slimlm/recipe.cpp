// `slimlm recipe RECIPE.json MODEL -o OUT.gguf`: runs a chain of compression steps (prune,
// quantize, convert), each step's output the next one's input, as the same `slimlm` binary
// with the step's flags. A recipe is JSON:
//
//   {"name": "sparsegpt-2of4+gptq-w4", "description": "...",
//    "steps": [{"prune":    {"method": "sparsegpt", "nm": "2:4"}},
//              {"quantize": {"method": "gptq", "type": "u4g128", "calib-samples": 64}}]}
//
// Each step is an object with one key, the verb, whose value maps flag names (without "--") to
// strings or numbers ("--flag value") or booleans (true: "--flag"; false: left out). Input and
// output paths are the recipe's business; the steps' flags are checked by the verbs themselves,
// but the recipe is checked whole (verbs, flag names, value types) before the first step runs.
// Intermediate files live next to OUT and are removed; OUT appears only when every step worked.
#include "common.h"
#include "core/error.h"
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>
#include <nlohmann/json.hpp>

namespace slimlm::cli {

namespace {
struct RecipeOptions {
  std::string recipe, model, out;
  bool json = false, dry_run = false;
};

struct Step {
  std::string verb;
  std::vector<std::string> flags;
};

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::vector<Step> parse_recipe(const std::string& path, std::string* name) {
  std::ifstream in(path);
  if (!in) fail(path, ": cannot read the recipe");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": not valid JSON (", e.what(), ")");
  }
  if (!j.is_object() || !j.contains("steps") || !j["steps"].is_array() || j["steps"].empty())
    fail(path, ": a recipe is an object with a non-empty \"steps\" array");
  *name = j.value("name", std::filesystem::path(path).stem().string());
  static const std::set<std::string> verbs = {"prune", "quantize", "convert"};
  static const std::set<std::string> reserved = {"o", "output", "model", "json", "help", "h"};
  std::vector<Step> steps;
  for (size_t i = 0; i < j["steps"].size(); ++i) {
    const auto& s = j["steps"][i];
    if (!s.is_object() || s.size() != 1) fail(path, ": step ", i + 1, " must be an object with one key, the verb");
    Step st;
    st.verb = s.begin().key();
    if (!verbs.count(st.verb)) fail(path, ": step ", i + 1, ": unknown verb '", st.verb, "' (prune, quantize, convert)");
    const auto& args = s.begin().value();
    if (!args.is_object()) fail(path, ": step ", i + 1, " (", st.verb, "): its flags must be an object");
    for (const auto& [k, v] : args.items()) {
      if (reserved.count(k)) fail(path, ": step ", i + 1, " (", st.verb, "): '", k, "' is set by the recipe runner");
      if (k.empty() || k[0] == '-') fail(path, ": step ", i + 1, ": flag names come without dashes, not '", k, "'");
      if (v.is_boolean()) {
        if (v.get<bool>()) st.flags.push_back("--" + k);
      } else if (v.is_string()) {
        st.flags.insert(st.flags.end(), {"--" + k, v.get<std::string>()});
      } else if (v.is_number()) {
        st.flags.insert(st.flags.end(), {"--" + k, v.dump()});
      } else {
        fail(path, ": step ", i + 1, " (", st.verb, "): flag '", k, "' must be a string, number or boolean");
      }
    }
    steps.push_back(std::move(st));
  }
  return steps;
}

std::string self_exe() {
  std::error_code ec;
  const auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) fail("cannot find the slimlm binary (/proc/self/exe)");
  return p.string();
}

// Runs one step; stdout is captured (the step's --json summary), stderr passes through.
int run_step(const std::string& cmd, std::string* out) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) fail("cannot start: ", cmd);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  const int st = ::pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void run_recipe(const RecipeOptions& o) {
  std::string name;
  const std::vector<Step> steps = parse_recipe(o.recipe, &name);
  check_model_path(o.model);
  check_output_folder(o.out);
  const std::string exe = self_exe();
  std::vector<std::string> temps;
  auto cleanup = [&] { for (const auto& t : temps) std::filesystem::remove(t); };
  nlohmann::json report = {{"recipe", name}, {"model", o.model}, {"output", o.out}, {"steps", nlohmann::json::array()}};
  std::string input = o.model;
  for (size_t i = 0; i < steps.size(); ++i) {
    const bool last = i + 1 == steps.size();
    const std::string output = last ? o.out : cat(o.out, ".step", i + 1, ".tmp.gguf");
    std::string cmd = shell_quote(exe) + " " + steps[i].verb + " " + shell_quote(input) + " -o " + shell_quote(output);
    for (const auto& f : steps[i].flags) cmd += " " + shell_quote(f);
    const bool wants_json = steps[i].verb != "convert";  // convert has no --json summary
    if (wants_json) cmd += " --json";
    std::fprintf(stderr, "recipe %s: step %zu/%zu: slimlm %s%s\n", name.c_str(), i + 1, steps.size(), steps[i].verb.c_str(),
                 [&] { std::string s; for (const auto& f : steps[i].flags) s += " " + f; return s; }().c_str());
    if (o.dry_run) { std::printf("%s\n", cmd.c_str()); input = output; continue; }
    if (!last) temps.push_back(output);
    std::string out;
    const int code = run_step(cmd, &out);
    if (code != 0) {  // the step printed its own one-line error
      cleanup();
      std::exit(code);
    }
    nlohmann::json sj = {{"verb", steps[i].verb}, {"flags", steps[i].flags}};
    if (wants_json) {
      try {
        sj["result"] = nlohmann::json::parse(out);
      } catch (const nlohmann::json::exception&) {
        sj["result"] = out;
      }
    }
    report["steps"].push_back(sj);
    if (input != o.model) std::filesystem::remove(input);  // the previous intermediate
    input = output;
  }
  cleanup();
  if (o.dry_run) return;
  if (o.json) std::printf("%s\n", report.dump(2).c_str());
  else std::printf("recipe %s: %zu steps, wrote %s (%.1f MiB)\n", name.c_str(), steps.size(), o.out.c_str(),
                   double(std::filesystem::file_size(o.out)) / (1024.0 * 1024.0));
}
}  // namespace

void add_recipe(CLI::App& app) {
  static RecipeOptions o;
  auto* sub = app.add_subcommand("recipe", "run a JSON recipe of compression steps (prune, quantize, convert) in order");
  sub->footer("Recipe: {\"name\": \"...\", \"steps\": [{\"prune\": {\"method\": \"sparsegpt\", \"nm\": \"2:4\"}},\n"
              "                                   {\"quantize\": {\"method\": \"gptq\", \"type\": \"u4g128\"}}]}\n"
              "Examples:\n  slimlm recipe recipes/smollm2-default.json models/SmolLM2-135M-Instruct.Q4_1.gguf -o smol.gguf\n"
              "  slimlm recipe recipes/sparsegpt24-gptq4.json models/SmolLM2-135M-Instruct.Q4_1.gguf -o smol.24.w4.gguf --json");
  sub->add_option("recipe", o.recipe, "recipe file (JSON)")->required();
  sub->add_option("model", o.model, "input model file or folder")->required();
  sub->add_option("-o,--output", o.out, "output .gguf path")->required();
  sub->add_flag("--json", o.json, "print each step's JSON summary on stdout");
  sub->add_flag("--dry-run", o.dry_run, "print the commands, run nothing");
  sub->callback([] { run_recipe(o); });
}

}  // namespace slimlm::cli
