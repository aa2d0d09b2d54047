// `slimlm prune MODEL -o OUT.gguf --method M --sparsity S ...`: flags and summary of the prune
// verb (the work is pipeline::prune_model; methods and flags come from the registry).
#include "common.h"
#include <cstdio>

namespace slimlm::cli {

namespace {
std::string str(const nlohmann::json& j, const char* k) { return j[k].get<std::string>(); }
double num(const nlohmann::json& j, const char* k) { return j[k].get<double>(); }

void print_unstructured(const nlohmann::json& j) {
  const std::string nm = str(j, "nm");
  std::printf("pruned %s -> %s\n  method %s%s%s, achieved sparsity %.4f of the block linears (stored as %s)\n"
              "  %.1f s, peak RSS %.0f MiB\n",
              str(j, "model").c_str(), str(j, "output").c_str(), str(j, "method").c_str(), nm.empty() ? "" : (" " + nm).c_str(),
              j["owl"].get<bool>() ? " + OWL" : "", num(j, "achieved_sparsity"), str(j, "type").c_str(), num(j, "seconds"),
              num(j, "peak_rss_mb"));
}

void print_structured(const nlohmann::json& j) {
  std::printf("pruned %s -> %s\n  method %s: %.1f%% of block-linear parameters removed (asked %.1f%%), %lld -> %lld layers, "
              "%.1fM -> %.1fM parameters, %s shapes, file %.1f MiB, %.1f s\n",
              str(j, "model").c_str(), str(j, "output").c_str(), str(j, "method").c_str(), 100.0 * num(j, "achieved"),
              100.0 * num(j, "sparsity"), j["n_layer_before"].get<long long>(), j["n_layer"].get<long long>(),
              num(j, "params_before") / 1e6, num(j, "params_after") / 1e6, j["uniform_shapes"].get<bool>() ? "uniform" : "per-layer",
              num(j, "file_mb"), num(j, "seconds"));
}
}  // namespace

void add_prune(CLI::App* sub) {
  add_compress_verb(sub, pipeline::Verb::Prune,
      "  slimlm prune models/SmolLM2-135M-Instruct.Q4_1.gguf -o smol.wanda50.gguf --method wanda --sparsity 0.5\n"
      "  slimlm prune models/SmolLM2-135M-Instruct.Q4_1.gguf -o smol.sgpt24.gguf --method sparsegpt --nm 2:4\n"
      "  slimlm prune models/SmolLM2-135M-Instruct.Q4_1.gguf -o smol.owl70.gguf --method wanda --sparsity 0.7 --owl\n"
      "  slimlm prune models/SmolLM2-135M-Instruct.Q4_1.gguf -o smol.flap40.gguf --method flap --sparsity 0.4",
      [](const pipeline::Job& job, const nlohmann::json& j) {
        if (job.prune.method->family == pipeline::Family::PruneStructured) print_structured(j);
        else print_unstructured(j);
      });
}

}  // namespace slimlm::cli
