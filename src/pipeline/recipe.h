// Recipes: a chain of compression steps (prune, quantize, convert), each step's output the next
// one's input. A recipe is JSON:
//
//   {"name": "sparsegpt-2of4+gptq-w4", "description": "...",
//    "steps": [{"prune":    {"method": "sparsegpt", "nm": "2:4"}},
//              {"quantize": {"method": "gptq", "type": "u4g128", "calib-samples": 64}}]}
//
// Each step is an object with one key, the verb, whose value maps flag names (without "--") to
// strings or numbers ("--flag value") or booleans (true: "--flag"; false: left out). Input and
// output paths are the runner's business. The whole recipe is checked against the registry
// (verbs, flag names, values) before the first step runs.
#pragma once
#include "pipeline/jobs.h"
#include "pipeline/registry.h"
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace slimlm::pipeline {

struct RecipeStep {
  Verb verb = Verb::Quantize;
  Params params;
  std::vector<std::string> flags;  // as a command line would give them ("--method", "gptq", "--act-order")
  Job job;
};
struct Recipe {
  std::string name;
  std::vector<RecipeStep> steps;
};
// Reads and checks a recipe file (one-line Error naming the file and step otherwise).
Recipe load_recipe(const std::string& path);

// Runs the steps from `model` to `out`: intermediate files live next to `out` and are removed;
// `out` appears only when every step worked. Reports each step on stderr; returns
// {"recipe", "model", "output", "steps": [{"verb", "flags", "result"}]}. dry_run: reports the
// steps as `slimlm` command lines on stdout and runs nothing.
nlohmann::json run_recipe(const Recipe& r, const std::string& model, const std::string& out, bool dry_run = false);

}  // namespace slimlm::pipeline
