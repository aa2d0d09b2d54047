#include "train/state_kd.h"
#include "core/error.h"
#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>

namespace slimlm::train {

int64_t uniform_teacher_layer(int64_t i, int64_t Ls, int64_t Lt) {
  const int64_t t = ((i + 1) * Lt * 2 + Ls) / (2 * Ls) - 1;  // round((i+1)·Lt/Ls) − 1, halves up
  return std::clamp<int64_t>(t, 0, Lt - 1);
}

namespace {
int64_t layer_number(const std::string& s, const std::string& spec) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < 0)
    fail("layer list '", spec, "': '", s, "' is not a layer number");
  return v;
}
}  // namespace

std::vector<LayerPair> parse_layer_pairs(const std::string& spec) {
  std::vector<LayerPair> out;
  if (spec.empty()) return out;
  for (size_t a = 0; a <= spec.size();) {
    const size_t b = std::min(spec.find(',', a), spec.size());
    const std::string item = spec.substr(a, b - a);
    const size_t c = item.find(':');
    if (c == std::string::npos) out.push_back({layer_number(item, spec), -1});
    else out.push_back({layer_number(item.substr(0, c), spec), layer_number(item.substr(c + 1), spec)});
    a = b + 1;
  }
  return out;
}

void StateKdOptions::validate() const {
  for (const auto& [name, v] : {std::pair{"feature", feature_weight}, std::pair{"relation", relation_weight}})
    if (!(v >= 0 && v <= 1e6)) fail(name, " distillation weight ", v, " is out of range [0, 1e6]");
  if (relation_heads < 0 || relation_heads > 4096) fail("relation heads ", relation_heads, " is out of range [0, 4096]");
}

namespace {
// Pairs mapped and range-checked; each student layer at most once.
std::vector<LayerPair> resolve(std::vector<LayerPair> pairs, int64_t Ls, int64_t Lt, const char* what) {
  std::vector<uint8_t> seen(size_t(Ls), 0);
  for (LayerPair& p : pairs) {
    if (p.student < 0 || p.student >= Ls)
      fail(what, " layer ", p.student, " is out of range: the student has ", Ls, " layers (0..", Ls - 1, ")");
    if (p.teacher < 0) p.teacher = uniform_teacher_layer(p.student, Ls, Lt);
    if (p.teacher >= Lt)
      fail(what, " teacher layer ", p.teacher, " is out of range: the teacher has ", Lt, " layers (0..", Lt - 1, ")");
    if (seen[size_t(p.student)]++) fail(what, " layers name student layer ", p.student, " twice");
  }
  return pairs;
}

int64_t relation_heads(const StateKdOptions& o, const std::vector<LayerPair>& pairs, const std::vector<LayerPlan>& ps,
                       const std::vector<LayerPlan>& pt) {
  int64_t R = o.relation_heads;
  if (R == 0)
    for (const LayerPair& p : pairs)
      R = std::gcd(R, std::gcd(ps[size_t(p.student)].n_head_kv, pt[size_t(p.teacher)].n_head_kv));
  for (const LayerPair& p : pairs)
    for (const int64_t w : {ps[size_t(p.student)].q_width, ps[size_t(p.student)].kv_width,
                            pt[size_t(p.teacher)].q_width, pt[size_t(p.teacher)].kv_width})
      if (w % R != 0)
        fail(R, " relation heads do not divide width ", w, " of relation layers ", p.student, ":", p.teacher);
  return R;
}

// The states both models must expose for these pairs.
void mark(StateKdPlan& p, const std::vector<LayerPair>& pairs, StateKind kind) {
  for (const LayerPair& q : pairs) {
    p.want_student[size_t(q.student)] |= kind;
    p.want_teacher[size_t(q.teacher)] |= kind;
  }
}
}  // namespace

StateKdPlan plan_state_kd(const StateKdOptions& o, const Model& student, const std::vector<LayerPlan>& ps,
                          const Model& teacher, const std::vector<LayerPlan>& pt) {
  o.validate();
  const int64_t Ls = int64_t(ps.size()), Lt = int64_t(pt.size());
  StateKdPlan p;
  p.alpha = o.feature_weight;
  p.beta = o.relation_weight;
  p.student_width = student.hp.n_embd;
  p.teacher_width = teacher.hp.n_embd;
  p.projection = o.projection || p.student_width != p.teacher_width;
  p.want_student.assign(size_t(Ls), 0);
  p.want_teacher.assign(size_t(Lt), 0);
  if (p.alpha > 0) {
    std::vector<LayerPair> f = o.feature_layers;
    if (f.empty())
      for (int64_t i = 0; i < Ls; ++i) f.push_back({i, -1});
    p.feature = resolve(f, Ls, Lt, "feature");
    mark(p, p.feature, kHiddenState);
  }
  if (p.beta > 0) {
    p.relation = resolve(o.relation_layers.empty() ? std::vector<LayerPair>{{Ls - 1, Lt - 1}} : o.relation_layers, Ls, Lt,
                         "relation");
    p.relation_heads = relation_heads(o, p.relation, ps, pt);
    mark(p, p.relation, kQkvState);
  }
  return p;
}

