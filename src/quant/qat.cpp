#include "quant/qat.h"
#include "core/dtype_custom.h"
#include "core/error.h"
#include "core/progress.h"
#include "model/forward.h"
#include "model/plan.h"
#include "train/distill.h"
#include "train/engine.h"
#include "train/optim.h"
#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>

namespace slimlm::quant {

namespace {
// Code range and zero-point handling of the uniform grids QAT trains.
void set_grid(FakeQuant& f, const Codec& c) {
  const DType t = c.type();
  if (is_custom(t)) {
    const CustomLayout l = custom_layout(t);
    if (l.kind != CustomKind::Uniform) fail("QAT trains uniform grids (uNgG, sNgG, q4_0, q4_1, q5_0, q5_1, q8_0), not ", c.name());
    f.hi = (1 << l.bits) - 1;
    f.learn_zero = f.int_zero = !l.sym;
    return;
  }
  switch (t) {
    case DType::Q4_0: f.hi = 15; return;
    case DType::Q5_0: f.hi = 31; return;
    case DType::Q8_0: f.lo = 1; f.hi = 255; return;
    case DType::Q4_1: f.hi = 15; f.affine = f.learn_zero = true; return;
    case DType::Q5_1: f.hi = 31; f.affine = f.learn_zero = true; return;
    default: fail("QAT trains uniform grids (uNgG, sNgG, q4_0, q4_1, q5_0, q5_1, q8_0), not ", c.name());
  }
}

// The zero point the forward pass uses: rounded (and kept in the code range) when it is stored as an integer.
inline float zero_used(const FakeQuant& f, float z) {
  return f.int_zero ? std::clamp(std::round(z), float(f.lo), float(f.hi)) : z;
}

// Calls fn(row, group, first column, columns) for every group, rows in parallel.
template <class Fn> void each_group(const FakeQuant& f, Fn fn) {
  const int64_t G = f.groups_per_row();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < f.rows; ++r)
    for (int64_t g = 0; g < G; ++g) {
      const int64_t c0 = g * f.group;
      fn(r, r * G + g, r * f.cols + c0, std::min(f.group, f.cols - c0));
    }
}
}  // namespace

FakeQuant FakeQuant::fit(const Codec& c, const float* w, int64_t rows, int64_t cols) {
  FakeQuant f;
  f.rows = rows;
  f.cols = cols;
  f.group = std::min(c.group(), cols);
  set_grid(f, c);
  if (!c.tail_ok() && cols % f.group != 0) fail("rows of ", cols, " do not fit ", c.name(), " blocks of ", c.group());
  f.s.assign(size_t(rows * f.groups_per_row()), 0.f);
  f.z = f.s;
  each_group(f, [&](int64_t, int64_t g, int64_t off, int64_t len) {
    const GroupFit gf = c.fit(w + off, len);
    const float s = gf.scale != 0 ? gf.scale : 1e-8f;  // an all-zero group: any step size keeps it at zero
    f.s[size_t(g)] = s;
    f.z[size_t(g)] = f.affine ? -gf.zero / s : gf.zero;
  });
  return f;
}

void FakeQuant::forward(const float* w, float* wq) const {
  each_group(*this, [&](int64_t, int64_t g, int64_t off, int64_t len) {
    const float s = this->s[size_t(g)], z = zero_used(*this, this->z[size_t(g)]);
    for (int64_t j = off; j < off + len; ++j) wq[j] = s * (std::clamp(std::round(w[j] / s + z), float(lo), float(hi)) - z);
  });
}

void FakeQuant::backward(const float* w, const float* dwq, float* dw, float* ds, float* dz) const {
  each_group(*this, [&](int64_t, int64_t g, int64_t off, int64_t len) {
    const float s = this->s[size_t(g)], z = zero_used(*this, this->z[size_t(g)]);
    double gs = 0, gz = 0;
    for (int64_t j = off; j < off + len; ++j) {
      const float x = w[j] / s + z, r = std::round(x);
      if (r < float(lo) || r > float(hi)) {  // clamped: no gradient to w
        dw[j] = 0;
        gs += double(dwq[j]) * double((r < float(lo) ? float(lo) : float(hi)) - z);
        gz -= double(dwq[j]) * double(s);
      } else {
        dw[j] = dwq[j];
        gs += double(dwq[j]) * double(r - x);
      }
    }
    ds[g] += float(gs);
    if (learn_zero) dz[g] += float(gz);
  });
}

