// Quantization-aware training: the fake quantizer against the codecs' own rounding and storage
// (every uniform grid QAT trains, ragged last groups included), its straight-through / LSQ
// gradients against their formulas and finite differences, and QAT on stories260K against
// round to nearest (block reconstruction error, KL divergence to the original on held-out
// stories, and a file that saves, loads and runs).
#include "core/error.h"
#include "finite_diff.h"
#include "io/gguf.h"
#include "model/forward.h"
#include "quant/codec.h"
#include "quant/methods.h"
#include "quant/qat.h"
#include "random_rows.h"
#include "test_util.h"
#include <gtest/gtest.h>
#include <cmath>
#include <fstream>
#include <sstream>

using namespace slimlm;
using namespace slimlm::test;

namespace {
const char* const kQatGrids[] = {"u3g128", "u2g64", "s4g32", "u4g48", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0"};

std::vector<float> qat_weights(int64_t rows, int64_t cols, uint32_t seed) {
  std::vector<float> w = gaussian(size_t(rows * cols), seed, 0.05f);
  w[7] = 0.4f;  // an outlier
  for (int64_t j = 0; j < std::min<int64_t>(cols, 32); ++j) w[size_t(cols + j)] = 0.f;  // an all-zero group in row 1
  return w;
}
}  // namespace

TEST(QatFakeQuant, StartsAtTheCodecsRoundingAndExportsWhatItTrains) {
  for (const char* name : kQatGrids) {
    const auto c = quant::make_codec(name);
    const int64_t rows = 5, cols = c->tail_ok() ? 200 : 192;  // 200: a short last group
    const std::vector<float> w = qat_weights(rows, cols, 11);
    const auto f = quant::FakeQuant::fit(*c, w.data(), rows, cols);
    std::vector<float> wq(w.size());
    f.forward(w.data(), wq.data());
    const quant::QMatrix ref = quant::rtn(w.data(), rows, cols, *c);
    const std::vector<float> rd = ref.deq();
    int64_t differ = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      const float step = std::fabs(f.s[size_t(int64_t(i) / cols * f.groups_per_row() + int64_t(i) % cols / f.group)]);
      ASSERT_LE(std::fabs(wq[i] - rd[i]), step * 1.001f + 1e-7f) << name << " at " << i;
      differ += std::fabs(wq[i] - rd[i]) > 1e-6f;
    }
    EXPECT_LE(differ, 2) << name << ": only exact ties may round the other way";
    // codes -> the codec's packed tensor -> the runtime's dequantization: ŵ again (f16 scales)
    const auto q = f.codes(w.data());
    std::vector<float> back(w.size());
    f.dequant(q.data(), back.data());
    for (size_t i = 0; i < w.size(); ++i) ASSERT_NEAR(back[i], wq[i], 1e-6f) << name;
    const Tensor like = Tensor::from_f32("w", {cols, rows}, w.data());
    const Tensor t = quant::to_tensor(f.to_qmatrix(q.data(), *c), *c, like);
    EXPECT_EQ(t.type, c->type()) << name;
    const std::vector<float> run = t.to_f32();
    for (size_t i = 0; i < w.size(); ++i) ASSERT_NEAR(run[i], wq[i], 2e-3f * std::fabs(wq[i]) + 1e-6f) << name << " " << i;
  }
}

TEST(QatFakeQuant, StraightThroughAndStepSizeGradients) {
  const auto c = quant::make_codec("u3g16");
  const int64_t rows = 3, cols = 40;
  std::vector<float> w = gaussian(size_t(rows * cols), 3, 0.05f);
  auto f = quant::FakeQuant::fit(*c, w.data(), rows, cols);
  for (float& s : f.s) s *= 0.6f;  // a smaller step: some weights now clamp at either end
  const std::vector<float> g = gaussian(w.size(), 4);
  std::vector<float> dw(w.size()), ds(f.s.size(), 0.f), dz(f.z.size(), 0.f);
  f.backward(w.data(), g.data(), dw.data(), ds.data(), dz.data());
  std::vector<double> es(f.s.size(), 0.0), ez(f.z.size(), 0.0);
  int clamped = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) {  // the formulas, written out in double
      const size_t i = size_t(r * cols + j), k = size_t(r * f.groups_per_row() + j / f.group);
      const double s = f.s[k], z = std::round(f.z[k]), x = double(w[i]) / s + z, q = std::round(x);
      if (q < f.lo || q > f.hi) {
        ++clamped;
        EXPECT_EQ(dw[i], 0.f);
        es[k] += g[i] * ((q < f.lo ? f.lo : f.hi) - z);
        ez[k] -= g[i] * s;
      } else {
        EXPECT_EQ(dw[i], g[i]);
        es[k] += g[i] * (q - x);
      }
    }
  EXPECT_GT(clamped, 3);
  for (size_t k = 0; k < es.size(); ++k) {
    EXPECT_NEAR(ds[k], es[k], 1e-4 * (1 + std::fabs(es[k])));
    EXPECT_NEAR(dz[k], ez[k], 1e-4 * (1 + std::fabs(ez[k])));
  }
  // frozen codes: ŵ is linear in s, so its gradient is exact; check it by central differences
  const auto q = f.codes(w.data());
  std::vector<float> ds2(f.s.size(), 0.f);
  f.dequant_backward(q.data(), g.data(), ds2.data());
  std::vector<double> sd(f.s.begin(), f.s.end()), an(ds2.begin(), ds2.end());
  auto loss = [&] {
    double l = 0;
    for (int64_t i = 0; i < rows * cols; ++i) {
      const size_t k = size_t(i / cols * f.groups_per_row() + i % cols / f.group);
      l += double(g[size_t(i)]) * sd[k] * (double(q[size_t(i)]) - std::round(f.z[k]));
    }
    return l;
  };
  EXPECT_LT(fd_error(sd, an, loss, {}, 1e-4), 1e-5);
}

