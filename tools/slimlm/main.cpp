// slimlm: compress LLMs and run them fast. `slimlm <verb> MODEL [options]`; see --help.
#include "common.h"
#include "core/error.h"
#include "kernels/qdot.h"
#include <cstdio>
#include <filesystem>
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

void apply_exact(bool exact) {
  if (exact) kernels::set_exact(true);
}

void add_kv_type(CLI::App* sub, std::string* kv) {
  sub->add_option("--kv-type", *kv, "KV-cache storage: f32, f16, q8 (int8 per head per token) or q4 (int4)")
      ->check(CLI::IsMember({"f32", "f16", "q8", "q4"}));
}

void check_model_path(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail(path, ": no such file or directory");
}

void check_output_folder(const std::string& out) {
  const auto dir = std::filesystem::path(out).parent_path();
  if (!dir.empty() && !std::filesystem::is_directory(dir)) fail(out, ": folder ", dir.string(), " does not exist");
}

pipeline::CalibOptions CalibFlags::options() const {
  pipeline::CalibOptions co;
  co.ids_file = ids;
  if (ids.empty()) {
    co.file = file;
    for (const char* p : {"../shared/data/brown/brown.txt", "/work/shared/data/brown/brown.txt"})
      if (co.file.empty() && std::filesystem::exists(p)) co.file = p;
    if (co.file.empty()) fail("no calibration text found: pass --calib FILE");
  }
  co.samples = samples; co.len = len; co.seed = seed;
  return co;
}

std::string CalibFlags::label() const {
  const pipeline::CalibOptions co = options();
  return cat(std::filesystem::path(co.ids_file.empty() ? co.file : co.ids_file).filename().string(), " ", samples, "x", len, " seed ", seed);
}

void add_calib_flags(CLI::App* sub, CalibFlags* f) {
  sub->add_option("--calib", f->file, "calibration text (default ../shared/data/brown/brown.txt)");
  sub->add_option("--calib-ids", f->ids, "calibration token ids (whitespace-separated) instead of text");
  sub->add_option("--calib-samples", f->samples, "calibration sequences")->check(CLI::Range(1, 100000));
  sub->add_option("--calib-len", f->len, "tokens per calibration sequence")->check(CLI::Range(2, 1 << 16));
  sub->add_option("--seed", f->seed, "seed for picking calibration sequences");
}

}  // namespace slimlm::cli

int main(int argc, char** argv) {
  CLI::App app{"slimlm: compress large language models and run them fast"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "slimlm 0.1.0");
  slimlm::cli::add_info(app);
  slimlm::cli::add_generate(app);
  slimlm::cli::add_eval(app);
  slimlm::cli::add_bench(app);
  slimlm::cli::add_convert(app);
  slimlm::cli::add_quantize(app);
  slimlm::cli::add_prune(app);
  slimlm::cli::add_recipe(app);
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    for (const auto* sub : app.get_subcommands({})) known |= sub->get_name() == argv[1];
    if (!known) {
      std::fprintf(stderr, "slimlm: error: unknown verb '%s' (verbs: info, generate, eval, bench, convert, quantize, prune, recipe)\n", argv[1]);
      return 2;
    }
  }
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
