#include "core/error.h"
#include "eval/eval.h"
#include "model/forward.h"
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <omp.h>
#include <random>
#include <string>
#include <sys/resource.h>
#include <vector>

namespace slimlm::eval {

double peak_rss_mb() {
  struct rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

namespace {
void mean_sd(const std::vector<double>& v, double& mean, double& sd) {
  mean = 0; sd = 0;
  for (double x : v) mean += x;
  mean /= double(v.size());
  for (double x : v) sd += (x - mean) * (x - mean);
  sd = v.size() > 1 ? std::sqrt(sd / double(v.size() - 1)) : 0;
}
// The block linears' storage type, or for a mixture (K-quant files such as Q4_K_M) the types in
// order of the bytes they hold, "q4_K+q6_K+q5_0".
std::string weight_types(const Model& m) {
  if (m.blocks.empty()) return type_name(m.tok_embd.type);
  std::map<std::string, size_t> bytes;
  for (const auto& b : m.blocks)
    for (const Tensor* t : b.linears()) bytes[type_name(t->type)] += t->nbytes;
  std::vector<std::pair<size_t, std::string>> by;
  for (const auto& [name, n] : bytes) by.emplace_back(n, name);
  std::sort(by.begin(), by.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::string out;
  for (const auto& [n, name] : by) out += (out.empty() ? "" : "+") + name;
  return out;
}
}  // namespace

// Like llama-bench: pp = one batch of n_prompt tokens; tg = n_gen single-token steps; both after
// `depth` cached positions (llama-bench -d; untimed prefill in batches of 512), 0: an empty cache.
// Random token ids (seeded), one warm-up run.
BenchResult bench(const Model& m, int64_t n_prompt, int64_t n_gen, int reps, KvType kv, int64_t depth) {
  if (n_prompt <= 0 || n_gen <= 0 || reps <= 0 || depth < 0) fail("bench: sizes and repetitions must be positive");
  BenchResult r;
  r.depth = depth;
  r.model = m.path;
  r.type = weight_types(m);
  r.threads = omp_get_max_threads();
  r.n_prompt = n_prompt;
  r.n_gen = n_gen;
  r.weights_mb = double(m.weight_bytes()) / (1024.0 * 1024.0);
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> dist(0, int32_t(m.hp.n_vocab - 1));
  std::vector<int32_t> prompt(static_cast<size_t>(n_prompt));
  for (auto& t : prompt) t = dist(rng);
  std::vector<int32_t> ctx(static_cast<size_t>(depth));
  for (auto& t : ctx) t = dist(rng);
  Session s(m, depth + std::max(n_prompt, n_gen), kv);
  std::vector<float> logits;
  const auto start = [&] {  // an empty cache, then the depth positions
    s.reset();
    for (int64_t i = 0; i < depth; i += 512) {
      const int64_t nb = std::min<int64_t>(512, depth - i);
      s.forward(ctx.data() + i, nb, nb - 1, logits);
    }
  };
  using clock = std::chrono::steady_clock;
  std::vector<double> pp, tg;
  for (int rep = 0; rep <= reps; ++rep) {  // rep 0 warms up
    start();
    auto t0 = clock::now();
    s.forward(prompt.data(), n_prompt, n_prompt - 1, logits);
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    if (rep) pp.push_back(double(n_prompt) / dt);
  }
  for (int rep = 0; rep <= reps; ++rep) {
    start();
    int32_t tok = prompt[0];
    auto t0 = clock::now();
    for (int64_t i = 0; i < n_gen; ++i) {
      s.forward(&tok, 1, 0, logits);
      tok = prompt[size_t(i % n_prompt)];
    }
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    if (rep) tg.push_back(double(n_gen) / dt);
  }
  mean_sd(pp, r.pp_tps, r.pp_tps_sd);
  mean_sd(tg, r.tg_tps, r.tg_tps_sd);
  r.peak_rss_mb = peak_rss_mb();
  r.kv_type = kv_type_name(kv);
  r.kv_mb = double(s.kv_bytes()) / (1024.0 * 1024.0);
  return r;
}

}  // namespace slimlm::eval
