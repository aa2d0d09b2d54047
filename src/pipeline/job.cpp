#include "pipeline/job.h"
#include "core/error.h"
#include "model/model.h"
#include <cstdlib>
#include <filesystem>
#include <omp.h>

namespace slimlm::pipeline {

void save_compressed(const Model& m, const std::string& path, const Compressed& c) {
  if (c.convert_to) save_gguf(m, path, *c.convert_to);
  else save_gguf_as_is(m, path, c.meta);
}

CalibOptions calib_options(const Args& a) {
  CalibOptions co;
  co.file = a.text("calib");
  co.ids_file = a.text("calib-ids");
  co.samples = a.integer("calib-samples");
  co.len = a.integer("calib-len");
  co.seed = a.unsigned_integer("seed");
  return co;
}

std::string default_calibration_file() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("SLIMLM_DATA"); env && *env) dirs.push_back(env);
  dirs.push_back(SLIMLM_DATA_DIR);
  dirs.push_back(SLIMLM_INSTALLED_DATA_DIR);
  for (const auto& d : dirs) {
    const std::string p = (std::filesystem::path(d) / "calibration.txt").string();
    if (std::filesystem::exists(p)) return p;
  }
  fail("no default calibration text (", dirs.front(), "/calibration.txt is missing): pass --calib FILE or set SLIMLM_DATA");
}

std::vector<std::vector<int32_t>> load_calib(const Model& m, CalibOptions& o) {
  if (o.file.empty() && o.ids_file.empty() && m.tok) o.file = default_calibration_file();
  return load_calibration(m, o);
}

std::string calib_label(const CalibOptions& o) {
  const std::string src = o.ids_file.empty() ? o.file : o.ids_file;
  return cat(std::filesystem::path(src).filename().string(), " ", o.samples, "x", o.len, " seed ", o.seed);
}

void check_model_path(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail(path, ": no such file or directory");
}

void check_output_folder(const std::string& out) {
  const auto dir = std::filesystem::path(out).parent_path();
  if (!dir.empty() && !std::filesystem::is_directory(dir)) fail(out, ": folder ", dir.string(), " does not exist");
}

ThreadScope::ThreadScope(int64_t threads) : saved_(omp_get_max_threads()) {
  if (threads > 0) omp_set_num_threads(int(threads));
}

ThreadScope::~ThreadScope() { omp_set_num_threads(saved_); }

}  // namespace slimlm::pipeline
