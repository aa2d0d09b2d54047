// Structured pruning: the surgery (slicing heads, neurons, blocks out of a Model), calibration
// statistics, magnitude / activation scores, uniform per-layer plans and block selection.
//  - Block influence, ShortGPT (Men et al. 2024, eq. 1): BI_l = 1 − E_t[cos(x_l,t, x_{l+1},t)];
//    the n blocks with the lowest BI are removed.
//  - Span pruning, Gromov et al. 2024 ("The Unreasonable Ineffectiveness of the Deeper Layers",
//    eq. 7): l* = argmin_l E_t[arccos(cos(x_l,t, x_{l+n},t)) / π]; blocks l*..l*+n−1 are removed.
//  - Activation score of an input channel j of o / down: ‖W[:, j]‖² · E[x_j²] (the structured
//    form of Wanda's |W|·‖X‖, Sun et al. 2023).
#include "prune/structured.h"
#include "core/error.h"
#include "kernels/qdot.h"
#include "model/forward.h"
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace slimlm::prune {

std::vector<HeadUnit> head_units(const HParams& hp, int64_t l) {
  const int64_t H = hp.n_head_at(l), HKV = hp.n_head_kv_at(l), G = H / HKV;
  std::vector<HeadUnit> u;
  if (HKV > 1) {
    for (int64_t g = 0; g < HKV; ++g) {
      HeadUnit x;
      x.kv = g;
      for (int64_t h = g * G; h < (g + 1) * G; ++h) x.q.push_back(h);
      u.push_back(std::move(x));
    }
  } else {
    for (int64_t h = 0; h < H; ++h) u.push_back(HeadUnit{{h}, -1});
  }
  return u;
}

int64_t head_unit_params(const HParams& hp, const HeadUnit& u) {
  const int64_t per = hp.head_dim * hp.n_embd;
  return per * (2 * int64_t(u.q.size()) + (u.kv >= 0 ? 2 : 0));  // q rows + o columns (+ k, v rows)
}

int64_t neuron_params(const HParams& hp) { return 3 * hp.n_embd; }

std::vector<LayerKeep> keep_all(const Model& m) {
  std::vector<LayerKeep> keep(size_t(m.hp.n_layer));
  for (int64_t l = 0; l < m.hp.n_layer; ++l) {
    LayerKeep& k = keep[size_t(l)];
    k.q_heads.resize(size_t(m.hp.n_head_at(l)));
    k.kv_heads.resize(size_t(m.hp.n_head_kv_at(l)));
    k.neurons.resize(size_t(m.hp.n_ff_at(l)));
    std::iota(k.q_heads.begin(), k.q_heads.end(), 0);
    std::iota(k.kv_heads.begin(), k.kv_heads.end(), 0);
    std::iota(k.neurons.begin(), k.neurons.end(), 0);
  }
  return keep;
}

int64_t block_linear_params(const Model& m) {
  int64_t n = 0;
  for (const Block& b : m.blocks)
    for (const Tensor* t : b.linears()) n += t->nelements();
  return n;
}

namespace {

// Rows `rows` of t, bytes copied (any row-wise storage type stays as it is).
Tensor take_rows(const Tensor& t, const std::vector<int64_t>& rows) {
  if (t.empty()) return t;
  if (t.ne.size() == 1) {  // a vector (bias): its elements are the "rows"
    const std::vector<float> f = t.to_f32();
    std::vector<float> g;
    for (int64_t r : rows) g.push_back(f[size_t(r)]);
    return Tensor::from_f32(t.name, {int64_t(rows.size())}, g.data());
  }
  if (t.outliers) {  // dense-and-sparse weights: the rows of the sum, in f32
    const std::vector<float> f = t.to_f32();
    std::vector<float> g;
    for (int64_t r : rows) g.insert(g.end(), f.begin() + r * t.cols(), f.begin() + (r + 1) * t.cols());
    return Tensor::from_f32(t.name, {t.cols(), int64_t(rows.size())}, g.data());
  }
  const size_t rb = row_bytes(t.type, t.cols());
  auto buf = std::make_shared<std::vector<uint8_t>>(rb * rows.size());
  for (size_t i = 0; i < rows.size(); ++i) std::memcpy(buf->data() + i * rb, t.row(rows[i]), rb);
  Tensor o;
  o.name = t.name;
  o.type = t.type;
  o.ne = {t.cols(), int64_t(rows.size())};
  o.data = buf->data();
  o.nbytes = buf->size();
  o.keep = buf;
  return o;
}

// Columns `cols` of t (dequantized; the result is f32).
Tensor take_cols(const Tensor& t, const std::vector<int64_t>& cols) {
  const std::vector<float> f = t.to_f32();
  const int64_t R = t.rows(), C = t.cols(), K = int64_t(cols.size());
  std::vector<float> g(size_t(R * K));
  for (int64_t r = 0; r < R; ++r)
    for (int64_t j = 0; j < K; ++j) g[size_t(r * K + j)] = f[size_t(r * C + cols[size_t(j)])];
  return Tensor::from_f32(t.name, {K, R}, g.data());
}

// Row indices of heads `heads` (head_dim rows each).
std::vector<int64_t> head_rows(const std::vector<int64_t>& heads, int64_t D) {
  std::vector<int64_t> r;
  for (int64_t h : heads)
    for (int64_t i = 0; i < D; ++i) r.push_back(h * D + i);
  return r;
}

void add_bias(Tensor& b, const std::vector<float>& add, int64_t E, const std::string& name) {
  if (add.empty()) return;
  if (int64_t(add.size()) != E) fail(name, ": bias of ", add.size(), " values for width ", E);
  std::vector<float> v = b.empty() ? std::vector<float>(size_t(E), 0.f) : b.to_f32();
  for (int64_t i = 0; i < E; ++i) v[size_t(i)] += add[size_t(i)];
  b = Tensor::from_f32(name, {E}, v.data());
}

bool ascending_unique(const std::vector<int64_t>& v, int64_t limit) {
  for (size_t i = 0; i < v.size(); ++i)
    if (v[i] < 0 || v[i] >= limit || (i > 0 && v[i] <= v[i - 1])) return false;
  return true;
}

}  // namespace

void apply_keep(Model& m, const std::vector<LayerKeep>& keep) {
  HParams& hp = m.hp;
  if (int64_t(keep.size()) != hp.n_layer) fail("pruning plan has ", keep.size(), " layers, the model ", hp.n_layer);
  const int64_t D = hp.head_dim, E = hp.n_embd;
  std::vector<int64_t> heads, heads_kv, ff;
  for (int64_t l = 0; l < hp.n_layer; ++l) {
    const LayerKeep& k = keep[size_t(l)];
    const int64_t H = hp.n_head_at(l), HKV = hp.n_head_kv_at(l), F = hp.n_ff_at(l), G = H / HKV;
    if (k.q_heads.empty() || k.kv_heads.empty()) fail("layer ", l, ": pruning would remove every attention head");
    if (k.neurons.empty()) fail("layer ", l, ": pruning would remove every FFN neuron");
    if (!ascending_unique(k.q_heads, H) || !ascending_unique(k.kv_heads, HKV) || !ascending_unique(k.neurons, F))
      fail("layer ", l, ": kept heads / neurons must be distinct, ascending and in range");
    const int64_t nq = int64_t(k.q_heads.size()), nkv = int64_t(k.kv_heads.size());
    if (nq % nkv != 0) fail("layer ", l, ": ", nq, " query heads cannot share ", nkv, " KV heads evenly");
    for (int64_t i = 0; i < nq; ++i)  // query head i of the new layer reads KV head i / (nq / nkv)
      if (k.q_heads[size_t(i)] / G != k.kv_heads[size_t(i / (nq / nkv))])
        fail("layer ", l, ": kept query head ", k.q_heads[size_t(i)], " does not belong to its kept KV group");
    Block& b = m.blocks[size_t(l)];
    const std::vector<int64_t> qr = head_rows(k.q_heads, D), kvr = head_rows(k.kv_heads, D);
    if (nq != H) { b.wq = take_rows(b.wq, qr); b.bq = take_rows(b.bq, qr); b.wo = take_cols(b.wo, qr); }
    if (nkv != HKV) { b.wk = take_rows(b.wk, kvr); b.wv = take_rows(b.wv, kvr); b.bk = take_rows(b.bk, kvr); b.bv = take_rows(b.bv, kvr); }
    if (int64_t(k.neurons.size()) != F) {
      b.w_gate = take_rows(b.w_gate, k.neurons);
      b.w_up = take_rows(b.w_up, k.neurons);
      b.w_down = take_cols(b.w_down, k.neurons);
    }
    add_bias(b.bo, k.bo, E, cat("blk.", l, ".attn_output.bias"));
    add_bias(b.b_down, k.b_down, E, cat("blk.", l, ".ffn_down.bias"));
    heads.push_back(nq);
    heads_kv.push_back(nkv);
    ff.push_back(int64_t(k.neurons.size()));
  }
  hp.set_layer_shapes(heads, heads_kv, ff);
}

void drop_blocks(Model& m, std::vector<int64_t> remove) {
  HParams& hp = m.hp;
  std::sort(remove.begin(), remove.end());
  remove.erase(std::unique(remove.begin(), remove.end()), remove.end());
  for (int64_t l : remove)
    if (l < 0 || l >= hp.n_layer) fail("no block ", l, " to remove (the model has ", hp.n_layer, ")");
  if (int64_t(remove.size()) >= hp.n_layer) fail("pruning would remove every block");
  std::vector<Block> blocks;
  std::vector<int64_t> heads, heads_kv, ff;
  std::vector<uint8_t> swa;
  for (int64_t l = 0; l < hp.n_layer; ++l) {
    if (std::binary_search(remove.begin(), remove.end(), l)) continue;
    blocks.push_back(std::move(m.blocks[size_t(l)]));
    heads.push_back(hp.n_head_at(l));
    heads_kv.push_back(hp.n_head_kv_at(l));
    ff.push_back(hp.n_ff_at(l));
    if (!hp.swa_layer.empty()) swa.push_back(hp.swa_layer[size_t(l)]);
  }
  m.blocks = std::move(blocks);
  hp.n_layer = int64_t(m.blocks.size());
  if (!hp.swa_layer.empty()) hp.swa_layer = std::move(swa);
  hp.head_l.clear(); hp.head_kv_l.clear(); hp.ff_l.clear();
  hp.set_layer_shapes(heads, heads_kv, ff);
}

namespace {
double cosine(const float* a, const float* b, int64_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (int64_t i = 0; i < n; ++i) { ab += double(a[i]) * b[i]; aa += double(a[i]) * a[i]; bb += double(b[i]) * b[i]; }
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 1.0;
}
}  // namespace

CalibStats calibrate(const Model& m, const std::vector<std::vector<int32_t>>& calib, int64_t span) {
  const HParams& hp = m.hp;
  const int64_t L = hp.n_layer, E = hp.n_embd;
  if (calib.empty()) fail("calibration needs at least one sequence");
  if (span < 1 || span > L) fail("block span ", span, " does not fit ", L, " blocks");
  CalibStats st;
  st.span = span;
  st.cos1.assign(size_t(L), 0.0);
  st.ang_span.assign(size_t(L - span + 1), 0.0);
  int64_t len = 0, total = 0;
  for (const auto& s : calib) { len = std::max<int64_t>(len, int64_t(s.size())); total += int64_t(s.size()); }
  Session sess(m, len);
  const kernels::ExactScope exact(true);
  // The pipeline's statistics of every layer at once (per-channel sums, no XᵀX or sample rows);
  // each sequence runs through all blocks, so the residual streams for the cosines stay at hand.
  quant::StatsCollector collect(sess, quant::Wants{}, total);
  for (int64_t l = 0; l < L; ++l) collect.begin(l);
  std::vector<float> xs;
  for (const auto& seq : calib) {
    const int64_t n = int64_t(seq.size());
    xs.assign(size_t((L + 1) * n * E), 0.f);  // residual stream before each block and after the last
    embed_tokens(m, seq.data(), n, xs.data());
    for (int64_t l = 0; l < L; ++l) {
      float* next = xs.data() + (l + 1) * n * E;
      std::copy(xs.data() + l * n * E, xs.data() + (l + 1) * n * E, next);
      sess.run_block(l, next, n);
    }
    auto at = [&](int64_t l, int64_t t) { return xs.data() + (l * n + t) * E; };
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t l = 0; l < L; ++l) st.cos1[size_t(l)] += cosine(at(l, t), at(l + 1, t), E);
      for (int64_t l = 0; l + span <= L; ++l)
        st.ang_span[size_t(l)] += std::acos(std::clamp(cosine(at(l, t), at(l + span, t), E), -1.0, 1.0)) / M_PI;
    }
    st.tokens += n;
  }
  for (int64_t l = 0; l < L; ++l) {
    quant::BlockStats b = collect.finish(l);
    st.attn_out.push_back(std::move(b[size_t(LinearSite::AttnOut)]));
    st.ffn_down.push_back(std::move(b[size_t(LinearSite::FfnDown)]));
  }
  for (auto& c : st.cos1) c /= double(st.tokens);
  for (auto& a : st.ang_span) a /= double(st.tokens);
  return st;
}