std::string projection_name(const LayerPair& p) { return "kd.feature_proj." + std::to_string(p.student); }

template <class T> void add_projections(const StateKdPlan& p, Weights<T>& w) {
  if (!p.projection) return;
  const int64_t Es = p.student_width, Et = p.teacher_width;
  for (const LayerPair& q : p.feature) {
    std::vector<T> P(static_cast<size_t>(Et * Es), T(0));
    for (int64_t i = 0; i < std::min(Es, Et); ++i) P[size_t(i * Es + i)] = T(1);
    w.aux.emplace_back(projection_name(q), std::move(P));
  }
}

template <class T> double feature_mse(const T* hs, int64_t Es, const T* ht, int64_t Et, int64_t n, const T* P,
                                      double scale, T* dhs, T* dP) {
  if (!P && Es != Et) fail("feature distillation between widths ", Es, " and ", Et, " needs a projection");
  const double inv = 1.0 / double(n * Et);
  double loss = 0;
  std::vector<double> e(static_cast<size_t>(Et));
  for (int64_t t = 0; t < n; ++t) {
    const T* x = hs + t * Es;
    for (int64_t i = 0; i < Et; ++i) {
      double y = 0;
      if (P) for (int64_t j = 0; j < Es; ++j) y += double(P[i * Es + j]) * double(x[j]);
      else y = double(x[i]);
      e[size_t(i)] = y - double(ht[t * Et + i]);
      loss += e[size_t(i)] * e[size_t(i)];
    }
    for (int64_t i = 0; i < Et; ++i) {
      const double g = 2 * e[size_t(i)] * inv * scale;  // d/dy
      if (!P) { if (dhs) dhs[t * Es + i] += T(g); continue; }
      for (int64_t j = 0; j < Es; ++j) {
        if (dhs) dhs[t * Es + j] += T(g * double(P[i * Es + j]));
        if (dP) dP[i * Es + j] += T(g * double(x[j]));
      }
    }
  }
  return loss * inv;
}

namespace {
// Row t of one relation head: log-softmax over j ≤ t of x_t·x_j / √d (x: head columns c0..c0+d
// of rows of width w).
template <class T> void relation_row(const T* x, int64_t w, int64_t c0, int64_t d, int64_t t, std::vector<double>& lp) {
  const double s = 1.0 / std::sqrt(double(d));
  const T* xt = x + t * w + c0;
  double mx = -INFINITY;
  for (int64_t j = 0; j <= t; ++j) {
    const T* xj = x + j * w + c0;
    double dot = 0;
    for (int64_t c = 0; c < d; ++c) dot += double(xt[c]) * double(xj[c]);
    lp[size_t(j)] = dot * s;
    mx = std::max(mx, lp[size_t(j)]);
  }
  double z = 0;
  for (int64_t j = 0; j <= t; ++j) z += std::exp(lp[size_t(j)] - mx);
  const double lz = mx + std::log(z);
  for (int64_t j = 0; j <= t; ++j) lp[size_t(j)] -= lz;
}
}  // namespace

template <class T> double relation_kl(const T* xs, int64_t ws, const T* xt, int64_t wt, int64_t n, int64_t R,
                                      double scale, T* dxs) {
  if (R < 1 || ws % R != 0 || wt % R != 0) fail(R, " relation heads do not divide widths ", ws, " and ", wt);
  const int64_t ds = ws / R, dt = wt / R;
  const double inv = 1.0 / double(R * n), s = 1.0 / std::sqrt(double(ds));
  std::vector<double> ls(static_cast<size_t>(n)), lt(static_cast<size_t>(n));
  double loss = 0;
  for (int64_t r = 0; r < R; ++r)
    for (int64_t t = 0; t < n; ++t) {
      relation_row(xs, ws, r * ds, ds, t, ls);
      relation_row(xt, wt, r * dt, dt, t, lt);
      for (int64_t j = 0; j <= t; ++j) loss += std::exp(lt[size_t(j)]) * (lt[size_t(j)] - ls[size_t(j)]);
      if (!dxs) continue;
      T* gt = dxs + t * ws + r * ds;
      const T* at = xs + t * ws + r * ds;
      for (int64_t j = 0; j <= t; ++j) {  // dKL/dscore_tj = p_s − p_t; score_tj = x_t·x_j·s
        const double g = (std::exp(ls[size_t(j)]) - std::exp(lt[size_t(j)])) * inv * scale * s;
        T* gj = dxs + j * ws + r * ds;
        const T* aj = xs + j * ws + r * ds;
        for (int64_t c = 0; c < ds; ++c) {
          gt[c] += T(g * double(aj[c]));
          gj[c] += T(g * double(at[c]));
        }
      }
    }
  return loss * inv;
}

