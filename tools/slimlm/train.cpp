// `slimlm train MODEL [-o OUT.gguf] [--data TEXT | --ids FILE] ...` and `slimlm distill` (the same
// with --teacher): full fine-tuning, LoRA or knowledge distillation on the CPU training engine.
// With --black-box the teacher writes the training text from prompts (pipeline/teacher_data.h)
// and the student learns it with cross-entropy alone; the teacher's logits are not used.
#include "common.h"
#include "core/dtype.h"
#include "core/error.h"
#include "model/model.h"
#include "pipeline/finetune.h"
#include "pipeline/job.h"
#include "pipeline/teacher_data.h"
#include <cstdio>
#include <nlohmann/json.hpp>

namespace slimlm::cli {

namespace {
struct TrainFlags {
  std::string model, out, type = "f32", teacher, kd = "fkl", targets = "q,k,v,o,gate,up,down";
  pipeline::FinetuneJob job;
  pipeline::TeacherDataOptions bb;
  std::string bb_style = "continue", feature_layers, relation_layers;
  int64_t lora_rank = 0;
  double lora_alpha = 0;
  int threads = 0;
  bool json = false, no_progress = false, black_box = false;
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  size_t a = 0;
  while (a <= s.size()) {
    const size_t b = std::min(s.find(',', a), s.size());
    if (b > a) out.push_back(s.substr(a, b - a));
    a = b + 1;
  }
  return out;
}

nlohmann::json black_box_summary(const TrainFlags& f, const pipeline::TeacherData& d) {
  return {{"style", f.bb_style}, {"samples", d.samples.size()}, {"tokens", d.ids.size()}, {"generated_tokens", d.generated},
          {"seconds", d.seconds}, {"tokens_per_s", d.tokens_per_s}, {"temperature", f.bb.temperature},
          {"text", f.bb.text_out}};
}

// Black-box data: options checked before any model loads, then the teacher writes the text the
// student trains on (job.tokens) with plain cross-entropy.
void check_black_box(TrainFlags& f) {
  if (f.teacher.empty()) fail("--black-box needs --teacher MODEL");
  if (!f.job.ids.empty()) fail("--black-box makes its own training data from --data (prompts); drop --ids");
  f.bb.style = pipeline::parse_prompt_style(f.bb_style);
  f.bb.seed = f.job.train.seed;
  pipeline::validate(f.bb);
  if (!f.bb.text_out.empty()) pipeline::check_output_folder(f.bb.text_out);
}

pipeline::TeacherData black_box_data(TrainFlags& f, const Model& student, const Model& teacher) {
  train::check_same_vocabulary(teacher, student);
  f.bb.corpus = f.job.data;
  f.bb.progress = f.job.progress;
  pipeline::TeacherData d = pipeline::generate_teacher_data(teacher, f.bb);
  f.job.data.clear();
  f.job.tokens = d.ids;
  if (!f.json)
    std::printf("teacher wrote %zu %s samples: %zu tokens (%lld generated) in %.1f s (%.1f tokens/s)\n", d.samples.size(),
                f.bb_style.c_str(), d.ids.size(), (long long)d.generated, d.seconds, d.tokens_per_s);
  return d;
}

nlohmann::json pairs_json(const std::vector<train::LayerPair>& v) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& p : v) j.push_back({p.student, p.teacher});
  return j;
}

// The loss's parts: what each is and its weight (loss = logit + α·feature + β·relation).
nlohmann::json loss_parts(const TrainFlags& f, const train::StateKdPlan& p) {
  return {{"logit", f.teacher.empty() ? "ce" : f.kd}, {"ce_weight", f.job.train.ce_weight},
          {"feature_weight", p.alpha}, {"feature_layers", pairs_json(p.feature)}, {"feature_projection", p.projection},
          {"relation_weight", p.beta}, {"relation_layers", pairs_json(p.relation)}, {"relation_heads", p.relation_heads}};
}

void add_parts(nlohmann::json& j, const train::LossParts& p) {
  j["logit"] = p.logit;
  j["feature"] = p.feature;
  j["relation"] = p.relation;
}

nlohmann::json summary(const TrainFlags& f, const pipeline::FinetuneResult& r, int64_t params, const pipeline::TeacherData& d) {
  const bool parts = f.job.train.state_kd.active();
  nlohmann::json log = nlohmann::json::array();
  for (const auto& s : r.log) {
    log.push_back({{"step", s.step}, {"loss", s.loss}, {"lr", s.lr}, {"grad_norm", s.grad_norm}});
    if (parts) add_parts(log.back(), s.parts);
  }
  nlohmann::json held = nlohmann::json::array();
  for (size_t i = 0; i < r.heldout.size(); ++i) {
    held.push_back({{"step", r.heldout[i].first}, {"loss", r.heldout[i].second}});
    if (parts) add_parts(held.back(), r.heldout_parts[i]);
  }
  nlohmann::json j = {{"model", f.model}, {"output", f.out}, {"steps", r.steps}, {"tokens", r.tokens}, {"seconds", r.seconds},
          {"tokens_per_s", r.tokens_per_s}, {"tokens_per_step", f.job.seq * f.job.train.accum},
          {"step_seconds", r.step_seconds}, {"params_total", params}, {"params_trained", r.params_trained},
          {"mode", f.lora_rank > 0 ? "lora" : "full"}, {"teacher", f.teacher}, {"log", log}, {"heldout", held}};
  if (f.black_box) j["black_box"] = black_box_summary(f, d);
  if (parts) j["loss_parts"] = loss_parts(f, r.state_kd);
  return j;
}