namespace {
// Squared norms of the columns (or rows) of t.
std::vector<double> sq_norms(const Tensor& t, bool cols) {
  const std::vector<float> f = t.to_f32();
  std::vector<double> out(size_t(cols ? t.cols() : t.rows()), 0.0);
  for (int64_t r = 0; r < t.rows(); ++r)
    for (int64_t j = 0; j < t.cols(); ++j) {
      const double v = f[size_t(r * t.cols() + j)];
      out[size_t(cols ? j : r)] += v * v;
    }
  return out;
}
std::vector<double> col_sq(const Tensor& t) { return sq_norms(t, true); }
std::vector<double> row_sq(const Tensor& t) { return sq_norms(t, false); }
// Per-channel weight of an output projection's input channel j under score s.
double channel_score(Score s, const std::vector<double>& wcol, const quant::SiteStats* st, int64_t j) {
  switch (s) {
    case Score::Magnitude: return wcol[size_t(j)];
    case Score::Activation: return wcol[size_t(j)] * st->sum_sq[size_t(j)] / double(std::max<int64_t>(1, st->count));
    case Score::Fluctuation: return wcol[size_t(j)] * st->variance(j);
  }
  return 0;
}
void need_stats(const CalibStats* st, Score s) {
  if (s != Score::Magnitude && !st) fail("activation-based scores need calibration statistics");
}
}  // namespace