TEST(QatFakeQuant, RefusesGridsThatAreNotUniform) {
  const std::vector<float> w = gaussian(256 * 2, 1);
  for (const char* name : {"nf4g64", "q4_K", "w8a8"}) {
    const auto c = quant::make_codec(name);
    EXPECT_THROW(quant::FakeQuant::fit(*c, w.data(), 2, 256), Error) << name;
  }
  quant::QatOptions o;
  o.epochs = -1;
  EXPECT_THROW(o.validate(), Error);
  o = {};
  o.lr_scales = 0;
  EXPECT_THROW(o.validate(), Error);
}

namespace {
std::vector<std::vector<int32_t>> qat_stories(int first, int count) {
  std::ifstream in(stories_ids_file("qat-ids-" + std::to_string(first) + ".txt", first, count));
  std::vector<std::vector<int32_t>> seqs;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::vector<int32_t> ids;
    for (int32_t v; ls >> v;) ids.push_back(v);
    if (ids.size() >= 128) seqs.emplace_back(ids.begin(), ids.begin() + 128);
  }
  return seqs;
}
// Mean KL(original ‖ model) over every position of the sequences.
double kl_to(const Model& ref, const Model& m, const std::vector<std::vector<int32_t>>& seqs) {
  double sum = 0;
  int64_t count = 0;
  for (const auto& s : seqs) {
    const int64_t n = int64_t(s.size()), V = ref.hp.n_vocab;
    Session a(ref, n), b(m, n);
    std::vector<float> za, zb;
    a.forward(s.data(), n, 0, za);
    b.forward(s.data(), n, 0, zb);
    for (int64_t t = 0; t < n; ++t) {
      const float* p = za.data() + t * V;
      const float* q = zb.data() + t * V;
      double mp = p[0], mq = q[0];
      for (int64_t v = 1; v < V; ++v) { mp = std::max(mp, double(p[v])); mq = std::max(mq, double(q[v])); }
      double zp = 0, zq = 0;
      for (int64_t v = 0; v < V; ++v) { zp += std::exp(p[v] - mp); zq += std::exp(q[v] - mq); }
      double kl = 0;
      for (int64_t v = 0; v < V; ++v) {
        const double lp = p[v] - mp - std::log(zp), lq = q[v] - mq - std::log(zq);
        kl += std::exp(lp) * (lp - lq);
      }
      sum += kl;
      ++count;
    }
  }
  return sum / double(count);
}
}  // namespace

TEST(Qat, BeatsRoundToNearestOnStories) {
  SLIMLM_REQUIRE_FILE(stories());
  const auto calib = qat_stories(1, 6), held = qat_stories(101, 3);
  ASSERT_EQ(calib.size(), 6u);
  auto orig = load_model(stories());
  auto rtn = load_model(stories()), q = load_model(stories());
  quant::QatOptions o;
  o.type = "u3g32";
  o.epochs = 0;  // round to nearest through the same path
  o.progress = false;
  quant::qat(*rtn, calib, o);
  o.epochs = 8;
  o.lr_weights = 2e-3;
  o.lr_scales = 5e-3;
  o.e2e_steps = 12;
  o.e2e_lr = 1e-3;
  const quant::QatReport rep = quant::qat(*q, calib, o);
  ASSERT_EQ(rep.mse_rtn.size(), q->blocks.size());
  double before = 0, after = 0;
  for (size_t l = 0; l < rep.mse_rtn.size(); ++l) { before += rep.mse_rtn[l]; after += rep.mse_qat[l]; }
  EXPECT_LT(after, 0.8 * before) << "Block-AP should cut the blocks' reconstruction error";
  ASSERT_EQ(rep.e2e_loss.size(), 12u);  // two passes over the six sequences: the second one scores lower
  double first = 0, second = 0;
  for (size_t t = 0; t < 6; ++t) { first += rep.e2e_loss[t]; second += rep.e2e_loss[t + 6]; }
  EXPECT_LT(second, first);
  const double kl_rtn = kl_to(*orig, *rtn, held), kl_qat = kl_to(*orig, *q, held);
  EXPECT_LT(kl_qat, 0.85 * kl_rtn) << "rtn " << kl_rtn << " qat " << kl_qat;
  std::printf("KL to the original: rtn %.4f, qat %.4f\n", kl_rtn, kl_qat);
  for (const Tensor* t : q->blocks[0].linears()) EXPECT_EQ(type_name(t->type), "u3g32");
  const std::string path = temp_path("qat.gguf");
  save_gguf_as_is(*q, path, {});
  auto back = load_model(path);
  EXPECT_EQ(type_name(back->blocks[1].w_down.type), "u3g32");
  EXPECT_NEAR(kl_to(*q, *back, held), 0.0, 1e-9);
}