std::vector<uint8_t> FakeQuant::codes(const float* w) const {
  std::vector<uint8_t> q(static_cast<size_t>(rows * cols));
  each_group(*this, [&](int64_t, int64_t g, int64_t off, int64_t len) {
    const float s = this->s[size_t(g)], z = zero_used(*this, this->z[size_t(g)]);
    for (int64_t j = off; j < off + len; ++j)
      q[size_t(j)] = uint8_t(std::clamp(std::round(w[j] / s + z), float(lo), float(hi)));
  });
  return q;
}

void FakeQuant::dequant(const uint8_t* q, float* wq) const {
  each_group(*this, [&](int64_t, int64_t g, int64_t off, int64_t len) {
    const float s = this->s[size_t(g)], z = zero_used(*this, this->z[size_t(g)]);
    for (int64_t j = off; j < off + len; ++j) wq[j] = s * (float(q[j]) - z);
  });
}

void FakeQuant::dequant_backward(const uint8_t* q, const float* dwq, float* ds) const {
  each_group(*this, [&](int64_t, int64_t g, int64_t off, int64_t len) {
    const float z = zero_used(*this, this->z[size_t(g)]);
    double gs = 0;
    for (int64_t j = off; j < off + len; ++j) gs += double(dwq[j]) * double(float(q[j]) - z);
    ds[g] += float(gs);
  });
}

QMatrix FakeQuant::to_qmatrix(const uint8_t* q, const Codec& c) const {
  QMatrix m;
  m.rows = rows;
  m.cols = cols;
  m.r.resize(size_t(rows));
  const int64_t G = groups_per_row();
  for (int64_t r = 0; r < rows; ++r) {
    RowQuant& rq = m.r[size_t(r)];
    rq.codes.assign(q + r * cols, q + (r + 1) * cols);
    rq.fits.resize(size_t(G));
    rq.deq.resize(size_t(cols));
    for (int64_t g = 0; g < G; ++g) {
      GroupFit& gf = rq.fits[size_t(g)];
      const float s = this->s[size_t(r * G + g)], z = zero_used(*this, this->z[size_t(r * G + g)]);
      gf.scale = f16_round(s);
      gf.zero = affine ? f16_round(-s * z) : z;
      for (int64_t j = g * group; j < std::min(cols, (g + 1) * group); ++j)
        rq.deq[size_t(j)] = c.value(rq.codes[size_t(j)], gf);
    }
  }
  return m;
}

void QatOptions::validate() const {
  auto lr_ok = [](double x) { return std::isfinite(x) && x > 0 && x <= 1; };
  if (epochs < 0 || epochs > 1000) fail("QAT epochs ", epochs, " is out of range [0, 1000]");
  if (e2e_steps < 0 || e2e_steps > 10000000) fail("QAT end-to-end steps ", e2e_steps, " is out of range [0, 1e7]");
  if (!lr_ok(lr_weights) || !lr_ok(lr_scales) || !lr_ok(e2e_lr)) fail("QAT learning rates must be in (0, 1]");
}

namespace {
using Layer = train::Weights<float>::Layer;
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Adam state of one parameter vector.
struct Param {
  std::vector<float> m, v;
  void step(std::vector<float>& p, const std::vector<float>& g, double lr, int64_t t) {
    if (m.empty()) { m.assign(p.size(), 0.f); v = m; }
    train::adam_update(p, g, m, v, lr, t);
  }
};

// The order of the sequences in one pass (a function of the seed, the block and the pass).
std::vector<size_t> order(size_t n, uint64_t seed, uint64_t salt) {
  std::vector<size_t> o(n);
  std::iota(o.begin(), o.end(), size_t(0));
  std::mt19937_64 rng(seed * 1000003ull + salt);
  std::shuffle(o.begin(), o.end(), rng);
  return o;
}

double mse(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (double(a[i]) - double(b[i])) * (double(a[i]) - double(b[i]));
  return s / double(a.size());
}

// One block's quantizers, trained weights and their optimizer state.
struct BlockQat {
  std::array<FakeQuant, 7> fq;
  std::array<std::vector<float>, 7> w;
  std::array<std::vector<uint8_t>, 7> codes;
  std::array<Param, 7> pw, ps, pz;
};

struct Run {
  Run(const Model& model, const Codec& c, const QatOptions& opts, const std::vector<std::vector<int32_t>>& data)
      : m(model), codec(c), o(opts), calib(&data) {}
  const Model& m;
  const Codec& codec;
  const QatOptions& o;
  const std::vector<std::vector<int32_t>>* calib = nullptr;
  std::vector<LayerPlan> plan;
  train::Weights<float> w;                      // master weights; a block's linears become quantized once it is done
  std::vector<std::vector<float>> xq, xf;       // block inputs: quantized and original streams, per sequence
  std::vector<BlockQat> blocks;
  QatReport rep;
  int64_t n = 0;

