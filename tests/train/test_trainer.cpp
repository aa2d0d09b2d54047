// The training loop on stories260K (a real model): AdamW against its formula, the schedule,
// loss going down, exact resume from a checkpoint, and refusals (other model, NaN, bad data);
// distillation, with feature and relation losses, and on-policy (the student writes the sequence).
#include "core/error.h"
#include "test_util.h"
#include "model/forward.h"
#include "model/sampler.h"
#include "train/trainer.h"
#include "train/distill.h"
#include <gtest/gtest.h>
#include <cmath>
#include <filesystem>

using namespace slimlm;
using namespace slimlm::test;
using namespace slimlm::train;

namespace {
std::vector<int32_t> pattern_tokens(int n) {  // a learnable stream: 1, then a repeating cycle
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) t.push_back(i % 17 == 0 ? 1 : int32_t(20 + (i * 7) % 40));
  return t;
}
// stories260K cut to its first `blocks` blocks (a student for distillation).
std::unique_ptr<Model> stories_blocks(int64_t blocks) {
  auto m = load_model(stories());
  m->blocks.resize(size_t(blocks));
  m->hp.n_layer = blocks;
  return m;
}
TrainOptions options(int64_t total) {
  TrainOptions o;
  o.accum = 2;
  o.opt.lr = 1e-2;
  o.opt.warmup = 2;
  o.opt.total = total;
  o.opt.weight_decay = 0.01;
  return o;
}
}  // namespace

TEST(TrainOptim, AdamWFirstStepFollowsItsFormula) {
  Weights<float> w, g;
  w.tok_embd = {0.5f, -1.0f, 2.0f};
  w.out_norm = {1.0f, 1.0f};
  g.tok_embd = {0.1f, -0.2f, 0.0f};
  g.out_norm = {0.3f, -0.3f};
  AdamWOptions o;
  o.lr = 0.01;
  o.weight_decay = 0.1;
  o.clip = 0;
  AdamW opt(o);
  EXPECT_DOUBLE_EQ(opt.step(w, g), 0.01);
  // step 1: m̂ = g, v̂ = g², so the update is g / (|g| + eps) plus decay on matrices only
  const double want[3] = {0.5 - 0.01 * (1 + 0.1 * 0.5), -1.0 - 0.01 * (-1 - 0.1), 2.0 - 0.01 * (0 + 0.1 * 2.0)};
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(w.tok_embd[size_t(i)], want[i], 1e-6) << i;
  EXPECT_NEAR(w.out_norm[0], 1.0 - 0.01, 1e-6);  // a norm weight: no decay
  EXPECT_NEAR(w.out_norm[1], 1.0 + 0.01, 1e-6);
}

TEST(TrainOptim, WarmupThenCosineAndRangeChecks) {
  AdamWOptions o;
  o.lr = 1e-3;
  o.warmup = 4;
  o.total = 104;
  o.min_lr_ratio = 0.1;
  EXPECT_DOUBLE_EQ(lr_at(o, 0), 2.5e-4);
  EXPECT_DOUBLE_EQ(lr_at(o, 3), 1e-3);
  EXPECT_NEAR(lr_at(o, 54), 0.55e-3, 1e-12);  // half way down the cosine
  EXPECT_NEAR(lr_at(o, 104), 1e-4, 1e-12);
  EXPECT_NEAR(lr_at(o, 500), 1e-4, 1e-12);
  Weights<float> g;
  g.tok_embd = {3.0f, 4.0f};
  EXPECT_DOUBLE_EQ(clip_grad_norm(g, 1.0), 5.0);
  EXPECT_NEAR(g.tok_embd[0], 0.6f, 1e-7);
  for (double bad : {-1.0, 0.0, 2.0, double(NAN)}) {
    AdamWOptions b;
    b.lr = bad;
    EXPECT_THROW(b.validate(), Error) << bad;
  }
  AdamWOptions b;
  b.warmup = 10;
  b.total = 5;
  EXPECT_THROW(b.validate(), Error);
}

