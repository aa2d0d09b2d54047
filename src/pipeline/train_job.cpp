#include "pipeline/train_job.h"
#include "core/error.h"
#include "model/model.h"
#include "train/state_kd.h"
#include <memory>

namespace slimlm::pipeline {

namespace {
std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t a = 0;
  while (a <= s.size()) {
    const size_t b = std::min(s.find(',', a), s.size());
    if (b > a) out.push_back(s.substr(a, b - a));
    a = b + 1;
  }
  return out;
}

// Feature and relation distillation (train/state_kd.h); the layers are checked against the
// models when training starts.
train::StateKdOptions state_kd_options(const Args& a) {
  train::StateKdOptions o;
  o.feature_weight = a.real("feature-weight");
  o.relation_weight = a.real("relation-weight");
  o.feature_layers = train::parse_layer_pairs(a.text("feature-layers"));
  o.relation_layers = train::parse_layer_pairs(a.text("relation-layers"));
  o.relation_heads = a.integer("relation-heads");
  o.projection = a.flag("feature-proj");
  o.validate();
  return o;
}

// Data, sequences, optimizer, LoRA and the loss mix.
FinetuneJob finetune_options(const Args& a) {
  FinetuneJob j;
  j.data = a.text("data");
  j.ids = a.text("ids");
  j.seq = a.integer("seq");
  j.steps = a.integer("steps");
  j.heldout = a.real("heldout");
  j.heldout_max = a.integer("heldout-max");
  j.eval_every = a.integer("eval-every");
  j.checkpoint = a.text("checkpoint");
  j.checkpoint_every = a.integer("checkpoint-every");
  j.resume = a.text("resume");
  j.curve = a.text("curve");
  j.progress = !a.flag("no-progress");
  train::TrainOptions& t = j.train;
  t.accum = a.integer("accum");
  t.seed = a.unsigned_integer("seed");
  t.opt.lr = a.real("lr");
  t.opt.warmup = a.integer("warmup");
  t.opt.weight_decay = a.real("wd");
  t.opt.clip = a.real("clip");
  t.kd.loss = train::parse_distill_loss(a.text("kd"));
  t.kd.temperature = a.real("temperature");
  t.kd.beta = a.real("kd-beta");
  t.ce_weight = a.real("ce-weight");
  if (a.given("lora-rank")) {
    t.lora = true;
    t.lora_opt.rank = a.integer("lora-rank");
    const double alpha = a.given("lora-alpha") ? a.real("lora-alpha") : 0.0;
    t.lora_opt.alpha = alpha > 0 ? alpha : 2.0 * double(t.lora_opt.rank);
    t.lora_opt.targets = split_commas(a.text("lora-targets"));
  }
  t.validate();
  t.kd.validate();
  t.state_kd = state_kd_options(a);  // after validate(): the teacher comes later
  t.on_policy = a.real("on-policy");
  t.on_policy_prompt = a.integer("on-policy-prompt");
  t.on_policy_temp = a.real("on-policy-temp");
  train::check_on_policy(t.on_policy, t.on_policy_prompt, t.on_policy_temp, j.seq);
  return j;
}

// Black-box data: the teacher writes the text the student trains on (job.tokens) with plain
// cross-entropy.
TeacherData black_box_data(const TrainJobOptions& o, FinetuneJob& job, const Model& student, const Model& teacher) {
  train::check_same_vocabulary(teacher, student);
  TeacherDataOptions bb = o.bb;
  bb.corpus = job.data;
  bb.progress = job.progress;
  TeacherData d = generate_teacher_data(teacher, bb);
  job.data.clear();
  job.tokens = d.ids;
  return d;
}

nlohmann::json black_box_summary(const TrainJobOptions& o, const TeacherData& d) {
  return {{"style", o.bb_style}, {"samples", d.samples.size()}, {"tokens", d.ids.size()}, {"generated_tokens", d.generated},
          {"seconds", d.seconds}, {"tokens_per_s", d.tokens_per_s}, {"temperature", o.bb.temperature},
          {"text", o.bb.text_out}};
}

nlohmann::json pairs_json(const std::vector<train::LayerPair>& v) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& p : v) j.push_back({p.student, p.teacher});
  return j;
}

// The loss's parts (always with a teacher): what each is and its weight (loss = logit +
// α·feature + β·relation).
nlohmann::json loss_parts(const TrainJobOptions& o, const train::StateKdPlan& p) {
  return {{"logit", o.kd}, {"ce_weight", o.job.train.ce_weight},
          {"feature_weight", p.alpha}, {"feature_layers", pairs_json(p.feature)}, {"feature_projection", p.projection},
          {"relation_weight", p.beta}, {"relation_layers", pairs_json(p.relation)}, {"relation_heads", p.relation_heads}};
}

void add_parts(nlohmann::json& j, const train::LossParts& p) {
  j["logit"] = p.logit;
  j["feature"] = p.feature;
  j["relation"] = p.relation;
}

