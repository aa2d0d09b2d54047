#include "pipeline/finetune.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/svg_plot.h"
#include "core/text.h"
#include <chrono>
#include <cmath>
#include <cstdio>

namespace slimlm::pipeline {

namespace {
std::vector<int32_t> read_tokens(const Model& m, const FinetuneJob& job) {
  if (int(!job.data.empty()) + int(!job.ids.empty()) + int(!job.tokens.empty()) != 1)
    fail("training needs exactly one of a text file, an ids file or token ids");
  if (!job.ids.empty() || !job.tokens.empty()) {
    const std::string src = job.ids.empty() ? "training tokens" : job.ids;
    std::vector<int32_t> ids = job.ids.empty() ? job.tokens : parse_ids(read_text_file(job.ids), job.ids);
    for (int32_t id : ids)
      if (id < 0 || id >= m.hp.n_vocab) fail(src, ": token id ", id, " is outside the vocabulary (", m.hp.n_vocab, ")");
    return ids;
  }
  if (!m.tok) fail("training text needs a tokenizer; this model (", m.format, ") has none: give token ids");
  return m.tok->encode(read_text_file(job.data), false, false);
}

void check(const FinetuneJob& job) {
  if (job.steps < 1 || job.steps > 10'000'000) fail("steps ", job.steps, " is out of range [1, 10000000]");
  if (job.eval_every < 0 || job.checkpoint_every < 0) fail("evaluation and checkpoint intervals must not be negative");
  if (job.checkpoint_every > 0 && job.checkpoint.empty()) fail("a checkpoint interval needs a checkpoint file");
  if (job.heldout_max < 1) fail("at least one held-out sequence must be evaluated");
}

void plot(const FinetuneJob& job, const FinetuneResult& r) {
  PlotSeries tr{"train loss", {}, {}, "#1f77b4"}, ho{"held-out loss", {}, {}, "#d62728"};
  for (const auto& s : r.log) { tr.x.push_back(double(s.step)); tr.y.push_back(s.loss); }
  for (const auto& [step, loss] : r.heldout) { ho.x.push_back(double(step)); ho.y.push_back(loss); }
  write_line_plot(job.curve, job.train.teacher ? "distillation loss" : "next-token loss", "step", "loss", {tr, ho});
}

// The held-out loss at step, with its parts.
void evaluate(train::Trainer& t, int64_t step, FinetuneResult& r) {
  r.heldout_parts.push_back(t.heldout_parts());
  r.heldout.push_back({step, r.heldout_parts.back().loss});
}
}  // namespace

FinetuneResult finetune(Model& m, const FinetuneJob& job) {
  check(job);
  train::Packed data = train::pack(read_tokens(m, job), job.seq, job.heldout);
  if (int64_t(data.heldout.size()) > job.heldout_max) data.heldout.resize(size_t(job.heldout_max));
  train::Trainer t(m, job.train, std::move(data));
  if (!job.resume.empty()) t.resume(job.resume);
  FinetuneResult r;
  r.state_kd = t.state_kd_plan();
  t.weights().each_trainable([&](const std::string&, std::vector<float>& v) { r.params_trained += int64_t(v.size()); });
  const bool held = job.heldout > 0;
  if (held) evaluate(t, t.steps_done(), r);
  const int64_t first = t.steps_done(), tok_per_step = job.seq * job.train.accum;
  Progress bar("train", job.steps - first, job.progress);
  const auto start = std::chrono::steady_clock::now();
  double prev = 0;
  auto on_step = [&](const train::StepLog& s) {
    r.log.push_back(s);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    r.step_seconds.push_back(secs - prev);
    prev = secs;
    const double tps = double((s.step - first) * tok_per_step) / std::max(secs, 1e-9);
    char extra[96];
    std::snprintf(extra, sizeof extra, "loss %.4f, %.0f tok/s", s.loss, tps);
    bar.update(s.step - first, extra);
    if (job.checkpoint_every > 0 && s.step % job.checkpoint_every == 0) t.save(job.checkpoint);
    if (held && job.eval_every > 0 && s.step % job.eval_every == 0 && s.step < job.steps)
      evaluate(t, s.step, r);
  };
  t.run(job.steps, on_step);
  bar.finish();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.steps = t.steps_done() - first;
  r.tokens = r.steps * tok_per_step;
  r.tokens_per_s = double(r.tokens) / std::max(r.seconds, 1e-9);
  r.on_policy = t.rollout_stats();
  if (held) evaluate(t, t.steps_done(), r);
  if (!job.checkpoint.empty()) t.save(job.checkpoint);
  if (!job.curve.empty()) plot(job, r);
  t.export_to(m);
  return r;
}

}  // namespace slimlm::pipeline