TEST(Trainer, LossFallsAndResumeIsExact) {
  auto m = load_model(stories());
  const Packed data = pack(pattern_tokens(33 * 12), 32, 0.2);
  ASSERT_EQ(data.train.size(), 9u);
  ASSERT_EQ(data.heldout.size(), 3u);
  Trainer a(*m, options(12), data);
  const double held0 = a.heldout_loss();
  std::vector<StepLog> full;
  a.run(12, [&](const StepLog& s) { full.push_back(s); });
  ASSERT_EQ(full.size(), 12u);
  EXPECT_LT(full.back().loss, 0.65 * full.front().loss);  // 6.24 -> 3.69 here
  EXPECT_LT(a.heldout_loss(), 0.7 * held0);

  const std::string ckpt = temp_path("trainer.ckpt");
  Trainer b(*m, options(12), data);
  b.run(3);
  b.save(ckpt);
  Trainer c(*m, options(12), data);
  c.resume(ckpt);
  EXPECT_EQ(c.steps_done(), 3);
  std::vector<StepLog> tail;
  c.run(12, [&](const StepLog& s) { tail.push_back(s); });
  ASSERT_EQ(tail.size(), 9u);
  for (size_t i = 0; i < tail.size(); ++i) {
    EXPECT_EQ(tail[i].step, full[i + 3].step);
    EXPECT_EQ(tail[i].loss, full[i + 3].loss) << "step " << tail[i].step;  // bit for bit
  }
  EXPECT_EQ(c.weights().tok_embd, a.weights().tok_embd);
  std::filesystem::remove(ckpt);
}

TEST(Trainer, RefusesOtherModelsNanAndShortData) {
  auto m = load_model(stories());
  const Packed data = pack(pattern_tokens(33 * 4), 32, 0);
  const std::string ckpt = temp_path("trainer-other.ckpt");
  Trainer t(*m, options(4), data);
  t.save(ckpt);
  auto small = stories_blocks(2);
  Trainer other(*small, options(4), data);
  EXPECT_THROW(other.resume(ckpt), Error);
  std::filesystem::remove(ckpt);
  EXPECT_THROW(t.resume(stories()), Error);  // not a checkpoint at all

  t.weights().layers[0].wq[0] = NAN;
  const auto before = t.weights().tok_embd;
  try {
    t.run(1);
    FAIL() << "a NaN loss must stop training";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("step 1"), std::string::npos) << e.what();
  }
  EXPECT_EQ(t.weights().tok_embd, before) << "no update after a non-finite loss";
  EXPECT_EQ(t.steps_done(), 0);
  EXPECT_THROW(pack(pattern_tokens(20), 32, 0), Error);
  EXPECT_THROW(pack(pattern_tokens(40), 32, 0.5), Error);  // held-out split leaves no training data
}

// Trained weights stored back into the model: the runtime's forward pass (and a GGUF written and
// read back) gives the engine's logits.
TEST(Trainer, StoredWeightsRunInTheRuntimeAndSurviveGguf) {
  auto m = load_model(stories());
  Trainer t(*m, options(2), pack(pattern_tokens(33 * 3), 32, 0));
  t.run(2);
  const std::vector<int32_t> ids = {1, 25, 32, 39, 46, 53, 20};
  const int64_t n = int64_t(ids.size());
  const auto want = logits(*m, make_plan(*m, KvType::F32, n), t.weights(), ids.data(), n);
  store_weights(t.weights(), *m);
  auto run = [&](const Model& mm) {
    Session s(mm, n);
    std::vector<float> out;
    s.forward(ids.data(), n, 0, out);
    return out;
  };
  const auto got = run(*m);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-3) << i;
  const std::string path = temp_path("trained.gguf");
  save_gguf(*m, path, DType::F32);
  const auto back = run(*load_model(path));
  EXPECT_EQ(back, got);
  std::filesystem::remove(path);
  auto original = load_model(stories());
  EXPECT_NE(run(*original), got) << "training changed the model";
}

