// `slimlm bench MODEL [-p 512] [-n 128] [-d 0] [--json]`: prompt-processing and generation speed
// (tokens/s, as llama-bench's pp512/tg128) and peak resident memory.
#include "common.h"
#include "eval/eval.h"
#include "kernels/qdot.h"
#include "model/model.h"
#include <cstdio>
#include <nlohmann/json.hpp>

namespace slimlm::cli {

void add_bench(CLI::App* sub) {
  static std::string path, kv = "f32";
  static int64_t n_prompt = 512, n_gen = 128, depth = 0;
  static int reps = 3, threads = 0;
  static bool json = false, exact = false;
  sub->footer("Example: slimlm bench models/SmolLM2-135M-Instruct.Q4_1.gguf -t 2 --json");
  sub->add_option("model", path, "model file or folder")->required();
  sub->add_option("-p,--n-prompt", n_prompt, "prompt tokens (pp)")->check(CLI::Range(1, 1 << 16));
  sub->add_option("-n,--n-gen", n_gen, "generated tokens (tg)")->check(CLI::Range(1, 1 << 16));
  sub->add_option("-d,--depth", depth, "positions already in the KV cache before pp and tg (as llama-bench -d)")
      ->check(CLI::Range(0, 1 << 20));
  sub->add_option("-r,--reps", reps, "repetitions (after one warm-up)")->check(CLI::Range(1, 1000));
  sub->add_flag("--json", json, "machine-readable output on stdout");
  add_threads(sub, &threads);
  add_exact(sub, &exact);
  add_kv_type(sub, &kv);
  sub->callback([] {
    apply_threads(threads);
    const kernels::ExactScope exact_mode = exact_scope(exact);
    check_model_path(path);
    auto m = load_model(path);
    auto r = eval::bench(*m, n_prompt, n_gen, reps, parse_kv_type(kv), depth);
    nlohmann::json j = {{"model", r.model}, {"type", r.type}, {"threads", r.threads},
                        {"n_prompt", r.n_prompt}, {"n_gen", r.n_gen}, {"depth", r.depth}, {"pp_tps", r.pp_tps}, {"pp_tps_sd", r.pp_tps_sd},
                        {"tg_tps", r.tg_tps}, {"tg_tps_sd", r.tg_tps_sd}, {"peak_rss_mb", r.peak_rss_mb},
                        {"weights_mb", r.weights_mb}, {"kv_type", r.kv_type}, {"kv_mb", r.kv_mb}, {"reps", reps},
                        {"matmul", kernels::exact() ? "exact" : "q8"}};
    if (json) { std::printf("%s\n", j.dump(2).c_str()); return; }
    const std::string at = r.depth > 0 ? " @ d" + std::to_string(r.depth) : "";
    std::printf("%s (%s, %.1f MiB, %d threads, %s matmul): pp%lld%s %.1f ± %.1f t/s, tg%lld%s %.1f ± %.1f t/s, KV cache %s %.1f MiB, peak RSS %.0f MiB\n",
                r.model.c_str(), r.type.c_str(), r.weights_mb, r.threads, kernels::exact() ? "exact" : "q8", (long long)r.n_prompt, at.c_str(),
                r.pp_tps, r.pp_tps_sd, (long long)r.n_gen, at.c_str(), r.tg_tps, r.tg_tps_sd, r.kv_type.c_str(), r.kv_mb, r.peak_rss_mb);
  });
}

}  // namespace slimlm::cli
