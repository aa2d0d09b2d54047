#include "train/trainer.h"
#include "core/error.h"
#include "model/forward.h"
#include "train/ops.h"
#include <nlohmann/json.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>

namespace slimlm::train {

Packed pack(const std::vector<int32_t>& tokens, int64_t seq, double heldout) {
  if (seq < 2 || seq > (1 << 16)) fail("sequence length ", seq, " is out of range [2, 65536]");
  if (!(heldout >= 0 && heldout < 1)) fail("held-out fraction ", heldout, " is out of range [0, 1)");
  const int64_t count = int64_t(tokens.size()) / (seq + 1);
  if (count < 1) fail("the data (", tokens.size(), " tokens) is shorter than one sequence of ", seq + 1);
  const int64_t held = heldout > 0 ? std::max<int64_t>(1, int64_t(std::ceil(heldout * double(count)))) : 0;
  if (held >= count) fail("the data (", count, " sequences of ", seq + 1, ") leaves nothing to train on after the held-out split");
  Packed p;
  p.seq = seq;
  for (int64_t i = 0; i < count; ++i) {
    auto first = tokens.begin() + i * (seq + 1);
    (i < count - held ? p.train : p.heldout).emplace_back(first, first + seq + 1);
  }
  return p;
}

void check_same_vocabulary(const Model& teacher, const Model& student) {
  if (teacher.hp.n_vocab != student.hp.n_vocab)
    fail("teacher and student vocabularies differ (", teacher.hp.n_vocab, " vs ", student.hp.n_vocab, " tokens)");
}

void TrainOptions::validate() const {
  if (accum < 1 || accum > 4096) fail("gradient accumulation ", accum, " is out of range [1, 4096]");
  if (!(ce_weight >= 0 && ce_weight <= 1)) fail("cross-entropy weight ", ce_weight, " is out of range [0, 1]");
  opt.validate();
  if (teacher) kd.validate();
  state_kd.validate();
  if (state_kd.active() && !teacher) fail("feature and relation distillation need a teacher");
  check_on_policy(on_policy, on_policy_prompt, on_policy_temp, 0);
  if (on_policy > 0 && !teacher) fail("on-policy distillation needs a teacher");
}

Trainer::Trainer(const Model& m, const TrainOptions& o, Packed data)
    : m_(m), o_(o), data_(std::move(data)), opt_(o.opt) {
  o.validate();
  if (data_.train.empty()) fail("no training sequences");
  if (o.teacher) check_same_vocabulary(*o.teacher, m);
  plan_ = make_plan(m, KvType::F32, data_.seq);
  w_ = Weights<float>::from_model(m);
  if (o.lora) add_lora(w_, o.lora_opt);
  if (o.state_kd.active()) {
    tplan_ = make_plan(*o.teacher, KvType::F32, data_.seq);
    kdp_ = plan_state_kd(o.state_kd, m, plan_, *o.teacher, tplan_);
    add_projections(kdp_, w_);
    tw_ = Weights<float>::from_model(*o.teacher);
  }
  if (o.on_policy > 0) {
    check_on_policy(o.on_policy, o.on_policy_prompt, o.on_policy_temp, data_.seq);
    roll_ = std::make_unique<Rollout>(m, data_.seq, o.on_policy_prompt, o.on_policy_temp);
  }
  g_ = w_.zeros_like();
  w_.each_trainable([&](const std::string&, std::vector<float>& t) {  // AdamW's moments start at zero
    opt_.m().emplace_back(t.size(), 0.f);
    opt_.v().emplace_back(t.size(), 0.f);
  });
}

namespace {
// sum += x / count, part by part.
void add_parts(LossParts& sum, const LossParts& x, int64_t count) {
  const double c = double(count);
  sum.loss += x.loss / c;
  sum.logit += x.logit / c;
  sum.feature += x.feature / c;
  sum.relation += x.relation / c;
}
}  // namespace

const std::vector<int32_t>& Trainer::sequence(int64_t k) const {
  const int64_t n = int64_t(data_.train.size()), epoch = k / n;
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(o_.seed * 1000003ull + uint64_t(epoch));
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[size_t(i)], order[size_t(rng() % uint64_t(i + 1))]);
  return data_.train[size_t(order[size_t(k % n)])];
}