TEST(Trainer, LoraTrainsAdaptersOnlyAndExportsMerged) {
  auto m = load_model(stories());
  TrainOptions o = options(12);
  o.lora = true;
  o.lora_opt.rank = 4;
  o.opt.lr = 4e-3;
  const Packed data = pack(pattern_tokens(33 * 12), 32, 0.2);
  Trainer t(*m, o, data);
  const auto embd = t.weights().tok_embd;
  std::vector<StepLog> log;
  const double held0 = t.heldout_loss();
  t.run(12, [&](const StepLog& s) { log.push_back(s); });
  EXPECT_LT(log.back().loss, 0.9 * log.front().loss);  // 6.24 -> 5.32 here (rank 4, 12 steps)
  EXPECT_EQ(t.weights().tok_embd, embd) << "the base is frozen";
  const std::string ckpt = temp_path("lora.ckpt"), full = temp_path("full.ckpt");
  t.save(ckpt);
  Trainer(*m, options(12), data).save(full);
  EXPECT_LT(std::filesystem::file_size(ckpt) * 10, std::filesystem::file_size(full)) << "adapters only";
  Trainer other(*m, options(12), data);  // full fine-tuning cannot resume a LoRA checkpoint
  EXPECT_THROW(other.resume(ckpt), Error);
  std::filesystem::remove(ckpt);
  std::filesystem::remove(full);
  const double held = t.heldout_loss();
  EXPECT_LT(held, held0);
  t.export_to(*m);
  Trainer after(*m, options(12), data);  // the merged model, read back as plain weights
  EXPECT_NEAR(after.heldout_loss(), held, 1e-3);
}

// Distillation from stories260K into a two-block student cut from it: each loss brings the
// student's held-out divergence to the teacher down; vocabularies must match.
TEST(Trainer, DistillationShrinksTheDivergenceToTheTeacher) {
  auto teacher = load_model(stories());
  auto student = stories_blocks(2);
  const Packed data = pack(pattern_tokens(33 * 8), 32, 0.25);
  for (DistillLoss l : {DistillLoss::ForwardKL, DistillLoss::ReverseKL, DistillLoss::JSD, DistillLoss::SkewKL}) {
    TrainOptions o = options(10);
    o.opt.lr = 3e-3;
    o.teacher = teacher.get();
    o.kd.loss = l;
    o.ce_weight = 0.1;
    Trainer t(*student, o, data);
    const double before = t.heldout_loss();
    t.run(10);
    EXPECT_LT(t.heldout_loss(), 0.8 * before) << int(l);
  }
  TrainOptions o = options(2);
  auto other = load_model(stories());
  other->hp.n_vocab = 300;
  o.teacher = other.get();
  EXPECT_THROW(Trainer(*student, o, data), Error);
}

// Feature and relation distillation from stories260K (five layers) into its first three blocks:
// the held-out feature MSE, relation KL and logit KL all fall below the untrained student's; the
// parts add up to the loss; state distillation without a teacher is refused.
TEST(Trainer, FeatureDistillationLowersHeldOutFeatureMseAndKl) {
  auto teacher = load_model(stories());
  auto student = stories_blocks(3);
  const Packed data = pack(pattern_tokens(33 * 8), 32, 0.25);
  TrainOptions o = options(10);
  o.opt.lr = 3e-3;
  o.teacher = teacher.get();
  o.state_kd.feature_weight = 1;
  o.state_kd.relation_weight = 0.5;
  Trainer t(*student, o, data);
  const StateKdPlan& p = t.state_kd_plan();
  ASSERT_EQ(p.feature.size(), 3u);
  EXPECT_EQ(p.feature[0].teacher, 1);  // round((i+1)·5/3) − 1
  EXPECT_EQ(p.feature[1].teacher, 2);
  EXPECT_EQ(p.feature[2].teacher, 4);
  EXPECT_FALSE(p.projection);
  const LossParts before = t.heldout_parts();
  std::vector<StepLog> log;
  t.run(10, [&](const StepLog& s) { log.push_back(s); });
  const LossParts after = t.heldout_parts();
  std::printf("held-out: logit KL %.4f -> %.4f, feature MSE %.4f -> %.4f, relation KL %.4f -> %.4f\n", before.logit,
              after.logit, before.feature, after.feature, before.relation, after.relation);
  EXPECT_LT(after.feature, 0.96 * before.feature);  // 1.59 -> 1.48 here: the hidden states move slowly
  EXPECT_LT(after.logit, 0.8 * before.logit);
  EXPECT_LT(after.relation, before.relation);
  EXPECT_NEAR(after.loss, after.logit + after.feature + 0.5 * after.relation, 1e-9);
  ASSERT_EQ(log.size(), 10u);
  EXPECT_GT(log.front().parts.feature, 0);
  EXPECT_GT(log.front().parts.relation, 0);
  EXPECT_NEAR(log.back().loss, log.back().parts.logit + log.back().parts.feature + 0.5 * log.back().parts.relation, 1e-6);
  TrainOptions alone = options(2);
  alone.state_kd.feature_weight = 1;
  EXPECT_THROW(Trainer(*student, alone, data), Error);
}