// On-policy distillation: the settings, how many of the sequences trained on the student wrote,
// its generated tokens and the time generating took.
nlohmann::json on_policy_summary(const TrainJobOptions& o, const FinetuneResult& r) {
  const train::TrainOptions& t = o.job.train;
  return {{"rate", t.on_policy}, {"prompt_tokens", t.on_policy_prompt}, {"temperature", t.on_policy_temp},
          {"sequences", r.on_policy.sequences}, {"sequences_total", r.steps * t.accum},
          {"generated_tokens", r.on_policy.tokens}, {"seconds", r.on_policy.seconds}};
}

nlohmann::json train_summary(const TrainJobOptions& o, const FinetuneResult& r, int64_t params) {
  const bool parts = o.job.train.state_kd.active();
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
  nlohmann::json j = {{"steps", r.steps}, {"tokens", r.tokens}, {"seconds", r.seconds}, {"tokens_per_s", r.tokens_per_s},
          {"tokens_per_step", o.job.seq * o.job.train.accum}, {"step_seconds", r.step_seconds},
          {"params_total", params}, {"params_trained", r.params_trained}, {"mode", o.job.train.lora ? "lora" : "full"},
          {"teacher", o.teacher}, {"type", o.type_name}, {"log", log}, {"heldout", held}};
  if (!o.teacher.empty()) j["kd"] = o.black_box ? "black-box" : o.kd;
  if (!r.log.empty()) { j["loss_first"] = r.log.front().loss; j["loss_last"] = r.log.back().loss; }
  if (parts) j["loss_parts"] = loss_parts(o, r.state_kd);
  if (o.job.train.on_policy > 0) j["on_policy"] = on_policy_summary(o, r);
  return j;
}
}  // namespace

TrainJobOptions train_options(Verb v, const Args& a) {
  TrainJobOptions o;
  o.job = finetune_options(a);
  o.teacher = a.text("teacher");
  o.kd = a.text("kd");
  o.black_box = a.flag("black-box");
  o.type_name = a.text("type");
  o.type = type_from_name(o.type_name);
  if (!traits(o.type).from_f32) fail("cannot write weights of type ", o.type_name, " (writable: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1)");
  o.threads = a.integer("threads");
  o.bb_style = a.text("bb-style");
  o.bb.style = parse_prompt_style(o.bb_style);
  o.bb.samples = a.integer("bb-samples");
  o.bb.prompt_tokens = a.integer("bb-prompt-tokens");
  o.bb.new_tokens = a.integer("bb-new-tokens");
  o.bb.temperature = a.real("bb-temperature");
  o.bb.text_out = a.text("bb-text");
  o.bb.seed = o.job.train.seed;
  if (o.black_box) {
    if (v == Verb::Train && o.teacher.empty()) fail("--black-box needs --teacher MODEL");
    if (!o.job.ids.empty()) fail("--black-box makes its own training data from --data (prompts); drop --ids");
    validate(o.bb);
  }
  if (o.job.train.state_kd.active() && ((v == Verb::Train && o.teacher.empty()) || o.black_box))
    fail("--feature-weight / --relation-weight need --teacher MODEL (and no --black-box)");
  if (o.job.train.on_policy > 0 && ((v == Verb::Train && o.teacher.empty()) || o.black_box))
    fail("--on-policy needs --teacher MODEL (and no --black-box)");
  check_train_inputs(Verb::Train, o);  // the files that exist now (a distill teacher may come later)
  for (const std::string* f : {&o.bb.text_out, &o.job.checkpoint, &o.job.curve})
    if (!f->empty()) check_output_folder(*f);
  return o;
}

void check_train_inputs(Verb v, const TrainJobOptions& o) {
  if (v == Verb::Distill && o.teacher.empty()) fail("distill needs --teacher MODEL");
  if (!o.teacher.empty()) check_model_path(o.teacher);
  for (const std::string* f : {&o.job.data, &o.job.ids})
    if (!f->empty()) check_model_path(*f);
}

Compressed train_model(Model& m, const TrainJobOptions& o) {
  const ThreadScope threads(o.threads);
  FinetuneJob job = o.job;
  if (job.data.empty() && job.ids.empty()) job.data = default_calibration_file();
  std::unique_ptr<Model> teacher;
  TeacherData bb;
  if (!o.teacher.empty()) {
    teacher = load_model(o.teacher);
    if (o.black_box) bb = black_box_data(o, job, m, *teacher);
    else job.train.teacher = teacher.get();
  }
  const int64_t params = m.n_params();
  const FinetuneResult r = finetune(m, job);
  Compressed c;
  c.summary = train_summary(o, r, params);
  if (o.black_box) c.summary["black_box"] = black_box_summary(o, bb);
  c.convert_to = o.type;
  return c;
}

}  // namespace slimlm::pipeline