void run_train(TrainFlags f, bool distill) {
  apply_threads(f.threads);
  check_model_path(f.model);
  if (distill && f.teacher.empty()) fail("distill needs --teacher MODEL");
  if (f.black_box) check_black_box(f);
  f.job.train.state_kd.feature_layers = train::parse_layer_pairs(f.feature_layers);
  f.job.train.state_kd.relation_layers = train::parse_layer_pairs(f.relation_layers);
  f.job.train.state_kd.validate();
  if (f.job.train.state_kd.active() && (f.teacher.empty() || f.black_box))
    fail("--feature-weight / --relation-weight need --teacher MODEL (and no --black-box)");
  if (f.job.data.empty() && f.job.ids.empty()) f.job.data = pipeline::default_calibration_file();
  f.job.progress = !f.no_progress && !f.json;
  auto m = load_model(f.model);
  std::unique_ptr<Model> teacher;
  pipeline::TeacherData bb;
  if (!f.teacher.empty()) {
    check_model_path(f.teacher);
    teacher = load_model(f.teacher);
    if (f.black_box) bb = black_box_data(f, *m, *teacher);
    else f.job.train.teacher = teacher.get();
    f.job.train.kd.loss = train::parse_distill_loss(f.kd);
  }
  if (f.lora_rank > 0) {
    f.job.train.lora = true;
    f.job.train.lora_opt.rank = f.lora_rank;
    f.job.train.lora_opt.alpha = f.lora_alpha > 0 ? f.lora_alpha : 2.0 * double(f.lora_rank);
    f.job.train.lora_opt.targets = split(f.targets);
  }
  const DType type = type_from_name(f.type);
  const int64_t params = m->n_params();
  const auto r = pipeline::finetune(*m, f.job);
  if (!f.out.empty()) save_gguf(*m, f.out, type);
  if (f.json) { std::printf("%s\n", summary(f, r, params, bb).dump(1).c_str()); return; }
  std::printf("trained %s: %lld steps, %lld tokens in %.1f s (%.1f tokens/s), %lld parameters trained\n", f.model.c_str(),
              (long long)r.steps, (long long)r.tokens, r.seconds, r.tokens_per_s, (long long)r.params_trained);
  if (!r.log.empty()) std::printf("  loss %.4f -> %.4f", r.log.front().loss, r.log.back().loss);
  if (r.heldout.size() >= 2) std::printf(", held-out %.4f -> %.4f", r.heldout.front().second, r.heldout.back().second);
  std::printf("\n");
  if (f.job.train.state_kd.active() && r.heldout_parts.size() >= 2) {
    const auto &a = r.heldout_parts.front(), &b = r.heldout_parts.back();
    std::printf("  held-out parts: logit %.4f -> %.4f, feature %.4f -> %.4f, relation %.4f -> %.4f\n", a.logit, b.logit,
                a.feature, b.feature, a.relation, b.relation);
  }
  if (!f.out.empty()) std::printf("  wrote %s (%s)\n", f.out.c_str(), f.type.c_str());
}