namespace {
// The student's own greedy continuation of the first `prompt` tokens of record s, up to its
// length, written with the runtime's Session and an argmax loop.
std::vector<int32_t> greedy_continuation(const Model& m, const std::vector<int32_t>& s, int64_t prompt) {
  Session sess(m, int64_t(s.size()) - 1);
  std::vector<int32_t> out(s.begin(), s.begin() + prompt), feed = out;
  std::vector<float> z;
  while (out.size() < s.size()) {
    sess.forward(feed.data(), int64_t(feed.size()), int64_t(feed.size()) - 1, z);
    out.push_back(Sampler::argmax(z.data(), m.hp.n_vocab));
    feed = {out.back()};
  }
  return out;
}
TrainOptions on_policy_options(const Model* teacher, int64_t total, double rate, double temp) {
  TrainOptions o = options(total);
  o.opt.lr = 3e-3;
  o.teacher = teacher;
  o.kd.loss = DistillLoss::JSD;
  o.on_policy = rate;
  o.on_policy_prompt = 8;
  o.on_policy_temp = temp;
  return o;
}
}  // namespace

// On-policy distillation with λ = 1 and greedy generation: the record trained on is the data's
// first 8 tokens and then the student's own greedy continuation (before training and after two
// steps, from the refreshed weights), and the first step's loss is the JSD on exactly the
// generated rows of it against the teacher.
TEST(TrainerOnPolicy, GreedyTailIsTheStudentsOwnContinuation) {
  auto teacher = load_model(stories());
  auto student = stories_blocks(3);
  const Packed data = pack(pattern_tokens(33), 32, 0);
  ASSERT_EQ(data.train.size(), 1u);
  TrainOptions o = on_policy_options(teacher.get(), 3, 1.0, 0.0);
  o.accum = 1;
  Trainer t(*student, o, data);
  const std::vector<int32_t> gen = t.rollout(data.train[0], 0);
  EXPECT_EQ(gen, greedy_continuation(*student, data.train[0], 8));
  EXPECT_NE(gen, data.train[0]);
  // the first step's loss: JSD on rows 7..31 (those predicting a generated token)
  const int64_t n = 32, V = student->hp.n_vocab;
  std::vector<float> zs, zt;
  Session(*student, n).forward(gen.data(), n, 0, zs);
  Session(*teacher, n).forward(gen.data(), n, 0, zt);
  std::vector<uint8_t> mask(static_cast<size_t>(n), 0);
  for (int64_t r = 7; r < n; ++r) mask[size_t(r)] = 1;
  const double want = distill(o.kd, zs.data(), zt.data(), n, V, mask.data(), static_cast<float*>(nullptr));
  std::vector<StepLog> log;
  t.run(2, [&](const StepLog& s) { log.push_back(s); });
  EXPECT_NEAR(log[0].loss, want, 1e-3 * want);
  // after two steps: the student's new weights write the tail
  const std::vector<int32_t> later = t.rollout(data.train[0], 2);
  auto exported = stories_blocks(3);
  t.export_to(*exported);
  EXPECT_EQ(later, greedy_continuation(*exported, data.train[0], 8));
  const RolloutStats st = t.rollout_stats();
  EXPECT_EQ(st.sequences, 4);  // two by hand, one per step
  EXPECT_EQ(st.tokens, 4 * (33 - 8));
  EXPECT_GT(st.seconds, 0);
}

