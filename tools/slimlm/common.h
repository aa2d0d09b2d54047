// Shared pieces of the slimlm CLI: verb registration, common options (threads, exact, KV type)
// and the compression verbs' flags, which come from the method registry.
#pragma once
#include "kernels/qdot.h"
#include "pipeline/jobs.h"
#include "pipeline/registry.h"
#include <CLI/CLI.hpp>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace slimlm::cli {

// Each verb's flags and examples, added to its (already named and described) subcommand.
void add_info(CLI::App* sub);
void add_generate(CLI::App* sub);
void add_eval(CLI::App* sub);
void add_bench(CLI::App* sub);
void add_convert(CLI::App* sub);
void add_quantize(CLI::App* sub);
void add_prune(CLI::App* sub);
void add_recipe(CLI::App* sub);
void add_train(CLI::App* sub);
void add_distill(CLI::App* sub);

// Adds --threads N (default: all cores) and applies it before the verb runs.
void add_threads(CLI::App* sub, int* threads);
void apply_threads(int threads);
// Adds --exact (quantized weights are dequantized and multiplied in f32 instead of the default
// 8-bit-activation integer kernels); the verb holds exact_scope(exact) while it runs (exact
// when --exact or SLIMLM_EXACT=1).
void add_exact(CLI::App* sub, bool* exact);
kernels::ExactScope exact_scope(bool exact);
// Adds --kv-type f32|f16|q8|q4 (storage of the KV cache; default f32).
void add_kv_type(CLI::App* sub, std::string* kv);
using pipeline::check_model_path;

// A registry verb (quantize, prune, convert, train, distill): MODEL, -o OUT (optional for train
// and distill), --json and one flag per registry parameter; runs the job and prints its summary
// (JSON with --json, else `print`).
using PrintSummary = std::function<void(const pipeline::Job& job, const nlohmann::json& summary)>;
void add_compress_verb(CLI::App* sub, pipeline::Verb v, const std::string& examples, PrintSummary print);

}  // namespace slimlm::cli