namespace {
// The aux tensor named name (const or not, as aux is).
template <class Aux> auto& find_aux(Aux& aux, const std::string& name) {
  for (auto& kv : aux)
    if (kv.first == name) return kv.second;
  fail("the weights have no ", name, " (add_projections first)");
}

template <class T> double feature_part(const StateKdPlan& p, const States<T>& teacher, const Weights<T>& w,
                                       Weights<T>* grad, const States<T>& s, States<T>* ds) {
  double sum = 0;
  const double scale = p.alpha / double(p.feature.size());
  for (const LayerPair& q : p.feature) {
    const std::vector<T>& hs = s.layers[size_t(q.student)].h;
    const std::vector<T>& ht = teacher.layers[size_t(q.teacher)].h;
    const int64_t n = s.n;
    if (teacher.n != n || int64_t(ht.size()) != n * p.teacher_width) fail("the teacher's states are for another sequence");
    const T* P = nullptr;
    T* dP = nullptr;
    if (p.projection) {
      P = find_aux(w.aux, projection_name(q)).data();
      if (ds && grad) dP = find_aux(grad->aux, projection_name(q)).data();
    }
    T* dh = ds ? ds->layers[size_t(q.student)].h.data() : nullptr;
    sum += feature_mse(hs.data(), p.student_width, ht.data(), p.teacher_width, n, P, scale, dh, dP);
  }
  return sum / double(p.feature.size());
}

template <class T> double relation_part(const StateKdPlan& p, const States<T>& teacher, const States<T>& s,
                                        States<T>* ds) {
  if (teacher.n != s.n) fail("the teacher's states are for another sequence");
  double sum = 0;
  const double scale = p.beta / double(p.relation.size());
  for (const LayerPair& q : p.relation) {
    const auto& a = s.layers[size_t(q.student)];
    const auto& b = teacher.layers[size_t(q.teacher)];
    auto* d = ds ? &ds->layers[size_t(q.student)] : nullptr;
    const std::vector<T>* xs[3] = {&a.q, &a.k, &a.v};
    const std::vector<T>* xt[3] = {&b.q, &b.k, &b.v};
    std::vector<T>* dx[3] = {d ? &d->q : nullptr, d ? &d->k : nullptr, d ? &d->v : nullptr};
    for (int i = 0; i < 3; ++i)
      sum += relation_kl(xs[i]->data(), int64_t(xs[i]->size()) / s.n, xt[i]->data(), int64_t(xt[i]->size()) / s.n, s.n,
                         p.relation_heads, scale, dx[i] ? dx[i]->data() : nullptr);
  }
  return sum / double(p.relation.size());
}
}  // namespace

template <class T> StateLoss<T> state_kd_loss(const StateKdPlan& plan, const States<T>& teacher, const Weights<T>& w,
                                              Weights<T>* grad, StateKdParts* parts) {
  StateLoss<T> l;
  l.want = plan.want_student;
  l.fn = [&plan, &teacher, &w, grad, parts](const States<T>& s, States<T>* ds) {
    StateKdParts r;
    if (plan.alpha > 0) r.feature = feature_part(plan, teacher, w, grad, s, ds);
    if (plan.beta > 0) r.relation = relation_part(plan, teacher, s, ds);
    if (parts) *parts = r;
    return plan.alpha * r.feature + plan.beta * r.relation;
  };
  return l;
}

#define SLIMLM_STATE_KD(T)                                                                                         \
  template void add_projections<T>(const StateKdPlan&, Weights<T>&);                                              \
  template StateLoss<T> state_kd_loss<T>(const StateKdPlan&, const States<T>&, const Weights<T>&, Weights<T>*,     \
                                         StateKdParts*);                                                           \
  template double feature_mse<T>(const T*, int64_t, const T*, int64_t, int64_t, const T*, double, T*, T*);          \
  template double relation_kl<T>(const T*, int64_t, const T*, int64_t, int64_t, int64_t, double, T*);
SLIMLM_STATE_KD(float)
SLIMLM_STATE_KD(double)
#undef SLIMLM_STATE_KD

}  // namespace slimlm::train