std::vector<std::vector<double>> head_scores(const Model& m, const CalibStats* st, Score s) {
  need_stats(st, s);
  const int64_t D = m.hp.head_dim;
  std::vector<std::vector<double>> out;
  for (int64_t l = 0; l < m.hp.n_layer; ++l) {
    const Block& b = m.blocks[size_t(l)];
    const std::vector<double> wo = col_sq(b.wo);
    std::vector<double> q, k, v;
    if (s == Score::Magnitude) { q = row_sq(b.wq); k = row_sq(b.wk); v = row_sq(b.wv); }
    std::vector<double> sc;
    for (const HeadUnit& u : head_units(m.hp, l)) {
      double x = 0;
      for (int64_t h : u.q)
        for (int64_t i = h * D; i < (h + 1) * D; ++i) {
          x += channel_score(s, wo, st ? &st->attn_out[size_t(l)] : nullptr, i);
          if (s == Score::Magnitude) x += q[size_t(i)];
        }
      if (s == Score::Magnitude && u.kv >= 0)
        for (int64_t i = u.kv * D; i < (u.kv + 1) * D; ++i) x += k[size_t(i)] + v[size_t(i)];
      sc.push_back(x);
    }
    out.push_back(std::move(sc));
  }
  return out;
}

std::vector<std::vector<double>> neuron_scores(const Model& m, const CalibStats* st, Score s) {
  need_stats(st, s);
  std::vector<std::vector<double>> out;
  for (int64_t l = 0; l < m.hp.n_layer; ++l) {
    const Block& b = m.blocks[size_t(l)];
    const std::vector<double> wd = col_sq(b.w_down);
    std::vector<double> g, u;
    if (s == Score::Magnitude) { g = row_sq(b.w_gate); u = row_sq(b.w_up); }
    std::vector<double> sc(size_t(m.hp.n_ff_at(l)));
    for (int64_t j = 0; j < m.hp.n_ff_at(l); ++j)
      sc[size_t(j)] = channel_score(s, wd, st ? &st->ffn_down[size_t(l)] : nullptr, j) +
                      (s == Score::Magnitude ? g[size_t(j)] + u[size_t(j)] : 0.0);
    out.push_back(std::move(sc));
  }
  return out;
}