void add_flags(CLI::App* sub, TrainFlags& f) {
  sub->add_option("model", f.model, "model file or folder")->required();
  sub->add_option("-o,--output", f.out, "write the trained model here (GGUF)");
  sub->add_option("--type", f.type, "storage type of the written matrices (default f32)");
  sub->add_option("--data", f.job.data, "training text, or the prompts' corpus with --black-box (default: the calibration text shipped with slimlm)");
  sub->add_option("--ids", f.job.ids, "or a file of token ids");
  sub->add_option("--seq", f.job.seq, "tokens per sequence (default 256)")->check(CLI::Range(2, 65536));
  sub->add_option("--steps", f.job.steps, "optimizer steps (default 100)")->check(CLI::Range(1, 10000000));
  sub->add_option("--accum", f.job.train.accum, "sequences per step (default 1)")->check(CLI::Range(1, 4096));
  sub->add_option("--lr", f.job.train.opt.lr, "peak learning rate (default 1e-4)");
  sub->add_option("--warmup", f.job.train.opt.warmup, "warm-up steps (default 0)");
  sub->add_option("--wd", f.job.train.opt.weight_decay, "AdamW weight decay on matrices (default 0)");
  sub->add_option("--clip", f.job.train.opt.clip, "global gradient-norm clip (default 1; 0: none)");
  sub->add_option("--seed", f.job.train.seed, "order of the sequences and the black-box passages and sampling (default 1)");
  sub->add_option("--heldout", f.job.heldout, "held-out fraction of the sequences (default 0.05)");
  sub->add_option("--heldout-max", f.job.heldout_max, "held-out sequences evaluated, at most (default 16)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30));
  sub->add_option("--eval-every", f.job.eval_every, "held-out loss every N steps (default: start and end)");
  sub->add_option("--lora-rank", f.lora_rank, "train LoRA adapters of this rank on a frozen base")->check(CLI::Range(1, 4096));
  sub->add_option("--lora-alpha", f.lora_alpha, "LoRA alpha (default 2 x rank)");
  sub->add_option("--lora-targets", f.targets, "linears with adapters (default q,k,v,o,gate,up,down)");
  sub->add_option("--teacher", f.teacher, "distil from this model (same vocabulary)");
  sub->add_option("--kd", f.kd, "distillation loss: fkl, rkl, jsd, skl or srkl (default fkl)");
  sub->add_option("--temperature", f.job.train.kd.temperature, "distillation temperature (default 1)");
  sub->add_option("--kd-beta", f.job.train.kd.beta, "JSD beta / skew alpha (default 0.5)");
  sub->add_option("--ce-weight", f.job.train.ce_weight, "weight of next-token cross-entropy in the mix (default 0)");
  sub->add_option("--feature-weight", f.job.train.state_kd.feature_weight, "feature distillation weight: MSE of hidden states (default 0)");
  sub->add_option("--relation-weight", f.job.train.state_kd.relation_weight, "relation distillation weight: MiniLM Q-Q/K-K/V-V KL (default 0)");
  sub->add_option("--feature-layers", f.feature_layers, "student layers for feature KD, as i or i:teacher_layer (default: all, uniform map)");
  sub->add_option("--relation-layers", f.relation_layers, "student layers for relation KD, as i or i:teacher_layer (default: the last)");
  sub->add_option("--relation-heads", f.job.train.state_kd.relation_heads, "relation heads (default: gcd of the KV head counts)");
  sub->add_flag("--feature-proj", f.job.train.state_kd.projection, "learn a projection even when the widths are equal");
  sub->add_flag("--black-box", f.black_box, "black-box distillation: train on text the teacher generates (no logits)");
  sub->add_option("--bb-style", f.bb_style, "black-box prompts: continue, instruct or cot (default continue)");
  sub->add_option("--bb-samples", f.bb.samples, "black-box samples the teacher writes (default 64)");
  sub->add_option("--bb-prompt-tokens", f.bb.prompt_tokens, "corpus tokens in each prompt (default 64)");
  sub->add_option("--bb-new-tokens", f.bb.new_tokens, "tokens the teacher writes per sample, at most (default 128)");
  sub->add_option("--bb-temperature", f.bb.temperature, "teacher sampling temperature (default 0: greedy)");
  sub->add_option("--bb-text", f.bb.text_out, "also write the teacher's samples as text here");
  sub->add_option("--checkpoint", f.job.checkpoint, "checkpoint file (written at the end and every --checkpoint-every)");
  sub->add_option("--checkpoint-every", f.job.checkpoint_every, "steps between checkpoints");
  sub->add_option("--resume", f.job.resume, "continue from this checkpoint");
  sub->add_option("--curve", f.job.curve, "write the loss curves as an SVG plot");
  sub->add_flag("--json", f.json, "print a JSON summary (with the loss log)");
  sub->add_flag("--no-progress", f.no_progress, "no progress bar");
  add_threads(sub, &f.threads);
}
}  // namespace

void add_train(CLI::App* sub) {
  static TrainFlags f;
  add_flags(sub, f);
  sub->footer("Example: slimlm train models/SmolLM2-135M-Instruct.Q4_1.gguf --lora-rank 16 --steps 200 -o tuned.gguf --curve loss.svg");
  sub->callback([] { run_train(f, false); });
}

void add_distill(CLI::App* sub) {
  static TrainFlags f;
  add_flags(sub, f);
  sub->footer("Examples:\n  slimlm distill pruned.gguf --teacher models/SmolLM2-135M-Instruct.Q4_1.gguf --kd rkl --steps 200 -o recovered.gguf\n"
              "  slimlm distill pruned.gguf --teacher models/SmolLM2-135M-Instruct.Q4_1.gguf --black-box --bb-style instruct "
              "--bb-samples 128 --bb-text teacher.txt --steps 200 -o recovered.gguf\n"
              "  slimlm distill cut.gguf --teacher models/SmolLM2-135M-Instruct.Q4_1.gguf --feature-weight 1 --relation-weight 1 "
              "--relation-layers 11 --steps 200 -o recovered.gguf");
  sub->callback([] { run_train(f, true); });
}

}  // namespace slimlm::cli