  void block_ap(size_t l, Progress& bar, int64_t& done);
  void train_block(size_t l, BlockQat& b, Layer& lq, const std::vector<std::vector<float>>& y, Progress& bar, int64_t& done);
  void end_to_end();
};

void Run::train_block(size_t l, BlockQat& b, Layer& lq, const std::vector<std::vector<float>>& y, Progress& bar,
                      int64_t& done) {
  Layer g;
  for (int i = 0; i < 7; ++i) g.linear(i).assign(b.w[size_t(i)].size(), 0.f);
  const int64_t total = o.epochs * int64_t(xq.size());
  int64_t t = 0;
  for (int64_t e = 0; e < o.epochs; ++e)
    for (size_t k : order(xq.size(), o.seed, l * 1000 + uint64_t(e))) {
      for (int i = 0; i < 7; ++i) b.fq[size_t(i)].forward(b.w[size_t(i)].data(), lq.linear(i).data());
      for (int i = 0; i < 7; ++i) std::fill(g.linear(i).begin(), g.linear(i).end(), 0.f);
      const double loss = train::block_mse(m, plan[l], lq, xq[k], y[k], n, &g);
      if (!std::isfinite(loss)) fail("QAT block ", l, ": the reconstruction loss is not finite at step ", t + 1);
      ++t;
      // cosine decay of both learning rates over the block's steps
      const double c = 0.5 * (1 + std::cos(M_PI * double(t - 1) / double(std::max<int64_t>(1, total))));
      for (int i = 0; i < 7; ++i) {
        FakeQuant& f = b.fq[size_t(i)];
        std::vector<float> dw(b.w[size_t(i)].size()), ds(f.s.size(), 0.f), dz(f.z.size(), 0.f);
        f.backward(b.w[size_t(i)].data(), g.linear(i).data(), dw.data(), ds.data(), dz.data());
        b.pw[size_t(i)].step(b.w[size_t(i)], dw, o.lr_weights * c, t);
        b.ps[size_t(i)].step(f.s, ds, o.lr_scales * c, t);
        if (f.learn_zero) b.pz[size_t(i)].step(f.z, dz, o.lr_scales * c, t);
      }
      bar.update(++done, cat("block ", l, " mse ", loss));
    }
}

// Block-AP for block l: train its weights and step sizes on the quantized stream against the
// original block's outputs, freeze the codes, and move both streams one block on.
void Run::block_ap(size_t l, Progress& bar, int64_t& done) {
  Layer& lf = w.layers[l];
  BlockQat& b = blocks[l];
  const Block& blk = m.blocks[l];
  for (int i = 0; i < 7; ++i) {
    b.w[size_t(i)] = lf.linear(i);
    const Tensor& t = *blk.linears()[size_t(i)];
    b.fq[size_t(i)] = FakeQuant::fit(codec, b.w[size_t(i)].data(), t.rows(), t.cols());
  }
  std::vector<std::vector<float>> y(xf.size());
  for (size_t k = 0; k < xf.size(); ++k) y[k] = train::block_output(m, plan[l], lf, xf[k], n);
  Layer lq = lf;
  auto mean_mse = [&](size_t count) {
    double s = 0;
    for (size_t k = 0; k < count; ++k) s += mse(train::block_output(m, plan[l], lq, xq[k], n), y[k]);
    return s / double(count);
  };
  for (int i = 0; i < 7; ++i) b.fq[size_t(i)].forward(b.w[size_t(i)].data(), lq.linear(i).data());
  rep.mse_rtn.push_back(mean_mse(std::min<size_t>(xq.size(), 8)));
  train_block(l, b, lq, y, bar, done);
  for (int i = 0; i < 7; ++i) {
    b.codes[size_t(i)] = b.fq[size_t(i)].codes(b.w[size_t(i)].data());
    b.fq[size_t(i)].dequant(b.codes[size_t(i)].data(), lq.linear(i).data());
    b.w[size_t(i)] = {};
  }
  double s = 0;
  for (size_t k = 0; k < xq.size(); ++k) {
    xq[k] = train::block_output(m, plan[l], lq, xq[k], n);
    if (k < 8) s += mse(xq[k], y[k]);
    xf[k] = std::move(y[k]);
  }
  rep.mse_qat.push_back(s / double(std::min<size_t>(xq.size(), 8)));
  lf = std::move(lq);
}

// E2E-QP: the codes stay; the step sizes of every block train end to end by forward KL to the original model.
void Run::end_to_end() {
  if (o.e2e_steps == 0) return;
  train::Weights<float> g;  // gradients of the block linears alone
  g.layers.resize(w.layers.size());
  for (size_t l = 0; l < w.layers.size(); ++l)
    for (int i = 0; i < 7; ++i) g.layers[l].linear(i).assign(w.layers[l].linear(i).size(), 0.f);
  std::vector<std::array<Param, 7>> ps(w.layers.size());
  const train::DistillOptions kd;
  Session teacher(m, n);
  Progress bar("qat end-to-end", o.e2e_steps, o.progress);
  std::vector<size_t> ord;
  for (int64_t t = 0; t < o.e2e_steps; ++t) {
    const size_t per = calib->size();
    if (size_t(t) % per == 0) ord = order(per, o.seed, 999983ull + uint64_t(t) / per);
    const std::vector<int32_t>& ids = (*calib)[ord[size_t(t) % per]];
    std::vector<float> zt;
    teacher.reset();
    teacher.forward(ids.data(), n, 0, zt);
    for (auto& L : g.layers) for (int i = 0; i < 7; ++i) std::fill(L.linear(i).begin(), L.linear(i).end(), 0.f);
    const train::LogitLoss<float> loss_fn = [&](const float* z, int64_t rows, int64_t V, float* dz) {
      return train::distill(kd, z, zt.data(), rows, V, nullptr, dz);
    };
    const double loss = train::loss_and_grad(m, plan, w, ids.data(), n, loss_fn, &g);
    if (!std::isfinite(loss)) fail("QAT end-to-end step ", t + 1, ": the loss is not finite");
    rep.e2e_loss.push_back(loss);
    const double lr = o.e2e_lr * 0.5 * (1 + std::cos(M_PI * double(t) / double(o.e2e_steps)));
    for (size_t l = 0; l < w.layers.size(); ++l)
      for (int i = 0; i < 7; ++i) {
        FakeQuant& f = blocks[l].fq[size_t(i)];
        std::vector<float> ds(f.s.size(), 0.f);
        f.dequant_backward(blocks[l].codes[size_t(i)].data(), g.layers[l].linear(i).data(), ds.data());
        ps[l][size_t(i)].step(f.s, ds, lr, t + 1);
        f.dequant(blocks[l].codes[size_t(i)].data(), w.layers[l].linear(i).data());
      }
    bar.update(t + 1, cat("kl ", loss));
  }
}
}  // namespace

