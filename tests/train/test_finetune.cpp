// The training job end to end on stories260K (token ids): held-out evaluation, checkpoints, the
// loss-curve SVG, the trained weights in the model; bad input leaves nothing behind.
#include "core/error.h"
#include "model/forward.h"
#include "pipeline/finetune.h"
#include "test_util.h"
#include <gtest/gtest.h>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace slimlm;
using namespace slimlm::test;

namespace {
std::string ids_file(const std::string& name, int n) {
  const std::string p = temp_path(name);
  std::ofstream f(p);
  for (int i = 0; i < n; ++i) f << (i % 17 == 0 ? 1 : 20 + (i * 7) % 40) << ' ';
  return p;
}
size_t count(const std::string& hay, const std::string& needle) {
  size_t c = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++c;
  return c;
}
}  // namespace

TEST(Finetune, RunsEvaluatesCheckpointsAndPlots) {
  auto m = load_model(stories());
  pipeline::FinetuneJob job;
  job.ids = ids_file("ft.ids", 33 * 10);
  job.seq = 32;
  job.steps = 6;
  job.heldout = 0.2;
  job.eval_every = 3;
  job.train.opt.lr = 5e-3;
  job.checkpoint = temp_path("ft.ckpt");
  job.checkpoint_every = 3;
  job.curve = temp_path("ft.svg");
  job.progress = false;
  const auto r = pipeline::finetune(*m, job);
  EXPECT_EQ(r.steps, 6);
  EXPECT_EQ(r.tokens, 6 * 32);
  ASSERT_EQ(r.log.size(), 6u);
  ASSERT_EQ(r.step_seconds.size(), 6u);
  ASSERT_EQ(r.heldout.size(), 3u);  // steps 0, 3 and 6
  EXPECT_EQ(r.heldout[1].first, 3);
  EXPECT_LT(r.heldout.back().second, r.heldout.front().second);
  EXPECT_GT(r.params_trained, 200000);
  EXPECT_TRUE(std::filesystem::exists(job.checkpoint));
  std::stringstream svg;
  svg << std::ifstream(job.curve).rdbuf();
  EXPECT_EQ(count(svg.str(), "<polyline"), 2u);
  EXPECT_NE(svg.str().find("held-out loss"), std::string::npos);
  // the trained weights are in the model: its runtime loss on the held-out text is the job's
  auto original = load_model(stories());
  std::vector<float> a, b;
  const std::vector<int32_t> ids = {1, 27, 34, 41};
  Session(*m, 4).forward(ids.data(), 4, 0, a);
  Session(*original, 4).forward(ids.data(), 4, 0, b);
  EXPECT_NE(a, b);
  for (const auto& p : {job.ids, job.checkpoint, job.curve}) std::filesystem::remove(p);
}

TEST(Finetune, BadInputLeavesNothingBehind) {
  auto m = load_model(stories());
  pipeline::FinetuneJob job;
  job.ids = ids_file("short.ids", 20);
  job.seq = 32;
  job.checkpoint = temp_path("short.ckpt");
  job.curve = temp_path("short.svg");
  job.progress = false;
  EXPECT_THROW(pipeline::finetune(*m, job), Error);  // shorter than one sequence
  EXPECT_FALSE(std::filesystem::exists(job.checkpoint));
  EXPECT_FALSE(std::filesystem::exists(job.curve));
  job.data = job.ids;  // both a text and ids
  EXPECT_THROW(pipeline::finetune(*m, job), Error);
  job.data.clear();
  job.steps = 0;
  EXPECT_THROW(pipeline::finetune(*m, job), Error);
  job.steps = 5;
  job.train.opt.lr = -1;
  EXPECT_THROW(pipeline::finetune(*m, job), Error);
  std::filesystem::remove(job.ids);
}
