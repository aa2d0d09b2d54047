#include "pipeline/calibration.h"
#include "core/error.h"
#include "core/text.h"
#include <algorithm>
#include <numeric>
#include <random>

namespace slimlm::pipeline {

std::vector<std::vector<int32_t>> load_calibration(const Model& m, const CalibOptions& o) {
  if (o.samples <= 0 || o.len < 2) fail("calibration needs at least one sample of at least 2 tokens");
  std::vector<int32_t> ids;
  if (!o.ids_file.empty()) {
    ids = parse_ids(read_text_file(o.ids_file), o.ids_file);
    for (int32_t id : ids)
      if (id < 0 || id >= m.hp.n_vocab) fail(o.ids_file, ": token id ", id, " is outside the vocabulary (", m.hp.n_vocab, ")");
  } else {
    if (!m.tok) fail("calibration text needs a tokenizer; this model (", m.format, ") has none: use --calib-ids");
    ids = m.tok->encode(read_text_file(o.file), false, false);
  }
  const std::string src = o.ids_file.empty() ? o.file : o.ids_file;
  const int64_t need = o.samples * o.len;
  if (int64_t(ids.size()) < o.len)
    fail(src, ": calibration text has ", ids.size(), " tokens, fewer than one sample of ", o.len);
  if (int64_t(ids.size()) < need / 4)
    fail(src, ": calibration text has ", ids.size(), " tokens; ", o.samples, " samples of ", o.len,
         " need at least ", need / 4, " (use fewer --calib-samples or a longer file)");
  // Non-overlapping slots when the text is long enough, visited in a seeded random order.
  const int64_t slots = int64_t(ids.size()) / o.len;
  std::vector<int64_t> order(static_cast<size_t>(slots));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(o.seed);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<std::vector<int32_t>> out;
  for (int64_t s = 0; s < o.samples; ++s) {
    const int64_t start = order[size_t(s % slots)] * o.len;
    std::vector<int32_t> seq(ids.begin() + start, ids.begin() + start + o.len);
    if (m.tok && m.tok->add_bos()) seq[0] = m.tok->bos();
    out.push_back(std::move(seq));
  }
  return out;
}

}  // namespace slimlm::pipeline