QatReport qat(Model& m, const std::vector<std::vector<int32_t>>& calib, const QatOptions& o) {
  o.validate();
  if (calib.empty()) fail("QAT needs calibration sequences");
  const auto codec = make_codec(o.type);
  Run r(m, *codec, o, calib);
  r.n = int64_t(calib[0].size());
  for (const auto& s : calib)
    if (int64_t(s.size()) != r.n) fail("QAT needs calibration sequences of one length");
  r.plan = make_plan(m, KvType::F32, r.n);
  r.w = train::Weights<float>::from_model(m);
  for (const auto& s : calib) r.xf.push_back(train::embed(m, r.w, s.data(), r.n));
  r.xq = r.xf;
  r.blocks.resize(m.blocks.size());
  auto t0 = Clock::now();
  {
    Progress bar("qat blocks", int64_t(m.blocks.size()) * o.epochs * int64_t(calib.size()), o.progress);
    int64_t done = 0;
    for (size_t l = 0; l < m.blocks.size(); ++l) r.block_ap(l, bar, done);
  }
  r.rep.seconds_block = since(t0);
  t0 = Clock::now();
  r.xq.clear();
  r.xf.clear();
  r.end_to_end();
  r.rep.seconds_e2e = since(t0);
  for (size_t l = 0; l < m.blocks.size(); ++l)
    for (int i = 0; i < 7; ++i) {
      Tensor& t = *m.blocks[l].linears()[size_t(i)];
      const BlockQat& b = r.blocks[l];
      t = to_tensor(b.fq[size_t(i)].to_qmatrix(b.codes[size_t(i)].data(), *codec), *codec, t);
    }
  return r.rep;
}

}  // namespace slimlm::quant
