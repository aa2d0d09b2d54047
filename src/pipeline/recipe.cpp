#include "pipeline/recipe.h"
#include "core/error.h"
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

namespace slimlm::pipeline {

namespace {
std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

RecipeStep parse_step(const std::string& path, size_t i, const nlohmann::json& s) {
  static const std::set<std::string> reserved = {"o", "output", "model", "json", "help", "h"};
  const std::string at = cat(path, ": step ", i + 1);
  if (!s.is_object() || s.size() != 1) fail(at, " must be an object with one key, the verb");
  const VerbInfo* vi = find_verb(s.begin().key());
  if (!vi) fail(at, ": unknown verb '", s.begin().key(), "' (", verb_list(), ")");
  RecipeStep st;
  st.verb = vi->verb;
  const auto& args = s.begin().value();
  if (!args.is_object()) fail(at, " (", vi->name, "): its flags must be an object");
  for (const auto& [k, v] : args.items()) {
    if (reserved.count(k)) fail(at, " (", vi->name, "): '", k, "' is set by the recipe runner");
    if (k.empty() || k[0] == '-') fail(at, ": flag names come without dashes, not '", k, "'");
    if (v.is_boolean()) {
      if (v.get<bool>()) { st.flags.push_back("--" + k); st.params[k] = "true"; }
    } else if (v.is_string() || v.is_number()) {
      st.params[k] = v.is_string() ? v.get<std::string>() : v.dump();
      st.flags.insert(st.flags.end(), {"--" + k, st.params[k]});
    } else {
      fail(at, " (", vi->name, "): flag '", k, "' must be a string, number or boolean");
    }
  }
  try {
    st.job = make_job(st.verb, st.params);
  } catch (const Error& e) {
    fail(at, " (", vi->name, "): ", e.what());
  }
  return st;
}

// The step as it runs from `model`: a distill step without a teacher distils from the recipe's
// source model (its flags say so).
RecipeStep bind_step(const RecipeStep& s, const std::string& model) {
  RecipeStep b = s;
  if (b.verb == Verb::Distill && b.job.train.teacher.empty()) {
    b.job.train.teacher = model;
    b.params["teacher"] = model;
    b.flags.insert(b.flags.end(), {"--teacher", model});
  }
  return b;
}

std::string command_line(const RecipeStep& s, const std::string& in, const std::string& out) {
  std::string cmd = cat("slimlm ", verb_info(s.verb).name, " ", shell_quote(in), " -o ", shell_quote(out));
  for (const auto& f : s.flags) cmd += " " + shell_quote(f);
  return cmd;
}
}  // namespace

Recipe load_recipe(const std::string& path) {
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
  Recipe r;
  r.name = j.value("name", std::filesystem::path(path).stem().string());
  for (size_t i = 0; i < j["steps"].size(); ++i) r.steps.push_back(parse_step(path, i, j["steps"][i]));
  return r;
}

nlohmann::json run_recipe(const Recipe& r, const std::string& model, const std::string& out, bool dry_run) {
  check_model_path(model);
  check_output_folder(out);
  std::vector<std::string> temps;
  nlohmann::json report = {{"recipe", r.name}, {"model", model}, {"output", out}, {"steps", nlohmann::json::array()}};
  std::string input = model;
  try {
    for (size_t i = 0; i < r.steps.size(); ++i) {
      const RecipeStep s = bind_step(r.steps[i], model);
      const std::string output = i + 1 == r.steps.size() ? out : cat(out, ".step", i + 1, ".tmp.gguf");
      std::string flags;
      for (const auto& f : s.flags) flags += " " + f;
      std::fprintf(stderr, "recipe %s: step %zu/%zu: slimlm %s%s\n", r.name.c_str(), i + 1, r.steps.size(),
                   verb_info(s.verb).name, flags.c_str());
      if (dry_run) { std::printf("%s\n", command_line(s, input, output).c_str()); input = output; continue; }
      if (output != out) temps.push_back(output);
      nlohmann::json sj = {{"verb", verb_info(s.verb).name}, {"flags", s.flags}};
      sj["result"] = run_job_file(s.job, input, output);
      report["steps"].push_back(sj);
      if (input != model) std::filesystem::remove(input);  // the previous intermediate
      input = output;
    }
  } catch (...) {
    for (const auto& t : temps) std::filesystem::remove(t);
    throw;
  }
  for (const auto& t : temps) std::filesystem::remove(t);
  return report;
}

}  // namespace slimlm::pipeline
