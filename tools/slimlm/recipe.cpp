// `slimlm recipe RECIPE.json MODEL -o OUT.gguf`: runs a JSON chain of steps (see
// pipeline/recipe.h for the format) and prints the report.
#include "common.h"
#include "pipeline/recipe.h"
#include <cstdio>
#include <filesystem>

namespace slimlm::cli {

namespace {
struct RecipeOptions {
  std::string recipe, model, out;
  bool json = false, dry_run = false;
};

void run_recipe(const RecipeOptions& o) {
  const pipeline::Recipe r = pipeline::load_recipe(o.recipe);
  const nlohmann::json report = pipeline::run_recipe(r, o.model, o.out, o.dry_run);
  if (o.dry_run) return;
  if (o.json) std::printf("%s\n", report.dump(2).c_str());
  else std::printf("recipe %s: %zu steps, wrote %s (%.1f MiB)\n", r.name.c_str(), r.steps.size(), o.out.c_str(),
                   double(std::filesystem::file_size(o.out)) / (1024.0 * 1024.0));
}
}  // namespace

void add_recipe(CLI::App* sub) {
  static RecipeOptions o;
  sub->footer("Recipe: {\"name\": \"...\", \"steps\": [{\"prune\": {\"method\": \"sparsegpt\", \"nm\": \"2:4\"}},\n"
              "                                   {\"quantize\": {\"method\": \"gptq\", \"type\": \"u4g128\"}}]}\n"
              "Each step's flags are the verb's flags without dashes (see slimlm quantize --help).\n"
              "Steps: prune, quantize, convert, train, distill; a distill step without \"teacher\" distils from MODEL.\n"
              "Examples:\n  slimlm recipe recipes/smollm2-default.json models/SmolLM2-135M-Instruct.Q4_1.gguf -o smol.gguf\n"
              "  slimlm recipe recipes/sparsegpt24-gptq4.json models/SmolLM2-135M-Instruct.Q4_1.gguf -o smol.24.w4.gguf --json\n"
              "  slimlm recipe recipes/smollm2-neurons40-kd-q4_0.json models/SmolLM2-135M-Instruct.Q4_1.gguf -o smol.n40.kd.q4_0.gguf");
  sub->add_option("recipe", o.recipe, "recipe file (JSON)")->required();
  sub->add_option("model", o.model, "input model file or folder")->required();
  sub->add_option("-o,--output", o.out, "output .gguf path")->required();
  sub->add_flag("--json", o.json, "print each step's JSON summary on stdout");
  sub->add_flag("--dry-run", o.dry_run, "print the steps as slimlm command lines, run nothing");
  sub->callback([] { run_recipe(o); });
}

}  // namespace slimlm::cli
