// slimlm: compress LLMs and run them fast. `slimlm <verb> MODEL [options]`; see --help.
#include "common.h"
#include "core/error.h"
#include "kernels/qdot.h"
#include <cstdio>
#include <omp.h>

namespace slimlm::cli {

void add_threads(CLI::App* sub, int* threads) {
  sub->add_option("-t,--threads", *threads, "worker threads (default: all cores)")->check(CLI::Range(1, 1024));
}

void apply_threads(int threads) {
  if (threads > 0) omp_set_num_threads(threads);
}

void add_exact(CLI::App* sub, bool* exact) {
  sub->add_flag("--exact", *exact,
                "dequantize quantized weights and multiply in f32 (default: 8-bit activations and integer dot products, "
                "as llama.cpp; also SLIMLM_EXACT=1)");
}

kernels::ExactScope exact_scope(bool exact) { return kernels::ExactScope(exact || kernels::exact()); }

void add_kv_type(CLI::App* sub, std::string* kv) {
  sub->add_option("--kv-type", *kv, "KV-cache storage: f32, f16, q8 (int8 per head per token) or q4 (int4)")
      ->check(CLI::IsMember({"f32", "f16", "q8", "q4"}));
}

}  // namespace slimlm::cli

namespace {
namespace cli = slimlm::cli;
// Every verb, in the order --help lists them: name, one-line help (registry verbs: the
// registry's), and the function that adds its flags.
struct VerbEntry {
  const char* name;
  const char* help;
  void (*add)(CLI::App*);
};
constexpr VerbEntry kVerbs[] = {
    {"info", "show a model's architecture, size, tensor types and metadata", cli::add_info},
    {"generate", "generate text (streaming) from a prompt, a chat message or token ids", cli::add_generate},
    {"eval", "perplexity, KL divergence and top-1 agreement vs a reference, per-token scores", cli::add_eval},
    {"bench", "prompt processing (pp) and generation (tg) tokens/s, peak memory", cli::add_bench},
    {"convert", nullptr, cli::add_convert},
    {"quantize", nullptr, cli::add_quantize},
    {"prune", nullptr, cli::add_prune},
    {"recipe", "run a JSON recipe of steps (prune, quantize, convert, train, distill) in order", cli::add_recipe},
    {"train", nullptr, cli::add_train},
    {"distill", nullptr, cli::add_distill},
};

// Parses and runs; errors become one line on stderr (2: bad command line, 1: the work failed).
int run(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "slimlm: error: %s (see slimlm --help)\n", e.what());
    return 2;
  } catch (const slimlm::Error& e) {
    std::fprintf(stderr, "slimlm: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "slimlm: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slimlm: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"slimlm: compress large language models and run them fast"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "slimlm 0.1.0");
  std::string names;
  for (const VerbEntry& v : kVerbs) {
    v.add(app.add_subcommand(v.name, v.help ? v.help : slimlm::pipeline::find_verb(v.name)->help));
    if (!names.empty()) names += ", ";
    names += v.name;
  }
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    for (const VerbEntry& v : kVerbs) known |= std::string(v.name) == argv[1];
    if (!known) {
      std::fprintf(stderr, "slimlm: error: unknown verb '%s' (verbs: %s)\n", argv[1], names.c_str());
      return 2;
    }
  }
  return run(app, argc, argv);
}