LogitLoss<float> Trainer::logit_mix(const std::vector<int32_t>& s, const std::vector<float>& zt,
                                    const uint8_t* mask) const {
  const double a = mask ? 0.0 : o_.ce_weight;
  return [this, a, &s, &zt, mask](const float* z, int64_t rows, int64_t V, float* dz) {
    std::vector<float> dkd, dce;
    if (dz) { dkd.assign(size_t(rows * V), 0.f); dce = dkd; }
    const double kd = distill(o_.kd, z, zt.data(), rows, V, mask, dz ? dkd.data() : nullptr);
    const double ce = a > 0 ? cross_entropy(z, s.data() + 1, rows, V, dz ? dce.data() : nullptr) : 0.0;
    if (dz)
      for (size_t i = 0; i < dkd.size(); ++i) dz[i] += float((1 - a) * dkd[i] + a * dce[i]);
    return (1 - a) * kd + a * ce;
  };
}

LossParts Trainer::sequence_loss(const std::vector<int32_t>& s, bool grad, const uint8_t* mask) {
  const int64_t n = data_.seq;
  Weights<float>* g = grad ? &g_ : nullptr;
  LossParts r;
  if (!o_.teacher) {
    r.loss = r.logit = loss_and_grad(m_, plan_, w_, s.data(), s.data() + 1, n, g);
    return r;
  }
  if (!o_.state_kd.active()) {  // the teacher's logits from the inference runtime
    Session teach(*o_.teacher, n);
    std::vector<float> zt;
    teach.forward(s.data(), n, 0, zt);
    r.loss = r.logit = loss_and_grad(m_, plan_, w_, s.data(), n, logit_mix(s, zt, mask), g);
    return r;
  }
  // its logits and states from the engine's forward pass
  const States<float> ts = forward_states(*o_.teacher, tplan_, tw_, s.data(), n, kdp_.want_teacher);
  StateKdParts parts;
  const LogitLoss<float> mix = logit_mix(s, ts.logits, mask);
  double logit = 0;
  const LogitLoss<float> kept = [&](const float* z, int64_t rows, int64_t V, float* dz) {
    return logit = mix(z, rows, V, dz);
  };
  r.loss = loss_and_grad(m_, plan_, w_, s.data(), n, kept, state_kd_loss(kdp_, ts, w_, g, &parts), g);
  r.logit = logit;
  r.feature = parts.feature;
  r.relation = parts.relation;
  return r;
}

std::vector<int32_t> Trainer::rollout(const std::vector<int32_t>& s, int64_t k) {
  if (!roll_) fail("internal: on-policy generation is off");
  return roll_->generate(w_, opt_.steps_done(), s, draw_on_policy(o_.on_policy, o_.seed, k).sampler_seed);
}

LossParts Trainer::train_sequence(int64_t k) {
  const std::vector<int32_t>& s = sequence(k);
  if (!roll_ || !draw_on_policy(o_.on_policy, o_.seed, k).generated) return sequence_loss(s, true);
  return sequence_loss(rollout(s, k), true, roll_->mask().data());
}