// Indices of the `r` lowest scores (ties: lower index first), ascending.
std::vector<int64_t> lowest(const std::vector<double>& sc, int64_t r) {
  std::vector<int64_t> idx(sc.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return sc[size_t(a)] < sc[size_t(b)]; });
  idx.resize(size_t(r));
  std::sort(idx.begin(), idx.end());
  return idx;
}
std::vector<int64_t> complement(const std::vector<int64_t>& removed, int64_t n) {
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < n; ++i)
    if (!std::binary_search(removed.begin(), removed.end(), i)) keep.push_back(i);
  return keep;
}

void keep_heads_except(const HParams& hp, int64_t l, const std::vector<int64_t>& removed_units, LayerKeep& k) {
  const std::vector<HeadUnit> units = head_units(hp, l);
  k.q_heads.clear();
  k.kv_heads.clear();
  for (int64_t u = 0; u < int64_t(units.size()); ++u) {
    if (std::binary_search(removed_units.begin(), removed_units.end(), u)) continue;
    k.q_heads.insert(k.q_heads.end(), units[size_t(u)].q.begin(), units[size_t(u)].q.end());
    if (units[size_t(u)].kv >= 0) k.kv_heads.push_back(units[size_t(u)].kv);
  }
  if (units.empty() || units[0].kv < 0) {  // query heads of one shared KV head
    k.kv_heads.resize(size_t(hp.n_head_kv_at(l)));
    std::iota(k.kv_heads.begin(), k.kv_heads.end(), 0);
  }
}