// λ = 0.5 at temperature 1: the same seed gives the same loss log, a checkpoint resumed mid-run
// continues it bit for bit, another seed draws other sequences; bad settings are refused.
TEST(TrainerOnPolicy, DeterministicAndResumesExactly) {
  auto teacher = load_model(stories());
  auto student = stories_blocks(3);
  const Packed data = pack(pattern_tokens(33 * 12), 32, 0.2);
  const TrainOptions o = on_policy_options(teacher.get(), 8, 0.5, 1.0);
  auto losses = [&](Trainer& t, int64_t until) {
    std::vector<double> l;
    t.run(until, [&](const StepLog& s) { l.push_back(s.loss); });
    return l;
  };
  Trainer a(*student, o, data), b(*student, o, data);
  const std::vector<double> full = losses(a, 8);
  EXPECT_EQ(losses(b, 8), full);
  const int64_t generated = a.rollout_stats().sequences;
  std::printf("on-policy sequences: %lld of 16\n", static_cast<long long>(generated));
  EXPECT_GT(generated, 0);
  EXPECT_LT(generated, 16);
  const std::string ckpt = temp_path("on-policy.ckpt");
  Trainer c(*student, o, data);
  losses(c, 3);
  c.save(ckpt);
  Trainer d(*student, o, data);
  d.resume(ckpt);
  const std::vector<double> tail = losses(d, 8);
  EXPECT_EQ(tail, std::vector<double>(full.begin() + 3, full.end()));
  EXPECT_EQ(d.weights().tok_embd, a.weights().tok_embd);
  std::filesystem::remove(ckpt);
  TrainOptions other = o;
  other.seed = 2;
  Trainer e(*student, other, data);
  EXPECT_NE(losses(e, 8), full);

  TrainOptions bad = o;
  bad.teacher = nullptr;
  EXPECT_THROW(Trainer(*student, bad, data), Error);  // no teacher
  for (double rate : {-0.1, 1.5, double(NAN)}) {
    bad = o;
    bad.on_policy = rate;
    EXPECT_THROW(Trainer(*student, bad, data), Error) << rate;
  }
  bad = o;
  bad.on_policy_prompt = 32;  // = seq: nothing left to generate
  EXPECT_THROW(Trainer(*student, bad, data), Error);
  bad.on_policy_prompt = 0;
  EXPECT_THROW(Trainer(*student, bad, data), Error);
}

// On-policy JSD (every sequence written by the student after 8 tokens of the data, sampled at
// temperature 1) from stories260K (five layers) into its first three blocks: the held-out JSD to
// the teacher on the data falls.
TEST(TrainerOnPolicy, JsdLowersHeldOutDivergence) {
  auto teacher = load_model(stories());
  auto student = stories_blocks(3);
  const Packed data = pack(pattern_tokens(33 * 8), 32, 0.25);
  TrainOptions o = on_policy_options(teacher.get(), 10, 1.0, 1.0);
  o.opt.lr = 1e-3;
  Trainer t(*student, o, data);
  const double before = t.heldout_parts().logit;
  t.run(10);
  const double after = t.heldout_parts().logit;
  std::printf("held-out JSD %.4f -> %.4f, %lld sequences generated in %.3f s\n", before, after,
              static_cast<long long>(t.rollout_stats().sequences), t.rollout_stats().seconds);
  EXPECT_EQ(t.rollout_stats().sequences, 20);
  EXPECT_LT(after, 0.75 * before);  // 0.139 -> 0.085 here
}