void Trainer::run(int64_t until, const std::function<void(const StepLog&)>& log) {
  while (opt_.steps_done() < until) {
    const int64_t step = opt_.steps_done();
    g_.each([](const std::string&, std::vector<float>& t) {
      float* p = t.data();
      const int64_t n = int64_t(t.size());
#pragma omp parallel for schedule(static) if (n > 65536)
      for (int64_t i = 0; i < n; ++i) p[i] = 0.f;
    });
    LossParts sum;
    for (int64_t j = 0; j < o_.accum; ++j) add_parts(sum, train_sequence(step * o_.accum + j), o_.accum);
    const double loss = sum.loss;
    if (o_.accum > 1)
      g_.each([&](const std::string&, std::vector<float>& t) {
        for (float& x : t) x /= float(o_.accum);
      });
    const double norm = clip_grad_norm(g_, o_.opt.clip);
    if (!std::isfinite(loss) || !std::isfinite(norm))
      fail("step ", step + 1, ": the ", std::isfinite(loss) ? "gradient" : "loss", " is not finite; stopped before "
           "updating the weights (the last checkpoint written is the last good one)");
    const double lr = opt_.step(w_, g_);
    if (log) log({step + 1, loss, lr, norm, sum});
  }
}

void Trainer::export_to(Model& m) {
  Weights<float> w = w_;
  merge_lora(w);
  store_weights(w, m);
}

LossParts Trainer::heldout_parts() {
  if (data_.heldout.empty()) fail("no held-out sequences");
  LossParts sum;
  for (const auto& s : data_.heldout) add_parts(sum, sequence_loss(s, false), int64_t(data_.heldout.size()));
  return sum;
}

namespace {
constexpr char kMagic[8] = {'S', 'L', 'M', 'C', 'K', 'P', 'T', '1'};

nlohmann::json shape_of(const Model& m, Weights<float>& w) {
  nlohmann::json t = nlohmann::json::array();
  w.each_trainable([&](const std::string& name, std::vector<float>& v) { t.push_back({name, v.size()}); });
  return {{"arch", m.hp.arch}, {"n_vocab", m.hp.n_vocab}, {"n_embd", m.hp.n_embd}, {"n_layer", m.hp.n_layer},
          {"tensors", t}};
}
}  // namespace

void Trainer::save(const std::string& path) {
  const nlohmann::json head = {{"shape", shape_of(m_, w_)}, {"step", opt_.steps_done()}, {"seed", o_.seed}};
  const std::string h = head.dump(), tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) fail("cannot write ", tmp);
    const uint64_t len = h.size();
    f.write(kMagic, 8);
    f.write(reinterpret_cast<const char*>(&len), 8);
    f.write(h.data(), std::streamsize(len));
    size_t i = 0;
    w_.each_trainable([&](const std::string&, std::vector<float>& t) {
      for (const std::vector<float>* v : {&t, &opt_.m()[i], &opt_.v()[i]})
        f.write(reinterpret_cast<const char*>(v->data()), std::streamsize(v->size() * sizeof(float)));
      ++i;
    });
    if (!f.flush()) fail("cannot write ", tmp);
  }
  std::filesystem::rename(tmp, path);
}

void Trainer::resume(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char magic[8] = {};
  uint64_t len = 0;
  if (!f || !f.read(magic, 8) || std::memcmp(magic, kMagic, 8) != 0 || !f.read(reinterpret_cast<char*>(&len), 8) ||
      len > (1u << 26))
    fail(path, " is not a slimlm training checkpoint");
  std::string h(len, '\0');
  if (!f.read(h.data(), std::streamsize(len))) fail(path, " is truncated");
  const nlohmann::json head = nlohmann::json::parse(h, nullptr, false);
  if (head.is_discarded() || !head.contains("shape") || !head.contains("step")) fail(path, " has a damaged header");
  if (head["shape"] != shape_of(m_, w_)) fail("checkpoint ", path, " is for another model or shape");
  size_t i = 0;
  w_.each_trainable([&](const std::string&, std::vector<float>& t) {
    for (std::vector<float>* v : {&t, &opt_.m()[i], &opt_.v()[i]})
      if (!f.read(reinterpret_cast<char*>(v->data()), std::streamsize(v->size() * sizeof(float))))
        fail(path, " is truncated");
    ++i;
  });
  opt_.set_steps_done(head["step"].get<int64_t>());
}

}  // namespace slimlm::train