void plan_uniform_heads(const Model& m, const std::vector<std::vector<double>>& score, int64_t target, std::vector<LayerKeep>& keep) {
  const HParams& hp = m.hp;
  int64_t per_rank = 0, min_units = INT64_MAX;
  for (int64_t l = 0; l < hp.n_layer; ++l) {
    const auto units = head_units(hp, l);
    per_rank += head_unit_params(hp, units[0]);
    min_units = std::min<int64_t>(min_units, int64_t(units.size()));
  }
  const int64_t r = std::llround(double(target) / double(per_rank));
  if (r >= min_units)
    fail("removing ", target, " parameters with attention heads alone would remove every head of a layer (at most ",
         (min_units - 1) * per_rank, " parameters, ", cat(100.0 * double((min_units - 1) * per_rank) / double(block_linear_params(m))),
         "% of the block linears)");
  for (int64_t l = 0; l < hp.n_layer; ++l) keep_heads_except(hp, l, lowest(score[size_t(l)], r), keep[size_t(l)]);
}

void plan_uniform_neurons(const Model& m, const std::vector<std::vector<double>>& score, int64_t target, std::vector<LayerKeep>& keep) {
  const HParams& hp = m.hp;
  int64_t r = std::llround(double(target) / double(neuron_params(hp) * hp.n_layer));
  for (int64_t l = 0; l < hp.n_layer; ++l)
    if (r >= hp.n_ff_at(l))
      fail("removing ", target, " parameters with FFN neurons alone would remove every neuron of layer ", l);
  // Keep widths a multiple of 32 when the model's are (row blocks of q4_0/q8_0 stay usable).
  if (hp.uniform() && hp.n_ff % 32 == 0 && r > 0) r = std::min<int64_t>(hp.n_ff - 32, hp.n_ff - 32 * int64_t(std::llround(double(hp.n_ff - r) / 32.0)));
  for (int64_t l = 0; l < hp.n_layer; ++l) keep[size_t(l)].neurons = complement(lowest(score[size_t(l)], r), hp.n_ff_at(l));
}

std::vector<int64_t> pick_blocks_influence(const CalibStats& st, int64_t n) {
  std::vector<double> bi;
  for (double c : st.cos1) bi.push_back(1.0 - c);
  if (n < 0 || n >= int64_t(bi.size())) fail("cannot remove ", n, " of ", bi.size(), " blocks");
  return lowest(bi, n);
}

std::vector<int64_t> pick_blocks_span(const CalibStats& st, int64_t n) {
  if (n != st.span) fail("span statistics were collected for ", st.span, " blocks, not ", n);
  if (n <= 0) return {};
  const int64_t L = int64_t(st.cos1.size());
  if (n >= L) fail("cannot remove ", n, " of ", L, " blocks");
  const auto best = std::min_element(st.ang_span.begin(), st.ang_span.end()) - st.ang_span.begin();
  std::vector<int64_t> r(static_cast<size_t>(n));
  std::iota(r.begin(), r.end(), int64_t(best));
  return r;
}

}  // namespace slimlm::prune
