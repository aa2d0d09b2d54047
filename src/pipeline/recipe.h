// Recipes: a chain of steps (prune, quantize, convert, train, distill), each step's output the
// next one's input. A recipe is JSON:
//
//   {"name": "neurons40+kd+q4_0", "description": "...",
//    "steps": [{"prune":    {"method": "neurons", "sparsity": 0.4}},
//              {"distill":  {"steps": 100, "kd": "fkl", "lr": 1e-4}},
//              {"quantize": {"method": "awq+gptq", "type": "q4_0"}}]}
//
// Each step is an object with one key, the verb, whose value maps flag names (without "--") to
// strings or numbers ("--flag value") or booleans (true: "--flag"; false: left out). Input and
// output paths are the runner's business. The whole recipe is checked against the registry
// (verbs, flag names, values, the files flags name) before the first step runs. A distill step
// without "teacher" distils from the recipe's source model, the file the recipe started from.
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
// {"recipe", "model", "output", "steps": [{"verb", "flags", "result"}]} (a train or distill
// step's result is its training summary: steps, tokens, seconds, loss_first / loss_last, log,
// held-out losses, teacher). dry_run: reports the
// steps as `slimlm` command lines on stdout and runs nothing.
nlohmann::json run_recipe(const Recipe& r, const std::string& model, const std::string& out, bool dry_run = false);

}  // namespace slimlm::pipeline
